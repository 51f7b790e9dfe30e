"""The repo's dagster.yaml works as it is: a DAGSTER_HOME holding only it gives an instance with one slot per
pool our assets use, queued runs, and run retries."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

REPO_YAML = Path(__file__).resolve().parents[3] / "dagster.yaml"


@pytest.fixture
def instance(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as loaded:
        yield loaded


def asset_pools(monkeypatch, tmp_path) -> set[str]:
    monkeypatch.setenv("B24_WEBHOOK_URL", "https://portal.example/rest/1/secretcode123/")
    monkeypatch.setenv("B24_1C_DUCKDB_PATH", str(tmp_path / "t.duckdb"))
    from b24_1c_assets.definitions import defs

    graph = defs().resolve_asset_graph()
    return {pool for key in graph.get_all_asset_keys() for pool in (graph.get(key).pools or [])}


def test_every_pool_our_assets_use_gets_one_slot(instance, monkeypatch, tmp_path):
    pools = asset_pools(monkeypatch, tmp_path)
    assert {"duckdb", "bitrix24_api", "onec_odata", "onec_exchange"} <= pools
    config = instance.get_concurrency_config()
    assert config.pool_config.default_pool_limit == 1
    assert config.pool_config.pool_granularity.value == "op"
    for pool in sorted(pools):  # what the run worker does when a step first claims the pool
        instance.event_log_storage.initialize_concurrency_limit_to_default(pool)
        assert instance.event_log_storage.get_concurrency_info(pool).slot_count == 1, pool


def test_runs_are_queued_and_retried_once(instance):
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
