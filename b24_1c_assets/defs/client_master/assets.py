"""Client master: 1C counterparties matched to CRM companies, the review queue, duplicate groups."""

from pathlib import Path

import dagster as dg
import pandas as pd

from b24_1c_assets import settings
from b24_1c_assets.warehouse import append_table, read_table, replace_table
from b24_1c_assets.defs.extracts import OWNERS, preview, with_lineage
from b24_1c_assets.defs.resources import WarehouseResource
from b24_1c_assets.domain.client_sources import crm_companies_for_matching, onec_counterparties_for_matching
from b24_1c_assets.domain.duplicates import find_duplicates
from b24_1c_assets.domain.matching import DECISION_COLUMNS, match_clients

CLIENTS = dg.AssetKey(["client_master", "clients"])
CANDIDATES = dg.AssetKey(["client_master", "client_match_candidates"])
DUPLICATES = dg.AssetKey(["client_master", "duplicate_groups"])
UPSTREAM = [dg.AssetKey(["onec", "counterparties"]), dg.AssetKey(["bitrix24", "companies"]),
            dg.AssetKey(["bitrix24", "requisites"])]
SPEC_DEFAULTS = dict(group_name="client_master", kinds={"duckdb"}, owners=OWNERS, deps=UPSTREAM,
                     tags={"flow": "client_master"})


def reviewer_decisions(conn, database_path: str, decisions_file: str) -> pd.DataFrame:
    """Decisions from DuckDB table review.client_match_decisions and the reviewers' CSV file, if any."""
    frames = [read_table(conn, "review", "client_match_decisions")]
    path = Path(database_path).parent / decisions_file
    if path.exists():
        frames.append(pd.read_csv(path, dtype={"onec_ref": str, "company_id": "Int64"}))
    frames = [f[DECISION_COLUMNS] for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=DECISION_COLUMNS)


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
                     "in a group (system, group_id, record_id, reason), for cleaning at the source. Branches "
                     "(one INN, several KPP) are not duplicates.", **SPEC_DEFAULTS),
    ],
    pool="duckdb",
)
def client_master(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    config = settings.load("client_master")
    originators = tuple(o.lower() for o in config.get("originator_ids", []))
    with warehouse.connect() as conn:
        onec = onec_counterparties_for_matching(read_table(conn, "onec", "counterparties"))
        crm = crm_companies_for_matching(read_table(conn, "bitrix24", "companies"),
                                         read_table(conn, "bitrix24", "requisites"),
                                         config.get("onec_ref_field") or None)
        decisions = reviewer_decisions(conn, warehouse.database, config.get("decisions_file", ""))
    result = match_clients(onec, crm, decisions, originator_ids=originators)
    duplicates = find_duplicates(result.onec, result.crm, originator_ids=originators)
    clients = result.clients.assign(
        emails=result.clients["emails"].map(lambda v: ",".join(v) if isinstance(v, list) else v),
        phones=result.clients["phones"].map(lambda v: ",".join(v) if isinstance(v, list) else v))
    rejects = result.rejects.rename(columns={"system": "table", "field": "column", "problem": "rule"})
    rejects = rejects.assign(table="client_master." + rejects["table"].astype(str), critical=False)
    with warehouse.connect() as conn:
        replace_table(conn, "client_master", "clients", with_lineage(clients, context))
        replace_table(conn, "client_master", "client_match_candidates", with_lineage(result.candidates, context))
        replace_table(conn, "client_master", "duplicate_groups", with_lineage(duplicates, context))
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
        "preview": preview(duplicates)})


defs = dg.Definitions(assets=[client_master])
