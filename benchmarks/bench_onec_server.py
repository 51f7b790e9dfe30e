"""Sandbox 1C OData server: seeding time/memory and typical request times at 10,000 / 100,000 parties
(BENCH_QUICK: 2,000 / 10,000).

Each size runs in a fresh interpreter (its peak RSS is its own). Figures: world generation and seeding
seconds, counterparties and register movements seeded, peak RSS, and wall time of real loopback requests:
`$metadata`, full `Balance`, `Balance` with a `Condition` on one counterparty, a month of orders
(`Date` window, index-narrowed), a month of settlement record sets (`RecordSet/any(r: r/Period …)`), the
`_RecordType` rows of a month, the whole counterparty catalog with `$select`, and `/$count`. (The documented
`$top=0&$inlinecount=allpages` is left out: 1C then ignores `$top` and the whole set comes back.) Wall times
are noisy on a shared machine; `seed_cpu_seconds` is the fair seeding figure.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

SIZES = (10_000, 100_000)
QUICK_SIZES = (2_000, 10_000)
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def measure(scale: int, seed: int = 7) -> dict:
    """Generate a world, seed a server and time requests, in this process."""
    import requests

    from b24_1c_assets.sandbox.onec_seed import counterparty_guid
    from b24_1c_assets.sandbox.onec_server import OneCServer
    from b24_1c_assets.sandbox.world import generate

    t0 = time.perf_counter()
    world = generate(seed=seed, scale=scale)
    gen_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    server = OneCServer(world, password="bench", shuffle_unordered=False).start()
    seed_s, seed_cpu = time.perf_counter() - t0, time.process_time() - c0
    st = server.state
    movements = sum(len(s) for s in st.registers.values())
    s = requests.Session()
    s.auth = (b"integration", b"bench")
    base = server.odata_url
    month_end = world.as_of.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month_start = (month_end - timedelta(days=1)).replace(day=1)
    lo, hi = f"{month_start:%Y-%m-%dT%H:%M:%S}", f"{month_end:%Y-%m-%dT%H:%M:%S}"
    party = max(world.parties, key=lambda p: abs(world.expected_balance(p.key)))
    cp = counterparty_guid(world, party.key)
    reg = "AccumulationRegister_РасчетыСПокупателями"
    cases = {
        "metadata": "$metadata",
        "balance_all": f"{reg}/Balance?$format=json",
        "balance_one_counterparty": f"{reg}/Balance(Condition='Контрагент_Key eq guid''{cp}''')?$format=json",
        "orders_month_window": (
            "Document_ЗаказПокупателя?$format=json&$orderby=Date,Number&$top=1000&$filter="
            f"Date ge datetime'{lo}' and Date lt datetime'{hi}'"
        ),
        "recordsets_month_window": (
            f"{reg}?$format=json&$filter=RecordSet/any(r: r/Period ge datetime'{lo}' and r/Period lt datetime'{hi}')"
        ),
        "recordtype_month_window": (
            f"{reg}_RecordType?$format=json&$filter=Period ge datetime'{lo}' and Period lt datetime'{hi}'"
        ),
        "counterparties_all_select": "Catalog_Контрагенты?$format=json&$select=Ref_Key,ИНН,КПП,Description",
        "count_segment": "Document_РасходнаяНакладная/$count",
    }
    timings, sizes = {}, {}
    for name, path in cases.items():
        url = f"{base}/{quote(path, safe=chr(39) + '()=,/$:?&*')}"
        t0 = time.perf_counter()
        r = s.get(url, timeout=600)
        timings[name] = round(time.perf_counter() - t0, 3)
        r.raise_for_status()
        sizes[name] = len(r.content)
    server.stop()
    return {
        "scale": scale,
        "world_seconds": round(gen_s, 2),
        "seed_seconds": round(seed_s, 2),
        "seed_cpu_seconds": round(seed_cpu, 2),
        "counterparties": len(st.objects.get("Catalog_Контрагенты", {})),
        "documents": sum(len(v) for k, v in st.objects.items() if k.startswith("Document_")),
        "register_movements": movements,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "request_seconds": timings,
        "response_bytes": sizes,
    }


def _measure_in_child(scale: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_onec_server", "--measure", str(scale)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> dict:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    runs = [_measure_in_child(scale) for scale in (QUICK_SIZES if quick else SIZES)]
    print(
        f"{'parties':>8} {'world s':>8} {'seed s':>7} {'seed cpu':>8} {'counterp.':>10} {'documents':>10} "
        f"{'movements':>10} {'RSS MB':>7}"
    )
    for r in runs:
        print(
            f"{r['scale']:>8,} {r['world_seconds']:>8.1f} {r['seed_seconds']:>7.1f} {r['seed_cpu_seconds']:>8.1f} "
            f"{r['counterparties']:>10,} "
            f"{r['documents']:>10,} {r['register_movements']:>10,} {r['peak_rss_mb']:>7,}"
        )
    print("request seconds (bytes):")
    for name in runs[0]["request_seconds"]:
        cells = "  ".join(f"{r['request_seconds'][name]:>7.3f} ({r['response_bytes'][name]:,})" for r in runs)
        print(f"  {name:<28} {cells}")
    return {"runs": runs}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        print(json.dumps(measure(int(sys.argv[2]))))
    else:
        main()
