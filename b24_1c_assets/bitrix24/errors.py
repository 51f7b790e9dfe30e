"""Typed Bitrix24 REST errors, mapped from the error envelope `{"error", "error_description"}` and HTTP status.

Every error names the portal host and the method, never the webhook URL (it is the credential).
`retryable` says whether the low-level client may repeat the call; `outcome_unknown` says whether a write
may have been carried out even though it failed (the caller must look the record up before re-adding).
"""

from __future__ import annotations

from typing import Any


class Bitrix24Error(Exception):
    """Base of all Bitrix24 client errors."""

    retryable = False
    # True when the portal may have carried the call out although we got no usable answer.
    outcome_unknown = False

    def __init__(
        self,
        message: str = "",
        *,
        host: str = "",
        method: str = "",
        status: int | None = None,
        code: str | None = None,
        description: str | None = None,
    ) -> None:
        self.host = host
        self.method = method
        self.status = status
        self.code = code
        self.description = description
        self.message = message or description or code or type(self).__name__
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = f"{self.host} {self.method}".strip()
        status = f" HTTP {self.status}" if self.status is not None else ""
        code = f" {self.code}" if self.code else ""
        return f"{where}:{status}{code}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(host={self.host!r}, method={self.method!r}, status={self.status!r}, "
            f"code={self.code!r}, message={self.message!r})"
        )

    def __reduce__(self):  # keep pickling (Dagster may ship errors between processes) working
        return (_rebuild, (type(self), self.message, self.host, self.method, self.status, self.code, self.description))


def _rebuild(cls, message, host, method, status, code, description):
    return cls(message, host=host, method=method, status=status, code=code, description=description)


class TransportError(Bitrix24Error):
    """No HTTP answer: connection refused/dropped, timeout. `outcome_unknown` unless nothing was sent."""

    retryable = True

    def __init__(self, message: str = "", *, sent: bool = True, **kw: Any) -> None:
        self.sent = sent
        super().__init__(message, **kw)

    @property
    def outcome_unknown(self) -> bool:  # type: ignore[override]
        return self.sent

    def __reduce__(self):
        return (_rebuild_transport, (self.message, self.sent, self.host, self.method))


def _rebuild_transport(message, sent, host, method):
    return TransportError(message, sent=sent, host=host, method=method)


class ServerError(Bitrix24Error):
    """5xx (INTERNAL_SERVER_ERROR, ERROR_UNEXPECTED_ANSWER, plain 503 ...) or an unreadable answer."""

    retryable = True
    outcome_unknown = True


class QueryLimitExceeded(Bitrix24Error):
    """503 QUERY_LIMIT_EXCEEDED: the leaky bucket is full; the portal did nothing. Retried with backoff."""

    retryable = True


class OperationTimeLimit(Bitrix24Error):
    """OPERATION_TIME_LIMIT (429 in `limits.md`, 503 before): the method's operating-time budget is spent; the
    oldest minute basket leaves it at `reset_at` (epoch s)."""

    retryable = True

    def __init__(self, message: str = "", *, reset_at: float | None = None, **kw: Any) -> None:
        self.reset_at = reset_at
        super().__init__(message, **kw)


class OverloadLimit(Bitrix24Error):
    """OVERLOAD_LIMIT (503 in the earlier docs, 401 in the current): REST blocked by the vendor for overload, a
    manual block only support lifts. Never retried: stop and report."""


class AuthError(Bitrix24Error):
    """401/403: wrong webhook, expired token, no access, insufficient_scope."""


class MissingScopes(AuthError):
    """The webhook or application lacks scopes the product needs (asked with `scope` before the first write)."""


class MethodNotFound(Bitrix24Error):
    """404 ERROR_METHOD_NOT_FOUND: the method does not exist (or the scope hides it)."""


class NotFound(Bitrix24Error):
    """The entity does not exist (`"Not found"` on get/update of a missing ID)."""


class BadRequest(Bitrix24Error):
    """400-class parameter errors (ERROR_CORE, ERROR_ARGUMENT, INVALID_REQUEST, batch errors ...)."""


class PortalDeleted(Bitrix24Error):
    """500 PORTAL_DELETED: the portal is closed; retrying cannot help."""


class ExportError(Bitrix24Error):
    """A keyset export could not continue (out-of-order IDs, a page failing after all retries)."""


_AUTH_CODES = {
    "NO_AUTH_FOUND",
    "EXPIRED_TOKEN",
    "INVALID_TOKEN",
    "INVALID_CREDENTIALS",
    "ACCESS_DENIED",
    "INSUFFICIENT_SCOPE",
    "WRONG_AUTH_TYPE",
    "AUTHORIZATION_ERROR",
    "USER_ACCESS_ERROR",
    "INVALID_CLIENT",
    "INVALID_GRANT",
    "PAYMENT_REQUIRED",
    "WRONG_LICENSE",
}
_SERVER_CODES = {"INTERNAL_SERVER_ERROR", "ERROR_UNEXPECTED_ANSWER"}
_BAD_REQUEST_CODES = {
    "ERROR_CORE",
    "ERROR_ARGUMENT",
    "INVALID_ARG_VALUE",
    "INVALID_REQUEST",
    "ERROR_BATCH_LENGTH_EXCEEDED",
    "ERROR_BATCH_METHOD_NOT_ALLOWED",
    "ERROR_EVENT_NOT_FOUND",
    "ERROR_HANDLER_ALREADY_EXIST",
    "ERROR_REQUIRED_PARAMETERS_MISSING",
}
_NOT_FOUND_CODES = {"NOT_FOUND", "ERROR_NOT_FOUND", "ENTITY_NOT_FOUND"}


def error_from_envelope(*, host: str, method: str, status: int | None, body: Any) -> Bitrix24Error:
    """The typed error for an error envelope (`body` = parsed JSON or None) and HTTP status.

    `status` is None for a command inside `batch` (its error has no status of its own).
    """
    code = description = None
    reset_at = None
    if isinstance(body, dict):
        code = str(body.get("error") or "") or None
        description = body.get("error_description")
        description = str(description) if description not in (None, "") else None
        time_block = body.get("time")
        if isinstance(time_block, dict):
            reset_at = _float(time_block.get("operating_reset_at"))
        reset_at = _float(body.get("operating_reset_at")) or reset_at
    kw = dict(host=host, method=method, status=status, code=code, description=description)
    # Decided by the `error` code: the docs changed the HTTP statuses between revisions (OVERLOAD_LIMIT 503 -> 401,
    # ACCESS_DENIED / insufficient_scope 403 -> 401, OPERATION_TIME_LIMIT 503 -> 429; `_includes/system-errors.md`,
    # `limits.md`), so a status only decides when the code is empty or unknown.
    upper = (code or "").upper()
    if upper == "QUERY_LIMIT_EXCEEDED":
        return QueryLimitExceeded(**kw)
    if upper == "OPERATION_TIME_LIMIT":
        return OperationTimeLimit(reset_at=reset_at, **kw)
    if upper == "OVERLOAD_LIMIT":
        return OverloadLimit(**kw)
    if upper == "PORTAL_DELETED":
        return PortalDeleted(**kw)
    if upper in _AUTH_CODES:
        return AuthError(**kw)
    if upper == "ERROR_METHOD_NOT_FOUND":
        return MethodNotFound(**kw)
    if upper in _NOT_FOUND_CODES or (description or "").strip().lower().startswith("not found"):
        return NotFound(**kw)
    if upper in _SERVER_CODES:
        return ServerError(**kw)
    if upper in _BAD_REQUEST_CODES:
        return BadRequest(**kw)
    if status in (401, 403):
        return AuthError(**kw)
    if status is not None and status >= 500:
        return ServerError(**kw)
    if status == 404:
        return NotFound(**kw)
    return BadRequest(**kw)


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
