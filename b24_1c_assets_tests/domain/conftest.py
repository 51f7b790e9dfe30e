"""Builders for small 1C / CRM extracts in the exact column layout the matching functions take."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from b24_1c_assets.domain.matching import DECISION_COLUMNS
from b24_1c_assets.domain.normalize import CRM_COLUMNS, ONEC_COLUMNS
from b24_1c_assets.domain.survivors import CRM_ACTIVITY_COLUMNS, ONEC_ACTIVITY_COLUMNS

CASES_PATH = Path(__file__).parent / "fixtures" / "matching_cases.json"
ONEC_DEFAULTS = {
    "code": None,
    "description": None,
    "full_name": None,
    "inn": None,
    "kpp": None,
    "ogrn": None,
    "kind": "legal",
    "email": None,
    "phone": None,
    "deletion_mark": False,
}
CRM_DEFAULTS = {
    "title": None,
    "inn": None,
    "kpp": None,
    "ogrn": None,
    "originator_id": None,
    "origin_id": None,
    "onec_ref_uf": None,
    "assigned_by_id": 1,
}


def onec_frame(rows: list[dict]) -> pd.DataFrame:
    """A 1C counterparty extract; omitted fields take neutral defaults."""
    full = [{**ONEC_DEFAULTS, "code": r.get("ref_key"), **r} for r in rows]
    return pd.DataFrame(full, columns=ONEC_COLUMNS)


def crm_frame(rows: list[dict]) -> pd.DataFrame:
    """A Bitrix24 company extract; omitted fields take neutral defaults (lists fresh per row)."""
    full = [{**CRM_DEFAULTS, "emails": [], "phones": [], **r} for r in rows]
    return pd.DataFrame(full, columns=CRM_COLUMNS)


def decisions_frame(rows: list[dict]) -> pd.DataFrame:
    full = [{"decided_by": None, "decided_at": None, "note": None, **r} for r in rows]
    return pd.DataFrame(full, columns=DECISION_COLUMNS)


def onec_activity_frame(rows: list[dict]) -> pd.DataFrame:
    """Documents/settlement movements per 1C record (records not listed have none)."""
    return pd.DataFrame([{"last_activity": None, **r} for r in rows], columns=ONEC_ACTIVITY_COLUMNS)


def crm_activity_frame(rows: list[dict]) -> pd.DataFrame:
    """Deals per CRM company (companies not listed have none)."""
    return pd.DataFrame(
        [{"deals": 0, "open_deals": 0, "created": None, **r} for r in rows], columns=CRM_ACTIVITY_COLUMNS
    )


def load_cases() -> list[dict]:
    return json.loads(CASES_PATH.read_text(encoding="utf-8"))["cases"]


@pytest.fixture(scope="session")
def matching_cases() -> list[dict]:
    return load_cases()
