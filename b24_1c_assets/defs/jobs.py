"""Jobs: `full_sync` (everything, in order, closing a receivables day) and `incremental_sync` (the assets tagged
INCREMENTAL_SYNC where they are defined: what a CRM change can make stale, and the 1C side it writes against).

`full_sync` mixes unpartitioned assets with the daily-partitioned receivables assets, so a run needs a
partition, and it is chosen when the run is launched: the nightly schedule passes its tick's Moscow day, the UI's
partition picker lists the days as of the click (today is the last one), and a one-off
`dagster job execute -j full_sync` (a fresh process: loading is launching) closes today in Moscow. A code
server that serves the location for weeks bakes no day into the job, so nothing it holds goes stale.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext

from b24_1c_assets.lib import tables
from b24_1c_assets.lib.job_tags import INCREMENTAL_SYNC_TAG
from b24_1c_assets.lib.partitions import daily_partitions

PARTITION_TAG = "dagster/partition"

# Steps run in their own processes (a crash or leak in one never takes the run down), forked from a server
# that has already imported the location: a step starts in well under a second instead of ~3 s.
FORKSERVER = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": ["b24_1c_assets.definitions"]}}}, name="forkserver_multiprocess"
)

SNAPSHOT_FRESHNESS_CHECK = dg.AssetCheckKey(tables.RECEIVABLES_SNAPSHOT.key, "freshness_check")

# Every job ends by publishing the analysts' copy (defs/analytics/publish.py); full_sync selects it with all().
ANALYST_COPY = dg.AssetSelection.assets(tables.ANALYST_COPY.key)
# Membership is declared on the assets (lib/job_tags.py); receivables and catalogs are nightly business.
INCREMENTAL = dg.AssetSelection.tag(INCREMENTAL_SYNC_TAG, "true")


def current_day() -> str:
    """The receivables day a run without an explicit partition closes: today in Moscow."""
    return daily_partitions.get_last_partition_key()


def served_by_a_code_server() -> bool:
    """True when a code server (the webserver's or the daemon's, named in workspace.yaml) loads the location to
    serve it for as long as it runs; False for a load in the process that runs the job (`dagster job execute`,
    the runner, tests). Dagster's load context carries the location's name only in the first case (this import
    is not public API: dagster is pinned, and b24_1c_assets_tests/defs/automation/test_schedules.py covers it)."""
    return DefinitionsLoadContext.get().code_location_name is not None


def build_full_sync() -> dg.UnresolvedAssetJobDefinition:
    """`full_sync`; loaded to run at once, today's Moscow day is its default partition (load = launch)."""
    default_day = {} if served_by_a_code_server() else {PARTITION_TAG: current_day()}
    return dg.define_asset_job(
        "full_sync",
        # the freshness check is the sensor's business: inside the run it would only race the snapshot
        selection=dg.AssetSelection.all() - dg.AssetSelection.checks(SNAPSHOT_FRESHNESS_CHECK),
        description="Everything, in order: extracts from Bitrix24 and 1C into DuckDB, then the flows built on "
        "them; closes one receivables day (pick it in the partition picker; the CLI closes today "
        "in Moscow).",
        tags={"flow": "full_sync", **default_day},
        executor_def=FORKSERVER,
    )


incremental_sync = dg.define_asset_job(
    "incremental_sync",
    selection=INCREMENTAL | ANALYST_COPY,
    description="CRM changes through: deals, companies and requisites re-read, the client master rebuilt, "
    "counterparties and orders written to 1C, companies and deal holds written back to the CRM.",
    tags={"flow": "incremental_sync"},
    executor_def=FORKSERVER,
)

full_sync = build_full_sync()

defs = dg.Definitions(jobs=[full_sync, incremental_sync])
