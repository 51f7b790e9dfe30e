"""Errors raised by the 1C client side. Texts name host, method and entity set only — never credentials."""

from __future__ import annotations


class OneCError(Exception):
    """Base of every 1C client error."""


class OneCRequestError(OneCError):
    """1C answered with an error (OData `odata.error`, IIS or HTML page).

    `status` is the HTTP status, `code` the 1C error code as a string ('6', '14', '-1') or the IIS
    sub-status ('404.15'), `message` the server's text (shortened; it may echo request parts).
    """

    def __init__(self, *, host: str, method: str, entity_set: str, status: int | None, code: str | None, message: str):
        self.host = host
        self.method = method
        self.entity_set = entity_set
        self.status = status
        self.code = code
        self.message = message
        parts = [f"1C OData {method} {entity_set} on {host} failed"]
        if status is not None:
            parts.append(f"HTTP {status}")
        if code is not None:
            parts.append(f"code {code}")
        summary = ": ".join([parts[0], ", ".join(parts[1:]) or "no answer"])
        super().__init__(summary + (f": {message}" if message else ""))

    @property
    def transient(self) -> bool:
        """True for answers worth retrying on an idempotent GET (gateway/overload, not 1C logic)."""
        return self.status in (502, 503, 504)


class OneCAuthError(OneCRequestError):
    """401/403: wrong credentials or missing rights of the integration user."""


class OneCConnectionError(OneCError):
    """No HTTP answer: connection refused/reset or timeout. The host and set are named, nothing else."""

    def __init__(self, *, host: str, method: str, entity_set: str, reason: str):
        self.host = host
        self.method = method
        self.entity_set = entity_set
        self.reason = reason
        super().__init__(f"1C OData {method} {entity_set} on {host}: no answer ({reason})")


class OneCPublicationError(OneCError):
    """An entity set or field the product needs is missing from the OData publication ($metadata)."""


class OneCWireError(OneCError):
    """The answer could not be read (not JSON, wrong envelope, unparsable value)."""


class WriteNotApplied(OneCError):
    """A POST/PATCH/Post had an unknown outcome and reconciliation found it was NOT applied.

    Safe for the caller to repeat the write (the marker was not found / the fields differ).
    """

    def __init__(self, message: str, *, cause: Exception | None = None):
        super().__init__(message)
        self.cause = cause


class WriteNotVerified(OneCError):
    """1C accepted a write but the object read back lacks what was sent (1C silently ignores a property the
    object does not have): the data or its shape is wrong, retrying the same write will not help."""


class ExchangeFileRejected(OneCError):
    """An exchange-folder file was rejected as a whole (corrupt, truncated, unknown schema)."""

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason
        super().__init__(f"exchange file {name} rejected: {reason}")
