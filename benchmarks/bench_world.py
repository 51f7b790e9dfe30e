"""World generation: seconds and peak memory at 1,000 / 10,000 / 100,000 parties (BENCH_QUICK: 1,000 / 10,000).

`seconds` is wall time, `cpu_seconds` the process's CPU time (the fair figure when the machine is shared).
Each size runs in a fresh interpreter, so its peak RSS (`resource.getrusage`, the whole process including the
interpreter, ~30 MB) belongs to that size alone and nothing is shared between sizes. Also reports the
document counts per party that other benches size themselves on (the receivables bench wants about ten
register movements per party: shipments + payment splits).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def measure(scale: int, seed: int = 7) -> dict:
    """Generate one world in this process and return its figures."""
    from b24_1c_assets.sandbox.world import generate

    started, cpu_started = time.perf_counter(), time.process_time()
    world = generate(seed=seed, scale=scale)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes
    parties = len(world.parties)
    counts = {
        "parties": parties,
        "deals": len(world.deals),
        "orders": len(world.orders),
        "invoices": len(world.invoices),
        "shipments": len(world.shipments),
        "payments": len(world.payments),
        "items": len(world.items),
    }
    return {
        "scale": scale,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
        "peak_rss_mb": round(peak_mb),
        "parties_per_s": round(parties / seconds) if seconds else None,
        "counts": counts,
        "per_party": {k: round(v / parties, 2) for k, v in counts.items() if k not in ("parties", "items")},
    }


def _measure_in_child(scale: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_world", "--measure", str(scale)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> dict:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    runs = [_measure_in_child(scale) for scale in (QUICK_SIZES if quick else SIZES)]
    print(
        f"{'parties':>9} {'seconds':>8} {'cpu s':>7} {'parties/s':>10} {'peak RSS MB':>12}   per party: orders "
        f"invoices shipments payments deals"
    )
    for r in runs:
        pp = r["per_party"]
        print(
            f"{r['scale']:>9,} {r['seconds']:>8.2f} {r['cpu_seconds']:>7.2f} {r['parties_per_s']:>10,} "
            f"{r['peak_rss_mb']:>12,}   "
            f"{pp['orders']:>17} {pp['invoices']:>8} {pp['shipments']:>9} {pp['payments']:>8} {pp['deals']:>5}"
        )
    return {"runs": runs}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        print(json.dumps(measure(int(sys.argv[2]))))
    else:
        main()
