"""Published metadata of the sandbox 1C:UNF base: entity sets, their fields and the `$metadata` CSDL.

Names and types follow the UNF configuration dumps (metadata XML of UNF 3.0.8 `AlexanderYekat/unf`, 3.0.12
`Dershoozer/unf1`, 1.6.4 `antonbergit/skarby1c8`); this module holds one canonical (3.0) picture and
`onec_profiles` what each edition changes in it (`sets_for(profile)`). The shapes follow the platform:
catalogs and documents keyed by `Ref_Key`, tabular sections both inline
(`Collection(..._RowType)`) and as their own set keyed by `Ref_Key`+`LineNumber`, recorder-subordinate
accumulation registers as record sets (`Recorder`+`Recorder_Type` + `RecordSet`) plus a `_RecordType` set,
an independent periodic information register keyed by its dimensions and `Period`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from xml.sax.saxutils import quoteattr

from b24_1c_assets.sandbox.onec_profiles import ABSENT, COMPOSITE, DEFAULT_PROFILE, Profile, Ref, get_profile

NS = "StandardODATA"
EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
EMPTY_DATE = "0001-01-01T00:00:00"
UNDEFINED_TYPE = "StandardODATA.Undefined"


@dataclass(frozen=True)
class Prop:
    """One published property. `target` names the set a `_Key` reference points to (navigation)."""

    name: str
    edm: str
    nullable: bool = True
    target: str | None = None
    values: tuple[str, ...] = ()  # an enumeration's value names (Edm.String): anything else is refused

    @property
    def empty(self):
        """The value 1C sends for an unfilled property of this type."""
        return {
            "Edm.Guid": EMPTY_GUID,
            "Edm.DateTime": EMPTY_DATE,
            "Edm.Boolean": False,
            "Edm.Int64": 0,
            "Edm.Int32": 0,
            "Edm.Int16": 0,
            "Edm.Double": 0,
        }.get(self.edm, "")


@dataclass
class EntitySet:
    """A published entity set. kind: catalog, document, tabular, records (record sets), register_row
    (`_RecordType`), info_register (independent periodic information register)."""

    name: str
    kind: str
    key: tuple[str, ...]
    props: list[Prop]
    tabular: dict[str, list[Prop]] = field(default_factory=dict)  # section -> row props (LineNumber first)
    register: str | None = None  # for records/register_row: the accumulation register's name
    dimensions: tuple[str, ...] = ()  # register dimensions as published names (composite = base name)
    resources: tuple[str, ...] = ()
    register_kind: str = "balance"  # accumulation registers: "balance" (RecordType, Balance) or "turnovers"

    def __post_init__(self) -> None:
        self.by_name = {p.name: p for p in self.props}

    def prop(self, name: str) -> Prop | None:
        return self.by_name.get(name)

    @property
    def is_object(self) -> bool:
        return self.kind in ("catalog", "document")


# -- small DSL -----------------------------------------------------------------------------------------
def s(name):
    return [Prop(name, "Edm.String")]


def num(name):
    return [Prop(name, "Edm.Double")]


def int64(name):
    return [Prop(name, "Edm.Int64")]


def boolean(name):
    return [Prop(name, "Edm.Boolean")]


def dt(name):
    return [Prop(name, "Edm.DateTime")]


def enum(name, *values):
    """An enumeration attribute: published as Edm.String holding the value's name."""
    return [Prop(name, "Edm.String", values=values)]


# Enums/*.xml of the dumps (AlexanderYekat/unf, antonbergit/skarby1c8: the same values in both)
PARTY_KINDS = ("ЮридическоеЛицо", "ИндивидуальныйПредприниматель", "ФизическоеЛицо", "ГосударственныйОрган")
LEGAL_OR_PERSON = ("ЮридическоеЛицо", "ФизическоеЛицо")
VAT_KINDS = (
    "Общая",
    "ОбщаяРасчетная",
    "Пониженная",
    "ПониженнаяРасчетная",
    "Нулевая",
    "БезНДС",
    "Пониженная2",
    "ПониженнаяРасчетная2",
)


def ref(name, target=None):
    return [Prop(f"{name}_Key", "Edm.Guid", target=target)]


def comp(name):
    """A composite-type attribute: value as a string plus its `_Type`."""
    return [Prop(name, "Edm.String"), Prop(f"{name}_Type", "Edm.String")]


def _flat(*groups) -> list[Prop]:
    return [p for g in groups for p in g]


CATALOG_STD = _flat(
    [Prop("Ref_Key", "Edm.Guid", False)],
    [Prop("DataVersion", "Edm.String", False)],
    s("Description"),
    s("Code"),
    boolean("DeletionMark"),
    boolean("Predefined"),
    s("PredefinedDataName"),
)
DOCUMENT_STD = _flat(
    [Prop("Ref_Key", "Edm.Guid", False)],
    [Prop("DataVersion", "Edm.String", False)],
    s("Number"),
    dt("Date"),
    boolean("DeletionMark"),
    boolean("Posted"),
)
ROW_STD = [Prop("LineNumber", "Edm.Int64", False)]

CONTACT_INFO_ROW = _flat(
    ROW_STD,
    s("Тип"),
    ref("Вид"),
    s("Представление"),
    s("ЗначенияПолей"),
    s("Страна"),
    s("Регион"),
    s("Город"),
    s("АдресЭП"),
    s("ДоменноеИмяСервера"),
    s("НомерТелефона"),
    s("НомерТелефонаБезКодов"),
    dt("ДействуетС"),
    s("Значение"),
)
STOCK_ROW = _flat(
    ROW_STD,
    comp("Номенклатура"),
    ref("Характеристика"),
    comp("ЕдиницаИзмерения"),
    num("Количество"),
    num("Цена"),
    num("Сумма"),
    num("ПроцентСкидкиНаценки"),
    num("СуммаСкидкиНаценки"),
    ref("СтавкаНДС"),
    num("СуммаНДС"),
    num("Всего"),
    ref("СтруктурнаяЕдиницаРезерв", "Catalog_СтруктурныеЕдиницы"),
    dt("ДатаОтгрузки"),
    int64("КлючСвязи"),
)
PAYMENT_CALENDAR_ROW = _flat(ROW_STD, dt("ДатаОплаты"), num("ПроцентОплаты"), num("СуммаОплаты"), num("СуммаНДСОплаты"))
# A payment's contract, order, invoice and settled document are per row (Documents/ПоступлениеНаСчет.xml and
# ПоступлениеВКассу.xml, TabularSection РасшифровкаПлатежа, in AlexanderYekat/unf and antonbergit/skarby1c8).
PAYMENT_DETAILS_ROW = _flat(
    ROW_STD,
    ref("Договор", "Catalog_ДоговорыКонтрагентов"),
    boolean("ПризнакАванса"),
    comp("Заказ"),
    comp("СчетНаОплату"),
    comp("Документ"),
    num("СуммаРасчетов"),
    num("СуммаПлатежа"),
    num("СуммаНДС"),
)
# A shipment names its order in the header or per row (Documents/РасходнаяНакладная.xml: Attribute Заказ and
# TabularSection Запасы, Attribute Заказ, both editions).
SHIPMENT_ROW = STOCK_ROW + comp("Заказ")

ORG = "Catalog_Организации"
VAT_RATES = "Catalog_СтавкиНДС"
COUNTRIES = "Catalog_СтраныМира"
ORDER_KINDS = "Catalog_ВидыЗаказовПокупателей"
CUR = "Catalog_Валюты"
CP = "Catalog_Контрагенты"
CONTRACT = "Catalog_ДоговорыКонтрагентов"
EMPLOYEE = "Catalog_Сотрудники"
UNIT = "Catalog_СтруктурныеЕдиницы"
PRICE_TYPE = "Catalog_ВидыЦен"

# Header fields UNF requires before it writes an order's Запасы (§6 «UNF orders»).
ORDER_REQUIRED_HEADER = (
    "Организация_Key",
    "ВидЦен_Key",
    "ВалютаДокумента_Key",
    "СтруктурнаяЕдиницаПродажи_Key",
    "СтруктурнаяЕдиницаРезерв_Key",
    "ХозяйственнаяОперация_Key",
)

SETTLEMENTS = "AccumulationRegister_РасчетыСПокупателями"
INVOICE_PAYMENTS = "AccumulationRegister_ОплатаСчетовИЗаказов"
PRICES = "InformationRegister_ЦеныНоменклатуры"
DEFAULT_CONTRACTS = "InformationRegister_ОсновныеДоговорыКонтрагента"


def _catalog(name, *groups, tabular=None, hierarchical=False, owner=None):
    extra = []
    if hierarchical:
        extra += _flat(ref("Parent", name), boolean("IsFolder"))
    if owner:
        extra += ref("Owner", owner)
    return EntitySet(name, "catalog", ("Ref_Key",), CATALOG_STD + extra + _flat(*groups), tabular or {})


def _document(name, *groups, tabular=None):
    return EntitySet(name, "document", ("Ref_Key",), DOCUMENT_STD + _flat(*groups), tabular or {})


def _sales_header():
    return _flat(
        ref("Организация", ORG),
        ref("Контрагент", CP),
        ref("Договор", CONTRACT),
        ref("Ответственный", EMPLOYEE),
        num("СуммаДокумента"),
        ref("ВалютаДокумента", CUR),
        ref("ВидЦен", PRICE_TYPE),
        s("НалогообложениеНДС"),
        boolean("СуммаВключаетНДС"),
        s("Комментарий"),
        ref("Автор"),
    )


def _settlement_register_row() -> list[Prop]:
    return _flat(
        s("Recorder"),
        dt("Period"),
        [Prop("LineNumber", "Edm.Int64", False)],
        boolean("Active"),
        s("RecordType"),
        ref("Организация", ORG),
        ref("Контрагент", CP),
        ref("Договор", CONTRACT),
        comp("Документ"),
        comp("Заказ"),
        s("ТипРасчетов"),
        num("Сумма"),
        num("СуммаВал"),
        num("СуммаРег"),
        s("СодержаниеПроводки"),
        s("Recorder_Type"),
    )


def _invoice_payment_row() -> list[Prop]:
    # A turnover register: no RecordType (AccumulationRegisters/ОплатаСчетовИЗаказов.xml, RegisterType
    # Turnovers, in AlexanderYekat/unf, Dershoozer/unf1 and antonbergit/skarby1c8).
    return _flat(
        s("Recorder"),
        dt("Period"),
        [Prop("LineNumber", "Edm.Int64", False)],
        boolean("Active"),
        ref("Организация", ORG),
        comp("СчетНаОплату"),
        num("Сумма"),
        num("СуммаОплаты"),
        num("СуммаАванса"),
        s("Recorder_Type"),
    )


def _register_sets(name, row_props, dimensions, resources, kind="balance") -> list[EntitySet]:
    records = EntitySet(
        name,
        "records",
        ("Recorder", "Recorder_Type"),
        _flat(s("Recorder"), [Prop("RecordSet", f"Collection({NS}.{name}_RowType)", False)], s("Recorder_Type")),
        {"RecordSet": row_props},
        register=name,
        dimensions=dimensions,
        resources=resources,
        register_kind=kind,
    )
    rows = EntitySet(
        f"{name}_RecordType",
        "register_row",
        ("Recorder", "LineNumber", "Recorder_Type"),
        row_props,
        register=name,
        dimensions=dimensions,
        resources=resources,
        register_kind=kind,
    )
    return [records, rows]


def _shaped(props: list[Prop], name: str, shape) -> list[Prop]:
    """Props with field `name` (as `X`, `X_Key` or `X` + `X_Type`) replaced by the given shape."""
    names = {name, f"{name}_Key", f"{name}_Type"}
    at = next((i for i, p in enumerate(props) if p.name in names), len(props))
    if shape is ABSENT:
        new: list[Prop] = []
    elif shape == COMPOSITE:
        new = comp(name)
    elif isinstance(shape, Ref):
        new = ref(name, shape.target)
    else:
        new = [Prop(name, shape)]
    rest = [p for p in props if p.name not in names]
    return rest[:at] + new + rest[at:]


def _profiled(es: EntitySet, profile: Profile) -> EntitySet:
    """One set as an edition publishes it (the canonical set when the edition changes nothing)."""
    if es.kind == "register_row":
        owner, own_section = es.register, "RecordSet"
    elif es.kind == "tabular":
        owner, own_section = es.register, es.section  # type: ignore[attr-defined]
    else:
        owner, own_section = es.name, None
    props = es.props
    for name, shape in profile.reshapers(owner, own_section):  # type: ignore[arg-type]
        props = _shaped(props, name, shape)
    tabular = {}
    for sec, row in es.tabular.items():
        for name, shape in profile.reshapers(owner, sec):  # type: ignore[arg-type]
            row = _shaped(row, name, shape)
        tabular[sec] = row
    if props is es.props and all(tabular[k] is es.tabular[k] for k in tabular):
        return es
    resources = es.resources
    if es.kind in ("records", "register_row"):
        present = {p.name for p in (props if es.kind == "register_row" else tabular["RecordSet"])}
        resources = tuple(r for r in resources if r in present)
    out = EntitySet(es.name, es.kind, es.key, props, tabular, es.register, es.dimensions, resources, es.register_kind)
    if es.kind == "tabular":
        out.section = es.section  # type: ignore[attr-defined]
    return out


@cache
def sets_for(profile: str = DEFAULT_PROFILE) -> dict[str, EntitySet]:
    """Every entity set an edition's sandbox base can publish, by name (tabular-section sets included)."""
    prof = get_profile(profile)
    return {name: _profiled(es, prof) for name, es in build_sets().items() if prof.has_set(name)}


def build_sets() -> dict[str, EntitySet]:
    """Every entity set of the canonical schema (3.0 shapes), by name (tabular-section sets included)."""
    sets = [
        _catalog(
            CP,
            s("НаименованиеПолное"),
            s("ИНН"),
            s("КПП"),
            s("РегистрационныйНомер"),
            enum("ВидКонтрагента", *PARTY_KINDS),
            enum("ЮридическоеФизическоеЛицо", *LEGAL_OR_PERSON),
            boolean("Покупатель"),
            boolean("Поставщик"),
            ref("УдалитьДоговорПоУмолчанию", CONTRACT),
            ref("ДоговорПоУмолчанию", CONTRACT),
            ref("СтранаРегистрации", COUNTRIES),
            ref("Ответственный", EMPLOYEE),
            ref("БанковскийСчетПоУмолчанию"),
            s("Комментарий"),
            tabular={"КонтактнаяИнформация": CONTACT_INFO_ROW},
            hierarchical=True,
        ),
        _catalog(
            CONTRACT,
            s("НомерДоговора"),
            dt("ДатаДоговора"),
            dt("СрокДействия"),
            s("ВидДоговора"),
            ref("Организация", ORG),
            ref("ВалютаРасчетов", CUR),
            ref("ВидЦен", PRICE_TYPE),
            int64("СрокОплатыПокупателя"),
            boolean("ДоговорПодписан"),
            boolean("Недействителен"),
            num("Сумма"),
            s("Комментарий"),
            owner=CP,
        ),
        _catalog(
            "Catalog_Номенклатура",
            s("НаименованиеПолное"),
            s("Артикул"),
            s("ТипНоменклатуры"),
            ref("ЕдиницаИзмерения", "Catalog_КлассификаторЕдиницИзмерения"),
            enum("ВидСтавкиНДС", *VAT_KINDS),
            ref("СтавкаНДС", VAT_RATES),  # 3.0: the kind; 1.6: the rate
            boolean("Недействителен"),
            boolean("ИсключитьИзПрайсЛистов"),
            s("Комментарий"),
            hierarchical=True,
        ),
        _catalog(PRICE_TYPE, ref("ВалютаЦены", CUR), boolean("ЦенаВключаетНДС"), s("Комментарий")),
        _catalog(
            ORG,
            s("НаименованиеПолное"),
            s("ИНН"),
            s("КПП"),
            s("ЮридическоеФизическоеЛицо"),
            tabular={"КонтактнаяИнформация": CONTACT_INFO_ROW},
        ),
        _catalog(CUR, s("НаименованиеПолное")),
        _catalog(UNIT, s("ТипСтруктурнойЕдиницы"), ref("Организация", ORG)),
        _catalog(EMPLOYEE, boolean("ВАрхиве"), boolean("Недействителен"), s("Комментарий")),
        _catalog("Catalog_КлассификаторЕдиницИзмерения", s("НаименованиеПолное"), s("МеждународноеСокращение")),
        # Catalogs/СостоянияЗаказовПокупателей.xml (3.0.8, 1.6.4): no state-kind or order attributes; Цвет is storage
        _catalog("Catalog_СостоянияЗаказовПокупателей"),
        _catalog(ORDER_KINDS, s("Комментарий")),
        _catalog(
            VAT_RATES, num("Ставка"), enum("ВидСтавкиНДС", *VAT_KINDS), boolean("Расчетная"), boolean("НеОблагается")
        ),
        _catalog(COUNTRIES, s("НаименованиеПолное"), s("КодАльфа2")),
        _document(
            "Document_ЗаказПокупателя",
            _sales_header(),
            s("ВидОперации"),
            comp("СостояниеЗаказа"),
            ref("СтруктурнаяЕдиницаПродажи", UNIT),
            ref("СтруктурнаяЕдиницаРезерв", UNIT),
            ref("ХозяйственнаяОперация"),
            dt("ДатаОтгрузки"),
            boolean("ЗапланироватьОплату"),
            dt("ОплатаДо"),
            dt("ДатаИзменения"),
            boolean("НДСВключатьВСтоимость"),
            ref("ПричинаОтмены"),
            s("ВариантЗавершения"),
            comp("ВидЗаказа"),
            num("Курс"),
            num("Кратность"),
            s("ПоложениеДатыОтгрузки"),
            tabular={"Запасы": STOCK_ROW, "ПлатежныйКалендарь": PAYMENT_CALENDAR_ROW},
        ),
        _document(
            "Document_СчетНаОплату",
            _sales_header(),
            comp("ДокументОснование"),
            ref("СтруктурнаяЕдиница", UNIT),
            tabular={"Запасы": STOCK_ROW},
        ),
        _document(
            "Document_РасходнаяНакладная",
            _sales_header(),
            s("ВидОперации"),
            comp("Заказ"),
            ref("СтруктурнаяЕдиница", UNIT),
            tabular={"Запасы": SHIPMENT_ROW},
        ),
        _document(
            "Document_ПоступлениеНаСчет",
            ref("Организация", ORG),
            s("ВидОперации"),
            ref("Контрагент", CP),
            num("СуммаДокумента"),
            ref("ВалютаДенежныхСредств", CUR),
            ref("Статья"),
            s("НазначениеПлатежа"),
            s("Комментарий"),
            ref("Автор"),
            tabular={"РасшифровкаПлатежа": PAYMENT_DETAILS_ROW},
        ),
        _document(
            "Document_ПоступлениеВКассу",
            ref("Организация", ORG),
            s("ВидОперации"),
            ref("Контрагент", CP),
            num("СуммаДокумента"),
            ref("ВалютаДенежныхСредств", CUR),
            ref("Статья"),
            s("Основание"),
            s("Комментарий"),
            ref("Автор"),
            tabular={"РасшифровкаПлатежа": PAYMENT_DETAILS_ROW},
        ),
        EntitySet(
            PRICES,
            "info_register",
            ("Period", "ВидЦен_Key", "Номенклатура_Key", "Характеристика_Key"),
            _flat(
                [Prop("Period", "Edm.DateTime", False)],
                [Prop("ВидЦен_Key", "Edm.Guid", False, PRICE_TYPE)],
                [Prop("Номенклатура_Key", "Edm.Guid", False, "Catalog_Номенклатура")],
                [Prop("Характеристика_Key", "Edm.Guid", False)],
                # InformationRegisters/ЦеныНоменклатуры.xml: ЕдиницаИзмерения composite (classifier or
                # the item's own units) in 3.0 and 1.6; ВалютаЦены 3.0 only (onec_profiles)
                num("Цена"),
                comp("ЕдиницаИзмерения"),
                ref("ВалютаЦены", CUR),
                boolean("Актуальность"),
                ref("Автор"),
            ),
            dimensions=("ВидЦен", "Номенклатура", "Характеристика"),
            resources=("Цена",),
        ),
        # 3.0 only, non-periodic and independent (InformationRegisters/ОсновныеДоговорыКонтрагента.xml in
        # AlexanderYekat/unf, Dershoozer/unf1): Контрагент is composite (Организации | Контрагенты).
        EntitySet(
            DEFAULT_CONTRACTS,
            "info_register",
            ("Организация_Key", "Контрагент", "Контрагент_Type", "ВидДоговора"),
            _flat(
                [Prop("Организация_Key", "Edm.Guid", False, ORG)],
                [Prop("Контрагент", "Edm.String", False)],
                [Prop("Контрагент_Type", "Edm.String", False)],
                [Prop("ВидДоговора", "Edm.String", False)],
                ref("Договор", CONTRACT),
            ),
            dimensions=("Организация", "Контрагент", "ВидДоговора"),
            resources=("Договор",),
        ),
    ]
    sets += _register_sets(
        SETTLEMENTS,
        _settlement_register_row(),
        ("Организация", "Контрагент", "Договор", "Документ", "Заказ", "ТипРасчетов"),
        ("Сумма", "СуммаВал", "СуммаРег"),
    )
    sets += _register_sets(
        INVOICE_PAYMENTS,
        _invoice_payment_row(),
        ("СчетНаОплату", "Организация"),
        ("Сумма", "СуммаОплаты", "СуммаАванса"),
        kind="turnovers",
    )
    out: dict[str, EntitySet] = {}
    for es in sets:
        out[es.name] = es
        if es.is_object:
            for section, row in es.tabular.items():
                tname = f"{es.name}_{section}"
                out[tname] = EntitySet(
                    tname,
                    "tabular",
                    ("Ref_Key", "LineNumber"),
                    [Prop("Ref_Key", "Edm.Guid", False)] + row,
                    register=es.name,
                )
                out[tname].section = section  # type: ignore[attr-defined]
    return out


SETS = sets_for(DEFAULT_PROFILE)  # the default edition's sets (UNF 3.0)


def dimension_props(es: EntitySet, dim: str) -> list[str]:
    """Published property names of one register dimension: `X_Key`, or `X` + `X_Type` for composites,
    or the plain `X` for enumerations/strings."""
    if es.prop(f"{dim}_Key"):
        return [f"{dim}_Key"]
    if es.prop(f"{dim}_Type"):
        return [dim, f"{dim}_Type"]
    return [dim]


def virtual_props(rows: EntitySet, suffixes: tuple[str, ...]) -> list[Prop]:
    """Fields of a `Balance`/`Turnover` result: dimensions + each resource with each suffix."""
    props = [rows.by_name[n] for d in rows.dimensions for n in dimension_props(rows, d)]
    props += [Prop(f"{r}{sfx}", "Edm.Double") for r in rows.resources for sfx in suffixes]
    return props


BALANCE_SUFFIXES = ("Balance",)
TURNOVER_SUFFIXES = ("Receipt", "Expense", "Turnover")
TURNOVER_ONLY_SUFFIXES = ("Turnover",)  # a turnover register's Turnovers: no receipt/expense split


def virtual_tables(es: EntitySet) -> tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...]:
    """(function, result type suffix, resource suffixes, parameters) of a register's virtual tables:
    a balance register has Balance and Turnovers, a turnover register Turnovers only."""
    turnovers = ("Turnovers", "Turnover", TURNOVER_SUFFIXES, ("Condition", "Dimensions", "EndPeriod", "StartPeriod"))
    if es.register_kind == "turnovers":
        return (turnovers[:2] + (TURNOVER_ONLY_SUFFIXES,) + turnovers[3:],)
    return (("Balance", "Balance", BALANCE_SUFFIXES, ("Condition", "Dimensions", "Period")), turnovers)


# -- CSDL ----------------------------------------------------------------------------------------------
def _props_xml(
    owner: str,
    props: list[Prop],
    key: tuple[str, ...] | None,
    assoc: list[str],
    navs: list[str],
    published: frozenset[str] = frozenset(),
) -> str:
    parts = []
    if key:
        parts.append("<Key>" + "".join(f"<PropertyRef Name={quoteattr(k)}/>" for k in key) + "</Key>")
    for p in props:
        nullable = "false" if (p.name in (key or ()) or not p.nullable) else "true"
        parts.append(f'<Property Name={quoteattr(p.name)} Type={quoteattr(p.edm)} Nullable="{nullable}"/>')
        if p.target in published and p.name.endswith("_Key"):  # no navigation to unpublished sets
            nav = p.name[:-4]
            rel = f"{owner}_{nav}"
            navs.append(
                f"<NavigationProperty Name={quoteattr(nav)} Relationship={quoteattr(NS + '.' + rel)} "
                'FromRole="Begin" ToRole="End"/>'
            )
            assoc.append(
                f"<Association Name={quoteattr(rel)}>"
                f'<End Role="Begin" Type={quoteattr(NS + "." + owner)} Multiplicity="*"/>'
                f'<End Role="End" Type={quoteattr(NS + "." + p.target)} Multiplicity="0..1"/>'
                "</Association>"
            )
    return "".join(parts)


def metadata_xml(published: list[str], sets: dict[str, EntitySet] | None = None) -> str:
    """The `$metadata` CSDL (EDMX, DataServiceVersion 3.0) of the published sets, 1C's layout."""
    sets = SETS if sets is None else sets
    types, complex_types, assoc, entity_sets, functions = [], [], [], [], []
    published_set = frozenset(published)
    for name in published:
        es = sets[name]
        # Tabular rows and register rows of a published owner are complex types of the owner.
        for section, row in es.tabular.items():
            row_type = f"{name}_RowType" if es.kind == "records" else f"{name}_{section}_RowType"
            complex_types.append(
                f"<ComplexType Name={quoteattr(row_type)}>" + _props_xml(row_type, row, None, [], []) + "</ComplexType>"
            )
        navs: list[str] = []
        body = _props_xml(name, es.props, es.key, assoc, navs, published_set)
        for section in es.tabular if es.is_object else ():
            body += (
                f"<Property Name={quoteattr(section)} "
                f'Type={quoteattr(f"Collection({NS}.{name}_{section}_RowType)")} Nullable="false"/>'
            )
        open_type = ' OpenType="true"' if es.kind in ("records", "register_row") else ""
        types.append(f"<EntityType Name={quoteattr(name)}{open_type}>{body}{''.join(navs)}</EntityType>")
        entity_sets.append(f"<EntitySet Name={quoteattr(name)} EntityType={quoteattr(NS + '.' + name)}/>")
        binding = f'<Parameter Name="bindingParameter" Type={quoteattr(NS + "." + name)}/>'
        if es.kind == "records":
            rows = sets[f"{name}_RecordType"]
            for fn, rtype, sfx, params in virtual_tables(es):
                complex_types.append(
                    f"<ComplexType Name={quoteattr(f'{name}_{rtype}')}>"
                    + _props_xml("", virtual_props(rows, sfx), None, [], [])
                    + "</ComplexType>"
                )
                functions.append(_function(fn, f"Collection({NS}.{name}_{rtype})", binding, params))
        if es.kind == "info_register" and "Period" in es.key:  # slices exist for periodic registers only
            for fn in ("SliceLast", "SliceFirst"):
                functions.append(_function(fn, f"Collection({NS}.{name})", binding, ("Condition", "Period")))
        if es.kind == "document":
            for fn in ("Post", "Unpost"):
                functions.append(
                    f'<FunctionImport Name="{fn}" IsBindable="true" IsSideEffecting="true">'
                    f'{binding}<Parameter Name="PostingModeOperational" Type="Edm.Boolean"/>'
                    "</FunctionImport>"
                )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<edmx:Edmx xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx" Version="1.0">'
        '<edmx:DataServices xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata" '
        'm:DataServiceVersion="3.0" m:MaxDataServiceVersion="3.0">'
        f'<Schema xmlns="http://schemas.microsoft.com/ado/2009/11/edm" Namespace="{NS}">'
        + "".join(types)
        + "".join(complex_types)
        + "".join(assoc)
        + '<EntityContainer Name="EnterpriseV8" m:IsDefaultEntityContainer="true">'
        + "".join(entity_sets)
        + "".join(functions)
        + "</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"
    )


def _function(name: str, return_type: str, binding: str, params: tuple[str, ...]) -> str:
    ps = "".join(
        f'<Parameter Name="{p}" Type="{"Edm.String" if p in ("Condition", "Dimensions") else "Edm.DateTime"}"/>'
        for p in params
    )
    return (
        f'<FunctionImport Name="{name}" IsBindable="true" IsSideEffecting="false" '
        f"ReturnType={quoteattr(return_type)}>{binding}{ps}</FunctionImport>"
    )
