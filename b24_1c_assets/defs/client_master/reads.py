"""Reading for the client master: the extracts' columns the matcher needs, the activity counts it weighs
duplicates by (GROUP BY in DuckDB, not whole document tables in pandas), and the client master as later flows
need it: with the CRM companies made since it was matched."""

import pandas as pd

from b24_1c_assets import warehouse
from b24_1c_assets.domain.company_sync import FLOW_TO_CRM, link_created_companies
from b24_1c_assets.lib import tables
from b24_1c_assets.sync import journal

# Assets reading `current_clients` depend on this push, so in one run they see the companies it made.
COMPANIES_FROM_1C = tables.PUSH_COMPANIES_FROM_1C.key

# 1C documents and settlement movements tell which of two duplicate counterparties is in use.
ACTIVITY_DOCUMENTS = (
    tables.ONEC_CUSTOMER_ORDERS,
    tables.ONEC_INVOICES,
    tables.ONEC_SHIPMENTS,
    tables.ONEC_BANK_RECEIPTS,
    tables.ONEC_CASH_RECEIPTS,
)
# (table, counterparty column, date column, counts as a document): a contract is activity, not a document.
ACTIVITY_SOURCES = (
    *((t, "Контрагент_Key", "Date", True) for t in ACTIVITY_DOCUMENTS),
    (tables.ONEC_SETTLEMENT_MOVEMENTS, "Контрагент_Key", "Period", True),
    (tables.ONEC_CONTRACTS, "Owner_Key", "ДатаДоговора", False),
)

# The extracts' columns the matcher and the review queue read (`domain/client_sources`, `domain/review_queue`).
COUNTERPARTY_COLUMNS = (
    "Ref_Key",
    "Code",
    "Description",
    "НаименованиеПолное",
    "ИНН",
    "КПП",
    "РегистрационныйНомер",
    "ВидКонтрагента",
    "ЮридическоеФизическоеЛицо",
    "email",
    "phone",
    "DeletionMark",
)
COMPANY_COLUMNS = (
    "ID",
    "TITLE",
    "ORIGINATOR_ID",
    "ORIGIN_ID",
    "EMAIL",
    "PHONE",
    "ASSIGNED_BY_ID",
    "DATE_CREATE",
    "ADDRESS",
    "ADDRESS_2",
    "ADDRESS_CITY",
    "ADDRESS_REGION",
)
REQUISITE_COLUMNS = ("ID", "ENTITY_TYPE_ID", "ENTITY_ID", "ACTIVE", "RQ_INN", "RQ_KPP", "RQ_OGRN", "RQ_OGRNIP")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_columns(conn, table: tables.Table, names) -> pd.DataFrame:
    """The named columns of `table` that it has (a missing one is left out, as a whole read would lack it),
    or an empty frame when the table does not exist yet. DECIMAL columns arrive as exact Decimal."""
    present = table.columns(conn)
    wanted = [n for n in dict.fromkeys(names) if n in present]
    if not wanted:
        return pd.DataFrame()
    return warehouse.query(conn, f"SELECT {', '.join(_q(n) for n in wanted)} FROM {table}")


def _timestamp(column: str, sql_type: str | None) -> str:
    """A date column as a timestamp (NULL when absent or unreadable): stored timestamps as they are, text parsed."""
    if sql_type is None:
        return "NULL::TIMESTAMP"
    if sql_type.startswith("TIMESTAMP"):
        return _q(column)
    return f"TRY_CAST({_q(column)} AS TIMESTAMP)"


def onec_activity(conn) -> pd.DataFrame:
    """Per 1C counterparty (lower-case ref_key): documents + settlement movements naming it, and the date of its
    last activity (`survivors.ONEC_ACTIVITY_COLUMNS`); the survivor rule of 1C duplicates reads it.

    Documents are the order, invoice, shipment and receipt extracts (`Контрагент_Key`, `Date`), movements
    РасчетыСПокупателями's (`Контрагент_Key`, `Period`); a contract (`Owner_Key`, `ДатаДоговора`) is activity
    but not a document. 1C's empty date 0001-01-01 is no activity; a NULL ref names no counterparty."""
    parts = []
    for table, ref_col, date_col, counts in ACTIVITY_SOURCES:
        present = warehouse.stored_columns(conn, table.schema, table.name)
        if ref_col not in present:
            continue
        day = _timestamp(date_col, present.get(date_col))
        parts.append(
            f"SELECT lower(CAST({_q(ref_col)} AS VARCHAR)) AS ref_key, {int(counts)} AS counted, "
            f"CASE WHEN year({day}) > 1 THEN {day} END AS day FROM {table}"
        )
    if not parts:
        return pd.DataFrame(columns=["ref_key", "documents", "last_activity"])
    return conn.execute(
        "SELECT ref_key, CAST(sum(counted) AS BIGINT) AS documents, max(day) AS last_activity "
        f"FROM ({' UNION ALL '.join(parts)}) WHERE ref_key IS NOT NULL GROUP BY ref_key ORDER BY ref_key"
    ).df()


def deal_counts(conn) -> pd.DataFrame:
    """Per CRM company (COMPANY_ID): deals and open deals (CLOSED = 'N'); `client_sources.crm_activity` reads it.
    A deal without a numeric COMPANY_ID belongs to no company."""
    present = tables.BITRIX24_DEALS.columns(conn)
    if "COMPANY_ID" not in present:
        return pd.DataFrame(columns=["company_id", "deals", "open_deals"])
    is_open = "CAST(\"CLOSED\" AS VARCHAR) = 'N'" if "CLOSED" in present else "FALSE"
    return conn.execute(
        f"SELECT company_id, count(*) AS deals, count(*) FILTER (WHERE {is_open}) AS open_deals FROM ("
        f'SELECT TRY_CAST(TRY_CAST("COMPANY_ID" AS VARCHAR) AS DOUBLE) AS raw_id, CAST(trunc(raw_id) AS BIGINT) '
        f"AS company_id, * FROM {tables.BITRIX24_DEALS}) WHERE raw_id IS NOT NULL GROUP BY company_id "
        "ORDER BY company_id"
    ).df()


def counterparty_contacts(conn, refs) -> pd.DataFrame:
    """Ref_Key and КонтактнаяИнформация of the counterparties with these (lower-case) refs, in table order:
    the review queue's addresses, read for the records it lists only."""
    present = tables.ONEC_COUNTERPARTIES.columns(conn)
    if not {"Ref_Key", "КонтактнаяИнформация"} <= present:
        return pd.DataFrame()
    conn.register("_queued_refs", pd.DataFrame({"ref": sorted({str(r) for r in refs})}, dtype=object))
    try:
        return conn.execute(
            f'SELECT "Ref_Key", "КонтактнаяИнформация" FROM {tables.ONEC_COUNTERPARTIES} '
            'WHERE lower(CAST("Ref_Key" AS VARCHAR)) IN (SELECT ref FROM _queued_refs)'
        ).df()
    finally:
        conn.unregister("_queued_refs")


def current_clients(conn, columns=None) -> pd.DataFrame:
    """`client_master.clients`, 1C-only clients linked to the CRM companies the company push created for them;
    `columns` narrows the read (the link's onec_ref, company_id and match_rule are always read)."""
    clients = (
        tables.CLIENTS.read(conn)
        if columns is None
        else read_columns(conn, tables.CLIENTS, ["onec_ref", "company_id", "match_rule", *columns])
    )
    return link_created_companies(clients, journal.last_pushed(conn, FLOW_TO_CRM))
