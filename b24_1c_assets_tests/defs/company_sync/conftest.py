"""`run_flow`: like `run_assets` (defs/conftest.py), plus run config and tags (e.g. `b24_1c/dry_run=false`)."""

import dagster as dg
import pytest


@pytest.fixture
def run_flow(sandbox):
    from b24_1c_assets.definitions import defs

    def run(selection, *, run_config=None, tags=None):
        loaded = defs()
        if not isinstance(selection, dg.AssetSelection):
            selection = dg.AssetSelection.assets(*selection)
        return dg.materialize(
            [*(loaded.assets or []), *(loaded.asset_checks or [])],
            selection=selection,
            resources=loaded.resources,
            run_config=run_config,
            tags=tags,
        )

    return run
