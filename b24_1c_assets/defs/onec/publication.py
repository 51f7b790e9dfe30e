"""Which 1C objects the OData publication lacks, and which flows that stops.

A 1C administrator publishes objects one by one (УстановитьСоставСтандартногоИнтерфейсаOData), so a partial
publication is normal. The extracts record, per run, which of their objects were not published
(`onec.publication`); a flow that needs a missing object is skipped with a message naming the object and how
to publish it, and everything else goes on. Only the objects receivables cannot do without fail the run.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from b24_1c_assets.lib import tables
from b24_1c_assets.lib.tables import Table

PUBLICATION = tables.ONEC_PUBLICATION
# Without these nothing trustworthy reaches the CRM: their extracts fail instead of being skipped.
ESSENTIAL = ("counterparties", "contracts", "settlement_movements", "receivables_balance")
# The 1C extracts (onec.<table>) each flow cannot run without.
FLOW_NEEDS = {
    "catalog_sync": ("items", "price_types", "prices"),
    "invoice_sync": ("invoices", "invoice_payments"),
    # shipments tell which orders must not be rewritten any more
    "order_sync": ("items", "customer_orders", "shipments"),
}


def record(conn, table: str, hint: str | None) -> None:
    """The extract of `table` found its object published (`hint` None) or not (`hint` says how to publish).
    One row per table, replaced in one transaction (extracts run side by side)."""
    conn.execute("BEGIN")
    try:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {PUBLICATION.schema}")
        conn.execute(
            f'CREATE TABLE IF NOT EXISTS {PUBLICATION} ("table" VARCHAR PRIMARY KEY, '
            "published BOOLEAN NOT NULL, hint VARCHAR, checked_at TIMESTAMP NOT NULL)"
        )
        conn.execute(f'DELETE FROM {PUBLICATION} WHERE "table" = ?', [table])
        conn.execute(
            f"INSERT INTO {PUBLICATION} VALUES (?, ?, ?, ?)",
            [table, hint is None, hint, datetime.now(UTC).replace(tzinfo=None)],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def unpublished(conn, tables) -> dict[str, str]:
    """{extract table: how to publish its object} for those of `tables` last found unpublished."""
    if not PUBLICATION.exists(conn):
        return {}
    rows = conn.execute(f'SELECT "table", hint FROM {PUBLICATION} WHERE NOT published').fetchall()
    return {t: h for t, h in rows if t in set(tables)}


def skip_message(flow: str, missing: dict[str, str]) -> str:
    return f"{flow} skipped: " + "; ".join(
        f"{tables.onec_extract(t)} has no data — {hint}" for t, hint in sorted(missing.items())
    )


def skipped_plan(
    context: dg.AssetExecutionContext, conn, flow: str, plan: Table, guard_check: str | None = None
) -> dg.MaterializeResult | None:
    """None when every object `flow` needs is published. Else the flow is skipped: its plan is emptied (so
    the push after it writes nothing, not an older plan) and the result says which object is missing."""
    missing = unpublished(conn, FLOW_NEEDS[flow])
    if not missing:
        return None
    message = skip_message(flow, missing)
    context.log.warning(message)
    plan.replace(conn, pd.DataFrame())  # keeps an existing plan table's columns, no rows
    checks = (
        [dg.AssetCheckResult(check_name=guard_check, passed=True, metadata={"skipped": message})] if guard_check else []
    )
    return dg.MaterializeResult(
        metadata={"skipped": message, "dagster/row_count": 0, "planned": 0}, check_results=checks
    )
