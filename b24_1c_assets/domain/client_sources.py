"""The raw extracts shaped as the matcher's inputs (pure: DataFrames in, DataFrames out).

* 1C: `onec.counterparties` (1C field names) -> `normalize.ONEC_COLUMNS`;
* CRM: `bitrix24.companies` + `bitrix24.requisites` -> `normalize.CRM_COLUMNS`. INN/KPP/OGRN live on the
  company's requisite, not the company; when a company has several, the lowest-ID active one counts.
"""

from __future__ import annotations

import json

import pandas as pd

from b24_1c_assets.domain.normalize import CRM_COLUMNS, ONEC_COLUMNS

KIND_BY_1C_TYPE = {"ЮридическоеЛицо": "legal", "ИндивидуальныйПредприниматель": "ip", "ФизическоеЛицо": "person"}
COMPANY_ENTITY_TYPE = "4"


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series([None] * len(frame), index=frame.index, dtype=object)


def _blank_to_none(series: pd.Series) -> pd.Series:
    return series.map(
        lambda v: None if v is None or (isinstance(v, float) and pd.isna(v)) or str(v).strip() == "" else v
    )


def onec_counterparties_for_matching(raw: pd.DataFrame) -> pd.DataFrame:
    """One row per 1C counterparty, in the matcher's columns."""
    if raw.empty:
        return pd.DataFrame(columns=ONEC_COLUMNS)
    kind = _column(raw, "ВидКонтрагента").map(KIND_BY_1C_TYPE)
    legal_physical = _column(raw, "ЮридическоеФизическоеЛицо").map({"ЮридическоеЛицо": "legal", "ФизическоеЛицо": "ip"})
    frame = pd.DataFrame(
        {
            "ref_key": raw["Ref_Key"],
            "code": _column(raw, "Code"),
            "description": _column(raw, "Description"),
            "full_name": _blank_to_none(_column(raw, "НаименованиеПолное")),
            "inn": _blank_to_none(_column(raw, "ИНН")),
            "kpp": _blank_to_none(_column(raw, "КПП")),
            "ogrn": _blank_to_none(_column(raw, "РегистрационныйНомер")),
            "kind": kind.where(kind.notna(), legal_physical).fillna("legal"),
            "email": _blank_to_none(_column(raw, "email")),
            "phone": _blank_to_none(_column(raw, "phone")),
            "deletion_mark": _column(raw, "DeletionMark").fillna(False).astype(bool),
        }
    )
    return frame[ONEC_COLUMNS].reset_index(drop=True)


def multifield_values(cell) -> list[str]:
    """VALUEs of a Bitrix24 EMAIL/PHONE multifield stored as JSON text (or already a list)."""
    if cell is None or (isinstance(cell, float) and pd.isna(cell)) or cell == "":
        return []
    items = json.loads(cell) if isinstance(cell, str) else cell
    return [str(item.get("VALUE")) for item in items or [] if isinstance(item, dict) and item.get("VALUE")]


def company_requisites(requisites: pd.DataFrame) -> pd.DataFrame:
    """The requisite that counts per company: company_id, inn, kpp, ogrn."""
    if requisites.empty:
        return pd.DataFrame(columns=["company_id", "inn", "kpp", "ogrn"])
    rq = requisites[requisites["ENTITY_TYPE_ID"].astype(str) == COMPANY_ENTITY_TYPE].copy()
    if "ACTIVE" in rq.columns:
        rq = rq[rq["ACTIVE"].fillna("Y").astype(str) != "N"]
    rq["_id"] = rq["ID"].astype(int)
    rq = rq.sort_values("_id").drop_duplicates("ENTITY_ID", keep="first")
    ogrn = _blank_to_none(_column(rq, "RQ_OGRN"))
    ogrn = ogrn.where(ogrn.notna(), _blank_to_none(_column(rq, "RQ_OGRNIP")))
    return pd.DataFrame(
        {
            "company_id": rq["ENTITY_ID"].astype(int),
            "inn": _blank_to_none(_column(rq, "RQ_INN")),
            "kpp": _blank_to_none(_column(rq, "RQ_KPP")),
            "ogrn": ogrn,
        }
    )


def crm_companies_for_matching(
    companies: pd.DataFrame, requisites: pd.DataFrame, onec_ref_field: str | None = None
) -> pd.DataFrame:
    """One row per CRM company, in the matcher's columns."""
    if companies.empty:
        return pd.DataFrame(columns=CRM_COLUMNS)
    frame = pd.DataFrame(
        {
            "company_id": companies["ID"].astype(int),
            "title": companies["TITLE"],
            "originator_id": _blank_to_none(_column(companies, "ORIGINATOR_ID")),
            "origin_id": _blank_to_none(_column(companies, "ORIGIN_ID")),
            "onec_ref_uf": _blank_to_none(_column(companies, onec_ref_field)) if onec_ref_field else None,
            "emails": _column(companies, "EMAIL").map(multifield_values),
            "phones": _column(companies, "PHONE").map(multifield_values),
            "assigned_by_id": pd.to_numeric(_column(companies, "ASSIGNED_BY_ID"), errors="coerce").astype("Int64"),
        }
    )
    frame = frame.merge(company_requisites(requisites), on="company_id", how="left")
    frame = frame.astype({"inn": object, "kpp": object, "ogrn": object})
    frame[["inn", "kpp", "ogrn"]] = frame[["inn", "kpp", "ogrn"]].where(frame[["inn", "kpp", "ogrn"]].notna(), None)
    return frame[CRM_COLUMNS].sort_values("company_id").reset_index(drop=True)


def crm_activity(companies: pd.DataFrame, deal_counts: pd.DataFrame, requisites: pd.DataFrame) -> pd.DataFrame:
    """Per CRM company: deals, open deals, DATE_CREATE and whether it has an active requisite
    (`survivors.CRM_ACTIVITY_COLUMNS` + `has_requisite`); the survivor rule of CRM duplicates reads it.

    `deal_counts`: company_id, deals, open_deals (CLOSED = 'N'), counted in the warehouse
    (`defs/client_master/reads.deal_counts`); a company without deals has 0 of both."""
    if companies.empty:
        return pd.DataFrame(columns=["company_id", "deals", "open_deals", "created", "has_requisite"])
    out = pd.DataFrame(
        {
            "company_id": companies["ID"].astype(int),
            "created": pd.to_datetime(_column(companies, "DATE_CREATE"), errors="coerce", utc=True).dt.tz_localize(
                None
            ),
        }
    )
    if not deal_counts.empty:
        per = deal_counts.set_index("company_id")[["deals", "open_deals"]]
        out = out.merge(per, left_on="company_id", right_index=True, how="left")
    out["deals"] = out.get("deals", pd.Series(0, index=out.index)).fillna(0).astype(int)
    out["open_deals"] = out.get("open_deals", pd.Series(0, index=out.index)).fillna(0).astype(int)
    with_requisite = set(company_requisites(requisites)["company_id"]) if not requisites.empty else set()
    out["has_requisite"] = out["company_id"].isin(with_requisite)
    return out[["company_id", "deals", "open_deals", "created", "has_requisite"]]
