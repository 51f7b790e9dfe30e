"""New deals of clients on hold are stopped: a sensor watches deal IDs and launches the hold flow."""

import dagster as dg
import duckdb
import pandas as pd

from b24_1c_assets.defs.crm_push.deal_holds import APPLY, PLAN
from b24_1c_assets.domain.credit_holds import new_deals_to_block
from b24_1c_assets.lib import tables
from b24_1c_assets.lib.resources import Bitrix24Resource, WarehouseResource

block_new_deals = dg.define_asset_job(
    "block_new_deals",
    selection=dg.AssetSelection.assets(tables.BITRIX24_DEALS.key, PLAN, APPLY),
    description="Re-read deals and apply holds: new deals of held clients go to Suspended with a comment.",
    tags={"flow": "new_deal_block"},
)


def held_companies(warehouse: WarehouseResource) -> set[int]:
    with warehouse.connect(read_only=True, lock_wait_seconds=5) as conn:  # a sensor tick must stay short
        if not tables.HOLD_STATE.exists(conn):
            return set()
        return {
            int(r[0])
            for r in conn.execute(f"SELECT company_id FROM {tables.HOLD_STATE} WHERE state = 'held'").fetchall()
        }


@dg.sensor(
    job=block_new_deals,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Watches new CRM deals (cursor = the last deal ID seen); when one belongs to a client on "
    "credit hold, launches block_new_deals so it is suspended at once with the reasons.",
)
def new_deal_block_sensor(
    context: dg.SensorEvaluationContext, bitrix24: Bitrix24Resource, warehouse: WarehouseResource
):
    client = bitrix24.client()
    if not context.cursor:  # first tick: start from now; older deals are the nightly run's business
        newest = client.call("crm.deal.list", {"order": {"ID": "DESC"}, "select": ["ID"], "start": -1}) or []
        return dg.SensorResult(
            cursor=str(newest[0]["ID"] if newest else 0), skip_reason="cursor initialised at the newest deal"
        )
    last_id = int(context.cursor)
    new = pd.DataFrame(
        client.export_all(
            "crm.deal.list", filter={">ID": last_id}, select=["ID", "COMPANY_ID", "CATEGORY_ID", "STAGE_ID"]
        )
    )
    if new.empty:
        return dg.SkipReason(f"no deal after ID {last_id}")
    try:
        held = held_companies(warehouse)
    except duckdb.IOException:  # a run is writing DuckDB: try again next tick, cursor unchanged
        return dg.SkipReason("DuckDB is busy; the new deals are checked on the next tick")
    newest = int(pd.to_numeric(new["ID"]).max())
    blocked = new_deals_to_block(new, held)
    if blocked.empty:
        return dg.SensorResult(cursor=str(newest), skip_reason=f"{len(new)} new deals, none of a held client")
    ids = ",".join(str(i) for i in blocked["ID"])
    return dg.SensorResult(
        cursor=str(newest),
        run_requests=[
            dg.RunRequest(
                run_key=f"block-new-deals-{newest}",
                tags={"trigger": "sensor", "flow": "new_deal_block", "deals": ids[:200]},
            )
        ],
    )


defs = dg.Definitions(jobs=[block_new_deals], sensors=[new_deal_block_sensor])
