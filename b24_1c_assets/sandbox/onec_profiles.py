"""Editions of 1C:UNF the sandbox base can follow, and everything that differs between them, in one place.

`onec_schema` describes every object the sandbox publishes once, each field in one *canonical* shape (the
UNF 3.0 one where both editions have it). This module lists what each edition changes in that picture,
so a profile is data, not code paths:

* `FIELDS`: one `FieldShape` per field whose shape differs by edition: a composite (`X` + `X_Type`), a
  single reference (`X_Key`), a plain `Edm` type, or `ABSENT` (the edition has no such field).
* `SET_EDITIONS`: whole sets that exist only in some editions (absent from the others' publication).
* `FLAGS`: behaviour that differs (fill checks at `Post`, ...), read by the server as `profile.flag(name)`.

Every entry names the configuration dump that settled it (metadata XML path), in `source`:
UNF 3.0.8 `AlexanderYekat/unf`, UNF 3.0.12 `Dershoozer/unf1`, UNF 1.6.4 (Ukrainian edition)
`antonbergit/skarby1c8`. Differences in objects the sandbox does not publish are not listed.

A profile also reshapes records from the canonical shape into its own (`Profile.reshape`), so the seed
and the server write one shape and each edition publishes its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

UNF30 = "unf30"
UNF16 = "unf16"
PROFILES = (UNF30, UNF16)
DEFAULT_PROFILE = UNF30
TITLES = {UNF30: "1С:Управление нашей фирмой 3.0", UNF16: "1С:Управление нашей фирмой 1.6"}

COMPOSITE = "composite"  # published as `X` (Edm.String) + `X_Type`
ABSENT = None  # the edition has no such field


@dataclass(frozen=True)
class Ref:
    """A single-type reference, published as `X_Key` (Edm.Guid); `target` = the set it points to."""

    target: str | None = None


Shape = Any  # COMPOSITE | Ref | "Edm.…" | ABSENT


@dataclass(frozen=True)
class FieldShape:
    """How one field of one object is published in each edition (editions not named: as in the
    canonical schema). `section` = a tabular section, or `RecordSet` for a register's movement rows
    (the `_RecordType` set and the record set's rows share it)."""

    entity_set: str
    field: str
    shapes: Mapping[str, Shape]
    source: str
    section: str | None = None


_ORDER = "Document_ЗаказПокупателя"
_INVOICE = "Document_СчетНаОплату"
_SHIPMENT = "Document_РасходнаяНакладная"
_SETTLEMENTS = "AccumulationRegister_РасчетыСПокупателями"
_ITEM = "Catalog_Номенклатура"
_CONTRACT = "Catalog_ДоговорыКонтрагентов"
_CONTRACT = "Catalog_ДоговорыКонтрагентов"

FIELDS: list[FieldShape] = [
    # -- Catalog ДоговорыКонтрагентов: owned by counterparties, in 3.0 also by organisations ----------------
    FieldShape(
        _CONTRACT,
        "Owner",
        {UNF30: COMPOSITE, UNF16: Ref("Catalog_Контрагенты")},
        source="AlexanderYekat/unf, antonbergit/skarby1c8: Catalogs/ДоговорыКонтрагентов.xml (Owners: "
        "Контрагенты + Организации in 3.0, Контрагенты in 1.6)",
    ),
    # -- AccumulationRegister РасчетыСПокупателями -------------------------------------------------------
    FieldShape(
        _SETTLEMENTS,
        "Заказ",
        {UNF30: COMPOSITE, UNF16: Ref(_ORDER)},
        section="RecordSet",
        # 3.0: DocumentRef.ЗаказПокупателя + DocumentRef.ПриемИПередачаВРемонт; 1.6: ЗаказПокупателя only
        source="AlexanderYekat/unf, Dershoozer/unf1, antonbergit/skarby1c8: "
        "AccumulationRegisters/РасчетыСПокупателями.xml (Dimension Заказ)",
    ),
    FieldShape(
        _SETTLEMENTS,
        "СуммаРег",
        {UNF30: "Edm.Double", UNF16: ABSENT},
        section="RecordSet",
        source="antonbergit/skarby1c8: AccumulationRegisters/РасчетыСПокупателями.xml (resources Сумма, СуммаВал only)",
    ),
    # -- Document ЗаказПокупателя ---------------------------------------------------------------------------
    FieldShape(
        _ORDER,
        "Номенклатура",
        {UNF30: COMPOSITE, UNF16: Ref(_ITEM)},
        section="Запасы",
        # 3.0: CatalogRef.Номенклатура + xs:string (a free-text row); 1.6: CatalogRef.Номенклатура
        source="AlexanderYekat/unf, antonbergit/skarby1c8: Documents/ЗаказПокупателя.xml "
        "(TabularSection Запасы, Attribute Номенклатура)",
    ),
    FieldShape(
        _ORDER,
        "ДокументОснование",
        {UNF30: COMPOSITE, UNF16: Ref("Document_ПриемИПередачаВРемонт")},
        source="AlexanderYekat/unf, antonbergit/skarby1c8: Documents/ЗаказПокупателя.xml (Attribute ДокументОснование)",
    ),
    FieldShape(
        _ORDER,
        "ОплатаДо",
        {UNF16: ABSENT},  # 3.0.8 has none either; 3.0.12 (Dershoozer/unf1) has it
        source="antonbergit/skarby1c8, Dershoozer/unf1: Documents/ЗаказПокупателя.xml",
    ),
    FieldShape(
        _ORDER,
        "СуммаСкидкиНаценки",
        {UNF16: ABSENT},
        section="Запасы",
        source="antonbergit/skarby1c8: Documents/ЗаказПокупателя.xml (TabularSection Запасы)",
    ),
    FieldShape(
        _ORDER,
        "СтруктурнаяЕдиницаРезерв",
        {UNF16: ABSENT},
        section="Запасы",
        source="antonbergit/skarby1c8: Documents/ЗаказПокупателя.xml (TabularSection Запасы)",
    ),
    # -- InformationRegister ЦеныНоменклатуры -----------------------------------------------------------------
    FieldShape(
        "InformationRegister_ЦеныНоменклатуры",
        "ВалютаЦены",
        {UNF16: ABSENT},
        source="AlexanderYekat/unf, antonbergit/skarby1c8: InformationRegisters/ЦеныНоменклатуры.xml "
        "(resource ВалютаЦены in 3.0 only)",
    ),
    # -- Documents СчетНаОплату / РасходнаяНакладная: Запасы.Номенклатура is a plain reference in both ------
    FieldShape(
        _INVOICE,
        "Номенклатура",
        {UNF30: Ref(_ITEM), UNF16: Ref(_ITEM)},
        section="Запасы",
        source="AlexanderYekat/unf, antonbergit/skarby1c8: Documents/СчетНаОплату.xml (Запасы)",
    ),
    FieldShape(
        _SHIPMENT,
        "Номенклатура",
        {UNF30: Ref(_ITEM), UNF16: Ref(_ITEM)},
        section="Запасы",
        source="AlexanderYekat/unf, antonbergit/skarby1c8: Documents/РасходнаяНакладная.xml (Запасы)",
    ),
]

# Sets published only by some editions: {set name: editions that have it}.
SET_EDITIONS: dict[str, tuple[str, ...]] = {}

# Behaviour that differs by edition: {flag: {edition: value}}; `Profile.flag(name)` gives this edition's.
FLAGS: dict[str, dict[str, Any]] = {}

# -- the write side: counterparties, items, VAT rates, default contracts, fill checks at Post ------------------
_CP = "Catalog_Контрагенты"
_VAT = "Catalog_СтавкиНДС"
FIELDS += [
    FieldShape(
        _CP,
        "ДоговорПоУмолчанию",
        {UNF30: ABSENT},  # 3.0 keeps it as УдалитьДоговорПоУмолчанию, unused
        source="AlexanderYekat/unf, antonbergit/skarby1c8: Catalogs/Контрагенты.xml",
    ),
    FieldShape(
        _CP,
        "УдалитьДоговорПоУмолчанию",
        {UNF16: ABSENT},
        source="AlexanderYekat/unf, antonbergit/skarby1c8: Catalogs/Контрагенты.xml",
    ),
    # 3.0: the item names a kind of rate (EnumRef.ВидыСтавокНДС; УдалитьСтавкаНДС unused); 1.6: the rate itself
    FieldShape(
        _ITEM,
        "ВидСтавкиНДС",
        {UNF16: ABSENT},
        source="AlexanderYekat/unf, antonbergit/skarby1c8: Catalogs/Номенклатура.xml",
    ),
    FieldShape(
        _ITEM,
        "СтавкаНДС",
        {UNF30: ABSENT},
        source="AlexanderYekat/unf, antonbergit/skarby1c8: Catalogs/Номенклатура.xml",
    ),
    FieldShape(
        _VAT,
        "ВидСтавкиНДС",
        {UNF16: ABSENT},
        source="AlexanderYekat/unf, antonbergit/skarby1c8: Catalogs/СтавкиНДС.xml",
    ),
    FieldShape(
        _VAT, "Расчетная", {UNF16: ABSENT}, source="AlexanderYekat/unf, antonbergit/skarby1c8: Catalogs/СтавкиНДС.xml"
    ),
]
# The default contract lives in a register in 3.0 (ДоговорыКонтрагентов.ДоговорПоУмолчанию reads it); 1.6 has none.
SET_EDITIONS["InformationRegister_ОсновныеДоговорыКонтрагента"] = (UNF30,)

# What `Post` of a customer order checks (ОбработкаПроверкиЗаполнения of Documents/ЗаказПокупателя: attributes
# with FillChecking=ShowError in the metadata XML, less those the module removes for an order for sale, plus
# the rows it checks itself). Header: (published field, synonym); rows of Запасы: (column, synonym).
# Left out: Касса / БанковскийСчет (only with a payment plan), ВариантЗавершения / ПричинаОтмены (only for a
# completed / cancelled order), ДатаПоступления (not for ЗаказНаПродажу), ВидЗаказа (ПередЗаписью sets
# «Основной» unless order kinds are on: the server checks it only then).
_ORDER_HEADER_CHECKS = (
    ("Организация_Key", "Организация"),
    ("Контрагент_Key", "Покупатель"),
    ("Договор_Key", "Договор"),
    ("ВалютаДокумента_Key", "Валюта"),
    ("ВидОперации", "Операция"),
    ("ДатаОтгрузки", "Дата отгрузки"),
    ("СостояниеЗаказа", "Состояние"),
    ("НалогообложениеНДС", "Налогообложение"),
    ("Курс", "Курс"),
    ("Кратность", "Кратность"),
    ("СтруктурнаяЕдиницаПродажи_Key", "Подразделение"),
)
FLAGS["order_post_checks"] = {
    # 3.0.8 / 3.0.12: the module checks Количество, Цена, СтавкаНДС per row; Номенклатура is ShowError
    UNF30: {
        "header": _ORDER_HEADER_CHECKS,
        "section": "Товары, работы, услуги",
        "rows": (
            ("Номенклатура", "Номенклатура"),
            ("Количество", "Количество"),
            ("Цена", "Цена"),
            ("СтавкаНДС_Key", "% НДС"),
        ),
        "source": "AlexanderYekat/unf, Dershoozer/unf1: Documents/ЗаказПокупателя.xml, "
        "Documents/ЗаказПокупателя/Ext/ObjectModule.bsl (ОбработкаПроверкиЗаполнения)",
    },
    # 1.6.4: the Запасы columns are ShowError in the metadata (Ед. too)
    UNF16: {
        "header": _ORDER_HEADER_CHECKS,
        "section": "Товары, работы, услуги",
        "rows": (
            ("Номенклатура_Key", "Номенклатура"),
            ("ЕдиницаИзмерения", "Ед."),
            ("Цена", "Цена"),
            ("СтавкаНДС_Key", "% НДС"),
            ("Количество", "Количество"),
        ),
        "source": "antonbergit/skarby1c8: Documents/ЗаказПокупателя.xml, "
        "Documents/ЗаказПокупателя/Ext/ObjectModule.bsl (ОбработкаПроверкиЗаполнения)",
    },
}
# ПередЗаписью of a counterparty (ПривестиДанныеКСогласованномуСостоянию, Catalogs/Контрагенты/Ext/ObjectModule.bsl):
# 3.0 clears the КПП of a legal entity registered outside Russia, and of an ИП / a person; 1.6 (the Ukrainian
# edition of the dump) has no КПП and clears the country of an ИП / a person.
FLAGS["counterparty_before_write"] = {UNF30: "unf30", UNF16: "unf16"}


@dataclass(frozen=True)
class Profile:
    """One edition: its name and the field shapes it publishes (see module docstring)."""

    name: str
    shapes: dict[tuple[str, str | None, str], Shape] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return TITLES[self.name]

    def flag(self, name: str, default: Any = None) -> Any:
        return FLAGS.get(name, {}).get(self.name, default)

    def has_set(self, entity_set: str) -> bool:
        editions = SET_EDITIONS.get(entity_set)
        return editions is None or self.name in editions

    def shape(self, entity_set: str, name: str, section: str | None = None) -> Shape | str:
        """This edition's shape of a field, or "canonical" when the edition keeps the schema's."""
        return self.shapes.get((entity_set, section, name), "canonical")

    def reshapers(self, entity_set: str, section: str | None = None) -> list[tuple[str, Shape]]:
        return [(n, s) for (es, sec, n), s in self.shapes.items() if es == entity_set and sec == section]

    def reshape(self, entity_set: str, row: dict, section: str | None = None, *, ops=None) -> dict:
        """A canonical-shaped record (or row) -> this edition's field names, in place. Composite values
        `X`/`X_Type` become `X_Key` (empty: the zero GUID) and back; absent fields are dropped."""
        for name, shape in ops if ops is not None else self.reshapers(entity_set, section):
            reshape_value(row, name, shape)
        return row


EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
UNDEFINED_TYPE = "StandardODATA.Undefined"


def reshape_value(row: dict, name: str, shape: Shape) -> None:
    key, typ = f"{name}_Key", f"{name}_Type"
    if shape is ABSENT:
        row.pop(name, None), row.pop(key, None), row.pop(typ, None)
    elif isinstance(shape, Ref):
        if key not in row and (name in row or typ in row):
            row[key] = row.pop(name, None) or EMPTY_GUID
        row.pop(typ, None)
    elif shape == COMPOSITE:  # from a `X_Key`: the type from a `X_Type` kept beside it, else Undefined
        if key in row:
            value = row.pop(key)
            empty = value in (None, "", EMPTY_GUID)
            row[name] = "" if empty else value
            if empty or typ not in row:
                row[typ] = UNDEFINED_TYPE
    # a plain Edm shape keeps the value as it is


_PROFILES: dict[str, Profile] = {}


def get_profile(name: str | Profile | None = None) -> Profile:
    """The profile of an edition (`unf30` by default); unknown names fail naming the known ones."""
    if isinstance(name, Profile):
        return name
    name = name or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ValueError(f"unknown 1C profile {name!r}: one of {', '.join(PROFILES)}")
    profile = _PROFILES.get(name)
    if profile is None:
        shapes = {(f.entity_set, f.section, f.field): f.shapes[name] for f in FIELDS if name in f.shapes}
        profile = _PROFILES[name] = Profile(name, shapes)
    return profile
