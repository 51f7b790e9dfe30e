"""Every DuckDB table the product writes, named once: schema, name and the asset that writes it.

Reads, writes and `deps` lists take an entry instead of repeating strings, so renaming a table or moving it to
another schema is one edit here:

    tables.ONEC_COUNTERPARTIES.read(conn)
    tables.CLIENTS.replace(conn, frame)
    deps=[tables.CLIENTS.key]
    conn.execute(f"SELECT ... FROM {tables.HOLD_STATE}")   # str() is the SQL name schema.table

Most tables are their asset (key = [schema, name]); a table written by another asset (the hold state is
written by the deal-hold push) names that asset as `writer`. Assets with no table of their own (the pushes
write the CRM or 1C and `sync.results`) are `Asset` entries, with the same `.key`.
No Dagster import at module level: the HTTP service reads tables through this module too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from b24_1c_assets import warehouse


def _asset_key(path):
    import dagster as dg

    return dg.AssetKey(list(path))


@dataclass(frozen=True)
class Asset:
    """An asset that writes no DuckDB table of its own."""

    path: tuple[str, ...]

    @property
    def key(self):
        return _asset_key(self.path)


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    writer: tuple[str, ...] | None = None  # the asset that writes it, when not [schema, name]
    has_asset: bool = True  # False: written outside Dagster assets (the review page, the journal)

    @property
    def key(self):
        """The asset that writes this table (a dagster AssetKey): what readers put in `deps`."""
        if not self.has_asset:
            raise ValueError(f"{self} is not written by an asset; depend on what writes it instead")
        return _asset_key(self.writer or (self.schema, self.name))

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"

    def read(self, conn) -> pd.DataFrame:
        """The whole table, or an empty frame when it does not exist yet."""
        return warehouse.read_table(conn, self.schema, self.name)

    def exists(self, conn) -> bool:
        return warehouse.table_exists(conn, self.schema, self.name)

    def columns(self, conn) -> set[str]:
        """Column names of the stored table (empty when it does not exist yet)."""
        return set(warehouse.stored_columns(conn, self.schema, self.name))

    def replace(
        self, conn, frame: pd.DataFrame | warehouse.StagedRows, *, column_types: dict[str, str] | None = None
    ) -> int:
        return warehouse.replace_table(conn, self.schema, self.name, frame, column_types=column_types)

    def merge(self, conn, frame: pd.DataFrame | warehouse.StagedRows, **how) -> warehouse.MergeCounts:
        """Upsert a partial re-read by key (`warehouse.merge_table`: key, date_column/since, removed_keys)."""
        return warehouse.merge_table(conn, self.schema, self.name, frame, **how)

    def replace_rows(self, conn, frame: pd.DataFrame, *, column: str, values, column_types=None) -> int:
        """Replace every row whose `column` is one of `values` (`warehouse.replace_rows`)."""
        return warehouse.replace_rows(
            conn, self.schema, self.name, frame, column=column, values=values, column_types=column_types
        )

    def append(self, conn, frame: pd.DataFrame, *, column_types: dict[str, str] | None = None) -> int:
        return warehouse.append_table(conn, self.schema, self.name, frame, column_types=column_types)

    def replace_partition(
        self, conn, frame: pd.DataFrame, *, column: str, value: Any, column_types: dict[str, str] | None = None
    ) -> int:
        return warehouse.replace_partition(
            conn, self.schema, self.name, frame, column=column, value=value, column_types=column_types
        )


# -- raw Bitrix24 extracts (defs/bitrix24/assets.py) --------------------------------------------------------
BITRIX24_COMPANIES = Table("bitrix24", "companies")
BITRIX24_REQUISITES = Table("bitrix24", "requisites")
BITRIX24_CONTACTS = Table("bitrix24", "contacts")
BITRIX24_DEALS = Table("bitrix24", "deals")
BITRIX24_PRODUCTS = Table("bitrix24", "products")
BITRIX24_SMART_INVOICES = Table("bitrix24", "smart_invoices")
BITRIX24_USERS = Table("bitrix24", "users")

# -- raw 1C extracts (defs/onec/assets.py, or the exchange folder) -------------------------------------------
ONEC_COUNTERPARTIES = Table("onec", "counterparties")
ONEC_CONTRACTS = Table("onec", "contracts")
ONEC_ITEMS = Table("onec", "items")
ONEC_PRICE_TYPES = Table("onec", "price_types")
ONEC_PRICES = Table("onec", "prices")
ONEC_CUSTOMER_ORDERS = Table("onec", "customer_orders")
ONEC_INVOICES = Table("onec", "invoices")
ONEC_SHIPMENTS = Table("onec", "shipments")
ONEC_BANK_RECEIPTS = Table("onec", "bank_receipts")
ONEC_CASH_RECEIPTS = Table("onec", "cash_receipts")
ONEC_SETTLEMENT_MOVEMENTS = Table("onec", "settlement_movements")
ONEC_INVOICE_PAYMENTS = Table("onec", "invoice_payments")
ONEC_RECEIVABLES_BALANCE = Table("onec", "receivables_balance")
# which objects the OData publication lacks, one row per extract; every 1C extract writes its own row
ONEC_PUBLICATION = Table("onec", "publication", has_asset=False)
# the exchange folder's staged rows and file log (asset onec/exchange_files)
EXCHANGE_FILES = Asset(("onec", "exchange_files"))
EXCHANGE_RECORDS = Table("onec_exchange", "records", writer=("onec", "exchange_files"))
EXCHANGE_FILE_LOG = Table("onec_exchange", "files", writer=("onec", "exchange_files"))

# -- the client master (defs/client_master) ------------------------------------------------------------------
CLIENTS = Table("client_master", "clients")
CLIENT_MATCH_CANDIDATES = Table("client_master", "client_match_candidates")
DUPLICATE_GROUPS = Table("client_master", "duplicate_groups")
FOREIGN_ORIGINATORS = Table("client_master", "foreign_originators")
REVIEW_QUEUE = Table("client_master", "review_queue")
# reviewers' decisions: the review page's store is imported here by the client-master run
CLIENT_MATCH_DECISIONS = Table("review", "client_match_decisions", has_asset=False)
MANUAL_RELEASES = Table("review", "manual_releases", has_asset=False)

# -- receivables (defs/receivables; the hold tables are written by the deal-hold push) -----------------------
RECEIVABLES_SNAPSHOT = Table("receivables", "receivables_snapshot")
CLIENT_CREDIT_STATUS = Table("receivables", "client_credit_status")
FINANCE_DIGEST = Table("receivables", "finance_digest")
HOLD_STATE = Table("receivables", "hold_state", writer=("crm_push", "deal_holds"))
SUSPENDED_DEALS = Table("receivables", "suspended_deals", writer=("crm_push", "deal_holds"))
HOLD_TRANSITIONS = Table("receivables", "hold_transitions", writer=("crm_push", "deal_holds"))

# -- push plans (one per push; the push asset reads it back) -------------------------------------------------
COMPANY_RECEIVABLES_PLAN = Table("crm_push", "company_receivables_plan")
DEAL_HOLD_MOVES = Table("crm_push", "deal_hold_moves", writer=("crm_push", "deal_hold_plan"))
DEAL_HOLD_STATE_PLAN = Table("crm_push", "deal_hold_state_plan", writer=("crm_push", "deal_hold_plan"))
DEAL_HOLD_SUSPENDED_PLAN = Table("crm_push", "deal_hold_suspended_plan", writer=("crm_push", "deal_hold_plan"))
HOLD_TRANSITION_PLAN = Table("crm_push", "hold_transition_plan", writer=("crm_push", "deal_hold_plan"))
PRODUCT_PLAN = Table("crm_push", "product_plan")
SMART_INVOICE_PLAN = Table("crm_push", "smart_invoice_plan")
COMPANY_FROM_1C_PLAN = Table("crm_push", "company_from_1c_plan")
ORDER_PLAN = Table("onec_push", "order_plan")
COUNTERPARTY_FROM_CRM_PLAN = Table("onec_push", "counterparty_from_crm_plan")

# -- the write journal and quality (sync/journal.py, lib/landing.py) -----------------------------------------
SYNC_RESULTS = Table("sync", "results", has_asset=False)
SYNC_PUSH_STATE = Table("sync", "push_state", has_asset=False)
SYNC_EXTRACT_STATE = Table("sync", "extract_state", has_asset=False)
QUALITY_REJECTS = Table("quality", "rejects", has_asset=False)

# -- the analyst views (schema analytics; created by asset analytics/views) ----------------------------------
ANALYTICS_VIEWS = Asset(("analytics", "views"))
ANALYST_COPY = Asset(("analytics", "analyst_copy"))  # a separate DuckDB file, not a table here
# in the analysts' copy: when it was published, by which run
ANALYST_COPY_PUBLICATION = Table("meta", "publication", writer=("analytics", "analyst_copy"))
BALANCE_RECONCILIATION = Table("analytics", "balance_reconciliation", writer=("analytics", "views"))
DEAD_LETTERS = Table("analytics", "dead_letters", writer=("analytics", "views"))
# failed runs, one row per run (the run-failure sensor; DDL in domain/analytics_sql.py)
RUN_FAILURES = Table("ops", "run_failures", has_asset=False)

# -- the pushes (they write the CRM or 1C and sync.results) and the deal-hold plan (its four tables above) ----
PUSH_COMPANY_RECEIVABLES = Asset(("crm_push", "company_receivables"))
DEAL_HOLD_PLAN = Asset(("crm_push", "deal_hold_plan"))
PUSH_DEAL_HOLDS = Asset(("crm_push", "deal_holds"))
PUSH_PRODUCTS = Asset(("crm_push", "products"))
PUSH_SMART_INVOICES = Asset(("crm_push", "smart_invoices"))
PUSH_COMPANIES_FROM_1C = Asset(("crm_push", "companies_from_1c"))
PUSH_CUSTOMER_ORDERS = Asset(("onec_push", "customer_orders"))
PUSH_COUNTERPARTIES_FROM_CRM = Asset(("onec_push", "counterparties_from_crm"))

BITRIX24_EXTRACTS = {
    t.name: t
    for t in (
        BITRIX24_COMPANIES,
        BITRIX24_REQUISITES,
        BITRIX24_CONTACTS,
        BITRIX24_DEALS,
        BITRIX24_PRODUCTS,
        BITRIX24_SMART_INVOICES,
        BITRIX24_USERS,
    )
}
ONEC_EXTRACTS = {
    t.name: t
    for t in (
        ONEC_COUNTERPARTIES,
        ONEC_CONTRACTS,
        ONEC_ITEMS,
        ONEC_PRICE_TYPES,
        ONEC_PRICES,
        ONEC_CUSTOMER_ORDERS,
        ONEC_INVOICES,
        ONEC_SHIPMENTS,
        ONEC_BANK_RECEIPTS,
        ONEC_CASH_RECEIPTS,
        ONEC_SETTLEMENT_MOVEMENTS,
        ONEC_INVOICE_PAYMENTS,
        ONEC_RECEIVABLES_BALANCE,
    )
}


def onec_extract(name: str) -> Table:
    """The raw 1C table `onec.<name>` (names as domain/exchange_records.py and the publication use them)."""
    return ONEC_EXTRACTS[name]


def all_tables() -> list[Table]:
    return [value for value in globals().values() if isinstance(value, Table)]
