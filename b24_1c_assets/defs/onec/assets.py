"""Raw 1C:UNF extracts: one asset per 1C object, stored with 1C's own field names in schema `onec`.

Read through the standard OData interface when ONEC_ODATA_URL is set: catalogs by fixed `$orderby` +
`$top`/`$skip`, documents and register movements in `Date`/`Period` windows. Money arrives as Decimal and
is stored as DECIMAL, tabular sections (`Запасы`, `КонтактнаяИнформация`) as JSON text.
When it is not set, the same tables are rebuilt from the exchange folder (`exchange_assets.py`).
"""


from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import dagster as dg

from b24_1c_assets.lib import tables
from b24_1c_assets.lib.api_calls import ApiCalls
from b24_1c_assets.lib.landing import CONTRACT_CHECK, OWNERS, contract_check_spec, store_extract
from b24_1c_assets.lib.tables import Table
from b24_1c_assets.defs.onec import publication
from b24_1c_assets.defs.onec.exchange_assets import exchange_extract
from b24_1c_assets.lib.resources import OneCResource, WarehouseResource
from b24_1c_assets.domain.contracts import ONEC_CONTRACTS
from b24_1c_assets.onec import OneCClient, OneCPublicationError, odata
from b24_1c_assets.warehouse import records_frame


@dataclass(frozen=True)
class OneCObject:
    table: Table
    description: str
    fetch: Callable[[OneCClient], list[dict]]
    preview: tuple[str, ...] = ()


ONEC_OBJECTS = (
    OneCObject(tables.ONEC_COUNTERPARTIES,
               "1C counterparties (Catalog_Контрагенты), one row per Ref_Key, with ИНН/КПП, the contact "
               "information section as JSON and the first e-mail / phone taken from it.",
               lambda c: c.counterparties(), ("Ref_Key", "Description", "ИНН", "КПП", "email")),
    OneCObject(tables.ONEC_CONTRACTS,
               "1C counterparty contracts (Catalog_ДоговорыКонтрагентов), one row per Ref_Key, with the owner "
               "(Owner_Key) and the payment term in days (СрокОплатыПокупателя, 0 = not set).",
               lambda c: c.contracts(), ("Ref_Key", "Description", "Owner_Key", "СрокОплатыПокупателя")),
    OneCObject(tables.ONEC_ITEMS, "1C catalog items (Catalog_Номенклатура), one row per Ref_Key.",
               lambda c: c.items(), ("Ref_Key", "Code", "Description", "DeletionMark")),
    OneCObject(tables.ONEC_PRICE_TYPES, "1C price types (Catalog_ВидыЦен), one row per Ref_Key.",
               lambda c: c.price_types(), ("Ref_Key", "Description")),
    OneCObject(tables.ONEC_PRICES,
               "Current item prices (InformationRegister_ЦеныНоменклатуры/SliceLast), one row per item and "
               "price type.", lambda c: c.prices(), ("Номенклатура_Key", "ВидЦен_Key", "Цена")),
    OneCObject(tables.ONEC_CUSTOMER_ORDERS,
               "1C customer orders (Document_ЗаказПокупателя), one row per order (Ref_Key), Запасы as JSON.",
               lambda c: c.documents(odata.ORDERS), ("Number", "Date", "Контрагент_Key", "СуммаДокумента")),
    OneCObject(tables.ONEC_INVOICES, "1C invoices for payment (Document_СчетНаОплату), one row per invoice (Ref_Key).",
               lambda c: c.documents(odata.INVOICES), ("Number", "Date", "Контрагент_Key", "СуммаДокумента")),
    OneCObject(tables.ONEC_SHIPMENTS, "1C shipments (Document_РасходнаяНакладная), one row per shipment (Ref_Key).",
               lambda c: c.documents(odata.SHIPMENTS), ("Number", "Date", "Контрагент_Key", "СуммаДокумента")),
    OneCObject(tables.ONEC_BANK_RECEIPTS,
               "Money received to the bank (Document_ПоступлениеНаСчет), one row per document (Ref_Key).",
               lambda c: c.documents(odata.BANK_RECEIPTS), ("Number", "Date", "Контрагент_Key", "СуммаДокумента")),
    OneCObject(tables.ONEC_CASH_RECEIPTS,
               "Money received at the cash desk (Document_ПоступлениеВКассу), one row per document (Ref_Key).",
               lambda c: c.documents(odata.CASH_RECEIPTS), ("Number", "Date", "Контрагент_Key", "СуммаДокумента")),
    OneCObject(tables.ONEC_SETTLEMENT_MOVEMENTS,
               "Movements of the customer settlements register (РасчетыСПокупателями), one row per recorder "
               "and line: Receipt/Expense of Долг/Аванс per counterparty and contract.",
               lambda c: c.settlement_movements(), ("Period", "RecordType", "Контрагент_Key", "ТипРасчетов", "Сумма")),
    OneCObject(tables.ONEC_INVOICE_PAYMENTS,
               "Movements of ОплатаСчетовИЗаказов, one row per recorder and line: what each invoice or order "
               "asks (Сумма) and what was paid against it (СуммаОплаты, СуммаАванса).",
               lambda c: c.invoice_payments(), ("Period", "СчетНаОплату", "Сумма", "СуммаОплаты")),
    OneCObject(tables.ONEC_RECEIVABLES_BALANCE,
               "1C's own settlements balance (РасчетыСПокупателями/Balance) at extraction time, one row per "
               "counterparty, contract, document and settlement type with a non-zero СуммаBalance.",
               lambda c: c.receivables_balance(), ("Контрагент_Key", "Договор_Key", "ТипРасчетов", "СуммаBalance")),
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
        tags={"flow": "extract", "source": "1c"},
        deps=[tables.EXCHANGE_FILES.key],  # a no-op with OData; with the exchange folder it stages new files first
    )
    def _extract(context: dg.AssetExecutionContext, onec: OneCResource,
                 warehouse: WarehouseResource) -> dg.MaterializeResult:
        if not onec.uses_odata:
            return exchange_extract(context, warehouse, obj.table, ONEC_CONTRACTS[obj.table.name], list(obj.preview))
        client = onec.client()
        calls = ApiCalls(client)
        try:
            records = obj.fetch(client)
        except OneCPublicationError as exc:
            if obj.table.name in publication.ESSENTIAL:
                raise
            # Not published: what needs it is skipped (onec/publication.py), the rest of the run goes on.
            with warehouse.connect() as conn:
                publication.record(conn, obj.table.name, str(exc))
            context.log.warning(f"{obj.table} not extracted: {exc}")
            return dg.MaterializeResult(
                metadata={"published": False, "not_published": str(exc),
                          "api_calls": calls.count},
                check_results=[dg.AssetCheckResult(check_name=CONTRACT_CHECK, passed=False,
                                                   severity=dg.AssetCheckSeverity.WARN,
                                                   metadata={"not_published": str(exc)})])
        with warehouse.connect() as conn:
            publication.record(conn, obj.table.name, None)
        return store_extract(context, warehouse, obj.table, records_frame(records),
                             contract=ONEC_CONTRACTS[obj.table.name], api_calls=calls.count,
                             preview_columns=list(obj.preview),
                             extra={"source": "odata", "extracted_at": datetime.now().isoformat(timespec="seconds")})

    return _extract


onec_extracts = [build_onec_extract(obj) for obj in ONEC_OBJECTS]

defs = dg.Definitions(assets=onec_extracts)
