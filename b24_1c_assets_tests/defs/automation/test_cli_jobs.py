"""The jobs as ops start them: `dagster job execute` in a subprocess, against a small sandbox, with a
DAGSTER_HOME holding the repo's dagster.yaml (pools, run retries) and a DuckDB file of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from b24_1c_assets.sandbox import start_sandbox
from b24_1c_assets.sandbox.world import generate

REPO = Path(__file__).resolve().parents[3]
DAGSTER = Path(sys.executable).with_name("dagster")
SMALL_SCALE = 10  # every asset still has rows; a step costs the same at any scale, rows barely matter here


@pytest.fixture
def small_sandbox(tmp_path):
    with start_sandbox(
        world=generate(seed=7, scale=SMALL_SCALE), rate=50, burst=50, exchange_dir=tmp_path / "exchange"
    ) as running:
        yield running


def execute(job: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(DAGSTER), "job", "execute", "-m", "b24_1c_assets.definitions", "-j", job],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.timeout(1200)
def test_full_sync_then_incremental_sync_execute_from_the_cli(small_sandbox, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    database = tmp_path / "b24_1c.duckdb"
    env = dict(os.environ, **small_sandbox.env(), DAGSTER_HOME=str(home), B24_1C_DUCKDB_PATH=str(database))

    full = execute("full_sync", env)
    output = full.stdout + full.stderr
    assert full.returncode == 0, output[-4000:]
    assert "RUN_SUCCESS" in output and "RUN_FAILURE" not in output
    assert small_sandbox.portal.webhook_code not in output and small_sandbox.onec.password not in output
    with duckdb.connect(str(database), read_only=True) as conn:
        clients = conn.execute("SELECT count(*) FROM client_master.clients").fetchone()[0]
        statuses = conn.execute("SELECT count(*) FROM receivables.client_credit_status").fetchone()[0]
    assert clients > 0 and statuses > 0

    incremental = execute("incremental_sync", env)
    assert incremental.returncode == 0, (incremental.stdout + incremental.stderr)[-4000:]
    assert "RUN_SUCCESS" in incremental.stdout + incremental.stderr

    with dg.DagsterInstance.from_config(str(home)) as instance:  # both runs are in the instance's history
        runs = {r.job_name: r for r in instance.get_runs()}
    assert set(runs) == {"full_sync", "incremental_sync"}
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs.values())
    assert runs["full_sync"].tags["dagster/partition"]  # closed a day without being told which
