"""The operating-time budget (`limits.md`): the sandbox charges configured server time per method call, reports
it in `time.operating`, refuses past the budget (per caller, or per portal in the older docs' reading); the
client paces itself under a share of it, waits for `operating_reset_at` inside batch, and the error statuses of
both doc revisions are decided by code."""

from __future__ import annotations

import logging

import pytest
import requests

from b24_1c_assets.bitrix24 import Bitrix24Client, OperationTimeLimit, OverloadLimit
from b24_1c_assets.bitrix24.errors import AuthError, error_from_envelope
from b24_1c_assets.domain.push_plan import Status
from b24_1c_assets.sandbox.bitrix24_crm import CrmError
from b24_1c_assets.sync.bitrix24_reads import batch_read
from b24_1c_assets.sync.bitrix24_writes import WriteCommand, apply_commands

from .conftest import add_companies

COST = 0.1  # seconds charged per crm.company.update


def budget_portal(bx_portal, *, budget: float, window: float, scope: str = "caller", **kw):
    portal = bx_portal(
        operating_budget=budget, operating_costs={"crm.company.update": COST}, operating_scope=scope, **kw
    )
    portal.operating.window = window  # a short window keeps the test quick (the real one is 600 s)
    return portal


def client_of(url: str, **kw) -> Bitrix24Client:
    return Bitrix24Client(url, rate=500, burst=500, backoff_initial=0.01, backoff_max=0.05, **kw)


def updates(ids: list[int], rounds: int = 1) -> list[WriteCommand]:
    return [
        WriteCommand(f"{r}:{i}", "crm.company.update", {"id": i, "fields": {"COMMENTS": f"run {r}"}})
        for r in range(rounds)
        for i in ids
    ]


def test_the_sandbox_charges_the_configured_cost_and_reports_it(bx_portal):
    portal = budget_portal(bx_portal, budget=480, window=600)
    [company] = add_companies(portal, 1)
    first = requests.post(portal.webhook_url + "crm.company.update", json={"id": company, "fields": {}}, timeout=10)
    second = requests.post(portal.webhook_url + "crm.company.update", json={"id": company, "fields": {}}, timeout=10)
    assert first.json()["time"]["operating"] == pytest.approx(COST)
    assert second.json()["time"]["operating"] == pytest.approx(2 * COST)
    assert portal.operating_cost("crm.deal.update") == 0.03  # the default by verb (DEFAULT_OPERATING_COSTS)


def test_a_long_push_is_paced_under_the_share_and_never_refused(bx_portal, caplog):
    """Budget 20 s, share 50 %: 200 updates cost 20 s, the whole budget. Unpaced, the portal would refuse part of
    them; paced, the client waits for minute baskets to leave and the portal never says OPERATION_TIME_LIMIT."""
    portal = budget_portal(bx_portal, budget=20.0, window=3.0)
    ids = add_companies(portal, 100)
    client = client_of(portal.webhook_url, operating_budget=20.0, operating_share=0.5)
    with caplog.at_level(logging.WARNING):
        outcomes = apply_commands(client, updates(ids, rounds=2))
    assert all(o.status == Status.OK for o in outcomes) and len(outcomes) == 200
    assert not [
        e
        for e in portal.request_log
        if e.get("error") == "OPERATION_TIME_LIMIT"
        or "OPERATION_TIME_LIMIT" in (e.get("command_errors") or {}).values()
    ]
    assert client.stats.operating_pauses >= 1 and client.stats.operating_waits == 0
    assert client.operating_peak["crm.company.update"] <= 20.0 * 0.5 + 50 * COST  # at most one batch over the share
    assert "operating budget used" in caplog.text


def test_unpaced_the_same_push_trips_the_limit_inside_batch_and_waits_for_the_reset(bx_portal):
    portal = budget_portal(bx_portal, budget=4.0, window=2.0)
    ids = add_companies(portal, 50)
    client = client_of(portal.webhook_url, operating_budget=1e9)  # pacing off: only the refusal path is left
    outcomes = apply_commands(client, updates(ids, rounds=2))
    refused = [e for e in portal.request_log if "OPERATION_TIME_LIMIT" in (e.get("command_errors") or {}).values()]
    assert refused  # the portal refused commands inside batch ...
    assert all(o.status == Status.OK for o in outcomes)  # ... and the writes waited for operating_reset_at, not failed
    assert client.stats.operating_waits >= 1


def test_reads_in_batch_wait_for_the_reset_too(bx_portal):
    portal = bx_portal(operating_budget=0.5, operating_extra_cost=1.0)
    portal.operating.window = 2.0
    add_companies(portal, 2)
    client = client_of(portal.webhook_url)
    client.call("crm.company.list")  # counting total: 1 s, over the 0.5 s budget
    answers = batch_read(client, {"a": ("crm.company.list", {"start": -1}), "b": ("crm.deal.list", {"start": -1})})
    assert len(answers["a"]) == 2 and client.stats.operating_waits >= 1


def test_another_caller_spending_a_portal_wide_budget_makes_us_wait_and_say_so(bx_portal, caplog):
    """The older docs' reading (`operating_scope="portal"`): every caller's time counts against one budget."""
    portal = budget_portal(bx_portal, budget=20.0, window=3.0, scope="portal")
    ids = add_companies(portal, 60)
    other = client_of(portal.add_webhook(7), operating_budget=1e9)
    apply_commands(other, updates(ids[:55]), connector=None)  # 5.5 s by someone else
    apply_commands(other, updates(ids[:50], rounds=1), connector=None)  # 10.5 s
    ours = client_of(portal.webhook_url, operating_budget=20.0, operating_share=0.5)
    with caplog.at_level(logging.WARNING):
        first = ours.call("crm.company.update", {"id": ids[0], "fields": {"COMMENTS": "наш"}})
        second = ours.call("crm.company.update", {"id": ids[1], "fields": {"COMMENTS": "наш"}})
    assert first is True and second is True
    assert ours.stats.operating_pauses >= 1 and "already used before this run" in caplog.text


def test_per_caller_budgets_do_not_block_each_other(bx_portal):
    """The current docs: "separately for an application or a webhook" — another caller's spending is its own."""
    portal = budget_portal(bx_portal, budget=2.0, window=600)
    ids = add_companies(portal, 1)
    other = portal.add_webhook(7)
    answers = [
        requests.post(other + "crm.company.update", json={"id": ids[0], "fields": {}}, timeout=10) for _ in range(22)
    ]
    assert answers[-1].json()["error"] == "OPERATION_TIME_LIMIT"  # 2.1 s spent: the other webhook is blocked
    mine = requests.post(portal.webhook_url + "crm.company.update", json={"id": ids[0], "fields": {}}, timeout=10)
    assert mine.status_code == 200 and mine.json()["time"]["operating"] == pytest.approx(COST)


@pytest.mark.parametrize(
    "table, statuses",
    [
        ("earlier", {"OPERATION_TIME_LIMIT": 503, "OVERLOAD_LIMIT": 503, "insufficient_scope": 403}),
        ("current", {"OPERATION_TIME_LIMIT": 429, "OVERLOAD_LIMIT": 401, "insufficient_scope": 401}),
    ],
)
def test_error_statuses_follow_the_doc_revision_and_the_client_decides_by_code(bx_portal, table, statuses):
    portal = bx_portal(error_table=table, operating_budget=0.5, operating_extra_cost=1.0, webhook_scopes=("crm",))
    add_companies(portal, 1)
    requests.post(portal.webhook_url + "crm.company.list", json={}, timeout=10)
    blocked = requests.post(portal.webhook_url + "crm.company.list", json={"start": -1}, timeout=10)
    assert blocked.status_code == statuses["OPERATION_TIME_LIMIT"]
    no_scope = requests.post(
        portal.webhook_url + "im.notify.system.add", json={"USER_ID": 1, "MESSAGE": "x"}, timeout=10
    )
    assert (no_scope.status_code, no_scope.json()["error"]) == (statuses["insufficient_scope"], "insufficient_scope")
    for code, status in statuses.items():
        error = error_from_envelope(host="h", method="m", status=status, body={"error": code})
        expected = {
            "OPERATION_TIME_LIMIT": OperationTimeLimit,
            "OVERLOAD_LIMIT": OverloadLimit,
            "insufficient_scope": AuthError,
        }[code]
        assert type(error) is expected
    assert not OverloadLimit().retryable  # a manual block: never retried


def test_overload_limit_is_never_retried(bx_portal):
    portal = bx_portal(error_table="current")
    client = client_of(portal.webhook_url, max_retries=5)

    def blocked_by_support(params):
        raise CrmError("OVERLOAD_LIMIT", "REST API is blocked due to overload", 503)

    portal.state._methods["crm.company.list"] = blocked_by_support
    with pytest.raises(OverloadLimit) as blocked:
        client.call("crm.company.list")
    assert blocked.value.status == 401 and client.stats.http_calls == 1 and client.stats.retries == 0
