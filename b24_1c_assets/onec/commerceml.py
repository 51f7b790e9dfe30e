"""CommerceML 2 (`urn:1C.ru:commerceml_2`) catalog and price files: `import.xml`, `offers.xml`.

Only what the product needs is read (reference §12.4): items of `Каталог/Товары`, price types of
`ПакетПредложений/ТипыЦен` and prices of `Предложения`. Elements are matched by local name, so files with
or without the namespace read the same. Rows that cannot be read are returned with a reason, not dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

NS = "urn:1C.ru:commerceml_2"


@dataclass
class CommerceMLDocument:
    kind: str  # 'catalog' (import.xml) or 'offers' (offers.xml)
    schema_version: str | None
    exported_at: str | None
    records: list[dict[str, Any]] = field(default_factory=list)
    bad_rows: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # price types, groups, only_changes flag


def parse_xml(text: str) -> etree._Element:
    """Parse decoded XML text safely (no entities, no network). The declaration is dropped: the text is
    already decoded, and lxml refuses a str that still declares an encoding."""
    if text.startswith("<?xml"):
        end = text.find("?>")
        text = text[end + 2 :] if end > 0 else text
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, recover=False)
    return etree.fromstring(text.encode("utf-8"), parser=parser)


def _t(node: etree._Element | None, name: str) -> str | None:
    if node is None:
        return None
    child = node.find(f"{{*}}{name}")
    if child is None:
        child = node.find(name)
    if child is None or child.text is None:
        return None
    return child.text.strip()


def _all(node: etree._Element, path: str) -> list[etree._Element]:
    found = node.xpath("./" + "/".join(f"*[local-name()='{p}']" for p in path.split("/")))
    return list(found)


def read(root: etree._Element) -> CommerceMLDocument:
    """Classify by content: `Каталог` -> catalog, `ПакетПредложений` -> offers."""
    if etree.QName(root).localname != "КоммерческаяИнформация":
        raise ValueError(f"root element is <{etree.QName(root).localname}>, not <КоммерческаяИнформация>")
    version, exported = root.get("ВерсияСхемы"), root.get("ДатаФормирования")
    catalog = _all(root, "Каталог")
    offers = _all(root, "ПакетПредложений")
    if catalog:
        return _read_catalog(root, catalog[0], version, exported)
    if offers:
        return _read_offers(offers[0], version, exported)
    raise ValueError("neither <Каталог> nor <ПакетПредложений> found")


def _read_catalog(root, catalog, version, exported) -> CommerceMLDocument:
    doc = CommerceMLDocument("catalog", version, exported)
    doc.extra["only_changes"] = catalog.get("СодержитТолькоИзменения") == "true"
    groups = {}
    for group in root.xpath(".//*[local-name()='Классификатор']//*[local-name()='Группа']"):
        if _t(group, "Ид"):
            groups[_t(group, "Ид")] = _t(group, "Наименование")
    doc.extra["groups"] = groups
    seen: dict[str, int] = {}
    for index, item in enumerate(_all(catalog, "Товары/Товар")):
        ref, name = _t(item, "Ид"), _t(item, "Наименование")
        raw = {"Ид": ref, "Наименование": name, "Артикул": _t(item, "Артикул")}
        if not ref or not name:
            doc.bad_rows.append({"index": index, "record": raw, "reason": "Товар without Ид or Наименование"})
            continue
        if ref in seen:
            doc.bad_rows.append({"index": index, "record": raw, "reason": f"Ид {ref} repeats Товар #{seen[ref]}"})
            continue
        seen[ref] = index
        unit_node = item.find("{*}БазоваяЕдиница")
        unit = None
        if unit_node is not None:
            unit = unit_node.get("НаименованиеПолное") or (unit_node.text or "").strip() or None
        vat = None
        for rate in _all(item, "СтавкиНалогов/СтавкаНалога"):
            if (_t(rate, "Наименование") or "").upper() == "НДС":
                vat = _vat(_t(rate, "Ставка"))
        doc.records.append(
            {
                "Ref_Key": ref.split("#", 1)[0],
                "Description": name,
                "Артикул": raw["Артикул"] or "",
                "ЕдиницаИзмерения": unit,
                "СтавкаНДС": vat,
                "DeletionMark": (_t(item, "Статус") or "").lower() == "удален",
                "Группы": [g.text.strip() for g in _all(item, "Группы/Ид") if g.text],
            }
        )
    return doc


def _read_offers(package, version, exported) -> CommerceMLDocument:
    doc = CommerceMLDocument("offers", version, exported)
    doc.extra["only_changes"] = package.get("СодержитТолькоИзменения") == "true"
    price_types = {}
    for pt in _all(package, "ТипыЦен/ТипЦены"):
        if _t(pt, "Ид"):
            price_types[_t(pt, "Ид")] = {
                "Ref_Key": _t(pt, "Ид"),
                "Description": _t(pt, "Наименование"),
                "Валюта": _t(pt, "Валюта"),
            }
    doc.extra["price_types"] = list(price_types.values())
    for index, offer in enumerate(_all(package, "Предложения/Предложение")):
        ref = _t(offer, "Ид") or ""
        item, _, variant = ref.partition("#")
        if not item:
            doc.bad_rows.append({"index": index, "record": {"Ид": ref}, "reason": "Предложение without Ид"})
            continue
        for price in _all(offer, "Цены/Цена"):
            raw = {"Ид": ref, "ИдТипаЦены": _t(price, "ИдТипаЦены"), "ЦенаЗаЕдиницу": _t(price, "ЦенаЗаЕдиницу")}
            reason = None
            if raw["ИдТипаЦены"] not in price_types:
                reason = f"ИдТипаЦены {raw['ИдТипаЦены']!r} is not among ТипыЦен"
            try:
                amount = Decimal((raw["ЦенаЗаЕдиницу"] or "").replace(",", ".").replace("\u00a0", "").replace(" ", ""))
                if amount < 0:
                    reason = reason or f"negative price {amount}"
            except InvalidOperation:
                amount = None
                reason = reason or f"ЦенаЗаЕдиницу {raw['ЦенаЗаЕдиницу']!r} is not a number"
            if reason:
                doc.bad_rows.append({"index": index, "record": raw, "reason": reason})
                continue
            doc.records.append(
                {
                    "Номенклатура_Key": item,
                    "Характеристика": variant or None,
                    "ВидЦен_Key": raw["ИдТипаЦены"],
                    "Цена": amount,
                    "Валюта": _t(price, "Валюта"),
                    "Единица": _t(price, "Единица"),
                }
            )
    return doc


def _vat(text: str | None) -> int | None:
    if not text:
        return None
    digits = "".join(ch for ch in text if ch.isdigit())
    return int(digits) if digits else None  # 'Без НДС' -> None
