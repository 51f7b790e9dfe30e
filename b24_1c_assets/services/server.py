"""Running the service: uvicorn settings shared by the CLI, the tests and the benches."""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn

from b24_1c_assets.services.app import build_app
from b24_1c_assets.services.config import ServiceConfig

# uvicorn's own access log prints the request line, query string included (the gate's `token=`): ours
# (services/http.py) replaces it.
UVICORN = dict(
    access_log=False,
    log_config=None,
    server_header=False,
    proxy_headers=False,
    timeout_keep_alive=5,
    timeout_graceful_shutdown=10,
    h11_max_incomplete_event_size=16 * 1024,
    limit_concurrency=1000,
    backlog=2048,
)


def uvicorn_config(config: ServiceConfig, host: str, port: int, **overrides) -> uvicorn.Config:
    return uvicorn.Config(build_app(config), host=host, port=port, lifespan="on", **{**UVICORN, **overrides})


class ServiceThread:
    """The service on an ephemeral loopback port in a background thread (tests, benches)."""

    def __init__(self, config: ServiceConfig, host: str = "127.0.0.1"):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, 0))
        self.host, self.port = self.socket.getsockname()[:2]
        self.server = uvicorn.Server(uvicorn_config(config, self.host, self.port))
        self.app = self.server.config.app
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name="b24-1c-service", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> ServiceThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(15)
        self.socket.close()

    def __enter__(self) -> ServiceThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def log_to_stderr(level: int = logging.INFO) -> None:
    """Plain lines to stderr: our JSON access lines as they are, uvicorn's start/stop messages."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    for name in ("b24_1c_assets", "uvicorn"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.addHandler(handler)
        logger.propagate = False
