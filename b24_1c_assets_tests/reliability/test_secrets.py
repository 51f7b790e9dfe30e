"""The webhook token and the 1C password appear nowhere a run leaves text behind.

Distinctive secrets are planted in the sandbox; then a fault-free and a faulty full_sync leave Python logs,
exception texts, the Dagster event log and run record, every DuckDB table, the sandbox request logs and (in a
child process) stdout/stderr — none may contain a secret in any usual encoding.
"""

import base64
import json
import logging
import os
import subprocess
import sys
from functools import partial
from urllib.parse import quote

import dagster as dg
import duckdb
import pytest

from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.onec import OneCClient
from b24_1c_assets.warehouse import PROJECT_ROOT
from b24_1c_assets_tests.reliability.conftest import point_env_at, reliability_day

WEBHOOK_CODE = "zq7leakcanaryhook41x"  # the path segment after /rest/<user>/
ONEC_USER = "integration"
ONEC_PASSWORD = "Zq7-Leak+Canary/1C=pw"  # '+', '/', '=' so URL and form encodings differ from the raw text
FAULTS = dict(error_503_share=0.2, drop_share=0.05, slow_share=0.05, slow_seconds=0.3, batch_command_error_share=0.05)

CHILD = """
import logging
import dagster as dg
from b24_1c_assets.runner import describe_run, run_full_sync
logging.basicConfig(level=logging.DEBUG)
result = run_full_sync(trigger="secrets-test", instance=dg.DagsterInstance.ephemeral(), quiet=False,
                       partition_key={day!r})
print(describe_run(result))
for event in result.all_events:
    error = getattr(event.event_specific_data, "error", None)
    if error is not None:
        print(error.to_string())
"""


def needles() -> list[str]:
    basic = base64.b64encode(f"{ONEC_USER}:{ONEC_PASSWORD}".encode()).decode()
    return [WEBHOOK_CODE, ONEC_PASSWORD, quote(ONEC_PASSWORD, safe=""), ONEC_PASSWORD.replace("+", "%2B"), basic]


def leaks(where: str, text: str) -> list[str]:
    return [f"{where}: {needle!r}" for needle in needles() if needle in text]


@pytest.fixture
def secret_bench(small_world, bench_factory):
    bench = bench_factory(small_world, "secrets")
    # The servers read these per request, so the planted secrets are the ones in force.
    portal = bench.sandbox.portal
    portal.webhook_code = WEBHOOK_CODE
    portal.add_webhook(portal.user_id, WEBHOOK_CODE)
    bench.sandbox.onec.username, bench.sandbox.onec.password = ONEC_USER, ONEC_PASSWORD
    bench.env = point_env_at(bench.sandbox, bench.workdir)
    assert WEBHOOK_CODE in bench.env["B24_WEBHOOK_URL"] and bench.env["ONEC_PASSWORD"] == ONEC_PASSWORD
    return bench


def faulty(bench) -> None:
    for name, share in FAULTS.items():  # both servers share this Faults object
        setattr(bench.faults, name, share)


def duckdb_text(db_path) -> str:
    """Every value of every table and view in the file, as text."""
    parts = []
    with duckdb.connect(str(db_path), read_only=True) as conn:
        tables = conn.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
        for schema, table in tables:
            parts.append(f"{schema}.{table}")
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall():
                parts.append(repr(row))
    assert len(tables) > 20  # the product's tables really were there to search
    return "\n".join(parts)


def sandbox_text(bench) -> str:
    return json.dumps(
        [bench.sandbox.portal.request_log, bench.sandbox.onec.request_log], default=str, ensure_ascii=False
    )


@pytest.mark.slow
def test_no_secret_in_logs_events_tables_or_sandbox_logs(secret_bench, monkeypatch, caplog):
    monkeypatch.setattr(
        "b24_1c_assets.lib.resources.Bitrix24Client", partial(Bitrix24Client, backoff_initial=0.05, backoff_max=3.0)
    )
    monkeypatch.setattr(
        "b24_1c_assets.lib.resources.OneCClient", partial(OneCClient, backoff_initial=0.05, backoff_max=3.0)
    )
    caplog.set_level(logging.DEBUG)
    instance = dg.DagsterInstance.ephemeral()
    results = [secret_bench.run(monkeypatch, instance=instance)]
    faulty(secret_bench)
    results.append(secret_bench.run(monkeypatch, instance=instance))
    assert results[0].success

    found = []
    records = caplog.records
    assert any(r.levelno == logging.DEBUG for r in records) and any("retry" in r.getMessage() for r in records)
    found += leaks(
        "python logs", caplog.text + "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in records)
    )
    for result in results:
        run = instance.get_run_by_id(result.run_id)
        found += leaks("run record", repr(run.run_config) + repr(run.tags))
        entries = instance.all_logs(result.run_id)
        assert len(entries) > 50
        found += leaks("event log", "\n".join(dg.serialize_value(e) for e in entries))
        errors = [
            e.event_specific_data.error.to_string()
            for e in result.all_events
            if getattr(e.event_specific_data, "error", None) is not None
        ]
        found += leaks("exceptions", "\n".join(errors))
    found += leaks("duckdb", duckdb_text(secret_bench.db_path))
    found += leaks("sandbox request logs", sandbox_text(secret_bench))
    seen_faults = [e for e in secret_bench.sandbox.portal.request_log if e.get("status") != 200]
    assert seen_faults, "the faulty run saw no fault: the error paths were not searched"
    assert not found, found


@pytest.mark.slow
def test_no_secret_in_a_child_process_output(secret_bench):
    faulty(secret_bench)
    env = {**os.environ, **secret_bench.env, "DAGSTER_DISABLE_TELEMETRY": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(day=reliability_day())],
        env=env,
        cwd=str(PROJECT_ROOT),
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-2000:]
    assert "run " in done.stdout and "STEP_SUCCESS" in done.stderr  # the child really ran and logged
    found = (
        leaks("stdout/stderr", output)
        + leaks("duckdb", duckdb_text(secret_bench.db_path))
        + leaks("sandbox request logs", sandbox_text(secret_bench))
    )
    assert not found, found
