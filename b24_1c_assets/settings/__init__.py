"""Settings files shipped with the product (TOML), typed. `B24_1C_SETTINGS_DIR` points at a customer's copies.

One frozen dataclass per file holds its defaults (a key left out of a file takes the default written here, and
nowhere else); `credit_policy` and `push_guard` reuse the domain's `CreditPolicy` and `GuardLimits`. Each file
is read and validated once per version on disk: an unknown key, a wrong type or an out-of-range value fails at
load with the file, the key and the reason (`SettingsError`), not later inside a flow.

    settings.client_master().our_originator_id
    settings.push_guard().limits("company_receivables")  # -> GuardLimits
    settings.onec_writes().dry_run.onec
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal

from b24_1c_assets.domain.credit_policy import CreditPolicy
from b24_1c_assets.domain.extract_window import ExtractPolicy
from b24_1c_assets.domain.ownership import OWNERS, RULES, FieldOwnership
from b24_1c_assets.domain.push_plan import GuardLimits

PACKAGE_DIR = Path(__file__).resolve().parent


class SettingsError(ValueError):
    """A settings file that cannot be used: which file, which key, why."""

    def __init__(self, path: Path | str, key: str, reason: str):
        self.path, self.key, self.reason = str(path), key, reason
        super().__init__(f"{path}: {key or '(file)'}: {reason}")


@dataclass(frozen=True)
class Range:
    """Bounds of a number setting, both inclusive (None = open)."""

    low: float | None = None
    high: float | None = None


NonNegative = Range(0)
Share = Range(0, 1)

# ------------------------------------------------------------------------------------------------------------
# The files. Field names are the TOML keys; nested dataclasses are TOML tables.


@dataclass(frozen=True)
class ClientMaster:
    """`client_master.toml`: how CRM companies carry their link to 1C, and who reviews matches."""

    # ORIGINATOR_ID values that mean "ORIGIN_ID holds a 1C Ref_Key" (ours and an earlier integration's).
    originator_ids: tuple[str, ...] = ("1c-unf", "1C_UNF")
    # The ORIGINATOR_ID this product writes on companies it creates or links.
    our_originator_id: str = "1c-unf"
    # A CRM company user field holding the 1C Ref_Key ("" = not used).
    onec_ref_field: str = "UF_CRM_ONEC_REF"
    decisions_file: str = "review/client_match_decisions.csv"
    decisions_store: str = "review/client_match_decisions.sqlite"


@dataclass(frozen=True)
class OrderDealFields:
    number: str = "UF_CRM_ONEC_ORDER_NUMBER"
    ref: str = "UF_CRM_ONEC_ORDER_REF"


@dataclass(frozen=True)
class Orders:
    # pipeline (CATEGORY_ID as text) -> STAGE_IDs at which a deal becomes a 1C customer order
    stages: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    deal_fields: OrderDealFields = OrderDealFields()
    # header values of new orders; "" = taken from the contract or the latest order (see deal_orders.toml)
    header: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Invoices:
    category: str = ""  # "" = the portal's default smart-invoice pipeline
    unpaid_stage: str = "N"
    partly_paid_stage: str = "S"
    paid_amount_field: str = "UF_CRM_SMART_INVOICE_ONEC_PAID"  # "" = not written


@dataclass(frozen=True)
class Catalog:
    price_type: str = "Розничная"
    currency: str = "RUB"


@dataclass(frozen=True)
class DealOrders:
    """`deal_orders.toml`: deals -> 1C orders, 1C invoices -> CRM smart invoices, 1C catalog -> CRM products."""

    orders: Orders = Orders()
    invoices: Invoices = Invoices()
    catalog: Catalog = Catalog()


@dataclass(frozen=True)
class FinanceDigest:
    user_ids: tuple[int, ...] = ()
    department_ids: tuple[int, ...] = ()
    top: Annotated[int, Range(1)] = 10  # clients listed by overdue amount


@dataclass(frozen=True)
class OpsAlerts:
    user_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Notifications:
    """`notifications.toml`: who hears about receivables and failed runs."""

    finance_digest: FinanceDigest = FinanceDigest()
    ops_alerts: OpsAlerts = OpsAlerts()


@dataclass(frozen=True)
class DryRunDefaults:
    """Whether a push writes when its run does not say (run tag `b24_1c/dry_run`): per target system."""

    onec: bool = True  # 1C holds the books: plan and journal only unless a run asks for writes
    bitrix24: bool = False


@dataclass(frozen=True)
class CounterpartyWrites:
    # Catalog_Контрагенты fields the integration may write; anything else planned is dropped (and listed)
    allowed_fields: tuple[str, ...] = (
        "Description",
        "НаименованиеПолное",
        "ИНН",
        "КПП",
        "РегистрационныйНомер",
        "ВидКонтрагента",
        "ЮридическоеФизическоеЛицо",
        "Покупатель",
        "СтранаРегистрации",
    )


@dataclass(frozen=True)
class OnecWrites:
    """`onec_writes.toml`: what the integration may create in 1C, how many per run, and whether it writes."""

    dry_run: DryRunDefaults = DryRunDefaults()
    max_creates_per_run: Annotated[int, NonNegative] = 20
    counterparty: CounterpartyWrites = CounterpartyWrites()


@dataclass(frozen=True)
class PushGuard:
    """`push_guard.toml`: the pre-write guard's limits, one table per push flow."""

    flows: Mapping[str, GuardLimits] = field(default_factory=lambda: MappingProxyType({}))
    path: str = "push_guard.toml"

    def limits(self, flow: str) -> GuardLimits:
        """The limits of `flow`; a flow without a table is a configuration error, not a silent default."""
        try:
            return self.flows[flow]
        except KeyError:
            raise SettingsError(
                self.path, f"[{flow}]", f"no guard limits for flow {flow!r} (tables: {sorted(self.flows)})"
            ) from None


# ------------------------------------------------------------------------------------------------------------
# The shape of the files the domain types are built from (keys and types; their defaults stay in the domain).

_CREDIT_POLICY_SHAPE = {
    "aging": {"default_term_days": Annotated[int, NonNegative], "grace_days": Annotated[int, NonNegative]},
    "limits": {
        "default": Annotated[float, NonNegative],
        "crm_field": str,
        "segments": Mapping[str, Annotated[float, NonNegative]],
        "clients": Mapping[str, Annotated[float, NonNegative]],
    },
    "hold": {
        "over_limit": bool,
        "overdue_days": Annotated[int, NonNegative],
        "overdue_amount": Annotated[float, NonNegative],
    },
    "warning": {"limit_share": Annotated[float, Share], "any_overdue": bool},
    "release": {"margin": Annotated[float, Share]},
    "exemptions": list[dict],  # checked row by row below
}
_EXEMPTION_SHAPE = {"inn": str, "kpp": str, "until": date, "reason": str}

_FIELD_OWNERSHIP_SHAPE = {
    "defaults": {"unknown_field": Literal["error"]},
    "fields": Mapping[str, dict],  # checked field by field below
}
_FIELD_RULE_SHAPE = {"owner": Literal[OWNERS], "rule": Literal[RULES], "note": str}


# ------------------------------------------------------------------------------------------------------------
# Reading and checking.


def settings_path(name: str) -> Path:
    """`<name>.toml` from B24_1C_SETTINGS_DIR when it has one, else the shipped default."""
    override = os.environ.get("B24_1C_SETTINGS_DIR")
    if override and (Path(override) / f"{name}.toml").exists():
        return Path(override) / f"{name}.toml"
    return PACKAGE_DIR / f"{name}.toml"


def _typed(name: str, build):
    """`build(raw, path)` of the file `name`, cached per file version (path, mtime, size): a test or a customer
    pointing B24_1C_SETTINGS_DIR elsewhere, or editing a file, gets the new settings without a restart."""
    path = settings_path(name)
    stat = path.stat()
    return _cached(build, str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _cached(build, path: str, _mtime_ns: int, _size: int):
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(path, "", f"not valid TOML: {error}") from None
    return build(raw, path)


def _where(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _check_range(value, bounds: Range, path: str, where: str):
    if bounds.low is not None and value < bounds.low:
        raise SettingsError(path, where, f"{value!r} is below the minimum {bounds.low}")
    if bounds.high is not None and value > bounds.high:
        raise SettingsError(path, where, f"{value!r} is above the maximum {bounds.high}")
    return value


def _convert(kind, value, path: str, where: str):
    """`value` read from TOML as `kind` (a type hint, a dataclass or a shape dict), or SettingsError."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Annotated:
        converted = _convert(args[0], value, path, where)
        for extra in args[1:]:
            if isinstance(extra, Range):
                _check_range(converted, extra, path, where)
        return converted
    if origin in (typing.Union, types.UnionType):  # X | None: TOML has no null, so a present value is an X
        return _convert(next(a for a in args if a is not type(None)), value, path, where)
    if origin is Literal:
        if value not in args:
            raise SettingsError(path, where, f"{value!r} is not one of {list(args)}")
        return value
    if isinstance(kind, dict):
        return _table(kind, value, path, where)
    if dataclasses.is_dataclass(kind):
        return _dataclass(kind, value, path, where)
    if origin is tuple or origin is list:
        if not isinstance(value, list):
            raise SettingsError(path, where, f"expected a list, got {type(value).__name__} {value!r}")
        items = [_convert(args[0], item, path, f"{where}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (Mapping, dict) or kind is dict:
        if not isinstance(value, dict):
            raise SettingsError(path, where, f"expected a table, got {type(value).__name__} {value!r}")
        if kind is dict:
            return value
        return MappingProxyType({str(k): _convert(args[1], v, path, _where(where, str(k))) for k, v in value.items()})
    if kind is bool:
        if not isinstance(value, bool):
            raise SettingsError(path, where, f"expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(path, where, f"expected a whole number, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(path, where, f"expected a number, got {value!r}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise SettingsError(path, where, f"expected text, got {type(value).__name__} {value!r}")
        return value
    if kind is date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise SettingsError(path, where, f"expected a date (YYYY-MM-DD), got {value!r}") from None
    raise TypeError(f"settings: no reader for {kind!r}")  # a programming error in this module


def _unknown(known, value: dict, path: str, where: str) -> None:
    for key in value:
        if key not in known:
            raise SettingsError(path, _where(where, key), f"unknown key (known here: {sorted(known)})")


def _table(shape: dict, value, path: str, where: str) -> dict:
    """A table with fixed keys, all optional; values checked, the table returned as read."""
    if not isinstance(value, dict):
        raise SettingsError(path, where, f"expected a table, got {type(value).__name__} {value!r}")
    _unknown(shape, value, path, where)
    return {key: _convert(shape[key], item, path, _where(where, key)) for key, item in value.items()}


def _dataclass(cls, value, path: str, where: str):
    if not isinstance(value, dict):
        raise SettingsError(path, where, f"expected a table, got {type(value).__name__} {value!r}")
    hints = typing.get_type_hints(cls, include_extras=True)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    _unknown(names, value, path, where)
    given = {key: _convert(hints[key], item, path, _where(where, key)) for key, item in value.items()}
    try:
        return cls(**given)
    except (TypeError, ValueError) as error:
        raise SettingsError(path, where, str(error)) from None


def _guard_limits(value, path: str, where: str) -> GuardLimits:
    limits = _dataclass(GuardLimits, value, path, where)
    for item in dataclasses.fields(GuardLimits):
        number = getattr(limits, item.name)
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            _check_range(number, Share if item.name.endswith("_share") else NonNegative, path, _where(where, item.name))
    return limits


# ------------------------------------------------------------------------------------------------------------
# The accessors.


def _build_push_guard(raw: dict, path: str) -> PushGuard:
    """Flow -> limits; a table holding only tables names a flow's parts (`[company_sync.to_crm]` is the flow
    `company_sync.to_crm`)."""
    flows = {}

    def walk(table: dict, prefix: str) -> None:
        for name, value in table.items():
            flow = _where(prefix, name)
            if not isinstance(value, dict):
                raise SettingsError(path, flow, f"expected a table of guard limits, got {value!r}")
            if value and all(isinstance(v, dict) for v in value.values()):
                walk(value, flow)
            else:
                flows[flow] = _guard_limits(value, path, flow)

    walk(raw, "")
    return PushGuard(MappingProxyType(flows), path)


def _build_credit_policy(raw: dict, path: str) -> CreditPolicy:
    checked = _table(_CREDIT_POLICY_SHAPE, raw, path, "")
    for i, row in enumerate(checked.get("exemptions", [])):
        _table(_EXEMPTION_SHAPE, row, path, f"exemptions[{i}]")
        if "inn" not in row or "until" not in row:
            raise SettingsError(path, f"exemptions[{i}]", "an exemption needs inn and until")
    try:
        return CreditPolicy.from_dict(raw)
    except (TypeError, ValueError, KeyError) as error:
        raise SettingsError(path, "", str(error)) from None


def _build_field_ownership(raw: dict, path: str) -> FieldOwnership:
    checked = _table(_FIELD_OWNERSHIP_SHAPE, raw, path, "")
    for name, spec in checked.get("fields", {}).items():
        _table(_FIELD_RULE_SHAPE, spec, path, f"fields.{name}")
        for key in ("owner", "rule"):
            if key not in spec:
                raise SettingsError(path, f"fields.{name}.{key}", "missing")
    try:
        return FieldOwnership.from_dict(raw, source=path)
    except ValueError as error:
        raise SettingsError(path, "fields", str(error)) from None


def _build(cls):
    return lambda raw, path: _dataclass(cls, raw, path, "")


# One function object per file, so the cache keys stay stable.
_CLIENT_MASTER, _DEAL_ORDERS, _NOTIFICATIONS, _ONEC_WRITES = (
    _build(ClientMaster),
    _build(DealOrders),
    _build(Notifications),
    _build(OnecWrites),
)
_EXTRACTS = _build(ExtractPolicy)  # `extracts.toml`: the domain type is the file's dataclass


def client_master() -> ClientMaster:
    return _typed("client_master", _CLIENT_MASTER)


def credit_policy() -> CreditPolicy:
    return _typed("credit_policy", _build_credit_policy)


def deal_orders() -> DealOrders:
    return _typed("deal_orders", _DEAL_ORDERS)


def extracts() -> ExtractPolicy:
    return _typed("extracts", _EXTRACTS)


def field_ownership() -> FieldOwnership:
    return _typed("field_ownership", _build_field_ownership)


def notifications() -> Notifications:
    return _typed("notifications", _NOTIFICATIONS)


def onec_writes() -> OnecWrites:
    return _typed("onec_writes", _ONEC_WRITES)


def push_guard() -> PushGuard:
    return _typed("push_guard", _build_push_guard)


ALL = {
    "client_master": client_master,
    "credit_policy": credit_policy,
    "deal_orders": deal_orders,
    "extracts": extracts,
    "field_ownership": field_ownership,
    "notifications": notifications,
    "onec_writes": onec_writes,
    "push_guard": push_guard,
}


def clear_cache() -> None:
    """Forget every file read so far (the cache already notices edits; this is for tests that need certainty)."""
    _cached.cache_clear()
