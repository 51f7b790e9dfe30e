"""What the order plan and push read from DuckDB, filtered and projected in SQL.

The plan needs the deals at an order stage, the orders carrying our marker and whether a posted shipment
names them, and a few columns of the small catalogs; the push needs the latest posted order per organisation.
Reading whole tables (every order and shipment with its `Запасы` JSON) made the stage's memory grow with the
1C history rather than with what it writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import pandas as pd

from b24_1c_assets import warehouse
from b24_1c_assets.domain.push_plan import Operation
from b24_1c_assets.lib import tables
from b24_1c_assets.lib.tables import Table

MARKER_TEXT = "b24-1c:deal:"  # a cheap pre-filter; order_sync.deal_of_comment applies the exact pattern
# Order header columns the push's defaults read (defs/order_sync/onec_orders.header_defaults).
STATE = "СостояниеЗаказа"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def project(conn, table: Table, columns: Sequence[str]) -> pd.DataFrame:
    """`columns` of `table` (those it has), rows in table order; an empty frame when it has none of them."""
    present = table.columns(conn)
    wanted = [c for c in columns if c in present]
    if not wanted:
        return pd.DataFrame()
    return warehouse.query(conn, f"SELECT {', '.join(map(_q, wanted))} FROM {table} ORDER BY rowid")


def deals_for_orders(
    conn, stages: dict[str, set[str]], unfinished: Iterable[str], uf_number: str, uf_ref: str
) -> pd.DataFrame:
    """Deals at an order stage (pipeline -> STAGE_IDs, order_sync.order_stages; no pipeline is pipeline "0"),
    then the `unfinished` deals (keys of writes that failed halfway) at no such stage, each in table order:
    ID, TITLE, COMPANY_ID and the deal's order fields as uf_number / uf_ref."""
    present = tables.BITRIX24_DEALS.columns(conn)
    if not {"ID", "CATEGORY_ID", "STAGE_ID"} <= present:
        return pd.DataFrame()
    pairs = [(str(c), str(s)) for c, names in stages.items() for s in names]

    def column(name: str, alias: str) -> str:
        return f"{_q(name)} AS {_q(alias)}" if name in present else f"NULL AS {_q(alias)}"

    at_stage = (
        "coalesce((coalesce(nullif(CAST(CATEGORY_ID AS VARCHAR), ''), '0'), CAST(STAGE_ID AS VARCHAR)) "
        "IN (SELECT (unnest(?::VARCHAR[]), unnest(?::VARCHAR[]))), false)"
    )
    select = ", ".join(
        [
            "ID",
            column("TITLE", "TITLE"),
            column("COMPANY_ID", "COMPANY_ID"),
            column(uf_number, "uf_number"),
            column(uf_ref, "uf_ref"),
        ]
    )
    return warehouse.query(
        conn,
        f"SELECT {select} FROM (SELECT *, rowid AS _row, {at_stage} AS _at FROM {tables.BITRIX24_DEALS}) "
        "WHERE _at OR CAST(ID AS VARCHAR) IN (SELECT unnest(?::VARCHAR[])) ORDER BY NOT _at, _row",
        [[c for c, _ in pairs], [s for _, s in pairs], sorted(str(k) for k in unfinished)],
    )


def shipped_refs_sql(present: set[str]) -> str | None:
    """SQL of the refs a posted shipment names, in its header `Заказ` or in a `Запасы` row's `Заказ` (the JSON
    unnested in DuckDB), as column `ref`; None when the shipments carry neither. order_sync.shipped_orders is
    the same rule over a frame."""
    if "Posted" not in present:
        return None
    posted = f"(SELECT * FROM {tables.ONEC_SHIPMENTS} WHERE coalesce(Posted, false))"
    parts = []
    if "Заказ" in present:
        parts.append(f"SELECT CAST(Заказ AS VARCHAR) AS ref FROM {posted} WHERE Заказ <> ''")
    if "Запасы" in present:
        rows = (
            f"SELECT unnest(CAST(Запасы AS JSON[])) AS r FROM {posted} "
            "WHERE Запасы IS NOT NULL AND json_type(Запасы) = 'ARRAY'"
        )
        parts.append(f"SELECT r ->> 'Заказ' AS ref FROM ({rows}) WHERE json_type(r -> 'Заказ') = 'VARCHAR'")
    return " UNION ALL ".join(parts) or None


def shipped_orders(conn, refs: Iterable[str] | None = None) -> set[str]:
    """Orders a posted shipment names (order_sync.shipped_orders, in SQL), limited to `refs` when given."""
    present = tables.ONEC_SHIPMENTS.columns(conn)
    sql = shipped_refs_sql(present)
    if sql is None:
        return set()
    where, params = "ref <> ''", []
    if refs is not None:
        where += " AND ref IN (SELECT unnest(?::VARCHAR[]))"
        params.append(sorted({str(r) for r in refs}))
    return {r for (r,) in conn.execute(f"SELECT DISTINCT ref FROM ({sql}) WHERE {where}", params).fetchall()}


def marked_orders(conn) -> pd.DataFrame:
    """Orders whose Комментарий carries our deal marker (order_sync.existing_orders reads them), in table order:
    Ref_Key, Number, Posted, DeletionMark, СуммаДокумента, Комментарий."""
    present = tables.ONEC_CUSTOMER_ORDERS.columns(conn)
    if not {"Ref_Key", "Комментарий"} <= present:
        return pd.DataFrame()
    wanted = [
        c for c in ("Ref_Key", "Number", "Posted", "DeletionMark", "СуммаДокумента", "Комментарий") if c in present
    ]
    return warehouse.query(
        conn,
        f"SELECT {', '.join(map(_q, wanted))} FROM {tables.ONEC_CUSTOMER_ORDERS} "
        "WHERE contains(Комментарий, ?) ORDER BY rowid",
        [MARKER_TEXT],
    )


def header_orders(conn) -> pd.DataFrame:
    """The posted orders header defaults can come from, sorted by Date (no date last), ties in table order:
    for each organisation and order state the latest one. The latest of an organisation, and its latest in a
    state that is not completed, are among them, so onec_orders.header_defaults picks the same order as from
    the whole table."""
    present = tables.ONEC_CUSTOMER_ORDERS.columns(conn)
    if not {"Ref_Key", "Posted", "Date"} <= present:
        return pd.DataFrame()
    extra = [c for c in ("Организация_Key", STATE, f"{STATE}_Type") if c in present]
    group = ", ".join(map(_q, extra)) or "NULL"
    cols = ", ".join(map(_q, ["Ref_Key", "Date", "Posted", *extra]))
    return warehouse.query(
        conn,
        f"SELECT {cols} FROM (SELECT {cols}, rowid AS _row, row_number() OVER (PARTITION BY {group} "
        f"ORDER BY Date DESC NULLS FIRST, rowid DESC) AS _n FROM {tables.ONEC_CUSTOMER_ORDERS} "
        "WHERE coalesce(Posted, false)) WHERE _n = 1 ORDER BY Date ASC NULLS LAST, _row",
    )


def orders_extracted_at(conn) -> datetime | None:
    """When the order extract last landed rows (its newest `_extracted_at`), None without one."""
    if "_extracted_at" not in tables.ONEC_CUSTOMER_ORDERS.columns(conn):
        return None
    (value,) = conn.execute(f"SELECT max(_extracted_at) FROM {tables.ONEC_CUSTOMER_ORDERS}").fetchone()
    return value


def plan_to_push(conn, table: Table) -> pd.DataFrame:
    """The rows of a stored plan the push acts on (all but `noop`), in plan order; a steady run's plan is
    mostly noop rows with their payloads, which the push never reads."""
    if "operation" not in table.columns(conn):
        return table.read(conn)
    return warehouse.query(
        conn, f"SELECT * FROM {table} WHERE operation IS DISTINCT FROM ? ORDER BY rowid", [Operation.NOOP]
    )
