"""The service as a whole: health, the review page's route, time limits, the access log, the CLI."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import subprocess
import sys
import time

import requests

from b24_1c_assets.sandbox.exchange_files import write_exchange_files
from b24_1c_assets.services.config import ServiceConfig
from b24_1c_assets_tests.services.conftest import EXPORT_TOKEN, GATE_TOKEN, REVIEW_TOKEN, access_lines


def test_healthz_needs_no_token_and_says_what_is_ready(service):
    answer = requests.get(service.url + "/healthz", timeout=5)
    assert answer.status_code == 200
    health = answer.json()
    assert health["status"] == "ok" and health["analyst_copy"] == "not published yet"
    assert health["routes"] == ["credit gate", "1C exports", "Bitrix24 events", "review"]
    assert health["exchange_folder_writable"] is True
    assert GATE_TOKEN not in answer.text


def test_review_page_is_token_protected(service):
    assert requests.get(service.url + "/review", timeout=5).status_code == 401
    assert requests.get(service.url + "/review", params={"token": GATE_TOKEN}, timeout=5).status_code == 401
    page = requests.get(service.url + "/review", params={"token": REVIEW_TOKEN}, timeout=5)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "review" in page.text.lower()


def test_a_route_without_its_token_configured_says_which_variable(service_config, start_service):
    service = start_service(service_config, onec_export_token="", review_token="")
    refused = requests.post(service.url + "/v1/onec/exports", data=b"{}", auth=("1c", ""), timeout=5)
    assert refused.status_code == 503 and "B24_1C_ONEC_EXPORT_TOKEN" in refused.json()["error"]
    assert "B24_1C_REVIEW_TOKEN" in requests.get(service.url + "/review", timeout=5).json()["error"]
    assert requests.get(service.url + "/nowhere", timeout=5).status_code == 404


def test_a_stalled_body_is_cut_off_with_408(service):
    """The fixture allows 2 s for a body: a sender that promises 100 bytes and sends 10 gets 408."""
    with socket.create_connection((service.host, service.port), timeout=10) as conn:
        conn.sendall(
            b"POST /v1/bitrix24/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-"
            b"urlencoded\r\nContent-Length: 100\r\n\r\nevent=ONCR"
        )
        started = time.monotonic()
        reply = conn.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408") and 1.5 < time.monotonic() - started < 8


def test_a_handler_over_its_time_limit_answers_503(world, service_config, start_service, tmp_path):
    slow = start_service(service_config, limits=dataclasses.replace(service_config.limits, handler_seconds=0.001))
    [body] = [p.read_bytes() for p in write_exchange_files(world, tmp_path / "made") if p.name == "counterparties.json"]
    answer = requests.post(slow.url + "/v1/onec/exports", data=body, auth=("1c", EXPORT_TOKEN), timeout=30)
    assert answer.status_code == 503 and answer.headers["Retry-After"] and "not answered" in answer.json()["error"]


def test_access_log_is_one_json_object_per_request_without_secrets(service, caplog):
    caplog.set_level(logging.INFO, logger="b24_1c_assets.services.access")
    requests.get(service.url + "/v1/may-create-deal", params={"company_id": 1, "token": GATE_TOKEN}, timeout=5)
    requests.post(
        service.url + "/v1/bitrix24/events",
        timeout=5,
        data={"event": "ONCRMDEALUPDATE", "data[FIELDS][ID]": "1", "auth[application_token]": "nope"},
    )
    lines = [json.loads(line) for line in access_lines(caplog, 2)]
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("GET", "/v1/may-create-deal", 503),
        ("POST", "/v1/bitrix24/events", 403),
    ]
    assert lines[0]["query"] == "company_id=1&token=***" and lines[1]["in"] > 0
    assert all(isinstance(line["ms"], float) and line["client"] == "127.0.0.1" for line in lines)
    assert not any(GATE_TOKEN in r.getMessage() for r in caplog.records)


def test_config_from_env_and_its_repr_hide_tokens(monkeypatch, tmp_path):
    monkeypatch.setenv("B24_1C_DUCKDB_PATH", str(tmp_path / "work" / "b24_1c.duckdb"))
    monkeypatch.delenv("B24_1C_ANALYTICS_DUCKDB_PATH", raising=False)
    monkeypatch.setenv("B24_1C_GATE_TOKEN", GATE_TOKEN)
    monkeypatch.setenv("B24_1C_SERVICE_MAX_EXPORT_MB", "8")
    config = ServiceConfig.from_env()
    assert config.analytics_db == str(tmp_path / "work" / "analytics" / "b24_1c.duckdb")
    assert config.limits.export_bytes == 8 * 1024 * 1024 and config.configured_routes() == ["credit gate"]
    assert GATE_TOKEN not in repr(config) and str(tmp_path) not in repr(config)


def test_cli_refuses_to_start_without_any_token(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "B24_1C_DUCKDB_PATH": str(tmp_path / "x.duckdb")}
    done = subprocess.run(
        [sys.executable, "-m", "b24_1c_assets.services"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "B24_1C_GATE_TOKEN" in done.stderr
