"""Pushing receivables to CRM companies at the portal's real limit (2 requests/s, burst 50).

Figures: HTTP calls against the optimum ceil(n/50), seconds against n/100 (the ceiling of ~100 row writes
per second at 2 req/s x 50 commands) and against what the limit itself allows for the calls made (a full
bucket of 50 at once, the rest at 2/s: the share of the ceiling reached, goal >= 95 %), throttling errors
that reached a row (must be 0), and the write calls of a second run with no changes (must be 0).
`python -m benchmarks.bench_receivables_push --rate-only`: the first part alone (~2 minutes).

Then the operating-time budget (`limits.md`: 480 s of server time per method per 10 minutes): n updates
charged 0.02, 0.1 and 0.3 s each, the client pacing itself under 50 % of the budget. Figures: seconds (in real
10-minute windows; the sandbox's window is compressed for the slow cases, see `budget_run`), calls, the peak
share of the budget used, whether the portal ever answered OPERATION_TIME_LIMIT (goal: never), and how far
over the time the share allows (goal: within 5 %).
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal

import pandas as pd

from b24_1c_assets import warehouse
from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.domain.push_plan import Operation, Status, plan_updates
from b24_1c_assets.domain.receivables_push import FIELD_LABELS, FIELDS, desired_company_fields
from b24_1c_assets.sandbox.bitrix24_portal import PortalServer
from b24_1c_assets.sandbox.world import generate
from b24_1c_assets.sync import journal
from b24_1c_assets.sync.bitrix24_userfields import UserField, ensure_userfields
from b24_1c_assets.sync.bitrix24_writes import WriteCommand, apply_commands

FLOW = "company_receivables"


def credit_status(company_ids: list[int]) -> pd.DataFrame:
    rows = [
        {
            "snapshot_date": date(2026, 11, 24),
            "company_id": cid,
            "balance": Decimal(cid % 997) * 100,
            "overdue_amount": Decimal(cid % 13) * 10,
            "days_overdue": cid % 40,
            "credit_limit": Decimal("500000.00"),
            "status": "hold" if cid % 17 == 0 else "ok",
            **{f"aging_{b}": Decimal(0) for b in ("current", "1_30", "31_60", "61_90", "90_plus")},
        }
        for cid in company_ids
    ]
    return pd.DataFrame(rows)


def push(client, conn, status, run_id):
    plan = plan_updates(
        desired_company_fields(status), journal.last_pushed(conn, FLOW), journal.failed_keys(conn, FLOW), FIELDS
    )
    updates = plan[plan["operation"] == Operation.UPDATE]
    commands = [
        WriteCommand(k, "crm.company.update", {"id": int(k), "fields": json.loads(a)})
        for k, a in zip(updates["key"], updates["after"])
    ]
    calls = client.stats.http_calls
    started = time.monotonic()
    outcomes = apply_commands(client, commands)
    seconds = time.monotonic() - started
    journal.record(conn, flow=FLOW, run_id=run_id, plan=updates, outcomes=outcomes)
    return len(commands), client.stats.http_calls - calls, seconds, outcomes


def allowed_seconds(n: int, cost: float, share: float, budget: float, window: float, rate: float) -> float:
    """The least time the share allows. Time is summed in minute baskets that leave 10 minutes after they
    began (`limits.md`), so the best a caller can do is spend the share at once, then the next share when those
    baskets have left, one window later: the last part starts after (ceil(n*c / share) - 1) windows. Never below
    what the request rate allows (n/50 batch calls at `rate`)."""
    budget_bound = window * max(0, math.ceil(round(n * cost / (share * budget), 9)) - 1)
    return max(budget_bound, math.ceil(n / 50) / rate)


def budget_run(world, n: int, cost: float, speedup: float, share: float = 0.5, budget: float = 480.0) -> dict:
    """Push n updates charged `cost` server seconds each, paced under `share` of the budget. The portal's
    10-minute window is compressed `speedup` times (baskets too): the same number of windows pass, so the
    pacing is the same, in 1/speedup of the wall time; seconds are reported back in real-window seconds."""
    window = 600.0 / speedup
    portal = PortalServer(
        world, rate=2, burst=50, operating_budget=budget, operating_costs={"crm.company.update": cost}
    ).start()
    portal.operating.window = window
    try:
        client = Bitrix24Client(portal.webhook_url, rate=2, burst=50, operating_budget=budget, operating_share=share)
        ids = [int(r["ID"]) for r in client.export_all("crm.company.list", select=["ID"])][:n]
        ensure_userfields(client, "company", [UserField(k, t, label) for k, (t, label) in FIELD_LABELS.items()])
        time.sleep(25)  # let the bucket drain after the export, as between two scheduled runs
        with tempfile.TemporaryDirectory() as tmp, warehouse.connect(f"{tmp}/bench.duckdb") as conn:
            planned, calls, seconds, outcomes = push(client, conn, credit_status(ids), f"bench-{cost}")
        refused = sum(
            1
            for e in portal.request_log
            if e.get("error") == "OPERATION_TIME_LIMIT"
            or "OPERATION_TIME_LIMIT" in (e.get("command_errors") or {}).values()
        )
        failed = sum(o.status == Status.FAILED for o in outcomes)
    finally:
        portal.stop()
    # only the waits for baskets to leave depend on the window; sending runs at the real request rate
    real = seconds + client.stats.operating_pause_seconds * (speedup - 1)
    allowed = allowed_seconds(planned, cost, share, budget, 600.0, 2.0)
    return {
        "cost_s_per_update": cost,
        "updates": planned,
        "http_calls": calls,
        "window_speedup": speedup,
        "wall_seconds": round(seconds, 1),
        "pause_seconds_wall": round(client.stats.operating_pause_seconds, 1),
        "seconds_real_window": round(real, 1),
        "seconds_the_share_allows": round(allowed, 1),
        "over_allowed_pct": round(100 * (real / allowed - 1), 1),
        "peak_share_of_budget": round(client.operating_peak.get("crm.company.update", 0.0) / budget, 3),
        "pauses": client.stats.operating_pauses,
        "operation_time_limit_answers": refused,
        "failed_rows": failed,
    }


def main(rate_only: bool = False) -> dict:
    n = 1000 if os.environ.get("BENCH_QUICK") else 10_000
    world = generate(seed=11, scale=int(n * 1.25))
    # 0.02 s per update: 10,000 of them stay under half the operating budget, so this part measures the
    # request rate alone (the budget runs below measure the budget)
    portal = PortalServer(world, rate=2, burst=50, operating_costs={"crm.company.update": 0.02}).start()
    try:
        client = Bitrix24Client(portal.webhook_url, rate=2, burst=50)
        ids = [int(r["ID"]) for r in client.export_all("crm.company.list", select=["ID"])][:n]
        ensure_userfields(client, "company", [UserField(k, t, label) for k, (t, label) in FIELD_LABELS.items()])
        time.sleep(25)  # let the bucket drain after the export, as between two scheduled runs
        with tempfile.TemporaryDirectory() as tmp, warehouse.connect(f"{tmp}/bench.duckdb") as conn:
            status = credit_status(ids)
            planned, calls, seconds, outcomes = push(client, conn, status, "bench-1")
            throttled_rows = sum(o.status == Status.FAILED and o.error_class == "retryable" for o in outcomes)
            replanned, calls_again, _, _ = push(client, conn, status, "bench-2")
        throttled_answers = sum(1 for e in portal.request_log if e.get("error") == "QUERY_LIMIT_EXCEEDED")
    finally:
        portal.stop()
    figures = {
        "companies": planned,
        "http_calls": calls,
        "optimum_calls": math.ceil(planned / 50),
        "seconds": round(seconds, 1),
        "seconds_bound_n_over_100": planned / 100,
        "rows_per_second": round(planned / seconds, 1),
        # the bucket is full when the push starts (drained 25 s): 50 calls at once, the rest at 2/s
        "rate_bound_seconds": max(0, calls - 50) / 2,
        "share_of_ceiling_percent": round(100 * (max(0, calls - 50) / 2) / seconds, 1) if seconds else None,
        "throttling_errors_reaching_a_row": throttled_rows,
        "portal_query_limit_answers": throttled_answers,
        "second_run_planned": replanned,
        "second_run_write_calls": calls_again,
    }
    print("receivables push at 2 req/s, burst 50 (0.02 s of operating time per update)")
    for key, value in figures.items():
        print(f"  {key:<34} {value}")
    if rate_only:
        return figures
    # The operating-time budget: 480 s per method per 10 minutes, the client keeping under 50 % of it.
    speedups = {0.02: 1.0, 0.1: 10.0, 0.3: 30.0}
    budget = [budget_run(world, n, cost, speedup) for cost, speedup in speedups.items()]
    print("operating budget 480 s / 10 min, share 50 % (seconds in real 10-minute windows)")
    for row in budget:
        print("  " + ", ".join(f"{k}={v}" for k, v in row.items()))
    figures["operating_budget"] = budget
    return figures


if __name__ == "__main__":
    main(rate_only="--rate-only" in sys.argv)
