"""A new deal of a client on hold is suspended as soon as the sensor sees it, with the reasons."""

import dagster as dg
import duckdb

from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.defs.receivables.sensors import new_deal_block_sensor

SELECTION = dg.AssetSelection.groups("bitrix24_raw", "onec_raw", "client_master", "receivables", "crm_push")


def test_new_deal_of_held_client_is_suspended_and_others_are_left_alone(sandbox, run_assets, tmp_path):
    assert run_assets(SELECTION).success
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        held = conn.execute("SELECT company_id FROM receivables.hold_state WHERE state = 'held' LIMIT 1").fetchone()[0]
        fine = conn.execute("SELECT company_id FROM receivables.hold_state WHERE state = 'clear' LIMIT 1").fetchone()[0]
    from b24_1c_assets.definitions import defs

    resources = defs().resources

    first = new_deal_block_sensor(dg.build_sensor_context(resources=resources))
    assert not first.run_requests and first.cursor

    client = Bitrix24Client(sandbox.portal.webhook_url, rate=50, burst=50)
    deal_ok = client.call(
        "crm.deal.add",
        {"fields": {"TITLE": "Новая поставка", "COMPANY_ID": fine, "CATEGORY_ID": 1, "STAGE_ID": "C1:NEW"}},
    )
    tick = new_deal_block_sensor(dg.build_sensor_context(cursor=first.cursor, resources=resources))
    assert not tick.run_requests  # a deal of a client in good standing launches nothing

    deal_held = client.call(
        "crm.deal.add", {"fields": {"TITLE": "Ещё заказ", "COMPANY_ID": held, "CATEGORY_ID": 1, "STAGE_ID": "C1:NEW"}}
    )
    tick = new_deal_block_sensor(dg.build_sensor_context(cursor=tick.cursor, resources=resources))
    assert len(tick.run_requests) == 1 and str(deal_held) in tick.run_requests[0].tags["deals"]

    assert run_assets(["bitrix24/deals", "crm_push/deal_hold_plan", "crm_push/deal_holds"]).success
    assert sandbox.portal.state.record("deal", int(deal_held))["STAGE_ID"] == "C1:HOLD"
    assert sandbox.portal.state.record("deal", int(deal_ok))["STAGE_ID"] == "C1:NEW"
    comments = [
        c["COMMENT"]
        for c in sandbox.portal.state.timeline
        if c["ENTITY_TYPE"] == "deal" and c["ENTITY_ID"] == str(deal_held)
    ]
    assert len(comments) == 1 and "кредитном стопе" in comments[0]
