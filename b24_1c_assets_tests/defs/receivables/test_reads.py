"""The receivables snapshot aged in DuckDB from raw 1C tables of a few rows: ties of one moment in register
order, payment calendars (not when orders are unpublished), deactivated movements, advances."""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D

import duckdb
import pytest

from b24_1c_assets.defs.onec import publication
from b24_1c_assets.defs.receivables import reads
from b24_1c_assets.domain.receivables import SNAPSHOT_COLUMNS, AgingRules

MSK = timezone(timedelta(hours=3))
AS_OF = date(2026, 11, 20)


@pytest.fixture
def conn():
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute("CREATE SCHEMA onec")
        connection.execute(
            'CREATE TABLE onec.settlement_movements ("Period" TIMESTAMPTZ, "Active" BOOLEAN, "RecordType" VARCHAR, '
            '"Контрагент_Key" VARCHAR, "Договор_Key" VARCHAR, "Заказ" VARCHAR, "ТипРасчетов" VARCHAR, '
            '"Сумма" DECIMAL(38,2))'
        )
        moment = datetime(2026, 8, 1, 10, tzinfo=MSK)
        connection.executemany(
            "INSERT INTO onec.settlement_movements VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                # two debts of one moment: the register's order says which one a payment settles first
                (moment, True, "Receipt", "cp1", "k1", "o1", "Долг", "1000.00"),
                (moment, True, "Receipt", "cp1", "k1", "o2", "Долг", "500.00"),
                (datetime(2026, 9, 1, tzinfo=MSK), True, "Expense", "cp1", "k1", None, "Долг", "1000.00"),
                (datetime(2026, 10, 1, tzinfo=MSK), False, "Receipt", "cp1", "k1", None, "Долг", "300.00"),
                (datetime(2026, 11, 25, tzinfo=MSK), True, "Receipt", "cp1", "k1", None, "Долг", "200.00"),
                (datetime(2026, 9, 5, tzinfo=MSK), True, "Expense", "cp1", "k2", None, "Аванс", "50.00"),
            ],
        )
        connection.execute(
            'CREATE TABLE onec.contracts ("Ref_Key" VARCHAR, "Owner_Key" VARCHAR, "СрокОплатыПокупателя" BIGINT)'
        )
        connection.executemany("INSERT INTO onec.contracts VALUES (?, ?, ?)", [("k1", "cp1", 30), ("k2", "cp1", 0)])
        connection.execute('CREATE TABLE onec.customer_orders ("Ref_Key" VARCHAR, "ПлатежныйКалендарь" VARCHAR)')
        connection.executemany(
            "INSERT INTO onec.customer_orders VALUES (?, ?)",
            [("o1", '[{"ДатаОплаты": "2026-08-10 00:00:00+03:00"}]'), ("o2", "[]")],
        )
        yield connection


def test_snapshot_from_the_raw_register(conn):
    snap = reads.by_contract(conn, AS_OF, AgingRules(default_term_days=14)).set_index("contract_ref")
    k1, k2 = snap.loc["k1"], snap.loc["k2"]
    # o1 (first in the register) is paid; o2's 500 stays open, due 30 days after 1 August: 81 days overdue
    assert k1["debt"] == D("500.00") and k1["overdue_amount"] == D("500.00") and k1["days_overdue"] == 81
    assert k1["aging_61_90"] == D("500.00") and k1["aging_90_plus"] == D("0.00")
    # the debt of 25 November is open but not due; it is after the day, so not in the balance: unexplained
    assert k1["aging_current"] == D("200.00") and k1["unexplained"] == D("-200.00")
    assert k1["oldest_due_date"] == date(2026, 8, 31)
    assert k2["balance"] == D("-50.00") and k2["advances"] == D("50.00") and k2["oldest_due_date"] is None
    balances = reads.balances(conn, AS_OF)
    assert sorted(map(tuple, balances.itertuples(index=False))) == [
        ("cp1", "k1", "Долг", 50000),
        ("cp1", "k2", "Аванс", -5000),
    ]


def test_payment_calendar_decides_the_due_date_unless_orders_are_unpublished(conn):
    conn.execute(
        "UPDATE onec.settlement_movements SET \"Заказ\" = CASE \"Заказ\" WHEN 'o1' THEN 'o2' ELSE 'o1' END "
        'WHERE "Заказ" IS NOT NULL'
    )  # now the open debt is o1's, due by its calendar on 10 August
    k1 = reads.by_contract(conn, AS_OF, AgingRules()).set_index("contract_ref").loc["k1"]
    assert k1["oldest_due_date"] == date(2026, 8, 10) and k1["aging_90_plus"] == D("500.00")
    publication.record(conn, "customer_orders", "publish Document_ЗаказПокупателя")
    k1 = reads.by_contract(conn, AS_OF, AgingRules()).set_index("contract_ref").loc["k1"]
    assert k1["oldest_due_date"] == date(2026, 8, 31) and k1["days_overdue"] == 81


def test_nothing_extracted_yet_is_an_empty_snapshot():
    with duckdb.connect() as empty:
        snap = reads.by_contract(empty, AS_OF, AgingRules())
        assert snap.empty and list(snap.columns) == SNAPSHOT_COLUMNS
        assert reads.balances(empty, AS_OF).empty
