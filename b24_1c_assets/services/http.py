"""What every route of the service shares: the request guard (body cap, time limits, access log) and tokens.

The guard is plain ASGI around the whole Starlette app. It reads the body itself before the route sees it, so
a body over the route's cap is refused with 413 (at once when Content-Length says so), a sender that stalls
is cut off with 408, and a handler that runs too long answers 503. Its access log is one JSON object per
request — method, path, the query with every secret parameter masked (`token=` is how a CRM business process
passes the gate's token), status, milliseconds, bytes in and out — and never a header or a body.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.responses import JSONResponse

from b24_1c_assets.services.config import Limits

access_log = logging.getLogger("b24_1c_assets.services.access")

SECRET_PARAMS = {"token", "auth", "access_token", "refresh_token", "application_token", "password", "client_secret"}


class JSON(JSONResponse):
    """JSON with Decimal/date values as text and Cyrillic kept readable."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, default=str, separators=(",", ":")).encode("utf-8")


def error(status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any) -> JSON:
    return JSON({"error": message, **extra}, status_code=status, headers=headers)


def redact_query(query: str) -> str:
    """The query string with every secret parameter's value masked (also PHP-bracket `auth[...]`)."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "***" if k.split("[", 1)[0].lower() in SECRET_PARAMS else v) for k, v in pairs], safe="[]*")


def credential(authorization: str | None) -> str:
    """The secret of an Authorization header: a Bearer token, or the password of HTTP Basic (any user name)."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return ""
    return ""


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison; an unset expected token matches nothing."""
    return bool(expected) and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class _BodyTooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


class Guard:
    """ASGI wrapper: per-path body caps, body and handler time limits, JSON access log."""

    def __init__(self, app: Callable, limits: Limits, body_cap: Callable[[str], int]):
        self.app, self.limits, self.body_cap = app, limits, body_cap

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        state: dict[str, Any] = {"status": None, "out": 0, "in": 0}

        async def send_counted(message):
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body":
                state["out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self._handle(scope, receive, send_counted, state)
        except _Disconnected:
            state["status"] = state["status"] or 499  # the client went away before sending its whole body
        finally:
            access_log.info(
                json.dumps(
                    {
                        "method": scope["method"],
                        "path": scope["path"],
                        "query": redact_query(scope.get("query_string", b"").decode("latin-1")),
                        "status": state["status"] or 500,
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                        "in": state["in"],
                        "out": state["out"],
                        "client": (scope.get("client") or ("", 0))[0],
                    },
                    ensure_ascii=False,
                )
            )

    async def _handle(self, scope, receive, send, state):
        cap = self.body_cap(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                if int(declared) > cap:
                    return await error(413, f"body over {cap} bytes for {scope['path']}")(scope, receive, send)
            except ValueError:
                return await error(400, "Content-Length is not a number")(scope, receive, send)
        try:
            body = await asyncio.wait_for(self._read(receive, cap, state), self.limits.body_seconds)
        except _BodyTooLarge:
            return await error(413, f"body over {cap} bytes for {scope['path']}")(scope, receive, send)
        except TimeoutError:
            return await error(408, f"body not received within {self.limits.body_seconds:g} s")(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # only a disconnect can come now

        try:
            await asyncio.wait_for(self.app(scope, replay, send), self.limits.handler_seconds)
        except TimeoutError:
            if state["status"] is None:
                await error(
                    503,
                    f"not answered within {self.limits.handler_seconds:g} s; retry later",
                    headers={"Retry-After": "30"},
                )(scope, receive, send)

    @staticmethod
    async def _read(receive, cap: int, state) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected()
            chunk = message.get("body", b"")
            size += len(chunk)
            state["in"] = size
            if size > cap:
                raise _BodyTooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
