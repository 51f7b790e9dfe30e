"""The whole full_sync, stage by stage, at 1,000 / 10,000 / 100,000 parties (default 1,000 and 10,000): what
b24-1c itself costs, measured apart from the sandbox that stands in for the portal and 1C.

For each scale a fresh interpreter starts the sandbox servers in their own process
(`python -m b24_1c_assets.sandbox --control`, world `generate(seed=7, scale)` with its documents), then
materializes full_sync's assets one stage at a time (the order the job runs them) against a DuckDB file in a
temporary folder. The portal's limit is raised to 1000 req/s with a bucket of 1000 and its operating-time
charge lifted (as bench_flows does): at the real 2 req/s the pushes are bound by the limit, not by our code
(bench_receivables_push measures that case), and 100k would take hours of sleeping.

Each stage runs in a fresh process, as full_sync's executor runs every step in its own (defs/jobs.py). Per
stage: wall seconds; the product's CPU seconds (the stage process from its definitions loaded: assets, Dagster,
pandas, DuckDB's threads) and peak RSS (its VmHWM, imports included); the sandbox's CPU seconds and peak RSS
apart (its /proc entries, RSS sampled every 20 ms); HTTP calls the portal and the 1C server logged (the sandbox
answers `figures` on its stdin); and the optimum for what the stage did: every list it touched read once as a
full export (50 records a page, 50 pages chained per batch call: ceil(rows/2500)), every 1C set read once in the
client's largest pages (ceil(rows/20000)), portal write commands packed 50 per batch call, 1C writes one request
each (no batch). Between scales: growth ratios of seconds, CPU seconds, calls and peak RSS (linear = the size
ratio, 10; flagged above 11).

Env: `BENCH_SCALES=1000,10000,100000` (default `1000,10000`; BENCH_QUICK: `1000`); `BENCH_SCALE_SKIP=orders`
leaves stages out (names as in STAGES, `push: ` optional). Output: a markdown table on stdout,
`data/bench/scale_<n>.json` per scale and `data/bench/scale.json` (also merged into results.json by
`python -m benchmarks`). One scale alone, e.g. the long one in the background:
`nohup python -m benchmarks.bench_scale --measure 100000 &` (stage lines on stderr, figures so far in
`scale_100000.partial.json`), then `python -m benchmarks.bench_scale --report 1000,10000,100000`.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
OUT = PROJECT_ROOT / "data" / "bench" / "scale.json"
SEED = 7
RATE = BURST = 1000
PAGE = 50  # Bitrix24 list page; also commands per batch call
FLAG_RATIO = 11.0  # the bound: at most x11 for x10 data
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
OPERATING_VERBS = ("*.list", "*.get", "*.add", "*.update", "*.set", "*.delete")  # the portal's charged verbs

# (stage, groups, asset keys): full_sync's assets in the order the job runs them.
STAGES = [
    ("extract Bitrix24", ["bitrix24_raw"], []),
    ("extract 1C", ["onec_raw"], []),
    ("clean and match", ["client_master"], []),
    ("receivables", ["receivables"], []),
    ("push: company receivables", [], ["crm_push/company_receivables_plan", "crm_push/company_receivables"]),
    ("push: deal holds", [], ["crm_push/deal_hold_plan", "crm_push/deal_holds"]),
    ("push: company sync", ["company_sync"], []),
    ("push: orders", ["order_sync"], []),
    ("push: invoices", ["invoice_sync"], []),
    ("push: catalog", ["catalog_sync"], []),
    ("analytics views", ["analytics"], []),
]


def _rss_bytes(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE_SIZE


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process so far (/proc/<pid>/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class PeakRss:
    """Highest RSS of each process seen while active (VmHWM cannot be reset per stage, so a thread samples statm)."""

    def __init__(self, *pids: int | str, interval: float = 0.02):
        self.interval, self.pids = interval, pids or ("self",)
        self.peak = dict.fromkeys(self.pids, 0)
        self.start = dict.fromkeys(self.pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def _sample(self) -> None:
        for pid in self.pids:
            self.peak[pid] = max(self.peak[pid], _rss_bytes(pid))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> PeakRss:
        self.start = {pid: _rss_bytes(pid) for pid in self.pids}
        self.peak = dict(self.start)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


class SandboxProcess:
    """The sandbox servers in their own interpreter (`python -m b24_1c_assets.sandbox --control`): the product's
    environment, the world it serves, the calls it logged per stage, its CPU and memory apart from ours."""

    def __init__(self, scale: int):
        costs = [arg for verb in OPERATING_VERBS for arg in ("--operating-cost", f"{verb}=0")]
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "b24_1c_assets.sandbox", "--control", "--seed", str(SEED), "--scale", str(scale)]
            + ["--rate", str(RATE), "--burst", str(BURST), *costs],
            cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.pid = self.process.pid
        self.env: dict[str, str] = {}
        for line in self.process.stdout:
            name, _, value = line.rstrip("\n").partition("=")
            if name == "SANDBOX_WORLD":
                self.world = json.loads(value)
                break
            self.env[name] = value
        else:
            raise RuntimeError(f"the sandbox process ended before serving (exit code {self.process.wait()})")
        self.start_seconds, self.start_cpu_seconds = time.perf_counter() - started, self.cpu_seconds()

    def cpu_seconds(self) -> float:
        return _cpu_seconds(self.pid)

    def take_figures(self) -> dict:
        """The calls both servers logged since the last take (the sandbox clears its logs)."""
        self.process.stdin.write("figures\n")
        self.process.stdin.flush()
        for line in self.process.stdout:
            name, _, value = line.rstrip("\n").partition("=")
            if name == "SANDBOX_FIGURES":
                return json.loads(value)
        raise RuntimeError(f"the sandbox process ended (exit code {self.process.wait()})")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()  # end of input: the sandbox stops its servers and exits
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _vm_hwm_bytes() -> int:
    """This process's peak RSS so far (VmHWM)."""
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def run_stage(name: str) -> dict:
    """One stage in this process (`--stage NAME`, environment set by `measure`): materialize its assets, return
    what it did, its CPU seconds and its peak RSS. full_sync runs every step in its own process (the forkserver
    executor, defs/jobs.py), so a stage's memory is its own, not what earlier stages left in the heap."""
    import dagster as dg

    from b24_1c_assets.definitions import defs
    from b24_1c_assets.lib.partitions import daily_partitions
    from b24_1c_assets.lib.push_flow import DRY_RUN_TAG
    from b24_1c_assets.runner import QUIET

    groups, keys = next((g, k) for n, g, k in STAGES if n == name)
    loaded = defs()
    everything = [*(loaded.assets or []), *(loaded.asset_checks or [])]
    graph = loaded.resolve_asset_graph()
    selection = (
        dg.AssetSelection.groups(*groups)
        if groups
        else dg.AssetSelection.assets(*[dg.AssetKey.from_user_string(k) for k in keys])
    )
    partitioned = any(graph.get(k).partitions_def is not None for k in selection.resolve(graph))
    loaded_rss, c0 = _rss_bytes(), time.process_time()
    result = dg.materialize(
        everything,
        selection=selection,
        resources=loaded.resources,
        partition_key=daily_partitions.get_last_partition_key() if partitioned else None,
        tags={DRY_RUN_TAG: "false"},  # the sandbox 1C is written for real
        raise_on_error=False,
        run_config=QUIET,
    )
    return {
        "ok": result.success,
        "failed_steps": [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"],
        "cpu_seconds": round(time.process_time() - c0, 2),  # the assets, Dagster, pandas, DuckDB's threads
        "peak_rss_mb": round(_vm_hwm_bytes() / 2**20),
        "rss_loaded_mb": round(loaded_rss / 2**20),  # imports and definitions, before the stage's work
        "rows": _stage_rows(result),
    }


def _stage_in_child(name: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_scale", "--stage", name],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        timeout=4 * 3600,
    )
    last = done.stdout.strip().rsplit("\n", 1)[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not last.startswith("{"):
        return {"ok": False, "failed_steps": [f"stage process exited {done.returncode}"], "cpu_seconds": 0.0}
    return json.loads(last)


def measure(scale: int, partial: Path | None = None) -> dict:
    """One scale: the sandbox in its own process, each stage in a fresh one. Returns the figures (also to
    `partial`, stage by stage, when given)."""
    sandbox = SandboxProcess(scale)
    counts, portal_rows_start, onec_rows_start = (
        sandbox.world["counts"],
        sandbox.world["crm_rows"],
        sandbox.world["onec_rows"],
    )
    saved = dict(os.environ)
    stages = []
    skip = {x.strip() for x in os.environ.get("BENCH_SCALE_SKIP", "").split(",") if x.strip()}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ.update(sandbox.env)
            os.environ["B24_1C_DUCKDB_PATH"] = os.path.join(tmp, "bench.duckdb")
            os.environ["ONEC_EXCHANGE_DIR"] = os.path.join(tmp, "exchange")
            for name, _, _ in STAGES:
                if name in skip or name.removeprefix("push: ") in skip:
                    continue
                sandbox.take_figures()  # whatever came before the stage is not the stage's
                t0, s0 = time.perf_counter(), sandbox.cpu_seconds()
                with PeakRss(sandbox.pid) as rss:
                    stage = _stage_in_child(name)
                seconds, sandbox_cpu = time.perf_counter() - t0, sandbox.cpu_seconds() - s0
                calls = sandbox.take_figures()
                stages.append(
                    {
                        "stage": name,
                        **stage,
                        "seconds": round(seconds, 2),
                        "sandbox_cpu_seconds": round(sandbox_cpu, 2),
                        "sandbox_peak_rss_mb": round(rss.peak[sandbox.pid] / 2**20),
                        "portal": calls["portal"],
                        "onec": calls["onec"],
                    }
                )
                if partial:  # a long run leaves its figures so far, should it be stopped
                    partial.parent.mkdir(parents=True, exist_ok=True)
                    partial.write_text(
                        json.dumps(
                            {"scale": scale, "counts": counts, "stages": stages}, ensure_ascii=False, default=str
                        ),
                        encoding="utf-8",
                    )
                print(
                    f"[{scale}] {name}: {seconds:.1f} s, cpu {stage['cpu_seconds']:.1f} s (sandbox "
                    f"{sandbox_cpu:.1f} s), portal {calls['portal']['http']}, 1C {calls['onec']['http']}, "
                    f"peak {stage.get('peak_rss_mb', 0)} MB (sandbox {rss.peak[sandbox.pid] / 2**20:.0f} MB)"
                    f"{'' if stage['ok'] else ' FAILED ' + ', '.join(stage['failed_steps'])}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        os.environ.clear()
        os.environ.update(saved)
        sandbox.stop()
    _add_optimum(stages, portal_rows_start, onec_rows_start)
    return {
        "scale": scale,
        "counts": counts,
        "crm_rows": portal_rows_start,
        "onec_rows": onec_rows_start,
        "sandbox_start_seconds": round(sandbox.start_seconds, 1),
        "sandbox_start_cpu_seconds": round(sandbox.start_cpu_seconds, 1),
        "stages": stages,
    }


def _stage_rows(result) -> dict[str, int]:
    out = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        rows = mat.metadata.get("dagster/row_count") or mat.metadata.get("dagster/partition_row_count")
        if rows is not None:
            out[mat.asset_key.to_user_string()] = rows.value
    return out


def _export_optimum(portal_rows: dict[str, int], listed: dict[str, int]) -> int:
    """ceil(rows/2500) batch calls for every table the stage listed (one call at least)."""
    table_of = {
        "crm.company.list": "company",
        "crm.contact.list": "contact",
        "crm.deal.list": "deal",
        "crm.requisite.list": "requisite",
        "crm.product.list": "product",
        "user.get": None,
        "crm.item.list": "smart_invoice",
    }
    total = 0
    for method in listed:
        table = table_of.get(method)
        total += max(1, math.ceil(portal_rows.get(table, 0) / (PAGE * PAGE))) if table else 1
    return total


def _add_optimum(stages: list[dict], portal_rows: dict[str, int], onec_rows: dict[str, int]) -> None:
    """Optimum calls per stage: exports at 2,500 records a call, 1C at one page per set (the client's
    pages grow to 20,000 rows), writes at 50 commands a call (portal) or one request each (1C has no batch)."""
    for s in stages:
        p, o = s["portal"], s["onec"]
        optimum_portal = _export_optimum(portal_rows, p["list_commands"]) + math.ceil(p["write_commands"] / PAGE)
        read_sets = {k.rsplit(" ", 1)[0] for k in o["by_set"] if k.endswith(" read") and not k.startswith("$")}
        optimum_onec = sum(max(1, math.ceil(onec_rows.get(name, 0) / 20000)) for name in read_sets) + o["writes"]
        s["optimum"] = {"portal": optimum_portal, "onec": optimum_onec}
        total, best = p["http"] + o["http"], optimum_portal + optimum_onec
        s["calls"], s["optimum_calls"] = total, best
        s["calls_over_optimum"] = round(total / best, 2) if best else None


def _measure_in_child(scale: int) -> None:
    """One scale in a fresh interpreter: its peak memory is its own, and it leaves `scale_<n>.json`."""
    subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_scale", "--measure", str(scale)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        check=True,
        timeout=4 * 3600,
    )


def growth(runs: list[dict]) -> list[dict]:
    """Ratios of seconds, CPU seconds and calls between consecutive scales, per stage."""
    out = []
    for small, large in zip(runs, runs[1:]):
        size = large["scale"] / small["scale"]
        larger = {s["stage"]: s for s in large["stages"]}
        for a, b in ((a, larger[a["stage"]]) for a in small["stages"] if a["stage"] in larger):
            row = {"stage": a["stage"], "from": small["scale"], "to": large["scale"], "size_ratio": size}
            for key in ("seconds", "cpu_seconds", "calls", "peak_rss_mb"):
                row[key] = round(b[key] / a[key], 1) if a[key] else None
            # wall seconds are left out: on a shared machine they measure the neighbours as much as us
            row["flag"] = any((row[k] or 0) > FLAG_RATIO * size / 10 for k in ("cpu_seconds", "calls"))
            out.append(row)
    return out


def markdown(runs: list[dict], ratios: list[dict]) -> str:
    lines = [
        "| scale | stage | wall s | CPU s | peak RSS MB | sandbox CPU s | sandbox RSS MB | portal calls | "
        "1C requests | optimum | calls/opt |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        if "sandbox_start_seconds" in r:
            lines.append(
                f"| {r['scale']:,} | (sandbox start: world + seeding, its own process) | "
                f"{r['sandbox_start_seconds']:.1f} | | | {r['sandbox_start_cpu_seconds']:.1f} | | | | | |"
            )
        for s in r["stages"]:
            mark = "" if s["ok"] else " (FAILED)"
            optimum = (
                f"{s['optimum_calls']:,} | {s.get('calls_over_optimum') or '–'}" if "optimum_calls" in s else "– | –"
            )
            lines.append(
                f"| {r['scale']:,} | {s['stage']}{mark} | {s['seconds']:.1f} | {s['cpu_seconds']:.1f} | "
                f"{s['peak_rss_mb']:,} | {s['sandbox_cpu_seconds']:.1f} | {s['sandbox_peak_rss_mb']:,} | "
                f"{s['portal']['http']:,} | {s['onec']['http']:,} | {optimum} |"
            )
        total_s = sum(s["seconds"] for s in r["stages"])
        total_cpu = sum(s["cpu_seconds"] for s in r["stages"])
        sandbox_cpu = sum(s["sandbox_cpu_seconds"] for s in r["stages"])
        peak = max((s["peak_rss_mb"] for s in r["stages"]), default=0)
        sandbox_peak = max((s["sandbox_peak_rss_mb"] for s in r["stages"]), default=0)
        label = "stages so far (partial run)" if r.get("partial") else "full_sync total"
        lines.append(
            f"| {r['scale']:,} | **{label}** | {total_s:.1f} | {total_cpu:.1f} | {peak:,} | {sandbox_cpu:.1f} | "
            f"{sandbox_peak:,} | {sum(s['portal']['http'] for s in r['stages']):,} | "
            f"{sum(s['onec']['http'] for s in r['stages']):,} | | |"
        )
    if ratios:
        lines += [
            "",
            "| stage | sizes | wall ratio | CPU ratio | calls ratio | RSS ratio | flag |",
            "|---|---|---:|---:|---:|---:|---|",
        ]
        for g in ratios:
            lines.append(
                f"| {g['stage']} | {g['to']:,}/{g['from']:,} | {g['seconds']} | {g['cpu_seconds']} | "
                f"{g['calls'] or '–'} | {g['peak_rss_mb']} | {'**> x11**' if g['flag'] else ''} |"
            )
    return "\n".join(lines)


def _scale_file(scale: int) -> Path:
    return OUT.with_name(f"scale_{scale}.json")


def report(scales: list[int]) -> dict:
    """Table and scale.json from the per-scale files the `--measure` runs left (a missing scale is skipped)."""
    runs = []
    for n in scales:  # a run still going (or stopped) is reported from the figures it left so far
        final, partial = _scale_file(n), OUT.with_name(f"scale_{n}.partial.json")
        if final.exists():
            runs.append(json.loads(final.read_text(encoding="utf-8")))
        elif partial.exists():
            run = {**json.loads(partial.read_text(encoding="utf-8")), "partial": True}
            for stage in run["stages"]:  # the optimum needs the start row counts, known only at the end
                stage.setdefault("calls", stage["portal"]["http"] + stage["onec"]["http"])
            runs.append(run)
    ratios = growth(runs)
    figures = {"rate": RATE, "burst": BURST, "seed": SEED, "runs": runs, "growth": ratios}
    OUT.write_text(json.dumps(figures, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(
        f"full_sync stage by stage (portal limit raised to {RATE}/s, bucket {BURST}); CPU s and peak RSS: b24-1c's "
        "process alone, the sandbox's own process apart"
    )
    print(markdown(runs, ratios))
    print(f"figures: {OUT.relative_to(PROJECT_ROOT)}")  # repository-relative: this text lands in the README
    return figures


def _scales(raw: str | None) -> list[int]:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    raw = raw or os.environ.get("BENCH_SCALES") or ("1000" if quick else "1000,10000")
    return [int(x) for x in raw.split(",") if x.strip()]


def main() -> dict:
    scales = _scales(None)
    for scale in scales:
        _measure_in_child(scale)
    return report(scales)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        size = int(sys.argv[2])
        figures = measure(size, OUT.with_name(f"scale_{size}.partial.json"))
        _scale_file(size).write_text(json.dumps(figures, ensure_ascii=False, default=str), encoding="utf-8")
        OUT.with_name(f"scale_{size}.partial.json").unlink(missing_ok=True)
        print(json.dumps(figures, ensure_ascii=False, default=str))
    elif len(sys.argv) == 3 and sys.argv[1] == "--stage":
        print(json.dumps(run_stage(sys.argv[2]), ensure_ascii=False, default=str))
    elif len(sys.argv) >= 2 and sys.argv[1] == "--report":
        report(_scales(sys.argv[2] if len(sys.argv) > 2 else None))
    else:
        main()
