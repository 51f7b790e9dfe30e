"""Catalog, 1C -> CRM: the product plan (with its blocking guard) and the push to crm.product.

Items and prices come from the OData extracts (onec.items, onec.prices), or, when ONEC_ODATA_URL is not set,
from the newest CommerceML import*.xml / offers*.xml in the exchange folder.
"""

from pathlib import Path

import dagster as dg
import pandas as pd

from b24_1c_assets import settings
from b24_1c_assets.defs.onec import publication
from b24_1c_assets.domain import catalog_sync
from b24_1c_assets.domain.push_plan import Operation, Status, plan_updates
from b24_1c_assets.lib import push_flow, tables
from b24_1c_assets.lib.api_calls import ApiCalls
from b24_1c_assets.lib.landing import OWNERS
from b24_1c_assets.lib.resources import Bitrix24Resource, OneCResource, WarehouseResource
from b24_1c_assets.onec import commerceml
from b24_1c_assets.onec.exchange import decode_bytes
from b24_1c_assets.sync import journal
from b24_1c_assets.sync.bitrix24_reads import find_by_external_id
from b24_1c_assets.sync.bitrix24_writes import RowOutcome, WriteCommand, apply_commands

PLAN = tables.PRODUCT_PLAN.key
PUSH = tables.PUSH_PRODUCTS.key
TAGS = {"flow": catalog_sync.FLOW}


@dg.asset(
    key=PLAN,
    group_name="catalog_sync",
    kinds={"duckdb"},
    owners=OWNERS,
    pool="duckdb",
    tags=TAGS,
    deps=[tables.ONEC_ITEMS.key, tables.ONEC_PRICES.key, tables.ONEC_PRICE_TYPES.key, tables.BITRIX24_PRODUCTS.key],
    check_specs=[push_flow.guard_spec(PLAN, "the catalog push to CRM products")],
    description="What the catalog push would write, one row per 1C item that is (or becomes) a CRM "
    "product: operation update / in_sync / noop, changed fields, before and after.",
)
def product_plan(
    context: dg.AssetExecutionContext, onec: OneCResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    config = settings.deal_orders().catalog
    with warehouse.connect() as conn:
        skipped = onec.uses_odata and publication.skipped_plan(
            context, conn, "catalog_sync", tables.PRODUCT_PLAN, push_flow.GUARD_CHECK
        )
        if skipped:
            return skipped
        if onec.uses_odata:
            items, prices = tables.ONEC_ITEMS.read(conn), tables.ONEC_PRICES.read(conn)
            price_types = tables.ONEC_PRICE_TYPES.read(conn)
        products = tables.BITRIX24_PRODUCTS.read(conn)
        pushed, failed = journal.last_pushed(conn, catalog_sync.FLOW), journal.failed_keys(conn, catalog_sync.FLOW)
    if not onec.uses_odata:
        items, prices, price_types = catalog_from_exchange(Path(onec.exchange_dir))
        context.log.info(f"catalog read from CommerceML files in the exchange folder: {len(items)} items")
    price_type = catalog_sync.price_type_ref(price_types, config.price_type)
    desired = catalog_sync.desired_products(items, prices, products, price_type=price_type, currency=config.currency)
    plan = plan_updates(desired, pushed, failed, catalog_sync.PRODUCT_FIELDS)
    plan = plan.merge(desired[["key", "product_id"]], on="key", how="left")
    # A product the CRM already shows as 1C has it needs no write, only a baseline.
    crm = (
        {str(x): r for x, r in zip(products.get("XML_ID", []), products.to_dict("records"))}
        if not products.empty
        else {}
    )
    wanted = desired.set_index("key").to_dict("index")
    in_sync = [
        k
        for k, op in zip(plan["key"], plan["operation"])
        if op == Operation.UPDATE and catalog_sync.same_as_crm({**wanted[k], "key": k}, crm.get(k))
    ]
    plan.loc[plan["key"].isin(in_sync), "operation"] = Operation.IN_SYNC
    with warehouse.connect() as conn:
        push_flow.store_plan(conn, context, tables.PRODUCT_PLAN, plan)
    population = int(desired["product_id"].notna().sum())
    return dg.MaterializeResult(
        metadata=push_flow.plan_metadata(
            plan, "crm_push.product_plan", ["key", "operation", "reason", "changed_fields"]
        ),
        check_results=[push_flow.guard_check(context, PLAN, plan, population, "catalog")],
    )


def _newest(folder: Path, pattern: str) -> Path | None:
    found = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def catalog_from_exchange(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(items, prices, price_types) shaped like the OData extracts, from the newest CommerceML import*.xml
    and offers*.xml in the exchange folder (read only: the files stay for the exchange loader)."""
    catalog, offers = _newest(folder, "import*.xml"), _newest(folder, "offers*.xml")
    if catalog is None:
        raise dg.Failure(f"no OData and no CommerceML import*.xml in the exchange folder {folder}")
    items = commerceml.read(commerceml.parse_xml(decode_bytes(catalog.read_bytes())))
    if items.kind != "catalog":
        raise dg.Failure(f"{catalog.name} holds no <Каталог>")
    prices = types = None
    if offers is not None:
        package = commerceml.read(commerceml.parse_xml(decode_bytes(offers.read_bytes())))
        prices, types = package.records, package.extra.get("price_types", [])
    return (
        pd.DataFrame(items.records, columns=["Ref_Key", "Description", "DeletionMark"] if not items.records else None),
        pd.DataFrame(prices or [], columns=None if prices else ["Номенклатура_Key", "ВидЦен_Key", "Цена"]),
        pd.DataFrame(types or [], columns=None if types else ["Ref_Key", "Description"]),
    )


@dg.asset(
    key=PUSH,
    group_name="catalog_sync",
    kinds={"bitrix24", "duckdb"},
    owners=OWNERS,
    pool="bitrix24_api",
    tags=TAGS,
    deps=[PLAN],
    description="Results of the catalog push, one row per planned product write (crm.product.add/update "
    "keyed by XML_ID); also journaled in sync.results.",
)
def products_push(
    context: dg.AssetExecutionContext, bitrix24: Bitrix24Resource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    dry_run = push_flow.is_dry_run(context, "bitrix24")
    with warehouse.connect() as conn:
        plan = push_flow.read_plan(conn, tables.PRODUCT_PLAN)
    todo = plan[plan["operation"] != Operation.NOOP] if not plan.empty else plan
    client = bitrix24.client()
    calls = ApiCalls(client)
    outcomes = (
        [RowOutcome(k, Operation.IN_SYNC, Status.OK) for k in todo.loc[todo["operation"] == Operation.IN_SYNC, "key"]]
        if not todo.empty
        else []
    )
    writes = todo[todo["operation"] == Operation.UPDATE] if not todo.empty else todo
    target_ids = {str(k): str(p) for k, p in zip(todo.get("key", []), todo.get("product_id", [])) if isinstance(p, str)}
    if not dry_run and not writes.empty:
        unknown = [k for k in writes["key"] if k not in target_ids]
        target_ids.update(
            find_by_external_id(client, "crm.product.list", unknown, external_field="XML_ID", id_field="ID")
            if unknown
            else {}
        )
        commands = []
        for row in writes.to_dict("records"):
            after = push_flow.after_of(row)
            fields = catalog_sync.crm_payload(
                {**after, "XML_ID": row["key"], "PRICE": catalog_sync.money(after.get("PRICE"))}
            )
            if row["key"] in target_ids:
                commands.append(
                    WriteCommand(row["key"], "crm.product.update", {"id": target_ids[row["key"]], "fields": fields})
                )
            else:
                commands.append(
                    WriteCommand(row["key"], "crm.product.add", {"fields": fields}, operation=Operation.ADD)
                )
        outcomes += apply_commands(client, commands)
        target_ids.update(
            {o.key: str(o.result) for o in outcomes if o.operation == Operation.ADD and o.status == Status.OK}
        )
    elif dry_run:
        outcomes += push_flow.dry_run_outcomes(writes)
    with warehouse.connect() as conn:
        results = push_flow.journal(
            conn,
            flow=catalog_sync.FLOW,
            context=context,
            plan=plan,
            outcomes=outcomes,
            dry_run=dry_run,
            target_ids=target_ids,
        )
    return dg.MaterializeResult(metadata=push_flow.push_metadata(results, len(writes), calls.count, dry_run))


defs = dg.Definitions(assets=[product_plan, products_push])
