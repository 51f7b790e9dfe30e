"""Writes the 1C view of a sandbox `World` as exchange-folder files (docs/exchange-format.md).

Same GUIDs as the sandbox OData base (`onec_seed`): `world.guid(kind, key)` with kinds counterparty,
contract, item, order, invoice, payment, price_type; duplicate 1C spellings of a party get the derived
GUIDs of `onec_seed.counterparty_guid`. Files are written under a temporary name and renamed into place,
as a well-behaved 1C export should.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from b24_1c_assets.sandbox.onec_seed import counterparty_guid
from b24_1c_assets.sandbox.world import World

FORMAT = "b24-1c-exchange"
SCHEMA_VERSION = 1
PRICE_TYPES = ((1, "Розничная", Decimal("1")), (2, "Оптовая", Decimal("0.85")))


def _dt(value) -> str:
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat()
    return f"{value.isoformat()}T00:00:00"


def dumps_exact(doc: Any, indent: int | None = 1) -> str:
    """JSON with Decimal written as a number with its exact digits (json has no raw-number hook)."""
    digits: list[str] = []

    def swap(obj):
        if isinstance(obj, Decimal):
            digits.append(format(obj, "f"))
            return f"\x00{len(digits) - 1}\x00"
        if isinstance(obj, dict):
            return {k: swap(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [swap(v) for v in obj]
        return obj

    text = json.dumps(swap(doc), ensure_ascii=False, indent=indent)
    for i, value in enumerate(digits):
        text = text.replace(f'"\\u0000{i}\\u0000"', value, 1)
    return text


def _envelope(file_type: str, world: World, records: list[dict], **extra) -> dict:
    return {
        "format": FORMAT,
        "file_type": file_type,
        "schema_version": SCHEMA_VERSION,
        "exported_at": _dt(world.as_of),
        "infobase": "УНФ (sandbox)",
        **extra,
        "record_count": len(records),
        "records": records,
    }


def counterparty_records(world: World) -> list[dict]:
    contracts_of: dict[int, list] = {}
    for c in world.contracts:
        contracts_of.setdefault(c.party_key, []).append(c)
    out, code = [], 0
    for party in world.parties:
        for idx, sp in enumerate(party.onec_spellings):
            code += 1
            out.append(
                {
                    "Ref_Key": counterparty_guid(world, party.key, idx),
                    "Code": f"{code:09d}",
                    "Description": sp.title,
                    "НаименованиеПолное": party.full_name if idx == 0 else sp.title,
                    "ИНН": sp.inn or "",
                    "КПП": sp.kpp or "",
                    "РегистрационныйНомер": sp.ogrn or "",
                    "ВидКонтрагента": "ЮридическоеЛицо" if party.kind == "legal" else "ИндивидуальныйПредприниматель",
                    "DeletionMark": False,
                    "email": sp.email,
                    "phone": sp.phone,
                    "Договоры": []
                    if idx
                    else [
                        {
                            "Ref_Key": world.guid("contract", c.key),
                            "Description": f"Договор № {c.number} от {c.signed_on:%d.%m.%Y}",
                            "НомерДоговора": c.number,
                            "ДатаДоговора": _dt(c.signed_on),
                            "СрокОплатыПокупателя": c.payment_term_days,
                        }
                        for c in contracts_of.get(party.key, [])
                    ],
                }
            )
    return out


def _lines(world: World, lines) -> list[dict]:
    return [
        {
            "LineNumber": n,
            "Номенклатура_Key": world.guid("item", ln.item_key),
            "Количество": ln.quantity,
            "Цена": ln.price,
            "Сумма": ln.amount,
        }
        for n, ln in enumerate(lines, 1)
    ]


def invoice_records(world: World) -> list[dict]:
    return [
        {
            "Ref_Key": world.guid("invoice", i.key),
            "Number": i.number,
            "Date": _dt(i.date),
            "Posted": i.posted,
            "DeletionMark": False,
            "Контрагент_Key": counterparty_guid(world, i.party_key),
            "Договор_Key": world.guid("contract", i.contract_key),
            "Заказ_Key": world.guid("order", i.order_key) if i.order_key is not None else None,
            "СуммаДокумента": i.amount,
            "Запасы": _lines(world, i.lines),
        }
        for i in world.invoices
    ]


def payment_records(world: World) -> list[dict]:
    return [
        {
            "Ref_Key": world.guid("payment", p.key),
            "Number": p.number,
            "Date": _dt(p.date),
            "Posted": p.posted,
            "DeletionMark": False,
            "Вид": "ПоступлениеНаСчет" if p.channel == "bank" else "ПоступлениеВКассу",
            "Контрагент_Key": counterparty_guid(world, p.party_key),
            "Договор_Key": world.guid("contract", p.contract_key),
            "СчетНаОплату_Key": world.guid("invoice", p.invoice_key) if p.invoice_key is not None else None,
            "Заказ_Key": world.guid("order", p.order_key) if p.order_key is not None else None,
            "СуммаДокумента": p.amount,
        }
        for p in world.payments
    ]


def receivable_records(world: World) -> list[dict]:
    """Balance per contract as 1C's Balance shows it: debt positive «Долг», advance negative «Аванс»."""
    net: dict[tuple[int, int], Decimal] = {}
    for s in world.shipments:
        if s.posted:
            net[(s.party_key, s.contract_key)] = net.get((s.party_key, s.contract_key), Decimal(0)) + s.amount
    for p in world.payments:
        if p.posted:
            net[(p.party_key, p.contract_key)] = net.get((p.party_key, p.contract_key), Decimal(0)) - p.amount
    return [
        {
            "Контрагент_Key": counterparty_guid(world, party),
            "Договор_Key": world.guid("contract", contract),
            "ТипРасчетов": "Долг" if amount > 0 else "Аванс",
            "СуммаBalance": amount.quantize(Decimal("0.01")),
        }
        for (party, contract), amount in sorted(net.items())
        if amount != 0
    ]


def import_xml(world: World) -> str:
    goods = []
    for it in world.items:
        vat = "Без НДС" if it.vat_rate == 0 else str(it.vat_rate)
        goods.append(
            "<Товар>"
            f"<Ид>{world.guid('item', it.key)}</Ид><Артикул>{escape(it.article)}</Артикул>"
            f"<Наименование>{escape(it.name)}</Наименование>"
            f"<БазоваяЕдиница НаименованиеПолное={quoteattr(it.unit)}>{escape(it.unit)}</БазоваяЕдиница>"
            f"<СтавкиНалогов><СтавкаНалога><Наименование>НДС</Наименование><Ставка>{vat}</Ставка></СтавкаНалога></СтавкиНалогов>"
            + ("<Статус>Удален</Статус>" if it.deleted else "")
            + "</Товар>"
        )
    return (
        '<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_2" ВерсияСхемы="2.10" '
        f'ДатаФормирования="{_dt(world.as_of)}">'
        f"<Классификатор><Ид>{world.guid('classifier', 1)}</Ид>"
        "<Наименование>Классификатор (Номенклатура)</Наименование>"
        "</Классификатор>"
        f'<Каталог СодержитТолькоИзменения="false"><Ид>{world.guid("catalog", 1)}</Ид>'
        f"<ИдКлассификатора>{world.guid('classifier', 1)}</ИдКлассификатора>"
        "<Наименование>Основной каталог</Наименование>"
        f"<Товары>{''.join(goods)}</Товары></Каталог></КоммерческаяИнформация>"
    )


def offers_xml(world: World) -> str:
    types = "".join(
        f"<ТипЦены><Ид>{world.guid('price_type', k)}</Ид><Наименование>{name}</Наименование>"
        "<Валюта>RUB</Валюта><Налог><Наименование>НДС</Наименование><УчтеноВСумме>true</УчтеноВСумме>"
        "</Налог></ТипЦены>"
        for k, name, _ in PRICE_TYPES
    )
    offers = []
    for it in world.items:
        prices = "".join(
            f"<Цена><Представление>{(it.price * share).quantize(Decimal('0.01'))} RUB за {escape(it.unit)}"
            "</Представление>"
            f"<ИдТипаЦены>{world.guid('price_type', k)}</ИдТипаЦены>"
            f"<ЦенаЗаЕдиницу>{(it.price * share).quantize(Decimal('0.01'))}</ЦенаЗаЕдиницу>"
            f"<Валюта>RUB</Валюта><Единица>{escape(it.unit)}</Единица><Коэффициент>1</Коэффициент></Цена>"
            for k, _, share in PRICE_TYPES
        )
        offers.append(
            f"<Предложение><Ид>{world.guid('item', it.key)}</Ид><Артикул>{escape(it.article)}</Артикул>"
            f"<Наименование>{escape(it.name)}</Наименование><Цены>{prices}</Цены></Предложение>"
        )
    return (
        '<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_2" ВерсияСхемы="2.10" '
        f'ДатаФормирования="{_dt(world.as_of)}">'
        f'<ПакетПредложений СодержитТолькоИзменения="false"><Ид>{world.guid("catalog", 1)}#</Ид>'
        f"<Наименование>Пакет предложений</Наименование><ИдКаталога>{world.guid('catalog', 1)}</ИдКаталога>"
        f"<ТипыЦен>{types}</ТипыЦен><Предложения>{''.join(offers)}</Предложения>"
        "</ПакетПредложений></КоммерческаяИнформация>"
    )


def write_exchange_files(
    world: World,
    folder: str | os.PathLike,
    *,
    encoding: str = "utf-8",
    bom: bool = False,
    xml_declaration: bool = True,
    prefix: str = "",
) -> list[Path]:
    """Write counterparties/invoices/payments/receivables JSON and CommerceML import.xml/offers.xml.

    `encoding` "utf-8" or "windows-1251"/"cp1251"; `bom` adds a UTF-8 BOM; `xml_declaration=False` drops
    the `<?xml …?>` line (the reader must then guess the encoding). Returns the written paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    codec = "cp1251" if encoding.lower().replace("-", "") in ("cp1251", "windows1251") else "utf-8"
    xml_enc = "windows-1251" if codec == "cp1251" else "UTF-8"
    files = {
        "counterparties.json": dumps_exact(_envelope("counterparties", world, counterparty_records(world))),
        "invoices.json": dumps_exact(_envelope("invoices", world, invoice_records(world))),
        "payments.json": dumps_exact(_envelope("payments", world, payment_records(world))),
        "receivables.json": dumps_exact(
            _envelope("receivables", world, receivable_records(world), as_of=_dt(world.as_of))
        ),
        "import.xml": import_xml(world),
        "offers.xml": offers_xml(world),
    }
    written = []
    for name, text in files.items():
        if name.endswith(".xml") and xml_declaration:
            text = f'<?xml version="1.0" encoding="{xml_enc}"?>\n' + text
        data = text.encode(codec)
        if bom and codec == "utf-8":
            data = b"\xef\xbb\xbf" + data
        target = folder / f"{prefix}{name}"
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        written.append(target)
    return written
