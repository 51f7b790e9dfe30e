"""The invoice plan's SQL reads give what the domain rules give over the whole tables, to the kopeck."""

from datetime import UTC, datetime
from decimal import Decimal

import duckdb
import pandas as pd
import pytest

from b24_1c_assets.defs.invoice_sync import reads
from b24_1c_assets.domain import invoice_sync
from b24_1c_assets.lib import tables

STAGES = {invoice_sync.UNPAID: "N", invoice_sync.PARTLY_PAID: "S", invoice_sync.PAID: "P"}


@pytest.fixture
def conn():
    with duckdb.connect() as c:
        yield c


def store(conn, table, frame: pd.DataFrame, **types) -> pd.DataFrame:
    table.replace(conn, frame, column_types=types or None)
    return table.read(conn)


def D(text: str) -> Decimal:  # noqa: N802
    return Decimal(text)


def test_payment_totals_summed_in_sql_equal_the_rows_summed_in_python(conn):
    payments = store(
        conn,
        tables.ONEC_INVOICE_PAYMENTS,
        pd.DataFrame(
            [
                ("i1", True, "Receipt", D("100.0000"), D("0"), D("0")),
                ("i1", True, "Expense", D("0"), D("30.1250"), D("0.1350")),  # half to even: 30.12, 0.14
                ("i1", None, None, D("0"), D("0.0050"), None),
                ("i2", False, "Receipt", D("999"), D("999"), D("999")),  # inactive: not counted
                ("o1", True, "Receipt", None, D("70.5"), D("-0.0051")),
                ("i3", False, "Receipt", D("5"), D("5"), D("5")),
            ],
            columns=["СчетНаОплату", "Active", "RecordType", "Сумма", "СуммаОплаты", "СуммаАванса"],
        ),
        Сумма="DECIMAL(38,4)",
        СуммаОплаты="DECIMAL(38,4)",
        СуммаАванса="DECIMAL(38,4)",
    )
    expected = invoice_sync.payment_totals(payments)
    got = reads.payment_totals(conn)
    assert got == expected and {k: tuple(map(str, v)) for k, v in got.items()} == {
        k: tuple(map(str, v)) for k, v in expected.items()
    }
    assert got["i1"] == (D("100.00"), D("-30.26")) and "i2" not in got
    assert reads.payment_totals(duckdb.connect()) == {}


def test_payment_totals_without_the_optional_columns(conn):
    payments = store(
        conn, tables.ONEC_INVOICE_PAYMENTS, pd.DataFrame({"СчетНаОплату": ["i1", "i1"], "Сумма": [D("1.5"), D("2")]})
    )
    assert reads.payment_totals(conn) == invoice_sync.payment_totals(payments) == {"i1": (D("3.50"), D("0.00"))}


def test_desired_invoices_from_the_sql_reads_equal_those_from_the_whole_tables(conn):
    day = datetime(2026, 5, 1, tzinfo=UTC)
    invoices = store(
        conn,
        tables.ONEC_INVOICES,
        pd.DataFrame(
            [
                ("i1", "1", day, True, False, "cp1", D("60"), "o1"),
                ("i2", "2", day, True, False, "cp1", D("40"), "o1"),
                ("i3", "3", None, False, False, "cp1", D("5"), None),
                ("i4", "4", day, True, True, "cp2", D("5"), "o2"),
                ("i5", "5", day, None, False, "cp9", D("5"), None),
                ("i6", "6", day, True, False, "cp9", D("7"), None),
            ],
            columns=["Ref_Key", "Number", "Date", "Posted", "DeletionMark", "Контрагент_Key", "СуммаДокумента"]
            + ["ДокументОснование"],
        ).assign(Запасы="[]"),
    )
    payments = store(
        conn,
        tables.ONEC_INVOICE_PAYMENTS,
        pd.DataFrame({"СчетНаОплату": ["o1", "i4"], "Сумма": [D("0"), D("5")], "СуммаОплаты": [D("70"), D("1")]}),
    )
    orders = store(
        conn,
        tables.ONEC_CUSTOMER_ORDERS,
        pd.DataFrame({"Ref_Key": ["o1", "o2", "o3"], "Комментарий": ["b24-1c:deal:42", "просто", None]}),
    )
    clients = pd.DataFrame({"onec_ref": ["cp1", "cp2"], "company_id": [5, 6]})
    posted = reads.posted_invoices(conn)
    assert list(posted["Ref_Key"]) == ["i1", "i2", "i4", "i6"] and "Запасы" not in posted
    assert list(reads.marked_orders(conn)["Ref_Key"]) == ["o1"]
    expected = invoice_sync.desired_invoices(invoices, invoice_sync.payment_totals(payments), clients, orders, STAGES)
    got = invoice_sync.desired_invoices(posted, reads.payment_totals(conn), clients, reads.marked_orders(conn), STAGES)
    pd.testing.assert_frame_equal(got[0], expected[0])
    pd.testing.assert_frame_equal(got[1], expected[1])
    assert list(got[0]["paid"]) == [D("60.00"), D("10.00")] and list(got[0]["parentId2"]) == [42, 42]
    assert list(got[1]["key"]) == ["i6"]  # i4 is marked for deletion, i3 and i5 are not posted


def test_crm_invoice_ids_read_only_xml_id_and_id(conn):
    assert reads.crm_invoice_ids(conn).empty
    store(conn, tables.BITRIX24_SMART_INVOICES, pd.DataFrame({"id": ["1", "2"], "xmlId": ["a", None], "title": "t"}))
    assert reads.crm_invoice_ids(conn).to_dict("list") == {"xmlId": ["a", None], "id": ["1", "2"]}


def test_linked_clients_as_current_clients_with_the_companies_made_since_matching(conn):
    from b24_1c_assets.defs.client_master.reads import current_clients

    store(
        conn,
        tables.CLIENTS,
        pd.DataFrame(
            {
                "client_id": ["c1", "c2", "c3"],
                "onec_ref": ["cp1", "cp2", None],
                "company_id": pd.array([5, None, 7], dtype="Int64"),
                "match_rule": ["inn_kpp", "only_1c", "only_crm"],
                "emails": "[]",
            }
        ),
    )
    assert list(reads.linked_clients(conn).columns) == ["onec_ref", "company_id"]
    assert reads.linked_clients(conn)["company_id"].isna().tolist() == [False, True, False]
    conn.execute("CREATE SCHEMA sync")
    conn.execute(
        "CREATE TABLE sync.push_state (flow VARCHAR, key VARCHAR, payload VARCHAR, payload_hash VARCHAR, "
        "target_id VARCHAR, pushed_at TIMESTAMP)"
    )
    conn.execute("INSERT INTO sync.push_state VALUES ('company_sync.to_crm', 'cp2', '{}', 'h', '9', now())")
    got = reads.linked_clients(conn)
    assert list(got["company_id"]) == [5, 9, 7]
    pd.testing.assert_frame_equal(got[["onec_ref", "company_id"]], current_clients(conn)[["onec_ref", "company_id"]])
