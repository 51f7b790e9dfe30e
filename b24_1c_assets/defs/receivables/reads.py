"""What the receivables snapshot reads: 1C's settlement register aged in DuckDB (`domain/receivables.py`'s SQL
over `domain/receivables_sources.py`'s relations), so only per-contract rows reach pandas, never the movements."""

from __future__ import annotations

from datetime import date

import pandas as pd

from b24_1c_assets import warehouse
from b24_1c_assets.defs.onec import publication
from b24_1c_assets.domain import receivables as rules
from b24_1c_assets.domain import receivables_sources as sources
from b24_1c_assets.domain.receivables import AgingRules
from b24_1c_assets.lib import tables


def _present(conn, table: tables.Table) -> dict[str, str]:
    return warehouse.stored_columns(conn, table.schema, table.name)


def relations(conn) -> tuple[str, str | None]:
    """`WITH movements, contracts[, calendar]`: the rules' relations over the raw extracts as stored now, and
    the calendar's name (None when there are no payment calendars to read)."""
    parts = {
        "movements": sources.settlement_movements_sql(
            str(tables.ONEC_SETTLEMENT_MOVEMENTS), _present(conn, tables.ONEC_SETTLEMENT_MOVEMENTS)
        ),
        "contracts": sources.contract_terms_sql(str(tables.ONEC_CONTRACTS), _present(conn, tables.ONEC_CONTRACTS)),
    }
    # an unpublished orders document leaves no payment calendars (terms come from contracts), not stale ones
    if not publication.unpublished(conn, [tables.ONEC_CUSTOMER_ORDERS.name]):
        calendar = sources.payment_calendar_sql(
            str(tables.ONEC_CUSTOMER_ORDERS), _present(conn, tables.ONEC_CUSTOMER_ORDERS)
        )
        if calendar:
            parts["calendar"] = calendar
    with_ = "WITH " + ",\n".join(f"{name} AS ({sql})" for name, sql in parts.items())
    return with_, "calendar" if "calendar" in parts else None


def balances(conn, day: date) -> pd.DataFrame:
    """Balance per counterparty, contract and settlement type at the end of `day` from the movements (kopecks)."""
    with_, _ = relations(conn)
    return conn.execute(f"{with_}\n{rules.balances_sql('movements', day)}").df()


def by_contract(conn, day: date, aging: AgingRules) -> pd.DataFrame:
    """The receivables snapshot of `day` per (counterparty, contract): `receivables.SNAPSHOT_COLUMNS`."""
    with_, calendar = relations(conn)
    debts = rules.open_debts_sql("movements", "contracts", calendar, day, aging)
    sql = (
        f"{with_},\nbalances AS ({rules.balances_sql('movements', day)}),\ndebts AS ({debts}),\n"
        f"snapshot AS ({rules.by_contract_sql('balances', 'debts', aging)})\n"
        "SELECT * FROM snapshot ORDER BY counterparty_ref, contract_ref"
    )
    return rules.snapshot_frame(conn.execute(sql).df())


def raw_balance(conn) -> pd.DataFrame:
    """1C's own Balance as extracted: Контрагент_Key, amount (text: no kopeck passes through float),
    _extracted_at."""
    return conn.execute(
        'SELECT "Контрагент_Key", CAST("СуммаBalance" AS VARCHAR) AS amount, "_extracted_at" '
        f"FROM {tables.ONEC_RECEIVABLES_BALANCE}"
    ).df()
