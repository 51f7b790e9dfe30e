"""Pure rules of the deal push: which deals become which 1C orders, and what happens on change."""

import json
from decimal import Decimal

import pandas as pd

from b24_1c_assets.domain import order_sync as o
from b24_1c_assets.domain.push_plan import Operation, payload_hash

DEALS = pd.DataFrame(
    [
        {"ID": "1", "TITLE": "ok", "CATEGORY_ID": "0", "STAGE_ID": "EXECUTING", "COMPANY_ID": "10"},
        {"ID": "2", "TITLE": "no twin", "CATEGORY_ID": "0", "STAGE_ID": "EXECUTING", "COMPANY_ID": "11"},
        {"ID": "3", "TITLE": "bad product", "CATEGORY_ID": "1", "STAGE_ID": "C1:EXECUTING", "COMPANY_ID": "10"},
        {"ID": "4", "TITLE": "early", "CATEGORY_ID": "0", "STAGE_ID": "NEW", "COMPANY_ID": "10"},
    ]
)
CLIENTS = pd.DataFrame([{"onec_ref": "cp", "company_id": 10}, {"onec_ref": None, "company_id": 11}])
# 3.0: the default contract from ОсновныеДоговорыКонтрагента (k1: not the latest valid one, k2)
COUNTERPARTIES = pd.DataFrame(
    [
        {
            "Ref_Key": "cp",
            "default_contracts": json.dumps(
                [{"Организация_Key": "org", "ВидДоговора": "СПокупателем", "Договор_Key": "k1"}]
            ),
        }
    ]
)
CONTRACTS = pd.DataFrame(
    [
        {
            "Ref_Key": "old",
            "Owner_Key": "cp",
            "DeletionMark": True,
            "ДатаДоговора": pd.Timestamp("2020-01-01", tz="UTC"),
        },
        {
            "Ref_Key": "k1",
            "Owner_Key": "cp",
            "DeletionMark": False,
            "ДатаДоговора": pd.Timestamp("2021-01-01", tz="UTC"),
            "Организация_Key": "org",
        },
        {
            "Ref_Key": "k2",
            "Owner_Key": "cp",
            "DeletionMark": False,
            "ДатаДоговора": pd.Timestamp("2024-01-01", tz="UTC"),
            "Организация_Key": "org",
            "ВидЦен_Key": "pt",
            "ВалютаРасчетов_Key": "rub",
        },
    ]
)
ITEMS = pd.DataFrame([{"Ref_Key": "it", "DeletionMark": False, "ЕдиницаИзмерения_Key": "pcs"}])
PRODUCTS = pd.DataFrame([{"ID": "100", "XML_ID": "it"}, {"ID": "101", "XML_ID": None}])
ROWS = {
    "1": [{"PRODUCT_ID": 100, "PRICE": 10.5, "QUANTITY": 2.0}],
    "3": [{"PRODUCT_ID": 101, "PRODUCT_NAME": "Без 1С", "PRICE": 1, "QUANTITY": 1}],
}
STAGES = o.order_stages({"0": ["EXECUTING"], "1": ["C1:EXECUTING"]})


def desired():
    deals = o.deals_at_order_stage(DEALS, STAGES)
    return o.desired_orders(deals, ROWS, CLIENTS, COUNTERPARTIES, CONTRACTS, ITEMS, PRODUCTS)


def test_deals_at_order_stage_map_to_counterparty_default_contract_and_items():
    wanted, rejects = desired()
    assert list(wanted["key"]) == ["1"]
    row = wanted.iloc[0]
    assert (row["counterparty"], row["contract"], row["amount"]) == ("cp", "k1", Decimal("21.00"))
    assert json.loads(row["rows"]) == [["it", "2", "10.50", "pcs"]]
    reasons = dict(zip(rejects["key"], rejects["reason"]))
    assert set(reasons) == {"2", "3"}
    assert "deal 2" in reasons["2"] and "no 1C counterparty" in reasons["2"]
    assert "deal 3" in reasons["3"] and "Без 1С" in reasons["3"]


def test_plan_creates_then_links_after_a_crash_then_updates_or_conflicts():
    wanted, rejects = desired()
    empty = pd.DataFrame(columns=["key", "payload", "payload_hash", "target_id"])
    plan = o.plan_orders(wanted, rejects, {}, empty, set()).set_index("key")
    assert plan.loc["1", "operation"] == Operation.CREATE and plan.loc["2", "operation"] == Operation.REJECTED
    existing = {"1": {"ref": "R", "number": "N1", "posted": True, "amount": Decimal("21.00"), "shipped": False}}
    assert (
        o.plan_orders(wanted, rejects, existing, empty, set()).set_index("key").loc["1", "operation"] == Operation.LINK
    )
    before = {"counterparty": "cp", "contract": "k2", "amount": "20.00", "rows": "[]"}
    pushed = pd.DataFrame(
        [{"key": "1", "payload": json.dumps(before), "payload_hash": payload_hash(before), "target_id": "R"}]
    )
    assert o.plan_orders(wanted, rejects, existing, pushed, set()).set_index("key").loc["1", "operation"] == "update"
    existing["1"]["shipped"] = True
    assert (
        o.plan_orders(wanted, rejects, existing, pushed, set()).set_index("key").loc["1", "operation"]
        == Operation.CONFLICT
    )


def test_order_header_and_rows_for_1c():
    header = o.order_header(
        {"organization": "org", "price_type": "pt", "currency": "rub"},
        {"counterparty": "cp", "contract": "k2", "amount": "21.00"},
        {"СтруктурнаяЕдиницаПродажи_Key": "dept", "ВидЦен_Key": "", "ВидОперации": "ЗаказНаПродажу"},
    )
    assert header["ВидЦен_Key"] == "pt" and header["СтруктурнаяЕдиницаПродажи_Key"] == "dept"
    assert header["СуммаДокумента"] == Decimal("21.00") and header["Договор_Key"] == "k2"
    (row,) = o.stock_rows(json.dumps([["it", "2", "10.50", "pcs"]]), "wh")
    assert row["Номенклатура_Type"] == o.ITEM_TYPE and row["Сумма"] == Decimal("21.00")
    assert row["СтруктурнаяЕдиницаРезерв_Key"] == "wh" and row["ЕдиницаИзмерения"] == "pcs"
    assert o.marker(42) == "b24-1c:deal:42" and o.deal_of_comment("x b24-1c:deal:42") == 42


def test_contract_is_the_default_else_the_only_one_never_a_guess():
    # the default deleted: rejected, not replaced by the latest valid one
    contract, why = o.client_contract(o.contracts_by_owner(CONTRACTS), "cp", ["old"])
    assert contract is None and "default contract old" in why
    # 1.6 / exchange folder: ДоговорПоУмолчанию_Key on the counterparty
    assert o.default_contracts(pd.DataFrame([{"Ref_Key": "cp", "ДоговорПоУмолчанию_Key": "k2"}])) == {"cp": ["k2"]}
    assert o.client_contract(o.contracts_by_owner(CONTRACTS), "cp", ["k2"])[0]["Ref_Key"] == "k2"
    # no default: the only valid one, else nothing
    assert (
        o.client_contract(o.contracts_by_owner(CONTRACTS[CONTRACTS["Ref_Key"] != "k2"]), "cp", [])[0]["Ref_Key"] == "k1"
    )
    contract, why = o.client_contract(o.contracts_by_owner(CONTRACTS), "cp", [])
    assert contract is None and "2 valid sales contracts and no default" in why
    # a default of another kind (a supplier contract) is not a sales default
    supplier = pd.DataFrame(
        [
            {
                "Ref_Key": "cp",
                "default_contracts": [{"Организация_Key": "org", "ВидДоговора": "СПоставщиком", "Договор_Key": "k2"}],
            }
        ]
    )
    assert o.default_contracts(supplier) == {"cp": []}


def test_an_order_shipped_row_by_row_counts_as_shipped():
    shipments = pd.DataFrame(
        [
            {"Posted": True, "Заказ": None, "Запасы": json.dumps([{"Заказ": None}, {"Заказ": "R2"}])},
            {"Posted": True, "Заказ": "R1", "Запасы": json.dumps([])},
            {"Posted": False, "Заказ": None, "Запасы": json.dumps([{"Заказ": "R3"}])},
        ]
    )
    assert o.shipped_orders(shipments) == {"R1", "R2"}
    orders = pd.DataFrame(
        [
            {
                "Ref_Key": "R2",
                "Комментарий": "b24-1c:deal:7",
                "Posted": True,
                "DeletionMark": False,
                "Number": "N",
                "СуммаДокумента": 1,
            }
        ]
    )
    assert o.existing_orders(orders, o.shipped_orders(shipments))["7"]["shipped"] is True


def test_vat_rate_of_each_row_from_the_item():
    rates = [
        {"Ref_Key": "r20", "Description": "20%", "Ставка": 20, "ВидСтавкиНДС": "Общая"},
        {"Ref_Key": "r18", "Description": "18%", "Ставка": 18, "ВидСтавкиНДС": "Общая"},
        {
            "Ref_Key": "r20c",
            "Description": "20% / 120%",
            "Ставка": 20,
            "ВидСтавкиНДС": "ОбщаяРасчетная",
            "Расчетная": True,
        },
        {"Ref_Key": "r10", "Description": "10%", "Ставка": 10, "ВидСтавкиНДС": "Пониженная"},
        {"Ref_Key": "r0", "Description": "Без НДС", "Ставка": 0, "НеОблагается": True},
    ]
    items = pd.DataFrame(
        [
            {"Ref_Key": "a", "ВидСтавкиНДС": "Общая"},
            {"Ref_Key": "b", "ВидСтавкиНДС": "Пониженная"},
            {"Ref_Key": "c", "ВидСтавкиНДС": "БезНДС"},
            {"Ref_Key": "d", "СтавкаНДС_Key": "r10"},
            {"Ref_Key": "e"},
        ]
    )
    vat = o.item_vat_rates(items, rates)
    assert vat == {"a": ("r20", 20), "b": ("r10", 10), "c": ("r0", 0), "d": ("r10", 10)}
    row, cheap = o.stock_rows(json.dumps([["a", "1", "120.00", None], ["b", "2", "55.00", None]]), None, vat)
    assert (row["СтавкаНДС_Key"], row["СуммаНДС"], row["Всего"]) == ("r20", Decimal("20.00"), Decimal("120.00"))
    assert (cheap["СтавкаНДС_Key"], cheap["СуммаНДС"]) == ("r10", Decimal("10.00"))
    (net,) = o.stock_rows(json.dumps([["a", "1", "100.00", None]]), None, vat, amounts_include_vat=False)
    assert (net["СуммаНДС"], net["Всего"]) == (Decimal("20.00"), Decimal("120.00"))
    try:
        o.stock_rows(json.dumps([["e", "1", "1.00", None]]), None, vat)
    except ValueError as exc:
        assert "1C item e has no VAT rate" in str(exc)
    else:
        raise AssertionError("an item without a VAT rate must not make an order row")
