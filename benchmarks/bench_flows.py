"""Calls each push flow uses: catalog -> CRM products, 1C invoices -> smart invoices, deals -> 1C orders.

Against the loopback sandbox (scale 200, BENCH_QUICK: 60). For each flow: the initial load, a rerun with no
change (must write nothing), and a rerun after changing a few records (item prices, invoice payments, deal
quantities). Figures are HTTP requests seen by the portal / the 1C server during the flow's own assets
(extracts run before, apart), and requests per changed record.
"""

from __future__ import annotations

import os
import tempfile
import time
from decimal import Decimal

SCALE, QUICK_SCALE = 200, 60
CHANGED = 5
FLOWS = {"catalog": "catalog_sync", "invoices": "invoice_sync", "orders": "order_sync"}


def _materialize(selection, tags=None):
    import dagster as dg

    from b24_1c_assets.definitions import defs
    from b24_1c_assets.lib.push_flow import DRY_RUN_TAG

    loaded = defs()
    # the sandbox 1C is written for real (orders): 1C writes are dry unless a run says otherwise
    result = dg.materialize(
        [*(loaded.assets or []), *(loaded.asset_checks or [])],
        selection=selection,
        resources=loaded.resources,
        tags={DRY_RUN_TAG: "false", **(tags or {})},
        raise_on_error=True,
    )
    return result


def _extracts():
    import dagster as dg

    return dg.AssetSelection.groups("bitrix24_raw", "onec_raw", "client_master")


def _count(sandbox, portal_from, onec_from) -> dict:
    portal = sandbox.portal.request_log[portal_from:]
    onec = sandbox.onec.request_log[onec_from:]
    commands = [m for e in portal for m in (e.get("commands") or [e.get("method")])]
    crm_writes = [m for m in commands if str(m).endswith((".add", ".update", ".set"))]
    return {
        "portal_http": len(portal),
        "portal_write_commands": len(crm_writes),
        "onec_http": len(onec),
        "onec_writes": sum(1 for e in onec if e["kind"] == "write"),
    }


def _run_flow(sandbox, group: str) -> dict:
    import dagster as dg

    portal_from, onec_from = len(sandbox.portal.request_log), len(sandbox.onec.request_log)
    started = time.perf_counter()
    _materialize(dg.AssetSelection.groups(group))
    figures = _count(sandbox, portal_from, onec_from)
    figures["seconds"] = round(time.perf_counter() - started, 2)
    return figures


def _change(sandbox, changed: int) -> dict[str, int]:
    """Change `changed` records per flow in the sandboxes; returns how many were changed."""
    from b24_1c_assets.domain.order_sync import deal_of_comment

    world, onec, portal = sandbox.world, sandbox.onec.state, sandbox.portal.state
    items = [world.guid("item", i.key) for i in world.items if not i.deleted][:changed]
    for price in onec.prices:
        if price["Номенклатура_Key"] in items:
            price["Цена"] = price["Цена"] + Decimal("1.00")
    store = onec.registers["AccumulationRegister_ОплатаСчетовИЗаказов"]
    paid = set()
    for record in list(portal.invoices.rows.values()):
        new_stage = f"DT31_{portal.default_invoice_category}:N"
        if record["stageId"] == new_stage and len(paid) < changed and record["xmlId"] in store.by_recorder:
            row = dict(
                store.by_recorder[record["xmlId"]][0],
                Сумма=Decimal(0),
                СуммаОплаты=Decimal(str(record["opportunity"])),
                Recorder=f"bench-{record['xmlId']}",
            )
            store.put(row["Recorder"], [row])
            paid.add(record["xmlId"])
    deals = sorted(
        {deal_of_comment(r.get("Комментарий")) for r in onec.objects["Document_ЗаказПокупателя"].values()} - {None}
    )[:changed]
    for deal in deals:
        portal.product_rows[deal][0]["QUANTITY"] = float(portal.product_rows[deal][0]["QUANTITY"]) + 1
    return {"catalog": len(items), "invoices": len(paid), "orders": len(deals)}


def measure(scale: int) -> dict:
    from b24_1c_assets.sandbox import start_sandbox

    sandbox = start_sandbox(scale=scale, rate=1000, burst=1000)
    saved = dict(os.environ)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ.update(sandbox.env())
            os.environ["B24_1C_DUCKDB_PATH"] = os.path.join(tmp, "bench.duckdb")
            os.environ["ONEC_EXCHANGE_DIR"] = os.path.join(tmp, "exchange")
            _materialize(_extracts())
            initial = {name: _run_flow(sandbox, group) for name, group in FLOWS.items()}
            _materialize(_extracts())
            unchanged = {name: _run_flow(sandbox, group) for name, group in FLOWS.items()}
            changed = _change(sandbox, CHANGED)
            _materialize(_extracts())
            after_change = {name: _run_flow(sandbox, group) for name, group in FLOWS.items()}
    finally:
        os.environ.clear()
        os.environ.update(saved)
        sandbox.stop()
    out = {"scale": scale, "flows": {}}
    for name in FLOWS:
        first, again, delta = initial[name], unchanged[name], after_change[name]
        n = changed[name] or 1
        http = delta["portal_http"] + delta["onec_http"]
        out["flows"][name] = {
            "initial": first,
            "no_change": again,
            "changed_records": changed[name],
            "after_change": delta,
            "http_per_changed_record": round(http / n, 2),
            "writes_per_changed_record": round((delta["portal_write_commands"] + delta["onec_writes"]) / n, 2),
        }
    return out


def main() -> dict:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    figures = measure(QUICK_SCALE if quick else SCALE)
    print(f"push flows at scale {figures['scale']} (HTTP requests during the flow's own assets)")
    print(
        f"{'flow':<10}{'initial http':>14}{'writes':>8}{'no-change http':>16}{'writes':>8}"
        f"{'changed':>9}{'http/rec':>10}{'writes/rec':>12}"
    )
    for name, f in figures["flows"].items():
        first, again = f["initial"], f["no_change"]
        print(
            f"{name:<10}{first['portal_http'] + first['onec_http']:>14}"
            f"{first['portal_write_commands'] + first['onec_writes']:>8}"
            f"{again['portal_http'] + again['onec_http']:>16}"
            f"{again['portal_write_commands'] + again['onec_writes']:>8}"
            f"{f['changed_records']:>9}{f['http_per_changed_record']:>10}{f['writes_per_changed_record']:>12}"
        )
    return figures


if __name__ == "__main__":
    main()
