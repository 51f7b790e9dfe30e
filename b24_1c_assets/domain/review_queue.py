"""What the review page shows: open match candidates and held-back 1C-only clients, both sides side by side.

Pure: frames in, one frame out (`REVIEW_COLUMNS`), written by the client master as
`client_master.review_queue` so the page reads one table from the analysts' copy. Nothing here decides;
a reviewer's accept / reject / create goes to `review.client_match_decisions` and the next run honours it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pandas as pd

from b24_1c_assets.domain.duplicates import COMPANY_CARD

REVIEW_COLUMNS = [
    "item",
    "onec_ref",
    "company_id",
    "rule",
    "score",
    "reasons",
    "hold_reason",
    "onec_name",
    "onec_inn",
    "onec_kpp",
    "onec_ogrn",
    "onec_emails",
    "onec_phones",
    "onec_address",
    "crm_title",
    "crm_inn",
    "crm_kpp",
    "crm_ogrn",
    "crm_emails",
    "crm_phones",
    "crm_address",
    "crm_deals",
    "crm_open_deals",
    "card_url",
]
ADDRESS_TYPES = {"Адрес"}  # КонтактнаяИнформация.Тип of an address (Перечисление.ТипыКонтактнойИнформации)


def _addresses(contact_info) -> str | None:
    """Addresses from 1C's КонтактнаяИнформация (a JSON list of rows), joined with '; '."""
    if contact_info is None or (isinstance(contact_info, float) and pd.isna(contact_info)) or contact_info == "":
        return None
    rows = json.loads(contact_info) if isinstance(contact_info, str) else contact_info
    found = [
        str(r.get("Представление") or "").strip()
        for r in rows or []
        if isinstance(r, dict) and r.get("Тип") in ADDRESS_TYPES
    ]
    return "; ".join(f for f in found if f) or None


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def _crm_address(company: Mapping) -> str | None:
    parts = [_text(company.get(f)) for f in ("ADDRESS", "ADDRESS_2", "ADDRESS_CITY", "ADDRESS_REGION")]
    return ", ".join(p for p in parts if p) or None


def review_queue(
    candidates: pd.DataFrame,
    held_back: dict[str, str],
    onec: pd.DataFrame,
    crm: pd.DataFrame,
    onec_raw: pd.DataFrame,
    companies_raw: pd.DataFrame,
    crm_activity: pd.DataFrame | None,
    portal_origin: str | None = None,
) -> pd.DataFrame:
    """One row per open candidate pair (item 'candidate') and per held-back 1C-only client without one
    (item 'held_back'), with both records' names, identifiers, contacts, addresses and the CRM side's deals.

    `onec` / `crm` are the matcher's normalised frames, `onec_raw` / `companies_raw` the extracts (1C field
    names / Bitrix24 field names) for addresses, `held_back` the 1C refs the company push holds back."""
    rows = []
    for cand in candidates.to_dict("records"):
        rows.append(
            {
                "item": "candidate",
                "onec_ref": cand["onec_ref"],
                "company_id": int(cand["company_id"]),
                "rule": cand["reason"],
                "score": float(cand["score"]),
                "reasons": cand["reasons"],
                "hold_reason": held_back.get(str(cand["onec_ref"])),
            }
        )
    listed = {r["onec_ref"] for r in rows}
    for ref, why in sorted(held_back.items()):
        if ref not in listed:
            rows.append(
                {
                    "item": "held_back",
                    "onec_ref": ref,
                    "company_id": None,
                    "rule": "held_back",
                    "score": None,
                    "reasons": None,
                    "hold_reason": why,
                }
            )
    out = pd.DataFrame(rows, columns=["item", "onec_ref", "company_id", "rule", "score", "reasons", "hold_reason"])
    if out.empty:
        return pd.DataFrame(columns=REVIEW_COLUMNS)
    o = onec.set_index("ref_key")
    c = crm.set_index("company_id")
    for col, src in (("onec_name", "name"), ("onec_inn", "inn"), ("onec_kpp", "kpp"), ("onec_ogrn", "ogrn")):
        out[col] = out["onec_ref"].map(o[src])
    out["onec_emails"] = out["onec_ref"].map(o["emails"]).map(lambda v: ", ".join(v) if isinstance(v, list) else None)
    out["onec_phones"] = out["onec_ref"].map(o["phones"]).map(lambda v: ", ".join(v) if isinstance(v, list) else None)
    if not onec_raw.empty and "КонтактнаяИнформация" in onec_raw.columns:
        info = onec_raw.assign(ref=onec_raw["Ref_Key"].astype(str).str.lower()).drop_duplicates("ref")
        info = info[info["ref"].isin(out["onec_ref"])]  # parse the listed records' contacts only
        out["onec_address"] = out["onec_ref"].map(info.set_index("ref")["КонтактнаяИнформация"].map(_addresses))
    else:
        out["onec_address"] = None
    company = out["company_id"].astype("Int64")
    for col, src in (("crm_title", "title"), ("crm_inn", "inn"), ("crm_kpp", "kpp"), ("crm_ogrn", "ogrn")):
        out[col] = company.map(c[src])
    out["crm_emails"] = company.map(c["emails"]).map(lambda v: ", ".join(v) if isinstance(v, list) else None)
    out["crm_phones"] = company.map(c["phones"]).map(lambda v: ", ".join(v) if isinstance(v, list) else None)
    if not companies_raw.empty:
        raw = companies_raw.assign(cid=companies_raw["ID"].astype(int)).drop_duplicates("cid")
        raw = raw[raw["cid"].isin(company.dropna())].set_index("cid")  # the listed companies only
        addresses = pd.Series([_crm_address(row) for row in raw.to_dict("records")], index=raw.index, dtype=object)
        out["crm_address"] = company.map(addresses)
    else:
        out["crm_address"] = None
    if crm_activity is not None and not crm_activity.empty:
        act = crm_activity.drop_duplicates("company_id").set_index("company_id")
        out["crm_deals"] = company.map(act["deals"]).astype("Int64")
        out["crm_open_deals"] = company.map(act["open_deals"]).astype("Int64")
    else:
        out["crm_deals"] = out["crm_open_deals"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["company_id"] = company
    out["card_url"] = [
        COMPANY_CARD.format(origin=portal_origin.rstrip("/"), company_id=int(cid))
        if portal_origin and not pd.isna(cid)
        else None
        for cid in company
    ]
    for col in REVIEW_COLUMNS:
        if out[col].dtype == object:
            out[col] = out[col].where(out[col].notna(), None)
    return (
        out[REVIEW_COLUMNS]
        .sort_values(
            ["item", "score", "onec_ref", "company_id"], ascending=[True, False, True, True], na_position="last"
        )
        .reset_index(drop=True)
    )
