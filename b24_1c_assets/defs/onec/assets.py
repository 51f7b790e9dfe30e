"""Raw 1C:UNF extracts: one asset per 1C object, stored with 1C's own field names in schema `onec`.

Read through the standard OData interface when ONEC_ODATA_URL is set: catalogs by fixed `$orderby` +
`$top`/`$skip`, documents and register movements in `Date`/`Period` windows. Money arrives as Decimal and
is stored as DECIMAL, tabular sections (`Запасы`, `КонтактнаяИнформация`) as JSON text.
When it is not set, the same tables are rebuilt from the exchange folder (`exchange_assets.py`).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import chain

import dagster as dg

from b24_1c_assets.defs.onec import publication
from b24_1c_assets.defs.onec.exchange_assets import exchange_extract
from b24_1c_assets.domain.contracts import ONEC_CONTRACTS
from b24_1c_assets.domain.extract_window import ExtractWindow
from b24_1c_assets.lib import tables
from b24_1c_assets.lib.api_calls import ApiCalls
from b24_1c_assets.lib.incremental_extract import land_window, next_window
from b24_1c_assets.lib.job_tags import INCREMENTAL_SYNC
from b24_1c_assets.lib.landing import CONTRACT_CHECK, OWNERS, contract_check_spec, store_extract
from b24_1c_assets.lib.resources import OneCResource, WarehouseResource
from b24_1c_assets.lib.tables import Table
from b24_1c_assets.onec import OneCClient, OneCPublicationError, odata
from b24_1c_assets.warehouse import records_frame


@dataclass(frozen=True)
class Windowed:
    """Read by `date_column` since the last extract minus the overlap, merged by `key` (domain/extract_window.py).
    A key part given as "A|B" is whichever of the two columns the edition publishes (Recorder / Recorder_Key)."""

    date_column: str
    key: tuple[str, ...]


@dataclass(frozen=True)
class OneCObject:
    table: Table
    description: str
    # (client) -> rows, or, when windowed, (client, since) -> pages of rows (landed one by one)
    fetch: Callable[..., list[dict] | Iterator[list[dict]]]
    preview: tuple[str, ...] = ()
    windowed: Windowed | None = None
    # A catalog read by DataVersion: all {Ref_Key: DataVersion} first (cheap), then only the objects whose
    # version differs from ours; objects gone from 1C are deleted. The entity set named here.
    versioned: str | None = None
    in_incremental_sync: bool = False  # incremental_sync matches and writes against it, so re-reads it


DOCUMENT = Windowed("Date", ("Ref_Key",))
MOVEMENT = Windowed("Period", ("Recorder|Recorder_Key", "LineNumber"))


ONEC_OBJECTS = (
    OneCObject(
        tables.ONEC_COUNTERPARTIES,
        "1C counterparties (Catalog_Контрагенты), one row per Ref_Key, with ИНН/КПП, the contact "
        "information section as JSON and the first e-mail / phone taken from it.",
        lambda c, refs=None: c.counterparties(refs=refs),
        ("Ref_Key", "Description", "ИНН", "КПП", "email"),
        versioned=odata.COUNTERPARTIES,
        in_incremental_sync=True,
    ),
    OneCObject(
        tables.ONEC_CONTRACTS,
        "1C counterparty contracts (Catalog_ДоговорыКонтрагентов), one row per Ref_Key, with the owner "
        "(Owner_Key) and the payment term in days (СрокОплатыПокупателя, 0 = not set).",
        lambda c, refs=None: c.contracts(refs),
        ("Ref_Key", "Description", "Owner_Key", "СрокОплатыПокупателя"),
        versioned=odata.CONTRACTS,
        in_incremental_sync=True,
    ),
    OneCObject(
        tables.ONEC_ITEMS,
        "1C catalog items (Catalog_Номенклатура), one row per Ref_Key.",
        lambda c, refs=None: c.items(refs),
        ("Ref_Key", "Code", "Description", "DeletionMark"),
        versioned=odata.ITEMS,
        in_incremental_sync=True,
    ),
    OneCObject(
        tables.ONEC_PRICE_TYPES,
        "1C price types (Catalog_ВидыЦен), one row per Ref_Key.",
        lambda c: c.price_types(),
        ("Ref_Key", "Description"),
    ),
    OneCObject(
        tables.ONEC_PRICES,
        "Current item prices (InformationRegister_ЦеныНоменклатуры/SliceLast), one row per item and price type.",
        lambda c: c.prices(),
        ("Номенклатура_Key", "ВидЦен_Key", "Цена"),
    ),
    OneCObject(
        tables.ONEC_CUSTOMER_ORDERS,
        "1C customer orders (Document_ЗаказПокупателя), one row per order (Ref_Key), Запасы as JSON.",
        lambda c, since: c.iter_documents(odata.ORDERS, since),
        ("Number", "Date", "Контрагент_Key", "СуммаДокумента"),
        DOCUMENT,
        in_incremental_sync=True,
    ),
    OneCObject(
        tables.ONEC_INVOICES,
        "1C invoices for payment (Document_СчетНаОплату), one row per invoice (Ref_Key).",
        lambda c, since: c.iter_documents(odata.INVOICES, since),
        ("Number", "Date", "Контрагент_Key", "СуммаДокумента"),
        DOCUMENT,
    ),
    OneCObject(
        tables.ONEC_SHIPMENTS,
        "1C shipments (Document_РасходнаяНакладная), one row per shipment (Ref_Key).",
        lambda c, since: c.iter_documents(odata.SHIPMENTS, since),
        ("Number", "Date", "Контрагент_Key", "СуммаДокумента"),
        DOCUMENT,
        in_incremental_sync=True,
    ),
    OneCObject(
        tables.ONEC_BANK_RECEIPTS,
        "Money received to the bank (Document_ПоступлениеНаСчет), one row per document (Ref_Key).",
        lambda c, since: c.iter_documents(odata.BANK_RECEIPTS, since),
        ("Number", "Date", "Контрагент_Key", "СуммаДокумента"),
        DOCUMENT,
    ),
    OneCObject(
        tables.ONEC_CASH_RECEIPTS,
        "Money received at the cash desk (Document_ПоступлениеВКассу), one row per document (Ref_Key).",
        lambda c, since: c.iter_documents(odata.CASH_RECEIPTS, since),
        ("Number", "Date", "Контрагент_Key", "СуммаДокумента"),
        DOCUMENT,
    ),
    OneCObject(
        tables.ONEC_SETTLEMENT_MOVEMENTS,
        "Movements of the customer settlements register (РасчетыСПокупателями), one row per recorder "
        "and line: Receipt/Expense of Долг/Аванс per counterparty and contract.",
        lambda c, since: c.iter_settlement_movements(since),
        ("Period", "RecordType", "Контрагент_Key", "ТипРасчетов", "Сумма"),
        MOVEMENT,
    ),
    OneCObject(
        tables.ONEC_INVOICE_PAYMENTS,
        "Movements of ОплатаСчетовИЗаказов, one row per recorder and line: what each invoice or order "
        "asks (Сумма) and what was paid against it (СуммаОплаты, СуммаАванса).",
        lambda c, since: c.iter_invoice_payments(since),
        ("Period", "СчетНаОплату", "Сумма", "СуммаОплаты"),
        MOVEMENT,
    ),
    OneCObject(
        tables.ONEC_RECEIVABLES_BALANCE,
        "1C's own settlements balance (РасчетыСПокупателями/Balance) at extraction time, one row per "
        "counterparty, contract, document and settlement type with a non-zero СуммаBalance.",
        lambda c: c.receivables_balance(),
        ("Контрагент_Key", "Договор_Key", "ТипРасчетов", "СуммаBalance"),
    ),
)


def build_onec_extract(obj: OneCObject) -> dg.AssetsDefinition:
    @dg.asset(
        key=obj.table.key,
        group_name="onec_raw",
        kinds={"1c", "duckdb"},
        owners=OWNERS,
        pool="onec_odata",
        description=obj.description,
        check_specs=[contract_check_spec(obj.table)],
        tags={"flow": "extract", "source": "1c", **(INCREMENTAL_SYNC if obj.in_incremental_sync else {})},
        deps=[tables.EXCHANGE_FILES.key],  # a no-op with OData; with the exchange folder it stages new files first
    )
    def _extract(
        context: dg.AssetExecutionContext, onec: OneCResource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        if not onec.uses_odata:
            return exchange_extract(context, warehouse, obj.table, ONEC_CONTRACTS[obj.table.name], list(obj.preview))
        client = onec.client()
        calls = ApiCalls(client)
        window, removed, started = None, [], datetime.now(client.tz).replace(tzinfo=None)
        try:
            if obj.versioned is not None:
                records, removed, window = _changed_objects(
                    client, warehouse, obj, next_window(context, warehouse, obj.table, started)
                )
            elif obj.windowed is None:
                records = obj.fetch(client)
            else:
                window = next_window(context, warehouse, obj.table, started)
                pages = obj.fetch(client, window.since)
                first = next(pages, [])  # the set's publication is checked as its first page is asked for
                records = chain([first], pages)
        except OneCPublicationError as exc:
            if obj.table.name in publication.ESSENTIAL:
                raise
            # Not published: what needs it is skipped (onec/publication.py), the rest of the run goes on.
            with warehouse.connect() as conn:
                publication.record(conn, obj.table.name, str(exc))
            context.log.warning(f"{obj.table} not extracted: {exc}")
            return dg.MaterializeResult(
                metadata={"published": False, "not_published": str(exc), "api_calls": calls.count},
                check_results=[
                    dg.AssetCheckResult(
                        check_name=CONTRACT_CHECK,
                        passed=False,
                        severity=dg.AssetCheckSeverity.WARN,
                        metadata={"not_published": str(exc)},
                    )
                ],
            )
        with warehouse.connect() as conn:
            publication.record(conn, obj.table.name, None)
        # a windowed read is landed page by page (lib/landing.py stages it on disk), the others whole
        frame = records_frame(records) if obj.windowed is None else (records_frame(page) for page in records)
        extra = {"source": "odata", "extracted_at": datetime.now().isoformat(timespec="seconds")}
        contract = ONEC_CONTRACTS[obj.table.name]
        if window is None:
            return store_extract(
                context,
                warehouse,
                obj.table,
                frame,
                contract=contract,
                api_calls=calls.count,
                preview_columns=list(obj.preview),
                extra=extra,
            )
        if obj.versioned is not None:
            return land_window(
                context,
                warehouse,
                obj.table,
                frame=frame,
                window=window,
                started=started,
                key=("Ref_Key",),
                date_column=None,
                requests=calls.count,
                contract=contract,
                preview_columns=list(obj.preview),
                extra=extra,
                removed_keys=tuple((ref,) for ref in removed),
            )
        return land_window(
            context,
            warehouse,
            obj.table,
            frame=frame,
            window=window,
            started=started,
            key=_key_of(obj.windowed, first[0].keys() if first else ()),
            date_column=obj.windowed.date_column,
            requests=calls,  # counted once every page is read
            contract=contract,
            preview_columns=list(obj.preview),
            extra=extra,
        )

    return _extract


def _changed_objects(
    client: OneCClient, warehouse: WarehouseResource, obj: OneCObject, window: ExtractWindow
) -> tuple[list[dict], list[str], ExtractWindow]:
    """(objects to store, refs gone from 1C, the window as read): everything on a full read; else the objects
    whose DataVersion differs from the stored one (new ones included) and the stored refs 1C no longer has."""
    with warehouse.connect() as conn:
        held = (
            dict(conn.execute(f'SELECT "Ref_Key", "DataVersion" FROM {obj.table}').fetchall())
            if not window.full and "DataVersion" in obj.table.columns(conn)
            else {}
        )
    if not window.full and not held:
        # nothing to compare with (versions not published, or a table filled from exchange files): read whole
        window = ExtractWindow(None, "full: no stored DataVersion to compare with")
    if window.full:
        return obj.fetch(client), [], window
    current = client.versions(obj.versioned, include_folders=obj.table != tables.ONEC_COUNTERPARTIES)
    changed = [ref for ref, version in current.items() if held.get(ref) != version]
    removed = [ref for ref in held if ref not in current]
    return (
        (obj.fetch(client, changed) if changed else []),
        removed,
        ExtractWindow(window.since, "objects whose DataVersion differs from the one stored"),
    )


def _key_of(windowed: Windowed, fields) -> tuple[str, ...]:
    """The merge key as this edition names it ("Recorder|Recorder_Key": whichever the rows read have)."""
    names = []
    for part in windowed.key:
        choices = part.split("|")
        names.append(next((c for c in choices if c in fields), choices[0]))
    return tuple(names)


onec_extracts = [build_onec_extract(obj) for obj in ONEC_OBJECTS]

defs = dg.Definitions(assets=onec_extracts)
