"""What the invoice plan reads from DuckDB, filtered, projected and aggregated in SQL.

The plan needs the posted invoices' header columns (not their `Запасы` JSON), each invoice's payment totals
(the register's movements summed in DuckDB instead of tens of thousands of rows in pandas), the orders that
carry our deal marker, and the CRM invoices' xmlId -> id.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from b24_1c_assets import warehouse
from b24_1c_assets.defs.order_sync.reads import MARKER_TEXT, plan_to_push, project
from b24_1c_assets.domain.company_sync import FLOW_TO_CRM, link_created_companies
from b24_1c_assets.lib import tables

__all__ = ["crm_invoice_ids", "linked_clients", "marked_orders", "payment_totals", "plan_to_push", "posted_invoices"]

INVOICE_COLUMNS = [
    "Ref_Key",
    "Number",
    "Date",
    "Posted",
    "DeletionMark",
    "Контрагент_Key",
    "СуммаДокумента",
    "ДокументОснование",
]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def posted_invoices(conn) -> pd.DataFrame:
    """Posted 1C invoices (the only ones invoice_sync.desired_invoices plans) with the columns it reads, in
    table order."""
    present = tables.ONEC_INVOICES.columns(conn)
    if not {"Ref_Key", "Posted"} <= present:
        return pd.DataFrame()
    wanted = [c for c in INVOICE_COLUMNS if c in present]
    return warehouse.query(
        conn,
        f"SELECT {', '.join(map(_q, wanted))} FROM {tables.ONEC_INVOICES} WHERE coalesce(Posted, false) ORDER BY rowid",
    )


def _money_sql(column: str, types: dict[str, str]) -> str:
    """A movement's amount as invoice_sync._money takes it: to the kopeck, half to even; none is 0.00."""
    if column not in types:
        return "CAST(0 AS DECIMAL(38,2))"
    return f"coalesce(round_even(CAST({_q(column)} AS DECIMAL(38,10)), 2), CAST(0 AS DECIMAL(38,2)))"


def payment_totals(conn) -> dict[str, tuple[Decimal, Decimal]]:
    """invoice_sync.payment_totals summed in SQL: invoice (or order) ref -> (Σ Сумма asked,
    Σ СуммаОплаты + СуммаАванса paid) over the movements that are not inactive, an Expense counted negative."""
    types = warehouse.stored_columns(conn, tables.ONEC_INVOICE_PAYMENTS.schema, tables.ONEC_INVOICE_PAYMENTS.name)
    if "СчетНаОплату" not in types:
        return {}
    sign = "CASE WHEN CAST(RecordType AS VARCHAR) = 'Expense' THEN -1 ELSE 1 END" if "RecordType" in types else "1"
    # only a boolean false skips a movement, as `Active is False` does on the rows
    active = "Active IS DISTINCT FROM false" if types.get("Active") == "BOOLEAN" else "true"
    paid = f"{_money_sql('СуммаОплаты', types)} + {_money_sql('СуммаАванса', types)}"
    frame = warehouse.query(
        conn,
        f"SELECT CAST(СчетНаОплату AS VARCHAR) AS ref, sum({sign} * {_money_sql('Сумма', types)}) AS asked, "
        f"sum({sign} * ({paid})) AS paid FROM {tables.ONEC_INVOICE_PAYMENTS} WHERE {active} GROUP BY 1",
    )
    return {ref: (asked, paid) for ref, asked, paid in zip(frame["ref"], frame["asked"], frame["paid"])}


def marked_orders(conn) -> pd.DataFrame:
    """Ref_Key and Комментарий of the orders whose comment carries our deal marker (the others link no deal)."""
    present = tables.ONEC_CUSTOMER_ORDERS.columns(conn)
    if not {"Ref_Key", "Комментарий"} <= present:
        return pd.DataFrame()
    return warehouse.query(
        conn,
        f"SELECT Ref_Key, Комментарий FROM {tables.ONEC_CUSTOMER_ORDERS} WHERE contains(Комментарий, ?) ORDER BY rowid",
        [MARKER_TEXT],
    )


def crm_invoice_ids(conn) -> pd.DataFrame:
    """xmlId and id of the CRM smart invoices (empty when the extract has none yet)."""
    return project(conn, tables.BITRIX24_SMART_INVOICES, ["xmlId", "id"])


def linked_clients(conn) -> pd.DataFrame:
    """onec_ref and company_id of the client master with the CRM companies the company push made since matching
    (client_master.reads.current_clients, by the same rule, company_sync.link_created_companies): the two
    columns the plan uses, and the push's target ids rather than its payloads."""
    clients = project(conn, tables.CLIENTS, ["onec_ref", "company_id"])
    if not tables.SYNC_PUSH_STATE.exists(conn):
        return clients
    pushed = conn.execute(f"SELECT key, target_id FROM {tables.SYNC_PUSH_STATE} WHERE flow = ?", [FLOW_TO_CRM]).df()
    return link_created_companies(clients, pushed)
