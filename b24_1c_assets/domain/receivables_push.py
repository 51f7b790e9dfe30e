"""What the CRM company card shows about receivables: the user fields and their values per company."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pandas as pd

from b24_1c_assets.domain.receivables import BUCKETS

FIELD_LABELS = {
    "UF_CRM_DEBT_SUM": ("double", "Задолженность, ₽"),
    "UF_CRM_DEBT_OVERDUE": ("double", "Просрочено, ₽"),
    "UF_CRM_DEBT_DAYS_OVERDUE": ("integer", "Дней просрочки"),
    "UF_CRM_DEBT_AGING": ("string", "Старение долга"),
    "UF_CRM_DEBT_LIMIT": ("double", "Кредитный лимит (применённый), ₽"),
    "UF_CRM_CREDIT_STATUS": ("string", "Кредитный статус"),
    "UF_CRM_DEBT_AS_OF": ("date", "Долг на дату"),
}
FIELDS = list(FIELD_LABELS)
BUCKET_LABELS = {"current": "в срок", "1_30": "1–30", "31_60": "31–60", "61_90": "61–90", "90_plus": "90+"}


def aging_text(row: dict) -> str:
    """'в срок 1000.00; 1–30 250.00' — non-zero buckets only, in age order."""
    parts = [
        f"{BUCKET_LABELS[b]} {row[f'aging_{b}']:.2f}"
        for b in BUCKETS
        if isinstance(row.get(f"aging_{b}"), Decimal) and row[f"aging_{b}"] != 0
    ]
    return "; ".join(parts)


def desired_company_fields(credit_status: pd.DataFrame) -> pd.DataFrame:
    """One row per linked CRM company (key = company ID) with the user-field values to show.

    credit_status: one snapshot day of receivables.client_credit_status.
    """
    linked = credit_status[credit_status["company_id"].notna()]
    rows = []
    for row in linked.to_dict("records"):
        as_of = row["snapshot_date"]
        rows.append(
            {
                "key": str(int(row["company_id"])),
                "UF_CRM_DEBT_SUM": row["balance"],
                "UF_CRM_DEBT_OVERDUE": row["overdue_amount"],
                "UF_CRM_DEBT_DAYS_OVERDUE": int(row["days_overdue"]),
                "UF_CRM_DEBT_AGING": aging_text(row),
                "UF_CRM_DEBT_LIMIT": row["credit_limit"],
                "UF_CRM_CREDIT_STATUS": row["status"],
                "UF_CRM_DEBT_AS_OF": as_of.isoformat() if isinstance(as_of, date) else str(as_of)[:10],
            }
        )
    return pd.DataFrame(rows, columns=["key", *FIELDS])


def new_holds(plan: pd.DataFrame) -> int:
    """Companies pushed before with another status that would now show `hold`."""
    count = 0
    for before, after in zip(plan["before"], plan["after"]):
        if (
            before
            and json.loads(after).get("UF_CRM_CREDIT_STATUS") == "hold"
            and json.loads(before).get("UF_CRM_CREDIT_STATUS") != "hold"
        ):
            count += 1
    return count


def zeroed(plan: pd.DataFrame) -> int:
    """Companies pushed before with a debt that would now show none (what a broken export looks like)."""
    count = 0
    for before, after in zip(plan["before"], plan["after"]):
        if (
            before
            and Decimal(json.loads(before).get("UF_CRM_DEBT_SUM") or 0) != 0
            and Decimal(json.loads(after).get("UF_CRM_DEBT_SUM") or 0) == 0
        ):
            count += 1
    return count
