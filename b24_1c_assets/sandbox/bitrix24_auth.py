"""Who is calling the sandbox portal: inbound webhooks, a local application's OAuth tokens, scopes, error statuses.

What a real portal does, after `bitrix24/b24restdocs`:
- An inbound webhook (`/rest/<user>/<code>/<method>`) acts as its user with the scopes ticked on its form
  (`local-integrations/local-webhooks.md`). A local application calls `/rest/<method>` with `auth=<access_token>`
  (`settings/oauth/index.md`).
- `event.bind`, `event.unbind`, `event.get` and `event.offline.*` work "only in the context of authorizing the
  application" (`api-reference/events/event-bind.md`, `event-offline-get.md`, `event-offline-clear.md`,
  `event-offline-error.md`, `event-offline-list.md`); a webhook gets 403 `WRONG_AUTH_TYPE` "Current
  authorization type is denied for this method Application context required" (the same refusal the docs give
  for `placement.bind` and `imconnector.*`, e.g. `api-reference/widgets/placement-list.md`).
- Tokens: `access_token` lives one hour (`expired_token`, 401, afterwards), `refresh_token` 180 days; renewal
  at `/oauth/token/?grant_type=refresh_token&client_id&client_secret&refresh_token` returns a new pair and the
  caller must "retain it instead of the previous one" (`settings/oauth/auto-renewal.md`). The sandbox is strict
  there: a refresh token works once (rotation), so a client that keeps an old one fails here first.
- A method outside the caller's scopes: `insufficient_scope` (`_includes/system-errors.md`).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

# Every method the sandbox serves belongs to one scope (`api-reference/scopes/permissions.md`); `basic` ones
# (scope, event.*, batch) need none.
SCOPE_PREFIXES = (
    ("crm.", "crm"),
    ("im.", "im"),
    ("user.", "user"),
    ("userfieldconfig.", "userfieldconfig"),
    ("catalog.", "catalog"),
)
APPLICATION_ONLY = frozenset(
    {
        "event.bind",
        "event.unbind",
        "event.get",
        "event.offline.get",
        "event.offline.clear",
        "event.offline.error",
        "event.offline.list",
    }
)
DEFAULT_SCOPES = ("crm", "im", "user", "userfieldconfig", "catalog")
ACCESS_TOKEN_TTL = 3600.0
REFRESH_TOKEN_TTL = 180 * 86400.0

# HTTP status of a system error by doc revision (the `error` code is the same in both).
# earlier: `bitrix24/b24restdocs _includes/system-errors.md` (as at 6842e1b0, unchanged at 5988ed13) with
#   OPERATION_TIME_LIMIT from `limits.md` before 2026-07 (503 like the other limits);
# current: the revision `../shared/reference/bitrix24-rest.md` §1.4 cites (05e4d575) and `limits.md` as at
#   6c33d79b (OPERATION_TIME_LIMIT 429).
ERROR_STATUS = {
    "earlier": {
        "INTERNAL_SERVER_ERROR": 500,
        "ERROR_UNEXPECTED_ANSWER": 500,
        "QUERY_LIMIT_EXCEEDED": 503,
        "OPERATION_TIME_LIMIT": 503,
        "ERROR_BATCH_METHOD_NOT_ALLOWED": 405,
        "ERROR_BATCH_LENGTH_EXCEEDED": 400,
        "NO_AUTH_FOUND": 401,
        "INVALID_REQUEST": 400,
        "OVERLOAD_LIMIT": 503,
        "ACCESS_DENIED": 403,
        "INVALID_CREDENTIALS": 403,
        "insufficient_scope": 403,
        "expired_token": 401,
        "invalid_token": 401,
        "user_access_error": 403,
        "ERROR_METHOD_NOT_FOUND": 404,
        "PORTAL_DELETED": 500,
        "WRONG_AUTH_TYPE": 403,
    },
    "current": {
        "INTERNAL_SERVER_ERROR": 500,
        "ERROR_UNEXPECTED_ANSWER": 500,
        "QUERY_LIMIT_EXCEEDED": 503,
        "OPERATION_TIME_LIMIT": 429,
        "ERROR_BATCH_METHOD_NOT_ALLOWED": 405,
        "ERROR_BATCH_LENGTH_EXCEEDED": 400,
        "NO_AUTH_FOUND": 401,
        "INVALID_REQUEST": 401,
        "OVERLOAD_LIMIT": 401,
        "ACCESS_DENIED": 401,
        "INVALID_CREDENTIALS": 401,
        "insufficient_scope": 401,
        "expired_token": 401,
        "invalid_token": 401,
        "user_access_error": 401,
        "ERROR_METHOD_NOT_FOUND": 404,
        "PORTAL_DELETED": 403,
        "WRONG_AUTH_TYPE": 403,
    },
}


def scope_of(method: str) -> str | None:
    """The scope a method needs (None = basic, always granted)."""
    method = method.lower()
    for prefix, scope in SCOPE_PREFIXES:
        if method.startswith(prefix):
            return scope
    return None


@dataclass(frozen=True)
class Caller:
    """Who made a request: `kind` webhook | application, the user it acts as, its scopes; `key` names the
    caller for per-caller accounting (operating time) without holding any secret."""

    kind: str
    user_id: int
    scopes: frozenset[str]
    key: str


class AuthFailure(Exception):
    """A refused request: REST error envelope `code` / `description` (status from the portal's error table)."""

    def __init__(self, code: str, description: str, status: int | None = None):
        super().__init__(code)
        self.code, self.description, self.status = code, description, status


def check_method(caller: Caller, method: str) -> None:
    """Refuse a method this caller may not call (raises AuthFailure)."""
    method = method.lower()
    if method in APPLICATION_ONLY and caller.kind != "application":
        raise AuthFailure(
            "WRONG_AUTH_TYPE", "Current authorization type is denied for this method Application context required"
        )
    scope = scope_of(method)
    if scope is not None and scope not in caller.scopes:
        raise AuthFailure(
            "insufficient_scope", "The request requires higher privileges than provided by the webhook token"
        )


@dataclass
class LocalApplication:
    """A local application installed on the portal by `user_id` with `scopes`; issues and checks its tokens."""

    user_id: int = 1
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    access_ttl: float = ACCESS_TOKEN_TTL
    refresh_ttl: float = REFRESH_TOKEN_TTL
    client_id: str = field(default_factory=lambda: f"local.{secrets.token_hex(7)}.{secrets.randbelow(10**8):08d}")
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(36))
    member_id: str = field(default_factory=lambda: secrets.token_hex(16))
    _access: dict[str, float] = field(default_factory=dict, repr=False)  # token -> expiry (unix s)
    _refresh: dict[str, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    refreshes: int = 0  # how many renewals were granted (tests)

    def __repr__(self) -> str:  # never show the secret or tokens
        return f"LocalApplication(client_id={self.client_id!r}, user={self.user_id}, scopes={self.scopes})"

    def _pair(self, client_endpoint: str) -> dict:
        now = time.time()
        access, refresh = secrets.token_hex(16), secrets.token_hex(16)
        self._access[access] = now + self.access_ttl
        self._refresh[refresh] = now + self.refresh_ttl
        return {
            "access_token": access,
            "client_endpoint": client_endpoint,
            "domain": "oauth.bitrix.info",
            "expires": int(now + self.access_ttl),
            "expires_in": int(self.access_ttl),
            "member_id": self.member_id,
            "refresh_token": refresh,
            "scope": ",".join(self.scopes),
            "server_endpoint": client_endpoint.rsplit("/rest/", 1)[0] + "/rest/",
            "status": "L",
            "user_id": self.user_id,
        }

    def install(self, client_endpoint: str) -> dict:
        """The first token pair, as the installation (ONAPPINSTALL / the authorization code) hands it over."""
        with self._lock:
            return self._pair(client_endpoint)

    def renew(self, params: dict, client_endpoint: str) -> dict:
        """`grant_type=refresh_token`: a new pair; the used refresh token stops working (rotation)."""
        with self._lock:
            if str(params.get("grant_type") or "") != "refresh_token":
                raise AuthFailure("invalid_request", "grant_type must be refresh_token", 400)
            if str(params.get("client_id") or "") != self.client_id or not secrets.compare_digest(
                str(params.get("client_secret") or ""), self.client_secret
            ):
                raise AuthFailure("invalid_client", "Invalid client credentials", 401)
            token = str(params.get("refresh_token") or "")
            expiry = self._refresh.pop(token, None)
            if expiry is None or expiry < time.time():
                raise AuthFailure("invalid_grant", "Invalid refresh token", 400)
            self.refreshes += 1
            return self._pair(client_endpoint)

    def expire_access_tokens(self) -> None:
        """Make every issued access token expired now (tests: the hour passes)."""
        with self._lock:
            for token in self._access:
                self._access[token] = 0.0

    def caller(self, token: str) -> Caller:
        with self._lock:
            expiry = self._access.get(token)
        if expiry is None:
            raise AuthFailure("invalid_token", "The access token provided is invalid.")
        if expiry < time.time():
            raise AuthFailure("expired_token", "The access token provided has expired.")
        return Caller("application", self.user_id, frozenset(self.scopes), f"app:{self.client_id}")
