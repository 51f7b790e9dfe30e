"""The crm_change_capture sensor against a real sandbox portal, in both ways in:

- webhook mode (the default): `event.*` is refused to an inbound webhook, so the sources are the DATE_MODIFY
  sweep and the outbound-webhook event journal (written by the HTTP service; here appended in its record shape);
- application mode: a local application's OAuth tokens (renewed with a rotating refresh token), offline events.

First tick, changes by others, our own writes (loop prevention), events confirmed only after the run
succeeded, a lost event caught by the sweep."""

from __future__ import annotations

import json
import logging
import os
import stat

import dagster as dg
import pytest
import requests

from b24_1c_assets.bitrix24.auth import store_tokens
from b24_1c_assets.defs.automation.sensors import SENSOR_NAME, crm_change_capture
from b24_1c_assets.domain import change_capture as cc
from b24_1c_assets.lib.resources import Bitrix24Resource
from b24_1c_assets.sync.bitrix24_writes import OUR_CONNECTOR, WriteCommand, apply_commands
from b24_1c_assets.sync.event_journal import EventJournal, journal_path

MANAGER = 7  # a sales manager with a webhook of their own: not the integration user


def application_resource(portal, token_file, **kw) -> Bitrix24Resource:
    """The product configured as a local application of `portal` (installed now; tokens in `token_file`)."""
    installed = portal.install_application()
    store_tokens(str(token_file), installed["refresh_token"], user_id=installed["user_id"])
    return Bitrix24Resource(
        auth_mode="application",
        portal_url=portal.base_url + "/",
        client_id=installed["client_id"],
        client_secret=installed["client_secret"],
        token_file=str(token_file),
        oauth_server=portal.oauth_server,
        **kw,
    )


def product_resource(portal, mode: str, tmp_path, **kw) -> Bitrix24Resource:
    if mode == "application":
        return application_resource(portal, tmp_path / "secrets" / "b24.json", **kw)
    return Bitrix24Resource(webhook_url=portal.webhook_url, **kw)


@pytest.fixture
def crm(portal_factory):
    return portal_factory(rate=1000.0, burst=1000)


@pytest.fixture(params=["webhook", "application"])
def mode(request):
    return request.param


@pytest.fixture
def journal(tmp_path, monkeypatch):
    """The outbound-webhook event journal the HTTP service writes (B24_1C_EVENTS_DIR)."""
    monkeypatch.setenv("B24_1C_EVENTS_DIR", str(tmp_path / "events"))
    return EventJournal(journal_path())


@pytest.fixture
def tick(crm, mode, tmp_path, journal):
    instance = dg.DagsterInstance.ephemeral()
    resource = product_resource(crm, mode, tmp_path, rate="1000", burst="1000")
    state = {"cursor": None}

    def run() -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=instance, cursor=state["cursor"], sensor_name=SENSOR_NAME, resources={"bitrix24": resource}
        )
        result = crm_change_capture(context)
        state["cursor"] = result.cursor
        return result

    run.instance = instance
    run.mode = mode
    run.resource = resource
    run.cursor = lambda: cc.CaptureCursor.load(state["cursor"])
    return run


def deliver_outbound(crm, journal: EventJournal, event: str, record_id: int) -> None:
    """What a portal's outbound webhook + our service leave in the journal for one change (webhook mode)."""
    journal.append(
        [
            {
                "EVENT_NAME": event,
                "EVENT_DATA": {"FIELDS": {"ID": record_id}},
                "ts": 1764000000,
                "member_id": "sandbox",
                "domain": crm.host,
            }
        ]
    )


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

    result = stand_in.execute_in_process(
        instance=instance, raise_on_error=False, tags={"dagster/run_key": run_key, "dagster/sensor_name": SENSOR_NAME}
    )
    assert result.success is ok


def deal_ids(crm, n: int) -> list[int]:
    return sorted(crm.state.tables["deal"].rows)[:n]


def test_first_tick_starts_at_the_newest_modification_and_binds_only_as_an_application(crm, tick):
    result = tick()
    assert not result.run_requests and "started" in result.skip_reason.skip_message
    cursor = tick.cursor()
    newest = max(
        (r["DATE_MODIFY"] for t in ("deal", "company") for r in crm.state.tables[t].rows.values()),
        key=cc.parse_wire_time,
    )
    assert cursor.watermark == newest
    if tick.mode == "application":
        assert cursor.bound and cursor.offline_refused is None
        assert set(cc.WATCHED_EVENTS) <= crm.state.offline_bindings[OUR_CONNECTOR]
        assert "offline_events" in result.skip_reason.skip_message
    else:  # a webhook never calls event.* (the portal would refuse it)
        assert not cursor.bound and OUR_CONNECTOR not in crm.state.offline_bindings
        assert not [c for c in crm.request_log if str(c["method"]).startswith("event.")]
        assert "offline_events" not in result.skip_reason.skip_message
    assert not tick().run_requests  # nothing changed since


def test_refused_offline_events_switch_that_source_off_without_failing(crm, tmp_path):
    """A webhook gets 403 WRONG_AUTH_TYPE for event.*; an application installed by a user who is no portal
    administrator gets ACCESS_DENIED for offline binding. Neither fails the sensor: the sweep goes on."""
    refused = requests.post(
        crm.webhook_url + "event.bind", json={"event": "ONCRMDEALUPDATE", "event_type": "offline"}, timeout=10
    )
    assert refused.status_code == 403 and refused.json()["error"] == "WRONG_AUTH_TYPE"
    installed = crm.install_application(user_id=MANAGER)  # not an administrator
    token_file = tmp_path / "b24.json"
    store_tokens(str(token_file), installed["refresh_token"], user_id=MANAGER)
    resource = Bitrix24Resource(
        auth_mode="application",
        portal_url=crm.base_url + "/",
        client_id=installed["client_id"],
        client_secret=installed["client_secret"],
        token_file=str(token_file),
        oauth_server=crm.oauth_server,
        rate="1000",
        burst="1000",
    )
    instance = dg.DagsterInstance.ephemeral()
    first = crm_change_capture(dg.build_sensor_context(instance=instance, resources={"bitrix24": resource}))
    cursor = cc.CaptureCursor.load(first.cursor)
    assert cursor.offline_refused == "ACCESS_DENIED" and not cursor.bound
    assert "sources: sweep)" in first.skip_reason.skip_message
    [deal] = deal_ids(crm, 1)
    requests.post(crm.webhook_url + "crm.deal.update", json={"id": deal, "fields": {"COMMENTS": "x"}}, timeout=10)
    second = crm_change_capture(
        dg.build_sensor_context(instance=instance, cursor=first.cursor, resources={"bitrix24": resource})
    )
    [request] = second.run_requests  # the administrator's (user 1) change, found by the sweep
    assert request.tags["changed_deals"] == str(deal) and request.tags["change_sources"] == "sweep"


def test_a_managers_change_launches_incremental_sync_and_our_own_writes_never_come_back(crm, tick, journal):
    tick()
    ours, theirs = deal_ids(crm, 2)
    client = tick.resource.client()
    outcome = apply_commands(
        client, [WriteCommand("d", "crm.deal.update", {"id": ours, "fields": {"COMMENTS": "из 1С"}})]
    )
    assert outcome[0].status == "ok"
    assert crm.state.record("deal", ours)["MODIFY_BY_ID"] == str(crm.user_id)  # the integration user wrote it
    assert our_queue(crm) == []  # auth_connector kept it out of our queue ...
    assert any(e.record_id == ours for e in crm.state.events.values() if e.connector == "")  # ... not others'
    deliver_outbound(crm, journal, "ONCRMDEALUPDATE", ours)  # an outbound webhook fires for our write too
    result = tick()
    assert not result.run_requests and result.skip_reason.skip_message.startswith("no CRM change")
    assert f"deal:{ours}" in tick.cursor().seen  # the sweep saw it and dropped it as our own
    assert tick.cursor().journal_offset == journal.size()  # the journaled event was read and dropped as ours

    manager_updates(crm, "deal", theirs, COMMENTS="скидка 5%")
    assert crm.state.record("deal", theirs)["MODIFY_BY_ID"] == str(MANAGER)
    deliver_outbound(crm, journal, "ONCRMDEALUPDATE", theirs)
    result = tick()
    [request] = result.run_requests
    assert request.tags["changed_deals"] == str(theirs)
    assert request.tags["trigger"] == "change_capture" and request.run_key.startswith("crm-changes-")
    expected = {"sweep", "outbound_webhook"} | ({"offline_events"} if tick.mode == "application" else set())
    assert set(request.tags["change_sources"].split(",")) == expected
    assert tick.cursor().pending["run_key"] == request.run_key


def test_received_events_are_confirmed_only_after_the_run_succeeded(crm, tick, journal):
    tick()
    [deal] = deal_ids(crm, 1)
    manager_updates(crm, "deal", deal, COMMENTS="новая цена")
    deliver_outbound(crm, journal, "ONCRMDEALUPDATE", deal)
    [request] = tick().run_requests
    if tick.mode == "application":
        assert our_queue(crm) == [deal]
    assert tick.cursor().journal_offset < journal.size()  # journaled, not yet confirmed

    waiting = tick()  # no run yet: nothing cleared, nothing relaunched
    assert not waiting.run_requests and "waiting for run" in waiting.skip_reason.skip_message

    finish_run(tick.instance, request.run_key, ok=False)
    [retry] = tick().run_requests  # failed: the same events, a fresh run
    assert retry.run_key == f"{request.run_key}-retry1" and retry.tags["changed_deals"] == str(deal)
    assert tick.cursor().journal_offset < journal.size()

    finish_run(tick.instance, retry.run_key, ok=True)
    done = tick()
    assert not done.run_requests
    assert tick.cursor().pending is None and tick.cursor().journal_offset == journal.size()
    if tick.mode == "application":
        assert our_queue(crm) == []  # confirmed with event.offline.clear
        clears = crm.calls("event.offline.clear")
        assert clears and all(json.dumps(c).find(crm.webhook_code) < 0 for c in clears)


def test_a_journaled_event_alone_launches_a_run(crm, journal, portal_factory):
    """An event the sweep cannot see (its DATE_MODIFY is inside the already-seen overlap) still counts."""
    instance = dg.DagsterInstance.ephemeral()
    resource = Bitrix24Resource(webhook_url=crm.webhook_url, rate="1000", burst="1000")
    first = crm_change_capture(dg.build_sensor_context(instance=instance, resources={"bitrix24": resource}))
    [company] = sorted(crm.state.tables["company"].rows)[-1:]
    crm.state.tables["company"].rows[company]["MODIFY_BY_ID"] = str(MANAGER)  # a change the sweep already saw
    deliver_outbound(crm, journal, "ONCRMCOMPANYUPDATE", company)
    result = crm_change_capture(
        dg.build_sensor_context(instance=instance, cursor=first.cursor, resources={"bitrix24": resource})
    )
    [request] = result.run_requests
    assert request.tags["changed_companies"] == str(company)


def test_a_lost_event_is_still_caught_by_the_sweep(crm, tick):
    tick()
    [company] = sorted(crm.state.tables["company"].rows)[:1]
    manager_updates(crm, "company", company, COMMENTS="новый адрес")
    for event_id in [i for i, e in crm.state.events.items() if e.connector == OUR_CONNECTOR]:
        del crm.state.events[event_id]  # the queue lost it (and no outbound webhook delivered it)
    [request] = tick().run_requests
    assert request.tags["changed_companies"] == str(company)
    assert tick.cursor().pending["process_id"] is None  # nothing to confirm: the sweep found it


def test_application_tokens_are_renewed_with_a_rotating_refresh_token(crm, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")  # request lines: the OAuth query is masked
    token_file = tmp_path / "secrets" / "b24.json"
    resource = application_resource(crm, token_file, rate="1000", burst="1000")
    client = resource.client()
    assert client.call("scope") == ["catalog", "crm", "im", "user", "userfieldconfig"]
    first = json.loads(token_file.read_text())
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    crm.application.expire_access_tokens()  # an hour passes
    assert client.call("crm.deal.list", {"select": ["ID"], "start": -1})
    second = json.loads(token_file.read_text())
    assert second["refresh_token"] != first["refresh_token"] and crm.application.refreshes == 2
    spent = requests.get(
        f"{crm.oauth_server}/oauth/token/",
        timeout=10,
        params={
            "grant_type": "refresh_token",
            "client_id": resource.client_id,
            "client_secret": resource.client_secret,
            "refresh_token": first["refresh_token"],
        },
    )
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"  # the old one is spent
    # a second process sharing the file finds the renewed pair instead of spending the refresh token again
    twin = Bitrix24Resource(
        auth_mode="application",
        portal_url=crm.base_url + "/",
        client_id=resource.client_id,
        client_secret=resource.client_secret,
        token_file=str(token_file),
        oauth_server=crm.oauth_server,
        rate="1000",
        burst="1000",
    ).client()
    assert twin.call("scope") and crm.application.refreshes == 2
    for line in [str(client), repr(client), repr(resource.auth()), json.dumps(client.stats.as_dict())]:
        assert second["refresh_token"] not in line and resource.client_secret not in line
    assert second["access_token"] not in json.dumps([c for c in crm.request_log])
    assert "/oauth/token/" in caplog.text
    for secret in (first["refresh_token"], second["refresh_token"], second["access_token"], resource.client_secret):
        assert secret not in caplog.text


def test_a_run_the_daemon_will_retry_is_waited_for_not_relaunched(crm):
    with dg.instance_for_test(overrides={"run_retries": {"enabled": True, "max_retries": 1}}) as instance:
        resource = Bitrix24Resource(webhook_url=crm.webhook_url, rate="1000", burst="1000")
        cursor = None

        def tick() -> dg.SensorResult:
            nonlocal cursor
            result = crm_change_capture(
                dg.build_sensor_context(instance=instance, cursor=cursor, resources={"bitrix24": resource})
            )
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
        return crm_change_capture(
            dg.build_sensor_context(instance=instance, cursor=cursor, resources={"bitrix24": resource})
        )

    started = tick(None)
    others_before = sum(1 for e in portal.state.events.values() if e.connector == "")
    assert run_full_sync(trigger="test", instance=instance).success
    writes = [c for c in portal.request_log if c.get("kind") == "write" and c["method"] != "event.bind"]
    others_after = sum(1 for e in portal.state.events.values() if e.connector == "")
    assert writes and others_after > others_before  # the sync did change the CRM; other listeners hear it
    assert our_queue(portal) == []
    after = tick(started.cursor)
    assert not after.run_requests, after.run_requests[0].tags
    assert after.skip_reason.skip_message == "no CRM change (sources: sweep)"  # webhook, no journal yet


def test_outbound_webhook_events_reach_the_sensor_through_the_service(crm, tmp_path, monkeypatch):
    """End to end in webhook mode: the portal's outbound webhook POSTs each change to our HTTP service, the
    service journals it, the sensor reads the journal; our own writes (also POSTed) are dropped on re-read."""
    from b24_1c_assets.services.config import ServiceConfig
    from b24_1c_assets.services.server import ServiceThread

    journal_file = tmp_path / "events" / "bitrix24-events.jsonl"
    monkeypatch.setenv("B24_1C_EVENTS_DIR", str(journal_file.parent))
    token = "outbound-app-token-5f1c"
    service = ServiceThread(
        ServiceConfig(
            b24_event_token=token,
            events_journal=str(journal_file),
            analytics_db=str(tmp_path / "a.duckdb"),
            exchange_dir=str(tmp_path / "x"),
            review_decisions=str(tmp_path / "r.sqlite"),
        )
    ).start()
    try:
        crm.add_outbound_webhook(f"{service.url}/v1/bitrix24/events", list(cc.WATCHED_EVENTS), token)
        instance = dg.DagsterInstance.ephemeral()
        resource = Bitrix24Resource(webhook_url=crm.webhook_url, rate="1000", burst="1000")

        def tick(cursor):
            return crm_change_capture(
                dg.build_sensor_context(instance=instance, cursor=cursor, resources={"bitrix24": resource})
            )

        first = tick(None)
        ours, theirs = deal_ids(crm, 2)
        apply_commands(
            resource.client(), [WriteCommand("d", "crm.deal.update", {"id": ours, "fields": {"COMMENTS": "из 1С"}})]
        )
        manager_updates(crm, "deal", theirs, COMMENTS="скидка")
        crm.wait_for_deliveries()
        assert [(e["id"], e["status"]) for e in crm.outbound_log] == [(ours, 200), (theirs, 200)]
        # the sweep would find the manager's change too; make the journal the only way to see it
        seen = cc.CaptureCursor.load(first.cursor)
        seen.watermark = crm.state.record("deal", theirs)["DATE_MODIFY"]
        seen.seen = {f"deal:{theirs}": seen.watermark, f"deal:{ours}": crm.state.record("deal", ours)["DATE_MODIFY"]}
        [request] = tick(seen.dump()).run_requests
        assert request.tags["changed_deals"] == str(theirs)  # ours was journaled too, and dropped on re-read
        assert "outbound_webhook" in request.tags["change_sources"]
        assert token not in journal_file.read_text()  # the service keeps no token
    finally:
        service.stop()
