"""The sandbox Bitrix24 portal itself: seeding a 100k-company world, and how fast it serves.

Figures: seconds and records/s to seed the portal from a generated world, resident memory after seeding,
plain calls/s over one keep-alive connection (no rate limit), and the server-side cost of the two ways to
page a big list — deep `start` offsets that count `total` vs the keyset form (`>ID`, `start=-1`) — single
and packed 50 to a batch. `BENCH_B24_PORTAL_SCALE` sets the world scale (default 120,000 parties, which
gives about 106,000 CRM companies).
"""

from __future__ import annotations

import os
import resource
import time

import requests

from b24_1c_assets.sandbox.bitrix24_portal import PortalServer
from b24_1c_assets.sandbox.world import generate


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat


def main() -> dict:
    scale = int(os.environ.get("BENCH_B24_PORTAL_SCALE", "120000"))
    started = time.perf_counter()
    world = generate(seed=7, scale=scale)
    generate_s = time.perf_counter() - started
    rss_before = _rss_mb()
    started = time.perf_counter()
    portal = PortalServer(world, rate=1e9, burst=10**9)
    seed_s = time.perf_counter() - started
    tables = portal.state.tables
    counts = {name: len(tables[name].rows) for name in ("company", "requisite", "contact", "deal", "product")}
    records = sum(counts.values())
    figures: dict = {
        "scale": scale,
        "world_generate_s": round(generate_s, 1),
        "seed_s": round(seed_s, 1),
        "seed_records_per_s": round(records / seed_s),
        "records": counts,
        "max_rss_mb_after_seed": round(_rss_mb()),
        "max_rss_growth_mb": round(_rss_mb() - rss_before),
    }
    portal.start()
    session = requests.Session()
    url = portal.webhook_url

    def post(method: str, params: dict) -> dict:
        response = session.post(url + method, json=params, timeout=120)
        response.raise_for_status()
        return response.json()

    try:
        last_id = max(tables["company"].ids)
        figures["get_calls_per_s"] = round(1 / _timed(lambda: post("crm.company.get", {"id": 17}), 300))
        deep = max(0, counts["company"] - 50)
        offset_s = _timed(
            lambda: post("crm.company.list", {"select": ["ID", "TITLE"], "order": {"ID": "ASC"}, "start": deep}), 5
        )
        keyset_s = _timed(
            lambda: post(
                "crm.company.list",
                {"select": ["ID", "TITLE"], "order": {"ID": "ASC"}, "filter": {">ID": last_id - 50}, "start": -1},
            ),
            50,
        )
        figures["deep_offset_page_ms"] = round(offset_s * 1000, 2)
        figures["keyset_page_ms"] = round(keyset_s * 1000, 2)
        cmd = {
            f"p{i}": f"crm.company.list?order[ID]=ASC&filter[>ID]={i * 50}&select[0]=ID&select[1]=TITLE&start=-1"
            for i in range(50)
        }
        batch_s = _timed(lambda: post("batch", {"halt": 0, "cmd": cmd}), 10)
        figures["keyset_batch_of_50_pages_ms"] = round(batch_s * 1000, 1)
        figures["keyset_batch_rows_per_s"] = round(2500 / batch_s)
        figures["operating_s_used_by_list"] = round(portal.operating_used("crm.company.list")[0], 3)
    finally:
        session.close()
        portal.stop()

    print(f"sandbox Bitrix24 portal (scale {scale})")
    rows = [
        ("world generate", f"{figures['world_generate_s']} s"),
        ("seed portal", f"{figures['seed_s']} s, {figures['seed_records_per_s']:,} records/s"),
        ("records", ", ".join(f"{k} {v:,}" for k, v in counts.items())),
        ("max RSS after seed", f"{figures['max_rss_mb_after_seed']:,} MB (+{figures['max_rss_growth_mb']:,} MB)"),
        ("crm.company.get", f"{figures['get_calls_per_s']:,} calls/s (one keep-alive connection)"),
        ("list page, start offset + total", f"{figures['deep_offset_page_ms']} ms at start={deep:,}"),
        ("list page, keyset start=-1", f"{figures['keyset_page_ms']} ms"),
        (
            "batch of 50 keyset pages",
            f"{figures['keyset_batch_of_50_pages_ms']} ms ({figures['keyset_batch_rows_per_s']:,} rows/s)",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    return figures


if __name__ == "__main__":
    main()
