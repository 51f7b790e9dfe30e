"""Error envelopes and HTTP statuses map to typed exceptions with the right retry semantics."""

import pickle

import pytest

from b24_1c_assets.bitrix24 import errors as e


@pytest.mark.parametrize(
    ("status", "code", "description", "cls"),
    [
        (503, "QUERY_LIMIT_EXCEEDED", "Too many requests", e.QueryLimitExceeded),
        (503, "OPERATION_TIME_LIMIT", "Method is blocked", e.OperationTimeLimit),
        (503, "OVERLOAD_LIMIT", "REST API is blocked", e.OverloadLimit),
        (401, "NO_AUTH_FOUND", "Wrong authorization data", e.AuthError),
        (401, "expired_token", "The access token provided has expired", e.AuthError),
        (403, "insufficient_scope", "The request requires higher privileges", e.AuthError),
        (403, "ACCESS_DENIED", "REST is available only on commercial plans", e.AuthError),
        (403, "INVALID_CREDENTIALS", "Invalid request credentials", e.AuthError),
        (404, "ERROR_METHOD_NOT_FOUND", "Method not found!", e.MethodNotFound),
        (400, "", "Not found", e.NotFound),
        (400, "ERROR_CORE", "Parameter 'fields' must be array", e.BadRequest),
        (400, "INVALID_REQUEST", "Https required.", e.BadRequest),
        (405, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage", e.BadRequest),
        (500, "INTERNAL_SERVER_ERROR", "Internal server error", e.ServerError),
        (500, "ERROR_UNEXPECTED_ANSWER", "Server returned an unexpected response", e.ServerError),
        (500, "PORTAL_DELETED", "Portal was deleted", e.PortalDeleted),
        (503, "", "", e.ServerError),
        (None, "", "Not found", e.NotFound),  # a command inside batch has no status of its own
    ],
)
def test_envelope_maps_to_type(status, code, description, cls):
    exc = e.error_from_envelope(
        host="portal.example:443",
        method="crm.company.get",
        status=status,
        body={"error": code, "error_description": description},
    )
    assert type(exc) is cls
    assert exc.status == status
    assert "portal.example:443 crm.company.get" in str(exc)


def test_retry_semantics_by_meaning():
    assert e.QueryLimitExceeded().retryable and not e.QueryLimitExceeded().outcome_unknown
    assert e.ServerError().retryable and e.ServerError().outcome_unknown
    for never in (e.OverloadLimit, e.AuthError, e.MethodNotFound, e.NotFound, e.BadRequest, e.PortalDeleted):
        assert not never().retryable, never
    assert not e.TransportError(sent=False).outcome_unknown
    assert e.TransportError(sent=True).outcome_unknown


def test_operation_time_limit_carries_reset_time_from_the_body():
    exc = e.error_from_envelope(
        host="h",
        method="crm.deal.list",
        status=503,
        body={"error": "OPERATION_TIME_LIMIT", "error_description": "x", "time": {"operating_reset_at": 1732400600}},
    )
    assert exc.reset_at == 1732400600.0


def test_errors_survive_pickling_with_their_fields():
    exc = e.error_from_envelope(host="h", method="crm.deal.list", status=503, body={"error": "OVERLOAD_LIMIT"})
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is e.OverloadLimit and back.host == "h" and back.status == 503
    transport = pickle.loads(pickle.dumps(e.TransportError("dropped", sent=False, host="h", method="m")))
    assert transport.sent is False and transport.method == "m"


def test_client_retry_policy_by_error_and_idempotency():
    from b24_1c_assets.bitrix24 import Bitrix24Client

    retryable = Bitrix24Client._retryable
    assert not retryable(e.OverloadLimit(), True)  # stop and report, never loop on a manual block
    assert not retryable(e.AuthError(), True) and not retryable(e.BadRequest(), True)
    assert retryable(e.QueryLimitExceeded(), False)  # nothing was done: safe even for an add
    assert retryable(e.ServerError(), True) and not retryable(e.ServerError(), False)
    assert retryable(e.TransportError(sent=False), False) and not retryable(e.TransportError(sent=True), False)
    assert not retryable(e.OperationTimeLimit(), True)  # handled by the operating-time wait, not backoff
