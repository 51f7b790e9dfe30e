import json
from decimal import Decimal as D

import pandas as pd

from b24_1c_assets.domain.push_plan import GuardLimits, guard_plan, payload_hash, payload_of, plan_updates

FIELDS = ["debt", "status"]


def pushed(key, debt, status):
    return {"key": key, "payload": json.dumps(payload_of({"debt": D(debt), "status": status}, FIELDS))}


def test_only_changed_never_pushed_and_failed_rows_are_sent():
    desired = pd.DataFrame(
        [
            {"key": "1", "debt": D("100.00"), "status": "ok"},  # unchanged
            {"key": "2", "debt": D("250.50"), "status": "hold"},  # changed
            {"key": "3", "debt": D("0.00"), "status": "ok"},  # never pushed
            {"key": "4", "debt": D("10.00"), "status": "ok"},  # unchanged but failed last run
        ]
    )
    last = pd.DataFrame([pushed("1", "100", "ok"), pushed("2", "250.5", "ok"), pushed("4", "10", "ok")])
    plan = plan_updates(desired, last, failed_keys={"4"}, fields=FIELDS).set_index("key")
    assert plan.loc["1", "operation"] == "noop"
    assert plan.loc["2", "operation"] == "update" and plan.loc["2", "changed_fields"] == "status"
    assert json.loads(plan.loc["2", "before"])["status"] == "ok"
    assert json.loads(plan.loc["2", "after"]) == {"debt": "250.50", "status": "hold"}
    assert plan.loc["3", "reason"] == "never pushed"
    assert plan.loc["4", "reason"] == "failed last run"
    assert plan.loc["2", "payload_hash"] == payload_hash({"debt": "250.50", "status": "hold"})


def test_guard_stops_mass_change_but_not_an_initial_load():
    desired = pd.DataFrame([{"key": str(i), "debt": D("0.00"), "status": "ok"} for i in range(100)])
    last = pd.DataFrame([pushed(str(i), "1000", "ok") for i in range(100)])
    plan = plan_updates(desired, last, set(), FIELDS)
    verdict = guard_plan(plan, population=100, limits=GuardLimits(max_changes=500, max_change_share=0.2))
    assert not verdict.passed and "100% of 100 rows would change" in verdict.reasons[0]

    initial = plan_updates(desired, pd.DataFrame(columns=["key", "payload"]), set(), FIELDS)
    verdict = guard_plan(initial, population=100, limits=GuardLimits())
    assert verdict.passed and verdict.figures["initial"] == 100


def test_guard_counts_hold_flips():
    plan = pd.DataFrame(columns=["key", "operation", "reason"])
    verdict = guard_plan(plan, population=1000, limits=GuardLimits(max_new_holds=50), new_holds=51)
    assert not verdict.passed and "51 clients would flip to hold" in verdict.reasons[0]


def test_daily_drift_is_written_but_does_not_trip_the_guard():
    fields = ["debt", "as_of"]
    desired = pd.DataFrame(
        [{"key": str(i), "debt": D("10.00") if i < 90 else D("99.00"), "as_of": "2026-11-30"} for i in range(100)]
    )
    last = pd.DataFrame(
        [
            {"key": str(i), "payload": json.dumps(payload_of({"debt": D("10.00"), "as_of": "2026-11-29"}, fields))}
            for i in range(100)
        ]
    )
    plan = plan_updates(desired, last, set(), fields)
    assert (plan["operation"] == "update").all()  # every row is still written: the date moved
    limits = GuardLimits(max_change_share=0.2, drift_fields=("as_of",))
    verdict = guard_plan(plan, population=100, limits=limits)
    assert verdict.passed and verdict.figures["drift"] == 90 and verdict.figures["changes"] == 10
    assert not guard_plan(plan, population=100, limits=GuardLimits(max_change_share=0.2)).passed


def test_operations_and_statuses_are_the_text_the_journal_already_holds():
    from b24_1c_assets.domain.push_plan import Operation, Status

    # StrEnums: old sync.results rows and SQL filters on the plain strings keep matching
    assert [
        str(o)
        for o in (
            Operation.ADD,
            Operation.CREATE,
            Operation.UPDATE,
            Operation.NOOP,
            Operation.LINK,
            Operation.SKIP,
            Operation.INVALID,
            Operation.HOLD_BACK,
        )
    ] == ["add", "create", "update", "noop", "link", "skip", "invalid", "held_back"]
    assert {str(s) for s in Status} == {"ok", "failed", "rejected", "conflict", "deferred", "dry_run"}
    assert {Operation.UPDATE: 1}.get("update") == 1 and Status.OK == "ok"
