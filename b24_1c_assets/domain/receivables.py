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

The rules are DuckDB SQL over relations named by the caller (`balances_sql`, `open_debts_sql`,
`by_contract_sql`: text, no I/O), so the warehouse ages a whole register without pandas holding its movements;
`open_debts` / `receivables_by_contract` run the same SQL on frames in an in-memory DuckDB. All money is
handled in integer kopecks (exact) and returned as `Decimal`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import duckdb
import numpy as np
import pandas as pd

DEBT = "Долг"
ADVANCE = "Аванс"
RECEIPT = "Receipt"
EXPENSE = "Expense"

BUCKETS = ("current", "1_30", "31_60", "61_90", "90_plus")

# The movements relation the rules read: 1C's active settlement movements, `period` naive local time,
# `kopecks` the amount (BIGINT), `seq` their order in the register (breaks ties of one moment).
MOVEMENT_COLUMNS = [
    "period",
    "record_type",
    "counterparty_ref",
    "contract_ref",
    "order_ref",
    "settlement_type",
    "kopecks",
    "seq",
]
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


def _date_literal(day: date) -> str:
    return f"DATE '{as_date(day).isoformat()}'"


def balances_sql(movements: str, as_of: date) -> str:
    """Balance per counterparty, contract and settlement type at the end of `as_of` (Receipt - Expense), in
    kopecks, zero balances left out. `movements` names a relation with `MOVEMENT_COLUMNS`."""
    signed = f"CASE WHEN record_type = '{RECEIPT}' THEN kopecks ELSE -kopecks END"
    return (
        f"SELECT counterparty_ref, contract_ref, settlement_type, CAST(sum({signed}) AS BIGINT) AS kopecks "
        f"FROM {movements} WHERE period < {_date_literal(as_of)} + 1 "
        f"GROUP BY counterparty_ref, contract_ref, settlement_type HAVING sum({signed}) <> 0"
    )


def open_debts_sql(
    movements: str, contracts: str, calendar: str | None, as_of: date, rules: AgingRules = AgingRules()
) -> str:
    """One row per debt movement still (partly) open after oldest-first allocation of reductions.

    `movements`: `MOVEMENT_COLUMNS`; `contracts`: contract_ref, payment_term_days; `calendar` (or None):
    order_ref, due_date. Returns counterparty_ref, contract_ref, period, due_date, open_kopecks, days_past_due.
    FIFO without a loop: debt i stays open for the part of its running total (oldest first; `seq` orders debts
    of one moment) beyond all reductions of its contract."""
    last_due = (
        f"SELECT order_ref, max(CAST(due_date AS DATE)) AS due_date FROM {calendar} GROUP BY order_ref"
        if calendar
        else "SELECT NULL::VARCHAR AS order_ref, NULL::DATE AS due_date WHERE FALSE"
    )
    default_term = int(rules.default_term_days)
    term = f"CASE WHEN coalesce(t.payment_term_days, 0) > 0 THEN t.payment_term_days ELSE {default_term} END"
    return f"""
WITH debt AS (SELECT * FROM {movements} WHERE settlement_type = '{DEBT}'),
reduced AS (
    SELECT counterparty_ref, contract_ref, sum(kopecks) AS reduced FROM debt WHERE record_type = '{EXPENSE}'
    GROUP BY counterparty_ref, contract_ref),
receipts AS (
    SELECT *, sum(kopecks) OVER (
        PARTITION BY counterparty_ref, contract_ref ORDER BY period NULLS LAST, seq
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum
    FROM debt WHERE record_type = '{RECEIPT}'),
still_open AS (
    SELECT r.*, least(greatest(r.cum - coalesce(x.reduced, 0), 0), r.kopecks) AS open_kopecks
    FROM receipts r LEFT JOIN reduced x
    ON r.counterparty_ref IS NOT DISTINCT FROM x.counterparty_ref
    AND r.contract_ref IS NOT DISTINCT FROM x.contract_ref),
terms AS (SELECT contract_ref, max(payment_term_days) AS payment_term_days FROM {contracts} GROUP BY contract_ref),
last_due AS ({last_due}),
due AS (
    SELECT o.*, coalesce(c.due_date, CAST(o.period AS DATE) + CAST({term} AS INTEGER)) AS due_date
    FROM still_open o
    LEFT JOIN terms t ON t.contract_ref = o.contract_ref
    LEFT JOIN last_due c ON c.order_ref = o.order_ref
    WHERE o.open_kopecks > 0)
SELECT counterparty_ref, contract_ref, period, due_date, CAST(open_kopecks AS BIGINT) AS open_kopecks,
       CAST({_date_literal(as_of)} - due_date AS BIGINT) AS days_past_due
FROM due ORDER BY counterparty_ref NULLS LAST, contract_ref NULLS LAST, period NULLS LAST, seq"""


def by_contract_sql(balances: str, debts: str, rules: AgingRules = AgingRules()) -> str:
    """The snapshot in kopecks: one row per (counterparty, contract) with a non-zero balance or open debt.

    `balances`: counterparty_ref, contract_ref, settlement_type, kopecks (1C's Balance: `Аванс` balances are
    negative, money the customer paid ahead); `debts`: `open_debts_sql`'s rows (a relation or a subquery).
    Columns as `SNAPSHOT_COLUMNS` with money in kopecks; `snapshot_frame` turns them into Decimal."""
    days = "days_past_due"
    bucket = (
        f"CASE WHEN {days} <= 0 THEN 'current' WHEN {days} <= 30 THEN '1_30' WHEN {days} <= 60 THEN '31_60' "
        f"WHEN {days} <= 90 THEN '61_90' ELSE '90_plus' END"
    )
    aging = ",\n        ".join(
        f"coalesce(sum(open_kopecks) FILTER (WHERE {bucket} = '{b}'), 0) AS aging_{b}" for b in BUCKETS
    )
    # within grace a past-due debt is still "current" for status, but aged by its real days
    overdue = f"{days} > {int(rules.grace_days)}"
    keys = "counterparty_ref IS NOT NULL AND contract_ref IS NOT NULL"
    return f"""
WITH per_type AS (
    SELECT counterparty_ref, contract_ref,
        coalesce(sum(kopecks) FILTER (WHERE settlement_type = '{DEBT}'), 0) AS debt,
        coalesce(sum(kopecks) FILTER (WHERE settlement_type = '{ADVANCE}'), 0) AS advance
    FROM {balances} WHERE {keys} GROUP BY counterparty_ref, contract_ref),
aged AS (
    SELECT counterparty_ref, contract_ref,
        {aging},
        coalesce(sum(open_kopecks) FILTER (WHERE {overdue}), 0) AS overdue,
        coalesce(max({days}) FILTER (WHERE {overdue}), 0) AS days_overdue,
        sum(open_kopecks) AS open_total,
        min(due_date) AS oldest_due_date
    FROM {debts} WHERE {keys} GROUP BY counterparty_ref, contract_ref),
joined AS (
    SELECT coalesce(p.counterparty_ref, a.counterparty_ref) AS counterparty_ref,
        coalesce(p.contract_ref, a.contract_ref) AS contract_ref,
        coalesce(p.debt, 0) AS debt, coalesce(p.advance, 0) AS advance,
        {", ".join(f"coalesce(a.aging_{b}, 0) AS aging_{b}" for b in BUCKETS)},
        coalesce(a.overdue, 0) AS overdue, coalesce(a.days_overdue, 0) AS days_overdue,
        coalesce(a.open_total, 0) AS open_total, a.oldest_due_date
    FROM per_type p FULL OUTER JOIN aged a
    ON p.counterparty_ref = a.counterparty_ref AND p.contract_ref = a.contract_ref)
SELECT counterparty_ref, contract_ref,
    CAST(debt + advance AS BIGINT) AS balance,
    CAST(debt AS BIGINT) AS debt,
    CAST(-advance AS BIGINT) AS advances,
    CAST(overdue AS BIGINT) AS overdue_amount,
    CAST(days_overdue AS BIGINT) AS days_overdue,
    {", ".join(f"CAST(aging_{b} AS BIGINT) AS aging_{b}" for b in BUCKETS)},
    oldest_due_date,
    CAST(debt - open_total AS BIGINT) AS unexplained
FROM joined WHERE debt <> 0 OR advance <> 0 OR open_total <> 0
ORDER BY counterparty_ref, contract_ref"""


MONEY_COLUMNS = ["balance", "debt", "advances", "overdue_amount", *[f"aging_{b}" for b in BUCKETS], "unexplained"]


def snapshot_frame(kopecks: pd.DataFrame) -> pd.DataFrame:
    """`by_contract_sql`'s rows as the snapshot: money as Decimal (to the kopeck), the oldest due date as a date."""
    out = kopecks.reset_index(drop=True)
    for col in MONEY_COLUMNS:
        out[col] = from_kopecks(out[col]) if len(out) else pd.Series(dtype=object)
    out["days_overdue"] = out["days_overdue"].astype("int64")
    due = pd.to_datetime(out["oldest_due_date"])
    out["oldest_due_date"] = pd.Series([None if pd.isna(v) else v.date() for v in due], index=out.index, dtype=object)
    return out[SNAPSHOT_COLUMNS]


def _in_memory(frames: dict[str, pd.DataFrame], sql: str) -> pd.DataFrame:
    """`sql` run by an in-memory DuckDB over these frames (relation name -> frame): the rules on frames."""
    with duckdb.connect() as conn:
        conn.execute("SET enable_progress_bar = false")  # DuckDB would draw one into the step's log
        for name, frame in frames.items():
            conn.register(name, frame)
        return conn.execute(sql).df()


def _movements_frame(movements: pd.DataFrame) -> pd.DataFrame:
    """Movement frames (amount as Decimal / str) as the SQL reads them: kopecks, and `seq` in frame order."""
    frame = pd.DataFrame(
        {
            "period": pd.to_datetime(movements["period"]),
            "record_type": movements["record_type"].astype(object),
            "counterparty_ref": movements["counterparty_ref"].astype(object),
            "contract_ref": movements["contract_ref"].astype(object),
            "order_ref": (
                movements["order_ref"] if "order_ref" in movements else pd.Series(None, index=movements.index)
            ).astype(object),
            "settlement_type": movements["settlement_type"].astype(object),
            "kopecks": to_kopecks(movements["amount"]),
            "seq": range(len(movements)),
        }
    )
    return frame.reset_index(drop=True)


def _relations(movements, contracts, payment_calendar) -> tuple[dict[str, pd.DataFrame], str | None]:
    frames = {
        "movements": _movements_frame(movements),
        "contracts": pd.DataFrame(
            {
                "contract_ref": contracts["contract_ref"].astype(object),
                "payment_term_days": pd.to_numeric(contracts["payment_term_days"]).astype("Int64"),
            }
        ),
    }
    if payment_calendar is None or payment_calendar.empty:
        return frames, None
    frames["calendar"] = pd.DataFrame(
        {
            "order_ref": payment_calendar["order_ref"].astype(object),
            "due_date": pd.to_datetime(payment_calendar["due_date"]),
        }
    )
    return frames, "calendar"


def open_debts(
    movements: pd.DataFrame,
    contracts: pd.DataFrame,
    as_of: date,
    rules: AgingRules = AgingRules(),
    payment_calendar: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """`open_debts_sql` on frames. movements: MOVEMENT_COLUMNS with `amount` (Decimal / str) instead of kopecks;
    contracts: contract_ref, payment_term_days; payment_calendar (optional): order_ref, due_date.
    Returns counterparty_ref, contract_ref, period, due_date (date), open_kopecks, days_past_due."""
    frames, calendar = _relations(movements, contracts, payment_calendar)
    debts = _in_memory(frames, open_debts_sql("movements", "contracts", calendar, as_of, rules))
    debts["due_date"] = pd.Series([None if pd.isna(v) else v.date() for v in debts["due_date"]], dtype=object)
    return debts


def receivables_by_contract(
    balances: pd.DataFrame,
    movements: pd.DataFrame,
    contracts: pd.DataFrame,
    as_of: date,
    rules: AgingRules = AgingRules(),
    payment_calendar: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """`by_contract_sql` on frames: the snapshot, one row per (counterparty, contract) with a non-zero balance
    or open debt. balances: 1C's Balance rows — counterparty_ref, contract_ref, settlement_type, amount."""
    frames, calendar = _relations(movements, contracts, payment_calendar)
    frames["balances"] = pd.DataFrame(
        {
            "counterparty_ref": balances["counterparty_ref"].astype(object),
            "contract_ref": balances["contract_ref"].astype(object),
            "settlement_type": balances["settlement_type"].astype(object),
            "kopecks": to_kopecks(balances["amount"]),
        }
    )
    debts = f"({open_debts_sql('movements', 'contracts', calendar, as_of, rules)})"
    return snapshot_frame(_in_memory(frames, by_contract_sql("balances", debts, rules)))


def receivables_by_counterparty(by_contract: pd.DataFrame) -> pd.DataFrame:
    """Roll the contract rows up to one row per counterparty (money summed, days = the worst contract)."""
    if by_contract.empty:
        return pd.DataFrame(columns=[c for c in SNAPSHOT_COLUMNS if c != "contract_ref"])
    grouped = by_contract.groupby("counterparty_ref")
    out = grouped[MONEY_COLUMNS].sum()  # Decimal + Decimal per group: exact, kopeck places kept
    out["days_overdue"] = grouped["days_overdue"].max()
    oldest = pd.to_datetime(by_contract["oldest_due_date"]).groupby(by_contract["counterparty_ref"]).min()
    out["oldest_due_date"] = [None if pd.isna(v) else v.date() for v in oldest.reindex(out.index)]
    return out.reset_index()[[c for c in SNAPSHOT_COLUMNS if c != "contract_ref"]]


def as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
