"""The raw 1C settlement tables shaped as the receivables rules' relations, in DuckDB on a few rows."""

from datetime import date, datetime, timedelta, timezone

import duckdb
import pytest

from b24_1c_assets.domain import receivables_sources as sources
from b24_1c_assets.warehouse import stored_columns

MSK = timezone(timedelta(hours=3))


@pytest.fixture
def conn():
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")  # the machine's zone must not move a movement's day
        connection.execute("CREATE SCHEMA onec")
        yield connection


def _run(conn, sql: str) -> list[tuple]:
    return conn.execute(sql).fetchall()


def test_movements_in_local_time_active_only_amounts_in_kopecks(conn):
    conn.execute(
        'CREATE TABLE onec.settlement_movements ("Period" TIMESTAMPTZ, "Active" BOOLEAN, "RecordType" VARCHAR, '
        '"Контрагент_Key" VARCHAR, "Договор_Key" VARCHAR, "Заказ_Key" VARCHAR, "ТипРасчетов" VARCHAR, '
        '"Сумма" DECIMAL(38,2))'
    )
    conn.executemany(
        "INSERT INTO onec.settlement_movements VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (datetime(2026, 3, 1, 0, 30, tzinfo=MSK), True, "Receipt", "cp", "k", "o", "Долг", "10.05"),
            (datetime(2026, 3, 2, tzinfo=MSK), False, "Receipt", "cp", "k", None, "Долг", "7.00"),  # deactivated
            (datetime(2026, 3, 3, tzinfo=MSK), None, "Expense", "cp", None, None, "Аванс", None),  # Active unknown
        ],
    )
    present = stored_columns(conn, "onec", "settlement_movements")
    rows = _run(conn, sources.settlement_movements_sql("onec.settlement_movements", present) + " ORDER BY seq")
    # 00:30 in Moscow is still 1 March there (21:30 on 28 February in UTC)
    assert rows == [
        (datetime(2026, 3, 1, 0, 30), "Receipt", "cp", "k", "o", "Долг", 1005, 0),
        (datetime(2026, 3, 3), "Expense", "cp", None, None, "Аванс", 0, 2),
    ]


def test_a_fraction_of_a_kopeck_fails_the_read_instead_of_rounding(conn):
    conn.execute('CREATE TABLE t ("Сумма" DECIMAL(38,3))')
    conn.executemany("INSERT INTO t VALUES (?)", [("1.230",), (None,), ("-2.500",)])
    kopecks = sources.kopecks_sql("Сумма", "DECIMAL(38,3)")
    assert _run(conn, f"SELECT {kopecks} FROM t") == [(123,), (0,), (-250,)]
    conn.execute("INSERT INTO t VALUES ('1.005')")
    with pytest.raises(duckdb.Error, match="fractions of a kopeck"):
        _run(conn, f"SELECT {kopecks} FROM t")


def test_contract_terms_zero_when_not_set(conn):
    conn.execute('CREATE TABLE onec.contracts ("Ref_Key" VARCHAR, "Owner_Key" VARCHAR, "СрокОплатыПокупателя" BIGINT)')
    conn.executemany("INSERT INTO onec.contracts VALUES (?, ?, ?)", [("k1", "cp", 30), ("k2", "cp", None)])
    sql = sources.contract_terms_sql("onec.contracts", stored_columns(conn, "onec", "contracts"))
    assert _run(conn, sql + " ORDER BY 1") == [("k1", "cp", 30), ("k2", "cp", 0)]
    # not extracted yet: no terms (every debt gets the default term), not an error
    assert _run(conn, sources.contract_terms_sql("onec.contracts", {})) == []


def test_payment_calendar_lines_with_a_date(conn):
    conn.execute('CREATE TABLE onec.customer_orders ("Ref_Key" VARCHAR, "ПлатежныйКалендарь" VARCHAR)')
    conn.executemany(
        "INSERT INTO onec.customer_orders VALUES (?, ?)",
        [
            ("o1", '[{"ДатаОплаты": "2026-06-08 00:00:00+03:00"}, {"ДатаОплаты": "2026-07-01T00:00:00"}]'),
            ("o2", "[]"),
            ("o3", None),
            ("o4", "  "),
            ("o5", '[{"ДатаОплаты": null}, {"ДатаОплаты": ""}, {"ДатаОплаты": "0001-01-01T00:00:00"}]'),
        ],
    )
    sql = sources.payment_calendar_sql("onec.customer_orders", stored_columns(conn, "onec", "customer_orders"))
    assert _run(conn, sql + " ORDER BY 1, 2") == [("o1", date(2026, 6, 8)), ("o1", date(2026, 7, 1))]
    assert sources.payment_calendar_sql("onec.customer_orders", {"Ref_Key": "VARCHAR"}) is None
