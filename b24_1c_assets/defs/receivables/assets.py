"""Receivables control: the daily receivables snapshot and each client's credit status."""

from datetime import date
from decimal import Decimal
from typing import NamedTuple

import dagster as dg
import pandas as pd

from b24_1c_assets import settings
from b24_1c_assets.defs.client_master.reads import COMPANIES_FROM_1C, current_clients, read_columns
from b24_1c_assets.defs.receivables import reads
from b24_1c_assets.domain.contracts import ONEC_CONTRACTS
from b24_1c_assets.domain.credit_policy import CreditPolicy, assess
from b24_1c_assets.domain.receivables import receivables_by_counterparty, to_kopecks
from b24_1c_assets.lib import tables
from b24_1c_assets.lib.api_calls import ApiCalls
from b24_1c_assets.lib.landing import OWNERS, checked_rows, preview, with_lineage
from b24_1c_assets.lib.partitions import daily_partitions
from b24_1c_assets.lib.resources import OneCResource, WarehouseResource
from b24_1c_assets.warehouse import records_frame

SNAPSHOT, CREDIT_STATUS = tables.RECEIVABLES_SNAPSHOT.key, tables.CLIENT_CREDIT_STATUS.key
BALANCE_CHECK = "balance_equals_1c"
UPSTREAM = [
    *(
        t.key
        for t in (
            tables.ONEC_SETTLEMENT_MOVEMENTS,
            tables.ONEC_RECEIVABLES_BALANCE,
            tables.ONEC_CONTRACTS,
            tables.ONEC_CUSTOMER_ORDERS,
            tables.CLIENTS,
            tables.BITRIX24_COMPANIES,
        )
    ),
    COMPANIES_FROM_1C,
]
SPEC = dict(
    group_name="receivables",
    kinds={"duckdb"},
    owners=OWNERS,
    deps=UPSTREAM,
    partitions_def=daily_partitions,
    tags={"flow": "receivables"},
)


CLIENT_COLUMNS = ["client_id", "onec_ref", "company_id", "inn", "kpp", "name", "assigned_by_id"]


class Inputs(NamedTuple):
    """What a day's snapshot is made of: the register aged in DuckDB, 1C's Balance, the clients."""

    by_contract: pd.DataFrame  # receivables.SNAPSHOT_COLUMNS
    balances: pd.DataFrame  # per counterparty, contract, settlement type from the movements, in kopecks
    raw_balance: pd.DataFrame  # 1C's own Balance as extracted
    clients: pd.DataFrame
    companies: pd.DataFrame  # ID and the CRM limit field, when settings name one


def read_inputs(conn, day: date, policy: CreditPolicy) -> Inputs:
    """The snapshot's inputs of `day`: aggregates from DuckDB, only the columns used from the other tables."""
    limit_field = policy.crm_limit_field
    return Inputs(
        by_contract=reads.by_contract(conn, day, policy.aging),
        balances=reads.balances(conn, day),
        raw_balance=reads.raw_balance(conn),
        clients=current_clients(conn, CLIENT_COLUMNS),
        companies=read_columns(conn, tables.BITRIX24_COMPANIES, ["ID", limit_field]) if limit_field else pd.DataFrame(),
    )


def client_frame(clients: pd.DataFrame, companies: pd.DataFrame, limit_field: str | None) -> pd.DataFrame:
    """onec_ref -> client identity, responsible manager and the CRM limit field's value."""
    frame = clients[clients["onec_ref"].notna()][CLIENT_COLUMNS].copy()
    frame["crm_limit"] = None
    if limit_field and not companies.empty and limit_field in companies.columns:
        limits = dict(zip(companies["ID"].astype(int), companies[limit_field]))
        frame["crm_limit"] = frame["company_id"].map(lambda c: limits.get(int(c)) if pd.notna(c) else None)
    return frame


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            SNAPSHOT,
            description="Receivables per day, one row per (snapshot_date, counterparty, contract): "
            "balance (debt minus advances, to the kopeck), debt, advances, overdue amount and days, aging "
            "buckets by due date (current, 1-30, 31-60, 61-90, 90+), oldest due date, and any part of "
            "1C's debt the movements could not age (unexplained).",
            **SPEC,
        ),
        dg.AssetSpec(
            CREDIT_STATUS,
            description="Credit status per day, one row per (snapshot_date, client): the "
            "client's balance, overdue and aging over all its contracts, its credit limit (settings or "
            "CRM field), utilisation, and status ok / warning / hold with the reasons.",
            **SPEC,
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            BALANCE_CHECK,
            asset=SNAPSHOT,
            blocking=True,
            description="Balances rebuilt from movements equal 1C's own Balance to the "
            "kopeck for every counterparty (on the day of the extract).",
        )
    ],
    pool="duckdb",
)
def receivables_snapshot(context: dg.AssetExecutionContext, warehouse: WarehouseResource, onec: OneCResource):
    day = date.fromisoformat(context.partition_key)
    policy = settings.credit_policy()
    with warehouse.connect() as conn:
        inputs = read_inputs(conn, day, policy)
    by_contract, status = _snapshot(inputs, day, policy)
    re_read = {}
    mismatched = mismatched_counterparties(inputs.balances, inputs.raw_balance, day)
    if len(mismatched) and onec.uses_odata:
        # Incremental extracts miss a document backdated or unposted before their window: re-read these
        # clients' whole settlement history from 1C, then judge (domain/extract_window.py).
        re_read = re_read_movements(context, onec, warehouse, sorted(mismatched.index))
        if re_read:
            with warehouse.connect() as conn:
                inputs = read_inputs(conn, day, policy)
            by_contract, status = _snapshot(inputs, day, policy)

    with warehouse.connect() as conn:
        tables.RECEIVABLES_SNAPSHOT.replace_partition(conn, by_contract, column="snapshot_date", value=day)
        tables.CLIENT_CREDIT_STATUS.replace_partition(conn, status, column="snapshot_date", value=day)

    check = balance_check(inputs.balances, inputs.raw_balance, day, re_read=re_read)
    counts = status["status"].value_counts().to_dict()
    yield dg.MaterializeResult(
        asset_key=SNAPSHOT,
        metadata={
            "dagster/partition_row_count": len(by_contract),
            "total_balance": float(sum(by_contract["balance"], Decimal(0))),
            "total_overdue": float(sum(by_contract["overdue_amount"], Decimal(0))),
            "preview": preview(
                by_contract, ["counterparty_ref", "balance", "overdue_amount", "days_overdue", "aging_90_plus"]
            ),
        },
    )
    yield dg.MaterializeResult(
        asset_key=CREDIT_STATUS,
        metadata={
            "dagster/partition_row_count": len(status),
            "hold": int(counts.get("hold", 0)),
            "warning": int(counts.get("warning", 0)),
            "ok": int(counts.get("ok", 0)),
            "preview": preview(
                status.sort_values("balance", ascending=False),
                ["name", "inn", "balance", "credit_limit", "days_overdue", "status"],
            ),
        },
    )
    yield check


def _snapshot(inputs: Inputs, day: date, policy: CreditPolicy) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(receivables by contract, credit status per client) of `day`."""
    by_contract = inputs.by_contract.copy()
    by_counterparty = receivables_by_counterparty(by_contract)
    who = client_frame(inputs.clients, inputs.companies, policy.crm_limit_field)
    per_client = who.merge(by_counterparty, left_on="onec_ref", right_on="counterparty_ref", how="left")
    money = [c for c in by_counterparty.columns if c not in ("counterparty_ref", "days_overdue", "oldest_due_date")]
    for col in money:  # a client with no settlements owes nothing
        per_client[col] = per_client[col].map(lambda v: v if isinstance(v, Decimal) else Decimal("0.00"))
    # object dtype after the left merge: numeric first, so a client without settlements gets 0 (not a downcast)
    per_client["days_overdue"] = pd.to_numeric(per_client["days_overdue"]).fillna(0).astype(int)
    status = assess(per_client, policy, day).drop(columns=["counterparty_ref"])
    by_contract.insert(0, "snapshot_date", day)
    status.insert(0, "snapshot_date", day)
    return by_contract, status


def re_read_movements(context, onec: OneCResource, warehouse: WarehouseResource, refs: list[str]) -> dict:
    """Every settlement movement of these counterparties read again from 1C and swapped into
    onec.settlement_movements; {} when there are more than settings allow (a full extract is then the cure)."""
    limit = settings.extracts().max_balance_rereads
    if len(refs) > limit:
        context.log.warning(
            f"{len(refs)} counterparties disagree with 1C's balance: over the {limit} re-read one by "
            "one; run the extracts with tag b24_1c/full_extract=true"
        )
        return {}
    client = onec.client()
    calls = ApiCalls(client)
    records = client.settlement_movements(counterparties=refs)
    # through the extract's own data contract: a bad movement is quarantined here as it is at extraction
    table = tables.ONEC_SETTLEMENT_MOVEMENTS
    frame, rejects = checked_rows(context, table, records_frame(records), ONEC_CONTRACTS[table.name])
    with warehouse.connect() as conn:
        table.replace_rows(conn, frame, column="Контрагент_Key", values=refs)
        if not rejects.empty:
            tables.QUALITY_REJECTS.append(conn, with_lineage(rejects, context))
    context.log.info(f"re-read the settlement history of {len(refs)} counterparties: {len(frame)} movements")
    return {"re_read_counterparties": len(refs), "re_read_movements": len(frame), "re_read_requests": calls.count}


def balance_read_on(raw_balance: pd.DataFrame) -> date | None:
    """The day 1C's Balance was extracted (None when it holds no row): the only day it can be compared on."""
    return pd.to_datetime(raw_balance["_extracted_at"]).dt.date.max() if not raw_balance.empty else None


def mismatched_counterparties(balances: pd.DataFrame, raw_balance: pd.DataFrame, day: date) -> pd.DataFrame:
    """Counterparties whose balance from movements differs from 1C's Balance, in kopecks (ours, onec); empty
    when the Balance was not read on `day` (a past day is rebuilt from movements only)."""
    extracted_on = balance_read_on(raw_balance)
    if extracted_on is None or day < extracted_on:
        return pd.DataFrame(columns=["ours", "onec"])
    ours = balances.groupby("counterparty_ref")["kopecks"].sum()
    theirs = raw_balance.assign(k=to_kopecks(raw_balance["amount"])).groupby("Контрагент_Key")["k"].sum()
    joined = pd.concat([ours.rename("ours"), theirs.rename("onec")], axis=1).fillna(0)
    return joined[joined["ours"] != joined["onec"]]


def balance_check(
    balances: pd.DataFrame, raw_balance: pd.DataFrame, day: date, *, re_read: dict | None = None
) -> dg.AssetCheckResult:
    """Per counterparty, balance from movements vs 1C's Balance; only meaningful on the extract's day."""
    extracted_on = balance_read_on(raw_balance)
    if extracted_on is None or day < extracted_on:
        return dg.AssetCheckResult(
            check_name=BALANCE_CHECK,
            passed=True,
            metadata={
                "compared": 0,
                "note": f"1C Balance was read on {extracted_on}; a past day is rebuilt from movements only",
            },
        )
    diff = mismatched_counterparties(balances, raw_balance, day)
    compared = len(set(balances["counterparty_ref"]) | set(raw_balance["Контрагент_Key"]))
    return dg.AssetCheckResult(
        check_name=BALANCE_CHECK,
        passed=diff.empty,
        metadata={
            "compared": compared,
            "mismatched": len(diff),
            **(re_read or {}),
            "sample": dg.MetadataValue.md((diff.head(10) / 100).to_markdown() if not diff.empty else "_(none)_"),
        },
    )


defs = dg.Definitions(assets=[receivables_snapshot])
