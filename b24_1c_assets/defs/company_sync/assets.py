"""Companies both ways: 1C counterparties -> CRM companies (with requisite and contacts), and valid CRM-only
companies -> 1C counterparties (dry run by default, validated, capped, allow-listed).

Each direction is a plan asset (stored in DuckDB, guarded by the blocking check `push_guard`) and a push asset
that writes and journals every row in `sync.results`. The two directions close the loop through the ID link:
a company made from 1C carries ORIGINATOR_ID/ORIGIN_ID, a counterparty made from the CRM has its Ref_Key
written back to the company, so the next matching links them by ID and neither side sees a new record.
Planning lives in `domain/company_sync_to_crm.py` and `domain/company_sync_to_onec.py`, the order of the
writes in `sync/crm_company_writes.py` and `sync/onec_counterparty_writes.py`.
"""

import dagster as dg

from b24_1c_assets import settings
from b24_1c_assets.domain.company_sync import (
    FLOW_TO_1C,
    FLOW_TO_CRM,
    CompanyLink,
    CrmCompany,
    crm_companies_by_id,
    held_back_adds,
)
from b24_1c_assets.domain.company_sync_to_crm import crm_company_plan
from b24_1c_assets.domain.company_sync_to_onec import counterparty_plan, counterparty_run
from b24_1c_assets.domain.matching import created_in_crm
from b24_1c_assets.domain.push_plan import Operation, Status
from b24_1c_assets.lib import tables
from b24_1c_assets.lib.api_calls import ApiCalls
from b24_1c_assets.lib.job_tags import INCREMENTAL_SYNC
from b24_1c_assets.lib.landing import OWNERS, preview
from b24_1c_assets.lib.push_flow import (
    dry_run_outcomes,
    guard_check,
    guard_spec,
    is_dry_run,
    journal,
    plan_metadata,
    push_metadata,
    read_plan,
    store_plan,
)
from b24_1c_assets.lib.resources import Bitrix24Resource, OneCResource, WarehouseResource
from b24_1c_assets.sync.crm_company_writes import requisite_presets, write_companies
from b24_1c_assets.sync.journal import failed_keys, last_pushed
from b24_1c_assets.sync.onec_counterparty_writes import push_counterparties

TO_CRM_PLAN, TO_CRM = tables.COMPANY_FROM_1C_PLAN.key, tables.PUSH_COMPANIES_FROM_1C.key
TO_1C_PLAN, TO_1C = tables.COUNTERPARTY_FROM_CRM_PLAN.key, tables.PUSH_COUNTERPARTIES_FROM_CRM.key
EXTRACTS = [
    tables.CLIENTS.key,
    tables.ONEC_COUNTERPARTIES.key,
    tables.BITRIX24_COMPANIES.key,
    tables.BITRIX24_REQUISITES.key,
]
COMMON = dict(group_name="company_sync", owners=OWNERS, tags={"flow": "company_sync", **INCREMENTAL_SYNC})


def company_link() -> CompanyLink:
    """How companies carry their 1C link (settings/client_master.toml)."""
    config = settings.client_master()
    return CompanyLink(config.our_originator_id, config.originator_ids, config.onec_ref_field or None)


def crm_companies(conn) -> dict[int, CrmCompany]:
    """The extracted CRM companies with their requisites, by company ID."""
    return crm_companies_by_id(tables.BITRIX24_COMPANIES.read(conn), tables.BITRIX24_REQUISITES.read(conn))


# ============================================ 1C -> CRM ==============================================


@dg.asset(
    key=TO_CRM_PLAN,
    deps=EXTRACTS,
    kinds={"bitrix24", "duckdb"},
    pool="duckdb",
    **COMMON,
    check_specs=[guard_spec(TO_CRM_PLAN, "the 1C -> CRM company writes")],
)
def company_from_1c_plan(context: dg.AssetExecutionContext, bitrix24: Bitrix24Resource, warehouse: WarehouseResource):
    """What the CRM should receive from 1C, one row per 1C counterparty (key = Ref_Key): add (company +
    requisite + contacts) for clients only in 1C, update of the fields 1C owns for matched ones, noop when in
    sync, held_back for 1C-only clients a person decides on first; company/requisite fields as JSON."""
    client = bitrix24.client()
    calls = ApiCalls(client)
    presets = requisite_presets(client)
    with warehouse.connect() as conn:
        clients = tables.CLIENTS.read(conn)
        held = held_back_adds(
            clients,
            tables.DUPLICATE_GROUPS.read(conn),
            tables.CLIENT_MATCH_CANDIDATES.read(conn),
            created=created_in_crm(tables.CLIENT_MATCH_DECISIONS.read(conn)),
        )
        plan = crm_company_plan(
            clients,
            tables.ONEC_COUNTERPARTIES.read(conn),
            crm_companies(conn),
            presets,
            company_link(),
            last_pushed=last_pushed(conn, FLOW_TO_CRM),
            failed_keys=failed_keys(conn, FLOW_TO_CRM),
            held=held,
        )
        store_plan(conn, context, tables.COMPANY_FROM_1C_PLAN, plan.rows)
    return dg.MaterializeResult(
        metadata={
            **plan_metadata(
                plan.rows,
                str(tables.COMPANY_FROM_1C_PLAN),
                ["key", "company_id", "operation", "reason", "changed_fields"],
            ),
            "planned": plan.writes,
            "held_back": len(held),
            "api_calls": calls.count,
        },
        check_results=[guard_check(context, TO_CRM_PLAN, plan.guard_view, plan.population, FLOW_TO_CRM)],
    )


@dg.asset(key=TO_CRM, deps=[TO_CRM_PLAN], kinds={"bitrix24", "duckdb"}, pool="bitrix24_api", **COMMON)
def companies_from_1c(context: dg.AssetExecutionContext, bitrix24: Bitrix24Resource, warehouse: WarehouseResource):
    """Writes of the 1C -> CRM plan, one row per 1C counterparty written: crm.company.add (after looking the
    1C ref up in ORIGIN_ID, so a rerun never adds twice), crm.requisite.add/update, crm.company.update; every
    outcome in sync.results. A dry run (run tag b24_1c/dry_run=true) journals the rows and sends nothing."""
    dry_run = is_dry_run(context, "bitrix24")
    with warehouse.connect() as conn:
        plan = read_plan(conn, tables.COMPANY_FROM_1C_PLAN)
    todo = plan[plan["operation"].isin([Operation.ADD, Operation.UPDATE])] if not plan.empty else plan
    client = bitrix24.client()
    calls = ApiCalls(client)
    outcomes, target_ids = (
        (dry_run_outcomes(todo, Status.DRY_RUN), {}) if dry_run else write_companies(client, todo, company_link())
    )
    with warehouse.connect() as conn:
        results = journal(
            conn,
            flow=FLOW_TO_CRM,
            context=context,
            plan=todo,
            outcomes=outcomes,
            dry_run=dry_run,
            target_ids=target_ids,
        )
    return dg.MaterializeResult(metadata=push_metadata(results, len(todo), calls.count, dry_run))


# ============================================ CRM -> 1C ==============================================


@dg.asset(
    key=TO_1C_PLAN,
    deps=[*EXTRACTS, tables.CLIENT_MATCH_CANDIDATES.key, tables.DUPLICATE_GROUPS.key],
    kinds={"1c", "bitrix24", "duckdb"},
    pool="duckdb",
    **COMMON,
    check_specs=[guard_spec(TO_1C_PLAN, "the CRM -> 1C counterparty writes")],
)
def counterparty_from_crm_plan(
    context: dg.AssetExecutionContext, bitrix24: Bitrix24Resource, warehouse: WarehouseResource
):
    """CRM companies that may become 1C counterparties, one row per only-CRM company (key = company ID):
    create (validated, allow-listed body as JSON), invalid (problems named), skip (duplicate, in review,
    already linked) or link (made earlier, link not written)."""
    client = bitrix24.client()
    calls = ApiCalls(client)
    presets = requisite_presets(client)
    with warehouse.connect() as conn:
        plan = counterparty_plan(
            tables.CLIENTS.read(conn),
            crm_companies(conn),
            presets,
            company_link(),
            review_candidates=tables.CLIENT_MATCH_CANDIDATES.read(conn),
            duplicate_groups=tables.DUPLICATE_GROUPS.read(conn),
            last_pushed=last_pushed(conn, FLOW_TO_1C),
            allowed_fields=settings.onec_writes().counterparty.allowed_fields,
        )
        store_plan(conn, context, tables.COUNTERPARTY_FROM_CRM_PLAN, plan.rows)
    shown = ["key", "operation", "inn", "kpp", "kind", "problems"]
    return dg.MaterializeResult(
        metadata={
            **plan_metadata(plan.rows, str(tables.COUNTERPARTY_FROM_CRM_PLAN), shown),
            "planned": plan.writes,
            "preview": preview(plan.rows[plan.rows["operation"] != Operation.SKIP], shown),
            "api_calls": calls.count,
        },
        check_results=[guard_check(context, TO_1C_PLAN, plan.guard_view, plan.population, FLOW_TO_1C)],
    )


@dg.asset(key=TO_1C, deps=[TO_1C_PLAN], kinds={"1c", "bitrix24", "duckdb"}, pool="onec_odata", **COMMON)
def counterparties_from_crm(
    context: dg.AssetExecutionContext, onec: OneCResource, bitrix24: Bitrix24Resource, warehouse: WarehouseResource
):
    """Counterparties written to 1C from the CRM plan, one row per planned company: POST Catalog_Контрагенты
    with the marker b24-1c:company:<ID> in Комментарий (looked up first), then the new Ref_Key written to the
    company's ORIGIN_ID. A dry run (1C's default) journals what would be written and calls 1C not at all."""
    dry_run = is_dry_run(context, "onec")
    with warehouse.connect() as conn:
        plan = read_plan(conn, tables.COUNTERPARTY_FROM_CRM_PLAN)
    run = counterparty_run(plan, max_creates=settings.onec_writes().max_creates_per_run, dry_run=dry_run)
    push = push_counterparties(run, company_link(), onec.client, bitrix24.client)
    with warehouse.connect() as conn:
        results = journal(
            conn,
            flow=FLOW_TO_1C,
            context=context,
            plan=run.todo,
            outcomes=push.outcomes,
            dry_run=dry_run,
            target_ids=push.target_ids,
        )
    return dg.MaterializeResult(
        metadata={
            **push_metadata(results, len(run.todo), push.onec_calls + push.bitrix24_calls, dry_run),
            "onec_calls": push.onec_calls,
            "bitrix24_calls": push.bitrix24_calls,
        }
    )


defs = dg.Definitions(
    assets=[company_from_1c_plan, companies_from_1c, counterparty_from_crm_plan, counterparties_from_crm]
)
