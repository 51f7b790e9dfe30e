"""`run_flow`: materialize an AssetSelection of the location with no partition key (the flows are not
partitioned; the shared `run_assets` always passes one and iterates tuple-shaped selections)."""

import dagster as dg
import pytest


@pytest.fixture
def run_flow(sandbox):
    from b24_1c_assets.definitions import defs

    def run(selection, *, tags: dict | None = None, raise_on_error: bool = True):
        loaded = defs()
        return dg.materialize([*(loaded.assets or []), *(loaded.asset_checks or [])], selection=selection,
                              resources=loaded.resources, tags=tags, raise_on_error=raise_on_error)

    return run
