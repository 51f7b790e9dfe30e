"""The crm_change_capture sensor against a real sandbox portal: first tick, changes by others, our own writes
(loop prevention), events confirmed only after the run succeeded, a lost event caught by the sweep."""

from __future__ import annotations

import json

import dagster as dg
import pytest
import requests

from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.defs.automation.sensors import SENSOR_NAME, crm_change_capture
from b24_1c_assets.defs.resources import Bitrix24Resource
from b24_1c_assets.domain import change_capture as cc
from b24_1c_assets.sync.bitrix24_writes import OUR_CONNECTOR, WriteCommand, apply_commands

MANAGER = 7  # a sales manager with a webhook of their own: not the integration user


@pytest.fixture
def crm(portal_factory):
    return portal_factory(rate=1000.0, burst=1000)


@pytest.fixture
def tick(crm):
    instance = dg.DagsterInstance.ephemeral()
    resource = Bitrix24Resource(webhook_url=crm.webhook_url, rate="1000", burst="1000")
    state = {"cursor": None}

    def run() -> dg.SensorResult:
        context = dg.build_sensor_context(instance=instance, cursor=state["cursor"], sensor_name=SENSOR_NAME,
                                          resources={"bitrix24": resource})
        result = crm_change_capture(context)
        state["cursor"] = result.cursor
        return result

    run.instance = instance
    run.cursor = lambda: cc.CaptureCursor.load(state["cursor"])
    return run


def manager_updates(crm, entity: str, record_id: int, **fields) -> None:
    base = crm.add_webhook(MANAGER)
    answer = requests.post(f"{base}crm.{entity}.update", json={"id": record_id, "fields": fields}, timeout=10)
    assert answer.status_code == 200, answer.text


def our_queue(crm) -> list[int]:
    return sorted(e.record_id for e in crm.state.events.values() if e.connector == OUR_CONNECTOR)


def finish_run(instance: dg.DagsterInstance, run_key: str, *, ok: bool) -> None:
    """A real run in the instance carrying the sensor's run key, ending as asked (what the daemon would launch)."""
    @dg.op
    def work():
        if not ok:
            raise RuntimeError("incremental_sync failed")

    @dg.job(name="incremental_sync")
    def stand_in():
        work()

    result = stand_in.execute_in_process(instance=instance, raise_on_error=False,
                                         tags={"dagster/run_key": run_key, "dagster/sensor_name": SENSOR_NAME})
    assert result.success is ok


def deal_ids(crm, n: int) -> list[int]:
    return sorted(crm.state.tables["deal"].rows)[:n]


def test_first_tick_binds_our_queue_and_starts_at_the_newest_modification(crm, tick):
    result = tick()
    assert not result.run_requests and "started" in result.skip_reason.skip_message
    cursor = tick.cursor()
    newest = max((r["DATE_MODIFY"] for t in ("deal", "company") for r in crm.state.tables[t].rows.values()),
                 key=cc.parse_wire_time)
    assert cursor.watermark == newest and cursor.bound
    assert set(cc.WATCHED_EVENTS) <= crm.state.offline_bindings[OUR_CONNECTOR]
    assert not tick().run_requests  # nothing changed since


def test_a_managers_change_launches_incremental_sync_and_our_own_writes_never_come_back(crm, tick):
    tick()
    ours, theirs = deal_ids(crm, 2)
    client = Bitrix24Client(crm.webhook_url, rate=1000, burst=1000)
    outcome = apply_commands(client, [WriteCommand("d", "crm.deal.update",
                                                   {"id": ours, "fields": {"COMMENTS": "из 1С"}})])
    assert outcome[0].status == "ok"
    assert crm.state.record("deal", ours)["MODIFY_BY_ID"] == str(crm.user_id)  # the webhook user wrote it
    assert our_queue(crm) == []  # auth_connector kept it out of our queue ...
    assert any(e.record_id == ours for e in crm.state.events.values() if e.connector == "")  # ... not others'
    result = tick()
    assert not result.run_requests and result.skip_reason.skip_message == "no CRM change"
    assert f"deal:{ours}" in tick.cursor().seen  # the sweep saw it and dropped it as our own

    manager_updates(crm, "deal", theirs, COMMENTS="скидка 5%")
    assert crm.state.record("deal", theirs)["MODIFY_BY_ID"] == str(MANAGER)
    result = tick()
    [request] = result.run_requests
    assert request.tags["changed_deals"] == str(theirs)
    assert request.tags["trigger"] == "change_capture" and request.run_key.startswith("crm-changes-")
    assert tick.cursor().pending["run_key"] == request.run_key


def test_events_are_confirmed_only_after_the_run_succeeded(crm, tick):
    tick()
    [deal] = deal_ids(crm, 1)
    manager_updates(crm, "deal", deal, COMMENTS="новая цена")
    [request] = tick().run_requests
    assert our_queue(crm) == [deal]

    waiting = tick()  # no run yet: nothing cleared, nothing relaunched
    assert not waiting.run_requests and "waiting for run" in waiting.skip_reason.skip_message
    assert our_queue(crm) == [deal]

    finish_run(tick.instance, request.run_key, ok=False)
    [retry] = tick().run_requests  # failed: the same reserved events, a fresh run
    assert retry.run_key == f"{request.run_key}-retry1" and retry.tags["changed_deals"] == str(deal)
    assert our_queue(crm) == [deal]

    finish_run(tick.instance, retry.run_key, ok=True)
    done = tick()
    assert not done.run_requests
    assert our_queue(crm) == []  # confirmed with event.offline.clear
    assert tick.cursor().pending is None
    clears = [c for c in crm.calls("event.offline.clear")]
    assert clears and all(json.dumps(c).find(crm.webhook_code) < 0 for c in clears)


def test_a_lost_event_is_still_caught_by_the_sweep(crm, tick):
    tick()
    [company] = sorted(crm.state.tables["company"].rows)[:1]
    manager_updates(crm, "company", company, COMMENTS="новый адрес")
    for event_id in [i for i, e in crm.state.events.items() if e.connector == OUR_CONNECTOR]:
        del crm.state.events[event_id]  # the queue lost it
    [request] = tick().run_requests
    assert request.tags["changed_companies"] == str(company)
    assert tick.cursor().pending["process_id"] is None  # nothing to confirm: the sweep found it


def test_a_run_the_daemon_will_retry_is_waited_for_not_relaunched(crm):
    with dg.instance_for_test(overrides={"run_retries": {"enabled": True, "max_retries": 1}}) as instance:
        resource = Bitrix24Resource(webhook_url=crm.webhook_url, rate="1000", burst="1000")
        cursor = None

        def tick() -> dg.SensorResult:
            nonlocal cursor
            result = crm_change_capture(dg.build_sensor_context(instance=instance, cursor=cursor,
                                                                resources={"bitrix24": resource}))
            cursor = result.cursor
            return result

        tick()
        [deal] = deal_ids(crm, 1)
        manager_updates(crm, "deal", deal, COMMENTS="ещё раз")
        [request] = tick().run_requests
        finish_run(instance, request.run_key, ok=False)  # failed, marked for the daemon's retry
        waiting = tick()
        assert not waiting.run_requests and "QUEUED" in waiting.skip_reason.skip_message
        [failed] = instance.get_runs(limit=1)

        finish_run(instance, "daemon-retry", ok=True)  # the daemon's retry ran and succeeded
        [retried] = instance.get_runs(limit=1)
        instance.add_run_tags(failed.run_id, {"dagster/auto_retry_run_id": retried.run_id})
        assert not tick().run_requests
        assert our_queue(crm) == []  # confirmed on the retry's success
        assert cc.CaptureCursor.load(cursor).pending is None


@pytest.mark.timeout(900)
def test_a_whole_sync_writing_to_the_crm_does_not_trigger_change_capture(sandbox):
    """Loop prevention end to end: everything full_sync writes to the CRM stays out of our queue and the sweep."""
    from b24_1c_assets.runner import run_full_sync

    portal = sandbox.portal
    instance = dg.DagsterInstance.ephemeral()
    resource = Bitrix24Resource(webhook_url=portal.webhook_url, rate="50", burst="50")

    def tick(cursor):
        return crm_change_capture(dg.build_sensor_context(instance=instance, cursor=cursor,
                                                          resources={"bitrix24": resource}))

    started = tick(None)
    others_before = sum(1 for e in portal.state.events.values() if e.connector == "")
    assert run_full_sync(trigger="test", instance=instance).success
    writes = [c for c in portal.request_log if c.get("kind") == "write" and c["method"] != "event.bind"]
    others_after = sum(1 for e in portal.state.events.values() if e.connector == "")
    assert writes and others_after > others_before  # the sync did change the CRM; other listeners hear it
    assert our_queue(portal) == []
    after = tick(started.cursor)
    assert not after.run_requests, after.run_requests[0].tags
    assert after.skip_reason.skip_message == "no CRM change"
