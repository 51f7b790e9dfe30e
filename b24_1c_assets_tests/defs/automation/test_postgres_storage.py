"""Instance storage in PostgreSQL (dagster-postgres), for real: the repo's dagster.yaml plus a `storage:
postgres:` block read from the environment, runs and materializations written, then read back by a second
instance and straight from the database."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

REPO_YAML = Path(__file__).resolve().parents[3] / "dagster.yaml"

# What docs/production.md tells ops to add: credentials only through environment variables.
STORAGE = """
storage:
  postgres:
    postgres_db:
      username: {env: DAGSTER_PG_USERNAME}
      password: {env: DAGSTER_PG_PASSWORD}
      hostname: {env: DAGSTER_PG_HOST}
      db_name: {env: DAGSTER_PG_DB}
      port: {env: DAGSTER_PG_PORT}
      scheme: postgresql+psycopg2  # SQLAlchemy 2.1 maps plain `postgresql` to psycopg 3, not installed
"""


@dg.asset(pool="duckdb")
def extracted() -> int:
    return 3


@dg.asset(pool="bitrix24_api")
def pushed(extracted: int) -> int:
    return extracted * 2


@pytest.fixture
def pg_home(postgres_db, tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_YAML, home / "dagster.yaml")
    with open(home / "dagster.yaml", "a", encoding="utf-8") as yaml:
        yaml.write(STORAGE)
    for key, name in (
        ("username", "DAGSTER_PG_USERNAME"),
        ("password", "DAGSTER_PG_PASSWORD"),
        ("hostname", "DAGSTER_PG_HOST"),
        ("db_name", "DAGSTER_PG_DB"),
        ("port", "DAGSTER_PG_PORT"),
    ):
        monkeypatch.setenv(name, str(postgres_db[key]))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.mark.timeout(300)
def test_runs_and_materializations_live_in_postgres(pg_home, postgres_db):
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        for attempt in range(2):
            result = dg.materialize([extracted, pushed], instance=instance, tags={"trigger": f"test-{attempt}"})
            assert result.success
        # the steps claimed their pools in this storage, each created with dagster.yaml's default of one slot
        for pool in ("duckdb", "bitrix24_api"):
            assert instance.event_log_storage.get_concurrency_info(pool).slot_count == 1, pool

    with dg.DagsterInstance.get() as again:  # a new process's view: the history is in the database
        runs = again.get_runs()
        assert len(runs) == 2 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        assert {r.tags["trigger"] for r in runs} == {"test-0", "test-1"}
        latest = again.get_latest_materialization_event(dg.AssetKey("pushed"))
        assert latest is not None and latest.run_id == runs[0].run_id

    import psycopg2

    with psycopg2.connect(
        host=postgres_db["hostname"],
        port=postgres_db["port"],
        user=postgres_db["username"],
        password=postgres_db["password"],
        dbname=postgres_db["db_name"],
    ) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM runs")
            assert cur.fetchone()[0] == 2
            cur.execute("SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
            assert cur.fetchone()[0] == 4
