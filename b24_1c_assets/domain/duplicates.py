"""Duplicate groups inside one system (1C or Bitrix24), for cleaning at the source. Pure pandas.

A group is a set of records of one system sharing a key; a record may sit in several groups (one per
reason). Reasons:

* ``inn_kpp`` - same valid INN and same KPP (both absent counts as same: two ИП records with one INN).
* ``name_inn_kpp_missing`` - same name_key and valid INN where at least one record lacks a KPP, so KPP
  cannot tell them apart (a KPP-less record may duplicate the head office or a branch).
* ``name_no_inn`` - same name_key (>= 3 chars) among records without a valid INN.
* ``id_link`` (CRM only) - several companies hold the link to the same 1C record.

**Branches are not duplicates:** records with one INN and *different* KPPs never form an ``inn_kpp``
group, and a name+INN group needs a KPP-less member. Deletion-marked 1C records are left out (1C is
already removing them). Input: the normalised frames from ``normalize_onec_counterparties`` /
``normalize_crm_companies`` (or ``MatchResult.onec`` / ``.crm``).
"""

from __future__ import annotations

import pandas as pd

from b24_1c_assets.domain.matching import MIN_NAME_KEY_LEN, OUR_ORIGINATOR_IDS, is_our_originator

DUPLICATE_COLUMNS = ["system", "group_id", "record_id", "reason", "key", "survivor_id", "why", "card_url"]
# The company card on the portal; {origin} is scheme://host only (never the webhook path with its token).
COMPANY_CARD = "{origin}/crm/company/details/{company_id}/"


def _groups(system: str, ids: pd.Series, keys: pd.Series, reason: str) -> pd.DataFrame:
    frame = pd.DataFrame({"record_id": ids.astype(str).to_numpy(), "key": keys.to_numpy()}).dropna()
    frame = frame.drop_duplicates()
    frame = frame[frame["key"].map(frame["key"].value_counts()) > 1]
    frame.insert(0, "system", system)
    frame["reason"] = reason
    frame["group_id"] = system + ":" + reason + ":" + frame["key"]
    return frame[["system", "group_id", "record_id", "reason", "key"]]


def _duplicates_of(system: str, frame: pd.DataFrame, ids: pd.Series) -> list[pd.DataFrame]:
    inn = frame["inn"].where(frame["inn_valid"])
    kpp = frame["kpp"].where(frame["kpp_valid"], None)
    kpp_missing = frame["kpp_reason"].eq("empty")
    usable_kpp = frame["kpp_valid"] | kpp_missing
    out = [_groups(system, ids, (inn + "/" + kpp.fillna("")).where(usable_kpp), "inn_kpp")]

    # name + INN: only INN/name keys that have a KPP-less member.
    name_inn = (inn + "/" + frame["name_key"]).where(frame["name_key"].notna())
    keys_with_gap = set(name_inn[kpp_missing].dropna())
    out.append(_groups(system, ids, name_inn.where(name_inn.isin(keys_with_gap)), "name_inn_kpp_missing"))

    long_name = frame["name_key"].where(frame["name_key"].str.len() >= MIN_NAME_KEY_LEN)
    out.append(_groups(system, ids, long_name.where(inn.isna()), "name_no_inn"))
    return out


def find_duplicates(
    onec: pd.DataFrame,
    crm: pd.DataFrame,
    originator_ids: tuple[str, ...] = OUR_ORIGINATOR_IDS,
    *,
    survivors: pd.DataFrame | None = None,
    portal_origin: str | None = None,
) -> pd.DataFrame:
    """Duplicate groups in both systems (columns ``DUPLICATE_COLUMNS``), in a deterministic order.

    Each row is a merge suggestion for one record: ``survivor_id`` / ``why`` come from the matcher's
    survivor rule (``MatchResult.survivors``) for ``inn_kpp`` groups (empty when undecided or for other
    kinds of group); ``card_url`` links CRM records to their company card when ``portal_origin`` is known."""
    live = onec[~onec["deletion_mark"]]
    parts = _duplicates_of("1c", live, live["ref_key"])
    parts += _duplicates_of("crm", crm, crm["company_id"])
    ours = crm["originator_id"].isna() | is_our_originator(crm["originator_id"], originator_ids)
    link = crm["onec_ref_uf"].where(crm["onec_ref_uf"].notna(), crm["origin_id"].where(ours))
    parts.append(_groups("crm", crm["company_id"], link, "id_link"))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=DUPLICATE_COLUMNS)
    result = pd.concat(parts, ignore_index=True)
    result["survivor_id"], result["why"] = None, None
    if survivors is not None and not survivors.empty:
        by_key = survivors.drop_duplicates(["system", "key"]).set_index(["system", "key"])
        rows = result["reason"].eq("inn_kpp")
        index = pd.MultiIndex.from_arrays([result.loc[rows, "system"], result.loc[rows, "key"]])
        result.loc[rows, "survivor_id"] = by_key["survivor_id"].reindex(index).to_numpy()
        result.loc[rows, "why"] = by_key["why"].reindex(index).to_numpy()
    result["survivor_id"] = result["survivor_id"].astype(object).where(result["survivor_id"].notna(), None)
    result["why"] = result["why"].astype(object).where(result["why"].notna(), None)
    result["card_url"] = None
    if portal_origin:
        crm_rows = result["system"].eq("crm")
        result.loc[crm_rows, "card_url"] = [
            COMPANY_CARD.format(origin=portal_origin.rstrip("/"), company_id=r)
            for r in result.loc[crm_rows, "record_id"]
        ]
    return result[DUPLICATE_COLUMNS].sort_values(["system", "group_id", "record_id"]).reset_index(drop=True)
