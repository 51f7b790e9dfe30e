"""Raw Bitrix24 extracts: one asset per CRM entity, stored as the portal returned it in schema `bitrix24`.

Full export by ID keyset (`order ID asc`, `filter >ID`, `start=-1`) packed into `batch` calls, so a
10,000-company portal costs a handful of HTTP calls and each record arrives exactly once.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg

from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.domain.contracts import BITRIX24_CONTRACTS
from b24_1c_assets.lib import tables
from b24_1c_assets.lib.api_calls import ApiCalls
from b24_1c_assets.lib.incremental_extract import land_window, next_window
from b24_1c_assets.lib.job_tags import INCREMENTAL_SYNC
from b24_1c_assets.lib.landing import OWNERS, contract_check_spec, store_extract
from b24_1c_assets.lib.resources import Bitrix24Resource, WarehouseResource
from b24_1c_assets.lib.tables import Table
from b24_1c_assets.warehouse import records_frame


@dataclass(frozen=True)
class CrmEntity:
    table: Table
    method: str
    select: tuple[str, ...]
    description: str
    params: dict = field(default_factory=dict)
    preview: tuple[str, ...] = ()
    keyset: bool = True  # False: a small list paged with `start` (user.get has no ID keyset)
    # Read incrementally by this modification stamp (`>=` since the last extract minus the overlap) and merged
    # by `key`; None: read whole every time (small lists)
    modified: str | None = None
    key: str = "ID"
    in_incremental_sync: bool = False  # a CRM change can make it stale: incremental_sync re-reads it


CRM_ENTITIES = (
    CrmEntity(
        tables.BITRIX24_COMPANIES,
        "crm.company.list",
        ("*", "UF_*", "EMAIL", "PHONE"),
        "CRM companies, one row per company (ID), with EMAIL/PHONE multifields as JSON and UF_CRM_* fields.",
        preview=("ID", "TITLE", "ASSIGNED_BY_ID", "ORIGIN_ID", "DATE_MODIFY"),
        modified="DATE_MODIFY",
        in_incremental_sync=True,
    ),
    CrmEntity(
        tables.BITRIX24_REQUISITES,
        "crm.requisite.list",
        ("*",),
        "CRM requisites (INN/KPP/OGRN live here, not on the company), one row per requisite (ID); "
        "ENTITY_TYPE_ID 4 = company, 3 = contact.",
        preview=("ID", "ENTITY_TYPE_ID", "ENTITY_ID", "PRESET_ID", "RQ_INN", "RQ_KPP"),
        modified="DATE_MODIFY",
        in_incremental_sync=True,
    ),
    CrmEntity(
        tables.BITRIX24_CONTACTS,
        "crm.contact.list",
        ("*", "UF_*", "EMAIL", "PHONE"),
        "CRM contacts, one row per contact (ID), with COMPANY_ID and EMAIL/PHONE multifields as JSON.",
        preview=("ID", "NAME", "LAST_NAME", "COMPANY_ID"),
        modified="DATE_MODIFY",
    ),
    CrmEntity(
        tables.BITRIX24_DEALS,
        "crm.deal.list",
        ("*", "UF_*"),
        "CRM deals, one row per deal (ID), in every pipeline (CATEGORY_ID) and stage (STAGE_ID).",
        preview=("ID", "TITLE", "CATEGORY_ID", "STAGE_ID", "COMPANY_ID", "OPPORTUNITY"),
        modified="DATE_MODIFY",
        in_incremental_sync=True,
    ),
    CrmEntity(
        tables.BITRIX24_PRODUCTS,
        "crm.product.list",
        ("*",),
        "CRM catalog products, one row per product (ID); XML_ID holds the 1C item reference.",
        preview=("ID", "NAME", "PRICE", "ACTIVE", "XML_ID"),
        in_incremental_sync=True,
    ),
    CrmEntity(
        tables.BITRIX24_SMART_INVOICES,
        "crm.item.list",
        ("*",),
        "CRM smart invoices (entityTypeId 31), one row per invoice (id), camelCase fields.",
        params={"entityTypeId": 31},
        preview=("id", "title", "stageId", "companyId", "opportunity"),
        modified="updatedTime",
        key="id",
    ),
    CrmEntity(
        tables.BITRIX24_USERS,
        "user.get",
        (),
        "Portal users (responsible managers, finance, ops), one row per user (ID).",
        params={"FILTER": {"ACTIVE": True}},
        preview=("ID", "NAME", "LAST_NAME", "EMAIL"),
        keyset=False,
    ),
)


def paged(client: Bitrix24Client, method: str, params: dict):
    """Records of a small list method paged by `start`/`next` (for methods with no ID keyset)."""
    start = 0
    while True:
        envelope = client.call_envelope(method, {**params, "start": start})
        yield from envelope.result or []
        if envelope.next is None:
            return
        start = envelope.next


def build_crm_extract(entity: CrmEntity) -> dg.AssetsDefinition:
    @dg.asset(
        key=entity.table.key,
        group_name="bitrix24_raw",
        kinds={"bitrix24", "duckdb"},
        owners=OWNERS,
        # The portal's rate budget is one for all runs; DuckDB writes are short and wait for the lock.
        pool="bitrix24_api",
        description=entity.description,
        check_specs=[contract_check_spec(entity.table)],
        tags={"flow": "extract", "source": "bitrix24", **(INCREMENTAL_SYNC if entity.in_incremental_sync else {})},
    )
    def _extract(
        context: dg.AssetExecutionContext, bitrix24: Bitrix24Resource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        client = bitrix24.client()
        if entity.modified is not None:
            return _incremental_extract(context, client, warehouse, entity)
        calls = ApiCalls(client)
        if entity.keyset:
            records = client.export_all(entity.method, select=list(entity.select), params=dict(entity.params))
        else:
            records = list(paged(client, entity.method, dict(entity.params)))
        return store_extract(
            context,
            warehouse,
            entity.table,
            records_frame(records),
            contract=BITRIX24_CONTRACTS[entity.table.name],
            api_calls=calls.count,
            preview_columns=list(entity.preview),
        )

    return _extract


def _incremental_extract(
    context: dg.AssetExecutionContext, client: Bitrix24Client, warehouse: WarehouseResource, entity: CrmEntity
) -> dg.MaterializeResult:
    """Records modified since the last extract (minus the overlap) merged by key; the whole list on the first
    run, every `full_every_days` and with the run tag b24_1c/full_extract=true (deletions show up there)."""
    calls = ApiCalls(client)
    started = datetime.now(UTC).replace(tzinfo=None)  # kept naive UTC in sync.extract_state
    window = next_window(context, warehouse, entity.table, started)
    since = None if window.full else window.since.replace(tzinfo=UTC)
    records = client.export_all(
        entity.method,
        select=list(entity.select),
        params=dict(entity.params),
        filter={f">={entity.modified}": since.isoformat()} if since else None,
    )
    return land_window(
        context,
        warehouse,
        entity.table,
        frame=records_frame(records),
        window=window,
        started=started,
        key=(entity.key,),
        date_column=entity.modified,
        since=since,
        requests=calls.count,
        contract=BITRIX24_CONTRACTS[entity.table.name],
        preview_columns=list(entity.preview),
    )


crm_extracts = [build_crm_extract(entity) for entity in CRM_ENTITIES]

defs = dg.Definitions(assets=crm_extracts)
