"""Full export of companies + requisites from a sandbox portal at the real limits (2 req/s, bucket 50).

Our client (keyset `>ID` + `start=-1`, 50 chained pages per batch call) side by side with fast_bitrix24's
`get_all` (offset paging, `total` first, then batches of `start` offsets) on the same portal in the same run.
Figures: HTTP calls (as the portal logged them), seconds, records/s, exactness (unique IDs = portal rows),
QUERY_LIMIT_EXCEEDED answers. `BENCH_B24_COMPANIES` sets the target size (default 10,000 companies).
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings

from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.sandbox.bitrix24_portal import PortalServer
from b24_1c_assets.sandbox.world import generate

RATE, BURST = 2.0, 50
LISTS = (
    # (figure name, portal table, method, parameters given to both clients)
    ("companies", "company", "crm.company.list", {"select": ["*", "UF_*"]}),
    ("requisites", "requisite", "crm.requisite.list", {"filter": {"ENTITY_TYPE_ID": 4}}),
)


def _world_with_companies(target: int):
    """The generator makes ~0.87 CRM companies per party; size the world from a small probe."""
    probe = PortalServer(generate(seed=7, scale=200), port=0)
    per_party = len(probe.state.tables["company"].rows) / 200
    return generate(seed=7, scale=math.ceil(target / per_party))


def _portal_figures(portal: PortalServer, since: int) -> tuple[int, int]:
    entries = portal.request_log[since:]
    throttled = sum(1 for e in entries if e.get("error") == "QUERY_LIMIT_EXCEEDED")
    return len(entries), throttled


def _drain(portal: PortalServer, requests_made: int) -> None:
    """Let the portal's bucket empty so the next contender starts with the same free burst."""
    time.sleep(min(BURST, requests_made) / RATE + 0.5)


def _ours(portal: PortalServer, method: str, params: dict) -> tuple[list[dict], dict]:
    client = Bitrix24Client(portal.webhook_url, rate=RATE, burst=BURST)
    rows = client.export_all(method, filter=params.get("filter"), select=params.get("select"))
    client.close()
    return rows, client.stats.as_dict()


def _fast_bitrix24(portal: PortalServer, method: str, params: dict) -> list[dict]:
    from fast_bitrix24 import Bitrix

    logging.getLogger("fast_bitrix24").setLevel(logging.WARNING)
    bx = Bitrix(portal.webhook_url, verbose=False, ssl=False, requests_per_second=RATE, request_pool_size=BURST)
    with warnings.catch_warnings():  # it warns about select * without a filter: that is the point here
        warnings.simplefilter("ignore")
        return bx.get_all(method, params)


def main() -> dict:
    target = int(os.environ.get("BENCH_B24_COMPANIES", "10000"))
    world = _world_with_companies(target)
    portal = PortalServer(world, rate=RATE, burst=BURST).start()
    figures: dict = {"rate": RATE, "burst": BURST, "runs": []}
    try:
        truth = {name: len(portal.state.tables[table].rows) for name, table, _, _ in LISTS}
        figures["portal_rows"] = truth
        for contender in ("b24_1c client", "fast_bitrix24 get_all"):
            for name, _, method, params in LISTS:
                since = len(portal.request_log)
                started = time.perf_counter()
                stats = None
                if contender == "b24_1c client":
                    rows, stats = _ours(portal, method, params)
                else:
                    rows = _fast_bitrix24(portal, method, params)
                seconds = time.perf_counter() - started
                calls, throttled = _portal_figures(portal, since)
                ids = [int(r["ID"]) for r in rows]
                run = {
                    "client": contender,
                    "list": name,
                    "records": len(rows),
                    "exact": len(set(ids)) == len(ids) == truth[name],
                    "http_calls": calls,
                    "throttled": throttled,
                    "seconds": round(seconds, 2),
                    "records_per_s": round(len(rows) / seconds) if seconds else None,
                }
                if stats:
                    run["pacer_wait_s"] = stats["pacer_wait_seconds"]
                    run["retries"] = stats["retries"]
                figures["runs"].append(run)
                _drain(portal, calls)
    finally:
        portal.stop()
    _print(figures)
    return figures


def _print(figures: dict) -> None:
    from tabulate import tabulate

    print(
        f"Bitrix24 export at {figures['rate']:g} req/s, bucket {figures['burst']}; "
        f"portal rows: {figures['portal_rows']}"
    )
    columns = ["client", "list", "records", "exact", "http_calls", "throttled", "seconds", "records_per_s"]
    print(tabulate([[run.get(c) for c in columns] for run in figures["runs"]], headers=columns))


if __name__ == "__main__":
    main()
