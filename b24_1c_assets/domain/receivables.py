"""Receivables per counterparty and contract from 1C's settlement register: balance, overdue, aging.

1C's `AccumulationRegister_РасчетыСПокупателями` has no due dates, so aging is rebuilt from movements:

* a debt is a `Receipt` movement of type `Долг` (a shipment); it falls due `СрокОплатыПокупателя` days
  after its date (the contract's term; `default_term_days` when the contract says 0), or on the order's
  last payment-calendar date when the order has a payment calendar;
* everything that reduced debt on the contract (`Expense` movements of type `Долг`: payments, offsets of
  advances) is allocated to debts **oldest first**, so what stays open are the newest debts;
* an open debt is overdue once `as_of` is more than `grace_days` past its due date; aging buckets count
  days past the due date.

The balance itself (debt minus advances) is 1C's own `Balance` virtual table, never recomputed: the
movements only say how old the open part is. When the FIFO result and 1C's `Долг` balance disagree (a
movement outside the extracted window, say), the difference is kept as `unexplained` and reported.

All money is handled in integer kopecks (exact, vectorised) and returned as `Decimal`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import numpy as np
import pandas as pd

DEBT = "Долг"
ADVANCE = "Аванс"
RECEIPT = "Receipt"
EXPENSE = "Expense"

BUCKETS = ("current", "1_30", "31_60", "61_90", "90_plus")
BUCKET_EDGES = (0, 30, 60, 90)  # days past due: (0, 30], (30, 60], (60, 90], (90, inf)

SNAPSHOT_COLUMNS = [
    "counterparty_ref",
    "contract_ref",
    "balance",
    "debt",
    "advances",
    "overdue_amount",
    "days_overdue",
    *[f"aging_{b}" for b in BUCKETS],
    "oldest_due_date",
    "unexplained",
]


@dataclass(frozen=True)
class AgingRules:
    default_term_days: int = 14  # used when the contract's СрокОплатыПокупателя is 0 (not set)
    grace_days: int = 0  # days past due before a debt counts as overdue


def to_kopecks(values: pd.Series) -> pd.Series:
    """Decimal / str / int amounts to exact integer kopecks (raises on fractions of a kopeck)."""

    def convert(value) -> int:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return 0
        amount = Decimal(str(value))
        kopecks = amount * 100
        if kopecks != kopecks.to_integral_value():
            raise ValueError(f"amount {value!r} has fractions of a kopeck")
        return int(kopecks)

    return values.map(convert).astype("int64")


def from_kopecks(values: pd.Series) -> pd.Series:
    return values.map(lambda k: (Decimal(int(k)) / 100).quantize(Decimal("0.01")))


def open_debts(
    movements: pd.DataFrame,
    contracts: pd.DataFrame,
    as_of: date,
    rules: AgingRules = AgingRules(),
    payment_calendar: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per debt movement still (partly) open after oldest-first allocation of reductions.

    movements: period, record_type, counterparty_ref, contract_ref, order_ref, settlement_type, amount
    contracts: contract_ref, payment_term_days
    payment_calendar (optional): order_ref, due_date
    Returns counterparty_ref, contract_ref, period, due_date, open_kopecks, days_past_due.
    """
    debt = movements[movements["settlement_type"] == DEBT].copy()
    debt["kopecks"] = to_kopecks(debt["amount"])
    receipts = debt[debt["record_type"] == RECEIPT].copy()
    reductions = (
        debt[debt["record_type"] == EXPENSE]
        .groupby(["counterparty_ref", "contract_ref"], dropna=False)["kopecks"]
        .sum()
        .rename("reduced")
    )
    if receipts.empty:
        return pd.DataFrame(
            columns=["counterparty_ref", "contract_ref", "period", "due_date", "open_kopecks", "days_past_due"]
        )
    receipts["period"] = pd.to_datetime(receipts["period"])
    receipts = receipts.sort_values(["counterparty_ref", "contract_ref", "period"], kind="stable")
    # FIFO without a loop: debt i stays open for the part of the running total beyond all reductions.
    receipts["cum"] = receipts.groupby(["counterparty_ref", "contract_ref"], dropna=False)["kopecks"].cumsum()
    receipts = receipts.join(reductions, on=["counterparty_ref", "contract_ref"])
    receipts["reduced"] = receipts["reduced"].fillna(0).astype("int64")
    receipts["open_kopecks"] = np.clip(receipts["cum"] - receipts["reduced"], 0, receipts["kopecks"])
    receipts = receipts[receipts["open_kopecks"] > 0]

    terms = contracts.set_index("contract_ref")["payment_term_days"].astype("Int64")
    term = receipts["contract_ref"].map(terms).fillna(0).astype("int64")
    term = term.where(term > 0, rules.default_term_days)
    due = receipts["period"].dt.normalize() + pd.to_timedelta(term, unit="D")
    if payment_calendar is not None and not payment_calendar.empty and "order_ref" in receipts:
        last_due = pd.to_datetime(payment_calendar.groupby("order_ref")["due_date"].max())
        calendar_due = receipts["order_ref"].map(last_due)
        due = calendar_due.where(calendar_due.notna(), due)
    receipts["due_date"] = pd.to_datetime(due).dt.date
    receipts["days_past_due"] = (pd.Timestamp(as_of) - pd.to_datetime(due).dt.normalize()).dt.days
    return receipts[
        ["counterparty_ref", "contract_ref", "period", "due_date", "open_kopecks", "days_past_due"]
    ].reset_index(drop=True)


def receivables_by_contract(
    balances: pd.DataFrame,
    movements: pd.DataFrame,
    contracts: pd.DataFrame,
    as_of: date,
    rules: AgingRules = AgingRules(),
    payment_calendar: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The snapshot: one row per (counterparty, contract) with a non-zero balance or open debt.

    balances: 1C's Balance rows — counterparty_ref, contract_ref, settlement_type, amount (Сумма Balance;
    `Аванс` balances are negative: money the customer paid ahead).
    """
    bal = balances.copy()
    bal["kopecks"] = to_kopecks(bal["amount"])
    keys = ["counterparty_ref", "contract_ref"]
    per_type = bal.pivot_table(index=keys, columns="settlement_type", values="kopecks", aggfunc="sum", fill_value=0)
    for col in (DEBT, ADVANCE):
        if col not in per_type.columns:
            per_type[col] = 0
    per_type = per_type[[DEBT, ADVANCE]].astype("int64")

    debts = open_debts(movements, contracts, as_of, rules, payment_calendar)
    overdue_mask = debts["days_past_due"] > rules.grace_days
    debts["bucket"] = np.select(
        [
            debts["days_past_due"] <= 0,
            debts["days_past_due"] <= 30,
            debts["days_past_due"] <= 60,
            debts["days_past_due"] <= 90,
        ],
        list(BUCKETS[:4]),
        default=BUCKETS[4],
    )
    # within grace a past-due debt is still "current" for status, but aged by its real days
    aging = debts.pivot_table(index=keys, columns="bucket", values="open_kopecks", aggfunc="sum", fill_value=0)
    for bucket in BUCKETS:
        if bucket not in aging.columns:
            aging[bucket] = 0
    overdue = debts[overdue_mask].groupby(keys)["open_kopecks"].sum().rename("overdue")
    days = debts[overdue_mask].groupby(keys)["days_past_due"].max().rename("days_overdue")
    open_total = debts.groupby(keys)["open_kopecks"].sum().rename("open_total")
    oldest_due = debts.groupby(keys)["due_date"].min().rename("oldest_due_date")

    frame = per_type.join([aging[list(BUCKETS)], overdue, days, open_total, oldest_due], how="outer")
    frame = frame.reset_index()
    for col in [DEBT, ADVANCE, *BUCKETS, "overdue", "days_overdue", "open_total"]:
        frame[col] = frame[col].fillna(0).astype("int64")
    # Open FIFO debt can only be what 1C still calls debt; the rest is reported, never invented.
    frame["unexplained_k"] = frame[DEBT] - frame["open_total"]
    frame = frame[(frame[DEBT] != 0) | (frame[ADVANCE] != 0) | (frame["open_total"] != 0)]

    out = pd.DataFrame(
        {
            "counterparty_ref": frame["counterparty_ref"],
            "contract_ref": frame["contract_ref"],
            "balance": from_kopecks(frame[DEBT] + frame[ADVANCE]),
            "debt": from_kopecks(frame[DEBT]),
            "advances": from_kopecks(-frame[ADVANCE]),
            "overdue_amount": from_kopecks(frame["overdue"]),
            "days_overdue": frame["days_overdue"].astype("int64"),
            **{f"aging_{b}": from_kopecks(frame[b]) for b in BUCKETS},
            "oldest_due_date": frame["oldest_due_date"].map(lambda v: v if isinstance(v, date) else None),
            "unexplained": from_kopecks(frame["unexplained_k"]),
        }
    )
    return out[SNAPSHOT_COLUMNS].sort_values(["counterparty_ref", "contract_ref"]).reset_index(drop=True)


def receivables_by_counterparty(by_contract: pd.DataFrame) -> pd.DataFrame:
    """Roll the contract rows up to one row per counterparty (money summed, days = the worst contract)."""
    if by_contract.empty:
        return pd.DataFrame(columns=[c for c in SNAPSHOT_COLUMNS if c != "contract_ref"])
    money = ["balance", "debt", "advances", "overdue_amount", *[f"aging_{b}" for b in BUCKETS], "unexplained"]
    grouped = by_contract.groupby("counterparty_ref")
    out = grouped[money].agg(lambda s: sum(s, Decimal("0.00")))
    out["days_overdue"] = grouped["days_overdue"].max()
    out["oldest_due_date"] = grouped["oldest_due_date"].agg(
        lambda s: min((v for v in s if isinstance(v, date)), default=None)
    )
    return out.reset_index()[[c for c in SNAPSHOT_COLUMNS if c != "contract_ref"]]


def as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
