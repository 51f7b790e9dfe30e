"""Credit policy: which limit applies to a client, and whether the client is ok, on warning or on hold.

Rules come from `settings/credit_policy.toml` (UNF has no credit-limit field):
* limit: a per-client override (by INN, or INN-KPP for a branch) > a CRM company field when configured
  and filled > the client's segment > the default;
* hold: balance over the limit, or a debt overdue more than `hold.overdue_days`, or more than
  `hold.overdue_amount` overdue;
* warning: balance at or above `warning.limit_share` of the limit, or any overdue debt;
* an exemption (with an expiry date) keeps a client `ok` while it is valid, and says so.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd

from b24_1c_assets.domain.receivables import AgingRules

DEFAULT_POLICY_PATH = Path(__file__).resolve().parent.parent / "settings" / "credit_policy.toml"

OK, WARNING, HOLD = "ok", "warning", "hold"


@dataclass(frozen=True)
class Exemption:
    key: str  # INN or INN-KPP
    until: date
    reason: str


@dataclass(frozen=True)
class CreditPolicy:
    default_limit: Decimal
    segment_limits: dict[str, Decimal] = field(default_factory=dict)
    client_limits: dict[str, Decimal] = field(default_factory=dict)
    crm_limit_field: str | None = None
    hold_over_limit: bool = True
    hold_overdue_days: int | None = 30
    hold_overdue_amount: Decimal | None = None
    warning_limit_share: Decimal = Decimal("0.8")
    warning_any_overdue: bool = True
    release_margin: Decimal = Decimal("0.05")
    exemptions: tuple[Exemption, ...] = ()
    aging: AgingRules = AgingRules()

    @classmethod
    def load(cls, path: str | Path | None = None) -> CreditPolicy:
        with open(path or DEFAULT_POLICY_PATH, "rb") as handle:
            raw = tomllib.load(handle)
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict) -> CreditPolicy:
        limits, hold, warning = raw.get("limits", {}), raw.get("hold", {}), raw.get("warning", {})
        money = lambda v: None if v is None else Decimal(str(v))  # noqa: E731 - tiny local converter
        return cls(
            default_limit=money(limits.get("default", 0)),
            segment_limits={k: money(v) for k, v in limits.get("segments", {}).items()},
            client_limits={str(k): money(v) for k, v in limits.get("clients", {}).items()},
            crm_limit_field=limits.get("crm_field") or None,
            hold_over_limit=bool(hold.get("over_limit", True)),
            hold_overdue_days=hold.get("overdue_days"),
            hold_overdue_amount=money(hold.get("overdue_amount")),
            warning_limit_share=money(warning.get("limit_share", "0.8")),
            warning_any_overdue=bool(warning.get("any_overdue", True)),
            release_margin=money(raw.get("release", {}).get("margin", "0.05")),
            exemptions=tuple(
                Exemption(
                    str(e.get("inn")) + (f"-{e['kpp']}" if e.get("kpp") else ""),
                    date.fromisoformat(str(e["until"])),
                    str(e.get("reason", "")),
                )
                for e in raw.get("exemptions", [])
            ),
            aging=AgingRules(**raw.get("aging", {})),
        )


def resolve_limits(clients: pd.DataFrame, policy: CreditPolicy) -> pd.Series:
    """The credit limit per client row.

    clients: inn, kpp, segment (may be missing), crm_limit (may be missing: the CRM field's value).
    """

    def limit_of(row) -> Decimal:
        inn, kpp = row.get("inn"), row.get("kpp")
        for key in (f"{inn}-{kpp}" if kpp else None, inn):
            if key and key in policy.client_limits:
                return policy.client_limits[key]
        crm_limit = row.get("crm_limit")
        if policy.crm_limit_field and crm_limit not in (None, "") and not pd.isna(crm_limit):
            return Decimal(str(crm_limit).split("|")[0])  # money fields arrive as "257000|RUB"
        segment = row.get("segment")
        if segment in policy.segment_limits:
            return policy.segment_limits[segment]
        return policy.default_limit

    # rows as dicts: a Series built per client (apply, axis=1) costs more than the rule itself
    return pd.Series([limit_of(row) for row in clients.to_dict("records")], index=clients.index, dtype=object)


def active_exemption(inn: str | None, kpp: str | None, as_of: date, policy: CreditPolicy) -> Exemption | None:
    for exemption in policy.exemptions:
        if exemption.key in {inn, f"{inn}-{kpp}"} and exemption.until >= as_of:
            return exemption
    return None


def assess(snapshot: pd.DataFrame, policy: CreditPolicy, as_of: date) -> pd.DataFrame:
    """Add credit_limit, utilisation, status and status_reasons to per-client receivables rows.

    snapshot: one row per client with balance, overdue_amount, days_overdue (Decimals / ints),
    inn, kpp, and optionally segment and crm_limit.
    """
    out = snapshot.copy()
    out["credit_limit"] = resolve_limits(out, policy)
    statuses, reasons, utilisation = [], [], []
    for row in out.to_dict("records"):
        limit: Decimal = row["credit_limit"]
        balance: Decimal = row["balance"]
        overdue: Decimal = row["overdue_amount"]
        days: int = int(row["days_overdue"])
        share = (balance / limit).quantize(Decimal("0.0001")) if limit else None
        utilisation.append(share)
        hold_reasons, warn_reasons = [], []
        if policy.hold_over_limit and balance > limit:
            hold_reasons.append(f"balance {balance} over limit {limit}")
        if policy.hold_overdue_days is not None and days > policy.hold_overdue_days:
            hold_reasons.append(f"overdue {days} days (> {policy.hold_overdue_days})")
        if policy.hold_overdue_amount is not None and overdue > policy.hold_overdue_amount:
            hold_reasons.append(f"overdue amount {overdue} (> {policy.hold_overdue_amount})")
        if share is not None and share >= policy.warning_limit_share:
            warn_reasons.append(f"balance at {share:.0%} of limit {limit}")
        if policy.warning_any_overdue and overdue > 0:
            warn_reasons.append(f"overdue {overdue} for {days} days")
        exemption = active_exemption(row.get("inn"), row.get("kpp"), as_of, policy)
        if exemption and (hold_reasons or warn_reasons):
            statuses.append(OK)
            reasons.append(
                f"exempt until {exemption.until}: {exemption.reason}; would be "
                + "; ".join(hold_reasons or warn_reasons)
            )
        elif hold_reasons:
            statuses.append(HOLD)
            reasons.append("; ".join(hold_reasons))
        elif warn_reasons:
            statuses.append(WARNING)
            reasons.append("; ".join(warn_reasons))
        else:
            statuses.append(OK)
            reasons.append("")
    out["utilisation"] = utilisation
    out["status"] = statuses
    out["status_reasons"] = reasons
    return out


def may_release(balance: Decimal, limit: Decimal, days_overdue: int, policy: CreditPolicy) -> bool:
    """A held client is released only clearly inside the limit (hysteresis against flapping)."""
    inside_limit = balance <= limit * (1 - policy.release_margin)
    days_ok = policy.hold_overdue_days is None or days_overdue <= policy.hold_overdue_days
    return inside_limit and days_ok
