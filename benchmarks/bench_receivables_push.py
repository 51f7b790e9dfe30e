"""Pushing receivables to CRM companies at the portal's real limit (2 requests/s, burst 50).

Figures: HTTP calls against the optimum ceil(n/50), seconds against n/100 (the ceiling of ~100 row writes
per second at 2 req/s x 50 commands), throttling errors that reached a row (must be 0), and the write
calls of a second run with no changes (must be 0).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from datetime import date
from decimal import Decimal

import pandas as pd

from b24_1c_assets import warehouse
from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.domain.push_plan import UPDATE, plan_updates
from b24_1c_assets.domain.receivables_push import FIELD_LABELS, FIELDS, desired_company_fields
from b24_1c_assets.sandbox.bitrix24_portal import PortalServer
from b24_1c_assets.sandbox.world import generate
from b24_1c_assets.sync import journal
from b24_1c_assets.sync.bitrix24_userfields import UserField, ensure_userfields
from b24_1c_assets.sync.bitrix24_writes import FAILED, WriteCommand, apply_commands

FLOW = "company_receivables"


def credit_status(company_ids: list[int]) -> pd.DataFrame:
    rows = [{"snapshot_date": date(2026, 11, 24), "company_id": cid, "balance": Decimal(cid % 997) * 100,
             "overdue_amount": Decimal(cid % 13) * 10, "days_overdue": cid % 40, "credit_limit": Decimal("500000.00"),
             "status": "hold" if cid % 17 == 0 else "ok",
             **{f"aging_{b}": Decimal(0) for b in ("current", "1_30", "31_60", "61_90", "90_plus")}}
            for cid in company_ids]
    return pd.DataFrame(rows)


def push(client, conn, status, run_id):
    plan = plan_updates(desired_company_fields(status), journal.last_pushed(conn, FLOW),
                        journal.failed_keys(conn, FLOW), FIELDS)
    updates = plan[plan["operation"] == UPDATE]
    commands = [WriteCommand(k, "crm.company.update", {"id": int(k), "fields": json.loads(a)})
                for k, a in zip(updates["key"], updates["after"])]
    calls = client.stats.http_calls
    started = time.monotonic()
    outcomes = apply_commands(client, commands)
    seconds = time.monotonic() - started
    journal.record(conn, flow=FLOW, run_id=run_id, plan=updates, outcomes=outcomes)
    return len(commands), client.stats.http_calls - calls, seconds, outcomes


def main() -> dict:
    n = 1000 if os.environ.get("BENCH_QUICK") else 10_000
    world = generate(seed=11, scale=int(n * 1.25))
    portal = PortalServer(world, rate=2, burst=50).start()
    try:
        client = Bitrix24Client(portal.webhook_url, rate=2, burst=50)
        ids = [int(r["ID"]) for r in client.export_all("crm.company.list", select=["ID"])][:n]
        ensure_userfields(client, "company", [UserField(k, t, label) for k, (t, label) in FIELD_LABELS.items()])
        time.sleep(25)  # let the bucket drain after the export, as between two scheduled runs
        with tempfile.TemporaryDirectory() as tmp, warehouse.connect(f"{tmp}/bench.duckdb") as conn:
            status = credit_status(ids)
            planned, calls, seconds, outcomes = push(client, conn, status, "bench-1")
            throttled_rows = sum(o.status == FAILED and o.error_class == "retryable" for o in outcomes)
            replanned, calls_again, _, _ = push(client, conn, status, "bench-2")
        throttled_answers = sum(1 for e in portal.request_log if e.get("error") == "QUERY_LIMIT_EXCEEDED")
    finally:
        portal.stop()
    figures = {"companies": planned, "http_calls": calls, "optimum_calls": math.ceil(planned / 50),
               "seconds": round(seconds, 1), "seconds_bound_n_over_100": planned / 100,
               "rows_per_second": round(planned / seconds, 1), "throttling_errors_reaching_a_row": throttled_rows,
               "portal_query_limit_answers": throttled_answers,
               "second_run_planned": replanned, "second_run_write_calls": calls_again}
    print("receivables push at 2 req/s, burst 50")
    for key, value in figures.items():
        print(f"  {key:<34} {value}")
    return figures


if __name__ == "__main__":
    main()
