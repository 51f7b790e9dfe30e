"""Headless Chromium driven over the DevTools protocol (the `websockets` client the webserver already brings).

Real waits instead of a virtual-time budget: a page is read when the expected text has rendered (the Dagster UI
fills itself from GraphQL answers), and screenshots come from `Page.captureScreenshot`, which does not hang
the way the `--screenshot` switch can.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import requests
from websockets.sync.client import connect

BINARY = shutil.which("chromium") or shutil.which("chromium-browser")
# Quiet, offline, throwaway: no sandbox (root in CI), no GPU, nothing phoning home.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


class Browser:
    """One Chromium with a fresh profile in `profile`, one tab; use as a context manager."""

    def __init__(self, profile: Path, start_seconds: float = 30):
        profile.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [BINARY, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # its helpers stop with it
        self._ids = itertools.count(1)
        try:
            port = self._devtools_port(profile, start_seconds)
            page = next(
                t for t in requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json() if t["type"] == "page"
            )
            self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        except BaseException:
            self.close()
            raise

    def _devtools_port(self, profile: Path, seconds: float) -> int:
        marker = profile / "DevToolsActivePort"  # Chromium writes the port it picked here
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if marker.exists() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode}")
            time.sleep(0.1)
        raise TimeoutError("chromium did not open its DevTools port")

    def call(self, method: str, timeout: float = 30, **params) -> dict:
        message_id = next(self._ids)
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == message_id:  # anything else is an event we did not ask for
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def text_when(self, url: str, expected: list[str], seconds: float = 45) -> str:
        """Open `url`, wait until its visible text holds every `expected` string, return that text."""
        self.call("Page.navigate", url=url)
        deadline, text = time.monotonic() + seconds, ""
        while time.monotonic() < deadline:
            found = self.call(
                "Runtime.evaluate", expression="document.body ? document.body.innerText : ''", returnByValue=True
            )
            text = " ".join(str(found.get("result", {}).get("value", "")).split())
            if all(e in text for e in expected):
                return text
            time.sleep(0.5)
        missing = [e for e in expected if e not in text]
        raise AssertionError(f"{url}: not rendered within {seconds} s: {missing}; page text: {text[:1500]}")

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
