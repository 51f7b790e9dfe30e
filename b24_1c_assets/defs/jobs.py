"""Jobs: `full_sync` (everything, in order, closing a receivables day) and `incremental_sync` (the parts driven
by CRM changes: deals, companies, deal holds, orders).

`full_sync` mixes unpartitioned assets with the daily-partitioned receivables assets, so a run needs a
partition. Schedules and the UI pass one explicitly; a run started without one (`dagster job execute -j
full_sync`, the launchpad left as it is) closes the current Moscow day, read when the code location loads.
"""

from __future__ import annotations

import dagster as dg

from b24_1c_assets.lib.partitions import daily_partitions

PARTITION_TAG = "dagster/partition"

# Steps run in their own processes (a crash or leak in one never takes the run down), forked from a server
# that has already imported the location: a step starts in well under a second instead of ~3 s.
FORKSERVER = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": ["b24_1c_assets.definitions"]}}},
    name="forkserver_multiprocess")

RECEIVABLES = dg.AssetSelection.groups("receivables")
SNAPSHOT_FRESHNESS_CHECK = dg.AssetCheckKey(dg.AssetKey(["receivables", "receivables_snapshot"]), "freshness_check")

# What a CRM change can make stale: the CRM extracts a deal/company touches, the client master, and the flows
# writing back (1C counterparties and orders from CRM, 1C companies to CRM, deal holds). Receivables and
# catalogs are nightly business.
INCREMENTAL = (
    dg.AssetSelection.assets(dg.AssetKey(["bitrix24", "deals"]), dg.AssetKey(["bitrix24", "companies"]),
                             dg.AssetKey(["bitrix24", "requisites"]), dg.AssetKey(["bitrix24", "products"]))
    | dg.AssetSelection.groups("client_master", "company_sync", "order_sync")
    | dg.AssetSelection.assets(dg.AssetKey(["crm_push", "deal_hold_plan"]), dg.AssetKey(["crm_push", "deal_holds"]))
)
# The 1C side an incremental run needs fresh: counterparties/contracts/orders it matches and writes against.
INCREMENTAL_1C = dg.AssetSelection.assets(
    *[dg.AssetKey(["onec", name]) for name in ("counterparties", "contracts", "items", "customer_orders",
                                                "shipments")])


# Every job ends by publishing the analysts' copy (defs/analytics/publish.py); full_sync selects it with all().
ANALYST_COPY = dg.AssetSelection.assets(dg.AssetKey(["analytics", "analyst_copy"]))


def current_day() -> str:
    """The receivables day a run without an explicit partition closes: today in Moscow."""
    return daily_partitions.get_last_partition_key()


def build_full_sync() -> dg.UnresolvedAssetJobDefinition:
    """`full_sync`, with today's partition as its default (built when the location loads)."""
    return dg.define_asset_job(
        "full_sync",
        # the freshness check is the sensor's business: inside the run it would only race the snapshot
        selection=dg.AssetSelection.all() - dg.AssetSelection.checks(SNAPSHOT_FRESHNESS_CHECK),
        description="Everything, in order: extracts from Bitrix24 and 1C into DuckDB, then the flows built on "
                    "them; closes one receivables day (default: today in Moscow, at code load).",
        tags={"flow": "full_sync", PARTITION_TAG: current_day()},
        partitions_def=daily_partitions,
        executor_def=FORKSERVER,
    )


incremental_sync = dg.define_asset_job(
    "incremental_sync",
    selection=INCREMENTAL | INCREMENTAL_1C | ANALYST_COPY,
    description="CRM changes through: deals, companies and requisites re-read, the client master rebuilt, "
                "counterparties and orders written to 1C, companies and deal holds written back to the CRM.",
    tags={"flow": "incremental_sync"},
    executor_def=FORKSERVER,
)

full_sync = build_full_sync()

defs = dg.Definitions(jobs=[full_sync, incremental_sync])
