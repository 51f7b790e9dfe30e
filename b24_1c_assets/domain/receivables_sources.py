"""1C's raw settlement tables shaped as the receivables rules' inputs (pure: DataFrames in and out)."""

from __future__ import annotations

import json
from datetime import date, datetime, time

import pandas as pd

from b24_1c_assets.domain.receivables import RECEIPT, from_kopecks, to_kopecks

MOVEMENT_COLUMNS = [
    "period",
    "record_type",
    "counterparty_ref",
    "contract_ref",
    "order_ref",
    "settlement_type",
    "amount",
]


def settlement_movements(raw: pd.DataFrame) -> pd.DataFrame:
    """`onec.settlement_movements` -> MOVEMENT_COLUMNS (amount as Decimal, period as naive local time)."""
    if raw.empty:
        return pd.DataFrame(columns=MOVEMENT_COLUMNS)
    active = (
        raw["Active"].fillna(True).astype(bool) if "Active" in raw.columns else pd.Series(True, index=raw.index)
    )  # inactive records do not count in 1C's totals
    frame = pd.DataFrame(
        {
            "period": pd.to_datetime(raw["Period"], utc=False).map(_naive),
            "record_type": raw["RecordType"],
            "counterparty_ref": raw["Контрагент_Key"],
            "contract_ref": raw["Договор_Key"],
            "order_ref": raw["Заказ"] if "Заказ" in raw.columns else None,
            "settlement_type": raw["ТипРасчетов"],
            "amount": raw["Сумма"],
        }
    )
    return frame[active.to_numpy()].reset_index(drop=True)


def balances_at(movements: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Balance per counterparty, contract and settlement type at the end of `as_of` (Receipt - Expense)."""
    cutoff = datetime.combine(as_of, time.max)
    upto = movements[pd.to_datetime(movements["period"]) <= cutoff].copy()
    if upto.empty:
        return pd.DataFrame(columns=["counterparty_ref", "contract_ref", "settlement_type", "amount"])
    kopecks = to_kopecks(upto["amount"])
    upto["signed"] = kopecks.where(upto["record_type"] == RECEIPT, -kopecks)
    grouped = upto.groupby(["counterparty_ref", "contract_ref", "settlement_type"], dropna=False)["signed"].sum()
    grouped = grouped[grouped != 0].reset_index()
    grouped["amount"] = from_kopecks(grouped["signed"])
    return grouped[["counterparty_ref", "contract_ref", "settlement_type", "amount"]]


def contract_terms(raw_contracts: pd.DataFrame) -> pd.DataFrame:
    """contract_ref, counterparty_ref, payment_term_days (0 = not set)."""
    if raw_contracts.empty:
        return pd.DataFrame(columns=["contract_ref", "counterparty_ref", "payment_term_days"])
    return pd.DataFrame(
        {
            "contract_ref": raw_contracts["Ref_Key"],
            "counterparty_ref": raw_contracts.get("Owner_Key"),
            "payment_term_days": pd.to_numeric(raw_contracts["СрокОплатыПокупателя"], errors="coerce")
            .fillna(0)
            .astype(int),
        }
    )


def payment_calendar(raw_orders: pd.DataFrame) -> pd.DataFrame:
    """order_ref, due_date, amount from each order's ПлатежныйКалендарь (JSON text in the raw table)."""
    rows = []
    if not raw_orders.empty and "ПлатежныйКалендарь" in raw_orders.columns:
        for ref, cell in zip(raw_orders["Ref_Key"], raw_orders["ПлатежныйКалендарь"]):
            if not isinstance(cell, str) or not cell.strip():
                continue
            for line in json.loads(cell):
                when = line.get("ДатаОплаты")
                if when:
                    rows.append(
                        {
                            "order_ref": ref,
                            "due_date": date.fromisoformat(str(when)[:10]),
                            "amount": line.get("СуммаОплаты"),
                        }
                    )
    return pd.DataFrame(rows, columns=["order_ref", "due_date", "amount"])


def _naive(value):
    if value is None or pd.isna(value):
        return None
    value = pd.Timestamp(value)
    return value.tz_localize(None) if value.tzinfo is None else value.tz_convert("Europe/Moscow").tz_localize(None)
