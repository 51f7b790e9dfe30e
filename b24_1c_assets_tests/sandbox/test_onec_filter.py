"""The `$filter` parser/evaluator on hand-made records (pure: no server needed)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from b24_1c_assets.sandbox.onec_filter import ODataError, Scope, bounds, compile_filter, lambda_bounds, tokenize
from b24_1c_assets.sandbox.onec_schema import SETS

ORDER = SETS["Document_ЗаказПокупателя"]
CP = SETS["Catalog_Контрагенты"]
A = "11111111-1111-1111-1111-111111111111"
B = "22222222-2222-2222-2222-222222222222"

COUNTERPARTIES = {A: {"Ref_Key": A, "ИНН": "7707083893", "Description": "Ромашка"}}
ORDERS = [
    {
        "Ref_Key": B,
        "Number": "НФНФ-000001",
        "Date": "2026-03-15T10:00:00",
        "Контрагент_Key": A,
        "СуммаДокумента": Decimal("1500.50"),
        "Комментарий": "b24:deal:42",
        "DeletionMark": False,
        "СостояниеЗаказа": "33333333-3333-3333-3333-333333333333",
        "СостояниеЗаказа_Type": "StandardODATA.Catalog_СостоянияЗаказовПокупателей",
        "Запасы": [{"LineNumber": 1, "Цена": Decimal("100")}, {"LineNumber": 2, "Цена": Decimal("20000")}],
    },
    {
        "Ref_Key": A,
        "Number": "НФНФ-000002",
        "Date": "2026-04-01T00:00:00",
        "Контрагент_Key": B,
        "СуммаДокумента": Decimal("10"),
        "Комментарий": "",
        "DeletionMark": True,
        "СостояниеЗаказа": "",
        "СостояниеЗаказа_Type": "StandardODATA.Undefined",
        "Запасы": [],
    },
]


def run(text: str, es=ORDER, records=ORDERS) -> list[str]:
    node = compile_filter(
        text,
        es,
        lambda s, k: COUNTERPARTIES.get(k) if s == "Catalog_Контрагенты" else None,
        lambda name: Scope.of(SETS[name]),
    )
    return [r["Number"] for r in records if node.fn(r, {})]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Number eq 'НФНФ-000001'", ["НФНФ-000001"]),
        ("СуммаДокумента gt 100 and not DeletionMark", ["НФНФ-000001"]),
        ("СуммаДокумента add 10 ge 20 or DeletionMark eq true", ["НФНФ-000001", "НФНФ-000002"]),
        ("Date ge datetime'2026-03-01T00:00:00' and Date lt datetime'2026-04-01T00:00:00'", ["НФНФ-000001"]),
        ("year(Date) eq 2026 and month(Date) eq 4", ["НФНФ-000002"]),
        ("Контрагент/ИНН eq '7707083893'", ["НФНФ-000001"]),
        ("substringof('deal:42', Комментарий)", ["НФНФ-000001"]),
        ("startswith(Number, 'нфнф') and endswith(Number, '2')", ["НФНФ-000002"]),
        ("like(Комментарий, 'b24:%')", ["НФНФ-000001"]),
        ("Запасы/any(d: d/Цена gt 10000)", ["НФНФ-000001"]),
        ("Запасы/all(d: d/Цена gt 10000)", ["НФНФ-000002"]),
        ("isof(СостояниеЗаказа, 'Catalog_СостоянияЗаказовПокупателей')", ["НФНФ-000001"]),
        (
            "СостояниеЗаказа eq cast(guid'33333333-3333-3333-3333-333333333333', "
            "'Catalog_СостоянияЗаказовПокупателей')",
            ["НФНФ-000001"],
        ),
        ("СостояниеЗаказа eq guid'33333333-3333-3333-3333-333333333333'", []),
        (f"Ref_Key eq guid'{B.upper()}'", ["НФНФ-000001"]),
        ("Комментарий eq 'it''s'", []),
        ("datedifference(Date, datetime'2026-04-01T00:00:00', 'day') gt 10", ["НФНФ-000001"]),
    ],
)
def test_filter_semantics(text, expected):
    assert run(text) == expected


@pytest.mark.parametrize(
    "text,status,code",
    [
        ("Number eq", 400, "14"),
        ("(Number eq 'a'", 400, "14"),
        ("Number eq 'a' xor true", 400, "14"),
        ("Date ge datetime'2026-03-01'", 400, "14"),  # date-only literal
        ("toupper(Number) eq 'A'", 400, "21"),
        ("length(Number) gt 1", 400, "21"),
        ("substringof('a')", 400, "21"),
        ("Нет eq 1", 400, "14"),
        (f"Ref_Key ge guid'{A}'", 500, "-1"),
        ("Date ge datetime'2026-03-01T00:00:00'+and+DeletionMark eq false", 500, "-1"),
    ],
)
def test_filter_errors(text, status, code):
    with pytest.raises(ODataError) as info:
        run(text)
    assert (info.value.status, info.value.code) == (status, code)


def test_plus_inside_a_string_literal_is_fine():
    assert [t.value for t in tokenize("Description eq 'a+b'") if t.kind == "str"] == ["a+b"]


def test_bounds_for_index_windows():
    node = compile_filter(
        "Date ge datetime'2026-01-01T00:00:00' and Date lt datetime'2026-02-01T00:00:00' and DeletionMark eq false",
        ORDER,
        lambda s, k: None,
        lambda n: None,
    )
    assert bounds(node, "Date") == ("2026-01-01T00:00:00", True, "2026-02-01T00:00:00", False)
    either = compile_filter(
        "Date ge datetime'2026-01-01T00:00:00' or DeletionMark eq false", ORDER, lambda s, k: None, lambda n: None
    )
    assert bounds(either, "Date") is None  # an 'or' can't narrow the scan
    records = SETS["AccumulationRegister_РасчетыСПокупателями"]
    lam = compile_filter(
        "RecordSet/any(r: r/Period ge datetime'2026-01-01T00:00:00' and r/Period le datetime'2026-01-31T23:59:59')",
        records,
        lambda s, k: None,
        lambda n: None,
    )
    assert lambda_bounds(lam, "RecordSet", "Period") == ("2026-01-01T00:00:00", True, "2026-01-31T23:59:59", True)
