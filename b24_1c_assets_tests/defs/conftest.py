"""Fixtures for Dagster-level tests: a sandbox the definitions point at, and a way to run assets."""

from __future__ import annotations

import dagster as dg
import pytest

from b24_1c_assets.sandbox import start_sandbox


@pytest.fixture
def onec_options():
    """More options of the sandbox 1C (`unpublished`, `empty_dimensions`, ...): a module overrides this fixture."""
    return {}


@pytest.fixture
def sandbox(world, monkeypatch, tmp_path, onec_profile, onec_options):
    """Both sandbox servers over the session's world, and the environment pointing the product at them; the
    1C base follows `onec_profile` (parametrize it with `both_onec_profiles` to run against UNF 3.0 and 1.6)."""
    running = start_sandbox(world=world, rate=50, burst=50, onec_profile=onec_profile, onec_options=onec_options)
    for name, value in running.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("B24_1C_DUCKDB_PATH", str(tmp_path / "b24_1c.duckdb"))
    monkeypatch.setenv("ONEC_EXCHANGE_DIR", str(tmp_path / "exchange"))
    yield running
    running.stop()


@pytest.fixture
def run_assets(sandbox):
    """Materialize a selection (an AssetSelection or a list of keys/strings) of the whole location."""
    from b24_1c_assets.definitions import defs
    from b24_1c_assets.defs.partitions import daily_partitions

    def run(selection, *, partition_key: str | None = None, tags: dict | None = None, raise_on_error: bool = True):
        loaded = defs()
        assets = list(loaded.assets or [])
        checks = list(loaded.asset_checks or [])
        if not isinstance(selection, dg.AssetSelection):
            selection = dg.AssetSelection.assets(*[dg.AssetKey.from_user_string(s) if isinstance(s, str) else s
                                                   for s in selection])
        graph = loaded.resolve_asset_graph()
        partitioned = any(graph.get(key).partitions_def is not None for key in selection.resolve(graph))
        if partitioned:
            partition_key = partition_key or daily_partitions.get_last_partition_key()
        return dg.materialize([*assets, *checks], selection=selection, resources=loaded.resources,
                              partition_key=partition_key if partitioned else None,
                              tags=tags, raise_on_error=raise_on_error)

    return run
