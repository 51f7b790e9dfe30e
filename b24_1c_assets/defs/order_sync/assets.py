"""Deals -> 1C customer orders: the order plan (blocking guard) and the push to Document_ЗаказПокупателя,
with the order number and reference written back to the deal's user fields."""

from datetime import datetime

import dagster as dg
import pandas as pd

from b24_1c_assets import settings
from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.defs.onec import publication
from b24_1c_assets.defs.order_sync import onec_orders, reads
from b24_1c_assets.domain import order_sync
from b24_1c_assets.domain.push_plan import Operation, Status
from b24_1c_assets.lib import push_flow, tables
from b24_1c_assets.lib.api_calls import ApiCalls
from b24_1c_assets.lib.job_tags import INCREMENTAL_SYNC
from b24_1c_assets.lib.landing import OWNERS
from b24_1c_assets.lib.resources import Bitrix24Resource, OneCResource, WarehouseResource
from b24_1c_assets.onec import OneCClient
from b24_1c_assets.onec.errors import (
    OneCConnectionError,
    OneCError,
    OneCPublicationError,
    OneCRequestError,
    WriteNotApplied,
)
from b24_1c_assets.sync import journal
from b24_1c_assets.sync.bitrix24_reads import batch_read
from b24_1c_assets.sync.bitrix24_userfields import UserField, ensure_userfields
from b24_1c_assets.sync.bitrix24_writes import RowOutcome, WriteCommand, apply_commands

PLAN = tables.ORDER_PLAN.key
PUSH = tables.PUSH_CUSTOMER_ORDERS.key
TAGS = {"flow": order_sync.FLOW, **INCREMENTAL_SYNC}
# Header fields a new order takes from the latest order of its organisation unless the settings give them:
# what UNF's fill check at Post needs beyond the contract's (Documents/ЗаказПокупателя.xml, FillChecking).
HEADER_FROM_ORDERS = (
    "СтруктурнаяЕдиницаПродажи_Key",
    "СтруктурнаяЕдиницаРезерв_Key",
    "ХозяйственнаяОперация_Key",
    "НалогообложениеНДС",
    "СуммаВключаетНДС",
    "ВидЗаказа",
    "СостояниеЗаказа",
    "Курс",
    "Кратность",
)
# What the plan reads of a contract (order_sync.client_contract and the order header parts).
CONTRACT_COLUMNS = [
    "Ref_Key",
    "Owner_Key",
    "DeletionMark",
    "Недействителен",
    "ВидДоговора",
    "Организация_Key",
    "ВидЦен_Key",
    "ВалютаРасчетов_Key",
]


def product_rows(client: Bitrix24Client, deal_ids: list[str]) -> dict[str, list[dict]]:
    """crm.deal.productrows.get for each deal, 50 per batch call."""
    rows: dict[str, list[dict]] = {}
    for start in range(0, len(deal_ids), 50):
        chunk = deal_ids[start : start + 50]
        answers = batch_read(client, {f"d{i}": ("crm.deal.productrows.get", {"id": d}) for i, d in enumerate(chunk)})
        for i, deal in enumerate(chunk):
            rows[deal] = list(answers[f"d{i}"] or [])
    return rows


@dg.asset(
    key=PLAN,
    group_name="order_sync",
    kinds={"bitrix24", "duckdb"},
    owners=OWNERS,
    pool="bitrix24_api",
    tags=TAGS,
    deps=[
        tables.BITRIX24_DEALS.key,
        tables.BITRIX24_PRODUCTS.key,
        tables.CLIENTS.key,
        tables.ONEC_COUNTERPARTIES.key,
        tables.ONEC_CONTRACTS.key,
        tables.ONEC_ITEMS.key,
        tables.ONEC_CUSTOMER_ORDERS.key,
        tables.ONEC_SHIPMENTS.key,
    ],
    check_specs=[push_flow.guard_spec(PLAN, "the deal push to 1C customer orders")],
    description="What the deal push would do in 1C, one row per deal at an order stage (settings "
    "deal_orders.toml): create / link / update / conflict / rejected / noop, with the order "
    "already in 1C and the reason.",
)
def order_plan(
    context: dg.AssetExecutionContext, bitrix24: Bitrix24Resource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    config = settings.deal_orders().orders
    deal_fields = config.deal_fields
    with warehouse.connect() as conn:
        skipped = publication.skipped_plan(context, conn, "order_sync", tables.ORDER_PLAN, push_flow.GUARD_CHECK)
        if skipped:
            return skipped
        pushed, failed = journal.last_pushed(conn, order_sync.FLOW), journal.failed_keys(conn, order_sync.FLOW)
        # A write that failed halfway (order created, not posted) is finished even after its deal left the
        # order stages (a credit hold moves it on in the same run): else the 1C order stays half-written.
        unfinished = journal.failed_keys(conn, order_sync.FLOW, status=Status.FAILED)
        deals = reads.deals_for_orders(
            conn, order_sync.order_stages(config.stages), unfinished, deal_fields.number, deal_fields.ref
        )
        # only the columns the plan reads: these tables grow with the clients
        clients = reads.project(conn, tables.CLIENTS, ["company_id", "onec_ref"])
        counterparties = reads.project(
            conn, tables.ONEC_COUNTERPARTIES, ["Ref_Key", "default_contracts", "ДоговорПоУмолчанию_Key"]
        )
        contracts = reads.project(conn, tables.ONEC_CONTRACTS, CONTRACT_COLUMNS)
        items = reads.project(conn, tables.ONEC_ITEMS, ["Ref_Key", "DeletionMark", "ЕдиницаИзмерения_Key"])
        products = reads.project(conn, tables.BITRIX24_PRODUCTS, ["ID", "XML_ID"])
        orders = reads.marked_orders(conn)
        shipped = reads.shipped_orders(conn, orders["Ref_Key"]) if not orders.empty else set()
    client = bitrix24.client()
    calls = ApiCalls(client)
    rows = product_rows(client, [str(d) for d in deals["ID"]]) if not deals.empty else {}
    desired, rejects = order_sync.desired_orders(deals, rows, clients, counterparties, contracts, items, products)
    plan = order_sync.plan_orders(desired, rejects, order_sync.existing_orders(orders, shipped), pushed, failed)
    with warehouse.connect() as conn:
        push_flow.store_plan(conn, context, tables.ORDER_PLAN, plan)
    metadata = push_flow.plan_metadata(plan, "onec_push.order_plan", ["key", "operation", "reason", "order_number"])
    metadata["api_calls"] = calls.count
    population = int(plan["order_ref"].notna().sum()) if not plan.empty else 0
    return dg.MaterializeResult(
        metadata=metadata, check_results=[push_flow.guard_check(context, PLAN, plan, population, "orders")]
    )


def ensure_deal_fields(client: Bitrix24Client, names: list[str]) -> None:
    """Create the deal user fields the order is written back to, when the portal lacks them."""
    ensure_userfields(
        client,
        "deal",
        [
            UserField(name, "string", "Номер заказа 1С" if name.endswith("NUMBER") else "Ссылка на заказ 1С")
            for name in names
        ],
    )


def write_order(
    onec: OneCClient, row: dict, header_defaults: dict, made_since_extract: dict[int, str], vat: dict
) -> tuple[str, str]:
    """Create (unless an order with the deal's marker appeared since the extract) or update one order;
    returns (order ref, number). Rows carry each item's VAT rate (`vat`, see order_sync.item_vat_rates)."""
    after = push_flow.after_of(row)
    header = order_sync.order_header(row, after, header_defaults)
    stock = order_sync.stock_rows(
        after["rows"],
        header.get("СтруктурнаяЕдиницаРезерв_Key"),
        vat,
        amounts_include_vat=header.get("СуммаВключаетНДС", True) is not False,
    )
    # a new order ships the day it is written; an existing one keeps its own date
    shipment = {"ДатаОтгрузки": datetime.now(onec.tz).date()}
    if row["operation"] == Operation.CREATE:
        found = made_since_extract.get(int(row["key"]))
        if not found:
            # the date in the rows too: an order may keep it per row (ПоложениеДатыОтгрузки = ВТабличнойЧасти)
            stock = [{**r, **shipment} for r in stock]
            order = onec.create_customer_order({**header, **shipment}, stock, order_sync.marker(row["key"]), post=True)
            made_since_extract[int(row["key"])] = order["Ref_Key"]
            return order["Ref_Key"], order.get("Number")
        row = {**row, "order_ref": found}
    # Orders we write end posted, as a create posts them: a rerun after a failed Post finishes the job.
    order = onec_orders.replace_order(onec, row["order_ref"], header, stock, post=True, fill_if_empty=shipment)
    return order["Ref_Key"], order.get("Number")


@dg.asset(
    key=PUSH,
    group_name="order_sync",
    kinds={"1c", "bitrix24", "duckdb"},
    owners=OWNERS,
    pool="onec_odata",
    tags=TAGS,
    deps=[PLAN],
    description="Results of the deal push, one row per planned deal: the 1C order created / updated / "
    "linked (order number and ref written back to the deal), a conflict (order already "
    "shipped) or a rejection with its reason; also journaled in sync.results.",
)
def customer_orders_push(
    context: dg.AssetExecutionContext, bitrix24: Bitrix24Resource, onec: OneCResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    dry_run = push_flow.is_dry_run(context, "onec")
    config = settings.deal_orders().orders
    deal_fields = config.deal_fields
    with warehouse.connect() as conn:
        plan = reads.plan_to_push(conn, tables.ORDER_PLAN)
        latest = reads.header_orders(conn)
        extracted = reads.orders_extracted_at(conn)
        items = reads.project(conn, tables.ONEC_ITEMS, ["Ref_Key", "СтавкаНДС_Key", "ВидСтавкиНДС"])
    if plan.empty:
        plan = pd.DataFrame(columns=["key", "operation", "reason", "after", "order_ref", "order_number"])
    plan = plan[plan["operation"] != Operation.NOOP] if not plan.empty else plan
    outcomes = [
        RowOutcome(r["key"], r["operation"], r["operation"], error=r["reason"])
        for r in plan.to_dict("records")
        if r["operation"] in (Operation.REJECTED, Operation.CONFLICT)
    ]
    for outcome in outcomes:
        if outcome.status == Operation.CONFLICT:
            outcome.error = f"deal {outcome.key} changed after its 1C order was shipped: not written"
    todo = (
        plan[plan["operation"].isin([Operation.CREATE, Operation.LINK, Operation.UPDATE])] if not plan.empty else plan
    )
    b24 = bitrix24.client()
    onec_client = onec.client() if not todo.empty else None
    calls = ApiCalls(b24, onec_client)
    target_ids: dict[str, str] = {}
    if dry_run:
        outcomes += push_flow.dry_run_outcomes(todo)
    elif not todo.empty:
        defaults: dict[tuple, dict] = {}  # (organisation, currency) -> header defaults, one GET each

        def defaults_for(row: dict) -> dict:
            header_settings = config.header
            org = header_settings.get("Организация_Key") or row.get("organization")
            key = (org, row.get("currency"))
            if key not in defaults:
                defaults[key] = onec_orders.header_defaults(
                    onec_client,
                    header_settings,
                    latest,
                    HEADER_FROM_ORDERS,
                    organization=org,
                    currency=row.get("currency"),
                )
            return defaults[key]

        vat: dict | OneCPublicationError = {}
        if not (todo["operation"] == Operation.LINK).all():
            try:
                vat = order_sync.item_vat_rates(items, onec_client.vat_rates())
            except OneCPublicationError as exc:  # no VAT rates, no order UNF would post: each row says why
                vat = exc
        made = (
            onec_orders.orders_made_since_extract(onec_client, extracted)
            if (todo["operation"] == Operation.CREATE).any()
            else {}
        )
        written: dict[str, tuple[str, str]] = {}
        for row in todo.to_dict("records"):
            try:
                if row["operation"] == Operation.LINK:
                    written[row["key"]] = (row["order_ref"], row["order_number"])
                elif isinstance(vat, OneCPublicationError):
                    raise vat
                else:
                    written[row["key"]] = write_order(onec_client, row, defaults_for(row), made, vat)
            except ValueError as exc:  # our data cannot make a valid order (an item without a VAT rate)
                outcomes.append(
                    RowOutcome(row["key"], row["operation"], Status.FAILED, error=str(exc)[:500], error_class="data")
                )
            except OneCError as exc:  # one bad order never stops the others
                # no answer or a gateway/overload answer: the next run retries; anything else is 1C refusing the data
                kind = (
                    "retryable"
                    if isinstance(exc, (OneCConnectionError, WriteNotApplied))
                    or (isinstance(exc, OneCRequestError) and exc.transient)
                    else "data"
                )
                outcomes.append(
                    RowOutcome(row["key"], row["operation"], Status.FAILED, error=str(exc)[:500], error_class=kind)
                )
        ensure_deal_fields(b24, [deal_fields.number, deal_fields.ref])
        current = {r["key"]: (r.get("uf_number"), r.get("uf_ref")) for r in todo.to_dict("records")}
        commands, done = [], []
        ops = dict(zip(todo["key"], todo["operation"]))
        for key, (ref, number) in written.items():
            target_ids[key] = ref
            if current.get(key) == (number, ref):
                done.append(RowOutcome(key, ops[key], Status.OK))
            else:
                commands.append(
                    WriteCommand(
                        key,
                        "crm.deal.update",
                        {"id": key, "fields": {deal_fields.number: number, deal_fields.ref: ref}},
                    )
                )
        for outcome in done + apply_commands(b24, commands):  # journaled as the order's operation, not the write-back
            outcome.operation = ops[outcome.key]
            outcomes.append(outcome)
    with warehouse.connect() as conn:
        results = push_flow.journal(
            conn,
            flow=order_sync.FLOW,
            context=context,
            plan=plan,
            outcomes=outcomes,
            dry_run=dry_run,
            target_ids=target_ids,
        )
    return dg.MaterializeResult(metadata=push_flow.push_metadata(results, len(todo), calls.count, dry_run))


defs = dg.Definitions(assets=[order_plan, customer_orders_push])
