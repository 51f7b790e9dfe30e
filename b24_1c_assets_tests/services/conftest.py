"""The HTTP service on an ephemeral loopback port (uvicorn in a thread), with its own folders and tokens."""

from __future__ import annotations

import dataclasses

import pytest

from b24_1c_assets.services.config import Limits, ServiceConfig
from b24_1c_assets.services.server import ServiceThread

GATE_TOKEN = "gate-secret-7f3a"
EXPORT_TOKEN = "onec-export-secret-91bc"
EVENT_TOKEN = "51856fefc120afa4b628cc82d3935cce"
REVIEW_TOKEN = "review-secret-4d2e"


@pytest.fixture
def service_config(tmp_path) -> ServiceConfig:
    return ServiceConfig(
        gate_token=GATE_TOKEN,
        onec_export_token=EXPORT_TOKEN,
        b24_event_token=EVENT_TOKEN,
        review_token=REVIEW_TOKEN,
        analytics_db=str(tmp_path / "analytics" / "b24_1c.duckdb"),
        exchange_dir=str(tmp_path / "exchange"),
        events_journal=str(tmp_path / "events" / "bitrix24-events.jsonl"),
        review_decisions=str(tmp_path / "review" / "client_match_decisions.sqlite"),
        limits=Limits(export_bytes=2 * 1024 * 1024, body_seconds=2.0),
    )


@pytest.fixture
def start_service():
    """start_service(config, **changes) -> a running ServiceThread (stopped after the test)."""
    running = []

    def start(config: ServiceConfig, **changes) -> ServiceThread:
        service = ServiceThread(dataclasses.replace(config, **changes)).start()
        running.append(service)
        return service

    yield start
    for service in running:
        service.stop()


@pytest.fixture
def service(service_config, start_service) -> ServiceThread:
    return start_service(service_config)


def access_lines(caplog, count: int, timeout: float = 5.0) -> list[str]:
    """The service's access-log lines once `count` are there (a line is written just after its response)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        lines = [r.getMessage() for r in caplog.records if r.name == "b24_1c_assets.services.access"]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.01)
