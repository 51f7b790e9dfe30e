"""Sandbox Bitrix24 portal: the server side of the Bitrix24 REST protocol over loopback HTTP.

Speaks what `../shared/reference/bitrix24-rest.md` describes: inbound-webhook URLs, JSON / PHP-bracket form /
query-string parameters, the success and error envelopes with the `time` block, the leaky bucket, per-method
operating-time accounting, `batch` with `$result[...]` references, offline events and injected faults. The CRM
data and the method semantics live in `bitrix24_crm.CrmState`; the world is projected into it by
`bitrix24_seed.seed_portal`.

`batch` details that the docs leave open, implemented after the portal's PHP behaviour:
- `$result[cmd][path...]` is substituted in each parsed parameter value. A reference to a command that has not
  produced a result (unknown, failed, or later in the batch) is left as the literal text, so the command sees
  e.g. `ID = "$result[c9][ID]"` and fails/finds nothing on its own; a known command with a missing path gives
  the part of the result it could resolve (a whole page array for `[49][ID]` of a short page), so the command
  runs a malformed query. A parameter that is exactly one reference to an array takes the array itself; inside
  a longer string an array reads "Array", as PHP prints it.
- `batch` inside `batch` -> that command's `result_error` is `ERROR_BATCH_METHOD_NOT_ALLOWED`; the rest runs.
- More than 50 commands: the whole call is refused with HTTP 400 `ERROR_BATCH_LENGTH_EXCEEDED` and nothing
  runs, as the reference's error table says (some portal versions run the first 50 and fail the rest per
  command; a client that never sends more than 50 is right with both).
- Empty maps in the batch answer are PHP empty arrays (`[]`); maps keyed 0..n-1 (a list `cmd`) are JSON lists.

Callers (`bitrix24_auth.py`): inbound webhooks with their scopes, and a local application (`install_application`)
calling `/rest/<method>?auth=<access_token>` with tokens renewed at `/oauth/token/`; `event.*` answers only the
application (a webhook gets 403 `WRONG_AUTH_TYPE`); system errors carry the HTTP status of the chosen doc
revision (`error_table`).

Where the sandbox is knowingly more lenient than a cloud portal: plain HTTP on loopback (a portal demands
HTTPS), no per-user CRM permissions, unknown filter fields of classic `crm.*.list` methods are ignored.
"""

from __future__ import annotations

import json
import queue
import re
import secrets
import socket
import threading
import time
from collections import deque
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from b24_1c_assets.sandbox.bitrix24_auth import (
    DEFAULT_SCOPES,
    ERROR_STATUS,
    AuthFailure,
    Caller,
    LocalApplication,
    check_method,
)
from b24_1c_assets.sandbox.bitrix24_crm import MSK, CrmError, CrmState, Page, format_datetime, is_write_method
from b24_1c_assets.sandbox.faults import Faults

MAX_BATCH_COMMANDS = 50
BASIC_METHODS = frozenset({"scope"})
# Server seconds charged per call when not configured otherwise (`--operating-cost`), by verb. A guess at a
# loaded cloud portal's `time.operating` per call (the docs give no per-method figure; `limits.md`'s example
# is 20 s per heavy crm.item.list call): tens of milliseconds for a single-record write with its automation and
# history, a few for a read by ID, a keyset page without COUNT cheap (counting `total` adds
# `operating_extra_cost`). They make the budget bind at the sizes a real push has; change them per run.
DEFAULT_OPERATING_COSTS = {
    "*.list": 0.02,
    "*.get": 0.005,
    "*.add": 0.05,
    "*.update": 0.03,
    "*.set": 0.05,
    "*.delete": 0.03,
}
# answered by the portal itself, not by the CRM state
CRM_ADMIN_METHODS = frozenset(
    {
        "crm.status.add",
        "userfieldconfig.add",
        "crm.company.userfield.add",
        "crm.deal.userfield.add",
        "crm.contact.userfield.add",
    }
)
OPERATING_WINDOW = 600.0  # seconds of the rolling operating-time window
SECRET_PARAMS = {"auth", "access_token", "refresh_token", "client_secret", "application_token"}


# -- PHP http_build_query / parse_str -----------------------------------------------------------------


def _listify(node: Any) -> Any:
    """PHP arrays keyed 0..n-1 are lists in JSON terms; other maps stay maps."""
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and list(node) == [str(i) for i in range(len(node))]:
            return list(node.values())
    return node


def parse_php_query(query: str) -> dict:
    """Parse `a[b][c]=v&l[]=x&l[]=y` like PHP's `parse_str` (UTF-8, `+` is a space)."""
    out: dict = {}
    for pair in query.split("&"):
        if not pair:
            continue
        raw_key, _, raw_value = pair.partition("=")
        key, value = unquote_plus(raw_key), unquote_plus(raw_value)
        match = re.match(r"^([^\[]+)((?:\[[^\]]*\])*)$", key)
        if not match:
            out[key] = value
            continue
        base, rest = match.group(1), match.group(2)
        path = [base] + re.findall(r"\[([^\]]*)\]", rest)
        node = out
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if part == "":  # `[]` appends
                part = str(sum(1 for k in node if k.isdigit()))
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return _listify(out)


def php_map(mapping: dict) -> Any:
    """How PHP's json_encode shows an array: [] when empty, a list when keyed 0..n-1, else an object."""
    if not mapping:
        return []
    if list(mapping) == [str(i) for i in range(len(mapping))]:
        return list(mapping.values())
    return mapping


# -- limits -------------------------------------------------------------------------------------------


class LeakyBucket:
    """Each request adds 1; the level drains at `rate` per second; a request that would overflow is refused."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = float(rate), float(burst)
        self.level = 0.0
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def admit(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.level = max(0.0, self.level - (now - self.updated) * self.rate)
            self.updated = now
            if self.level + 1.0 > self.burst:
                return False
            self.level += 1.0
            return True


class OperatingClock:
    """Per-method server time in 10 one-minute baskets (`bitrix24/b24restdocs limits.md`, "Resource Intensity
    Limits"): a basket starts at the first call of its minute and leaves the sum 10 minutes after that call;
    `operating_reset_at` is when the oldest basket leaves. A method whose sum is past `budget` is refused before it
    runs; the call that crosses the budget still completes.

    `scope` says whose calls are summed: "caller" (each application or webhook apart: `limits.md` from 2026-07,
    "separately for an application or a webhook") or "portal" (every caller together: `limits.md` up to 2026-05,
    "blocked for all applications and webhooks of that account"). Keys are `method` or `caller|method`.
    """

    def __init__(self, budget: float, window: float = OPERATING_WINDOW, scope: str = "caller"):
        if scope not in ("caller", "portal"):
            raise ValueError("operating scope must be 'caller' or 'portal'")
        self.budget, self.window, self.scope = float(budget), float(window), scope
        self.baskets: dict[str, deque[list[float]]] = {}  # key -> [[first call's unix time, seconds], ...]
        self.total: dict[str, float] = {}  # running sum per key (summing every basket per call costs per call)
        self.lock = threading.Lock()

    def key(self, method: str, caller_key: str | None = None) -> str:
        method = method.lower()
        return f"{caller_key}|{method}" if self.scope == "caller" and caller_key else method

    def _trim(self, key: str, now: float) -> deque:
        baskets = self.baskets.setdefault(key, deque())
        while baskets and baskets[0][0] <= now - self.window:
            self.total[key] -= baskets.popleft()[1]
        if not baskets:
            self.total[key] = 0.0  # drop float drift whenever the window empties
        return baskets

    def used(self, method: str, caller_key: str | None = None) -> tuple[float, float]:
        """(seconds used in the window, unix time the oldest basket leaves it)."""
        key = self.key(method, caller_key)
        with self.lock:
            now = time.time()
            baskets = self._trim(key, now)
            reset_at = baskets[0][0] + self.window if baskets else now + self.window
            return self.total[key], reset_at

    def blocked(self, method: str, caller_key: str | None = None) -> bool:
        return self.used(method, caller_key)[0] >= self.budget

    def add(self, method: str, cost: float, caller_key: str | None = None) -> None:
        key = self.key(method, caller_key)
        with self.lock:
            now = time.time()
            baskets = self._trim(key, now)
            if baskets and now - baskets[-1][0] < self.window / 10:
                baskets[-1][1] += cost
            else:
                baskets.append([now, cost])
            self.total[key] += cost


# -- the server ---------------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    # Clients open up to ~50 connections at once (fast_bitrix24's pool); the default backlog of 5 would make
    # the kernel drop SYNs and stall them for a second.
    request_queue_size = 128
    daemon_threads = True


class _Drop(Exception):
    """Close the connection without an answer (injected fault)."""


class PortalServer:
    """A Bitrix24 portal on loopback, serving one inbound webhook `/rest/<user_id>/<code>/`.

    Extra options: `operating_extra_cost` (seconds added to each list call that counts `total`, to drive the
    operating-time limit like unindexed heavy lists do), `offline_reserve_seconds` (how long `clear=0`
    reservations hide events), `request_log_limit` (oldest entries are dropped beyond it), `seed` (False = an
    empty portal with only stages and presets).
    """

    def __init__(
        self,
        world,
        host: str = "127.0.0.1",
        port: int = 0,
        rate: float = 2.0,
        burst: int = 50,
        faults: Faults | None = None,
        webhook_code: str | None = None,
        user_id: int = 1,
        operating_budget: float = 480.0,
        *,
        operating_extra_cost: float = 0.0,
        operating_costs: dict[str, float] | None = None,
        operating_scope: str = "caller",
        error_table: str = "earlier",
        webhook_scopes: tuple[str, ...] = DEFAULT_SCOPES,
        offline_reserve_seconds: float = 30 * 86400.0,
        request_log_limit: int = 200_000,
        seed: bool = True,
    ):
        self.world = world
        self.host, self.port = host, port
        self.faults = faults or Faults()
        self.webhook_code = webhook_code or secrets.token_hex(8)
        self.user_id = user_id
        # Inbound webhooks by user: each acts as its user (CREATED_BY_ID / MODIFY_BY_ID, the event's user_id).
        self.webhooks: dict[str, str] = {str(user_id): self.webhook_code}
        self.webhook_scopes = frozenset(webhook_scopes)
        self.admins = {user_id}  # portal administrators (offline events need one)
        self.application: LocalApplication | None = None  # install_application() adds the local app
        self.member_id = secrets.token_hex(16)
        self._outbound: list[tuple[int, str, set[str], str]] = []  # outbound webhooks (add_outbound_webhook)
        self._deliveries: queue.Queue = queue.Queue()
        self._delivery: threading.Thread | None = None
        self.outbound_log: list[dict] = []
        if error_table not in ERROR_STATUS:
            raise ValueError(f"error_table must be one of {sorted(ERROR_STATUS)}")
        self.error_table = error_table  # HTTP statuses of system errors by doc revision (bitrix24_auth.py)
        self.bucket = LeakyBucket(rate, burst)
        self.operating = OperatingClock(operating_budget, scope=operating_scope)
        self.operating_extra_cost = operating_extra_cost
        # Server seconds charged per call of a method (`--operating-cost`), instead of the sandbox's own few
        # microseconds: what makes the budget bind as it does on a loaded portal. Keys: a method or `*.<verb>`,
        # laid over DEFAULT_OPERATING_COSTS; a method matching neither is charged its measured processing time.
        costs = {**DEFAULT_OPERATING_COSTS, **(operating_costs or {})}
        self.operating_costs = {str(k).lower(): float(v) for k, v in costs.items()}
        self.request_log: list[dict] = []
        self.request_log_limit = request_log_limit
        self._log_lock = threading.Lock()
        self.state = CrmState(user_id=user_id, offline_reserve_seconds=offline_reserve_seconds)
        if seed and world is not None:
            from b24_1c_assets.sandbox.bitrix24_seed import seed_portal

            seed_portal(self.state, world)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never show the webhook code
        return f"PortalServer(http://{self.host}:{self.port}, user={self.user_id})"

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> PortalServer:
        handler = type("PortalHandler", (_Handler,), {"portal": self})
        self._httpd = _HTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"b24-portal-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/rest/{self.user_id}/{self.webhook_code}/"

    def install_application(
        self, *, user_id: int | None = None, scopes: tuple[str, ...] = DEFAULT_SCOPES, access_ttl: float = 3600.0
    ) -> dict:
        """Install a local application (by `user_id`, default the portal's admin) and return what its
        installation hands over: client_id, client_secret and the first token pair (`settings/oauth/index.md`)."""
        self.application = LocalApplication(
            user_id=user_id or self.user_id, scopes=tuple(scopes), access_ttl=access_ttl
        )
        tokens = self.application.install(f"{self.base_url}/rest/")
        return {"client_id": self.application.client_id, "client_secret": self.application.client_secret, **tokens}

    def add_outbound_webhook(self, handler_url: str, events: list[str], application_token: str | None = None) -> str:
        """An outbound webhook (*Developer resources → Outbound webhook*): every change of the listed events is
        POSTed to `handler_url` as the portal's queue server does — `application/x-www-form-urlencoded` in PHP
        bracket form, `event`, `event_handler_id`, `data[FIELDS][ID]`, `ts`, `auth[...]` with the webhook's
        application token — from a background thread, a few at a time, never redelivered on failure
        (`local-integrations/local-webhooks.md`, `api-reference/events/index.md`). Returns the token."""
        token = application_token or secrets.token_hex(16)
        handler_id = len(self._outbound) + 1
        wanted = {e.upper() for e in events}
        self._outbound.append((handler_id, handler_url, wanted, token))
        if self._delivery is None:
            self._delivery = threading.Thread(target=self._deliver_forever, name="b24-outbound", daemon=True)
            self._delivery.start()
            self.state.event_listeners.append(self._on_change)
        return token

    def _on_change(self, event: str, record_id: int, user_id: int) -> None:
        for handler_id, url, wanted, token in self._outbound:
            if event in wanted:
                self._deliveries.put((handler_id, url, token, event, record_id))

    def _deliver_forever(self) -> None:
        import requests  # only when outbound webhooks are used

        while True:
            handler_id, url, token, event, record_id = self._deliveries.get()
            body = {
                "event": event,
                "event_handler_id": str(handler_id),
                "data[FIELDS][ID]": str(record_id),
                "ts": str(int(time.time())),
                "auth[domain]": f"{self.host}:{self.port}",
                "auth[client_endpoint]": f"{self.base_url}/rest/",
                "auth[server_endpoint]": f"{self.base_url}/rest/",
                "auth[member_id]": self.member_id,
                "auth[application_token]": token,
            }
            try:
                answer = requests.post(url, data=body, timeout=10)
                self.outbound_log.append({"event": event, "id": record_id, "status": answer.status_code})
            except requests.RequestException as exc:  # no redelivery: the event is lost, as on a portal
                self.outbound_log.append({"event": event, "id": record_id, "status": None, "error": type(exc).__name__})
            finally:
                self._deliveries.task_done()

    def wait_for_deliveries(self, timeout: float = 10.0) -> None:
        """Block until every queued outbound delivery was attempted (tests)."""
        deadline = time.monotonic() + timeout
        while self._deliveries.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def application_token(self) -> str:
        """A valid access token of the local application (installed first if needed): for tests and tools
        that call `event.*` the way an application does."""
        if self.application is None:
            self.install_application()
        return self.application.install(f"{self.base_url}/rest/")["access_token"]

    @property
    def oauth_server(self) -> str:
        """The authorization server's base (oauth.bitrix.info on the cloud; the sandbox serves it itself)."""
        return self.base_url

    def add_webhook(self, user_id: int, code: str | None = None) -> str:
        """Another user's inbound webhook (a manager editing deals, another integration): its base URL."""
        self.webhooks[str(user_id)] = code or secrets.token_hex(8)
        return f"{self.base_url}/rest/{user_id}/{self.webhooks[str(user_id)]}/"

    # -- request log -----------------------------------------------------------------------------------
    def clear_log(self) -> None:
        with self._log_lock:
            self.request_log.clear()

    def _log(self, entry: dict) -> None:
        with self._log_lock:
            self.request_log.append(entry)
            if len(self.request_log) > self.request_log_limit:
                del self.request_log[: len(self.request_log) - self.request_log_limit]

    def calls(self, method: str | None = None) -> list[dict]:
        """Log entries (optionally of one method, case-insensitive) — a helper for tests."""
        with self._log_lock:
            return [e for e in self.request_log if method is None or e["method"] == method.lower()]

    # -- protocol --------------------------------------------------------------------------------------
    def _time_block(self, started: float, processing: float, method: str | None, caller_key: str | None = None) -> dict:
        finished = time.time()
        used, reset_at = self.operating.used(method, caller_key) if method else (0.0, finished + OPERATING_WINDOW)
        return {
            "start": round(started, 6),
            "finish": round(finished, 6),
            "duration": round(finished - started, 6),
            "processing": round(processing, 6),
            "date_start": format_datetime(datetime.fromtimestamp(started, MSK)),
            "date_finish": format_datetime(datetime.fromtimestamp(finished, MSK)),
            "operating_reset_at": int(reset_at),
            "operating": round(used, 6),
        }

    def operating_used(self, method: str, caller: Caller | None = None) -> tuple[float, float]:
        """(seconds of `method` in the window, when the oldest basket leaves) for `caller` (default: the
        portal's webhook) — what that caller's `time.operating` / `operating_reset_at` say."""
        return self.operating.used(method, (caller or self.webhook_caller(self.user_id)).key)

    def operating_cost(self, method: str, measured: float = 0.0) -> float:
        """Seconds charged for one call of `method`: its configured cost, else its verb's, else `measured`."""
        method = method.lower()
        if method in self.operating_costs:
            return self.operating_costs[method]
        return self.operating_costs.get("*." + method.rsplit(".", 1)[-1], measured)

    def has_method(self, method: str) -> bool:
        return method.lower() in BASIC_METHODS or self.state.has_method(method)

    def webhook_caller(self, user_id: int) -> Caller:
        return Caller("webhook", int(user_id), self.webhook_scopes, f"webhook:{user_id}")

    def _run_method(
        self, method: str, params: dict, user_id: int | None = None, caller: Caller | None = None
    ) -> tuple[Any, float]:
        """Call one CRM method with operating-time accounting: (result, processing seconds)."""
        caller = caller or self.webhook_caller(user_id or self.user_id)
        try:
            check_method(caller, method)
        except AuthFailure as refused:
            raise CrmError(refused.code, refused.description, 403) from None
        lowered = method.lower()
        if caller.user_id not in self.admins and (
            lowered.startswith("event.offline.")
            or (lowered == "event.bind" and str(params.get("event_type") or "").lower() == "offline")
        ):
            # `api-reference/events/event-bind.md`, `event-offline-get.md`: "Who can execute: administrator"
            raise CrmError(
                "ACCESS_DENIED", "Access denied! Offline events binding requires administrator access rights", 403
            )
        if caller.user_id not in self.admins and lowered in CRM_ADMIN_METHODS:
            # `crm-status-add.md` ("user with CRM administrator rights"), `userfieldconfig-add.md`
            raise CrmError("", "Access denied.", 400)
        if self.operating.blocked(method, caller.key):
            raise CrmError("OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.", 503)
        began = time.perf_counter()
        result = None
        try:
            if method.lower() == "scope":  # `api-reference/common/system/scope.md`: the caller's scopes
                result = sorted(caller.scopes)
            else:
                result = self.state.call(method, params, caller.user_id)
        finally:
            processing = time.perf_counter() - began
            cost = self.operating_cost(method, processing)
            if isinstance(result, Page) and result.total is not None and method.endswith(".list"):
                cost += self.operating_extra_cost  # counting `total` is what makes big lists expensive
            self.operating.add(method, cost, caller.key)
        return result, processing

    @staticmethod
    def _payload(result: Any) -> tuple[Any, Any, Any]:
        """(result, total, next) of a method's answer."""
        if isinstance(result, Page):
            items = {result.wrap: result.items} if result.wrap else result.items
            return items, result.total, result.next
        return result, None, None

    def handle(
        self, method: str, params: dict, started: float, user_id: int | None = None, caller: Caller | None = None
    ) -> tuple[int, dict]:
        """Run a known method (not `batch`) as `caller` (default: the webhook of `user_id` or of the portal's
        user): (status, body)."""
        caller = caller or self.webhook_caller(user_id or self.user_id)
        try:
            result, processing = self._run_method(method, params, caller=caller)
        except CrmError as err:
            return err.status, {"error": err.code, "error_description": err.description}
        payload, total, nxt = self._payload(result)
        body: dict[str, Any] = {"result": payload}
        if nxt is not None:
            body["next"] = nxt
        if total is not None:
            body["total"] = total
        body["time"] = self._time_block(started, processing, method, caller.key)
        return 200, body

    def handle_batch(
        self,
        params: dict,
        started: float,
        inner_log: list[str],
        user_id: int | None = None,
        caller: Caller | None = None,
    ) -> tuple[int, dict]:
        caller = caller or self.webhook_caller(user_id or self.user_id)
        params = {str(k).lower(): v for k, v in params.items()}
        commands = params.get("cmd") or {}
        if isinstance(commands, list):
            commands = {str(i): c for i, c in enumerate(commands)}
        if not isinstance(commands, dict):
            return 400, {"error": "ERROR_ARGUMENT", "error_description": "Parameter 'cmd' must be an array"}
        halt = str(params.get("halt", 0)).strip() not in ("0", "", "false", "N")
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        totals: dict[str, Any] = {}
        nexts: dict[str, Any] = {}
        times: dict[str, Any] = {}
        processing_total = 0.0
        if len(commands) > MAX_BATCH_COMMANDS:
            return 400, {"error": "ERROR_BATCH_LENGTH_EXCEEDED", "error_description": "Max batch length exceeded"}
        for key, command in commands.items():
            key = str(key)
            method, _, query = str(command).partition("?")
            method = method.strip().lower().removesuffix(".json")
            inner_log.append(method)
            cmd_started = time.time()
            sub_params = _substitute(parse_php_query(query), results)
            try:
                if method == "batch":
                    raise CrmError("ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage", 405)
                if not self.has_method(method):
                    raise CrmError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
                command_fault = self.faults.draw(self.faults.batch_command_error_share)
                write = is_write_method(method)
                if command_fault and not (self.faults.fail_after_write and write):
                    raise CrmError("INTERNAL_SERVER_ERROR", "Internal server error", 500)
                result, processing = self._run_method(method, sub_params, caller=caller)
                processing_total += processing
                if command_fault:  # the write happened, the answer says it failed
                    raise CrmError("INTERNAL_SERVER_ERROR", "Internal server error", 500)
            except CrmError as err:
                errors[key] = {"error": err.code, "error_description": err.description}
                if halt:
                    break
                continue
            payload, total, nxt = self._payload(result)
            results[key] = payload
            if total is not None:
                totals[key] = total
            if nxt is not None:
                nexts[key] = nxt
            times[key] = self._time_block(cmd_started, processing, method, caller.key)
        body = {
            "result": {
                "result": php_map(results),
                "result_error": php_map(errors),
                "result_total": php_map(totals),
                "result_next": php_map(nexts),
                "result_time": php_map(times),
            },
            "time": self._time_block(started, processing_total, None),
        }
        body["time"]["operating"] = 0
        return 200, body


_REFERENCE = re.compile(r"\$result\[([^\]]+)\]((?:\[[^\]]*\])*)")


def _resolve(results: dict, key: str, path: str) -> tuple[bool, Any]:
    """(known, value) of `$result[key][path...]`. A path that leaves the result stops at the part it could
    resolve and substitutes that (e.g. the whole page array for `[49][ID]` of a 10-row page), as the portal does
    (`../shared/reference/bitrix24-rest.md`, verified corrections)."""
    if key not in results:
        return False, None
    node = results[key]
    for part in re.findall(r"\[([^\]]*)\]", path):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            break
    return True, node


def _php_string(value: Any) -> str:
    if value is True:
        return "1"
    if value in (None, False):
        return ""
    if isinstance(value, (list, dict)):
        return "Array"
    return str(value)


def _substitute(node: Any, results: dict) -> Any:
    """Replace `$result[cmd][...]` references with earlier commands' results (see the module docstring)."""
    if isinstance(node, dict):
        return {k: _substitute(v, results) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, results) for v in node]
    if not isinstance(node, str) or "$result[" not in node:
        return node
    whole = _REFERENCE.fullmatch(node)
    if whole:
        known, value = _resolve(results, whole.group(1), whole.group(2))
        if known:
            return value if isinstance(value, (list, dict)) else _php_string(value)
        return node

    def replace(match: re.Match) -> str:
        known, value = _resolve(results, match.group(1), match.group(2))
        return _php_string(value) if known else match.group(0)

    return _REFERENCE.sub(replace, node)


class _Handler(BaseHTTPRequestHandler):
    portal: PortalServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: Nagle + delayed ACK would add ~40 ms
    server_version = "nginx"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr; the portal keeps its own log
        return

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    # -- plumbing ------------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _params(self, query: str, body: bytes) -> dict:
        params = parse_php_query(query) if query else {}
        if body.strip():
            ctype = self.headers.get("Content-Type", "").lower()
            text = body.decode("utf-8")
            if "json" in ctype or (not ctype and text.lstrip().startswith("{")):
                try:
                    parsed = json.loads(text)
                except ValueError:
                    raise CrmError("ERROR_ARGUMENT", "Request body is not valid JSON") from None
                if not isinstance(parsed, dict):
                    raise CrmError("ERROR_ARGUMENT", "Request body must be a JSON object")
                params.update(parsed)
            else:
                params.update(parse_php_query(text))
        return params

    def _send(self, status: int, body: dict | None, raw: bytes | None = None, ctype: str = "application/json") -> None:
        data = raw if raw is not None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{ctype}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _fault(self, kind: str) -> None:
        """Answer with an injected failure (or delay for 'slow')."""
        if kind == "drop":
            raise _Drop
        if kind == "503":  # the balancer's plain 503, not a JSON REST error
            raise _Fault(503, None, b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>")
        if kind == "500":
            raise _Fault(500, {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}, None)
        if kind == "slow":
            time.sleep(self.portal.faults.slow_seconds)

    # -- one request ---------------------------------------------------------------------------------
    def _serve(self) -> None:
        portal = self.portal
        started = time.time()
        entry: dict[str, Any] = {
            "ts": started,
            "method": None,
            "params": None,
            "status": None,
            "error": None,
            "kind": "read",
        }
        try:
            status, body, raw, ctype = self._process(entry, started)
        except _Drop:
            entry.update(status=None, error="DROPPED")
            portal._log(entry)
            self._drop()
            return
        if body is not None and "error" in body:
            # system errors answer with the status of the configured doc revision (bitrix24_auth.ERROR_STATUS)
            status = ERROR_STATUS[portal.error_table].get(str(body["error"]), status)
            entry["error"] = body["error"]
        entry["status"] = status
        portal._log(entry)
        html = ctype != "application/json"
        try:
            self._send(status, None if html else body, raw, ctype)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. its timeout on a slow answer)
            self.close_connection = True

    def _oauth_token(self, query: str, body: bytes) -> tuple[int, dict, None, str]:
        """`GET|POST /oauth/token/?grant_type=refresh_token&...`: a new token pair
        (`settings/oauth/auto-renewal.md`)."""
        portal = self.portal
        params = parse_php_query(query) if query else {}
        if body.strip():
            params.update(parse_php_query(body.decode("utf-8", "replace")))
        if portal.application is None:
            return 401, {"error": "invalid_client", "error_description": "No application"}, None, "application/json"
        try:
            return 200, portal.application.renew(params, f"{portal.base_url}/rest/"), None, "application/json"
        except AuthFailure as refused:
            return (
                refused.status or 400,
                {"error": refused.code, "error_description": refused.description},
                None,
                "application/json",
            )

    def _process(self, entry: dict, started: float) -> tuple[int, dict | None, bytes | None, str]:
        portal = self.portal
        parts = urlsplit(self.path)
        segments = [s for s in parts.path.split("/") if s]
        body_bytes = self._read_body()
        if segments[:2] == ["oauth", "token"]:  # the authorization server (oauth.bitrix.info on the cloud)
            entry["method"] = "oauth.token"
            return self._oauth_token(parts.query, body_bytes)
        if len(segments) == 4 and segments[0] == "rest":
            user, code, method = segments[1], segments[2], segments[3]
        elif len(segments) == 2 and segments[0] == "rest":
            user, code, method = None, None, segments[1]  # an application: `auth=<access_token>`
        else:
            return 404, {"error": "NOT_FOUND", "error_description": "Not found"}, None, "application/json"
        method = method.lower()
        for suffix in (".json", ".xml"):
            method = method.removesuffix(suffix)
        entry["method"] = method
        entry["kind"] = "write" if is_write_method(method) else "read"
        try:
            params = self._params(parts.query, body_bytes)
        except (CrmError, UnicodeDecodeError) as err:
            description = err.description if isinstance(err, CrmError) else "Request is not valid UTF-8"
            return 400, {"error": "ERROR_ARGUMENT", "error_description": description}, None, "application/json"
        if code is not None:
            expected = portal.webhooks.get(user or "")
            if expected is None or not secrets.compare_digest(code or "", expected):
                return (
                    401,
                    {"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"},
                    None,
                    "application/json",
                )
            caller = portal.webhook_caller(int(user))
        else:
            token = str(params.get("auth") or params.get("access_token") or "")
            if not token or portal.application is None:
                return (
                    401,
                    {"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"},
                    None,
                    "application/json",
                )
            try:
                caller = portal.application.caller(token)
            except AuthFailure as refused:
                return 401, {"error": refused.code, "error_description": refused.description}, None, "application/json"
        entry["caller"] = caller.kind
        params = {k: v for k, v in params.items() if str(k).lower() != "auth"}  # the token is no method parameter
        entry["params"] = {k: v for k, v in params.items() if str(k).lower() not in SECRET_PARAMS}
        if not portal.bucket.admit():
            return (
                503,
                {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"},
                None,
                "application/json",
            )
        if method != "batch" and not portal.has_method(method):
            return (
                404,
                {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"},
                None,
                "application/json",
            )
        inner: list[str] = []
        if method == "batch":
            entry["commands"] = inner
            commands = params.get("cmd") or {}
            listed = commands.values() if isinstance(commands, dict) else commands if isinstance(commands, list) else []
            if any(is_write_method(str(c).partition("?")[0].strip()) for c in listed):
                entry["kind"] = "write"
        write = entry["kind"] == "write"
        fault = portal.faults.pick()
        after = fault in ("drop", "503", "500") and portal.faults.fail_after_write and write
        try:
            if fault and not after:
                self._fault(fault)
            if method == "batch":
                status, body = portal.handle_batch(params, started, inner, caller=caller)
                if body.get("result", {}).get("result_error"):
                    entry["command_errors"] = {k: v["error"] for k, v in _items(body["result"]["result_error"])}
            else:
                status, body = portal.handle(method, params, started, caller=caller)
            if after:
                self._fault(fault)
        except _Fault as fault_answer:
            return (
                fault_answer.status,
                fault_answer.body,
                fault_answer.raw,
                "application/json" if fault_answer.raw is None else "text/html",
            )
        return status, body, None, "application/json"


class _Fault(Exception):
    def __init__(self, status: int, body: dict | None, raw: bytes | None):
        super().__init__(status)
        self.status, self.body, self.raw = status, body, raw


def _items(mapping: Any):
    return mapping.items() if isinstance(mapping, dict) else enumerate(mapping)
