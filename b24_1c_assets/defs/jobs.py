"""Jobs: `full_sync` materializes the whole product in dependency order."""

from __future__ import annotations

import dagster as dg

full_sync = dg.define_asset_job(
    "full_sync",
    selection=dg.AssetSelection.all(),
    description="Everything, in order: extracts from Bitrix24 and 1C into DuckDB, then the flows built on them.",
    tags={"flow": "full_sync"},
)

defs = dg.Definitions(jobs=[full_sync])
