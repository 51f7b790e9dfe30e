"""Benchmark: what a second extract costs when 1% of clients changed, against the first (full) one.

For each scale: the sandbox servers in their own process (`python -m b24_1c_assets.sandbox --control`, as in
bench_scale), the product's extract assets (every Bitrix24 and 1C raw table) run once in a fresh process — the
first run reads everything — then 1% of clients change on both sides over the real protocols (CRM:
crm.company.update of the company; 1C: the counterparty PATCHed and its latest posted shipment of the last 40
days unposted; which ones is read from the first run's DuckDB tables), and the extracts run again in another
fresh process. Figures per system and table: rows read, requests (each asset's metadata), and per run wall
seconds, the product's CPU seconds and peak RSS (the run's process alone) and the sandbox's CPU seconds.

The second run still re-reads the overlap (45 days of 1C documents and movements by default, 60 minutes of
CRM changes): its cost is the change plus the overlap, not the history. Catalogs, prices and 1C's Balance
are read whole every run.

Env: BENCH_INCREMENTAL_SCALES="10000" (add 100000 for the large run; ~30 min), BENCH_QUICK=1: 1000.
One run alone: `python -m benchmarks.bench_incremental --run` (the environment points it at a sandbox).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

from benchmarks.bench_scale import PROJECT_ROOT, SandboxProcess, _vm_hwm_bytes

SEED = 7
SHARE_CHANGED = 0.01


def _scales() -> list[int]:
    raw = os.environ.get("BENCH_INCREMENTAL_SCALES") or ("1000" if os.environ.get("BENCH_QUICK") else "10000")
    return [int(x) for x in raw.split(",") if x.strip()]


def _run_extracts(tags: dict | None = None) -> tuple[dict, float]:
    """Materialize every raw extract; {asset: {rows, requests}} and wall seconds."""
    import dagster as dg

    from b24_1c_assets.definitions import defs
    from b24_1c_assets.runner import QUIET

    loaded = defs()
    selection = dg.AssetSelection.groups("bitrix24_raw", "onec_raw")
    started = time.perf_counter()
    result = dg.materialize(
        [*loaded.assets, *loaded.asset_checks],
        selection=selection,
        resources=loaded.resources,
        tags=tags or {},
        raise_on_error=True,
        run_config=QUIET,
    )
    seconds = time.perf_counter() - started
    figures: dict = {}
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


def _run_in_child(tags: dict | None = None) -> dict:
    """One extract run in a fresh process: its tables' figures, wall and CPU seconds, peak RSS."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_incremental", "--run", json.dumps(tags or {})],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        check=True,
        timeout=4 * 3600,
    )
    return json.loads(done.stdout.strip().rsplit("\n", 1)[-1])


def _run_here(tags: dict) -> dict:
    cpu = time.process_time()
    tables, seconds = _run_extracts(tags)
    return {
        "tables": tables,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "peak_rss_mb": round(_vm_hwm_bytes() / 2**20),
    }


def _change_clients(webhook_url: str, odata_url: str, user: str, password: str, share: float) -> dict:
    """1% of clients changed over the protocols: CRM company commented; 1C counterparty PATCHed and its latest
    posted shipment of the last 40 days unposted. Which ones: from the first run's tables. Returns the counts."""
    from datetime import datetime, timedelta

    from b24_1c_assets import warehouse
    from b24_1c_assets.bitrix24 import Bitrix24Client
    from b24_1c_assets.lib import tables
    from b24_1c_assets.onec import OneCClient, odata
    from b24_1c_assets.sync.bitrix24_writes import WriteCommand, apply_commands

    step = max(1, round(1 / share))
    recent = datetime.now() - timedelta(days=40)
    with warehouse.connect(read_only=True) as conn:
        ids = conn.execute(f"SELECT CAST(ID AS BIGINT) i FROM {tables.BITRIX24_COMPANIES} ORDER BY i").fetchall()
        refs = conn.execute(f'SELECT "Ref_Key" FROM {tables.ONEC_COUNTERPARTIES} ORDER BY 1').fetchall()
        company_ids, parties = [r[0] for r in ids], [r[0] for r in refs]
        latest = dict(
            conn.execute(
                f'SELECT "Контрагент_Key", arg_max("Ref_Key", "Date") FROM {tables.ONEC_SHIPMENTS} '
                'WHERE "Posted" AND CAST("Date" AS TIMESTAMP) >= ? GROUP BY 1',
                [recent],
            ).fetchall()
        )
    crm = Bitrix24Client(webhook_url, rate=1000, burst=1000)
    commands = [
        WriteCommand(str(i), "crm.company.update", {"id": i, "fields": {"COMMENTS": "bench: changed"}})
        for i in company_ids[::step]
    ]
    apply_commands(crm, commands)
    onec = OneCClient(odata_url, user, password)
    unposted = 0
    for ref in parties[::step]:
        onec.update_counterparty(ref, {"Комментарий": "bench: changed"})
        if ref in latest:
            onec.unpost_document(odata.SHIPMENTS, latest[ref])
            unposted += 1
    return {
        "crm_companies": len(commands),
        "onec_counterparties": len(parties[::step]),
        "onec_shipments_unposted": unposted,
    }


def _by_system(figures: dict) -> dict:
    out: dict = defaultdict(lambda: {"rows": 0, "requests": 0})
    for asset, f in figures.items():
        system = asset.split("/")[0]
        out[system]["rows"] += f["rows"]
        out[system]["requests"] += f["requests"]
    return dict(out)


def measure(scale: int) -> dict:
    sandbox = SandboxProcess(scale)
    saved = dict(os.environ)
    runs = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            os.environ.update(sandbox.env)
            os.environ["B24_1C_DUCKDB_PATH"] = os.path.join(folder, "b24_1c.duckdb")
            os.environ["ONEC_EXCHANGE_DIR"] = os.path.join(folder, "exchange")
            for which in ("first", "second"):
                if which == "second":
                    env = sandbox.env
                    changed = _change_clients(
                        env["B24_WEBHOOK_URL"],
                        env["ONEC_ODATA_URL"],
                        env["ONEC_USERNAME"],
                        env["ONEC_PASSWORD"],
                        SHARE_CHANGED,
                    )
                sandbox_cpu = sandbox.cpu_seconds()
                runs[which] = _run_in_child()
                runs[which]["sandbox_cpu_seconds"] = round(sandbox.cpu_seconds() - sandbox_cpu, 1)
                print(f"[{scale}] {which} run: {runs[which]['seconds']} s", file=sys.stderr, flush=True)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        sandbox.stop()
    first, second = runs["first"]["tables"], runs["second"]["tables"]
    summary = {
        which: {k: v for k, v in runs[which].items() if k != "tables"} | _by_system(runs[which]["tables"])
        for which in runs
    }
    return {
        "scale": scale,
        "parties": sandbox.world["counts"]["parties"],
        "changed": changed,
        **summary,
        "tables": {asset: {"first": first[asset], "second": second.get(asset)} for asset in sorted(first)},
    }


def main() -> dict:
    figures = {"runs": [measure(scale) for scale in _scales()]}
    for run in figures["runs"]:  # one file per scale, so the long run's figures stay when the short one reruns
        out = PROJECT_ROOT / "data" / "bench" / f"incremental_{run['scale']}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(run, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print("Second extract with 1% of clients changed vs the first (the product's process; sandbox apart)")
    print(
        f"{'scale':>8} {'run':<7}{'seconds':>9}{'CPU s':>8}{'peak MB':>9}{'CRM rows':>10}{'CRM calls':>10}"
        f"{'1C rows':>10}{'1C requests':>12}"
    )
    for run in figures["runs"]:
        for which in ("first", "second"):
            f = run[which]
            print(
                f"{run['scale']:>8} {which:<7}{f['seconds']:>9}{f['cpu_seconds']:>8}{f['peak_rss_mb']:>9}"
                f"{f.get('bitrix24', {}).get('rows', 0):>10}"
                f"{f.get('bitrix24', {}).get('requests', 0):>10}{f.get('onec', {}).get('rows', 0):>10}"
                f"{f.get('onec', {}).get('requests', 0):>12}"
            )
        print(f"{'':>8} changed: {run['changed']}")
        print(
            f"{'':>8} sandbox CPU s (its own process): first {run['first']['sandbox_cpu_seconds']}, "
            f"second {run['second']['sandbox_cpu_seconds']}"
        )
        incremental = {a: t for a, t in run["tables"].items() if t["second"] and t["second"]["incremental"]}
        for asset, t in incremental.items():
            print(
                f"{'':>10}{asset:<32} rows {t['first']['rows']:>9} -> {t['second']['rows']:<9} "
                f"requests {t['first']['requests']:>6} -> {t['second']['requests']}"
            )
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--run":
        print(json.dumps(_run_here(json.loads(sys.argv[2])), ensure_ascii=False))
    else:
        main()
