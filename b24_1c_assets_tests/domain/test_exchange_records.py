"""Exchange-file records mapped to the raw onec.* shapes, and settlement movements derived from balances."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from b24_1c_assets.domain import exchange_records as er

TZ = ZoneInfo("Europe/Moscow")
CP, CT, CT2 = (
    "1fa1a135-d89b-11e6-8343-40167e2531c3",
    "5c3a8e10-1b7e-11ee-9a1f-0050569c1a01",
    "6d4b9f21-1b7e-11ee-9a1f-0050569c1a01",
)
AS_OF = datetime(2026, 3, 1, tzinfo=TZ)


def invoice(ref: str, day: int, amount: str, contract: str = CT, posted: bool = True) -> dict:
    return {
        "Ref_Key": ref,
        "Number": ref,
        "Date": datetime(2026, 2, day, tzinfo=TZ),
        "Posted": posted,
        "DeletionMark": False,
        "Контрагент_Key": CP,
        "Договор_Key": contract,
        "ДокументОснование": None,
        "СуммаДокумента": Decimal(amount),
    }


def test_counterparty_contracts_become_contract_rows_owned_by_it():
    mapped = er.map_file(
        "counterparties",
        [
            {
                "Ref_Key": CP,
                "Description": "Ромашка ООО",
                "ИНН": "7707083893",
                "email": "a@b.ru",
                "phone": None,
                "DeletionMark": None,
                "Договоры": [{"Ref_Key": CT, "Description": "Договор", "СрокОплатыПокупателя": None}],
            }
        ],
        {},
        AS_OF,
    )
    (party,) = mapped.tables["counterparties"]
    (contract,) = mapped.tables["contracts"]
    assert "Договоры" not in party and party["DeletionMark"] is False
    assert json.loads(party["КонтактнаяИнформация"])[0]["АдресЭП"] == "a@b.ru"
    assert contract["Owner_Key"] == CP and contract["СрокОплатыПокупателя"] == 0
    assert not mapped.replace  # merged by key: a partial export never wipes other counterparties


def test_payments_split_by_kind_with_one_decoding_line():
    base = {
        "Number": "1",
        "Date": AS_OF,
        "Posted": True,
        "Контрагент_Key": CP,
        "Договор_Key": CT,
        "СчетНаОплату_Key": "8d04ce3c-6360-11e9-dd92-fa163e8ba11d",
        "Заказ_Key": None,
        "СуммаДокумента": Decimal("15000.50"),
    }
    tables = er.map_payments([{**base, "Ref_Key": "a", "Вид": er.BANK}, {**base, "Ref_Key": "b", "Вид": er.CASH}])
    assert [r["Ref_Key"] for r in tables["bank_receipts"]] == ["a"]
    assert [r["Ref_Key"] for r in tables["cash_receipts"]] == ["b"]
    (line,) = json.loads(tables["bank_receipts"][0]["РасшифровкаПлатежа"])
    # the real row shape: contract, invoice and order per row of РасшифровкаПлатежа, none in the header
    assert line["СчетНаОплату"] == base["СчетНаОплату_Key"] and line["СуммаПлатежа"] == "15000.50"
    assert line["Договор_Key"] == CT and line["ПризнакАванса"] is None and "ТипРасчетов" not in line
    assert "Вид" not in tables["bank_receipts"][0] and "Договор_Key" not in tables["bank_receipts"][0]


def test_complete_catalog_replaces_and_changes_only_merges():
    assert er.map_file("catalog", [], {"only_changes": False}, AS_OF).replace == {"items"}
    assert er.map_file("catalog", [], {"only_changes": True}, AS_OF).replace == frozenset()
    assert er.map_file("receivables", [], {}, AS_OF).replace == {"receivables_balance"}


def test_offers_give_price_types_and_prices_dated_at_export():
    tables = er.map_offers(
        [
            {
                "Номенклатура_Key": "i",
                "Характеристика": None,
                "ВидЦен_Key": "t",
                "Цена": Decimal("412.50"),
                "Валюта": "RUB",
                "Единица": "шт",
            }
        ],
        {"price_types": [{"Ref_Key": "t", "Description": "Розничная", "Валюта": "RUB"}]},
        AS_OF,
    )
    assert tables["price_types"][0]["Description"] == "Розничная"
    assert tables["prices"][0]["Period"] == AS_OF and tables["prices"][0]["Цена"] == Decimal("412.50")


def test_row_round_trip_keeps_kopecks_and_time_zone():
    row = {"Ref_Key": "x", "СуммаДокумента": Decimal("0.10"), "Date": AS_OF, "Posted": True}
    back = er.decode_row("invoices", er.encode_row(row))
    assert back == row and back["Date"].utcoffset() == AS_OF.utcoffset()


def balance_of(movements, contract, kind) -> Decimal:
    return sum(
        (m["Сумма"] if m["RecordType"] == "Receipt" else -m["Сумма"])
        for m in movements
        if m["Договор_Key"] == contract and m["ТипРасчетов"] == kind
    )


def test_derived_movements_reproduce_the_balance_on_the_newest_invoices():
    balance = [
        {"Контрагент_Key": CP, "Договор_Key": CT, "ТипРасчетов": "Долг", "СуммаBalance": Decimal("150.01")},
        {"Контрагент_Key": CP, "Договор_Key": CT2, "ТипРасчетов": "Аванс", "СуммаBalance": Decimal("-20.00")},
    ]
    invoices = [
        invoice("old", 1, "100.00"),
        invoice("mid", 10, "100.00"),
        invoice("new", 20, "100.00"),
        invoice("draft", 25, "999.00", posted=False),
    ]
    moves = er.derive_settlement_movements(balance, invoices, AS_OF)
    assert balance_of(moves, CT, "Долг") == Decimal("150.01")
    assert balance_of(moves, CT2, "Аванс") == Decimal("-20.00")
    debt = [(m["Документ"], m["Сумма"]) for m in moves if m["ТипРасчетов"] == "Долг"]
    assert debt == [("new", Decimal("100.00")), ("mid", Decimal("50.01"))]  # the oldest invoice was paid
    assert all(m["Period"] <= AS_OF and m["Источник"].startswith("exchange:") for m in moves)


def test_debt_no_invoice_explains_is_dated_at_as_of_and_marked():
    balance = [{"Контрагент_Key": CP, "Договор_Key": CT, "ТипРасчетов": "Долг", "СуммаBalance": Decimal("250.00")}]
    moves = er.derive_settlement_movements(balance, [invoice("only", 5, "100.00")], AS_OF)
    assert balance_of(moves, CT, "Долг") == Decimal("250.00")
    (rest,) = [m for m in moves if m["Документ"] is None]
    assert rest["Сумма"] == Decimal("150.00") and rest["Period"] == AS_OF and "no invoice" in rest["Источник"]


def test_every_raw_table_has_a_source_or_a_stated_reason():
    assert set(er.COLUMNS) == set(er.FROM_FILES) | set(er.DERIVED) | set(er.NOT_IN_FORMAT)
