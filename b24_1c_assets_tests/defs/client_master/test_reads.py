"""The client master's reads on a DuckDB with a few rows: activity counted and dated in SQL as the survivor rules
need it (1C's empty date is no activity, a NULL ref names nobody), deals per company, only the columns asked."""

from datetime import UTC, datetime

import duckdb
import pandas as pd
import pytest

from b24_1c_assets.defs.client_master import reads

A, B = "AAAAAAAA-0000-0000-0000-000000000001", "bbbbbbbb-0000-0000-0000-000000000002"
EMPTY_DATE = datetime(1, 1, 1, tzinfo=UTC)


@pytest.fixture
def conn():
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        for schema in ("onec", "bitrix24"):
            connection.execute(f"CREATE SCHEMA {schema}")
        yield connection


def _documents(conn, table: str, rows: list[tuple]) -> None:
    conn.execute(f'CREATE TABLE onec.{table} ("Ref_Key" VARCHAR, "Контрагент_Key" VARCHAR, "Date" TIMESTAMPTZ)')
    conn.executemany(f"INSERT INTO onec.{table} VALUES (?, ?, ?)", rows)


def test_activity_counts_documents_and_movements_and_dates_the_latest(conn):
    _documents(
        conn,
        "customer_orders",
        [
            ("o1", A, datetime(2026, 3, 1, 10, tzinfo=UTC)),
            ("o2", A.lower(), datetime(2026, 5, 1, 10, tzinfo=UTC)),  # refs compare case-folded
            ("o3", None, datetime(2026, 6, 1, tzinfo=UTC)),  # a NULL ref names no counterparty
            ("o4", B, EMPTY_DATE),  # counted, but the empty date is no activity date
        ],
    )
    _documents(conn, "shipments", [("s1", A, datetime(2026, 4, 2, tzinfo=UTC))])
    conn.execute('CREATE TABLE onec.settlement_movements ("Контрагент_Key" VARCHAR, "Period" TIMESTAMPTZ)')
    conn.execute("INSERT INTO onec.settlement_movements VALUES (?, ?)", [A, datetime(2026, 5, 2, tzinfo=UTC)])
    conn.execute('CREATE TABLE onec.contracts ("Ref_Key" VARCHAR, "Owner_Key" VARCHAR, "ДатаДоговора" TIMESTAMPTZ)')
    conn.executemany(
        "INSERT INTO onec.contracts VALUES (?, ?, ?)",
        [("k1", B, datetime(2025, 1, 1, tzinfo=UTC)), ("k2", "cccc", EMPTY_DATE), ("k3", None, None)],
    )
    # invoices, bank and cash receipts not extracted (yet): left out, not an error

    activity = reads.onec_activity(conn).set_index("ref_key")
    assert list(activity.index) == [A.lower(), B, "cccc"]
    assert activity.loc[A.lower(), "documents"] == 4  # 2 orders + 1 shipment + 1 movement
    assert activity.loc[A.lower(), "last_activity"] == pd.Timestamp("2026-05-02", tz="UTC")
    # a contract is activity, not a document: B's date is its contract's, the order with no date adds none
    assert activity.loc[B, "documents"] == 1
    assert activity.loc[B, "last_activity"] == pd.Timestamp("2025-01-01", tz="UTC")
    assert activity.loc["cccc", "documents"] == 0 and pd.isna(activity.loc["cccc", "last_activity"])


def test_activity_of_an_empty_warehouse_is_empty(conn):
    activity = reads.onec_activity(conn)
    assert activity.empty and list(activity.columns) == ["ref_key", "documents", "last_activity"]


def test_deal_counts_per_company_open_is_closed_n(conn):
    conn.execute('CREATE TABLE bitrix24.deals ("ID" VARCHAR, "COMPANY_ID" VARCHAR, "CLOSED" VARCHAR)')
    conn.executemany(
        "INSERT INTO bitrix24.deals VALUES (?, ?, ?)",
        [("1", "10", "N"), ("2", "10", "Y"), ("3", "10", None), ("4", "11", "N"), ("5", None, "N"), ("6", "x", "N")],
    )
    counts = reads.deal_counts(conn).set_index("company_id")
    assert counts.to_dict("index") == {10: {"deals": 3, "open_deals": 1}, 11: {"deals": 1, "open_deals": 1}}


def test_deal_counts_without_deals(conn):
    assert reads.deal_counts(conn).empty


def test_read_columns_reads_what_is_there_and_contacts_only_of_listed_records(conn):
    conn.execute(
        'CREATE TABLE onec.counterparties ("Ref_Key" VARCHAR, "Description" VARCHAR, "КонтактнаяИнформация" VARCHAR, '
        '"Комментарий" VARCHAR)'
    )
    conn.executemany(
        "INSERT INTO onec.counterparties VALUES (?, ?, ?, ?)",
        [(A, "Альфа", '[{"Тип": "Адрес", "Представление": "Москва"}]', "x"), (B, "Бета", None, "y")],
    )
    frame = reads.read_columns(conn, reads.tables.ONEC_COUNTERPARTIES, ["Ref_Key", "Description", "ИНН"])
    assert list(frame.columns) == ["Ref_Key", "Description"]  # ИНН not extracted: left out, as a whole read
    assert reads.read_columns(conn, reads.tables.BITRIX24_COMPANIES, ["ID"]).empty  # no such table yet
    contacts = reads.counterparty_contacts(conn, {A.lower()})
    assert list(contacts["Ref_Key"]) == [A] and "Москва" in contacts["КонтактнаяИнформация"].iloc[0]
