"""Change capture without I/O: the cursor, the sweep's dedupe inside the overlap, own writes, offline events."""

from __future__ import annotations

from datetime import timedelta

from b24_1c_assets.domain import change_capture as cc

OVERLAP = timedelta(minutes=10)


def hit(record_id: int, stamp: str, user: int = 5) -> dict:
    return {"ID": str(record_id), "DATE_MODIFY": stamp, "MODIFY_BY_ID": str(user)}


def test_cursor_round_trips_and_an_empty_cursor_is_a_fresh_start():
    cursor = cc.CaptureCursor(
        watermark="2026-11-25T14:30:00+03:00",
        seen={"deal:4": "2026-11-25T14:30:00+03:00"},
        pending={"run_key": "k", "base_key": "k", "process_id": "p", "tags": {"a": "b"}},
        bound=True,
        attempt=2,
    )
    assert cc.CaptureCursor.load(cursor.dump()) == cursor
    assert cc.CaptureCursor.load(None) == cc.CaptureCursor() == cc.CaptureCursor.load("")


def test_sweep_bound_is_watermark_minus_overlap_in_its_own_offset():
    assert cc.sweep_from("2026-11-25T14:30:00+03:00", OVERLAP) == "2026-11-25T14:20:00+03:00"


def test_sweep_hits_seen_with_the_same_stamp_are_not_changes_again():
    first = cc.evaluate_sweep(
        {"deal": [hit(1, "2026-11-25T14:30:00+03:00"), hit(2, "2026-11-25T14:25:00+03:00")]},
        watermark="2026-11-25T14:00:00+03:00",
        seen={},
        overlap=OVERLAP,
        own_user_id=1,
    )
    assert first.changed == {"deal": {1, 2}}
    assert first.watermark == "2026-11-25T14:30:00+03:00"
    # next sweep starts at 14:20 and sees both again, deal 2 modified once more
    second = cc.evaluate_sweep(
        {"deal": [hit(1, "2026-11-25T14:30:00+03:00"), hit(2, "2026-11-25T14:31:00+03:00")]},
        watermark=first.watermark,
        seen=first.seen,
        overlap=OVERLAP,
        own_user_id=1,
    )
    assert second.changed == {"deal": {2}}
    assert second.watermark == "2026-11-25T14:31:00+03:00"


def test_seen_keeps_only_what_the_next_overlap_window_can_return():
    outcome = cc.evaluate_sweep(
        {
            "deal": [hit(1, "2026-11-25T13:00:00+03:00"), hit(2, "2026-11-25T14:30:00+03:00")],
            "company": [hit(3, "2026-11-25T14:25:00+03:00")],
        },
        watermark=None,
        seen={"deal:9": "2026-11-24T10:00:00+03:00"},
        overlap=OVERLAP,
        own_user_id=None,
    )
    assert set(outcome.seen) == {"deal:2", "company:3"}
    assert outcome.changed == {"deal": {1, 2}, "company": {3}}


def test_the_integration_users_own_writes_are_dropped_and_counted():
    outcome = cc.evaluate_sweep(
        {
            "deal": [hit(1, "2026-11-25T14:30:00+03:00", user=1), hit(2, "2026-11-25T14:31:00+03:00", user=7)],
            "company": [hit(3, "2026-11-25T14:32:00+03:00", user=1)],
        },
        watermark="2026-11-25T14:00:00+03:00",
        seen={},
        overlap=OVERLAP,
        own_user_id=1,
    )
    assert outcome.changed == {"deal": {2}}
    assert outcome.own == 2
    assert outcome.watermark == "2026-11-25T14:32:00+03:00"  # own writes still move the watermark
    again = cc.evaluate_sweep(
        {"company": [hit(3, "2026-11-25T14:32:00+03:00", user=1)]},
        watermark=outcome.watermark,
        seen=outcome.seen,
        overlap=OVERLAP,
        own_user_id=1,
    )
    assert (again.changed, again.own) == ({}, 0)  # seen: not counted twice


def test_an_empty_sweep_keeps_the_watermark():
    outcome = cc.evaluate_sweep(
        {"deal": [], "company": []}, watermark="2026-11-25T14:00:00+03:00", seen={}, overlap=OVERLAP, own_user_id=1
    )
    assert (outcome.changed, outcome.watermark, outcome.own) == ({}, "2026-11-25T14:00:00+03:00", 0)


def test_events_name_entities_and_ids_and_unknown_ones_are_ignored():
    events = [
        {"EVENT_NAME": "ONCRMDEALUPDATE", "EVENT_DATA": {"FIELDS": {"ID": 5}}},
        {"EVENT_NAME": "onCrmDealAdd", "EVENT_DATA": {"FIELDS": {"ID": "6"}}},
        {"EVENT_NAME": "ONCRMCOMPANYUPDATE", "EVENT_DATA": {"FIELDS": {"ID": 2}}},
        {"EVENT_NAME": "ONCRMREQUISITEADD", "EVENT_DATA": {"FIELDS": {"ID": 9}}},
        {"EVENT_NAME": "ONCRMCONTACTUPDATE", "EVENT_DATA": {"FIELDS": {"ID": 3}}},
        {"EVENT_NAME": "ONCRMDEALUPDATE", "EVENT_DATA": {}},
    ]
    assert cc.changes_from_events(events) == {"deal": {5, 6}, "company": {2}, "requisite": {9}}
    assert set(cc.WATCHED_EVENTS) >= {"ONCRMDEALUPDATE", "ONCRMCOMPANYADD", "ONCRMREQUISITEUPDATE"}


def test_merge_unions_sources_and_drops_empty_entities():
    assert cc.merge({"deal": {1}}, {"deal": {2}, "company": set()}, {"company": {3}}) == {
        "deal": {1, 2},
        "company": {3},
    }
