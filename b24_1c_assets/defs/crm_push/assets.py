"""Receivables pushed to CRM companies: plan (with the blocking guard), then the writes."""

import json

import dagster as dg

from b24_1c_assets.domain.push_plan import Operation, Status, plan_updates
from b24_1c_assets.domain.receivables_push import FIELD_LABELS, FIELDS, desired_company_fields, new_holds, zeroed
from b24_1c_assets.lib import push_flow, tables
from b24_1c_assets.lib.api_calls import ApiCalls
from b24_1c_assets.lib.landing import OWNERS, preview
from b24_1c_assets.lib.resources import Bitrix24Resource, WarehouseResource
from b24_1c_assets.sync import journal
from b24_1c_assets.sync.bitrix24_userfields import UserField, ensure_userfields
from b24_1c_assets.sync.bitrix24_writes import WriteCommand, apply_commands
from b24_1c_assets.warehouse import query

FLOW = "company_receivables"
PLAN = tables.COMPANY_RECEIVABLES_PLAN.key
PUSH = tables.PUSH_COMPANY_RECEIVABLES.key
CREDIT_STATUS = tables.CLIENT_CREDIT_STATUS.key
USER_FIELDS = [UserField(name, kind, label) for name, (kind, label) in FIELD_LABELS.items()]


def latest_credit_status(conn):
    if not tables.CLIENT_CREDIT_STATUS.exists(conn):
        raise dg.Failure(f"{tables.CLIENT_CREDIT_STATUS} is empty: materialize receivables first")
    return query(
        conn,
        f"SELECT * FROM {tables.CLIENT_CREDIT_STATUS} WHERE snapshot_date = "
        f"(SELECT max(snapshot_date) FROM {tables.CLIENT_CREDIT_STATUS})",
    )


@dg.asset(
    key=PLAN,
    deps=[CREDIT_STATUS],
    group_name="crm_push",
    kinds={"duckdb"},
    owners=OWNERS,
    pool="duckdb",
    tags={"flow": FLOW},
    check_specs=[push_flow.guard_spec(PLAN, "the receivables push to CRM companies")],
)
def company_receivables_plan(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """The receivables push plan, one row per linked CRM company (key = company ID): update when its debt,
    overdue, aging, limit, status or as-of date changed since the last successful push or failed last
    time, else noop; before/after as JSON. Guarded: a mass change writes nothing without an override."""
    with warehouse.connect() as conn:
        status = latest_credit_status(conn)
        plan = plan_updates(
            desired_company_fields(status), journal.last_pushed(conn, FLOW), journal.failed_keys(conn, FLOW), FIELDS
        )
        push_flow.store_plan(conn, context, tables.COMPANY_RECEIVABLES_PLAN, plan)
    population = int(status["company_id"].notna().sum())
    guard = push_flow.guard_check(context, PLAN, plan, population, FLOW, new_holds=new_holds(plan), zeroed=zeroed(plan))
    updates = plan[plan["operation"] == Operation.UPDATE]
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(plan),
            "planned_updates": len(updates),
            "noop": len(plan) - len(updates),
            **{f"guard_{k}": v for k, v in guard.metadata.items() if k not in ("reasons", "override")},
            "preview": preview(updates, ["key", "reason", "changed_fields", "after"]),
        }
    )
    yield guard


@dg.asset(
    key=PUSH,
    deps=[PLAN],
    group_name="crm_push",
    kinds={"bitrix24", "duckdb"},
    owners=OWNERS,
    pool="bitrix24_api",
    tags={"flow": FLOW},
)
def company_receivables(context: dg.AssetExecutionContext, bitrix24: Bitrix24Resource, warehouse: WarehouseResource):
    """Receivables written to CRM company user fields (UF_CRM_DEBT_SUM, _OVERDUE, _DAYS_OVERDUE, _AGING,
    _LIMIT, UF_CRM_CREDIT_STATUS, UF_CRM_DEBT_AS_OF): one row per company in sync.results per run with
    before, after, status and error; only planned updates are sent, 50 per batch call."""
    with warehouse.connect() as conn:
        plan = query(
            conn,
            "SELECT key, operation, reason, changed_fields, before, after, payload_hash "
            f"FROM {tables.COMPANY_RECEIVABLES_PLAN} WHERE operation = ?",
            [Operation.UPDATE],
        )
    dry_run = push_flow.is_dry_run(context, "bitrix24")
    client = bitrix24.client()
    calls = ApiCalls(client)
    created = ensure_userfields(client, "company", USER_FIELDS) if not plan.empty and not dry_run else []
    commands = [
        WriteCommand(key, "crm.company.update", {"id": int(key), "fields": json.loads(after)})
        for key, after in zip(plan["key"], plan["after"])
    ]
    outcomes = push_flow.dry_run_outcomes(plan) if dry_run else apply_commands(client, commands)
    with warehouse.connect() as conn:
        results = push_flow.journal(conn, flow=FLOW, context=context, plan=plan, outcomes=outcomes, dry_run=dry_run)
    failed = [o for o in outcomes if o.status == Status.FAILED]
    for outcome in failed[:20]:
        context.log.warning(f"company {outcome.key}: {outcome.error}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(outcomes),
            "planned": len(commands),
            "succeeded": sum(o.status == Status.OK for o in outcomes),
            "failed": len(failed),
            "throttled_rows": sum(o.error_class == "retryable" for o in failed),
            "api_calls": calls.count,
            "user_fields_created": ", ".join(created) or "none",
            "dry_run": dry_run,
            "preview": preview(results, ["key", "status", "reason", "error"]),
        }
    )


defs = dg.Definitions(assets=[company_receivables_plan, company_receivables])
