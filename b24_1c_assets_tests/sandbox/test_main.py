"""`python -m b24_1c_assets.sandbox` as a real subprocess, and the `start_sandbox()` helper, over loopback HTTP."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from b24_1c_assets.sandbox import start_sandbox
from b24_1c_assets.sandbox.faults import Faults

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _launch(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "b24_1c_assets.sandbox", "--scale", "15", *args],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_env(proc: subprocess.Popen, count: int) -> list[tuple[str, str]]:
    lines = []
    for _ in range(count):
        line = proc.stdout.readline()
        assert line, f"sandbox ended early: {proc.stderr.read()}"
        name, sep, value = line.rstrip("\n").partition("=")
        assert sep and name.isupper(), line
        lines.append((name, value))
    return lines


@pytest.fixture
def launched():
    procs: list[subprocess.Popen] = []

    def launch(*args: str) -> subprocess.Popen:
        procs.append(_launch(*args))
        return procs[-1]

    yield launch
    for proc in procs:  # only the processes this test started, by their own handle
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def test_command_serves_both_systems_and_stops_on_sigterm(launched):
    proc = launched("--rate", "50", "--onec-user", "обмен")
    env = _read_env(proc, 4)
    names = [n for n, _ in env]
    assert names == ["B24_WEBHOOK_URL", "ONEC_ODATA_URL", "ONEC_USERNAME", "ONEC_PASSWORD"]
    values = dict(env)
    assert values["B24_WEBHOOK_URL"].startswith("http://127.0.0.1:") and values["B24_WEBHOOK_URL"].endswith("/")
    assert values["ONEC_USERNAME"] == "обмен" and len(values["ONEC_PASSWORD"]) >= 12

    users = requests.get(values["B24_WEBHOOK_URL"] + "user.get", timeout=10)
    assert users.status_code == 200
    assert users.json()["result"] and users.json()["result"][0]["ID"] == "1"

    service = values["ONEC_ODATA_URL"]
    ok = requests.get(
        service,
        params={"$format": "json"},
        auth=(values["ONEC_USERNAME"].encode(), values["ONEC_PASSWORD"].encode()),
        timeout=10,
    )
    assert ok.status_code == 200
    assert any(s["name"] == "Catalog_Контрагенты" for s in ok.json()["value"])
    assert requests.get(service, params={"$format": "json"}, timeout=10).status_code == 401

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert "sandbox stopped" in proc.stderr.read()
    with pytest.raises(requests.ConnectionError):
        requests.get(values["B24_WEBHOOK_URL"] + "user.get", timeout=2)


def test_only_1c_with_chosen_password_and_sigint(launched):
    proc = launched("--only", "1c", "--onec-password", "sandbox-secret")
    env = dict(_read_env(proc, 3))
    assert list(env) == ["ONEC_ODATA_URL", "ONEC_USERNAME", "ONEC_PASSWORD"]
    assert env["ONEC_PASSWORD"] == "sandbox-secret"
    reply = requests.get(
        env["ONEC_ODATA_URL"], params={"$format": "json"}, auth=(env["ONEC_USERNAME"], "sandbox-secret"), timeout=10
    )
    assert reply.status_code == 200
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0


def test_fault_options_reach_the_portal(launched):
    proc = launched("--only", "bitrix24", "--rate", "50", "--fail-503", "1")
    ((name, url),) = _read_env(proc, 1)
    assert name == "B24_WEBHOOK_URL"
    assert requests.get(url + "user.get", timeout=10).status_code == 503


def test_bad_option_is_refused(launched):
    proc = launched("--drop", "1.5")
    assert proc.wait(timeout=30) == 2
    assert "share" in proc.stderr.read()


def test_taken_port_is_a_clear_error(launched):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = launched("--only", "1c", "--onec-port", str(port))
        assert proc.wait(timeout=30) == 1
        err = proc.stderr.read()
    assert f"1C port {port}" in err and "could not start" in err and "Traceback" not in err


def test_start_sandbox_helper_env_exchange_files_and_stop(world, tmp_path):
    faults = Faults()
    with start_sandbox(world=world, rate=40, burst=20, faults=faults, exchange_dir=tmp_path / "exchange") as sb:
        env = sb.env()
        assert sb.world is world and "secret" not in repr(sb) and env["ONEC_PASSWORD"] not in repr(sb)
        assert env["B24_WEBHOOK_URL"] == sb.portal.webhook_url and env["ONEC_ODATA_URL"] == sb.onec.odata_url
        assert (env["B24_RATE"], env["B24_BURST"]) == ("40", "20")
        assert env["ONEC_EXCHANGE_DIR"] == str(tmp_path / "exchange")
        counterparties = json.loads((tmp_path / "exchange" / "counterparties.json").read_text(encoding="utf-8"))
        assert counterparties  # the 1C view of the same world was written
        reply = requests.get(env["B24_WEBHOOK_URL"] + "user.get", timeout=10)
        assert reply.status_code == 200
        faults.error_500_share = 1.0  # one Faults object drives both servers while they run
        assert requests.get(env["B24_WEBHOOK_URL"] + "user.get", timeout=10).status_code == 500
        url = env["B24_WEBHOOK_URL"]
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "user.get", timeout=2)


def test_start_sandbox_portal_only():
    with start_sandbox(seed=3, scale=5, onec=False) as sb:
        assert sb.onec is None and sb.portal is not None
        assert list(sb.env()) == ["B24_WEBHOOK_URL", "B24_RATE", "B24_BURST"]
        assert len(sb.world.parties) == 5
