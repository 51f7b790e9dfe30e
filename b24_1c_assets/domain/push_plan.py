"""Diff planning for every write to an outside system, and the guard that stops mass changes.

A plan compares the desired state of each row with what was last pushed *successfully* and sends only
rows whose mapped fields changed, plus the rows that failed last time (Hightouch/Census semantics). A
full resync never infers deletions. Each planned row keeps its before and after values for the results
table.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd

PLAN_COLUMNS = ["key", "operation", "reason", "changed_fields", "before", "after", "payload_hash"]


class Operation(enum.StrEnum):
    """What a plan row asks for (`operation` in plans and in `sync.results`). A StrEnum: each member equals
    the text already stored in DuckDB, so old journals and SQL filters keep working."""

    ADD = "add"  # a new record in Bitrix24 (crm.*.add; the journal keeps the new id as target_id)
    CREATE = "create"  # a new record in 1C (counterparty, customer order)
    UPDATE = "update"  # a record that exists is written (or, in a plan, a row to send)
    NOOP = "noop"  # nothing changed since the last success: nothing sent
    IN_SYNC = "in_sync"  # changed since our last write, but the target already holds it: nothing sent
    LINK = "link"  # the target already has the record (made by hand or by a crashed run): only linked
    SKIP = "skip"  # out of the flow's scope (e.g. no INN): nothing sent
    INVALID = "invalid"  # fails validation: journaled as rejected, nothing sent
    HOLD_BACK = "held_back"  # a 1C-only client not created in the CRM until a person decides
    REJECTED = "rejected"  # refused by the planner for its data (reason says why)
    CONFLICT = "conflict"  # both sides changed: a person decides


class Status(enum.StrEnum):
    """What happened to one planned row (`status` in `sync.results`)."""

    OK = "ok"
    FAILED = "failed"  # the write failed; retried next run
    REJECTED = "rejected"  # not sent: its data is bad (error says why)
    CONFLICT = "conflict"  # not sent: both sides changed
    DEFERRED = "deferred"  # over the per-run cap: waits for the next run
    DRY_RUN = "dry_run"  # would have been written; the run is a dry run


def canonical(value):
    """Values as they are compared and hashed: Decimals as fixed text, NaN/None as None."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value if isinstance(value, (str, int, bool, float)) else str(value)


def payload_of(row: dict, fields: list[str]) -> dict:
    return {name: canonical(row.get(name)) for name in fields}


def payload_hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def plan_updates(
    desired: pd.DataFrame, last_pushed: pd.DataFrame, failed_keys: set, fields: list[str], *, key: str = "key"
) -> pd.DataFrame:
    """One row per desired key: `update` when its fields changed since the last success or it failed
    last time, else `noop`.

    desired: `key` + `fields`; last_pushed: key, payload (JSON text of the fields last written successfully).
    """
    previous = {}
    if not last_pushed.empty:
        previous = {str(k): json.loads(p) for k, p in zip(last_pushed["key"], last_pushed["payload"])}
    rows = []
    for record in desired.to_dict("records"):
        row_key = str(record[key])
        after = payload_of(record, fields)
        before = previous.get(row_key)
        changed = [f for f in fields if before is None or before.get(f) != after[f]]
        # A row that failed before it ever succeeded is still part of the initial load: so named, the guard
        # does not take the retry of a failed first load for a mass change and block every later run.
        if row_key in failed_keys and before is not None:
            operation, reason = Operation.UPDATE, "failed last run"
        elif before is None:
            operation, reason = Operation.UPDATE, "never pushed"
        elif changed:
            operation, reason = Operation.UPDATE, "changed"
        else:
            operation, reason = Operation.NOOP, ""
        rows.append(
            {
                "key": row_key,
                "operation": operation,
                "reason": reason,
                "changed_fields": ",".join(changed) if operation == Operation.UPDATE else "",
                "before": json.dumps(before, ensure_ascii=False, sort_keys=True) if before else None,
                "after": json.dumps(after, ensure_ascii=False, sort_keys=True),
                "payload_hash": payload_hash(after),
            }
        )
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


@dataclass(frozen=True)
class GuardLimits:
    """Thresholds of the pre-write guard; a plan over any of them writes nothing without an override."""

    max_changes: int | None = 500
    max_change_share: float | None = 0.2
    max_new_holds: int | None = 50
    max_new_hold_share: float | None = 0.05
    max_zeroed: int | None = 20  # rows that had a debt and would show none
    max_zeroed_share: float | None = 0.1
    min_population: int = 20  # below this many rows, shares are not meaningful: counts alone apply
    # Fields that move by themselves as days pass (the as-of date, days overdue, aging buckets): a row changing
    # only these is drift, written but not counted as a change — otherwise every new day would trip the guard.
    drift_fields: tuple[str, ...] = ()


@dataclass
class GuardVerdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)


def guard_plan(
    plan: pd.DataFrame, population: int, limits: GuardLimits, *, new_holds: int = 0, zeroed: int = 0
) -> GuardVerdict:
    """Stop a plan that changes too much at once (a broken export must never rewrite every client).

    Rows never pushed before are an initial load, not a change of existing state: they are counted
    apart (`initial`) and do not trip the guard.
    population: rows that exist on the target (e.g. CRM companies with a 1C twin);
    new_holds: previously pushed clients that would flip to hold; zeroed: rows whose debt would drop to zero.
    """
    updates = plan[plan["operation"] == Operation.UPDATE] if not plan.empty else plan
    initial = int((updates["reason"] == "never pushed").sum()) if not plan.empty else 0
    drift = 0
    if limits.drift_fields and not updates.empty and "changed_fields" in updates:
        drifting = set(limits.drift_fields)
        drift = int(
            sum(
                1
                for why, fields in zip(updates["reason"], updates["changed_fields"].fillna(""))
                if why != "never pushed" and fields and set(fields.split(",")) <= drifting
            )
        )
    changes = len(updates) - initial - drift
    share = changes / population if population else 0.0
    hold_share = new_holds / population if population else 0.0
    reasons = []
    if limits.max_changes is not None and changes > limits.max_changes:
        reasons.append(f"{changes} rows would change (limit {limits.max_changes})")
    if limits.max_change_share is not None and population >= limits.min_population and share > limits.max_change_share:
        reasons.append(f"{share:.0%} of {population} rows would change (limit {limits.max_change_share:.0%})")
    if limits.max_new_holds is not None and new_holds > limits.max_new_holds:
        reasons.append(f"{new_holds} clients would flip to hold (limit {limits.max_new_holds})")
    if (
        limits.max_new_hold_share is not None
        and population >= limits.min_population
        and hold_share > limits.max_new_hold_share
    ):
        reasons.append(f"{hold_share:.0%} of clients would flip to hold (limit {limits.max_new_hold_share:.0%})")
    zeroed_share = zeroed / population if population else 0.0
    if limits.max_zeroed is not None and zeroed > limits.max_zeroed:
        reasons.append(f"{zeroed} rows would drop to zero debt (limit {limits.max_zeroed})")
    if (
        limits.max_zeroed_share is not None
        and population >= limits.min_population
        and zeroed_share > limits.max_zeroed_share
    ):
        reasons.append(f"{zeroed_share:.0%} of rows would drop to zero debt (limit {limits.max_zeroed_share:.0%})")
    figures = {
        "changes": changes,
        "initial": initial,
        "drift": drift,
        "population": population,
        "change_share": round(share, 4),
        "new_holds": new_holds,
        "zeroed": zeroed,
    }
    return GuardVerdict(passed=not reasons, reasons=reasons, figures=figures)
