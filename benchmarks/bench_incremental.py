"""Benchmark: what a second extract costs when 1% of clients changed, against the first (full) one.

For each scale: a generated world in the sandbox (in this process), the product's extract assets (every
Bitrix24 and 1C raw table) run once — the first run reads everything — then 1% of clients change on both
sides over the real protocols (CRM: crm.company.update of the company; 1C: the counterparty PATCHed and its
latest shipment in the overlap window unposted), and the extracts run again. Figures per system and table:
rows read, requests, seconds of the first and the second run (from `sync.extract_state` for the incremental
tables, from each asset's metadata for the tables read whole).

The second run still re-reads the overlap (45 days of 1C documents and movements by default, 60 minutes of
CRM changes): its cost is the change plus the overlap, not the history. Catalogs, prices and 1C's Balance
are read whole every run.

Env: BENCH_INCREMENTAL_SCALES="10000" (add 100000 for the large run; ~30 min), BENCH_QUICK=1: 1000.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from collections import defaultdict

SEED = 7
SHARE_CHANGED = 0.01


def _scales() -> list[int]:
    raw = os.environ.get("BENCH_INCREMENTAL_SCALES") or ("1000" if os.environ.get("BENCH_QUICK") else "10000")
    return [int(x) for x in raw.split(",") if x.strip()]


def _run_extracts(tags: dict | None = None) -> tuple[dict, float]:
    """Materialize every raw extract; {asset: {rows, requests}} and wall seconds."""
    import dagster as dg

    from b24_1c_assets.definitions import defs

    loaded = defs()
    selection = dg.AssetSelection.groups("bitrix24_raw", "onec_raw")
    started = time.perf_counter()
    result = dg.materialize(
        [*loaded.assets, *loaded.asset_checks],
        selection=selection,
        resources=loaded.resources,
        tags=tags or {},
        raise_on_error=True,
    )
    seconds = time.perf_counter() - started
    figures = {}
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        rows = meta.get("rows_read", meta.get("dagster/row_count", 0))
        figures["/".join(mat.asset_key.path)] = {
            "rows": int(rows or 0),
            "requests": int(meta.get("api_calls", 0) or 0),
            "incremental": not meta.get("full_read", True),
        }
    return figures, seconds


def _change_clients(sandbox, world, share: float) -> dict:
    """1% of clients changed over the protocols: CRM company renamed; 1C counterparty PATCHed and its latest
    posted shipment in the overlap unposted. Returns what was changed."""
    from datetime import datetime, timedelta

    from b24_1c_assets.bitrix24 import Bitrix24Client
    from b24_1c_assets.onec import OneCClient, odata
    from b24_1c_assets.sync.bitrix24_writes import WriteCommand, apply_commands

    portal_ids = sorted(int(i) for i in sandbox.portal.state.tables["company"].rows)
    step = max(1, round(1 / share))
    crm = Bitrix24Client(sandbox.portal.webhook_url, rate=1000, burst=1000)
    commands = [
        WriteCommand(str(i), "crm.company.update", {"id": i, "fields": {"COMMENTS": "bench: changed"}})
        for i in portal_ids[::step]
    ]
    apply_commands(crm, commands)
    onec = OneCClient(sandbox.onec.odata_url, sandbox.onec.username, sandbox.onec.password)
    parties = sorted(sandbox.onec.state.objects["Catalog_Контрагенты"])[::step]
    recent = datetime.now() - timedelta(days=40)
    latest: dict[str, tuple] = {}
    for ref, rec in sandbox.onec.state.objects["Document_РасходнаяНакладная"].items():
        at = datetime.fromisoformat(str(rec["Date"])[:19])
        party = rec.get("Контрагент_Key")
        if rec.get("Posted") and at >= recent and (party not in latest or at > latest[party][0]):
            latest[party] = (at, ref)
    unposted = 0
    for ref in parties:
        onec.update_counterparty(ref, {"Комментарий": "bench: changed"})
        if ref in latest:
            onec.unpost_document(odata.SHIPMENTS, latest[ref][1])
            unposted += 1
    return {"crm_companies": len(commands), "onec_counterparties": len(parties), "onec_shipments_unposted": unposted}


def _by_system(figures: dict) -> dict:
    out: dict = defaultdict(lambda: {"rows": 0, "requests": 0})
    for asset, f in figures.items():
        system = asset.split("/")[0]
        out[system]["rows"] += f["rows"]
        out[system]["requests"] += f["requests"]
    return dict(out)


def measure(scale: int) -> dict:
    from b24_1c_assets.sandbox import start_sandbox
    from b24_1c_assets.sandbox.bitrix24_portal import DEFAULT_OPERATING_COSTS
    from b24_1c_assets.sandbox.world import generate

    world = generate(seed=SEED, scale=scale)
    sandbox = start_sandbox(
        world=world, rate=1000, burst=1000, b24_operating_costs={verb: 0.0 for verb in DEFAULT_OPERATING_COSTS}
    )
    gc.collect()
    gc.freeze()  # the seeded world: millions of long-lived objects the cyclic GC need not rescan
    with tempfile.TemporaryDirectory() as folder:
        saved = dict(os.environ)
        os.environ.update(sandbox.env())
        os.environ["B24_1C_DUCKDB_PATH"] = os.path.join(folder, "b24_1c.duckdb")
        os.environ["ONEC_EXCHANGE_DIR"] = os.path.join(folder, "exchange")
        try:
            first, first_s = _run_extracts()
            changed = _change_clients(sandbox, world, SHARE_CHANGED)
            second, second_s = _run_extracts()
        finally:
            os.environ.clear()
            os.environ.update(saved)
            sandbox.stop()
            gc.unfreeze()
    return {
        "scale": scale,
        "parties": len(world.parties),
        "changed": changed,
        "first": {"seconds": round(first_s, 1), **_by_system(first)},
        "second": {"seconds": round(second_s, 1), **_by_system(second)},
        "tables": {asset: {"first": first[asset], "second": second.get(asset)} for asset in sorted(first)},
    }


def main() -> dict:
    figures = {"runs": [measure(scale) for scale in _scales()]}
    print("Second extract with 1% of clients changed vs the first (sandbox in process; rows read / requests)")
    print(f"{'scale':>8} {'run':<7}{'seconds':>9}{'CRM rows':>10}{'CRM calls':>10}{'1C rows':>10}{'1C requests':>12}")
    for run in figures["runs"]:
        for which in ("first", "second"):
            f = run[which]
            print(
                f"{run['scale']:>8} {which:<7}{f['seconds']:>9}{f.get('bitrix24', {}).get('rows', 0):>10}"
                f"{f.get('bitrix24', {}).get('requests', 0):>10}{f.get('onec', {}).get('rows', 0):>10}"
                f"{f.get('onec', {}).get('requests', 0):>12}"
            )
        print(f"{'':>8} changed: {run['changed']}")
        incremental = {a: t for a, t in run["tables"].items() if t["second"] and t["second"]["incremental"]}
        for asset, t in incremental.items():
            print(
                f"{'':>10}{asset:<32} rows {t['first']['rows']:>9} -> {t['second']['rows']:<9} "
                f"requests {t['first']['requests']:>6} -> {t['second']['requests']}"
            )
    return figures


if __name__ == "__main__":
    main()
