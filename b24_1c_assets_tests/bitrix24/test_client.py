"""The client against the sandbox portal over loopback HTTP: envelopes, errors, pacing, retries, secrecy."""

from __future__ import annotations

import logging
import threading

import pytest

from b24_1c_assets.bitrix24 import (
    AuthError,
    Bitrix24Client,
    MethodNotFound,
    NotFound,
    OperationTimeLimit,
    Pacer,
    ServerError,
    TransportError,
)
from b24_1c_assets.sandbox.faults import Faults

from .conftest import WEBHOOK_CODE, add_companies, request_log, throttled_answers


def fast_client(portal, **kw) -> Bitrix24Client:
    """A client whose pacer matches the portal's fast test limits and whose backoff is short."""
    kw.setdefault("backoff_initial", 0.01)
    kw.setdefault("backoff_max", 0.05)
    return Bitrix24Client(portal.webhook_url, rate=500.0, burst=500, **kw)


def test_call_parses_the_success_envelope(bx_portal):
    portal = bx_portal()
    ids = add_companies(portal, 3)
    with fast_client(portal) as client:
        rows = client.call("crm.company.list", {"order": {"ID": "ASC"}, "select": ["ID", "TITLE"]})
        envelope = client.call_envelope("crm.company.list", {"filter": {">ID": ids[0]}})
        one = client.call("crm.company.get", {"id": ids[1]})
    assert [int(r["ID"]) for r in rows] == ids
    assert rows[0]["TITLE"] == "ООО «Тест 0»"
    assert envelope.total == 2 and envelope.next is None
    assert "operating_reset_at" in envelope.time and "operating" in envelope.time
    assert one["ID"] == str(ids[1])
    assert client.stats.http_calls == 3 and client.stats.retries == 0


def test_error_envelopes_become_typed_errors_and_are_not_retried(bx_portal):
    portal = bx_portal()
    client = fast_client(portal)
    with pytest.raises(MethodNotFound) as missing_method:
        client.call("crm.nosuch.method")
    with pytest.raises(NotFound) as missing_row:
        client.call("crm.company.get", {"id": 987654})
    wrong = Bitrix24Client(portal.webhook_url.replace(WEBHOOK_CODE, "wrongcode"), rate=500, burst=500)
    with pytest.raises(AuthError) as auth:
        wrong.call("crm.company.list")
    assert missing_method.value.status == 404 and missing_method.value.code == "ERROR_METHOD_NOT_FOUND"
    assert missing_row.value.status == 400
    assert auth.value.status == 401 and auth.value.code == "NO_AUTH_FOUND"
    assert client.stats.retries == 0 and wrong.stats.retries == 0
    assert len(request_log(portal)) == 3  # one request each: nothing was repeated


def test_paced_client_never_trips_the_portal_limit(bx_portal):
    """rate 2/s, bucket 10 on both sides; 16 calls from 4 threads exceed the bucket, the portal enforces it."""
    portal = bx_portal(rate=2.0, burst=10)
    client = Bitrix24Client(portal.webhook_url, rate=2.0, burst=10)
    errors: list[BaseException] = []

    def worker():
        try:
            for _ in range(4):
                client.call("crm.company.list", {"select": ["ID"]})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert client.stats.http_calls == 16
    assert throttled_answers(portal) == 0 and client.stats.throttled == 0
    assert client.stats.pacer_wait_seconds > 0  # the pacer did hold calls back


def test_unpaced_burst_is_throttled_by_the_portal_and_recovered_by_retries(bx_portal):
    """Control for the test above: without a matching pacer the same portal answers QUERY_LIMIT_EXCEEDED."""
    portal = bx_portal(rate=5.0, burst=3)
    client = Bitrix24Client(
        portal.webhook_url,
        rate=5.0,
        burst=3,
        max_retries=8,
        backoff_initial=0.05,
        backoff_max=0.2,
        pacer=Pacer(10_000, 10_000),
    )
    for _ in range(12):
        client.call("crm.company.list", {"select": ["ID"]})
    assert throttled_answers(portal) > 0
    assert client.stats.throttled == throttled_answers(portal)
    assert client.stats.retries >= client.stats.throttled


def test_faults_are_retried_until_success_and_counted(bx_portal):
    portal = bx_portal(faults=Faults(error_503_share=0.25, error_500_share=0.15, drop_share=0.1, seed=11))
    add_companies(portal, 2)
    client = fast_client(portal, max_retries=10)
    for _ in range(25):
        assert len(client.call("crm.company.list", {"select": ["ID"]})) == 2
    failed = [e for e in request_log(portal) if e.get("status") != 200]
    assert client.stats.retries > 0
    assert client.stats.http_calls == 25 + client.stats.retries
    assert client.stats.server_errors + client.stats.transport_errors == client.stats.retries
    # drops leave no status in the log; every answered failure is a 5xx
    assert all(e.get("status") in (None, 500, 503) for e in failed)


def test_retries_are_bounded(bx_portal):
    portal = bx_portal(faults=Faults(error_500_share=1.0))
    client = fast_client(portal, max_retries=3)
    with pytest.raises(ServerError) as failure:
        client.call("crm.company.list")
    assert failure.value.status == 500
    assert client.stats.http_calls == 4 and client.stats.retries == 3


def test_add_with_unknown_outcome_is_not_retried_unless_idempotent(bx_portal):
    """A dropped `*.add` may have happened: the client raises instead of adding a second copy."""
    portal = bx_portal(faults=Faults(drop_share=1.0, fail_after_write=True))
    client = fast_client(portal, max_retries=3)
    fields = {"fields": {"TITLE": "ООО «Единственная»", "ORIGINATOR_ID": "1c-unf", "ORIGIN_ID": "guid-1"}}
    with pytest.raises(TransportError) as dropped:
        client.call("crm.company.add", fields)
    assert dropped.value.outcome_unknown
    assert client.stats.http_calls == 1  # not repeated
    created = portal.state.call("crm.company.list", {"filter": {"ORIGIN_ID": "guid-1"}})
    created = getattr(created, "items", created)
    assert len(created) == 1  # the portal did carry it out: the caller must look it up, not re-add

    # An update is idempotent: the same faults are retried (and still fail after max_retries).
    with pytest.raises(TransportError):
        client.call("crm.company.update", {"id": 1, "fields": {"COMMENTS": "x"}})
    assert client.stats.http_calls == 1 + 4


def test_secret_never_appears_in_errors_repr_stats_or_logs(bx_portal, caplog):
    caplog.set_level(logging.DEBUG)
    portal = bx_portal(faults=Faults(drop_share=0.3, error_503_share=0.3, seed=5))
    client = fast_client(portal, max_retries=2)
    texts = [repr(client), str(client.stats.as_dict()), repr(vars(client))]
    for method in ("crm.company.list", "crm.nosuch.method", "crm.company.get"):
        for _ in range(4):
            try:
                client.call(method, {"id": 1})
            except Exception as exc:  # noqa: BLE001 - the texts of all failures are checked below
                texts += [str(exc), repr(exc), repr(exc.__cause__), repr(exc.__context__)]
    dead = Bitrix24Client(
        f"http://127.0.0.1:9/rest/1/{WEBHOOK_CODE}/", rate=500, burst=500, max_retries=1, backoff_initial=0.01
    )
    with pytest.raises(TransportError) as refused:
        dead.call("crm.company.list")
    assert not refused.value.outcome_unknown  # never connected: safe to retry any call
    texts += [str(refused.value), repr(refused.value), repr(dead)]
    assert caplog.records, "expected retry warnings and urllib3 debug lines"
    assert any("/rest/" in r.getMessage() for r in caplog.records)  # urllib3 did log request paths...
    assert WEBHOOK_CODE not in caplog.text  # ...but masked
    for text in texts:
        assert WEBHOOK_CODE not in text


def test_operation_time_limit_waits_for_the_reset_and_reports_it(bx_portal, caplog):
    """A method past its operating budget is blocked until `operating_reset_at`; the client waits, then retries."""
    portal = bx_portal(operating_budget=0.5, operating_extra_cost=1.0)
    portal.operating.window = 2.0  # a short rolling window keeps the test quick (the real one is 600 s)
    add_companies(portal, 2)
    client = fast_client(portal)
    client.call("crm.company.list")  # counting `total` costs 1 s of operating time: over budget now
    assert client.last_time("crm.company.list")["operating"] >= 1.0
    with caplog.at_level(logging.WARNING):
        rows = client.call("crm.company.list")
    assert len(rows) == 2
    assert client.stats.operating_waits >= 1 and client.stats.operating_wait_seconds > 0
    assert client.stats.retries == 0  # waiting for the budget is not a backoff retry
    assert any(e.get("error") == "OPERATION_TIME_LIMIT" for e in request_log(portal))
    assert "OPERATION_TIME_LIMIT" in caplog.text


def test_operation_time_limit_too_far_away_is_raised_not_slept(bx_portal):
    portal = bx_portal(operating_budget=0.5, operating_extra_cost=1.0)
    client = fast_client(portal, max_operating_wait_seconds=5.0)
    client.call("crm.company.list")
    with pytest.raises(OperationTimeLimit) as blocked:
        client.call("crm.company.list")
    assert blocked.value.status == 503
    assert client.stats.operating_waits == 0 and client.stats.http_calls == 2


def test_slow_answers_time_out_and_reads_are_retried(bx_portal):
    portal = bx_portal(faults=Faults(slow_share=0.4, slow_seconds=1.0, seed=1))
    add_companies(portal, 1)
    client = fast_client(portal, timeout=0.3, max_retries=8)
    for _ in range(5):
        assert len(client.call("crm.company.list", {"select": ["ID"]})) == 1
    assert client.stats.transport_errors > 0
    assert client.stats.retries == client.stats.transport_errors
