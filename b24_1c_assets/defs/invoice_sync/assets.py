"""Invoices and payments, 1C -> CRM: the smart-invoice plan (blocking guard) and the push to crm.item."""

import dagster as dg
import pandas as pd

from b24_1c_assets import settings
from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.defs.client_master.reads import COMPANIES_FROM_1C
from b24_1c_assets.defs.invoice_sync import reads
from b24_1c_assets.defs.onec import publication
from b24_1c_assets.domain import invoice_sync
from b24_1c_assets.domain.push_plan import Operation, Status, plan_updates
from b24_1c_assets.lib import push_flow, tables
from b24_1c_assets.lib.api_calls import ApiCalls
from b24_1c_assets.lib.landing import OWNERS
from b24_1c_assets.lib.resources import Bitrix24Resource, WarehouseResource
from b24_1c_assets.sync import journal
from b24_1c_assets.sync.bitrix24_reads import batch_read, find_by_external_id
from b24_1c_assets.sync.bitrix24_userfields import SMART_INVOICE_UF_ENTITY, UserField, ensure_item_userfields
from b24_1c_assets.sync.bitrix24_writes import RowOutcome, WriteCommand, apply_commands

PLAN = tables.SMART_INVOICE_PLAN.key
PUSH = tables.PUSH_SMART_INVOICES.key
TAGS = {"flow": invoice_sync.FLOW}
PAID_FIELD_LABEL = "Оплачено по 1С"
WRITE_CHUNK = 500  # writes sent and answered before the next ones are built (10 batch calls of 50)


def invoice_pipeline(client: Bitrix24Client, config: settings.Invoices) -> tuple[int, dict[str, str]]:
    """(smart-invoice pipeline id, payment state -> STATUS_ID): the pipeline from crm.category.list
    (entityTypeId 31; the default one or `[invoices] category` by name), its stages from crm.status.list
    (ENTITY_ID SMART_INVOICE_STAGE_<id>), paid = the stage with SEMANTICS S."""
    listed = client.call("crm.category.list", {"entityTypeId": invoice_sync.ENTITY_TYPE_ID}) or {}
    categories = listed.get("categories", []) if isinstance(listed, dict) else listed
    try:
        category = invoice_sync.invoice_category(categories, config.category or None)
        statuses = client.call("crm.status.list", {"filter": {"ENTITY_ID": invoice_sync.stage_list_entity(category)}})
        return category, invoice_sync.stage_ids(statuses or [], config.unpaid_stage, config.partly_paid_stage)
    except ValueError as exc:
        raise dg.Failure(f"smart invoices: {exc}") from None


@dg.asset(
    key=PLAN,
    group_name="invoice_sync",
    kinds={"bitrix24", "duckdb"},
    owners=OWNERS,
    pool="bitrix24_api",
    tags=TAGS,
    deps=[
        tables.ONEC_INVOICES.key,
        tables.ONEC_INVOICE_PAYMENTS.key,
        tables.ONEC_CUSTOMER_ORDERS.key,
        tables.BITRIX24_SMART_INVOICES.key,
        tables.CLIENTS.key,
        COMPANIES_FROM_1C,
    ],
    check_specs=[push_flow.guard_spec(PLAN, "the invoice push to CRM smart invoices")],
    description="What the invoice push would write, one row per posted 1C invoice (СчетНаОплату) with its "
    "company, deal, amount and payment stage; rejected invoices say why.",
)
def smart_invoice_plan(
    context: dg.AssetExecutionContext, bitrix24: Bitrix24Resource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    config = settings.deal_orders().invoices
    with warehouse.connect() as conn:
        skipped = publication.skipped_plan(
            context, conn, "invoice_sync", tables.SMART_INVOICE_PLAN, push_flow.GUARD_CHECK
        )
    if skipped:
        return skipped
    client = bitrix24.client()
    calls = ApiCalls(client)
    _, stages = invoice_pipeline(client, config)
    with warehouse.connect() as conn:
        # posted invoices' headers, payment totals summed in SQL, linked clients, marked orders: not whole tables
        desired, rejects = invoice_sync.desired_invoices(
            reads.posted_invoices(conn),
            reads.payment_totals(conn),
            reads.linked_clients(conn),
            reads.marked_orders(conn),
            stages,
        )
        crm = reads.crm_invoice_ids(conn)
        pushed, failed = journal.last_pushed(conn, invoice_sync.FLOW), journal.failed_keys(conn, invoice_sync.FLOW)
    plan = plan_updates(desired, pushed, failed, invoice_sync.INVOICE_FIELDS)
    ids = {str(x): str(i) for x, i in zip(crm.get("xmlId", []), crm.get("id", [])) if isinstance(x, str) and x}
    plan["item_id"] = plan["key"].map(ids)
    if not rejects.empty:
        plan = pd.concat(
            [plan, pd.DataFrame({"key": rejects["key"], "operation": Operation.REJECTED, "reason": rejects["reason"]})],
            ignore_index=True,
        )
    with warehouse.connect() as conn:
        push_flow.store_plan(conn, context, tables.SMART_INVOICE_PLAN, plan)
    metadata = push_flow.plan_metadata(
        plan, "crm_push.smart_invoice_plan", ["key", "operation", "reason", "changed_fields"]
    )
    metadata["api_calls"] = calls.count
    return dg.MaterializeResult(
        metadata=metadata, check_results=[push_flow.guard_check(context, PLAN, plan, len(ids), "invoices")]
    )


def read_back(
    client: Bitrix24Client,
    written: list[RowOutcome],
    sent: dict[str, dict],
    target_ids: dict[str, str],
    paid_field: str | None,
) -> list[RowOutcome]:
    """The outcomes with every written invoice read back (50 ids per crm.item.list command): a value the portal
    did not keep (an ignored field) turns the row into a failure saying so, instead of a silent success."""
    done = {o.key: target_ids[o.key] for o in written if o.status == Status.OK and o.key in target_ids}
    select = ["id", "stageId"] + ([paid_field] if paid_field else [])
    ids = sorted(set(done.values()), key=int)
    commands = {
        f"r{i}": (
            "crm.item.list",
            {
                "entityTypeId": invoice_sync.ENTITY_TYPE_ID,
                "filter": {"@id": ids[i : i + 50]},
                "select": select,
                "useOriginalUfNames": "Y",
            },
        )
        for i in range(0, len(ids), 50)
    }
    stored_by_id: dict[str, dict] = {}
    for result in (batch_read(client, commands) if commands else {}).values():
        for item in result.get("items", []) if isinstance(result, dict) else []:
            stored_by_id[str(item["id"])] = item
    mismatches = invoice_sync.readback_mismatches(
        {k: sent.get(k, {}) for k in done}, {k: stored_by_id[i] for k, i in done.items() if i in stored_by_id}
    )
    return [
        RowOutcome(
            o.key,
            o.operation,
            Status.FAILED,
            result=o.result,
            error=f"read back: {mismatches[o.key]}",
            error_class="data",
            attempts=o.attempts,
        )
        if o.key in mismatches
        else o
        for o in written
    ]


def invoice_command(row: dict, fields: dict, target_ids: dict[str, str], category: int) -> WriteCommand:
    """crm.item.update of the invoice's smart invoice when its id is known, else crm.item.add with xmlId."""
    # useOriginalUfNames: user fields by their UF_CRM_ names, as userfieldconfig created them
    if row["key"] in target_ids:
        return WriteCommand(
            row["key"],
            "crm.item.update",
            {
                "entityTypeId": invoice_sync.ENTITY_TYPE_ID,
                "id": target_ids[row["key"]],
                "fields": fields,
                "useOriginalUfNames": "Y",
            },
        )
    return WriteCommand(
        row["key"],
        "crm.item.add",
        {
            "entityTypeId": invoice_sync.ENTITY_TYPE_ID,
            "useOriginalUfNames": "Y",
            "fields": {**fields, "categoryId": category, "xmlId": row["key"]},
        },
        operation=Operation.ADD,
    )


def write_invoices(
    client: Bitrix24Client, writes: pd.DataFrame, target_ids: dict[str, str], category: int, paid_field: str | None
) -> tuple[list[RowOutcome], dict[str, dict]]:
    """Send the planned writes WRITE_CHUNK rows at a time, in plan order; (outcomes, what was sent of the values
    read back). The id of each added invoice goes into `target_ids`; the portal's answer (the whole item) is
    not kept: a first run writes every invoice, and holding all answers made the push grow with the 1C history."""
    written, sent = [], {}
    for start in range(0, len(writes), WRITE_CHUNK):
        commands = []
        for row in writes.iloc[start : start + WRITE_CHUNK].to_dict("records"):
            fields = invoice_sync.crm_fields(push_flow.after_of(row), paid_field)
            sent[row["key"]] = {k: fields[k] for k in ("stageId", paid_field) if k and k in fields}
            commands.append(invoice_command(row, fields, target_ids, category))
        for o in apply_commands(client, commands):
            if isinstance(o.result, dict):
                if o.operation == Operation.ADD and o.status == Status.OK:
                    target_ids[o.key] = str((o.result.get("item") or {}).get("id"))
                o.result = None  # the journal takes the id from target_ids
            written.append(o)
    return written, sent


@dg.asset(
    key=PUSH,
    group_name="invoice_sync",
    kinds={"bitrix24", "duckdb"},
    owners=OWNERS,
    pool="bitrix24_api",
    tags=TAGS,
    deps=[PLAN],
    description="Results of the invoice push, one row per planned smart invoice (crm.item.add/update, "
    "xmlId = 1C Ref_Key) or rejected invoice; also journaled in sync.results.",
)
def smart_invoices_push(
    context: dg.AssetExecutionContext, bitrix24: Bitrix24Resource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    dry_run = push_flow.is_dry_run(context, "bitrix24")
    config = settings.deal_orders().invoices
    try:
        paid_field = invoice_sync.check_paid_field(config.paid_amount_field or None)
    except ValueError as exc:
        raise dg.Failure(f"smart invoices: {exc}") from None
    with warehouse.connect() as conn:
        plan = reads.plan_to_push(conn, tables.SMART_INVOICE_PLAN)
    if plan.empty:
        plan = pd.DataFrame(columns=["key", "operation", "reason", "after", "item_id"])
    client = bitrix24.client()
    calls = ApiCalls(client)
    rejected = plan[plan["operation"] == Operation.REJECTED]
    outcomes = [
        RowOutcome(k, Operation.REJECTED, Status.REJECTED, error=r) for k, r in zip(rejected["key"], rejected["reason"])
    ]
    writes = plan[plan["operation"] == Operation.UPDATE]
    target_ids = {str(k): str(i) for k, i in zip(writes["key"], writes["item_id"]) if isinstance(i, str)}
    if dry_run:
        outcomes += push_flow.dry_run_outcomes(writes)
    elif not writes.empty:
        category, _ = invoice_pipeline(client, config)
        if paid_field:  # crm.item.update drops a value for a field that does not exist: make sure it does
            ensure_item_userfields(client, SMART_INVOICE_UF_ENTITY, [UserField(paid_field, "double", PAID_FIELD_LABEL)])
        unknown = [k for k in writes["key"] if k not in target_ids]
        target_ids.update(
            find_by_external_id(
                client,
                "crm.item.list",
                unknown,
                external_field="xmlId",
                id_field="id",
                params={"entityTypeId": invoice_sync.ENTITY_TYPE_ID},
            )
            if unknown
            else {}
        )
        written, sent = write_invoices(client, writes, target_ids, category, paid_field)
        outcomes += read_back(client, written, sent, target_ids, paid_field)
    with warehouse.connect() as conn:
        results = push_flow.journal(
            conn,
            flow=invoice_sync.FLOW,
            context=context,
            plan=plan[plan["operation"] != Operation.NOOP],
            outcomes=outcomes,
            dry_run=dry_run,
            target_ids=target_ids,
        )
    return dg.MaterializeResult(metadata=push_flow.push_metadata(results, len(writes), calls.count, dry_run))


defs = dg.Definitions(assets=[smart_invoice_plan, smart_invoices_push])
