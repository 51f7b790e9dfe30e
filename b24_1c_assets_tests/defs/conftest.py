"""`run_flow`: materialize an AssetSelection of the location with no partition key (the flows are not
partitioned; the shared `run_assets` always passes one and iterates tuple-shaped selections).

Runs write for real into the sandbox (`b24_1c/dry_run=false`) unless a test's tags say otherwise: without the
tag, writes into 1C would be dry (settings onec_writes.toml [dry_run])."""

import dagster as dg
import pytest

from b24_1c_assets.lib.push_flow import DRY_RUN_TAG


@pytest.fixture
def run_flow(sandbox):
    from b24_1c_assets.definitions import defs

    def run(selection, *, tags: dict | None = None, raise_on_error: bool = True):
        loaded = defs()
        return dg.materialize(
            [*(loaded.assets or []), *(loaded.asset_checks or [])],
            selection=selection,
            resources=loaded.resources,
            tags={DRY_RUN_TAG: "false", **(tags or {})},
            raise_on_error=raise_on_error,
        )

    return run
