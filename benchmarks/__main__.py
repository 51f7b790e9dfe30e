"""`python -m benchmarks [NAME ...]`: run every `benchmarks/bench_*.py` module's `main()` in name order.

NAME may be `world` or `bench_world`. `--quick` (or env `BENCH_QUICK=1`) asks the benches for small sizes.
A failing bench is reported and the others still run. Figures of this run are merged into
`data/bench/results.json` (override with env `BENCH_RESULTS`), one entry per bench, so a partial run keeps
the other benches' last figures. Exit status 1 when any bench failed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

import benchmarks

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = PROJECT_ROOT / "data" / "bench" / "results.json"


def discover() -> list[str]:
    """Module names of all benches, in name order."""
    return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))


def select(names: list[str], available: list[str]) -> list[str]:
    if not names:
        return available
    chosen = []
    for name in names:
        module = name if name.startswith("bench_") else f"bench_{name}"
        if module not in available:
            raise SystemExit(f"unknown bench {name!r}; available: {', '.join(available)}")
        if module not in chosen:
            chosen.append(module)
    return sorted(chosen)


def run_one(module_name: str) -> dict:
    """Import and run one bench; never raises (except Ctrl-C): a failure becomes an entry with the error."""
    started = time.perf_counter()
    entry: dict = {"finished": None}
    try:
        module = importlib.import_module(f"benchmarks.{module_name}")
        figures = module.main()
        entry.update(ok=True, figures=figures)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - one broken bench must not stop the others (SystemExit too)
        traceback.print_exc()
        entry.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:2000])
    entry["seconds"] = round(time.perf_counter() - started, 2)
    entry["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    return entry


def write_results(path: Path, entries: dict[str, dict], quick: bool) -> None:
    """Merge this run's entries into the results file (atomic replace)."""
    results: dict = {}
    if path.exists():
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            results = {}  # a broken file from an interrupted run: start over
    results.setdefault("benches", {})
    for name, entry in entries.items():
        results["benches"][name] = {**entry, "quick": quick}
    results["updated"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benches to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes (same as BENCH_QUICK=1)")
    parser.add_argument("--list", action="store_true", help="list the benches and exit")
    args = parser.parse_args(argv)
    available = discover()
    if args.list:
        print("\n".join(available))
        return 0
    chosen = select(args.names, available)
    if args.quick:
        os.environ["BENCH_QUICK"] = "1"
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    results_path = Path(os.environ.get("BENCH_RESULTS") or DEFAULT_RESULTS)

    entries: dict[str, dict] = {}
    for name in chosen:
        print(f"\n=== {name}{' (quick)' if quick else ''} ===", flush=True)
        entries[name] = run_one(name)
        write_results(results_path, {name: entries[name]}, quick)  # keep figures even if a later bench hangs

    print("\n=== summary ===")
    width = max(len(n) for n in chosen) if chosen else 10
    for name, entry in entries.items():
        status = "ok" if entry["ok"] else f"FAILED: {entry['error'].splitlines()[0][:100]}"
        print(f"{name:<{width}}  {entry['seconds']:>8.1f} s  {status}")
    # repository-relative when inside it: this line is pasted into notes and the README
    shown = results_path.resolve()
    print(f"figures: {shown.relative_to(PROJECT_ROOT) if shown.is_relative_to(PROJECT_ROOT) else shown}")
    return 0 if all(e["ok"] for e in entries.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
