"""Publishing the analysts' copy (`b24_1c_assets.analytics_copy`) as the last step of every sync run.

Why an asset at the end of each job rather than a run-success sensor: it runs inside the run, under the same
`duckdb` pool as every writer, so it never races the next run for the working file; it is published only when
every step before it succeeded (a failed upstream step skips it, and the analysts keep the last good copy);
and it works wherever the job runs — `make demo`, tests and `dagster job execute` have no sensor daemon. A
sensor would run after the run gave up its pool slot, on the daemon's 60 s evaluation budget, and would
miss runs while the daemon is down.
"""

from pathlib import Path

import dagster as dg
import pandas as pd

from b24_1c_assets.analytics_copy import analytics_copy_path, publish
from b24_1c_assets.lib import tables
from b24_1c_assets.lib.landing import OWNERS
from b24_1c_assets.lib.resources import WarehouseResource


def build_analytics_copy(upstream: list[dg.AssetKey]) -> dg.AssetsDefinition:
    """The publishing asset, downstream of `upstream` (every other asset of the location, so in any job
    that selects it, it runs last)."""

    @dg.asset(
        key=tables.ANALYST_COPY.key,
        deps=[k for k in upstream if k != tables.ANALYST_COPY.key],
        group_name="analytics",
        kinds={"duckdb"},
        owners=OWNERS,
        pool="duckdb",
        tags={"flow": "analytics"},
    )
    def analyst_copy(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        """The analysts' DuckDB file (`data/analytics/b24_1c.duckdb` beside the working file, or
        B24_1C_ANALYTICS_DUCKDB_PATH), one row per published table: the `analytics` views materialized,
        `client_master.*`, `receivables.*`, `sync.results`, `quality.rejects`. Written to a temporary file and
        renamed into place, so open analyst connections keep the old copy and never block a sync."""
        result = publish(warehouse.database, analytics_copy_path(warehouse.database), run_id=context.run.run_id)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(result.tables),
                "copy_file": f"{Path(result.path).parent.name}/{Path(result.path).name}",  # no machine path
                "size_mb": round(result.bytes / 1e6, 2),
                "publish_seconds": round(result.seconds, 2),
                "preview": dg.MetadataValue.md(
                    pd.DataFrame({"table": list(result.tables), "rows": list(result.tables.values())}).to_markdown(
                        index=False
                    )
                ),
            }
        )

    return analyst_copy
