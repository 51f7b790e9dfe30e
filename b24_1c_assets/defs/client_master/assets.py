"""Client master: 1C counterparties matched to CRM companies, the review queue, duplicate groups."""

import os
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import pandas as pd

from b24_1c_assets import settings
from b24_1c_assets.warehouse import append_table, read_table, replace_table
from b24_1c_assets.lib.landing import OWNERS, preview, with_lineage
from b24_1c_assets.lib.resources import WarehouseResource
from b24_1c_assets.lib.job_tags import INCREMENTAL_SYNC
from b24_1c_assets.domain.client_sources import (
    crm_activity, crm_companies_for_matching, onec_activity, onec_counterparties_for_matching,
)
from b24_1c_assets.domain.company_sync import held_back_adds
from b24_1c_assets.domain.duplicates import find_duplicates
from b24_1c_assets.domain.matching import DECISION_COLUMNS, created_in_crm, match_clients
from b24_1c_assets.domain.review_queue import review_queue
from b24_1c_assets.sync.review_decisions import DecisionStore, import_into_warehouse, store_path

CLIENTS = dg.AssetKey(["client_master", "clients"])
CANDIDATES = dg.AssetKey(["client_master", "client_match_candidates"])
DUPLICATES = dg.AssetKey(["client_master", "duplicate_groups"])
FOREIGN = dg.AssetKey(["client_master", "foreign_originators"])
REVIEW_QUEUE = dg.AssetKey(["client_master", "review_queue"])
# 1C documents and settlement movements tell which of two duplicate counterparties is in use.
ACTIVITY_DOCUMENTS = ("customer_orders", "invoices", "shipments", "bank_receipts", "cash_receipts")
UPSTREAM = [dg.AssetKey(["onec", "counterparties"]), dg.AssetKey(["bitrix24", "companies"]),
            dg.AssetKey(["bitrix24", "requisites"]), dg.AssetKey(["bitrix24", "deals"]),
            dg.AssetKey(["onec", "contracts"]), dg.AssetKey(["onec", "settlement_movements"]),
            *(dg.AssetKey(["onec", t]) for t in ACTIVITY_DOCUMENTS)]
SPEC_DEFAULTS = dict(group_name="client_master", kinds={"duckdb"}, owners=OWNERS, deps=UPSTREAM,
                     tags={"flow": "client_master", **INCREMENTAL_SYNC})


def reviewer_decisions(conn, database_path: str, decisions_file: str,
                       decisions_store: str | None = None) -> pd.DataFrame:
    """Decisions from DuckDB table review.client_match_decisions (after importing what the review page
    recorded in its store since the last run) and the reviewers' CSV file, if any."""
    store = DecisionStore(store_path(database_path, decisions_store or "review/client_match_decisions.sqlite"))
    import_into_warehouse(conn, store)
    frames = [read_table(conn, "review", "client_match_decisions")]
    path = Path(database_path).parent / decisions_file
    if path.exists():
        frames.append(pd.read_csv(path, dtype={"onec_ref": str, "company_id": "Int64"}))
    frames = [f[DECISION_COLUMNS] for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=DECISION_COLUMNS)


def portal_origin() -> str | None:
    """scheme://host of the portal (B24_PORTAL_URL or B24_WEBHOOK_URL, as the Bitrix24 resource reads them), for
    company card links: never the webhook's path (it holds the token). No REST call: no resource needed."""
    for url in (os.environ.get("B24_PORTAL_URL", ""), os.environ.get("B24_WEBHOOK_URL", "")):
        parts = urlsplit(url or "")
        if parts.scheme in ("http", "https") and parts.hostname:
            host = parts.hostname + (f":{parts.port}" if parts.port else "")
            return f"{parts.scheme}://{host}"
    return None


def _exact_originators(report: pd.DataFrame, companies: pd.DataFrame) -> pd.DataFrame:
    """The report's ORIGINATOR_IDs as the portal spells them (matching compares them case-folded)."""
    if report.empty or "ORIGINATOR_ID" not in companies.columns:
        return report
    raw = companies["ORIGINATOR_ID"].dropna().astype(str).str.strip()
    spellings = raw.groupby(raw.str.lower()).agg(lambda v: ",".join(sorted(set(v))))
    return report.assign(originator_id=report["originator_id"].map(spellings).fillna(report["originator_id"]))


@dg.multi_asset(
    specs=[
        dg.AssetSpec(CLIENTS, description="Clients, one row per legal entity or branch: the 1C counterparty "
                     "(onec_ref), the CRM company (company_id), INN/KPP/OGRN, the rule that matched "
                     "(match_rule) and its confidence; only_1c / only_crm rows have one side.",
                     **SPEC_DEFAULTS),
        dg.AssetSpec(CANDIDATES, description="The review queue, one row per candidate pair (onec_ref, company_id) "
                     "with the reason (email, phone, name, inn_invalid, inn_conflict ...) and its evidence. Never "
                     "merged automatically: a reviewer accepts or rejects it in review.client_match_decisions "
                     "or the decisions CSV, and later runs honour that.", **SPEC_DEFAULTS),
        dg.AssetSpec(DUPLICATES, description="Duplicate groups inside 1C and inside Bitrix24, one row per record "
                     "in a group (system, group_id, record_id, reason): a merge suggestion for cleaning at the "
                     "source, with the record the client master linked (survivor_id), why, and the CRM "
                     "company card (card_url). Branches (one INN, several KPP) are not duplicates.",
                     **SPEC_DEFAULTS),
        dg.AssetSpec(REVIEW_QUEUE, description="What the review page lists, one row per open candidate pair "
                     "(item 'candidate') or held-back 1C-only client without one (item 'held_back'): both "
                     "records' names, INN/KPP/OGRN, e-mails, phones, addresses, the CRM company's deals, the "
                     "rule and score, why the client is held back.", **SPEC_DEFAULTS),
        dg.AssetSpec(FOREIGN, description="Untrusted ORIGINATOR_IDs found on CRM companies whose ORIGIN_ID is a "
                     "1C GUID (an earlier integration), one row per originator: companies, how many point at a "
                     "live 1C record, linked (id_link_foreign), INN/KPP conflicts, stale refs. An administrator "
                     "adds trusted ones to originator_ids in settings/client_master.toml.", **SPEC_DEFAULTS),
    ],
    pool="duckdb",
)
def client_master(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    config = settings.load("client_master")
    originators = tuple(o.lower() for o in config.get("originator_ids", []))
    with warehouse.connect() as conn:
        onec = onec_counterparties_for_matching(read_table(conn, "onec", "counterparties"))
        companies, requisites = read_table(conn, "bitrix24", "companies"), read_table(conn, "bitrix24", "requisites")
        crm = crm_companies_for_matching(companies, requisites, config.get("onec_ref_field") or None)
        decisions = reviewer_decisions(conn, warehouse.database, config.get("decisions_file", ""),
                                       config.get("decisions_store"))
        onec_raw = read_table(conn, "onec", "counterparties")
        activity_1c = onec_activity([read_table(conn, "onec", t) for t in ACTIVITY_DOCUMENTS],
                                    read_table(conn, "onec", "settlement_movements"),
                                    read_table(conn, "onec", "contracts"))
        activity_crm = crm_activity(companies, read_table(conn, "bitrix24", "deals"), requisites)
    result = match_clients(onec, crm, decisions, originator_ids=originators, onec_activity=activity_1c,
                           crm_activity=activity_crm)
    duplicates = find_duplicates(result.onec, result.crm, originator_ids=originators, survivors=result.survivors,
                                 portal_origin=portal_origin())
    foreign = _exact_originators(result.foreign_originators, companies)
    held = held_back_adds(result.clients, duplicates, result.candidates, created=created_in_crm(decisions))
    queue = review_queue(result.candidates, held, result.onec, result.crm, onec_raw, companies, activity_crm,
                         portal_origin())
    clients = result.clients.assign(
        emails=result.clients["emails"].map(lambda v: ",".join(v) if isinstance(v, list) else v),
        phones=result.clients["phones"].map(lambda v: ",".join(v) if isinstance(v, list) else v))
    rejects = result.rejects.rename(columns={"system": "table", "field": "column", "problem": "rule"})
    rejects = rejects.assign(table="client_master." + rejects["table"].astype(str), critical=False)
    with warehouse.connect() as conn:
        replace_table(conn, "client_master", "clients", with_lineage(clients, context))
        replace_table(conn, "client_master", "client_match_candidates", with_lineage(result.candidates, context))
        replace_table(conn, "client_master", "duplicate_groups", with_lineage(duplicates, context))
        replace_table(conn, "client_master", "foreign_originators", with_lineage(foreign, context))
        replace_table(conn, "client_master", "review_queue", with_lineage(queue, context))
        if not rejects.empty:
            append_table(conn, "quality", "rejects", with_lineage(rejects, context))
    by_rule = clients["match_rule"].value_counts().to_dict()
    yield dg.MaterializeResult(asset_key=CLIENTS, metadata={
        "dagster/row_count": len(clients),
        "matched": int((clients["onec_ref"].notna() & clients["company_id"].notna()).sum()),
        "by_rule": dg.MetadataValue.json({k: int(v) for k, v in by_rule.items()}),
        "rejected_records": len(rejects),
        "preview": preview(clients, ["client_id", "onec_ref", "company_id", "inn", "kpp", "name", "match_rule"])})
    yield dg.MaterializeResult(asset_key=CANDIDATES, metadata={
        "dagster/row_count": len(result.candidates),
        "by_reason": dg.MetadataValue.json({k: int(v) for k, v in
                                            result.candidates["reason"].value_counts().to_dict().items()}),
        "preview": preview(result.candidates, ["onec_ref", "company_id", "reason", "score", "onec_name", "crm_title"])})
    yield dg.MaterializeResult(asset_key=DUPLICATES, metadata={
        "dagster/row_count": len(duplicates),
        "groups": int(duplicates["group_id"].nunique()) if not duplicates.empty else 0,
        "merge_suggestions": int((duplicates["survivor_id"].notna()
                                  & (duplicates["survivor_id"] != duplicates["record_id"])).sum())
        if not duplicates.empty else 0,
        "preview": preview(duplicates, ["system", "record_id", "reason", "survivor_id", "why", "card_url"])})
    yield dg.MaterializeResult(asset_key=REVIEW_QUEUE, metadata={
        "dagster/row_count": len(queue),
        "candidates": int((queue["item"] == "candidate").sum()) if not queue.empty else 0,
        "held_back": int((queue["item"] == "held_back").sum()) if not queue.empty else 0,
        "preview": preview(queue, ["item", "onec_ref", "company_id", "rule", "score", "onec_name", "crm_title"])})
    yield dg.MaterializeResult(asset_key=FOREIGN, metadata={
        "dagster/row_count": len(foreign),
        "originators": ", ".join(foreign["originator_id"].astype(str)) if not foreign.empty else "",
        "linked": int(foreign["linked"].sum()) if not foreign.empty else 0,
        "preview": preview(foreign)})


defs = dg.Definitions(assets=[client_master])
