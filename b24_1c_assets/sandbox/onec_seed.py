"""Projects a sandbox `World` into the records of a 1C:UNF base (catalogs, documents, register movements).

Records are stored as dicts keyed by published property names, values in wire-ready native types: GUIDs and
dates as strings (`0001-01-01T00:00:00` / zero GUID when empty), money as `Decimal`, `Edm.Int64` as `int`
(the server renders it as a JSON string).

Receivables (`AccumulationRegister_РасчетыСПокупателями`) follow UNF's conventions (pool's classifier):
a shipment records Receipt/«Долг»; a payment records Expense/«Долг» against the contract's open debts,
oldest first, and its excess as Expense/«Аванс» (so an advance is a *negative* «Аванс» balance); a later
shipment offsets an open advance (Receipt/«Аванс» + Expense/«Долг»). Hence the sum of `СуммаBalance` over
a counterparty equals `World.expected_balance(party.key)` (debt minus advances).
"""

from __future__ import annotations

import base64
import bisect
import gc
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from b24_1c_assets.sandbox.onec_profiles import DEFAULT_PROFILE, get_profile
from b24_1c_assets.sandbox.onec_schema import (
    COUNTRIES,
    DEFAULT_CONTRACTS,
    EMPTY_DATE,
    EMPTY_GUID,
    INVOICE_PAYMENTS,
    NS,
    ORDER_KINDS,
    PRICES,
    SETS,
    SETTLEMENTS,
    UNDEFINED_TYPE,
    VAT_RATES,
    EntitySet,
    build_sets,
)
from b24_1c_assets.sandbox.onec_schema import CP as CP_SET
from b24_1c_assets.sandbox.world import WORLD_NS, World

ZERO = Decimal("0.00")
_BLANKS: dict[int, dict] = {}  # id(set) -> a record with every property empty (sets live as long as the process)


def _memo_guid(world: World):
    """world.guid, cached and computed straight from SHA-1 (uuid.uuid5 is the seeder's hot spot)."""
    cache: dict[tuple[str, int], str] = {}
    ns, prefix = WORLD_NS.bytes, f"{world.seed}:"

    def g(kind: str, key: int) -> str:
        value = cache.get((kind, key))
        if value is None:
            h = bytearray(hashlib.sha1(ns + f"{prefix}{kind}:{key}".encode()).digest()[:16])
            h[6] = (h[6] & 0x0F) | 0x50  # version 5
            h[8] = (h[8] & 0x3F) | 0x80  # RFC 4122 variant
            x = h.hex()
            value = cache[(kind, key)] = f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"
        return value

    assert g("check", 1) == world.guid("check", 1)
    return g


def data_version(counter: int) -> str:
    """1C's DataVersion: a base64 8-byte big-endian counter (`AAAAAAAAAAE=` is 1)."""
    return base64.b64encode(counter.to_bytes(8, "big")).decode()


def next_data_version(current: str) -> str:
    try:
        return data_version(int.from_bytes(base64.b64decode(current), "big") + 1)
    except (ValueError, TypeError):
        return data_version(1)


def fmt_dt(value) -> str:
    if value is None:
        return EMPTY_DATE
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return f"{value.isoformat()}T00:00:00"


def order_per_row(shipment) -> bool:
    """Does this shipment name its order per row (Запасы.Заказ) instead of in the header? Every third one does."""
    return shipment.order_key is not None and shipment.key % 3 == 0


def counterparty_guid(world: World, party_key: int, index: int = 0) -> str:
    """Ref_Key of a party's `index`-th 1C spelling: the world GUID for the first, a derived one for dups."""
    if index == 0:
        return world.guid("counterparty", party_key)
    return str(uuid.uuid5(WORLD_NS, f"{world.seed}:counterparty:{party_key}:dup{index}"))


class RegisterStore:
    """Movements of one recorder-subordinate accumulation register, by recorder and by Period."""

    def __init__(self) -> None:
        self.by_recorder: dict[str, list[dict]] = {}
        self._sorted: tuple[list[str], list[dict]] | None = None
        self._indexes: dict[str, dict] = {}

    def put(self, recorder: str, rows: list[dict]) -> None:
        if rows:
            self.by_recorder[recorder] = rows
        else:
            self.by_recorder.pop(recorder, None)
        self._sorted, self._indexes = None, {}

    def put_all(self) -> None:
        """Indexes dropped after rows were changed in place."""
        self._sorted, self._indexes = None, {}

    def remove(self, recorder: str) -> None:
        if self.by_recorder.pop(recorder, None) is not None:
            self._sorted, self._indexes = None, {}

    def with_value(self, field_name: str, value) -> list[dict]:
        """Rows whose `field_name` equals `value`, in Period order (an index built on first use)."""
        index = self._indexes.get(field_name)
        if index is None:
            index = {}
            for r in self.by_period()[1]:
                index.setdefault(r.get(field_name), []).append(r)
            self._indexes[field_name] = index
        return index.get(value, [])

    def by_period(self) -> tuple[list[str], list[dict]]:
        """(periods, rows), both sorted by Period: date windows are a bisect away."""
        if self._sorted is None:
            rows = [r for rs in self.by_recorder.values() for r in rs]
            rows.sort(key=lambda r: r["Period"])
            self._sorted = ([r["Period"] for r in rows], rows)
        return self._sorted

    def window(self, lo: str | None, lo_inc: bool, hi: str | None, hi_inc: bool) -> list[dict]:
        periods, rows = self.by_period()
        start = 0 if lo is None else (bisect.bisect_left if lo_inc else bisect.bisect_right)(periods, lo)
        end = len(rows) if hi is None else (bisect.bisect_right if hi_inc else bisect.bisect_left)(periods, hi)
        return rows[start:end]

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_recorder.values())


@dataclass
class OneCState:
    """The whole sandbox base: object sets by Ref_Key, register stores, the prices register."""

    objects: dict[str, dict[str, dict]] = field(default_factory=dict)
    registers: dict[str, RegisterStore] = field(default_factory=dict)
    prices: list[dict] = field(default_factory=list)
    info_registers: dict[str, list[dict]] = field(default_factory=dict)  # other information registers' records
    counters: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)  # set name -> change counter (index caches)

    def blank(self, es: EntitySet) -> dict:
        template = _BLANKS.get(id(es))
        if template is None:
            template = _BLANKS[id(es)] = {p.name: p.empty for p in es.props}
        rec = dict(template)
        for section in es.tabular:
            rec[section] = []
        return rec

    def info_register(self, set_name: str) -> list[dict]:
        """The records of an information register (the prices register has its own list)."""
        return self.prices if set_name == PRICES else self.info_registers.setdefault(set_name, [])

    def add(self, set_name: str, rec: dict) -> dict:
        self.objects.setdefault(set_name, {})[rec["Ref_Key"]] = rec
        self.versions[set_name] = self.versions.get(set_name, 0) + 1
        return rec

    def next_code(self, set_name: str) -> int:
        self.counters[set_name] = self.counters.get(set_name, 0) + 1
        return self.counters[set_name]


_SEEDED_VERSION = data_version(1)


def _obj(state: OneCState, set_name: str, ref_key: str, **values) -> dict:
    """A seeded object holding its filled properties only (memory at 1M+ documents); the server renders
    absent properties as their empty values."""
    values["Ref_Key"] = ref_key
    values["DataVersion"] = _SEEDED_VERSION
    return state.add(set_name, values)


def _ref(set_name: str) -> str:
    return f"{NS}.{set_name}"


UNIT_CODES = {
    "шт": ("796", "Штука"),
    "кг": ("166", "Килограмм"),
    "м": ("006", "Метр"),
    "усл": ("798", "Условная единица"),
}
ORDER_STATES = ["Не обработан", "Выставлен счет", "В работе", "На выполнении", "Завершен"]
# (rate, ВидСтавкиНДС, name): the world's rates 20 / 10 / 0 and «Без НДС» (keyed -1)
VAT_RATE_SEED = [(20, "Общая", "20%"), (10, "Пониженная", "10%"), (0, "Нулевая", "0%"), (-1, "БезНДС", "Без НДС")]
VAT_KIND_OF_RATE = {20: "Общая", 10: "Пониженная", 0: "Нулевая"}


def seed(world: World, profile: str = DEFAULT_PROFILE, *, empty_dimensions: tuple[str, ...] = ()) -> OneCState:
    """Build the 1C base of a world as one UNF edition publishes it (`onec_profiles`). Linear in the number
    of records; fine for 100k parties / 1M movements. `empty_dimensions`: settlement-register dimensions
    (`Заказ`, `Документ`) left Undefined in every movement."""
    # Millions of small dicts make the cyclic GC rescan the heap again and again; none of them form cycles.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        state = _seed(world, tuple(empty_dimensions))
        _reshape(state, profile)
    finally:
        if was_enabled:
            gc.enable()
    gc.freeze()  # the seeded base lives as long as the server: keep it out of later collections
    return state


def _reshape(st: OneCState, profile: str) -> None:
    """Canonical records (3.0 shapes) -> the edition's field names and shapes, where they differ."""
    prof = get_profile(profile)
    for set_name, es in build_sets().items():
        if es.kind not in ("catalog", "document"):
            continue
        header = prof.reshapers(set_name)
        sections = {sec: ops for sec in es.tabular if (ops := prof.reshapers(set_name, sec))}
        if not header and not sections:
            continue
        for rec in st.objects.get(set_name, {}).values():
            prof.reshape(set_name, rec, ops=header)
            for sec, ops in sections.items():
                for row in rec.get(sec, ()):
                    prof.reshape(set_name, row, ops=ops)
    for register, store in st.registers.items():
        ops = prof.reshapers(register, "RecordSet")
        if ops:
            for rows in store.by_recorder.values():
                for row in rows:
                    prof.reshape(register, row, ops=ops)
            store.put_all()


def _seed(world: World, empty_dimensions: tuple[str, ...] = ()) -> OneCState:
    st = OneCState()
    g = _memo_guid(world)
    org = _obj(
        st,
        "Catalog_Организации",
        g("organization", 1),
        Description="ООО «Наша фирма»",
        Code="000000001",
        НаименованиеПолное="Общество с ограниченной ответственностью «Наша фирма»",
        ИНН="7701234567",
        КПП="770101001",
        ЮридическоеФизическоеЛицо="ЮридическоеЛицо",
    )["Ref_Key"]
    rub = _obj(
        st, "Catalog_Валюты", g("currency", 643), Description="руб.", Code="643", НаименованиеПолное="Российский рубль"
    )["Ref_Key"]
    retail = _obj(
        st,
        "Catalog_ВидыЦен",
        g("price_type", 1),
        Description="Розничная",
        Code="000000001",
        ВалютаЦены_Key=rub,
        ЦенаВключаетНДС=True,
    )["Ref_Key"]
    wholesale = _obj(
        st,
        "Catalog_ВидыЦен",
        g("price_type", 2),
        Description="Оптовая",
        Code="000000002",
        ВалютаЦены_Key=rub,
        ЦенаВключаетНДС=True,
    )["Ref_Key"]
    warehouse = _obj(
        st,
        "Catalog_СтруктурныеЕдиницы",
        g("structural_unit", 1),
        Description="Основной склад",
        Code="000000001",
        ТипСтруктурнойЕдиницы="Склад",
        Организация_Key=org,
    )["Ref_Key"]
    sales_dept = _obj(
        st,
        "Catalog_СтруктурныеЕдиницы",
        g("structural_unit", 2),
        Description="Отдел продаж",
        Code="000000002",
        ТипСтруктурнойЕдиницы="Подразделение",
        Организация_Key=org,
    )["Ref_Key"]
    operation = g("business_operation", 1)
    for user in world.users:
        _obj(
            st,
            "Catalog_Сотрудники",
            g("employee", user.id),
            Description=f"{user.last_name} {user.name}",
            Code=f"{user.id:09d}",
            ВАрхиве=not user.active,
            Недействителен=not user.active,
        )
    units = {}
    for short, (code, full) in UNIT_CODES.items():
        units[short] = _obj(
            st,
            "Catalog_КлассификаторЕдиницИзмерения",
            g("unit", int(code)),
            Description=short,
            Code=code,
            НаименованиеПолное=full,
            МеждународноеСокращение=short,
        )["Ref_Key"]
    states = {}
    for i, name in enumerate(ORDER_STATES, 1):
        states[name] = _obj(
            st,
            "Catalog_СостоянияЗаказовПокупателей",
            g("order_state", i),
            Description=name,
            Code=f"{i:09d}",
            # «Завершен» is predefined (ЗНАЧЕНИЕ(Справочник.СостоянияЗаказовПокупателей.Завершен))
            **({"Predefined": True, "PredefinedDataName": "Завершен"} if name == "Завершен" else {}),
        )["Ref_Key"]
    employee = {u.id: g("employee", u.id) for u in world.users}
    order_kind = _obj(
        st,
        ORDER_KINDS,
        g("order_kind", 1),
        Description="Основной",
        Code="000000001",
        Predefined=True,
        PredefinedDataName="Основной",
    )["Ref_Key"]
    russia = _obj(
        st,
        COUNTRIES,
        g("country", 643),
        Description="РОССИЯ",
        Code="643",
        НаименованиеПолное="Российская Федерация",
        КодАльфа2="RU",
        Predefined=True,
        PredefinedDataName="Россия",
    )["Ref_Key"]
    # Catalogs/СтавкиНДС/Ext/ManagerModule.bsl (ПриНачальномЗаполненииЭлементов) seeds these rates.
    for code, (rate, kind, name) in enumerate(VAT_RATE_SEED, 1):
        _obj(
            st,
            VAT_RATES,
            g("vat_rate", rate if kind != "БезНДС" else -1),
            Description=name,
            Code=f"{code:09d}",
            Ставка=Decimal(max(rate, 0)),
            ВидСтавкиНДС=kind,
            НеОблагается=kind == "БезНДС",
        )

    # Counterparties: one per 1C spelling of a party; documents point at the first one.
    contracts_of: dict[int, list] = {}
    for c in world.contracts:
        contracts_of.setdefault(c.party_key, []).append(c)
    code = 0
    for party in world.parties:
        first_contract = contracts_of.get(party.key, [None])[0]
        for idx, sp in enumerate(party.onec_spellings):
            code += 1
            contacts = []
            if sp.email:
                contacts.append({"Тип": "АдресЭлектроннойПочты", "АдресЭП": sp.email, "Представление": sp.email})
            if sp.phone:
                contacts.append({"Тип": "Телефон", "НомерТелефона": sp.phone, "Представление": sp.phone})
            rows = []
            for n, c in enumerate(contacts, 1):
                row = {p.name: p.empty for p in SETS["Catalog_Контрагенты"].tabular["КонтактнаяИнформация"]}
                row.update(c, LineNumber=n)
                rows.append(row)
            legal = party.kind == "legal"
            contracts = contracts_of.get(party.key, [])
            # 3.0 kept the pre-register default as УдалитьДоговорПоУмолчанию: stale here (the last contract,
            # while the register says the first), so a reader of the wrong field picks the wrong contract.
            stale = g("contract", contracts[-1].key) if len(contracts) > 1 else EMPTY_GUID
            _obj(
                st,
                "Catalog_Контрагенты",
                counterparty_guid(world, party.key, idx),
                Description=sp.title,
                Code=f"{code:09d}",
                НаименованиеПолное=party.full_name if idx == 0 else sp.title,
                ИНН=sp.inn or "",
                КПП=sp.kpp or "",
                РегистрационныйНомер=sp.ogrn or "",
                ВидКонтрагента="ЮридическоеЛицо" if legal else "ИндивидуальныйПредприниматель",
                ЮридическоеФизическоеЛицо="ЮридическоеЛицо" if legal else "ФизическоеЛицо",
                Покупатель=True,
                Поставщик=False,
                ДоговорПоУмолчанию_Key=g("contract", first_contract.key) if first_contract else EMPTY_GUID,
                УдалитьДоговорПоУмолчанию_Key=stale,
                СтранаРегистрации_Key=russia if legal else EMPTY_GUID,
                Ответственный_Key=employee.get(party.manager_id, EMPTY_GUID),
                КонтактнаяИнформация=rows,
                **({"DeletionMark": True} if sp.deleted else {}),
            )
    st.counters["Catalog_Контрагенты"] = code
    # 3.0: the default sales contract of each counterparty (its first one), as ЗаписатьДоговорПоУмолчанию writes it
    st.info_register(DEFAULT_CONTRACTS).extend(
        {
            "Организация_Key": org,
            "Контрагент": g("counterparty", party_key),
            "Контрагент_Type": _ref(CP_SET),
            "ВидДоговора": "СПокупателем",
            "Договор_Key": g("contract", cs[0].key),
        }
        for party_key, cs in contracts_of.items()
    )
    for n, c in enumerate(world.contracts, 1):
        _obj(
            st,
            "Catalog_ДоговорыКонтрагентов",
            g("contract", c.key),
            Description=f"Договор № {c.number} от {c.signed_on:%d.%m.%Y}",
            Code=f"{n:09d}",
            Owner_Key=g("counterparty", c.party_key),
            Owner_Type=_ref("Catalog_Контрагенты"),
            НомерДоговора=c.number,
            ДатаДоговора=fmt_dt(c.signed_on),
            ВидДоговора="СПокупателем",
            Организация_Key=org,
            ВалютаРасчетов_Key=rub,
            ВидЦен_Key=retail,
            СрокОплатыПокупателя=c.payment_term_days,
            ДоговорПодписан=True,
        )
    st.counters["Catalog_ДоговорыКонтрагентов"] = len(world.contracts)

    items = {}
    for n, it in enumerate(world.items, 1):
        items[it.key] = it
        _obj(
            st,
            "Catalog_Номенклатура",
            g("item", it.key),
            Description=it.name,
            Code=f"НФ-{n:08d}",
            НаименованиеПолное=it.name,
            Артикул=it.article,
            ТипНоменклатуры="Запас" if it.kind == "goods" else "Услуга",
            ЕдиницаИзмерения_Key=units.get(it.unit, units["шт"]),
            DeletionMark=it.deleted,
            ВидСтавкиНДС=VAT_KIND_OF_RATE.get(it.vat_rate, "Общая"),
            СтавкаНДС_Key=g("vat_rate", it.vat_rate),
        )
        # Prices: an older and the current retail price, a wholesale one; SliceLast gives the current.
        item_key = g("item", it.key)
        for period, price_type, price in (
            (world.as_of - timedelta(days=400), retail, (it.price * Decimal("0.9")).quantize(Decimal("0.01"))),
            (world.as_of - timedelta(days=60), retail, it.price),
            (world.as_of - timedelta(days=60), wholesale, (it.price * Decimal("0.85")).quantize(Decimal("0.01"))),
        ):
            st.prices.append(
                {
                    "Period": fmt_dt(period.replace(hour=0, minute=0, second=0, microsecond=0)),
                    "ВидЦен_Key": price_type,
                    "Номенклатура_Key": item_key,
                    "Характеристика_Key": EMPTY_GUID,
                    "Цена": price,
                    "ЕдиницаИзмерения": units.get(it.unit, units["шт"]),
                    "ВалютаЦены_Key": rub,
                    "ЕдиницаИзмерения_Type": _ref("Catalog_КлассификаторЕдиницИзмерения"),
                    "Актуальность": True,
                    "Автор_Key": EMPTY_GUID,
                }
            )
    st.counters["Catalog_Номенклатура"] = len(world.items)

    item_t, unit_t = _ref("Catalog_Номенклатура"), _ref("Catalog_КлассификаторЕдиницИзмерения")
    item_facts = {}  # item key -> (guid, unit guid, VAT rate guid, rate)
    for it in world.items:
        rate = Decimal(it.vat_rate)
        item_facts[it.key] = (g("item", it.key), units.get(it.unit, units["шт"]), g("vat_rate", it.vat_rate), rate)
    hundred = Decimal(100)
    cent = Decimal("0.01")

    amounts: dict[tuple[str, int], Decimal] = {}  # (kind, key) -> document amount, summed once

    def stock_rows(lines, doc: tuple[str, int]) -> tuple[list[dict], Decimal]:
        """Запасы rows and the document total (kept in `amounts` for the registers)."""
        # Only filled columns are stored; the server renders the others as their empty values.
        rows = []
        total = ZERO
        for n, ln in enumerate(lines, 1):
            facts = item_facts.get(ln.item_key) or (g("item", ln.item_key), units["шт"], g("vat_rate", 20), Decimal(20))
            amount = ln.amount
            vat = (amount * facts[3] / (hundred + facts[3])).quantize(cent)
            rows.append(
                {
                    "LineNumber": n,
                    "Номенклатура": facts[0],
                    "Номенклатура_Type": item_t,
                    "ЕдиницаИзмерения": facts[1],
                    "ЕдиницаИзмерения_Type": unit_t,
                    "Количество": ln.quantity,
                    "Цена": ln.price,
                    "Сумма": amount,
                    "СтавкаНДС_Key": facts[2],
                    "СуммаНДС": vat,
                    "Всего": amount,
                    "СтруктурнаяЕдиницаРезерв_Key": warehouse,
                    "КлючСвязи": n,
                }
            )
            total += amount
        amounts[doc] = total
        return rows, total

    def header(doc, amount):
        party = doc.party_key
        return dict(
            Number=doc.number,
            Date=fmt_dt(doc.date),
            Posted=doc.posted,
            Организация_Key=org,
            Контрагент_Key=g("counterparty", party),
            Договор_Key=g("contract", doc.contract_key),
            СуммаДокумента=amount,
            ВалютаДокумента_Key=rub,
            ВидЦен_Key=retail,
            НалогообложениеНДС="ОблагаетсяНДС",
            СуммаВключаетНДС=True,
        )

    managers = {p.key: employee.get(p.manager_id, EMPTY_GUID) for p in world.parties}
    shipped_orders = {s.order_key for s in world.shipments if s.order_key is not None and s.posted}
    ORDER, INVOICE, SHIPMENT = "Document_ЗаказПокупателя", "Document_СчетНаОплату", "Document_РасходнаяНакладная"
    for o in world.orders:
        calendar = [
            {
                "LineNumber": n,
                "ДатаОплаты": fmt_dt(d),
                "ПроцентОплаты": ZERO,
                "СуммаОплаты": amt,
                "СуммаНДСОплаты": ZERO,
            }
            for n, (d, amt) in enumerate(o.due_dates, 1)
        ]
        state_name = "Завершен" if o.key in shipped_orders else "В работе"
        rows, amount = stock_rows(o.lines, ("order", o.key))
        _obj(
            st,
            ORDER,
            g("order", o.key),
            **header(o, amount),
            DeletionMark=o.deleted,
            Ответственный_Key=managers.get(o.party_key, EMPTY_GUID),
            ВидОперации="ЗаказНаПродажу",
            СостояниеЗаказа=states[state_name],
            СостояниеЗаказа_Type=_ref("Catalog_СостоянияЗаказовПокупателей"),
            СтруктурнаяЕдиницаПродажи_Key=sales_dept,
            СтруктурнаяЕдиницаРезерв_Key=warehouse,
            ХозяйственнаяОперация_Key=operation,
            ЗапланироватьОплату=bool(calendar),
            ВидЗаказа=order_kind,
            ВидЗаказа_Type=_ref(ORDER_KINDS),
            Курс=Decimal(1),
            Кратность=Decimal(1),
            ДатаОтгрузки=fmt_dt(o.date + timedelta(days=3)),
            ПоложениеДатыОтгрузки="ВШапке",
            ОплатаДо=calendar[-1]["ДатаОплаты"] if calendar else EMPTY_DATE,
            ДатаИзменения=fmt_dt(o.date),
            Запасы=rows,
            ПлатежныйКалендарь=calendar,
        )
    for i in world.invoices:
        rows, amount = stock_rows(i.lines, ("invoice", i.key))
        _obj(
            st,
            INVOICE,
            g("invoice", i.key),
            **header(i, amount),
            Ответственный_Key=managers.get(i.party_key, EMPTY_GUID),
            ДокументОснование=g("order", i.order_key) if i.order_key is not None else "",
            ДокументОснование_Type=_ref(ORDER) if i.order_key is not None else UNDEFINED_TYPE,
            СтруктурнаяЕдиница_Key=sales_dept,
            Запасы=rows,
        )
    for s in world.shipments:
        rows, amount = stock_rows(s.lines, ("shipment", s.key))
        order = (g("order", s.order_key), _ref(ORDER)) if s.order_key is not None else ("", UNDEFINED_TYPE)
        # Every third shipment of an order names it per row (Запасы.Заказ), with no order in the header.
        per_row = order_per_row(s)
        for row in rows:
            row["Заказ"], row["Заказ_Type"] = order if per_row else ("", UNDEFINED_TYPE)
        _obj(
            st,
            SHIPMENT,
            g("shipment", s.key),
            **header(s, amount),
            Ответственный_Key=managers.get(s.party_key, EMPTY_GUID),
            ВидОперации="ПродажаПокупателю",
            Заказ="" if per_row else order[0],
            Заказ_Type=UNDEFINED_TYPE if per_row else order[1],
            СтруктурнаяЕдиница_Key=warehouse,
            Запасы=rows,
        )
    for p in world.payments:
        set_name = "Document_ПоступлениеНаСчет" if p.channel == "bank" else "Document_ПоступлениеВКассу"
        detail = {
            "Договор_Key": g("contract", p.contract_key),
            "ПризнакАванса": p.order_key is not None and p.order_key not in shipped_orders,
            "Заказ": g("order", p.order_key) if p.order_key is not None else "",
            "Заказ_Type": _ref(ORDER) if p.order_key is not None else UNDEFINED_TYPE,
            "СчетНаОплату": g("invoice", p.invoice_key) if p.invoice_key is not None else "",
            "СчетНаОплату_Type": _ref(INVOICE) if p.invoice_key is not None else UNDEFINED_TYPE,
            "Документ": "",
            "Документ_Type": UNDEFINED_TYPE,
        }
        # The contract is per row: every fourth payment is split over two rows of its contract.
        half = (p.amount / 2).quantize(Decimal("0.01")) if p.key % 4 == 0 and p.amount >= 1 else p.amount
        parts = [half, p.amount - half] if half != p.amount else [p.amount]
        details = [
            {**detail, "LineNumber": n, "СуммаРасчетов": part, "СуммаПлатежа": part} for n, part in enumerate(parts, 1)
        ]
        purpose = f"Оплата по договору {p.contract_key}" if p.channel == "bank" else ""
        extra = {"НазначениеПлатежа": purpose} if p.channel == "bank" else {"Основание": "Оплата от покупателя"}
        _obj(
            st,
            set_name,
            g("payment", p.key),
            Number=p.number,
            Date=fmt_dt(p.date),
            Posted=p.posted,
            Организация_Key=org,
            ВидОперации="ОтПокупателя",
            Контрагент_Key=g("counterparty", p.party_key),
            СуммаДокумента=p.amount,
            ВалютаДенежныхСредств_Key=rub,
            РасшифровкаПлатежа=details,
            **extra,
        )

    st.registers[SETTLEMENTS] = _settlements(world, org, g, amounts, empty_dimensions)
    st.registers[INVOICE_PAYMENTS] = _invoice_payments(world, org, g, amounts)
    return st


INACTIVE_EVERY = 7  # one shipment in 7 also carries a deactivated line (Active = false)


def _settlements(
    world: World, org: str, g, amounts: dict[tuple[str, int], Decimal], empty_dimensions: tuple[str, ...] = ()
) -> RegisterStore:
    """РасчетыСПокупателями movements, contract by contract in date order (see module docstring).

    Some shipments' record sets also hold a deactivated copy of their debt line (`Active` = false, as a
    user's manual register correction leaves it): 1C's Balance and Turnovers ignore such a line, so it
    must not count anywhere. `empty_dimensions` (`Заказ`, `Документ`) leaves those dimensions Undefined
    in every movement, as in a base that does not settle by orders or documents."""
    store = RegisterStore()
    events: dict[int, list] = {}
    for s in world.shipments:
        if s.posted:
            events.setdefault(s.contract_key, []).append((s.date, 0, "s", s))
    for p in world.payments:
        if p.posted:
            events.setdefault(p.contract_key, []).append((p.date, 1, "p", p))
    order_t = f"{NS}.Document_ЗаказПокупателя"
    for contract_key, evs in events.items():
        evs.sort(key=lambda e: (e[0], e[1], e[3].key))
        debts: list[list] = []  # [document guid, doc type, order guid, order type, open amount]
        advances: list[list] = []  # [payment guid, payment type, order guid, order type, open amount]
        for date, _, kind, doc in evs:
            period = fmt_dt(date)
            cp = g("counterparty", doc.party_key)
            contract = g("contract", contract_key)
            order = g("order", doc.order_key) if doc.order_key is not None else ""
            otype = order_t if doc.order_key is not None else UNDEFINED_TYPE
            rows: list[dict] = []

            # called only within the iteration that defines it, so the loop variables it reads are this row's
            def move(record_type, settlement, amount, document, dtype, order_ref, order_type, active=True):
                if "Заказ" in empty_dimensions:
                    order_ref, order_type = "", UNDEFINED_TYPE
                if "Документ" in empty_dimensions:
                    document, dtype = "", UNDEFINED_TYPE
                rows.append(  # noqa: B023
                    {
                        "Recorder": recorder,  # noqa: B023
                        "Recorder_Type": recorder_type,  # noqa: B023
                        "Period": period,  # noqa: B023
                        "LineNumber": len(rows) + 1,  # noqa: B023
                        "Active": active,
                        "RecordType": record_type,  # noqa: B023
                        "Организация_Key": org,
                        "Контрагент_Key": cp,  # noqa: B023
                        "Договор_Key": contract,  # noqa: B023
                        "Документ": document,
                        "Документ_Type": dtype,
                        "Заказ": order_ref,
                        "Заказ_Type": order_type,
                        "ТипРасчетов": settlement,
                        "Сумма": amount,
                        "СуммаВал": amount,
                        "СуммаРег": amount,
                        "СодержаниеПроводки": "",
                    }
                )

            if kind == "s":
                recorder, recorder_type = g("shipment", doc.key), f"{NS}.Document_РасходнаяНакладная"
                amount = amounts[("shipment", doc.key)]
                move("Receipt", "Долг", amount, recorder, recorder_type, order, otype)
                if doc.key % INACTIVE_EVERY == 3:
                    move("Receipt", "Долг", amount, recorder, recorder_type, order, otype, active=False)
                open_debt = [recorder, recorder_type, order, otype, amount]
                while advances and open_debt[4] > 0:
                    adv = advances[0]
                    used = min(adv[4], open_debt[4])
                    move("Receipt", "Аванс", used, adv[0], adv[1], adv[2], adv[3])
                    move("Expense", "Долг", used, recorder, recorder_type, order, otype)
                    adv[4] -= used
                    open_debt[4] -= used
                    if adv[4] <= 0:
                        advances.pop(0)
                if open_debt[4] > 0:
                    debts.append(open_debt)
            else:
                recorder = g("payment", doc.key)
                recorder_type = f"{NS}.Document_{'ПоступлениеНаСчет' if doc.channel == 'bank' else 'ПоступлениеВКассу'}"
                left = doc.amount
                while debts and left > 0:
                    debt = debts[0]
                    used = min(debt[4], left)
                    move("Expense", "Долг", used, debt[0], debt[1], debt[2], debt[3])
                    debt[4] -= used
                    left -= used
                    if debt[4] <= 0:
                        debts.pop(0)
                if left > 0:
                    move("Expense", "Аванс", left, recorder, recorder_type, order, otype)
                    advances.append([recorder, recorder_type, order, otype, left])
            store.by_recorder[recorder] = rows
    # Recorders in document-date order, as 1C lists record sets.
    store.by_recorder = dict(sorted(store.by_recorder.items(), key=lambda kv: kv[1][0]["Period"]))
    return store


def _invoice_payments(world: World, org: str, g, amounts: dict[tuple[str, int], Decimal]) -> RegisterStore:
    """ОплатаСчетовИЗаказов: an invoice (or an order without invoice) records its Сумма; a payment naming an
    invoice/order records СуммаОплаты against it. A turnover register: its rows have no RecordType."""
    store = RegisterStore()
    invoiced_orders = {i.order_key for i in world.invoices if i.order_key is not None}
    inv_t, ord_t = f"{NS}.Document_СчетНаОплату", f"{NS}.Document_ЗаказПокупателя"

    def row(recorder, rtype, period, target, ttype, amount=ZERO, paid=ZERO, advance=ZERO):
        return {
            "Recorder": recorder,
            "Recorder_Type": rtype,
            "Period": fmt_dt(period),
            "LineNumber": 1,
            "Active": True,
            "Организация_Key": org,
            "СчетНаОплату": target,
            "СчетНаОплату_Type": ttype,
            "Сумма": amount,
            "СуммаОплаты": paid,
            "СуммаАванса": advance,
        }

    for i in world.invoices:
        if i.posted:
            ref = g("invoice", i.key)
            store.by_recorder[ref] = [row(ref, inv_t, i.date, ref, inv_t, amount=amounts[("invoice", i.key)])]
    for o in world.orders:
        if o.posted and not o.deleted and o.key not in invoiced_orders:
            ref = g("order", o.key)
            store.by_recorder[ref] = [row(ref, ord_t, o.date, ref, ord_t, amount=amounts[("order", o.key)])]
    shipped = {s.order_key for s in world.shipments if s.order_key is not None and s.posted}
    for p in world.payments:
        if not p.posted or (p.invoice_key is None and p.order_key is None):
            continue
        target, ttype = (
            (g("invoice", p.invoice_key), inv_t) if p.invoice_key is not None else (g("order", p.order_key), ord_t)
        )
        rtype = f"{NS}.Document_{'ПоступлениеНаСчет' if p.channel == 'bank' else 'ПоступлениеВКассу'}"
        prepaid = p.order_key is not None and p.order_key not in shipped
        ref = g("payment", p.key)
        store.by_recorder[ref] = [
            row(
                ref,
                rtype,
                p.date,
                target,
                ttype,
                paid=ZERO if prepaid else p.amount,
                advance=p.amount if prepaid else ZERO,
            )
        ]
    return store
