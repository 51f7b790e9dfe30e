"""In-memory CRM of the sandbox Bitrix24 portal: records, filters, select, order, paging, user fields, stages,
offline events.

Everything here works on *wire values* exactly as the REST API shows them: classic `crm.*` records hold
strings for IDs, numbers and money (`"ID": "17"`, `"OPPORTUNITY": "15000.00"`), dates as
`2026-11-23T22:40:00+03:00`; smart invoices (`crm.item.*`) hold typed camelCase values. The HTTP side
(`bitrix24_portal.py`) turns requests into calls of `CrmState.call(method, params)`; errors are raised as
`CrmError` carrying the documented error code, description and HTTP status.

Thread safety: one re-entrant lock around every call (the portal serves requests on many threads).
"""

from __future__ import annotations

import bisect
import hashlib
import re
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

MSK = timezone(timedelta(hours=3))  # the portal's time zone (Moscow)
PAGE_SIZE = 50


class CrmError(Exception):
    """A REST error: `code` goes to `error`, `description` to `error_description`, `status` is the HTTP code."""

    def __init__(self, code: str, description: str, status: int = 400):
        super().__init__(f"{code or 'error'}: {description}")
        self.code = code
        self.description = description
        self.status = status


def not_found() -> CrmError:
    return CrmError("", "Not found", 400)


def bad_argument(description: str) -> CrmError:
    return CrmError("ERROR_ARGUMENT", description, 400)


# -- wire formats -------------------------------------------------------------------------------------


def format_datetime(moment: datetime) -> str:
    """`2026-11-23T22:40:00+03:00`; naive datetimes are Moscow local time (the world's convention)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=MSK)
    return moment.astimezone(MSK).isoformat(timespec="seconds")


def now_wire() -> str:
    return format_datetime(datetime.now(MSK))


def format_money(value: Any) -> str:
    return f"{Decimal(str(value)).quantize(Decimal('0.01'))}"


_DMY = re.compile(r"^(\d{2})\.(\d{2})\.(\d{4})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$")


def parse_datetime(value: Any) -> datetime | None:
    """ISO 8601 (with or without offset, or a bare date) or `dd.mm.yyyy[ HH:MM[:SS]]`; naive = Moscow."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        match = _DMY.match(text)
        if match:
            d, m, y, hh, mm, ss = match.groups()
            moment = datetime(int(y), int(m), int(d), int(hh or 0), int(mm or 0), int(ss or 0))
        else:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=MSK)
    return moment


def as_int(value: Any, what: str = "ID") -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise CrmError("", f"{what} is not defined or invalid.") from None


def yes_no(value: Any) -> str:
    if isinstance(value, bool):
        return "Y" if value else "N"
    return "Y" if str(value).strip().upper() in {"Y", "1", "TRUE"} else "N"


# -- entity descriptions ------------------------------------------------------------------------------

MULTIFIELDS = ("PHONE", "EMAIL", "WEB", "IM")


@dataclass(frozen=True)
class EntitySpec:
    """Field names and wire types of one classic CRM entity."""

    name: str  # 'company'
    fields: dict[str, str]  # field -> type: integer, double, money, datetime, date, char, string, crm_status
    readonly: frozenset[str]
    uf_entity: str | None = None  # 'CRM_COMPANY'; None = no user fields
    event_prefix: str | None = None  # 'ONCRMCOMPANY'; None = no events
    multifields: tuple[str, ...] = ()
    created_field: str = "DATE_CREATE"
    modified_field: str = "DATE_MODIFY"
    indexed: tuple[str, ...] = ()  # equality-filter indexes (cheap lookups on 100k+ records)
    titles: dict[str, str] = field(default_factory=dict)


def _fields(**types: str) -> dict[str, str]:
    return dict(types)


_OWNER = _fields(
    ASSIGNED_BY_ID="user",
    CREATED_BY_ID="user",
    MODIFY_BY_ID="user",
    DATE_CREATE="datetime",
    DATE_MODIFY="datetime",
    OPENED="char",
    COMMENTS="string",
)
_ORIGIN = _fields(ORIGINATOR_ID="string", ORIGIN_ID="string", ORIGIN_VERSION="string")
_RO = frozenset({"ID", "DATE_CREATE", "DATE_MODIFY", "CREATED_BY_ID", "MODIFY_BY_ID", "HAS_PHONE", "HAS_EMAIL"})

COMPANY = EntitySpec(
    "company",
    {
        "ID": "integer",
        "TITLE": "string",
        "COMPANY_TYPE": "crm_status",
        "INDUSTRY": "crm_status",
        "EMPLOYEES": "crm_status",
        "REVENUE": "double",
        "CURRENCY_ID": "crm_currency",
        "HAS_PHONE": "char",
        "HAS_EMAIL": "char",
        **_OWNER,
        **_ORIGIN,
    },
    _RO,
    "CRM_COMPANY",
    "ONCRMCOMPANY",
    MULTIFIELDS,
    indexed=("ORIGIN_ID", "ASSIGNED_BY_ID"),
    titles={"TITLE": "Название компании", "COMPANY_TYPE": "Тип компании"},
)
CONTACT = EntitySpec(
    "contact",
    {
        "ID": "integer",
        "NAME": "string",
        "LAST_NAME": "string",
        "SECOND_NAME": "string",
        "POST": "string",
        "COMPANY_ID": "crm_company",
        "TYPE_ID": "crm_status",
        "SOURCE_ID": "crm_status",
        "HAS_PHONE": "char",
        "HAS_EMAIL": "char",
        **_OWNER,
        **_ORIGIN,
    },
    _RO,
    "CRM_CONTACT",
    "ONCRMCONTACT",
    MULTIFIELDS,
    indexed=("COMPANY_ID", "ORIGIN_ID"),
)
DEAL = EntitySpec(
    "deal",
    {
        "ID": "integer",
        "TITLE": "string",
        "TYPE_ID": "crm_status",
        "CATEGORY_ID": "crm_category",
        "STAGE_ID": "crm_status",
        "STAGE_SEMANTIC_ID": "string",
        "IS_NEW": "char",
        "CLOSED": "char",
        "COMPANY_ID": "crm_company",
        "CONTACT_ID": "crm_contact",
        "OPPORTUNITY": "double",
        "IS_MANUAL_OPPORTUNITY": "char",
        "CURRENCY_ID": "crm_currency",
        "BEGINDATE": "date",
        "CLOSEDATE": "date",
        **_OWNER,
        **_ORIGIN,
    },
    _RO | {"STAGE_SEMANTIC_ID", "IS_NEW", "CLOSED"},
    "CRM_DEAL",
    "ONCRMDEAL",
    indexed=("COMPANY_ID", "ORIGIN_ID", "CATEGORY_ID"),
)
REQUISITE = EntitySpec(
    "requisite",
    {
        "ID": "integer",
        "ENTITY_TYPE_ID": "integer",
        "ENTITY_ID": "integer",
        "PRESET_ID": "integer",
        "NAME": "string",
        "ACTIVE": "char",
        "SORT": "integer",
        "XML_ID": "string",
        "CODE": "string",
        "DATE_CREATE": "datetime",
        "DATE_MODIFY": "datetime",
        "CREATED_BY_ID": "user",
        "MODIFY_BY_ID": "user",
        "RQ_NAME": "string",
        "RQ_FIRST_NAME": "string",
        "RQ_LAST_NAME": "string",
        "RQ_SECOND_NAME": "string",
        "RQ_COMPANY_NAME": "string",
        "RQ_COMPANY_FULL_NAME": "string",
        "RQ_INN": "string",
        "RQ_KPP": "string",
        "RQ_OGRN": "string",
        "RQ_OGRNIP": "string",
        "RQ_OKPO": "string",
        "RQ_OKVED": "string",
    },
    _RO,
    "CRM_REQUISITE",
    "ONCRMREQUISITE",
    indexed=("ENTITY_ID", "RQ_INN", "XML_ID"),
)
PRODUCT = EntitySpec(
    "product",
    {
        "ID": "integer",
        "NAME": "string",
        "CODE": "string",
        "ACTIVE": "char",
        "SORT": "integer",
        "PRICE": "double",
        "CURRENCY_ID": "crm_currency",
        "XML_ID": "string",
        "SECTION_ID": "integer",
        "MEASURE": "integer",
        "VAT_ID": "integer",
        "VAT_INCLUDED": "char",
        "DESCRIPTION": "string",
        "CATALOG_ID": "integer",
        "DATE_CREATE": "datetime",
        "TIMESTAMP_X": "datetime",
        "CREATED_BY": "user",
        "MODIFIED_BY": "user",
    },
    frozenset({"ID", "DATE_CREATE", "TIMESTAMP_X", "CREATED_BY", "MODIFIED_BY", "CATALOG_ID"}),
    modified_field="TIMESTAMP_X",
    indexed=("XML_ID",),
)
SPECS = {s.name: s for s in (COMPANY, CONTACT, DEAL, REQUISITE, PRODUCT)}
ENTITY_TYPE_IDS = {"deal": 2, "contact": 3, "company": 4}

# crm.item (smart invoices, entityTypeId 31): camelCase, typed values.
SMART_INVOICE_TYPE_ID = 31
INVOICE_FIELDS = {
    "id": "integer",
    "xmlId": "string",
    "title": "string",
    "createdBy": "user",
    "updatedBy": "user",
    "movedBy": "user",
    "createdTime": "datetime",
    "updatedTime": "datetime",
    "movedTime": "datetime",
    "categoryId": "crm_category",
    "opened": "boolean",
    "stageId": "crm_status",
    "previousStageId": "crm_status",
    "begindate": "date",
    "closedate": "date",
    "companyId": "crm_company",
    "contactId": "crm_contact",
    "opportunity": "double",
    "isManualOpportunity": "boolean",
    "taxValue": "double",
    "currencyId": "crm_currency",
    "mycompanyId": "crm_company",
    "sourceId": "crm_status",
    "assignedById": "user",
    "accountNumber": "string",
    "comments": "text",
    "parentId2": "crm_entity",
    "stageSemanticId": "string",
}
INVOICE_READONLY = frozenset(
    {
        "id",
        "createdBy",
        "updatedBy",
        "movedBy",
        "createdTime",
        "updatedTime",
        "movedTime",
        "previousStageId",
        "stageSemanticId",
    }
)

USER_FIELD_TYPES = frozenset(
    {
        "string",
        "integer",
        "double",
        "boolean",
        "date",
        "datetime",
        "enumeration",
        "money",
        "url",
        "employee",
        "crm",
        "address",
        "file",
        "crm_status",
        "iblock_element",
    }
)

DEFAULT_STAGES = (  # (STATUS_ID, NAME, SORT, SEMANTICS: P in progress, S won, F lost)
    ("NEW", "Новая", 10, "P"),
    ("PREPARATION", "Подготовка документов", 20, "P"),
    ("PREPAYMENT_INVOICE", "Счёт на предоплату", 30, "P"),
    ("EXECUTING", "В работе", 40, "P"),
    ("FINAL_INVOICE", "Финальный счёт", 50, "P"),
    # No "Suspended" (HOLD) stage: a portal has none until someone adds it with crm.status.add.
    ("WON", "Сделка успешна", 60, "S"),
    ("LOSE", "Сделка провалена", 70, "F"),
)
# Smart-invoice pipeline: its id differs per portal (`crm.category.list {entityTypeId: 31}`; the docs' examples
# show `SMART_INVOICE_STAGE_5`, `DT31_13:N`), so the sandbox's is not 1: code that hard-codes DT31_1 fails here.
SMART_INVOICE_CATEGORY = 5
SMART_INVOICE_STAGES = (
    ("N", "Новый", 10, "P"),
    ("S", "Отправлен клиенту", 20, "P"),
    ("P", "Оплачен", 30, "S"),
    ("D", "Не оплачен", 40, "F"),
)
SMART_INVOICE_UF_ENTITY = "CRM_SMART_INVOICE"  # userfieldconfig entityId (`api-reference/crm/universal/index.md`)


def uf_camel(name: str) -> str:
    """crm.item's camelCase name of a user field: UF_CRM_SMART_INVOICE_PAID -> ufCrmSmartInvoicePaid,
    UF_CRM_7_1639669411830 -> ufCrm7_1639669411830 (`crm-item-add.md`, `useOriginalUfNames`)."""
    parts = name.lower().split("_")
    out = parts[0]
    for part in parts[1:]:
        if part[:1].isdigit() and out[-1:].isdigit():
            out += "_" + part
        else:
            out += part[:1].upper() + part[1:]
    return out


PRESETS = (
    {
        "ID": "1",
        "ENTITY_TYPE_ID": "8",
        "COUNTRY_ID": "1",
        "NAME": "Организация",
        "ACTIVE": "Y",
        "XML_ID": "#CRM_REQUISITE_PRESET_DEF_RU_COMPANY#",
        "SORT": "500",
    },
    {
        "ID": "2",
        "ENTITY_TYPE_ID": "8",
        "COUNTRY_ID": "1",
        "NAME": "ИП",
        "ACTIVE": "Y",
        "XML_ID": "#CRM_REQUISITE_PRESET_DEF_RU_INDIVIDUAL#",
        "SORT": "500",
    },
    {
        "ID": "3",
        "ENTITY_TYPE_ID": "8",
        "COUNTRY_ID": "1",
        "NAME": "Физ. лицо",
        "ACTIVE": "Y",
        "XML_ID": "#CRM_REQUISITE_PRESET_DEF_RU_PERSON#",
        "SORT": "500",
    },
)
# Fields each preset shows on the requisite card (`crm.requisite.preset.field.list`): the RU company preset as the
# docs' example lists it (`api-reference/crm/requisites/presets/fields/crm-requisite-preset-field-list.md`), the
# RU individual (ИП) preset with the person's name in three fields (`../shared/reference/bitrix24-rest.md`,
# verified corrections). A field outside its preset (RQ_NAME on an ИП) is stored but not shown.
PRESET_FIELDS = {
    "1": (
        "RQ_INN",
        "RQ_COMPANY_NAME",
        "RQ_COMPANY_FULL_NAME",
        "RQ_OGRN",
        "RQ_KPP",
        "RQ_COMPANY_REG_DATE",
        "RQ_OKPO",
        "RQ_OKTMO",
        "RQ_DIRECTOR",
        "RQ_ACCOUNTANT",
        "RQ_ADDR",
        "RQ_SIGNATURE",
        "RQ_STAMP",
    ),
    "2": ("RQ_LAST_NAME", "RQ_FIRST_NAME", "RQ_SECOND_NAME", "RQ_INN", "RQ_OGRNIP", "RQ_OKPO", "RQ_OKVED", "RQ_ADDR"),
    "3": ("RQ_LAST_NAME", "RQ_FIRST_NAME", "RQ_SECOND_NAME", "RQ_IDENT_DOC", "RQ_ADDR"),
}
WRITE_VERBS = ("add", "update", "set", "delete", "clear", "bind", "unbind", "error")


def is_write_method(method: str) -> bool:
    """Whether a REST method changes data (for the request log and fail-after-write faults)."""
    verb = method.lower().rsplit(".", 1)[-1]
    return verb in WRITE_VERBS and method.lower() != "event.offline.get"


# -- filters ------------------------------------------------------------------------------------------

# Longest prefixes first so '!=' is not read as '!' + '=FIELD'.
_PREFIXES = ("!@", "!=", "!%", ">=", "<=", "=%", "%=", "@", "=", "!", ">", "<", "%")


def split_filter_key(key: str) -> tuple[str, str]:
    """`'>=DATE_MODIFY'` -> `('>=', 'DATE_MODIFY')`; no prefix -> `('', key)`."""
    for prefix in _PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            return prefix, key[len(prefix) :]
    return "", key


def _comparable(value: Any, kind: str) -> Any:
    """A value of a field of `kind` in a form that compares like the database would."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        value = "Y" if value else "N"
    if kind in ("integer", "user", "crm_company", "crm_contact", "crm_category", "crm_entity"):
        try:
            return Decimal(str(value).strip())
        except InvalidOperation:
            return str(value).casefold()
    if kind in ("double", "money"):
        try:
            return Decimal(str(value).split("|")[0].strip())
        except InvalidOperation:
            return str(value).casefold()
    if kind in ("datetime", "date"):
        moment = parse_datetime(value)
        return moment if moment is not None else str(value)
    # MySQL's default collation compares strings case-insensitively.
    return str(value).casefold()


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern.casefold()]
    return re.compile("^" + "".join(parts) + "$", re.S)


def _values_of(stored: Any) -> list[Any]:
    """Stored value(s): multifields and multiple UF fields match when any of their values matches."""
    if isinstance(stored, list):
        return [item.get("VALUE") if isinstance(item, dict) else item for item in stored]
    return [stored]


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def compile_filter(
    filter_: Any, kind_of: Callable[[str], str | None], strict: bool = False
) -> list[Callable[[dict], bool]]:
    """Predicates for a REST filter. Unknown fields are ignored like the classic API does (or rejected
    with ERROR_ARGUMENT when `strict`, like the `crm.item.*` ORM does)."""
    if filter_ in (None, "", []):
        return []
    if not isinstance(filter_, dict):
        raise bad_argument("Parameter 'filter' must be an object")
    predicates = []
    for raw_key, wanted in filter_.items():
        prefix, name = split_filter_key(str(raw_key))
        kind = kind_of(name)
        if kind is None:
            if strict:
                raise bad_argument(f"Unknown field '{name}' in filter")
            continue
        predicates.append(_predicate(prefix, name, kind, wanted))
    return predicates


def _predicate(prefix: str, name: str, kind: str, wanted: Any) -> Callable[[dict], bool]:
    negate = prefix.startswith("!")
    op = prefix.lstrip("!") if prefix not in ("!",) else ""
    if op in ("%", "=%", "%="):
        patterns = [_like_regex(f"%{w}%" if op == "%" else str(w)) for w in _as_list(wanted)]

        def like(record: dict) -> bool:
            values = [str(v).casefold() for v in _values_of(record.get(name)) if v not in (None, "")]
            hit = any(p.match(v) for p in patterns for v in values)
            return hit != negate

        return like
    if op in (">", ">=", "<", "<="):
        target = _comparable(wanted[0] if isinstance(wanted, list) and wanted else wanted, kind)
        compare = {
            ">": lambda a: a > target,
            ">=": lambda a: a >= target,
            "<": lambda a: a < target,
            "<=": lambda a: a <= target,
        }[op]

        def ordered(record: dict) -> bool:
            for value in _values_of(record.get(name)):
                current = _comparable(value, kind)
                if current is None or target is None:
                    continue
                try:
                    if compare(current):
                        return True
                except TypeError:  # e.g. a number against text: no match, as SQL would say
                    continue
            return False

        return ordered
    # '=', '' and '@' with a scalar or a list ("in").
    targets = (
        {_comparable(w, kind) for w in _as_list(wanted)}
        if (isinstance(wanted, (list, dict)) or op == "@")
        else {_comparable(wanted, kind)}
    )

    def equals(record: dict) -> bool:
        values = {_comparable(v, kind) for v in _values_of(record.get(name))} or {None}
        return bool(values & targets) != negate

    return equals


def order_key(order: Any, kind_of: Callable[[str], str | None], default_id: str = "ID") -> list[tuple[str, str, bool]]:
    """`{"TITLE": "ASC", "ID": "DESC"}` -> [(field, kind, descending)] (unknown fields ignored)."""
    if order in (None, "", []):
        return [(default_id, "integer", False)]
    if not isinstance(order, dict):
        raise bad_argument("Parameter 'order' must be an object")
    keys = []
    for name, direction in order.items():
        kind = kind_of(str(name))
        if kind is None:
            continue
        keys.append((str(name), kind, str(direction).strip().upper() == "DESC"))
    return keys or [(default_id, "integer", False)]


def sort_records(records: list[dict], keys: list[tuple[str, str, bool]]) -> list[dict]:
    # Stable sorts from the last key to the first; NULLs first on ASC like MySQL.
    for name, kind, descending in reversed(keys):

        def sort_value(record: dict, name=name, kind=kind) -> tuple:
            values = _values_of(record.get(name))
            value = _comparable(values[0] if values else None, kind)
            if value is None:
                return (0, 0)
            return (1, value) if not isinstance(value, str) else (2, value)

        records.sort(key=sort_value, reverse=descending)
    return records


def parse_start(value: Any) -> int:
    if value in (None, ""):
        return 0
    try:
        return int(str(value))
    except ValueError:
        raise bad_argument("Parameter 'start' must be an integer") from None


@dataclass
class Page:
    """A list answer: `items` plus `total`/`next` (None = absent from the envelope)."""

    items: list
    total: int | None
    next: int | None
    wrap: str | None = None  # crm.item.*: the result is {"items": [...]}


# -- tables -------------------------------------------------------------------------------------------


class Table:
    """Records of one entity keyed by integer ID (kept in ID order), with equality indexes."""

    def __init__(self, spec: EntitySpec | None, indexed: Iterable[str] = ()):
        self.spec = spec
        self.rows: dict[int, dict] = {}
        self.ids: list[int] = []  # ascending; IDs only grow
        self.next_id = 1
        self.indexes: dict[str, dict[Any, set[int]]] = {f: defaultdict(set) for f in indexed}

    def insert(self, record: dict, id_field: str = "ID", wire_id: Callable[[int], Any] = str) -> int:
        new_id = self.next_id
        self.next_id += 1
        record[id_field] = wire_id(new_id)
        self.rows[new_id] = record
        self.ids.append(new_id)
        self._index(new_id, record)
        return new_id

    def insert_with_id(self, row_id: int, record: dict, id_field: str = "ID") -> int:
        """Insert under a chosen ID (seeding deals whose IDs the world fixes); IDs must come in ascending order."""
        if self.ids and row_id <= self.ids[-1]:
            raise ValueError(f"ID {row_id} is not above the last ID {self.ids[-1]}")
        record[id_field] = str(row_id)
        self.rows[row_id] = record
        self.ids.append(row_id)
        self.next_id = row_id + 1
        self._index(row_id, record)
        return row_id

    def reindex(self, row_id: int, before: dict, after: dict) -> None:
        for name, index in self.indexes.items():
            old, new = self._key(before.get(name)), self._key(after.get(name))
            if old != new:
                index[old].discard(row_id)
                index[new].add(row_id)

    def _index(self, row_id: int, record: dict) -> None:
        for name, index in self.indexes.items():
            index[self._key(record.get(name))].add(row_id)

    @staticmethod
    def _key(value: Any) -> Any:
        return None if value in (None, "") else str(value).casefold()

    def candidates(self, filter_: Any, id_field: str = "ID") -> Iterable[int] | None:
        """IDs that may match, from plain-equality filter keys on indexed fields or the ID; None = all."""
        if not isinstance(filter_, dict):
            return None
        best: set[int] | None = None
        for raw_key, wanted in filter_.items():
            prefix, name = split_filter_key(str(raw_key))
            if prefix not in ("", "=", "@"):
                continue
            if isinstance(wanted, dict):
                wanted = list(wanted.values())
            values = wanted if isinstance(wanted, list) else [wanted]
            if name == id_field:
                found = set()
                for v in values:
                    try:
                        found.add(int(str(v)))
                    except ValueError:
                        pass
                found &= self.rows.keys()
            elif name in self.indexes:
                index = self.indexes[name]
                found = set()
                for v in values:
                    found |= index.get(self._key(v), set())
            else:
                continue
            best = found if best is None else best & found
        return None if best is None else sorted(best)

    def id_floor(self, filter_: Any, id_field: str = "ID") -> int:
        """Position in `ids` where a scan may start, from `>ID` / `>=ID` filter keys (keyset paging)."""
        position = 0
        if isinstance(filter_, dict):
            for raw_key, wanted in filter_.items():
                prefix, name = split_filter_key(str(raw_key))
                if name != id_field or prefix not in (">", ">="):
                    continue
                try:
                    bound = int(Decimal(str(wanted)))
                except (InvalidOperation, ValueError):
                    continue
                cut = bisect.bisect_right(self.ids, bound) if prefix == ">" else bisect.bisect_left(self.ids, bound)
                position = max(position, cut)
        return position


# -- the CRM ------------------------------------------------------------------------------------------


@dataclass
class OfflineEvent:
    id: int
    name: str
    record_id: int
    timestamp: str
    message_id: str
    connector: str = ""  # the queue: offline handlers bound with this auth_connector ('' = none)
    process_id: str | None = None
    reserved_at: float = 0.0
    user_id: int = 1  # who made the change (EVENT_ADDITIONAL.user_id)
    error: bool = False  # marked by event.offline.error: handed out again only to `error=1` readers


class CrmState:
    """The in-memory CRM: every REST method the sandbox supports, on wire values.

    `call(method, params)` returns the `result` payload (or a `Page` for lists) or raises `CrmError`.
    """

    def __init__(self, user_id: int = 1, offline_reserve_seconds: float = 30 * 86400.0):
        self.lock = threading.RLock()
        self.user_id = user_id
        # The user the current call acts as: the webhook's owner (set per call; changes carry it in MODIFY_BY_ID).
        self.acting_user = user_id
        self.tables: dict[str, Table] = {name: Table(spec, spec.indexed) for name, spec in SPECS.items()}
        self.invoices = Table(None, ("xmlId", "companyId", "parentId2"))
        self.users: dict[int, dict] = {}
        self.userfields: dict[str, dict[str, dict]] = defaultdict(dict)  # uf_entity -> FIELD_NAME -> def
        self.userfield_seq = 0
        self.categories: dict[int, dict] = {0: {"ID": "0", "NAME": "Общая", "SORT": "100", "IS_LOCKED": "N"}}
        self.stages: dict[str, list[dict]] = {}
        self.status_seq = 0
        self.product_rows: dict[int, list[dict]] = {}
        self.product_row_seq = 0
        self.multifield_seq = 0
        self.timeline: list[dict] = []
        self.notifications: list[dict] = []
        self.events: dict[int, OfflineEvent] = {}
        self._unreserved: dict[tuple[str, str], int] = {}  # (queue, MESSAGE_ID) -> event ID not handed out yet
        crm_events = {
            f"{spec.event_prefix}{action}"
            for spec in SPECS.values()
            if spec.event_prefix
            for action in ("ADD", "UPDATE", "DELETE")
        }
        self.offline_bindings: dict[str, set[str]] = {"": crm_events}  # auth_connector -> bound event names
        self.event_seq = 0
        self.offline_reserve_seconds = offline_reserve_seconds
        self.events_enabled = True
        self.event_listeners: list[Callable[[str, int, int], None]] = []  # (event, record ID, user) per change
        self._add_stage_set(0)
        self.invoice_categories: dict[int, dict] = {}
        self.add_invoice_category(SMART_INVOICE_CATEGORY, "Счета", default=True)
        self.invoice_userfields: dict[str, dict] = {}  # FIELD_NAME -> userfieldconfig field
        self.stages["COMPANY_TYPE"] = [
            self._status("COMPANY_TYPE", s, n, i * 10, None, None)
            for i, (s, n) in enumerate(
                (("CUSTOMER", "Клиент"), ("SUPPLIER", "Поставщик"), ("PARTNER", "Партнёр"), ("OTHER", "Другое")), 1
            )
        ]
        self._methods = self.methods()
        self._templates: dict[str, dict] = {}

    # -- setup helpers (seed and tests) ----------------------------------------------------------------
    def _status(
        self, entity_id: str, status_id: str, name: str, sort: int, semantics: str | None, category: int | None
    ) -> dict:
        self.status_seq += 1
        return {
            "ID": str(self.status_seq),
            "ENTITY_ID": entity_id,
            "STATUS_ID": status_id,
            "NAME": name,
            "NAME_INIT": name,
            "SORT": str(sort),
            "SYSTEM": "Y" if status_id.split(":")[-1] in ("NEW", "WON", "LOSE") else "N",
            "CATEGORY_ID": None if category is None else str(category),
            "COLOR": "#39A8EF",
            "SEMANTICS": None if semantics == "P" else semantics,
            "EXTRA": {"SEMANTICS": {"P": "process", "S": "success", "F": "failure"}.get(semantics or "", "")},
        }

    def _add_stage_set(self, category_id: int) -> None:
        entity = "DEAL_STAGE" if category_id == 0 else f"DEAL_STAGE_{category_id}"
        prefix = "" if category_id == 0 else f"C{category_id}:"
        self.stages[entity] = [
            self._status(entity, prefix + sid, name, sort, sem, category_id) for sid, name, sort, sem in DEFAULT_STAGES
        ]

    def add_category(self, category_id: int, name: str, sort: int = 100) -> None:
        """A deal pipeline with the default stage set (prefixed `C<N>:`)."""
        with self.lock:
            self.categories[category_id] = {"ID": str(category_id), "NAME": name, "SORT": str(sort), "IS_LOCKED": "N"}
            if category_id not in (0,):
                self._add_stage_set(category_id)

    def add_invoice_category(self, category_id: int, name: str, *, default: bool = False) -> None:
        """A smart-invoice pipeline with the default stage set (`DT31_<id>:N|S|P|D`)."""
        with self.lock:
            if default:
                for category in self.invoice_categories.values():
                    category["isDefault"] = "N"
            self.invoice_categories[category_id] = {
                "id": category_id,
                "name": name,
                "sort": 100 + category_id,
                "entityTypeId": SMART_INVOICE_TYPE_ID,
                "isDefault": "Y" if default else "N",
            }
            entity = f"SMART_INVOICE_STAGE_{category_id}"
            self.stages[entity] = [
                self._status(entity, f"DT31_{category_id}:{code}", title, sort, sem, category_id)
                for code, title, sort, sem in SMART_INVOICE_STAGES
            ]

    @property
    def default_invoice_category(self) -> int:
        return next(c for c, row in self.invoice_categories.items() if row["isDefault"] == "Y")

    def add_user(
        self, user_id: int, name: str, last_name: str, email: str, active: bool = True, department: int = 1
    ) -> None:
        with self.lock:
            self.users[user_id] = {
                "ID": str(user_id),
                "ACTIVE": active,
                "NAME": name,
                "LAST_NAME": last_name,
                "SECOND_NAME": "",
                "EMAIL": email,
                "UF_DEPARTMENT": [department],
                "WORK_POSITION": "",
            }

    def deal_stages(self, category_id: int) -> list[dict]:
        return self.stages.get("DEAL_STAGE" if category_id == 0 else f"DEAL_STAGE_{category_id}", [])

    def record(self, entity: str, record_id: int) -> dict | None:
        """Direct read access for tests (the stored wire record, not a copy)."""
        return self.tables[entity].rows.get(record_id)

    # -- dispatch --------------------------------------------------------------------------------------
    def has_method(self, method: str) -> bool:
        return method.lower() in self._methods

    def call(self, method: str, params: dict, user_id: int | None = None) -> Any:
        handler = self._methods.get(method.lower())
        if handler is None:
            raise CrmError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
        if not isinstance(params, dict):
            raise bad_argument("Parameters must be an object")
        # Top-level parameter names are case-insensitive on the portal (filter/FILTER, entityTypeId/ENTITYTYPEID).
        params = {str(k).lower(): v for k, v in params.items()}
        with self.lock:
            self.acting_user = user_id or self.user_id
            try:
                return handler(params)
            finally:
                self.acting_user = self.user_id

    def methods(self) -> dict[str, Callable[[dict], Any]]:
        m: dict[str, Callable[[dict], Any]] = {}
        for name in ("company", "contact", "deal", "requisite", "product"):
            m[f"crm.{name}.list"] = lambda p, n=name: self.entity_list(n, p)
            m[f"crm.{name}.get"] = lambda p, n=name: self.entity_get(n, p)
            m[f"crm.{name}.add"] = lambda p, n=name: self.entity_add(n, p)
            m[f"crm.{name}.update"] = lambda p, n=name: self.entity_update(n, p)
            m[f"crm.{name}.fields"] = lambda p, n=name: self.entity_fields(n)
            m[f"crm.{name}.delete"] = lambda p, n=name: self.entity_delete(n, p)
        for name in ("company", "deal", "contact"):
            m[f"crm.{name}.userfield.list"] = lambda p, n=name: self.userfield_list(n, p)
            m[f"crm.{name}.userfield.add"] = lambda p, n=name: self.userfield_add(n, p)
        m.update(
            {
                "crm.requisite.preset.list": self.preset_list,
                "crm.requisite.preset.field.list": self.preset_field_list,
                "crm.deal.productrows.get": self.productrows_get,
                "crm.deal.productrows.set": self.productrows_set,
                "crm.status.list": self.status_list,
                "crm.status.add": self.status_add,
                "crm.dealcategory.stage.list": self.dealcategory_stage_list,
                "crm.dealcategory.list": self.dealcategory_list,
                "crm.category.list": self.category_list,
                "crm.item.list": self.item_list,
                "crm.item.get": self.item_get,
                "crm.item.add": self.item_add,
                "crm.item.update": self.item_update,
                "crm.item.fields": self.item_fields,
                "userfieldconfig.add": self.userfieldconfig_add,
                "userfieldconfig.list": self.userfieldconfig_list,
                "userfieldconfig.get": self.userfieldconfig_get,
                "crm.timeline.comment.add": self.timeline_comment_add,
                "im.notify.system.add": self.notify_system_add,
                "im.notify.personal.add": self.notify_system_add,
                "user.get": self.user_get,
                "crm.duplicate.findbycomm": self.duplicate_findbycomm,
                "event.offline.get": self.offline_get,
                "event.offline.clear": self.offline_clear,
                "event.offline.error": self.offline_error,
                "event.offline.list": self.offline_list,
                "event.bind": self.event_bind,
                "event.unbind": self.event_unbind,
                "event.get": self.event_get,
            }
        )
        return m

    # -- classic entities ------------------------------------------------------------------------------
    def _kind_of(self, spec: EntitySpec) -> Callable[[str], str | None]:
        def kind_of(name: str) -> str | None:
            if name in spec.fields:
                return spec.fields[name]
            if name in spec.multifields:
                return "string"
            if spec.uf_entity and name in self.userfields[spec.uf_entity]:
                return self.userfields[spec.uf_entity][name]["USER_TYPE_ID"]
            return None

        return kind_of

    def _select(self, spec: EntitySpec, select: Any) -> tuple[list[str], list[str]]:
        """Standard + UF fields to return and multifields asked for explicitly."""
        if select in (None, "", []):
            select = ["*"]
        if isinstance(select, dict):
            select = list(select.values())
        if isinstance(select, str):
            select = [select]
        if not isinstance(select, list):
            raise bad_argument("Parameter 'select' must be an array")
        ufs = list(self.userfields[spec.uf_entity]) if spec.uf_entity else []
        names: list[str] = []
        multi: list[str] = []
        for raw in select:
            name = str(raw).strip().upper()
            if name == "*":
                names.extend(spec.fields)
            elif name == "UF_*":
                names.extend(ufs)
            elif name in spec.multifields:
                multi.append(name)
            elif name in spec.fields or name in ufs:
                names.append(name)
        seen: set[str] = set()
        return [n for n in names if not (n in seen or seen.add(n))], multi

    def _project(self, spec: EntitySpec, record: dict, names: list[str], multi: list[str]) -> dict:
        out = {name: record.get(name) for name in names}
        for name in multi:
            items = record.get(name)
            if items:
                out[name] = [dict(item) for item in items]
        return out

    def _query(
        self,
        table: Table,
        filter_: Any,
        order: Any,
        start: Any,
        kind_of: Callable[[str], str | None],
        id_field: str = "ID",
        strict: bool = False,
    ) -> tuple[list[dict], int | None, int | None]:
        """Filter, order and page records: (page rows, total, next)."""
        predicates = compile_filter(filter_, kind_of, strict)
        keys = order_key(order, kind_of, id_field)
        offset = parse_start(start)
        count_total = offset != -1
        offset = max(offset, 0)
        candidates = table.candidates(filter_, id_field)
        id_ascending = keys == [(id_field, "integer", False)] or (
            len(keys) == 1 and keys[0][0] == id_field and not keys[0][2]
        )
        if candidates is None:
            first = table.id_floor(filter_, id_field) if id_ascending else 0
            ids_ = table.ids  # walk from the keyset floor without copying the tail
            candidates = (ids_[i] for i in range(first, len(ids_))) if first else ids_

        def matching() -> Iterable[dict]:
            for row_id in candidates:
                record = table.rows[row_id]
                if all(p(record) for p in predicates):
                    yield record

        if id_ascending and not count_total:
            # Keyset fast path: stop after the page, no count (what `start=-1` buys on a real portal).
            page = []
            for record in matching():
                page.append(record)
                if len(page) >= PAGE_SIZE:
                    break
            return page, None, None
        rows = list(matching())
        if not id_ascending:
            rows = sort_records(rows, keys)
        total = len(rows)
        page = rows[offset : offset + PAGE_SIZE] if count_total else rows[:PAGE_SIZE]
        if not count_total:
            return page, None, None
        return page, total, (offset + PAGE_SIZE if offset + PAGE_SIZE < total else None)

    def entity_list(self, entity: str, params: dict) -> Page:
        spec = SPECS[entity]
        names, multi = self._select(spec, params.get("select"))
        page, total, nxt = self._query(
            self.tables[entity], params.get("filter"), params.get("order"), params.get("start"), self._kind_of(spec)
        )
        return Page([self._project(spec, r, names, multi) for r in page], total, nxt)

    def _get_record(self, entity: str, params: dict) -> tuple[int, dict]:
        raw = params.get("id", params.get("ID"))
        if raw in (None, ""):
            raise CrmError("", "ID is not defined or invalid.")
        record_id = as_int(raw)
        if record_id <= 0:
            raise CrmError("", "ID is not defined or invalid.")
        record = self.tables[entity].rows.get(record_id)
        if record is None:
            raise not_found()
        return record_id, record

    def entity_get(self, entity: str, params: dict) -> dict:
        spec = SPECS[entity]
        _, record = self._get_record(entity, params)
        names = list(spec.fields) + (list(self.userfields[spec.uf_entity]) if spec.uf_entity else [])
        return self._project(spec, record, names, list(spec.multifields))

    def entity_fields(self, entity: str) -> dict:
        spec = SPECS[entity]
        out = {}
        for name, kind in spec.fields.items():
            out[name] = {
                "type": kind,
                "isRequired": name in ("TITLE",) and entity in ("company", "deal"),
                "isReadOnly": name in spec.readonly,
                "isImmutable": False,
                "isMultiple": False,
                "isDynamic": False,
                "title": spec.titles.get(name, name),
            }
        for name in spec.multifields:
            out[name] = {
                "type": "crm_multifield",
                "isRequired": False,
                "isReadOnly": False,
                "isImmutable": False,
                "isMultiple": True,
                "isDynamic": False,
                "title": name,
            }
        if spec.uf_entity:
            for name, uf in self.userfields[spec.uf_entity].items():
                out[name] = {
                    "type": uf["USER_TYPE_ID"],
                    "isRequired": uf["MANDATORY"] == "Y",
                    "isReadOnly": False,
                    "isImmutable": False,
                    "isMultiple": uf["MULTIPLE"] == "Y",
                    "isDynamic": True,
                    "title": name,
                    "listLabel": uf.get("LIST_COLUMN_LABEL"),
                    "formLabel": uf.get("EDIT_FORM_LABEL"),
                }
        return out

    def _fields_param(self, params: dict) -> dict:
        fields = params.get("fields", params.get("FIELDS"))
        if fields in (None, "", []):
            fields = {}
        if not isinstance(fields, dict):
            raise bad_argument("Parameter 'fields' must be an object")
        return {str(k).upper(): v for k, v in fields.items()}

    def _convert(self, kind: str, value: Any, name: str) -> Any:
        """A written value as the portal stores and shows it (strings for classic methods)."""
        if value is None or value == "":
            return None
        if isinstance(value, (list, dict)):
            raise CrmError("", f"Field '{name}' must be a scalar value")
        if kind in ("integer", "user", "crm_company", "crm_contact", "crm_category"):
            try:
                return str(int(Decimal(str(value).strip())))
            except (InvalidOperation, ValueError):
                raise CrmError("", f"Field '{name}' must be an integer, got '{value}'") from None
        if kind == "double":
            try:
                return format_money(str(value).strip())
            except InvalidOperation:
                raise CrmError("", f"Field '{name}' must be a number, got '{value}'") from None
        if kind in ("datetime", "date"):
            moment = parse_datetime(value)
            if moment is None:
                raise CrmError("", f"Field '{name}' must be a date, got '{value}'")
            return format_datetime(moment)
        if kind == "char":
            return yes_no(value)
        return str(value)

    def _convert_uf(self, uf: dict, value: Any) -> Any:
        kind = uf["USER_TYPE_ID"]
        if uf["MULTIPLE"] == "Y":
            return [self._convert_uf({**uf, "MULTIPLE": "N"}, v) for v in _as_list(value) if v not in (None, "")]
        if value is None or value == "":
            return None
        if kind == "boolean":
            return "1" if str(value).strip().upper() in {"1", "Y", "TRUE"} else "0"
        if kind in ("datetime", "date"):
            moment = parse_datetime(value)
            if moment is None:
                return None
            return format_datetime(moment) if kind == "datetime" else moment.date().isoformat()
        return value if isinstance(value, str) else str(value)

    def _multifield(self, name: str, current: list[dict] | None, incoming: Any, updating: bool) -> list[dict]:
        """Bitrix multifield semantics: items without ID are appended; ID + VALUE changes; ID + empty VALUE
        deletes. Items may come as a list or a PHP map (`n0`, `n1` keys)."""
        items = [dict(i) for i in (current or [])] if updating else []
        for item in _as_list(incoming):
            if isinstance(item, str):
                item = {"VALUE": item}
            if not isinstance(item, dict):
                continue
            item = {str(k).upper(): v for k, v in item.items()}
            value = "" if item.get("VALUE") is None else str(item.get("VALUE"))
            if item.get("ID") not in (None, ""):
                wanted = str(item["ID"])
                for existing in items:
                    if existing["ID"] == wanted:
                        if value.strip() == "":
                            items.remove(existing)
                        else:
                            existing["VALUE"] = value
                            if item.get("VALUE_TYPE"):
                                existing["VALUE_TYPE"] = str(item["VALUE_TYPE"])
                        break
                continue
            if value.strip() == "":
                continue
            self.multifield_seq += 1
            items.append(
                {
                    "ID": str(self.multifield_seq),
                    "VALUE_TYPE": str(item.get("VALUE_TYPE") or "WORK"),
                    "VALUE": value,
                    "TYPE_ID": name,
                }
            )
        return items

    def _apply(self, spec: EntitySpec, record: dict, fields: dict, updating: bool) -> None:
        ufs = self.userfields[spec.uf_entity] if spec.uf_entity else {}
        for name, value in fields.items():
            if name in spec.multifields:
                record[name] = self._multifield(name, record.get(name), value, updating)
                if f"HAS_{name}" in spec.fields:
                    record[f"HAS_{name}"] = "Y" if record[name] else "N"
            elif name.startswith("UF_"):
                if name in ufs:  # writes to undefined user fields are silently ignored, as on a real portal
                    record[name] = self._convert_uf(ufs[name], value)
            elif name in spec.fields and name not in spec.readonly:
                record[name] = self._convert(spec.fields[name], value, name)

    def _new_record(self, spec: EntitySpec, stamp: str | None = None) -> dict:
        template = self._templates.get(spec.name)
        if template is None:
            template = {name: None for name in spec.fields}
            for owner in ("ASSIGNED_BY_ID", "CREATED_BY_ID", "MODIFY_BY_ID", "CREATED_BY", "MODIFIED_BY"):
                if owner in spec.fields:
                    template[owner] = str(self.user_id)
            for flag, default in (
                ("OPENED", "Y"),
                ("HAS_PHONE", "N"),
                ("HAS_EMAIL", "N"),
                ("ACTIVE", "Y"),
                ("IS_NEW", "Y"),
                ("CLOSED", "N"),
                ("IS_MANUAL_OPPORTUNITY", "N"),
                ("CURRENCY_ID", "RUB"),
            ):
                if flag in spec.fields:
                    template[flag] = default
            self._templates[spec.name] = template
        record = template.copy()
        record[spec.created_field] = record[spec.modified_field] = stamp or now_wire()
        return record

    def seed_record(self, entity: str, fields: dict, record_id: int | None = None) -> int:
        """Store a record given in wire form (no conversion, no event): the fast path for seeding."""
        spec = SPECS[entity]
        record = self._new_record(spec, fields.get(spec.created_field))
        for name, value in fields.items():
            if name in spec.multifields:
                record[name] = self._multifield(name, None, value, updating=False)
                if f"HAS_{name}" in spec.fields:
                    record[f"HAS_{name}"] = "Y" if record[name] else "N"
            else:
                record[name] = value
        table = self.tables[entity]
        return table.insert(record) if record_id is None else table.insert_with_id(record_id, record)

    def entity_add(self, entity: str, params: dict, *, stamp: str | None = None) -> int:
        spec = SPECS[entity]
        fields = self._fields_param(params)
        record = self._new_record(spec)
        if entity == "deal":
            self._deal_stage_on_add(record, fields)
        if entity == "requisite":
            self._check_requisite(fields)
        if entity == "product" and not fields.get("NAME"):
            raise CrmError("", "Required fields are missing: NAME")
        for owner in ("CREATED_BY_ID", "MODIFY_BY_ID"):
            if owner in spec.fields:
                record[owner] = str(self.acting_user)
        self._apply(spec, record, fields, updating=False)
        if entity == "company" and not record.get("TITLE"):
            record["TITLE"] = None
        if stamp:
            record[spec.created_field] = record[spec.modified_field] = stamp
        new_id = self.tables[entity].insert(record)
        self._queue_event(spec, "ADD", new_id, params)
        return new_id

    def entity_update(self, entity: str, params: dict) -> bool:
        spec = SPECS[entity]
        record_id, record = self._get_record(entity, params)
        fields = self._fields_param(params)
        before = dict(record)
        updated = dict(record)
        if entity == "deal":
            fields.pop("CATEGORY_ID", None)  # a pipeline move needs its own method; update ignores it
            self._deal_stage_on_update(updated, fields)
        self._apply(spec, updated, fields, updating=True)
        updated[spec.modified_field] = now_wire()
        if "MODIFY_BY_ID" in spec.fields:
            updated["MODIFY_BY_ID"] = str(self.acting_user)
        record.clear()
        record.update(updated)
        self.tables[entity].reindex(record_id, before, record)
        self._queue_event(spec, "UPDATE", record_id, params)
        return True

    def entity_delete(self, entity: str, params: dict) -> bool:
        spec = SPECS[entity]
        record_id, record = self._get_record(entity, params)
        table = self.tables[entity]
        table.reindex(record_id, record, {})
        for index in table.indexes.values():
            index.get(None, set()).discard(record_id)
        del table.rows[record_id]
        table.ids.remove(record_id)
        if entity == "deal":
            self.product_rows.pop(record_id, None)
        self._queue_event(spec, "DELETE", record_id, params)
        return True

    def _check_requisite(self, fields: dict) -> None:
        missing = [n for n in ("ENTITY_TYPE_ID", "ENTITY_ID", "PRESET_ID", "NAME") if fields.get(n) in (None, "")]
        if missing:
            raise CrmError("", f"Required fields are missing: {', '.join(missing)}")
        owner_type = as_int(fields["ENTITY_TYPE_ID"], "ENTITY_TYPE_ID")
        owner = {4: "company", 3: "contact"}.get(owner_type)
        if owner is None:
            raise CrmError("", f"ENTITY_TYPE_ID {owner_type} is not supported (4 = company, 3 = contact)")
        if as_int(fields["ENTITY_ID"], "ENTITY_ID") not in self.tables[owner].rows:
            raise CrmError("", f"The {owner} {fields['ENTITY_ID']} to attach the requisite to is not found")
        if str(fields["PRESET_ID"]) not in {p["ID"] for p in PRESETS}:
            raise CrmError("", f"Preset {fields['PRESET_ID']} is not found")

    # deals: pipelines and stages
    def _stage_info(self, category_id: int, stage_id: str) -> dict | None:
        for stage in self.deal_stages(category_id):
            if stage["STATUS_ID"] == stage_id:
                return stage
        return None

    def _set_stage(self, record: dict, category_id: int, stage_id: str) -> None:
        stage = self._stage_info(category_id, stage_id)
        if stage is None:
            raise CrmError("", f"Stage '{stage_id}' does not belong to pipeline {category_id}")
        semantic = stage["SEMANTICS"] or "P"
        record["STAGE_ID"] = stage_id
        record["STAGE_SEMANTIC_ID"] = semantic
        record["CLOSED"] = "N" if semantic == "P" else "Y"

    def _deal_stage_on_add(self, record: dict, fields: dict) -> None:
        category_id = as_int(fields.pop("CATEGORY_ID", 0) or 0, "CATEGORY_ID")
        if category_id not in self.categories:
            raise CrmError("", f"Pipeline (CATEGORY_ID) {category_id} is not found")
        stage_id = fields.pop("STAGE_ID", None) or self.deal_stages(category_id)[0]["STATUS_ID"]
        record["CATEGORY_ID"] = str(category_id)
        self._set_stage(record, category_id, str(stage_id))

    def _deal_stage_on_update(self, record: dict, fields: dict) -> None:
        stage_id = fields.pop("STAGE_ID", None)
        if stage_id not in (None, ""):
            self._set_stage(record, int(record["CATEGORY_ID"] or 0), str(stage_id))
            record["IS_NEW"] = "N"

    def productrows_get(self, params: dict) -> list[dict]:
        record_id, _ = self._get_record("deal", params)
        return [dict(row) for row in self.product_rows.get(record_id, [])]

    def productrows_set(self, params: dict) -> bool:
        record_id, record = self._get_record("deal", params)
        rows = params.get("rows", params.get("ROWS")) or []
        stored = []
        for raw in _as_list(rows):
            if not isinstance(raw, dict):
                raise bad_argument("Each product row must be an object")
            stored.append(self._product_row(record_id, {str(k).upper(): v for k, v in raw.items()}, len(stored)))
        self.product_rows[record_id] = stored
        total = sum((Decimal(str(r["PRICE"])) * Decimal(str(r["QUANTITY"])) for r in stored), Decimal(0))
        before = dict(record)
        if record.get("IS_MANUAL_OPPORTUNITY") != "Y":
            record["OPPORTUNITY"] = format_money(total)
        record["DATE_MODIFY"] = now_wire()
        self.tables["deal"].reindex(record_id, before, record)
        self._queue_event(DEAL, "UPDATE", record_id, params)
        return True

    def _product_row(self, deal_id: int, raw: dict, sort: int) -> dict:
        self.product_row_seq += 1
        try:
            price = float(raw.get("PRICE") or 0)
            quantity = float(raw.get("QUANTITY") if raw.get("QUANTITY") not in (None, "") else 1)
            discount = float(raw.get("DISCOUNT_SUM") or 0)
            tax_rate = None if raw.get("TAX_RATE") in (None, "") else float(raw["TAX_RATE"])
        except (TypeError, ValueError):
            raise bad_argument(f"Product row {sort} of deal {deal_id} has a non-numeric PRICE/QUANTITY") from None
        product_id = as_int(raw.get("PRODUCT_ID") or 0, "PRODUCT_ID")
        product = self.tables["product"].rows.get(product_id)
        name = raw.get("PRODUCT_NAME") or (product["NAME"] if product else "")
        return {
            "ID": str(self.product_row_seq),
            "OWNER_ID": str(deal_id),
            "OWNER_TYPE": "D",
            "PRODUCT_ID": product_id,
            "PRODUCT_NAME": name,
            "ORIGINAL_PRODUCT_NAME": name,
            "PRICE": price,
            "PRICE_EXCLUSIVE": price,
            "PRICE_NETTO": price + discount,
            "PRICE_BRUTTO": price + discount,
            "QUANTITY": quantity,
            "DISCOUNT_TYPE_ID": 1,
            "DISCOUNT_RATE": 0,
            "DISCOUNT_SUM": discount,
            "TAX_RATE": tax_rate,
            "TAX_INCLUDED": yes_no(raw.get("TAX_INCLUDED", "Y")),
            "CUSTOMIZED": "Y",
            "MEASURE_CODE": int(raw.get("MEASURE_CODE") or 796),
            "MEASURE_NAME": str(raw.get("MEASURE_NAME") or "шт"),
            "SORT": (sort + 1) * 10,
        }

    # -- user fields -----------------------------------------------------------------------------------
    def userfield_list(self, entity: str, params: dict) -> Page:
        """50 fields per page (`start`, `next`, `total`), filterable by FIELD_NAME and the other columns
        (`crm-company-userfield-list.md`)."""
        uf_entity = SPECS[entity].uf_entity
        rows = sorted(self.userfields[uf_entity].values(), key=lambda r: int(r["ID"]))
        predicates = compile_filter(
            params.get("filter"),
            lambda n: (
                "string"
                if n in ("ID", "ENTITY_ID", "FIELD_NAME", "USER_TYPE_ID", "XML_ID", "MULTIPLE", "MANDATORY")
                else None
            ),
        )
        matched = [dict(r) for r in rows if all(p(r) for p in predicates)]
        start = max(parse_start(params.get("start")), 0)
        return Page(
            matched[start : start + PAGE_SIZE],
            len(matched),
            start + PAGE_SIZE if start + PAGE_SIZE < len(matched) else None,
        )

    def userfield_add(self, entity: str, params: dict) -> int:
        fields = self._fields_param(params)
        return self.define_userfield(entity, fields)

    def define_userfield(self, entity: str, fields: dict) -> int:
        """Create a user field; `FIELD_NAME` gets the `UF_CRM_` prefix like the portal adds it."""
        uf_entity = SPECS[entity].uf_entity
        name = str(fields.get("FIELD_NAME") or "").strip().upper()
        if not name:
            raise CrmError("ERROR_CORE", "FIELD_NAME is required")
        if not name.startswith("UF_CRM_"):
            name = "UF_CRM_" + name
        if not re.fullmatch(r"UF_CRM_[A-Z0-9_]{1,43}", name):
            raise CrmError("ERROR_CORE", f"Invalid user field name '{name}'")
        kind = str(fields.get("USER_TYPE_ID") or "string")
        if kind not in USER_FIELD_TYPES:
            raise CrmError("ERROR_CORE", f"Unknown USER_TYPE_ID '{kind}' for {name}")
        if name in self.userfields[uf_entity]:
            raise CrmError("ERROR_CORE", f"User field {name} already exists for {uf_entity}")
        self.userfield_seq += 1
        self.userfields[uf_entity][name] = {
            "ID": str(self.userfield_seq),
            "ENTITY_ID": uf_entity,
            "FIELD_NAME": name,
            "USER_TYPE_ID": kind,
            "XML_ID": fields.get("XML_ID"),
            "SORT": str(fields.get("SORT") or 100),
            "MULTIPLE": yes_no(fields.get("MULTIPLE", "N")),
            "MANDATORY": yes_no(fields.get("MANDATORY", "N")),
            "SHOW_FILTER": "N",
            "SHOW_IN_LIST": "Y",
            "EDIT_IN_LIST": "Y",
            "IS_SEARCHABLE": "N",
            "SETTINGS": fields.get("SETTINGS") or [],
            "EDIT_FORM_LABEL": fields.get("EDIT_FORM_LABEL"),
            "LIST_COLUMN_LABEL": fields.get("LIST_COLUMN_LABEL"),
            "LIST_FILTER_LABEL": fields.get("LIST_FILTER_LABEL"),
        }
        return self.userfield_seq

    # -- reference lists -------------------------------------------------------------------------------
    def preset_list(self, params: dict) -> Page:
        predicates = compile_filter(params.get("filter"), lambda n: "string" if n in PRESETS[0] else None)
        items = [dict(p) for p in PRESETS if all(pr(p) for pr in predicates)]
        return Page(items, len(items), None)

    def preset_field_list(self, params: dict) -> list[dict]:
        preset = params.get("preset")
        preset_id = str((preset or {}).get("ID", "")) if isinstance(preset, dict) else ""
        if preset_id not in PRESET_FIELDS:
            raise CrmError("", "Preset is not found." if preset_id else "Parameter 'preset' is required.")
        return [
            {
                "ID": i,
                "FIELD_NAME": name,
                "FIELD_TITLE": "",
                "IN_SHORT_LIST": "Y" if i <= 3 else "N",
                "SORT": 500 + 10 * i,
            }
            for i, name in enumerate(PRESET_FIELDS[preset_id], 1)
        ]

    def status_list(self, params: dict) -> Page:
        rows = [s for stages in self.stages.values() for s in stages]
        predicates = compile_filter(params.get("filter"), lambda n: "string" if n in rows[0] else None)
        keys = order_key(
            params.get("order") or {"SORT": "ASC"},
            lambda n: "integer" if n in ("SORT", "ID") else "string" if n in rows[0] else None,
        )
        items = sort_records([dict(r) for r in rows if all(p(r) for p in predicates)], keys)
        return Page(items, len(items), None)

    def status_add(self, params: dict) -> int:
        """A stage (or another directory element) after `api-reference/crm/status/crm-status-add.md`: ENTITY_ID,
        STATUS_ID, NAME required; a deal stage of pipeline N gets the `C<N>:` prefix; an in-progress stage must
        sort before the final ones; a taken STATUS_ID -> ERROR_CORE. CRM administrators only (the portal checks
        the caller; see bitrix24_portal)."""
        fields = params.get("fields")
        if not isinstance(fields, dict):
            raise CrmError("", "Parameter 'fields' must be array.")
        fields = {str(k).upper(): v for k, v in fields.items()}
        missing = [f"The field {n} is required." for n in ("ENTITY_ID", "STATUS_ID") if not fields.get(n)]
        if missing:
            raise CrmError("", " ".join(missing))
        if not str(fields.get("NAME") or "").strip():
            raise CrmError("", "The field Title is required.")
        entity = str(fields["ENTITY_ID"])
        if entity not in self.stages:
            raise CrmError("", "Specified entity type is not supported.")
        status_id = str(fields["STATUS_ID"])
        deal = re.fullmatch(r"DEAL_STAGE(?:_(\d+))?", entity)
        invoice = re.fullmatch(r"SMART_INVOICE_STAGE_(\d+)", entity)
        category = int(deal.group(1)) if deal and deal.group(1) else (int(invoice.group(1)) if invoice else 0)
        if deal and category and not status_id.startswith(f"C{category}:"):
            status_id = f"C{category}:{status_id}"
        if invoice and not status_id.startswith(f"DT31_{category}:"):
            status_id = f"DT31_{category}:{status_id}"
        code = status_id.split(":", 1)[-1]
        if (deal or invoice) and not re.fullmatch(r"[A-Za-z0-9_-]{1,22}", code):
            raise CrmError("", f"STATUS_ID '{status_id}' is too long or has characters other than A-Z, 0-9, - and _")
        if any(s["STATUS_ID"] == status_id for s in self.stages[entity]):
            raise CrmError("ERROR_CORE", "The specified status ID already exists.")
        semantics = str(fields.get("SEMANTICS") or "").upper() or "P"
        sort = as_int(fields.get("SORT") or 10, "SORT")
        finals = [int(s["SORT"]) for s in self.stages[entity] if s["SEMANTICS"] in ("S", "F")]
        if (deal or invoice) and semantics == "P" and finals and sort >= min(finals):
            raise CrmError(
                "",
                "Cannot create more stages after the final stage because the final successful "
                "stage already exists. Try using sort order values less than that of the final stage.",
            )
        row = self._status(
            entity, status_id, str(fields["NAME"]), sort, semantics, category if (deal or invoice) else None
        )
        if fields.get("COLOR"):
            row["COLOR"] = str(fields["COLOR"])
        self.stages[entity].append(row)
        self.stages[entity].sort(key=lambda s: int(s["SORT"]))
        return int(row["ID"])

    def dealcategory_stage_list(self, params: dict) -> list[dict]:
        category_id = as_int(params.get("id", params.get("ID", 0)) or 0, "id")
        if category_id not in self.categories:
            raise not_found()
        return [
            {"NAME": s["NAME"], "SORT": s["SORT"], "STATUS_ID": s["STATUS_ID"]} for s in self.deal_stages(category_id)
        ]

    def dealcategory_list(self, params: dict) -> Page:
        # The legacy method lists only the added pipelines, not the default one.
        items = [dict(c, CREATED_DATE=None) for cid, c in sorted(self.categories.items()) if cid != 0]
        return Page(items, len(items), None)

    def category_list(self, params: dict) -> Page:
        type_id = as_int(params.get("entitytypeid") or 0, "entityTypeId")
        if type_id == 2:
            items = [
                {
                    "id": cid,
                    "name": c["NAME"],
                    "sort": int(c["SORT"]),
                    "entityTypeId": 2,
                    "isDefault": "Y" if cid == 0 else "N",
                }
                for cid, c in sorted(self.categories.items())
            ]
        elif type_id == SMART_INVOICE_TYPE_ID:
            items = [dict(c) for _, c in sorted(self.invoice_categories.items())]
        else:
            raise CrmError("NOT_FOUND", f"Smart process with entityTypeId {type_id} is not found")
        return Page(items, len(items), None, wrap="categories")

    # -- smart invoices (crm.item, entityTypeId 31) ----------------------------------------------------
    def _check_type(self, params: dict) -> None:
        type_id = params.get("entitytypeid")
        if type_id in (None, ""):
            raise bad_argument("Required parameter 'entityTypeId' is missing")
        if as_int(type_id, "entityTypeId") != SMART_INVOICE_TYPE_ID:
            raise CrmError("NOT_FOUND", f"entityTypeId {type_id} is not supported by the sandbox (only 31)")

    def _invoice_kind(self, name: str) -> str | None:
        if name in INVOICE_FIELDS:
            return INVOICE_FIELDS[name]
        return "string" if name.startswith("ufCrm") else None

    def item_list(self, params: dict) -> Page:
        self._check_type(params)
        select = params.get("select") or ["*"]
        if isinstance(select, dict):
            select = list(select.values())
        original = yes_no(params.get("useoriginalufnames", "N")) == "Y"
        rows, total, nxt = self._query(
            self.invoices,
            params.get("filter"),
            params.get("order") or {"id": "ASC"},
            params.get("start"),
            self._invoice_kind,
            id_field="id",
            strict=True,
        )
        everything = "*" in select or "uf_*" in [str(n).lower() for n in select]
        items = []
        for row in rows:
            full = self._invoice_out(row, original)
            if everything:
                out = {n: full.get(n) for n in INVOICE_FIELDS}
                out.update({k: v for k, v in full.items() if k.startswith(("ufCrm", "UF_CRM_"))})
            else:
                out = {str(n): full.get(str(n)) for n in select if str(n) in INVOICE_FIELDS or str(n) in full}
            items.append(out)
        return Page(items, total, nxt, wrap="items")

    def _invoice(self, params: dict) -> tuple[int, dict]:
        self._check_type(params)
        raw = params.get("id", params.get("ID"))
        if raw in (None, ""):
            raise CrmError("", "ID is not defined or invalid.")
        record = self.invoices.rows.get(as_int(raw))
        if record is None:
            raise CrmError("NOT_FOUND", "Элемент не найден", 400)
        return record["id"], record

    def item_get(self, params: dict) -> dict:
        _, record = self._invoice(params)
        return {"item": self._invoice_out(record, yes_no(params.get("useoriginalufnames", "N")) == "Y")}

    def _invoice_uf_name(self, name: str) -> str | None:
        """The stored (original) name of a smart-invoice user field given as UF_CRM_... or ufCrm...; None when
        no such field exists (then the portal ignores the value)."""
        if name.upper() in self.invoice_userfields:
            return name.upper()
        for original in self.invoice_userfields:
            if uf_camel(original) == name:
                return original
        return None

    def _invoice_out(self, record: dict, original_names: bool) -> dict:
        """An item as crm.item answers: every user field (empty ones too), camelCase unless
        `useOriginalUfNames: Y`."""
        out = dict(record)
        for name in self.invoice_userfields:
            out.setdefault(name, None)
        if original_names:
            return out
        return {uf_camel(k) if k.startswith("UF_CRM_") else k: v for k, v in out.items()}

    def _apply_invoice(self, record: dict, fields: dict) -> None:
        # `crm-item-add.md` / `crm-item-update.md`: "An incorrect field in `fields` will be ignored" — unknown
        # names and user fields that were never created vanish without an error.
        for name, value in fields.items():
            if name.startswith(("ufCrm", "UF_CRM_", "uf_crm_")):
                original = self._invoice_uf_name(name)
                if original is not None:
                    record[original] = (
                        None
                        if value in (None, "")
                        else self._convert_uf(
                            {"USER_TYPE_ID": self.invoice_userfields[original]["userTypeId"], "MULTIPLE": "N"}, value
                        )
                    )
                continue
            kind = INVOICE_FIELDS.get(name)
            if kind is None or name in INVOICE_READONLY:
                continue
            if value in (None, ""):
                record[name] = None
            elif kind in ("integer", "user", "crm_company", "crm_contact", "crm_category", "crm_entity"):
                record[name] = as_int(value, name)
            elif kind == "double":
                try:
                    record[name] = float(value)
                except (TypeError, ValueError):
                    raise CrmError("", f"Field '{name}' must be a number, got '{value}'") from None
            elif kind in ("datetime", "date"):
                moment = parse_datetime(value)
                if moment is None:
                    raise CrmError("", f"Field '{name}' must be a date, got '{value}'")
                record[name] = (
                    format_datetime(moment)
                    if kind == "datetime"
                    else format_datetime(moment.replace(hour=0, minute=0, second=0))
                )
            elif kind == "boolean":
                record[name] = yes_no(value)
            else:
                record[name] = str(value)
        category = record.get("categoryId")
        if category not in self.invoice_categories:
            raise CrmError("", f"Category {category} is not a smart-invoice pipeline")
        stage = record.get("stageId")
        for s in self.stages[f"SMART_INVOICE_STAGE_{category}"]:
            if s["STATUS_ID"] == stage:
                record["stageSemanticId"] = s["SEMANTICS"] or "P"
                break
        else:
            raise CrmError("", f"Stage '{stage}' is not a stage of smart-invoice pipeline {category}")

    def item_add(self, params: dict) -> dict:
        self._check_type(params)
        fields = params.get("fields") or {}
        if not isinstance(fields, dict):
            raise bad_argument("Parameter 'fields' must be an object")
        stamp = now_wire()
        record = {name: None for name in INVOICE_FIELDS}
        category = as_int(fields.get("categoryId") or self.default_invoice_category, "categoryId")
        first_stage = self.stages.get(f"SMART_INVOICE_STAGE_{category}", [{}])[0].get("STATUS_ID")
        record.update(
            {
                "createdBy": self.acting_user,
                "updatedBy": self.acting_user,
                "createdTime": stamp,
                "updatedTime": stamp,
                "categoryId": category,
                "stageId": first_stage,
                "currencyId": "RUB",
                "opened": "Y",
                "assignedById": self.user_id,
                "opportunity": 0.0,
                "entityTypeId": 31,
            }
        )
        self._apply_invoice(record, fields)
        new_id = self.invoices.insert(record, "id", int)
        if not record.get("accountNumber"):
            record["accountNumber"] = str(new_id)
        if not record.get("title"):
            record["title"] = f"Счёт №{record['accountNumber']}"
        self.invoices.reindex(new_id, {}, record)
        return {"item": self._invoice_out(record, yes_no(params.get("useoriginalufnames", "N")) == "Y")}

    def item_update(self, params: dict) -> dict:
        record_id, record = self._invoice(params)
        fields = params.get("fields") or {}
        if not isinstance(fields, dict):
            raise bad_argument("Parameter 'fields' must be an object")
        before = dict(record)
        updated = dict(record)
        if "stageId" in fields and fields["stageId"] != record.get("stageId"):
            updated["previousStageId"] = record.get("stageId")
            updated["movedTime"] = now_wire()
            updated["movedBy"] = self.acting_user
        self._apply_invoice(updated, fields)
        updated["updatedTime"] = now_wire()
        updated["updatedBy"] = self.acting_user
        record.clear()
        record.update(updated)
        self.invoices.reindex(record_id, before, record)
        return {"item": self._invoice_out(record, yes_no(params.get("useoriginalufnames", "N")) == "Y")}

    def item_fields(self, params: dict) -> dict:
        self._check_type(params)
        return {
            "fields": {
                n: {
                    "type": k,
                    "isReadOnly": n in INVOICE_READONLY,
                    "isRequired": False,
                    "isMultiple": False,
                    "title": n,
                }
                for n, k in INVOICE_FIELDS.items()
            }
        }

    # -- userfieldconfig (user fields of crm.item types; the sandbox knows CRM_SMART_INVOICE) -------------
    # `api-reference/crm/universal/userfieldconfig/userfieldconfig-add.md`: moduleId + field{entityId, fieldName
    # `UF_<entityId>_...` (A-Z0-9_, <= 50), userTypeId}; errors with an empty `error` code and a text.
    def userfieldconfig_add(self, params: dict) -> dict:
        if str(params.get("moduleid") or "") != "crm":
            raise CrmError("", "Module 'moduleId' is not found or not supported")
        field = params.get("field")
        if not isinstance(field, dict):
            raise CrmError("", "The 'FIELD_NAME' field is not found.")
        entity = str(field.get("entityId") or "")
        name = str(field.get("fieldName") or "")
        kind = str(field.get("userTypeId") or "")
        if not name:
            raise CrmError("", "The 'FIELD_NAME' field is not found.")
        if not kind:
            raise CrmError("", "The 'USER_TYPE_ID' field is not found")
        if (
            entity != SMART_INVOICE_UF_ENTITY
            or not name.startswith(f"UF_{entity}_")
            or not re.fullmatch(r"[A-Z0-9_]{1,50}", name)
        ):
            raise CrmError("", "You cannot create custom fields")
        if kind not in USER_FIELD_TYPES:
            raise CrmError("", f"The user type '{kind}' is not found")
        if name in self.invoice_userfields:
            raise CrmError("", f"Field {name} already exists")
        self.userfield_seq += 1
        self.invoice_userfields[name] = {
            "id": str(self.userfield_seq),
            "entityId": entity,
            "fieldName": name,
            "userTypeId": kind,
            "xmlId": field.get("xmlId"),
            "sort": str(field.get("sort") or 100),
            "multiple": yes_no(field.get("multiple", "N")),
            "mandatory": yes_no(field.get("mandatory", "N")),
            "showFilter": "N",
            "showInList": "Y",
            "editInList": "Y",
            "isSearchable": "N",
            "settings": field.get("settings") or [],
            "editFormLabel": field.get("editFormLabel"),
        }
        return {"field": dict(self.invoice_userfields[name])}

    def userfieldconfig_list(self, params: dict) -> Page:
        """Paged by 50 (`next`, `total` on the envelope); filter by entityId, fieldName, userTypeId ..."""
        if str(params.get("moduleid") or "") != "crm":
            raise CrmError("", "Module 'moduleId' is not found or not supported")
        rows = [dict(f) for _, f in sorted(self.invoice_userfields.items(), key=lambda kv: int(kv[1]["id"]))]
        predicates = compile_filter(
            params.get("filter"),
            lambda n: (
                "string"
                if n in ("id", "entityId", "fieldName", "userTypeId", "xmlId", "multiple", "mandatory")
                else None
            ),
        )
        matched = [r for r in rows if all(p(r) for p in predicates)]
        start = max(parse_start(params.get("start")), 0)
        page = matched[start : start + PAGE_SIZE]
        return Page(page, len(matched), start + PAGE_SIZE if start + PAGE_SIZE < len(matched) else None, wrap="fields")

    def userfieldconfig_get(self, params: dict) -> dict:
        wanted = str(params.get("id") or "")
        for config in self.invoice_userfields.values():
            if config["id"] == wanted:
                return {"field": dict(config)}
        raise not_found()

    # -- duplicates -----------------------------------------------------------------------------------
    @staticmethod
    def _comm_key(kind: str, value: Any) -> str:
        text = str(value or "").strip()
        if kind == "EMAIL":
            return text.casefold()
        digits = re.sub(r"\D", "", text)
        if len(digits) == 11 and digits[0] == "8":  # Russian trunk prefix: 8 495 ... == +7 495 ...
            digits = "7" + digits[1:]
        return digits

    def duplicate_findbycomm(self, params: dict) -> Any:
        """IDs of companies/contacts holding any of the phones or e-mails (at most 20 values, 20 IDs per type,
        the oldest first); `[]` when nothing matches, like the portal's empty PHP array."""
        kind = str(params.get("type") or "").upper()
        if kind not in ("EMAIL", "PHONE"):
            raise bad_argument("Parameter 'type' must be EMAIL or PHONE")
        values = [v for v in _as_list(params.get("values")) if v not in (None, "")]
        if not values:
            raise bad_argument("Parameter 'values' must be a non-empty array")
        if len(values) > 20:
            raise bad_argument("Too many values: at most 20 per call")
        wanted = {self._comm_key(kind, v) for v in values} - {""}
        entity = str(params.get("entity_type") or "").upper()
        types = [entity] if entity else ["CONTACT", "COMPANY"]
        found: dict[str, list[int]] = {}
        for type_name in types:
            table = self.tables.get(type_name.lower())
            if table is None or type_name not in ("CONTACT", "COMPANY"):
                raise bad_argument(f"entity_type '{entity}' is not supported (COMPANY, CONTACT)")
            hits = [
                row_id
                for row_id in table.ids
                if any(self._comm_key(kind, item.get("VALUE")) in wanted for item in table.rows[row_id].get(kind) or [])
            ]
            if hits:
                found[type_name] = hits[:20]
        return found or []

    # -- timeline, notifications, users ----------------------------------------------------------------
    def timeline_comment_add(self, params: dict) -> int:
        fields = self._fields_param(params)
        entity = str(fields.get("ENTITY_TYPE") or "").lower()
        if entity not in ("company", "deal", "contact"):
            raise CrmError("", f"ENTITY_TYPE '{fields.get('ENTITY_TYPE')}' is not supported")
        if as_int(fields.get("ENTITY_ID"), "ENTITY_ID") not in self.tables[entity].rows:
            raise not_found()
        if not str(fields.get("COMMENT") or "").strip():
            raise CrmError("", "COMMENT is empty")
        self.timeline.append(
            {
                "ID": str(len(self.timeline) + 1),
                "ENTITY_TYPE": entity,
                "ENTITY_ID": str(fields["ENTITY_ID"]),
                "COMMENT": str(fields["COMMENT"]),
                "CREATED": now_wire(),
                "AUTHOR_ID": str(self.user_id),
            }
        )
        return len(self.timeline)

    def notify_system_add(self, params: dict) -> int:
        p = {str(k).upper(): v for k, v in params.items()}
        user_id = as_int(p.get("USER_ID"), "USER_ID")
        if user_id not in self.users:
            raise CrmError("USER_ID_EMPTY", f"User {user_id} is not found")
        if not str(p.get("MESSAGE") or "").strip():
            raise CrmError("MESSAGE_EMPTY", "Message can't be empty")
        self.notifications.append(
            {"ID": len(self.notifications) + 1, "USER_ID": user_id, "MESSAGE": str(p["MESSAGE"]), "DATE": now_wire()}
        )
        return len(self.notifications)

    def user_get(self, params: dict) -> Page:
        p = {str(k).upper(): v for k, v in params.items()}
        filter_ = dict(p.get("FILTER") or {}) if isinstance(p.get("FILTER"), dict) else {}
        for key, value in p.items():  # user.get also takes filter keys at the top level
            if key not in ("FILTER", "SORT", "ORDER", "START", "ADMIN_MODE"):
                filter_[key] = value
        rows = [self.users[k] for k in sorted(self.users)]
        kinds = {
            "ID": "integer",
            "ACTIVE": "char",
            "NAME": "string",
            "LAST_NAME": "string",
            "EMAIL": "string",
            "UF_DEPARTMENT": "integer",
        }
        predicates = compile_filter(filter_, kinds.get)
        matched = [dict(r) for r in rows if all(pr(dict(r, ACTIVE=yes_no(r["ACTIVE"]))) for pr in predicates)]
        start = max(parse_start(p.get("START")), 0)
        page = matched[start : start + PAGE_SIZE]
        return Page(page, len(matched), start + PAGE_SIZE if start + PAGE_SIZE < len(matched) else None)

    # -- offline events --------------------------------------------------------------------------------
    # One queue per `auth_connector` the offline handlers were bound with (`event.bind` with
    # `event_type=offline`); the queue without connector ('') is bound to every CRM event from the start, so a
    # fresh sandbox queues changes like a portal whose app bound its offline handlers. A write carrying
    # `auth_connector=X` queues into every queue except X: the writer does not hear about its own changes.
    # The queue keeps the latest state per object: a change to a record whose event is still waiting (not handed
    # out) bumps that event instead of adding one.
    def _queue_event(self, spec: EntitySpec, action: str, record_id: int, params: dict) -> None:
        if not spec.event_prefix or not self.events_enabled:
            return
        name = spec.event_prefix + action
        for listener in self.event_listeners:  # outbound webhooks: every change, whoever made it
            listener(name, record_id, self.acting_user)
        writer = str(params.get("auth_connector") or "")
        message_id = hashlib.md5(f"{name}:{record_id}".encode()).hexdigest()
        stamp = now_wire()
        for connector, names in self.offline_bindings.items():
            if name not in names or (writer and connector == writer):
                continue
            pending = self._unreserved.get((connector, message_id))
            if pending is not None and pending in self.events:
                self.events[pending].timestamp = stamp
                continue
            self.event_seq += 1
            self.events[self.event_seq] = OfflineEvent(
                self.event_seq, name, record_id, stamp, message_id, connector, user_id=self.acting_user
            )
            self._unreserved[(connector, message_id)] = self.event_seq

    def _event_wire(self, event: OfflineEvent) -> dict:
        return {
            "ID": str(event.id),
            "TIMESTAMP_X": event.timestamp,
            "EVENT_NAME": event.name,
            "EVENT_DATA": {"FIELDS": {"ID": event.record_id}},
            "EVENT_ADDITIONAL": {"user_id": str(event.user_id)},
            "MESSAGE_ID": event.message_id,
        }

    def event_bind(self, params: dict) -> bool:
        name = str(params.get("event") or "").upper()
        if not name:
            raise bad_argument("Parameter 'event' is required")
        if str(params.get("event_type") or "online").lower() != "offline":
            raise bad_argument("The sandbox portal delivers offline events only (event_type=offline)")
        connector = str(params.get("auth_connector") or "")
        names = self.offline_bindings.setdefault(connector, set())
        if name in names:  # `error-codes.md` example: the portal's answer to a second bind of the same handler
            raise CrmError("ERROR_HANDLER_ALREADY_EXIST", "Handler already exists!")
        names.add(name)
        return True

    def event_unbind(self, params: dict) -> dict:
        name = str(params.get("event") or "").upper()
        connector = str(params.get("auth_connector") or "")
        names = self.offline_bindings.get(connector, set())
        count = int(name in names)
        names.discard(name)
        return {"count": count}

    def event_get(self, params: dict) -> list[dict]:
        return [
            {
                "event": name,
                "handler": "",
                "auth_type": str(self.user_id),
                "offline": 1,
                "connector_id": connector or None,
            }
            for connector, names in sorted(self.offline_bindings.items())
            for name in sorted(names)
        ]

    def offline_get(self, params: dict) -> dict:
        """`clear=1` (default) hands events out and deletes them; `clear=0` reserves them under a new
        `process_id` (hidden from other readers) until `event.offline.clear`. Passing that `process_id` again
        re-selects its unconfirmed events; reservations older than `offline_reserve_seconds` are released.
        Events marked by `event.offline.error` are handed out again only with `error=1`."""
        limit = max(1, min(as_int(params.get("limit") or 50, "limit"), 1000))
        clear = str(params.get("clear", 1)).strip() not in ("0", "N", "false", "False")
        connector = str(params.get("auth_connector") or "")
        again = str(params.get("process_id") or "")
        errors = str(params.get("error", 0)).strip() in ("1", "Y", "true", "True")
        now = time.monotonic()
        candidates = []
        for event in self.events.values():
            if event.connector != connector or (event.error and not errors):
                continue
            if again:
                if event.process_id == again:
                    candidates.append(event)
            elif event.process_id is None or now - event.reserved_at >= self.offline_reserve_seconds:
                candidates.append(event)
        candidates.sort(key=lambda e: (e.timestamp, e.id))
        picked = candidates[:limit]
        process_id = again or uuid.uuid4().hex
        for event in picked:
            event.process_id, event.reserved_at = process_id, now
            if self._unreserved.get((event.connector, event.message_id)) == event.id:
                del self._unreserved[(event.connector, event.message_id)]
        out = [self._event_wire(e) for e in picked]
        if clear:
            for event in picked:
                del self.events[event.id]
            return {"process_id": None, "events": out}
        return {"process_id": process_id, "events": out}

    def offline_clear(self, params: dict) -> bool:
        process_id = str(params.get("process_id") or "")
        if not process_id:
            raise CrmError("ERROR_ARGUMENT", "Parameter 'process_id' is required")
        ids = {str(i) for i in _as_list(params.get("id"))} if params.get("id") not in (None, "") else None
        messages = (
            {str(i) for i in _as_list(params.get("message_id"))}
            if ids is None and params.get("message_id") not in (None, "")
            else None
        )
        for event in list(self.events.values()):
            if event.process_id != process_id:
                continue
            if ids is not None and str(event.id) not in ids:
                continue
            if messages is not None and event.message_id not in messages:
                continue
            del self.events[event.id]
        return True

    def offline_error(self, params: dict) -> bool:
        """Mark reserved events (by `process_id`, optionally `message_id`) as failed: they leave the normal queue
        and come back only to `event.offline.get` with `error=1` (which also returns the normal ones)."""
        process_id = str(params.get("process_id") or "")
        if not process_id:
            raise CrmError("ERROR_ARGUMENT", "Parameter 'process_id' is required")
        messages = (
            {str(i) for i in _as_list(params.get("message_id"))} if params.get("message_id") not in (None, "") else None
        )
        for event in self.events.values():
            if event.process_id == process_id and (messages is None or event.message_id in messages):
                event.error, event.process_id = True, None
        return True

    def offline_list(self, params: dict) -> Page:
        """The queue as it is (nothing reserved or removed), with PROCESS_ID of reserved records."""
        connector = str(params.get("auth_connector") or "")
        items = [
            dict(self._event_wire(e), PROCESS_ID=e.process_id or "", ERROR="1" if e.error else "0")
            for e in self.events.values()
            if e.connector == connector
        ]
        return Page(items, len(items), None)
