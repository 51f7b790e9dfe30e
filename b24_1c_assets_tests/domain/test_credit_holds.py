from datetime import date
from decimal import Decimal as D

import pandas as pd

from b24_1c_assets.domain.credit_holds import CLEAR, HELD, RELEASE, STATE_COLUMNS, SUSPEND, plan_holds, suspended_stage
from b24_1c_assets.domain.credit_policy import CreditPolicy

POLICY = CreditPolicy.from_dict(
    {"limits": {"default": 100000}, "hold": {"overdue_days": 30}, "release": {"margin": 0.05}}
)
DAY1, DAY2, DAY3 = date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)
EMPTY = pd.DataFrame()


def assessed(company_id, status, balance, days=0):
    return {
        "company_id": company_id,
        "status": status,
        "status_reasons": f"status {status}",
        "balance": D(balance),
        "credit_limit": D("100000"),
        "days_overdue": days,
        "assigned_by_id": 5,
    }


def deals(*rows):
    return pd.DataFrame([{"deal_id": d, "company_id": c, "category_id": cat, "stage_id": s} for d, c, cat, s in rows])


def test_hold_suspends_open_deals_in_their_own_pipeline_and_remembers_stages():
    plan = plan_holds(
        pd.DataFrame([assessed(1, "hold", "150000"), assessed(2, "ok", "10")]),
        EMPTY,
        EMPTY,
        deals((10, 1, 0, "EXECUTING"), (11, 1, 1, "C1:NEW"), (12, 2, 0, "NEW")),
        EMPTY,
        POLICY,
        DAY1,
    )
    moves = plan.deal_moves.set_index("deal_id")
    assert moves.loc[10, "to_stage"] == "HOLD" and moves.loc[11, "to_stage"] == "C1:HOLD"
    assert set(moves["action"]) == {SUSPEND} and 12 not in moves.index
    assert dict(zip(plan.suspended["deal_id"], plan.suspended["previous_stage"])) == {10: "EXECUTING", 11: "C1:NEW"}
    assert list(plan.transitions["company_id"]) == [1]


def test_release_after_payment_restores_previous_stages_once():
    day1 = plan_holds(
        pd.DataFrame([assessed(1, "hold", "150000")]),
        EMPTY,
        EMPTY,
        deals((10, 1, 1, "C1:EXECUTING")),
        EMPTY,
        POLICY,
        DAY1,
    )
    # client paid: balance well inside the limit
    day2 = plan_holds(
        pd.DataFrame([assessed(1, "ok", "1000")]),
        day1.state,
        EMPTY,
        deals((10, 1, 1, "C1:HOLD")),
        day1.suspended,
        POLICY,
        DAY2,
    )
    assert list(day2.deal_moves["action"]) == [RELEASE]
    assert day2.deal_moves.iloc[0]["to_stage"] == "C1:EXECUTING"
    assert list(day2.transitions["to_state"]) == [CLEAR]
    # next run: nothing to do, nothing to notify
    day3 = plan_holds(
        pd.DataFrame([assessed(1, "ok", "1000")]),
        day2.state,
        EMPTY,
        deals((10, 1, 1, "C1:EXECUTING")),
        day2.suspended,
        POLICY,
        DAY3,
    )
    assert day3.deal_moves.empty and day3.transitions.empty


def test_no_flapping_near_the_limit():
    day1 = plan_holds(pd.DataFrame([assessed(1, "hold", "100001")]), EMPTY, EMPTY, EMPTY, EMPTY, POLICY, DAY1)
    # just under the limit but inside the 5% margin: stays held, no transition
    day2 = plan_holds(pd.DataFrame([assessed(1, "warning", "99000")]), day1.state, EMPTY, EMPTY, EMPTY, POLICY, DAY2)
    assert list(day2.state["state"]) == [HELD] and day2.transitions.empty
    assert day2.state.iloc[0]["since"] == DAY1


def test_manual_release_with_expiry_is_honoured_and_expires():
    day1 = plan_holds(
        pd.DataFrame([assessed(1, "hold", "150000")]), EMPTY, EMPTY, deals((10, 1, 0, "NEW")), EMPTY, POLICY, DAY1
    )
    releases = pd.DataFrame([{"company_id": 1, "until": DAY2, "reason": "оплата гарантирована письмом"}])
    day2 = plan_holds(
        pd.DataFrame([assessed(1, "hold", "150000")]),
        day1.state,
        releases,
        deals((10, 1, 0, "HOLD")),
        day1.suspended,
        POLICY,
        DAY2,
    )
    assert list(day2.state["state"]) == [CLEAR] and "manual release" in day2.state.iloc[0]["reasons"]
    assert list(day2.deal_moves["to_stage"]) == ["NEW"]
    day3 = plan_holds(
        pd.DataFrame([assessed(1, "hold", "150000")]),
        day2.state,
        releases,
        deals((10, 1, 0, "NEW")),
        day2.suspended,
        POLICY,
        DAY3,
    )
    assert list(day3.state["state"]) == [HELD] and list(day3.deal_moves["to_stage"]) == ["HOLD"]


def test_deal_moved_out_by_hand_is_not_moved_back():
    day1 = plan_holds(
        pd.DataFrame([assessed(1, "hold", "150000")]), EMPTY, EMPTY, deals((10, 1, 0, "NEW")), EMPTY, POLICY, DAY1
    )
    day2 = plan_holds(
        pd.DataFrame([assessed(1, "ok", "0")]),
        day1.state,
        EMPTY,
        deals((10, 1, 0, "PREPARATION")),
        day1.suspended,
        POLICY,
        DAY2,
    )
    assert day2.deal_moves.empty and day2.suspended.empty


def test_suspended_stage_names():
    assert suspended_stage(0) == "HOLD" and suspended_stage(2) == "C2:HOLD"
    assert list(pd.DataFrame(columns=STATE_COLUMNS).columns) == ["company_id", "state", "since", "reasons"]


def test_a_client_held_for_its_overdue_amount_is_not_released_by_its_balance():
    # held because of the overdue amount while well inside the limit: the balance rule alone must not release
    day1 = plan_holds(pd.DataFrame([assessed(1, "hold", "20000", days=3)]), EMPTY, EMPTY, EMPTY, EMPTY, POLICY, DAY1)
    day2 = plan_holds(
        pd.DataFrame([assessed(1, "hold", "20000", days=4)]), day1.state, EMPTY, EMPTY, EMPTY, POLICY, DAY2
    )
    assert list(day2.state["state"]) == [HELD] and day2.transitions.empty
    day3 = plan_holds(pd.DataFrame([assessed(1, "ok", "0")]), day2.state, EMPTY, EMPTY, EMPTY, POLICY, DAY3)
    assert list(day3.state["state"]) == [CLEAR] and list(day3.transitions["to_state"]) == [CLEAR]
