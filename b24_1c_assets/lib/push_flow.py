"""What every push flow's assets share: the stored plan, the blocking guard, dry runs, the results."""

import json

import dagster as dg
import pandas as pd

from b24_1c_assets import settings
from b24_1c_assets.lib.landing import preview, with_lineage
from b24_1c_assets.domain.push_plan import NOOP, GuardLimits, guard_plan
from b24_1c_assets.sync.bitrix24_writes import RowOutcome
from b24_1c_assets.sync.journal import record
from b24_1c_assets.warehouse import read_table, replace_table

GUARD_CHECK = "guard"
GUARD_OVERRIDE_TAG = "b24_1c/guard_override"
DRY_RUN_TAG = "b24_1c/dry_run"
REJECTED, CONFLICT = "rejected", "conflict"


def flow_settings() -> dict:
    return settings.load("deal_orders")


def guard_limits() -> GuardLimits:
    guard = flow_settings().get("guard", {})
    return GuardLimits(max_changes=guard.get("max_changes", 500), max_change_share=guard.get("max_change_share", 0.2))


def guard_spec(key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(GUARD_CHECK, asset=key, blocking=True,
                             description="The plan changes no more rows than the guard allows (settings "
                                         "deal_orders.toml [guard]); override with the run tag "
                                         f"{GUARD_OVERRIDE_TAG}=<reason>.")


def guard_result(context: dg.AssetExecutionContext, key: dg.AssetKey, plan: pd.DataFrame,
                 population: int) -> dg.AssetCheckResult:
    """The blocking guard's verdict; an override tag passes it, and says so in the check's metadata."""
    verdict = guard_plan(plan, population, guard_limits())
    override = context.run.tags.get(GUARD_OVERRIDE_TAG)
    metadata = {**verdict.figures, "reasons": "; ".join(verdict.reasons) or "none"}
    if override and not verdict.passed:
        metadata["override"] = override
        context.log.warning(f"guard overridden by run tag ({override!r}): {'; '.join(verdict.reasons)}")
    return dg.AssetCheckResult(asset_key=key, check_name=GUARD_CHECK, passed=verdict.passed or bool(override),
                               severity=dg.AssetCheckSeverity.ERROR, metadata=metadata)


def is_dry_run(context: dg.AssetExecutionContext) -> bool:
    return str(context.run.tags.get(DRY_RUN_TAG, "")).lower() in ("1", "true", "yes")


def store_plan(conn, context, schema: str, table: str, plan: pd.DataFrame) -> None:
    replace_table(conn, schema, table, with_lineage(plan, context))


def read_plan(conn, schema: str, table: str) -> pd.DataFrame:
    return read_table(conn, schema, table)


def journal(conn, *, flow: str, context, plan: pd.DataFrame, outcomes: list[RowOutcome], dry_run: bool,
            target_ids: dict[str, str] | None = None) -> pd.DataFrame:
    return record(conn, flow=flow, run_id=context.run.run_id, plan=plan, outcomes=outcomes, dry_run=dry_run,
                  target_ids=target_ids)


def plan_metadata(plan: pd.DataFrame, table: str, columns: list[str]) -> dict:
    counts = plan["operation"].value_counts().to_dict() if not plan.empty else {}
    return {"dagster/row_count": len(plan), "dagster/table_name": table,
            "planned": int(sum(v for k, v in counts.items() if k != NOOP)),
            "by_operation": dg.MetadataValue.json({str(k): int(v) for k, v in counts.items()}),
            "preview": preview(plan[plan["operation"] != NOOP] if not plan.empty else plan, columns)}


def push_metadata(results: pd.DataFrame, planned: int, api_calls: int, dry_run: bool) -> dict:
    statuses = results["status"].value_counts().to_dict() if not results.empty else {}
    return {"dagster/row_count": len(results), "planned": planned, "succeeded": int(statuses.get("ok", 0)),
            "failed": int(statuses.get("failed", 0)), "rejected": int(statuses.get(REJECTED, 0)),
            "conflicts": int(statuses.get(CONFLICT, 0)), "api_calls": api_calls, "dry_run": dry_run,
            "preview": preview(results, ["key", "operation", "status", "target_id", "error"])}


def after_of(plan_row: dict) -> dict:
    return json.loads(plan_row["after"]) if plan_row.get("after") else {}
