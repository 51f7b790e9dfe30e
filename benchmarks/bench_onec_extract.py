"""Benchmark: extraction from 1C through `OneCClient` against the sandbox OData server (loopback HTTP).

Counterparties at two sizes (default 10,000 and 100,000) and AccumulationRegister_РасчетыСПокупателями
movements at two sizes (default 100,000 and 1,000,000). The server state is seeded directly by cloning a
small generated world (generating a world of that size takes minutes and is not what is measured).
Figures: seconds, HTTP requests, rows/s, and the growth ratio between the sizes (time ratio / size ratio:
1.0 = linear).

Env: BENCH_QUICK=1 for a small run; BENCH_ONEC_COUNTERPARTIES="10000,100000",
BENCH_ONEC_MOVEMENTS="100000,1000000" to choose sizes.
"""

from __future__ import annotations

import gc
import os
import time
import uuid
from datetime import datetime, timedelta

from b24_1c_assets.onec import OneCClient
from b24_1c_assets.sandbox.onec_seed import RegisterStore, seed
from b24_1c_assets.sandbox.onec_server import OneCServer
from b24_1c_assets.sandbox.world import generate

CLONE_NS = uuid.UUID("0b1e7c2a-5d3f-4e8a-9c61-b24b24c1c0de")
SETTLEMENTS = "AccumulationRegister_РасчетыСПокупателями"


def _sizes(name: str, default: str, quick: str) -> list[int]:
    raw = os.environ.get(name) or (quick if os.environ.get("BENCH_QUICK") else default)
    return [int(x) for x in raw.split(",") if x.strip()]


def _with_counterparties(state, n: int):
    """The state with exactly `n` counterparties (clones of the world's, unique Ref_Key/Code/Description)."""
    templates = list(state.objects["Catalog_Контрагенты"].values())
    objects = {}
    for i in range(n):
        rec = dict(templates[i % len(templates)])
        ref = str(uuid.uuid5(CLONE_NS, f"counterparty:{i}"))
        rec.update(Ref_Key=ref, Code=f"{i + 1:09d}", Description=f"{rec['Description']} №{i + 1}")
        objects[ref] = rec
    state.objects["Catalog_Контрагенты"] = objects
    state.versions["Catalog_Контрагенты"] = state.versions.get("Catalog_Контрагенты", 0) + 1
    return state


def _with_movements(state, n: int):
    """The state with about `n` settlement movements: recorders cloned, each clone a few seconds later."""
    base = list(state.registers[SETTLEMENTS].by_recorder.items())
    store = RegisterStore()
    total, clone = 0, 0
    while total < n:
        for recorder, rows in base:
            if total >= n:
                break
            ref = recorder if clone == 0 else str(uuid.uuid5(CLONE_NS, f"{clone}:{recorder}"))
            period = (datetime.fromisoformat(rows[0]["Period"]) + timedelta(seconds=clone)).isoformat()
            store.by_recorder[ref] = [{**r, "Recorder": ref, "Period": period} for r in rows]
            total += len(rows)
        clone += 1
    state.registers[SETTLEMENTS] = store
    return state


def _measure(world, state, read) -> dict:
    # The seeded state is millions of long-lived objects: freeze them so the cyclic GC does not rescan
    # them on every collection (that would measure the fixture, not the extraction).
    gc.collect()
    gc.freeze()
    server = OneCServer(world, state=state).start()
    try:
        client = OneCClient(server.odata_url, server.username, server.password)
        _ = client.metadata  # read once, outside the timing (every run reads it first anyway)
        before = client.stats.requests
        started, cpu_started = time.perf_counter(), time.process_time()
        rows = read(client)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started  # client + in-process server; robust to a busy machine
        return {
            "rows": len(rows),
            "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu, 2),
            "requests": client.stats.requests - before,
            "rows_per_s": round(len(rows) / seconds) if seconds else None,
            "mb": round(client.stats.bytes / 2**20, 1),
        }
    finally:
        server.stop()
        gc.unfreeze()


def _growth(results: list[dict], key: str) -> float | None:
    """(t_large / t_small) / (n_large / n_small): about 1.0 when extraction time grows linearly."""
    if len(results) < 2 or not results[0][key]:
        return None
    small, large = results[0], results[-1]
    return round((large[key] / small[key]) / (large["rows"] / small["rows"]), 2)


def main() -> dict:
    cp_sizes = _sizes("BENCH_ONEC_COUNTERPARTIES", "10000,100000", "2000,20000")
    mv_sizes = _sizes("BENCH_ONEC_MOVEMENTS", "100000,1000000", "20000,200000")
    world = generate(seed=7, scale=300)
    figures: dict = {"counterparties": [], "movements": []}
    for n in cp_sizes:
        state = _with_counterparties(seed(world), n)
        figures["counterparties"].append({"size": n, **_measure(world, state, lambda c: c.counterparties())})
        del state
    for n in mv_sizes:
        state = _with_movements(seed(world), n)
        figures["movements"].append({"size": n, **_measure(world, state, lambda c: c.settlement_movements())})
        del state
    for what in ("counterparties", "movements"):
        figures[f"{what}_growth"] = _growth(figures[what], "seconds")
        figures[f"{what}_growth_cpu"] = _growth(figures[what], "cpu_seconds")

    print("1C OData extraction (sandbox, loopback; cpu = client + in-process server)")
    print(f"{'what':<16}{'rows':>10}{'seconds':>9}{'cpu s':>9}{'requests':>10}{'rows/s':>9}{'MB':>8}")
    for what in ("counterparties", "movements"):
        for r in figures[what]:
            print(
                f"{what:<16}{r['rows']:>10}{r['seconds']:>9}{r['cpu_seconds']:>9}{r['requests']:>10}"
                f"{r['rows_per_s']:>9}{r['mb']:>8}"
            )
        print(
            f"  growth (time ratio / size ratio, 1.0 = linear): wall {figures[what + '_growth']}, "
            f"cpu {figures[what + '_growth_cpu']}"
        )
    return figures


if __name__ == "__main__":
    main()
