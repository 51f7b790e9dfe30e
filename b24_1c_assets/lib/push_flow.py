"""What every push flow's assets share: the one mass-change guard, the one dry-run switch, the stored plan,
the journal and the metadata of plan and push.

A push flow is a plan asset (stored in DuckDB, guarded by the blocking check `push_guard`) and a push asset
that writes the planned rows and journals each one in `sync.results`. Limits come only from
`settings/push_guard.toml`, one section per flow; a blocked plan passes when its run carries
`b24_1c/guard_override=<reason>`. Whether a run writes is decided by the run tag `b24_1c/dry_run`, else by
the per-system default in `settings/onec_writes.toml [dry_run]` (1C: dry, Bitrix24: live).
"""

import json

import dagster as dg
import pandas as pd

from b24_1c_assets import settings
from b24_1c_assets.domain.push_plan import GuardLimits, GuardVerdict, Operation, Status, guard_plan
from b24_1c_assets.lib.landing import preview, with_lineage
from b24_1c_assets.lib.tables import Table
from b24_1c_assets.sync.bitrix24_writes import RowOutcome
from b24_1c_assets.sync.journal import record

GUARD_CHECK = "push_guard"
GUARD_OVERRIDE_TAG = "b24_1c/guard_override"
DRY_RUN_TAG = "b24_1c/dry_run"
SYSTEMS = ("onec", "bitrix24")  # the systems a flow writes into, as named in onec_writes.toml [dry_run]
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def guard_limits(flow: str) -> GuardLimits:
    """The limits of `flow` from push_guard.toml (`company_sync.to_1c` = its nested table); a flow without a
    table fails (settings.SettingsError), it never runs unguarded."""
    return settings.push_guard().limits(flow)


def guard_spec(asset_key: dg.AssetKey, what: str) -> dg.AssetCheckSpec:
    """The blocking guard on a plan asset; `what` names the writes it stops (for the check's description)."""
    return dg.AssetCheckSpec(
        GUARD_CHECK,
        asset=asset_key,
        blocking=True,
        description=f"Stops {what} when the plan changes more rows than the limits in "
        f"settings/push_guard.toml allow, until a run carries "
        f"{GUARD_OVERRIDE_TAG}=<reason>.",
    )


def guard_result(
    context: dg.AssetExecutionContext, asset_key: dg.AssetKey, verdict: GuardVerdict
) -> dg.AssetCheckResult:
    """Passed when the verdict is within limits, or when the run carries an explicit override (said why)."""
    override = context.run.tags.get(GUARD_OVERRIDE_TAG)
    if not verdict.passed and override:
        context.log.warning(f"push guard overridden ({override}): {'; '.join(verdict.reasons)}")
    if verdict.reasons:
        description = "; ".join(verdict.reasons) + (
            f" — overridden: {override}"
            if override
            else f" — nothing written; rerun with tag {GUARD_OVERRIDE_TAG}=<reason>"
        )
    else:
        description = "within limits"
    return dg.AssetCheckResult(
        check_name=GUARD_CHECK,
        asset_key=asset_key,
        passed=verdict.passed or bool(override),
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={**verdict.figures, "reasons": "; ".join(verdict.reasons) or "none", "override": override or ""},
    )


def guard_verdict(
    plan: pd.DataFrame, population: int, flow: str, *, new_holds: int = 0, zeroed: int = 0
) -> GuardVerdict:
    """`guard_plan` with `flow`'s limits (population, new_holds, zeroed: see guard_plan)."""
    return guard_plan(plan, population, guard_limits(flow), new_holds=new_holds, zeroed=zeroed)


def guard_check(
    context: dg.AssetExecutionContext,
    asset_key: dg.AssetKey,
    plan: pd.DataFrame,
    population: int,
    flow: str,
    *,
    new_holds: int = 0,
    zeroed: int = 0,
) -> dg.AssetCheckResult:
    """The guard's check result on `plan` with `flow`'s limits."""
    return guard_result(context, asset_key, guard_verdict(plan, population, flow, new_holds=new_holds, zeroed=zeroed))


def dry_run_default(system: str) -> bool:
    """Whether writes into `system` are dry when the run does not say: onec_writes.toml [dry_run]."""
    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}: one of {', '.join(SYSTEMS)}")
    return getattr(settings.onec_writes().dry_run, system)


def is_dry_run(context: dg.AssetExecutionContext, system: str) -> bool:
    """The one dry-run switch: the run tag `b24_1c/dry_run` ("true"/"false") decides when present, else the
    default of the system written into (`onec` or `bitrix24`)."""
    tag = context.run.tags.get(DRY_RUN_TAG)
    if tag is None or str(tag).strip() == "":
        return dry_run_default(system)
    value = str(tag).strip().lower()
    if value not in _TRUE + _FALSE:
        raise dg.Failure(f"run tag {DRY_RUN_TAG}={tag!r}: expected true or false")
    return value in _TRUE


def dry_run_outcomes(rows: pd.DataFrame, status: str = Status.OK) -> list[RowOutcome]:
    """What a dry run journals for rows it would have written: each with its operation, nothing sent."""
    if rows.empty:
        return []
    return [
        RowOutcome(k, op, status, attempts=0 if status == Status.DRY_RUN else 1)
        for k, op in zip(rows["key"], rows["operation"])
    ]


def store_plan(conn, context, table: Table, plan: pd.DataFrame) -> None:
    table.replace(conn, with_lineage(plan, context))


def read_plan(conn, table: Table) -> pd.DataFrame:
    return table.read(conn)


def journal(
    conn,
    *,
    flow: str,
    context,
    plan: pd.DataFrame,
    outcomes: list[RowOutcome],
    dry_run: bool = False,
    target_ids: dict[str, str] | None = None,
) -> pd.DataFrame:
    """`sync.journal.record` for this run: every outcome a result row, the baseline advanced unless dry."""
    return record(
        conn, flow=flow, run_id=context.run.run_id, plan=plan, outcomes=outcomes, dry_run=dry_run, target_ids=target_ids
    )


def plan_metadata(plan: pd.DataFrame, table: str, columns: list[str]) -> dict:
    counts = plan["operation"].value_counts().to_dict() if not plan.empty else {}
    return {
        "dagster/row_count": len(plan),
        "dagster/table_name": table,
        "planned": int(sum(v for k, v in counts.items() if k != Operation.NOOP)),
        "by_operation": dg.MetadataValue.json({str(k): int(v) for k, v in counts.items()}),
        "preview": preview(plan[plan["operation"] != Operation.NOOP] if not plan.empty else plan, columns),
    }


def push_metadata(results: pd.DataFrame, planned: int, api_calls: int, dry_run: bool) -> dict:
    statuses = results["status"].value_counts().to_dict() if not results.empty else {}
    return {
        "dagster/row_count": len(results),
        "planned": planned,
        "succeeded": int(statuses.get(Status.OK, 0)),
        "failed": int(statuses.get(Status.FAILED, 0)),
        "rejected": int(statuses.get(Status.REJECTED, 0)),
        "conflicts": int(statuses.get(Status.CONFLICT, 0)),
        "deferred": int(statuses.get(Status.DEFERRED, 0)),
        "api_calls": api_calls,
        "dry_run": dry_run,
        "preview": preview(results, ["key", "operation", "status", "target_id", "error"]),
    }


def after_of(plan_row: dict) -> dict:
    return json.loads(plan_row["after"]) if plan_row.get("after") else {}
