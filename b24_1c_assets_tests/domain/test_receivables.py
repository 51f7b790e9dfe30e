from datetime import date, datetime
from decimal import Decimal as D

import pandas as pd
import pytest

from b24_1c_assets.domain.receivables import (
    AgingRules,
    open_debts,
    receivables_by_contract,
    receivables_by_counterparty,
    to_kopecks,
)

AS_OF = date(2026, 11, 20)


def movement(day, record_type, amount, settlement="Долг", cp="cp1", contract="k1", order=None):
    return {
        "period": datetime.fromisoformat(day),
        "record_type": record_type,
        "counterparty_ref": cp,
        "contract_ref": contract,
        "order_ref": order,
        "settlement_type": settlement,
        "amount": D(amount),
    }


CONTRACTS = pd.DataFrame({"contract_ref": ["k1", "k2"], "payment_term_days": [30, 0]})


def test_payments_settle_oldest_debts_first_and_newest_stay_open():
    movements = pd.DataFrame(
        [
            movement("2026-08-01T10:00:00", "Receipt", "100000.00"),
            movement("2026-09-01T10:00:00", "Receipt", "50000.50"),
            movement("2026-10-25T10:00:00", "Receipt", "20000.00"),
            movement("2026-09-15T10:00:00", "Expense", "120000.00"),
        ]
    )
    debts = open_debts(movements, CONTRACTS, AS_OF)
    # 100000 paid fully, 20000 of the second paid: 30000.50 open (due 2026-10-01), third open (due 11-24)
    assert list(debts["open_kopecks"]) == [3_000_050, 2_000_000]
    assert list(debts["due_date"]) == [date(2026, 10, 1), date(2026, 11, 24)]
    assert list(debts["days_past_due"]) == [50, -4]


def test_snapshot_balance_is_1c_balance_and_aging_buckets_by_due_date():
    movements = pd.DataFrame(
        [
            movement("2026-06-01T10:00:00", "Receipt", "10000.00"),  # due 07-01: 142 days -> 90+
            movement("2026-09-10T10:00:00", "Receipt", "5000.00"),  # due 10-10: 41 days -> 31-60
            movement("2026-11-01T10:00:00", "Receipt", "700.01"),  # due 12-01: current
        ]
    )
    balances = pd.DataFrame(
        [
            {"counterparty_ref": "cp1", "contract_ref": "k1", "settlement_type": "Долг", "amount": D("15700.01")},
            {"counterparty_ref": "cp1", "contract_ref": "k1", "settlement_type": "Аванс", "amount": D("-200.00")},
        ]
    )
    snap = receivables_by_contract(balances, movements, CONTRACTS, AS_OF, AgingRules(grace_days=3))
    row = snap.iloc[0]
    assert row["balance"] == D("15500.01") and row["debt"] == D("15700.01") and row["advances"] == D("200.00")
    assert row["aging_90_plus"] == D("10000.00") and row["aging_31_60"] == D("5000.00")
    assert row["aging_current"] == D("700.01") and row["aging_1_30"] == D("0.00")
    assert row["overdue_amount"] == D("15000.00") and row["days_overdue"] == 142
    assert row["unexplained"] == D("0.00")


def test_grace_days_and_default_term_when_contract_says_zero():
    movements = pd.DataFrame([movement("2026-11-04T09:00:00", "Receipt", "1000.00", contract="k2")])
    balances = pd.DataFrame(
        [{"counterparty_ref": "cp1", "contract_ref": "k2", "settlement_type": "Долг", "amount": D("1000.00")}]
    )
    # default term 14 -> due 11-18, 2 days past due: inside 3 grace days, so not overdue yet
    snap = receivables_by_contract(balances, movements, CONTRACTS, AS_OF, AgingRules(14, grace_days=3))
    assert snap.iloc[0]["overdue_amount"] == D("0.00") and snap.iloc[0]["aging_1_30"] == D("1000.00")
    snap = receivables_by_contract(balances, movements, CONTRACTS, AS_OF, AgingRules(14, grace_days=0))
    assert snap.iloc[0]["overdue_amount"] == D("1000.00") and snap.iloc[0]["days_overdue"] == 2


def test_payment_calendar_overrides_contract_term():
    movements = pd.DataFrame([movement("2026-10-01T09:00:00", "Receipt", "500.00", order="o1")])
    balances = pd.DataFrame(
        [{"counterparty_ref": "cp1", "contract_ref": "k1", "settlement_type": "Долг", "amount": D("500.00")}]
    )
    calendar = pd.DataFrame({"order_ref": ["o1", "o1"], "due_date": [date(2026, 10, 5), date(2026, 10, 10)]})
    snap = receivables_by_contract(balances, movements, CONTRACTS, AS_OF, payment_calendar=calendar)
    assert snap.iloc[0]["oldest_due_date"] == date(2026, 10, 10) and snap.iloc[0]["days_overdue"] == 41


def test_unexplained_difference_is_reported_not_invented():
    movements = pd.DataFrame([movement("2026-11-01T09:00:00", "Receipt", "300.00")])
    balances = pd.DataFrame(
        [{"counterparty_ref": "cp1", "contract_ref": "k1", "settlement_type": "Долг", "amount": D("1300.00")}]
    )
    snap = receivables_by_contract(balances, movements, CONTRACTS, AS_OF)
    assert snap.iloc[0]["unexplained"] == D("1000.00") and snap.iloc[0]["balance"] == D("1300.00")


def test_counterparty_rollup_sums_contracts_and_keeps_worst_days():
    movements = pd.DataFrame(
        [
            movement("2026-08-01T10:00:00", "Receipt", "100.00", contract="k1"),
            movement("2026-11-10T10:00:00", "Receipt", "50.00", contract="k2"),
        ]
    )
    balances = pd.DataFrame(
        [
            {"counterparty_ref": "cp1", "contract_ref": "k1", "settlement_type": "Долг", "amount": D("100.00")},
            {"counterparty_ref": "cp1", "contract_ref": "k2", "settlement_type": "Долг", "amount": D("50.00")},
        ]
    )
    rolled = receivables_by_counterparty(receivables_by_contract(balances, movements, CONTRACTS, AS_OF))
    assert len(rolled) == 1 and rolled.iloc[0]["balance"] == D("150.00")
    assert rolled.iloc[0]["days_overdue"] == 81


def test_fractions_of_a_kopeck_are_refused():
    with pytest.raises(ValueError, match="kopeck"):
        to_kopecks(pd.Series([D("1.005")]))


def test_a_contract_with_only_an_advance_rolls_up_with_no_due_date():
    movements = pd.DataFrame([movement("2026-08-01T10:00:00", "Receipt", "100.00", contract="k1")])
    balances = pd.DataFrame(
        [
            {"counterparty_ref": "cp1", "contract_ref": "k1", "settlement_type": "Долг", "amount": D("100.00")},
            {"counterparty_ref": "cp1", "contract_ref": "k2", "settlement_type": "Аванс", "amount": D("-40.00")},
        ]
    )
    by_contract = receivables_by_contract(balances, movements, CONTRACTS, AS_OF)
    assert by_contract.set_index("contract_ref").loc["k2", "oldest_due_date"] is None
    rolled = receivables_by_counterparty(by_contract)
    assert rolled.iloc[0]["balance"] == D("60.00") and rolled.iloc[0]["oldest_due_date"] == date(2026, 8, 31)
