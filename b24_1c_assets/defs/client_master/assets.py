"""Client master: 1C counterparties matched to CRM companies, the review queue, duplicate groups."""

import os
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import pandas as pd

from b24_1c_assets import settings
from b24_1c_assets.defs.client_master import reads
from b24_1c_assets.domain.client_sources import (
    crm_activity,
    crm_companies_for_matching,
    onec_counterparties_for_matching,
)
from b24_1c_assets.domain.company_sync import held_back_adds
from b24_1c_assets.domain.duplicates import find_duplicates
from b24_1c_assets.domain.matching import DECISION_COLUMNS, created_in_crm, match_clients
from b24_1c_assets.domain.review_queue import review_queue
from b24_1c_assets.lib import tables
from b24_1c_assets.lib.job_tags import INCREMENTAL_SYNC
from b24_1c_assets.lib.landing import OWNERS, preview, with_lineage
from b24_1c_assets.lib.resources import WarehouseResource
from b24_1c_assets.sync.review_decisions import DecisionStore, import_into_warehouse, store_path

UPSTREAM = [
    t.key
    for t in (
        tables.ONEC_COUNTERPARTIES,
        tables.BITRIX24_COMPANIES,
        tables.BITRIX24_REQUISITES,
        tables.BITRIX24_DEALS,
        tables.ONEC_CONTRACTS,
        tables.ONEC_SETTLEMENT_MOVEMENTS,
        *reads.ACTIVITY_DOCUMENTS,
    )
]
SPEC_DEFAULTS = dict(
    group_name="client_master",
    kinds={"duckdb"},
    owners=OWNERS,
    deps=UPSTREAM,
    tags={"flow": "client_master", **INCREMENTAL_SYNC},
)


def reviewer_decisions(conn, database_path: str, decisions_file: str, decisions_store: str) -> pd.DataFrame:
    """Decisions from DuckDB table review.client_match_decisions (after importing what the review page
    recorded in its store since the last run) and the reviewers' CSV file, if any."""
    store = DecisionStore(store_path(database_path, decisions_store))
    import_into_warehouse(conn, store)
    frames = [tables.CLIENT_MATCH_DECISIONS.read(conn)]
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
        dg.AssetSpec(
            tables.CLIENTS.key,
            **SPEC_DEFAULTS,
            description=(
                "Clients, one row per legal entity or branch: the 1C counterparty (onec_ref), the CRM company "
                "(company_id), INN/KPP/OGRN, the rule that matched (match_rule) and its confidence; only_1c / "
                "only_crm rows have one side."
            ),
        ),
        dg.AssetSpec(
            tables.CLIENT_MATCH_CANDIDATES.key,
            **SPEC_DEFAULTS,
            description=(
                "The review queue, one row per candidate pair (onec_ref, company_id) with the reason (email, "
                "phone, name, inn_invalid, inn_conflict ...) and its evidence. Never merged automatically: a "
                "reviewer accepts or rejects it in review.client_match_decisions or the decisions CSV, and later "
                "runs honour that."
            ),
        ),
        dg.AssetSpec(
            tables.DUPLICATE_GROUPS.key,
            **SPEC_DEFAULTS,
            description=(
                "Duplicate groups inside 1C and inside Bitrix24, one row per record in a group (system, "
                "group_id, record_id, reason): a merge suggestion for cleaning at the source, with the record "
                "the client master linked (survivor_id), why, and the CRM company card (card_url). Branches (one "
                "INN, several KPP) are not duplicates."
            ),
        ),
        dg.AssetSpec(
            tables.REVIEW_QUEUE.key,
            **SPEC_DEFAULTS,
            description=(
                "What the review page lists, one row per open candidate pair (item 'candidate') or held-back "
                "1C-only client without one (item 'held_back'): both records' names, INN/KPP/OGRN, e-mails, "
                "phones, addresses, the CRM company's deals, the rule and score, why the client is held back."
            ),
        ),
        dg.AssetSpec(
            tables.FOREIGN_ORIGINATORS.key,
            **SPEC_DEFAULTS,
            description=(
                "Untrusted ORIGINATOR_IDs found on CRM companies whose ORIGIN_ID is a 1C GUID (an earlier "
                "integration), one row per originator: companies, how many point at a live 1C record, linked "
                "(id_link_foreign), INN/KPP conflicts, stale refs. An administrator adds trusted ones to "
                "originator_ids in settings/client_master.toml."
            ),
        ),
    ],
    pool="duckdb",
)
def client_master(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    config = settings.client_master()
    originators = tuple(o.lower() for o in config.originator_ids)
    with warehouse.connect() as conn:
        # only the columns the matcher reads; documents, movements, contracts and deals counted in DuckDB
        onec = onec_counterparties_for_matching(
            reads.read_columns(conn, tables.ONEC_COUNTERPARTIES, reads.COUNTERPARTY_COLUMNS)
        )
        company_columns = (*reads.COMPANY_COLUMNS, *([config.onec_ref_field] if config.onec_ref_field else []))
        companies = reads.read_columns(conn, tables.BITRIX24_COMPANIES, company_columns)
        requisites = reads.read_columns(conn, tables.BITRIX24_REQUISITES, reads.REQUISITE_COLUMNS)
        crm = crm_companies_for_matching(companies, requisites, config.onec_ref_field or None)
        decisions = reviewer_decisions(conn, warehouse.database, config.decisions_file, config.decisions_store)
        activity_1c = reads.onec_activity(conn)
        activity_crm = crm_activity(companies, reads.deal_counts(conn), requisites)
    result = match_clients(
        onec, crm, decisions, originator_ids=originators, onec_activity=activity_1c, crm_activity=activity_crm
    )
    duplicates = find_duplicates(
        result.onec, result.crm, originator_ids=originators, survivors=result.survivors, portal_origin=portal_origin()
    )
    foreign = _exact_originators(result.foreign_originators, companies)
    held = held_back_adds(result.clients, duplicates, result.candidates, created=created_in_crm(decisions))
    with warehouse.connect() as conn:  # addresses of the records the queue lists, not of every counterparty
        contacts = reads.counterparty_contacts(conn, {*result.candidates["onec_ref"].astype(str), *held})
    queue = review_queue(
        result.candidates, held, result.onec, result.crm, contacts, companies, activity_crm, portal_origin()
    )
    clients = result.clients.assign(
        emails=result.clients["emails"].map(lambda v: ",".join(v) if isinstance(v, list) else v),
        phones=result.clients["phones"].map(lambda v: ",".join(v) if isinstance(v, list) else v),
    )
    rejects = result.rejects.rename(columns={"system": "table", "field": "column", "problem": "rule"})
    rejects = rejects.assign(table="client_master." + rejects["table"].astype(str), critical=False)
    with warehouse.connect() as conn:
        tables.CLIENTS.replace(conn, with_lineage(clients, context))
        tables.CLIENT_MATCH_CANDIDATES.replace(conn, with_lineage(result.candidates, context))
        tables.DUPLICATE_GROUPS.replace(conn, with_lineage(duplicates, context))
        tables.FOREIGN_ORIGINATORS.replace(conn, with_lineage(foreign, context))
        tables.REVIEW_QUEUE.replace(conn, with_lineage(queue, context))
        if not rejects.empty:
            tables.QUALITY_REJECTS.append(conn, with_lineage(rejects, context))
    by_rule = clients["match_rule"].value_counts().to_dict()
    yield dg.MaterializeResult(
        asset_key=tables.CLIENTS.key,
        metadata={
            "dagster/row_count": len(clients),
            "matched": int((clients["onec_ref"].notna() & clients["company_id"].notna()).sum()),
            "by_rule": dg.MetadataValue.json({k: int(v) for k, v in by_rule.items()}),
            "rejected_records": len(rejects),
            "preview": preview(clients, ["client_id", "onec_ref", "company_id", "inn", "kpp", "name", "match_rule"]),
        },
    )
    yield dg.MaterializeResult(
        asset_key=tables.CLIENT_MATCH_CANDIDATES.key,
        metadata={
            "dagster/row_count": len(result.candidates),
            "by_reason": dg.MetadataValue.json(
                {k: int(v) for k, v in result.candidates["reason"].value_counts().to_dict().items()}
            ),
            "preview": preview(
                result.candidates, ["onec_ref", "company_id", "reason", "score", "onec_name", "crm_title"]
            ),
        },
    )
    yield dg.MaterializeResult(
        asset_key=tables.DUPLICATE_GROUPS.key,
        metadata={
            "dagster/row_count": len(duplicates),
            "groups": int(duplicates["group_id"].nunique()) if not duplicates.empty else 0,
            "merge_suggestions": int(
                (duplicates["survivor_id"].notna() & (duplicates["survivor_id"] != duplicates["record_id"])).sum()
            )
            if not duplicates.empty
            else 0,
            "preview": preview(duplicates, ["system", "record_id", "reason", "survivor_id", "why", "card_url"]),
        },
    )
    yield dg.MaterializeResult(
        asset_key=tables.REVIEW_QUEUE.key,
        metadata={
            "dagster/row_count": len(queue),
            "candidates": int((queue["item"] == "candidate").sum()) if not queue.empty else 0,
            "held_back": int((queue["item"] == "held_back").sum()) if not queue.empty else 0,
            "preview": preview(queue, ["item", "onec_ref", "company_id", "rule", "score", "onec_name", "crm_title"]),
        },
    )
    yield dg.MaterializeResult(
        asset_key=tables.FOREIGN_ORIGINATORS.key,
        metadata={
            "dagster/row_count": len(foreign),
            "originators": ", ".join(foreign["originator_id"].astype(str)) if not foreign.empty else "",
            "linked": int(foreign["linked"].sum()) if not foreign.empty else 0,
            "preview": preview(foreign),
        },
    )


defs = dg.Definitions(assets=[client_master])
