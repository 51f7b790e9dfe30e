"""Exchange-folder records (docs/exchange-format.md) mapped to the raw `onec.*` table shapes (pure, no I/O).

The OData extracts define the shape: same column names, same SQL types, tabular sections as JSON text.
Columns the exchange format does not carry stay NULL (never guessed). What the format cannot give at all:

* `customer_orders`, `shipments`, `invoice_payments` — no such file type: the tables stay empty.
* `settlement_movements` — no register movements in the format. They are *derived* from the `receivables`
  balance (so balances equal 1C's to the kopeck) and placed on the newest invoices of each contract (debt
  is paid oldest first, so what is still owed is the latest invoiced); a debt the invoices cannot cover is
  dated at the balance's `as_of` and marked unexplained. Every derived row says so in `Источник`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

V, B, N, D, T = "VARCHAR", "BOOLEAN", "BIGINT", "DECIMAL(38,2)", "TIMESTAMP WITH TIME ZONE"

_DOC = [
    ("Ref_Key", V),
    ("DataVersion", V),
    ("Number", V),
    ("Date", T),
    ("DeletionMark", B),
    ("Posted", B),
    ("Организация_Key", V),
]
_RECEIPT = _DOC + [
    ("ВидОперации", V),
    ("Контрагент_Key", V),
    ("СуммаДокумента", D),
    ("НазначениеПлатежа", V),
    ("Комментарий", V),
    ("РасшифровкаПлатежа", V),
]

# Column -> SQL type per raw table, in the OData extract's order (extra exchange-only columns last).
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "counterparties": [
        ("Ref_Key", V),
        ("DataVersion", V),
        ("Description", V),
        ("Code", V),
        ("DeletionMark", B),
        ("Parent_Key", V),
        ("IsFolder", B),
        ("НаименованиеПолное", V),
        ("ИНН", V),
        ("КПП", V),
        ("РегистрационныйНомер", V),
        ("ВидКонтрагента", V),
        ("ЮридическоеФизическоеЛицо", V),
        ("СтранаРегистрации_Key", V),
        ("Покупатель", B),
        ("Поставщик", B),
        ("ДоговорПоУмолчанию_Key", V),
        ("Ответственный_Key", V),
        ("Комментарий", V),
        ("КонтактнаяИнформация", V),
        ("email", V),
        ("phone", V),
        ("default_contracts", V),
    ],
    "contracts": [
        ("Ref_Key", V),
        ("DataVersion", V),
        ("Description", V),
        ("Code", V),
        ("DeletionMark", B),
        ("Owner_Key", V),
        ("Owner", V),
        ("Owner_Type", V),
        ("НомерДоговора", V),
        ("ДатаДоговора", T),
        ("ВидДоговора", V),
        ("Организация_Key", V),
        ("ВалютаРасчетов_Key", V),
        ("ВидЦен_Key", V),
        ("СрокОплатыПокупателя", N),
        ("Недействителен", B),
    ],
    "items": [
        ("Ref_Key", V),
        ("DataVersion", V),
        ("Description", V),
        ("Code", V),
        ("DeletionMark", B),
        ("Parent_Key", V),
        ("IsFolder", B),
        ("Артикул", V),
        ("ТипНоменклатуры", V),
        ("ЕдиницаИзмерения_Key", V),
        ("ВидСтавкиНДС", V),
        ("СтавкаНДС_Key", V),
        ("Недействителен", B),
        ("Комментарий", V),
        ("ЕдиницаИзмерения", V),
        ("СтавкаНДС", N),
        ("Группы", V),
    ],
    "price_types": [
        ("Ref_Key", V),
        ("Description", V),
        ("Code", V),
        ("DeletionMark", B),
        ("ВалютаЦены_Key", V),
        ("ЦенаВключаетНДС", B),
        ("Валюта", V),
    ],
    "prices": [
        ("Period", T),
        ("ВидЦен_Key", V),
        ("Номенклатура_Key", V),
        ("Характеристика_Key", V),
        ("Цена", D),
        ("ЕдиницаИзмерения_Key", V),
        ("ЕдиницаИзмерения", V),
        ("ЕдиницаИзмерения_Type", V),
        ("Валюта", V),
        ("Единица", V),
    ],
    "customer_orders": _DOC
    + [
        ("Контрагент_Key", V),
        ("Договор_Key", V),
        ("Ответственный_Key", V),
        ("СуммаДокумента", D),
        ("ВидЦен_Key", V),
        ("Комментарий", V),
        ("СостояниеЗаказа", V),
        ("СостояниеЗаказа_Type", V),
        ("ДатаОтгрузки", T),
        ("ОплатаДо", T),
        ("ДатаИзменения", T),
        ("Запасы", V),
        ("ПлатежныйКалендарь", V),
    ],
    "invoices": _DOC
    + [
        ("Контрагент_Key", V),
        ("Договор_Key", V),
        ("СуммаДокумента", D),
        ("Комментарий", V),
        ("ДокументОснование", V),
        ("ДокументОснование_Type", V),
        ("Запасы", V),
        ("ОплатаДо", T),
    ],
    "shipments": _DOC
    + [
        ("Контрагент_Key", V),
        ("Договор_Key", V),
        ("Ответственный_Key", V),
        ("СуммаДокумента", D),
        ("Комментарий", V),
        ("Заказ", V),
        ("Заказ_Type", V),
        ("Запасы", V),
    ],
    "bank_receipts": _RECEIPT,
    "cash_receipts": [c for c in _RECEIPT if c[0] != "НазначениеПлатежа"],
    "settlement_movements": [
        ("Recorder", V),
        ("Period", T),
        ("LineNumber", N),
        ("Active", B),
        ("RecordType", V),
        ("Организация_Key", V),
        ("Контрагент_Key", V),
        ("Договор_Key", V),
        ("Документ", V),
        ("Документ_Type", V),
        ("Заказ", V),
        ("Заказ_Type", V),
        ("ТипРасчетов", V),
        ("Сумма", D),
        ("СуммаВал", D),
        ("СуммаРег", D),
        ("Recorder_Type", V),
        ("Источник", V),
    ],
    "invoice_payments": [
        ("Recorder", V),
        ("Period", T),
        ("LineNumber", N),
        ("Active", B),
        ("RecordType", V),
        ("Организация_Key", V),
        ("СчетНаОплату", V),
        ("СчетНаОплату_Type", V),
        ("Сумма", D),
        ("СуммаОплаты", D),
        ("СуммаАванса", D),
        ("Recorder_Type", V),
    ],
    "receivables_balance": [
        ("Контрагент_Key", V),
        ("Договор_Key", V),
        ("ТипРасчетов", V),
        ("СуммаBalance", D),
        ("СуммаВалBalance", D),
        ("СуммаРегBalance", D),
    ],
}

# What each raw table is when 1C is read from the exchange folder.
FROM_FILES = {
    "counterparties": "counterparties",
    "contracts": "counterparties",
    "invoices": "invoices",
    "bank_receipts": "payments",
    "cash_receipts": "payments",
    "receivables_balance": "receivables",
    "items": "catalog",
    "price_types": "offers",
    "prices": "offers",
}
DERIVED = {
    "settlement_movements": "derived from the receivables balance and invoices (the exchange format has "
    "no register movements): balances are exact, aging follows invoice dates"
}
NOT_IN_FORMAT = {
    t: "the exchange format has no such file type; the table is left empty"
    for t in ("customer_orders", "shipments", "invoice_payments")
}

# Key of a row per table: a newer file's row replaces the stored one with the same key.
KEYS = {
    "prices": ("Номенклатура_Key", "Характеристика_Key", "ВидЦен_Key"),
    "receivables_balance": ("Контрагент_Key", "Договор_Key", "ТипРасчетов"),
}

_NOMENCLATURE = "StandardODATA.Catalog_Номенклатура"
_ORDER = "StandardODATA.Document_ЗаказПокупателя"
_INVOICE = "StandardODATA.Document_СчетНаОплату"
BANK, CASH = "ПоступлениеНаСчет", "ПоступлениеВКассу"


def column_types(table: str) -> dict[str, str]:
    return dict(COLUMNS[table])


def row_key(table: str, row: dict) -> str:
    """The row's identity as text (Ref_Key for catalogs and documents)."""
    return "|".join(str(row.get(k) or "") for k in KEYS.get(table, ("Ref_Key",)))


@dataclass
class MappedFile:
    """What one exchange file contributes: rows per raw table, and whether they replace the whole table
    (a full snapshot: receivables, a complete catalog) or are merged by key (documents, changes-only)."""

    tables: dict[str, list[dict]]
    replace: frozenset[str]


def _text(value: Any) -> str | None:
    return None if value is None else format(value, "f") if isinstance(value, Decimal) else str(value)


def _json(rows: list[dict]) -> str:
    return json.dumps(rows, ensure_ascii=False)


def _contact_info(record: dict) -> str:
    rows = []
    if record.get("email"):
        rows.append(
            {
                "LineNumber": len(rows) + 1,
                "Тип": "АдресЭлектроннойПочты",
                "АдресЭП": record["email"],
                "Представление": record["email"],
            }
        )
    if record.get("phone"):
        rows.append(
            {
                "LineNumber": len(rows) + 1,
                "Тип": "Телефон",
                "НомерТелефона": record["phone"],
                "Представление": record["phone"],
            }
        )
    return _json(rows)


def _known(record: dict) -> dict:
    """The record's plain fields (known and unknown extra ones, kept as sent); tabular sections dropped."""
    return {k: v for k, v in record.items() if not isinstance(v, (list, dict))}


def map_counterparties(records: Iterable[dict]) -> dict[str, list[dict]]:
    parties, contracts = [], []
    for r in records:
        row = _known(r)
        row.update(
            {"IsFolder": False, "DeletionMark": bool(r.get("DeletionMark")), "КонтактнаяИнформация": _contact_info(r)}
        )
        parties.append(row)
        for c in r.get("Договоры") or []:
            contracts.append(
                {
                    **_known(c),
                    "Owner_Key": r["Ref_Key"],
                    "Owner": r["Ref_Key"],
                    "Owner_Type": "StandardODATA.Catalog_Контрагенты",
                    "DeletionMark": False,
                    "СрокОплатыПокупателя": c.get("СрокОплатыПокупателя") or 0,
                }
            )
    return {"counterparties": parties, "contracts": contracts}


def map_invoices(records: Iterable[dict]) -> dict[str, list[dict]]:
    out = []
    for r in records:
        row = _known(r)
        order = row.pop("Заказ_Key", None)
        row.update(
            {
                "DeletionMark": bool(r.get("DeletionMark")),
                "ДокументОснование": order,
                "ДокументОснование_Type": _ORDER if order else None,
                "Запасы": _json(
                    [
                        {
                            "LineNumber": ln["LineNumber"],
                            "Номенклатура": ln["Номенклатура_Key"],
                            "Номенклатура_Type": _NOMENCLATURE,
                            "Количество": _text(ln["Количество"]),
                            "Цена": _text(ln["Цена"]),
                            "Сумма": _text(ln["Сумма"]),
                            "Всего": _text(ln["Сумма"]),
                        }
                        for ln in r.get("Запасы") or []
                    ]
                ),
            }
        )
        out.append(row)
    return {"invoices": out}


def map_payments(records: Iterable[dict]) -> dict[str, list[dict]]:
    bank, cash = [], []
    for r in records:
        row = _known(r)
        kind = row.pop("Вид")
        invoice, order = row.pop("СчетНаОплату_Key", None), row.pop("Заказ_Key", None)
        contract = row.pop("Договор_Key", None)  # UNF has no header contract on a payment: it is per row
        # One decoding line (РасшифровкаПлатежа), as 1C fills it for a payment against one invoice/order; the
        # advance flag is not in the format, so it stays empty rather than guessed.
        line = {
            "LineNumber": 1,
            "Договор_Key": contract,
            "ПризнакАванса": None,
            "Заказ": order,
            "Заказ_Type": _ORDER if order else None,
            "СчетНаОплату": invoice,
            "СчетНаОплату_Type": _INVOICE if invoice else None,
            "Документ": None,
            "Документ_Type": None,
            "СуммаПлатежа": _text(r["СуммаДокумента"]),
            "СуммаРасчетов": _text(r["СуммаДокумента"]),
        }
        row.update(
            {
                "DeletionMark": bool(r.get("DeletionMark")),
                "ВидОперации": "ОтПокупателя",
                "РасшифровкаПлатежа": _json([line]),
            }
        )
        (bank if kind == BANK else cash).append(row)
    return {"bank_receipts": bank, "cash_receipts": cash}


def map_receivables(records: Iterable[dict]) -> dict[str, list[dict]]:
    return {"receivables_balance": [_known(r) for r in records]}


def map_catalog(records: Iterable[dict]) -> dict[str, list[dict]]:
    rows = []
    for r in records:
        row = _known(r)
        row.update(
            {
                "IsFolder": False,
                "DeletionMark": bool(r.get("DeletionMark")),
                "Группы": _json(list(r.get("Группы") or [])),
            }
        )
        rows.append(row)
    return {"items": rows}


def map_offers(records: Iterable[dict], header: dict, exported_at: datetime | None) -> dict[str, list[dict]]:
    types = [
        {"Ref_Key": t["Ref_Key"], "Description": t.get("Description"), "Валюта": t.get("Валюта"), "DeletionMark": False}
        for t in header.get("price_types") or []
    ]
    prices = [
        {
            "Period": exported_at,
            "ВидЦен_Key": r["ВидЦен_Key"],
            "Номенклатура_Key": r["Номенклатура_Key"],
            "Характеристика_Key": r.get("Характеристика"),
            "Цена": r["Цена"],
            "Валюта": r.get("Валюта"),
            "Единица": r.get("Единица"),
        }
        for r in records
    ]
    return {"price_types": types, "prices": prices}


def map_file(file_type: str, records: list[dict], header: dict, exported_at: datetime | None) -> MappedFile:
    """One parsed exchange file -> rows per raw table (see MappedFile)."""
    full = not header.get("only_changes", False)
    if file_type == "counterparties":
        return MappedFile(map_counterparties(records), frozenset())
    if file_type == "invoices":
        return MappedFile(map_invoices(records), frozenset())
    if file_type == "payments":
        return MappedFile(map_payments(records), frozenset())
    if file_type == "receivables":  # a balance at `as_of`: the newest file is the whole truth
        return MappedFile(map_receivables(records), frozenset({"receivables_balance"}))
    if file_type == "catalog":
        return MappedFile(map_catalog(records), frozenset({"items"}) if full else frozenset())
    if file_type == "offers":
        return MappedFile(map_offers(records, header, exported_at), frozenset({"prices"}) if full else frozenset())
    raise ValueError(f"unknown exchange file type {file_type!r}")


def reject_record_id(record: Any) -> str | None:
    """The identity of a bad row for quality.rejects (its GUID or CommerceML Ид when it has one)."""
    if isinstance(record, dict):
        for key in ("Ref_Key", "Ид", "Контрагент_Key"):
            if record.get(key):
                return str(record[key])
    return None


# -- storage round trip: rows are staged as JSON text, typed back by the table's column types ----------


def encode_row(row: dict) -> str:
    def cell(v):
        if isinstance(v, Decimal):
            return format(v, "f")
        if isinstance(v, datetime):
            return v.isoformat()
        return v

    return json.dumps({k: cell(v) for k, v in row.items()}, ensure_ascii=False)


def decode_row(table: str, text: str) -> dict:
    """A staged row with its Decimal and datetime cells restored (by the table's column types)."""
    types = column_types(table)
    row = json.loads(text)
    for name, value in row.items():
        if value is None:
            continue
        if types.get(name) == D:
            row[name] = Decimal(value)
        elif types.get(name) == T:
            row[name] = datetime.fromisoformat(value)
    return row


# -- derived settlement movements ----------------------------------------------------------------------


def derive_settlement_movements(balance: list[dict], invoices: list[dict], as_of: datetime) -> list[dict]:
    """Movements whose balance at `as_of` equals `balance` row by row (Receipt - Expense = СуммаBalance).

    Debt is laid on the contract's newest posted invoices (dated at the invoice) back to the amount owed;
    what the invoices do not cover, and every advance, is dated at `as_of`.
    """
    by_contract: dict[tuple, list[dict]] = {}
    for inv in invoices:
        if inv.get("Posted") and not inv.get("DeletionMark") and inv.get("Date") and inv["Date"] <= as_of:
            by_contract.setdefault((inv.get("Контрагент_Key"), inv.get("Договор_Key")), []).append(inv)
    out: list[dict] = []

    def move(b, amount: Decimal, period, source: str, document=None, order=None):
        out.append(
            {
                "Recorder": document,
                "Period": period,
                "LineNumber": len(out) + 1,
                "Active": True,
                "RecordType": "Receipt" if amount > 0 else "Expense",
                "Контрагент_Key": b["Контрагент_Key"],
                "Договор_Key": b.get("Договор_Key"),
                "Документ": document,
                "Документ_Type": _INVOICE if document else None,
                "Заказ": order,
                "Заказ_Type": _ORDER if order else None,
                "ТипРасчетов": b["ТипРасчетов"],
                "Сумма": abs(amount),
                "Recorder_Type": _INVOICE if document else None,
                "Источник": source,
            }
        )

    for b in balance:
        amount = Decimal(b["СуммаBalance"])
        if amount == 0:
            continue
        if b["ТипРасчетов"] != "Долг" or amount < 0:
            move(b, amount, as_of, "exchange:receivables balance")
            continue
        left = amount
        newest_first = sorted(
            by_contract.get((b["Контрагент_Key"], b.get("Договор_Key")), []), key=lambda i: i["Date"], reverse=True
        )
        for inv in newest_first:
            if left <= 0:
                break
            part = min(left, Decimal(inv["СуммаДокумента"]))
            if part > 0:
                move(b, part, inv["Date"], "exchange:invoice", inv["Ref_Key"], inv.get("ДокументОснование"))
                left -= part
        if left > 0:
            move(b, left, as_of, "exchange:receivables balance, no invoice covers it")
    return out
