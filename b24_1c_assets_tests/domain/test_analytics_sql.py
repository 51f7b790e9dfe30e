"""The analyst views' SQL on small hand-made tables: statuses, conflicts and dead letters mean what they say."""

from datetime import datetime, timedelta
from decimal import Decimal

import duckdb
import pandas as pd
import pytest

from b24_1c_assets.domain import analytics_sql
from b24_1c_assets.warehouse import query, replace_table

NOW = datetime.utcnow()


def present(conn) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for schema, table, column in conn.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns"
    ).fetchall():
        out.setdefault(f"{schema}.{table}", set()).add(column)
    return out


def build(conn) -> None:
    for statement in analytics_sql.statements(present(conn)):
        conn.execute(statement)


@pytest.fixture
def conn():
    with duckdb.connect() as connection:
        yield connection


def result(run, key, status, at, error=None, error_class=None, flow="company_receivables", dry_run=False):
    return {
        "run_id": run,
        "flow": flow,
        "key": key,
        "target_id": None,
        "operation": "update",
        "status": status,
        "error": error,
        "error_class": error_class,
        "attempts": 1,
        "dry_run": dry_run,
        "recorded_at": at,
    }


def test_every_view_is_created_and_empty_on_an_empty_warehouse(conn):
    build(conn)
    for view in analytics_sql.view_definitions():
        assert conn.execute(f"SELECT count(*) FROM {view.qualified}").fetchone()[0] == 0, view.name
    comment = conn.execute("SELECT comment FROM duckdb_views() WHERE view_name = 'dead_letters'").fetchone()[0]
    assert "one row per (flow, key)" in comment
    described = conn.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE schema_name = 'analytics' AND comment IS NOT NULL"
    ).fetchone()[0]
    assert described == sum(len(v.columns) for v in analytics_sql.view_definitions())


@pytest.mark.parametrize(
    "raw, key",
    [
        ("ООО «Альфа-Строй»", "альфастрой"),
        ("Альфа Строй, ооо", "альфастрой"),
        ('Общество с ограниченной ответственностью "АльфаСтрой"', "альфастрой"),
        ('ПAO "Гранит"', "гранит"),
        ("Ёлка ЗАО", "елка"),
        ("АО", "ао"),
    ],
)
def test_name_key_macro_folds_forms_quotes_and_case(conn, raw, key):
    build(conn)
    assert conn.execute("SELECT analytics.norm_name(?)", [raw]).fetchone()[0] == key


@pytest.mark.parametrize(
    "raw, phone",
    [
        ("8 (495) 123-45-67", "+74951234567"),
        ("+7 495 1234567", "+74951234567"),
        ("(495) 123-45-67 доб. 12", "+74951234567"),
        ("", None),
    ],
)
def test_phone_macro_gives_e164(conn, raw, phone):
    build(conn)
    assert conn.execute("SELECT analytics.norm_phone(?)", [raw]).fetchone()[0] == phone


def test_client_reconciliation_names_the_fields_that_differ_after_normalisation(conn):
    replace_table(
        conn,
        "client_master",
        "clients",
        pd.DataFrame(
            [
                {"client_id": "a", "onec_ref": "r1", "company_id": 1, "name": "Альфа", "match_rule": "inn_kpp"},
                {"client_id": "b", "onec_ref": "r2", "company_id": 2, "name": "Бета", "match_rule": "id_link"},
                {"client_id": "c", "onec_ref": "r3", "company_id": None, "name": "Гамма", "match_rule": "only_1c"},
            ]
        ),
    )
    replace_table(
        conn,
        "onec",
        "counterparties",
        pd.DataFrame(
            [
                {
                    "Ref_Key": "r1",
                    "Description": 'ООО "Альфа"',
                    "ИНН": "7701234567",
                    "КПП": "770101001",
                    "email": "Info@Alfa.ru",
                    "phone": "8 (495) 111-22-33",
                },
                {
                    "Ref_Key": "r2",
                    "Description": "Бета ООО",
                    "ИНН": "7707654321",
                    "КПП": "770701001",
                    "email": "buh@beta.ru",
                    "phone": "+7 495 999-00-00",
                },
                {
                    "Ref_Key": "r3",
                    "Description": "Гамма",
                    "ИНН": "7700000000",
                    "КПП": None,
                    "email": None,
                    "phone": None,
                },
            ]
        ),
    )
    replace_table(
        conn,
        "bitrix24",
        "companies",
        pd.DataFrame(
            [
                {
                    "ID": "1",
                    "TITLE": "Альфа, ООО",
                    "EMAIL": '[{"VALUE": "info@alfa.ru"}]',
                    "PHONE": '[{"VALUE": "+74951112233"}]',
                },
                {
                    "ID": "2",
                    "TITLE": "Бета-Плюс",
                    "EMAIL": '[{"VALUE": "sales@beta.ru"}]',
                    "PHONE": '[{"VALUE": "+74959990000"}]',
                },
            ]
        ),
    )
    replace_table(
        conn,
        "bitrix24",
        "requisites",
        pd.DataFrame(
            [
                {
                    "ID": "10",
                    "ENTITY_TYPE_ID": "4",
                    "ENTITY_ID": "1",
                    "ACTIVE": "Y",
                    "RQ_INN": "7701234567",
                    "RQ_KPP": "770101001",
                },
                {
                    "ID": "11",
                    "ENTITY_TYPE_ID": "4",
                    "ENTITY_ID": "2",
                    "ACTIVE": "Y",
                    "RQ_INN": "7707654321",
                    "RQ_KPP": "770702001",
                },
            ]
        ),
    )
    build(conn)
    rows = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT client_id, match_status, conflicting_fields, has_conflict FROM analytics.client_reconciliation"
        ).fetchall()
    }
    assert rows["a"] == ("matched", [], False)
    assert rows["b"] == ("matched", ["name", "kpp", "email"], True)
    assert rows["c"] == ("only_1c", [], False)


def credit_status(rows):
    base = {
        "snapshot_date": datetime(2026, 11, 25),
        "name": "x",
        "debt": Decimal("0"),
        "advances": Decimal("0"),
        "overdue_amount": Decimal("0"),
        "days_overdue": 0,
        "aging_current": Decimal("0"),
        "aging_1_30": Decimal("0"),
        "aging_31_60": Decimal("0"),
        "aging_61_90": Decimal("0"),
        "aging_90_plus": Decimal("0"),
        "credit_limit": Decimal("0"),
        "status": "ok",
    }
    return pd.DataFrame([{**base, **r} for r in rows])


def test_balance_reconciliation_compares_the_crm_value_known_latest(conn):
    replace_table(
        conn,
        "receivables",
        "client_credit_status",
        credit_status(
            [
                {"client_id": "a", "onec_ref": "r1", "company_id": 1, "balance": Decimal("100.10")},
                {"client_id": "b", "onec_ref": "r2", "company_id": 2, "balance": Decimal("200.00")},
                {"client_id": "c", "onec_ref": "r3", "company_id": 3, "balance": Decimal("300.00")},
                {"client_id": "d", "onec_ref": "r4", "company_id": None, "balance": Decimal("400.00")},
            ]
        ),
    )
    extracted = NOW - timedelta(hours=1)
    replace_table(
        conn,
        "bitrix24",
        "companies",
        pd.DataFrame(
            [
                {"ID": "1", "TITLE": "a", "UF_CRM_DEBT_SUM": "90", "_extracted_at": extracted},
                {"ID": "2", "TITLE": "b", "UF_CRM_DEBT_SUM": "150.5", "_extracted_at": extracted},
                {"ID": "3", "TITLE": "c", "UF_CRM_DEBT_SUM": None, "_extracted_at": extracted},
            ]
        ),
    )
    # Company 1 was pushed after the extract (the push is the newer truth); company 2 before it.
    replace_table(
        conn,
        "sync",
        "push_state",
        pd.DataFrame(
            [
                {
                    "flow": "company_receivables",
                    "key": "1",
                    "payload": '{"UF_CRM_DEBT_SUM": "100.10"}',
                    "pushed_at": NOW,
                },
                {
                    "flow": "company_receivables",
                    "key": "2",
                    "payload": '{"UF_CRM_DEBT_SUM": "200.00"}',
                    "pushed_at": extracted - timedelta(days=1),
                },
            ]
        ),
    )
    build(conn)
    rows = {r["client_id"]: r for r in query(conn, "SELECT * FROM analytics.balance_reconciliation").to_dict("records")}
    assert rows["a"]["status"] == "equal" and rows["a"]["difference"] == Decimal("0")
    assert rows["b"]["status"] == "crm_stale" and rows["b"]["difference"] == Decimal("-49.50")
    assert rows["c"]["status"] == "crm_missing" and rows["c"]["difference"] is None
    assert rows["d"]["status"] == "only_1c"


def test_views_build_when_the_crm_has_no_debt_field_yet(conn):
    replace_table(
        conn,
        "receivables",
        "client_credit_status",
        credit_status([{"client_id": "a", "onec_ref": "r1", "company_id": 1, "balance": Decimal("5.00")}]),
    )
    replace_table(conn, "bitrix24", "companies", pd.DataFrame([{"ID": "1", "TITLE": "a", "_extracted_at": NOW}]))
    build(conn)
    assert conn.execute("SELECT status FROM analytics.balance_reconciliation").fetchall() == [("crm_missing",)]


def test_dead_letters_are_streaks_of_three_failures_or_older_than_a_day(conn):
    t = NOW - timedelta(hours=3)
    rows = [
        # k1: three failures in a row -> dead letter
        *[
            result(f"run{i}", "k1", "failed", t + timedelta(minutes=i), error=f"boom {i}", error_class="retryable")
            for i in range(3)
        ],
        # k2: two failures -> not yet
        *[result(f"run{i}", "k2", "failed", t + timedelta(minutes=i), error="boom") for i in range(2)],
        # k3: three failures then ok -> recovered
        *[result(f"run{i}", "k3", "failed", t + timedelta(minutes=i)) for i in range(3)],
        result("run3", "k3", "ok", t + timedelta(minutes=3)),
        # k4: one rejection two days ago, still failing -> dead letter by age
        result("old", "k4", "rejected", NOW - timedelta(days=2), error="no CRM company", flow="invoices_to_crm"),
        # k5: three dry-run failures -> ignored
        *[result(f"dry{i}", "k5", "failed", t + timedelta(minutes=i), dry_run=True) for i in range(3)],
        # k6: ok, then three failures -> the streak after the success counts
        result("run0", "k6", "ok", t),
        *[result(f"run{i}", "k6", "failed", t + timedelta(minutes=i)) for i in (1, 2, 3)],
    ]
    replace_table(conn, "sync", "results", pd.DataFrame(rows))
    build(conn)
    letters = {r["key"]: r for r in query(conn, "SELECT * FROM analytics.dead_letters").to_dict("records")}
    assert set(letters) == {"k1", "k4", "k6"}
    assert letters["k1"]["failures"] == 3 and letters["k1"]["last_error"] == "boom 2"
    assert letters["k1"]["error_class"] == "retryable" and letters["k1"]["first_failure_at"] == t
    assert (
        letters["k1"]["replay_command"]
        == "python -m b24_1c_assets.dead_letters replay --flow company_receivables --key 'k1'"
    )
    assert (
        letters["k1"]["materialize_command"]
        == "dagster asset materialize -m b24_1c_assets.definitions --select 'tag:flow=company_receivables'"
    )
    assert letters["k4"]["error_class"] == "data" and letters["k4"]["failures"] == 1
    assert letters["k6"]["failures"] == 3

    runs = {
        r["run_id"]: r
        for r in query(conn, "SELECT * FROM analytics.flow_runs WHERE flow = 'company_receivables'").to_dict("records")
    }
    assert runs["run3"]["ok"] == 1 and runs["run3"]["failed"] == 1 and runs["dry0"]["dry_run"]
    latest = dict(conn.execute("SELECT key, status FROM analytics.push_latest_status").fetchall())
    assert latest["k3"] == "ok" and latest["k1"] == "failed" and "k5" not in latest


def test_revenue_reconciliation_counts_by_client_and_local_month(conn):
    replace_table(
        conn,
        "client_master",
        "clients",
        pd.DataFrame([{"client_id": "a", "onec_ref": "r1", "company_id": 1, "name": "Альфа", "match_rule": "inn_kpp"}]),
    )
    replace_table(
        conn,
        "bitrix24",
        "deals",
        pd.DataFrame(
            [
                {
                    "ID": "1",
                    "COMPANY_ID": "1",
                    "STAGE_ID": "WON",
                    "STAGE_SEMANTIC_ID": "S",
                    "OPPORTUNITY": "100.50",
                    "CLOSEDATE": "2026-06-30T00:00:00+03:00",
                },
                {
                    "ID": "2",
                    "COMPANY_ID": "1",
                    "STAGE_ID": "LOSE",
                    "STAGE_SEMANTIC_ID": "F",
                    "OPPORTUNITY": "999",
                    "CLOSEDATE": "2026-06-30T00:00:00+03:00",
                },
            ]
        ),
    )
    # 30 June 22:30 UTC is 1 July in Moscow: the order belongs to July.
    replace_table(
        conn,
        "onec",
        "customer_orders",
        pd.DataFrame(
            [
                {
                    "Ref_Key": "o1",
                    "Date": pd.Timestamp("2026-06-30 22:30", tz="UTC"),
                    "Posted": True,
                    "DeletionMark": False,
                    "Контрагент_Key": "r1",
                    "СуммаДокумента": Decimal("70.00"),
                },
                {
                    "Ref_Key": "o2",
                    "Date": pd.Timestamp("2026-06-10", tz="UTC"),
                    "Posted": False,
                    "DeletionMark": False,
                    "Контрагент_Key": "r1",
                    "СуммаДокумента": Decimal("5.00"),
                },
            ]
        ),
    )
    replace_table(
        conn,
        "onec",
        "bank_receipts",
        pd.DataFrame(
            [
                {
                    "Ref_Key": "p1",
                    "Date": pd.Timestamp("2026-06-15", tz="UTC"),
                    "Posted": True,
                    "DeletionMark": False,
                    "ВидОперации": "ОтПокупателя",
                    "Контрагент_Key": "r1",
                    "СуммаДокумента": Decimal("40.00"),
                }
            ]
        ),
    )
    build(conn)
    rows = {
        str(r["month"])[:7]: r for r in query(conn, "SELECT * FROM analytics.revenue_reconciliation").to_dict("records")
    }
    assert set(rows) == {"2026-06", "2026-07"}
    assert rows["2026-06"]["deals_won"] == 1 and rows["2026-06"]["deals_won_amount"] == Decimal("100.50")
    assert rows["2026-06"]["orders"] == 0 and rows["2026-06"]["paid_amount"] == Decimal("40.00")
    assert rows["2026-07"]["orders_amount"] == Decimal("70.00") and rows["2026-07"]["client_name"] == "Альфа"
