"""Sandbox portal: several inbound webhooks, each acting as its own user, and failed offline events
(`event.offline.error`): what change capture relies on to tell our writes from everyone else's."""

from __future__ import annotations

import pytest
import requests


def call(base, method: str, params: dict | None = None) -> dict:
    """`base`: a webhook URL, or the portal itself for `event.*` (application context only)."""
    if not isinstance(base, str):
        response = requests.post(
            f"{base.base_url}/rest/{method}", json={**(params or {}), "auth": base.application_token()}, timeout=10
        )
    else:
        response = requests.post(base + method, json=params or {}, timeout=10)
    body = response.json()
    body["_status"] = response.status_code
    return body


@pytest.fixture
def empty(portal_factory):
    return portal_factory(rate=1000.0, burst=1000, seed=False)


def test_each_webhook_writes_as_its_user(empty):
    manager = empty.add_webhook(7)
    deal = call(empty.webhook_url, "crm.deal.add", {"fields": {"TITLE": "Своя"}})["result"]
    row = call(empty.webhook_url, "crm.deal.get", {"id": deal})["result"]
    assert (row["CREATED_BY_ID"], row["MODIFY_BY_ID"]) == ("1", "1")
    assert call(manager, "crm.deal.update", {"id": deal, "fields": {"COMMENTS": "руками"}})["result"] is True
    row = call(empty.webhook_url, "crm.deal.get", {"id": deal})["result"]
    assert (row["CREATED_BY_ID"], row["MODIFY_BY_ID"]) == ("1", "7")
    events = call(empty, "event.offline.get", {})["result"]["events"]
    assert [(e["EVENT_NAME"], e["EVENT_ADDITIONAL"]["user_id"]) for e in events] == [
        ("ONCRMDEALADD", "1"),
        ("ONCRMDEALUPDATE", "7"),
    ]


def test_a_webhook_code_is_good_only_for_its_own_user(empty):
    manager = empty.add_webhook(7, code="manager-code")
    assert call(manager, "crm.deal.list")["_status"] == 200
    stolen = manager.replace("/rest/7/", "/rest/1/")
    assert call(stolen, "crm.deal.list")["_status"] == 401


def test_failed_events_leave_the_queue_until_asked_for_with_error_1(empty):
    call(empty.webhook_url, "crm.company.add", {"fields": {"TITLE": "A"}})
    got = call(empty, "event.offline.get", {"clear": 0})["result"]
    assert call(empty, "event.offline.error", {"process_id": got["process_id"]})["result"] is True
    assert call(empty, "event.offline.get", {"clear": 0})["result"]["events"] == []
    listed = call(empty, "event.offline.list")["result"]
    assert [e["ERROR"] for e in listed] == ["1"]
    retried = call(empty, "event.offline.get", {"clear": 0, "error": 1})["result"]
    assert [e["ID"] for e in retried["events"]] == [e["ID"] for e in got["events"]]
    call(empty, "event.offline.clear", {"process_id": retried["process_id"]})
    assert empty.state.events == {}
