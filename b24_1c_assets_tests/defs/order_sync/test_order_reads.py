"""The order flow's SQL reads give what the domain rules give over the whole tables."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import duckdb
import pandas as pd
import pytest

from b24_1c_assets.defs.order_sync import onec_orders, reads
from b24_1c_assets.domain import order_sync
from b24_1c_assets.lib import tables

STAGES = order_sync.order_stages({"0": ["EXECUTING"], "1": ["C1:EXECUTING"]})


@pytest.fixture
def conn():
    with duckdb.connect() as c:
        yield c


def store(conn, table, frame: pd.DataFrame) -> pd.DataFrame:
    table.replace(conn, frame)
    return table.read(conn)


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 5, day, hour, tzinfo=UTC)


def test_deals_at_an_order_stage_then_unfinished_ones_in_table_order(conn):
    deals = store(
        conn,
        tables.BITRIX24_DEALS,
        pd.DataFrame(
            [
                {"ID": "1", "TITLE": "a", "CATEGORY_ID": "0", "STAGE_ID": "EXECUTING", "COMPANY_ID": "5"},
                {"ID": "2", "TITLE": "b", "CATEGORY_ID": None, "STAGE_ID": "EXECUTING", "COMPANY_ID": "5"},
                {"ID": "3", "TITLE": "c", "CATEGORY_ID": "", "STAGE_ID": "WON", "COMPANY_ID": "6"},
                {"ID": "4", "TITLE": "d", "CATEGORY_ID": "1", "STAGE_ID": "C1:EXECUTING", "COMPANY_ID": None},
                {"ID": "5", "TITLE": "e", "CATEGORY_ID": "1", "STAGE_ID": "EXECUTING", "COMPANY_ID": "7"},
                {"ID": "6", "TITLE": "f", "CATEGORY_ID": "2", "STAGE_ID": None, "COMPANY_ID": "7"},
            ]
        ).assign(UF_CRM_ONEC_ORDER_NUMBER=["N1", None, None, "N4", None, None]),
    )
    got = reads.deals_for_orders(conn, STAGES, {"3", "1", "99"}, "UF_CRM_ONEC_ORDER_NUMBER", "UF_CRM_MISSING")
    at_stage = order_sync.deals_at_order_stage(deals, STAGES)
    assert list(got["ID"]) == [*at_stage["ID"], "3"] == ["1", "2", "4", "3"]
    assert list(got.columns) == ["ID", "TITLE", "COMPANY_ID", "uf_number", "uf_ref"]
    assert list(got["uf_number"]) == ["N1", None, "N4", None] and got["uf_ref"].isna().all()
    assert reads.deals_for_orders(conn, {}, set(), "x", "y").empty
    assert reads.deals_for_orders(duckdb.connect(), STAGES, {"1"}, "x", "y").empty  # no extract yet


def test_shipped_orders_by_header_or_any_row_as_the_domain_rule(conn):
    shipments = store(
        conn,
        tables.ONEC_SHIPMENTS,
        pd.DataFrame(
            [
                {"Posted": True, "Заказ": None, "Запасы": json.dumps([{"Заказ": None}, {"Заказ": "R2"}])},
                {"Posted": True, "Заказ": "R1", "Запасы": json.dumps([])},
                {"Posted": False, "Заказ": "R5", "Запасы": json.dumps([{"Заказ": "R3"}])},
                {"Posted": None, "Заказ": "R6", "Запасы": None},
                {"Posted": True, "Заказ": "", "Запасы": json.dumps([{"Заказ": 7}, "R8", {"Заказ": ""}, {"x": 1}])},
                {"Posted": True, "Заказ": None, "Запасы": json.dumps({"Заказ": "R9"})},  # not a list of rows
                {"Posted": True, "Заказ": "R4", "Запасы": json.dumps([{"Заказ": "R4"}, {"Заказ": "R10"}])},
            ]
        ),
    )
    expected = order_sync.shipped_orders(shipments)
    assert reads.shipped_orders(conn) == expected == {"R1", "R2", "R4", "R10"}
    assert reads.shipped_orders(conn, ["R2", "R3", "R10"]) == {"R2", "R10"}
    assert reads.shipped_orders(duckdb.connect()) == set()


def test_marked_orders_find_the_same_orders_as_the_whole_table(conn):
    orders = store(
        conn,
        tables.ONEC_CUSTOMER_ORDERS,
        pd.DataFrame(
            [
                {"Ref_Key": "A", "Комментарий": "b24-1c:deal:7", "Posted": True, "СуммаДокумента": Decimal("1.50")},
                {"Ref_Key": "B", "Комментарий": "заказ", "Posted": True, "СуммаДокумента": Decimal("2")},
                {"Ref_Key": "C", "Комментарий": "b24-1c:deal:x", "Posted": True, "СуммаДокумента": Decimal("3")},
                {"Ref_Key": "D", "Комментарий": None, "Posted": False, "СуммаДокумента": None},
                {"Ref_Key": "E", "Комментарий": "см. b24-1c:deal:8", "Posted": False, "СуммаДокумента": Decimal("4")},
                {"Ref_Key": "F", "Комментарий": "b24-1c:deal:7 again", "Posted": True, "СуммаДокумента": Decimal("5")},
            ]
        ).assign(Number=list("123456"), DeletionMark=False, Запасы="[]"),
    )
    marked = reads.marked_orders(conn)
    assert list(marked["Ref_Key"]) == ["A", "C", "E", "F"] and "Запасы" not in marked
    shipped = {"E"}
    assert order_sync.existing_orders(marked, shipped) == order_sync.existing_orders(orders, shipped)
    assert order_sync.existing_orders(marked, shipped)["7"]["ref"] == "F"  # the later one, as before


class FakeOneC:
    """What header_defaults asks of the 1C client: the order fields, the latest order, the order states."""

    def __init__(self, completed: set[str]):
        self.completed, self.fetched = completed, []
        self.metadata = self

    def fields(self, name):
        return {"СтруктурнаяЕдиницаПродажи_Key", "СостояниеЗаказа", "ВалютаДокумента_Key", "PredefinedDataName"}

    def has_set(self, name):
        return True

    def read_catalog(self, name, select):
        return [{"Ref_Key": s, "PredefinedDataName": "Завершен"} for s in self.completed]

    def get_object(self, name, ref, select):
        self.fetched.append(ref)
        return {"Ref_Key": ref, "СтруктурнаяЕдиницаПродажи_Key": f"unit of {ref}", "ВалютаДокумента_Key": "rub"}


def test_header_orders_give_header_defaults_the_same_orders_as_the_whole_table(conn):
    rows = [
        ("o1", t(1), True, "org1", "open"),
        ("o2", t(3), True, "org1", "done"),
        ("o3", t(2), True, "org1", "open"),
        ("o4", t(3), True, "org1", "open"),  # same moment as o2: table order decides
        ("o5", t(9), False, "org1", "open"),  # not posted
        ("o6", t(4), True, "org2", "done"),
        ("o7", None, True, "org2", "open"),  # no date: last, as pandas sorts it
        ("o8", t(5), True, "org2", None),
    ]
    orders = store(
        conn,
        tables.ONEC_CUSTOMER_ORDERS,
        pd.DataFrame(rows, columns=["Ref_Key", "Date", "Posted", "Организация_Key", "СостояниеЗаказа"]).assign(
            СостояниеЗаказа_Type="StandardODATA.Catalog_СостоянияЗаказовПокупателей", Запасы="[]"
        ),
    )
    narrow = reads.header_orders(conn)
    assert "Запасы" not in narrow and len(narrow) < len(orders)
    wanted = ("СтруктурнаяЕдиницаПродажи_Key", "СостояниеЗаказа")
    for org in (None, "org1", "org2", "org9"):
        for completed in (set(), {"done"}, {"open"}, {"open", "done"}):
            whole, part = FakeOneC(completed), FakeOneC(completed)
            expected = onec_orders.header_defaults(whole, {}, orders, wanted, organization=org)
            assert onec_orders.header_defaults(part, {}, narrow, wanted, organization=org) == expected
            assert part.fetched == whole.fetched
    whole = FakeOneC({"done"})
    assert onec_orders.header_defaults(whole, {}, narrow, wanted, organization="org1")["СостояниеЗаказа"] == "open"
    assert whole.fetched == ["o4"]


def test_extracted_at_and_the_plan_rows_to_push(conn):
    assert reads.orders_extracted_at(conn) is None
    stamp = datetime(2026, 5, 1, 12, 0)
    store(conn, tables.ONEC_CUSTOMER_ORDERS, pd.DataFrame({"Ref_Key": ["a", "b"], "_extracted_at": [stamp, None]}))
    assert reads.orders_extracted_at(conn) == stamp
    plan = pd.DataFrame(
        {"key": ["1", "2", "3"], "operation": ["noop", "create", None], "after": ["{}", '{"a": 1}', None]}
    )
    store(conn, tables.ORDER_PLAN, plan)
    assert list(reads.plan_to_push(conn, tables.ORDER_PLAN)["key"]) == ["2", "3"]


def test_project_reads_the_columns_a_table_has(conn):
    store(conn, tables.ONEC_ITEMS, pd.DataFrame({"Ref_Key": ["i1", "i2"], "DeletionMark": [False, True], "x": 1}))
    got = reads.project(conn, tables.ONEC_ITEMS, ["Ref_Key", "ЕдиницаИзмерения_Key", "DeletionMark"])
    assert list(got.columns) == ["Ref_Key", "DeletionMark"] and list(got["Ref_Key"]) == ["i1", "i2"]
    assert reads.project(conn, tables.ONEC_CONTRACTS, ["Ref_Key"]).empty
