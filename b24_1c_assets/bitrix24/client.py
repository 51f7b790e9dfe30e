"""Bitrix24 REST client: JSON calls, paced and retried; `batch` with per-command outcomes; keyset export.

Usable with or without Dagster. One `Bitrix24Client` may be shared by threads; every client for the same
webhook in this process shares one pacer (the portal counts requests per webhook).

Retries (bounded, exponential backoff with jitter, via tenacity):
- 503 QUERY_LIMIT_EXCEEDED: always retried (the portal did nothing).
- 5xx, unreadable answers, dropped connections, read timeouts: retried only for idempotent calls. For a
  write we cannot know whether the portal carried it out, so a non-idempotent call (`*.add` by default)
  raises with `exc.outcome_unknown == True`; the caller looks the record up (ORIGIN_ID) before re-adding.
  A connection that was never established (refused, connect timeout) is retried for any call.
- OPERATION_TIME_LIMIT: the client waits until the method's `operating_reset_at` and tries again
  (counted in `stats.operating_waits`, logged).
- Never retried: 400/401/403/404, OVERLOAD_LIMIT, PORTAL_DELETED.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from .auth import ApplicationAuth, WebhookAuth
from .errors import (
    AuthError,
    Bitrix24Error,
    ExportError,
    MissingScopes,
    OperationTimeLimit,
    QueryLimitExceeded,
    ServerError,
    TransportError,
    error_from_envelope,
)
from .pacing import Pacer, shared_pacer
from .query import batch_command

log = logging.getLogger(__name__)

BATCH_LIMIT = 50  # commands per batch call
PAGE_SIZE = 50  # rows per *.list page (fixed by the portal)
_METHOD_RE = re.compile(r"^[A-Za-z0-9_.]+$")
_WEBHOOK_PATH_RE = re.compile(r"(/rest/)[^/\s\"']+/[^/\s\"']+")


# --------------------------------------------------------------------------------------------- results
@dataclass
class Envelope:
    """A successful answer: `result` plus paging (`next`, `total`) and the `time` block."""

    result: Any
    next: int | None = None
    total: int | None = None
    time: dict = field(default_factory=dict)


@dataclass
class CommandOutcome:
    """The outcome of one command inside `batch`: a result or an error, never both."""

    name: str
    method: str
    result: Any = None
    error: Bitrix24Error | None = None
    total: int | None = None
    next: int | None = None
    time: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> Any:
        """The result, or raise the command's error."""
        if self.error is not None:
            raise self.error
        return self.result


class BatchResult(Mapping):
    """Outcomes of a `batch` by command name, in the order given; one failed command never hides others."""

    def __init__(self, outcomes: dict[str, CommandOutcome]) -> None:
        self._outcomes = outcomes

    def __getitem__(self, name: str) -> CommandOutcome:
        return self._outcomes[name]

    def __iter__(self):
        return iter(self._outcomes)

    def __len__(self) -> int:
        return len(self._outcomes)

    @property
    def results(self) -> dict[str, Any]:
        """Results of the commands that succeeded."""
        return {n: o.result for n, o in self._outcomes.items() if o.ok}

    @property
    def errors(self) -> dict[str, Bitrix24Error]:
        """Errors of the commands that failed."""
        return {n: o.error for n, o in self._outcomes.items() if o.error is not None}

    def __repr__(self) -> str:
        return f"BatchResult(ok={len(self) - len(self.errors)}, failed={len(self.errors)})"


@dataclass
class ClientStats:
    """Counters of one client, for Dagster metadata and benchmarks."""

    http_calls: int = 0
    batch_calls: int = 0
    batch_commands: int = 0
    command_errors: int = 0
    retries: int = 0
    throttled: int = 0  # 503 QUERY_LIMIT_EXCEEDED answers
    server_errors: int = 0
    transport_errors: int = 0
    operating_waits: int = 0
    operating_wait_seconds: float = 0.0
    operating_pauses: int = 0  # paced below the operating budget's share (not a refusal)
    operating_pause_seconds: float = 0.0
    pacer_wait_seconds: float = 0.0
    rows_exported: int = 0

    def as_dict(self) -> dict[str, int | float]:
        values = asdict(self)
        for key in ("operating_wait_seconds", "pacer_wait_seconds", "operating_pause_seconds"):
            values[key] = round(values[key], 3)
        return values


# ------------------------------------------------------------------------------------------- secrecy
_OAUTH_SECRET_RE = re.compile(r"((?:client_secret|refresh_token|access_token|auth)=)[^&\s\"']+")


class _RedactWebhookPath(logging.Filter):
    """urllib3 logs request paths at DEBUG; a webhook path or an OAuth query carries a credential, so mask it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/rest/" in message or "token" in message or "auth=" in message:
            record.msg = _OAUTH_SECRET_RE.sub(r"\1***", _WEBHOOK_PATH_RE.sub(r"\1***", message))
            record.args = None
        return True


def _install_log_redaction() -> None:
    target = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactWebhookPath) for f in target.filters):
        target.addFilter(_RedactWebhookPath())


_install_log_redaction()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot send a {type(value).__name__} to Bitrix24")


def is_write_method(method: str) -> bool:
    """`*.add` creates a record on every call: not idempotent unless the caller says otherwise."""
    return method.lower().rstrip("/").removesuffix(".json").endswith(".add")


def _list_shape(method: str) -> tuple[str, str | None]:
    """(ID field, wrapper key) of a list method: classic `ID`/bare list, `crm.item.list` `id`/`items`."""
    if method.lower().startswith("crm.item."):
        return "id", "items"
    return "ID", None


# -------------------------------------------------------------------------------------------- client
class Bitrix24Client:
    """A paced, retrying client for one Bitrix24 portal, through an inbound webhook or a local application.

    `webhook_url` is `https://<portal>/rest/<user>/<code>/` and is a credential: it appears nowhere but in
    the request line. An application passes `auth=ApplicationAuth(...)` instead (tokens renewed on
    `expired_token`, see auth.py). Errors and logs name the portal host and the method only.

        client = Bitrix24Client(url, rate=2.0, burst=50)
        for page in client.export("crm.company.list", select=["ID", "TITLE", "ORIGIN_ID"]): ...
        outcome = client.batch({f"u{i}": ("crm.company.update", {"id": i, "fields": f}) for i, f in changes})
        new_id = client.call("crm.company.add", {"fields": ...})  # not retried on an unknown outcome
        metadata = client.stats.as_dict()

    `timeout` is the read timeout: above the portal's own 60 s per request (`limits.md`), so we never resend a
    call the portal is still running (that spends the method's operating budget twice).
    """

    def __init__(
        self,
        webhook_url: str | None = None,
        *,
        auth: WebhookAuth | ApplicationAuth | None = None,
        rate: float = 2.0,
        burst: int = 50,
        timeout: float = 65.0,
        max_retries: int = 5,
        session: requests.Session | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        max_operating_waits: int = 2,
        max_operating_wait_seconds: float = 660.0,
        operating_budget: float = 480.0,
        operating_share: float = 0.5,
        pacer: Pacer | None = None,
    ) -> None:
        if auth is None:
            auth = WebhookAuth(webhook_url or "")
        elif webhook_url:
            raise ValueError("pass either webhook_url or auth, not both")
        self.auth = auth
        self.host = auth.host
        self.rate = float(rate)
        self.burst = int(burst)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff_initial = float(backoff_initial)
        self.backoff_max = float(backoff_max)
        self.max_operating_waits = int(max_operating_waits)
        self.max_operating_wait_seconds = float(max_operating_wait_seconds)
        if not 0 < operating_share <= 1:
            raise ValueError("operating_share must be within (0, 1]")
        self.operating_budget = float(operating_budget)
        self.operating_share = float(operating_share)
        self.operating_peak: dict[str, float] = {}  # method -> highest `time.operating` seen
        self._operating_cost: dict[str, float] = {}  # method -> observed seconds per call (moving average)
        self._operating_stale: set[str] = set()  # waited for a reset since the last observation
        self._operating_before: dict[str, float] = {}  # method -> `operating` at our first answer
        self._operating_lock = threading.Lock()
        self.pacer = pacer or shared_pacer(auth.pacer_key, self.rate, self.burst)
        self._own_session = session is None
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self._session = session
        self.stats = ClientStats()
        self._stats_lock = threading.Lock()
        self._blocked_until: dict[str, float] = {}  # method -> monotonic time its operating budget resets
        self._last_time: dict[str, dict] = {}  # method -> last `time` block seen
        self._server_clock_offset = 0.0  # portal clock minus ours, from the last `time.finish`
        self._granted_scopes: set[str] | None = None  # from `scope`, asked once (require_scopes)

    @property
    def user_id(self) -> int | None:
        """The portal user our calls act as (the webhook's user, or the application's installing user)."""
        return self.auth.user_id

    def require_scopes(self, needed: Sequence[str]) -> None:
        """Ask `scope` once per client and raise MissingScopes naming every needed scope the webhook or the
        application lacks (`api-reference/common/system/scope.md`), before any write can fail on one."""
        if self._granted_scopes is None:
            granted = self.call("scope") or []
            self._granted_scopes = {str(s) for s in granted} if isinstance(granted, list) else set()
        missing = [s for s in needed if s not in self._granted_scopes]
        if missing:
            where = "the inbound webhook's form" if self.auth.kind == "webhook" else "the application's card"
            raise MissingScopes(
                f"the portal does not grant the scopes {', '.join(missing)} to this "
                f"{self.auth.kind}; tick them in {where} (granted: "
                f"{', '.join(sorted(self._granted_scopes)) or 'none'})",
                host=self.host,
                method="scope",
                code="insufficient_scope",
            )

    def __repr__(self) -> str:
        return f"Bitrix24Client(host={self.host!r}, rate={self.rate}, burst={self.burst})"

    def close(self) -> None:
        if self._own_session:
            self._session.close()

    def __enter__(self) -> Bitrix24Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _count(self, **increments: float) -> None:
        with self._stats_lock:
            for name, value in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)

    def last_time(self, method: str) -> dict:
        """The last `time` block the portal sent for `method` (operating seconds, reset time)."""
        return dict(self._last_time.get(method.lower(), {}))

    # ------------------------------------------------------------------------------------ one call
    def call(self, method: str, params: Mapping[str, Any] | None = None, *, idempotent: bool | None = None) -> Any:
        """Call `method` and return its `result`. `idempotent` defaults to False for `*.add`, else True."""
        return self.call_envelope(method, params, idempotent=idempotent).result

    def call_envelope(
        self, method: str, params: Mapping[str, Any] | None = None, *, idempotent: bool | None = None
    ) -> Envelope:
        """Call `method` and return the whole success envelope (`result`, `next`, `total`, `time`)."""
        if not _METHOD_RE.match(method or ""):
            raise ValueError(f"not a Bitrix24 method name: {method!r}")
        if idempotent is None:
            idempotent = not is_write_method(method)
        body = json.dumps(dict(params or {}), default=_json_default, ensure_ascii=False).encode("utf-8")
        self.pace_operating({method: 1})
        return self._with_retries(method, body, idempotent)

    def _with_retries(self, method: str, body: bytes, idempotent: bool) -> Envelope:
        operating_waits = 0
        while True:
            retrying = Retrying(
                retry=retry_if_exception(lambda exc: self._retryable(exc, idempotent)),
                stop=stop_after_attempt(self.max_retries + 1),
                wait=self._backoff,
                before_sleep=lambda state: self._before_retry(method, state),
                reraise=True,
            )
            try:
                return retrying(self._post, method, body)
            except OperationTimeLimit as exc:
                if operating_waits >= self.max_operating_waits:
                    raise
                operating_waits += 1
                self.wait_for_operating_reset(method, exc)

    @staticmethod
    def _retryable(exc: BaseException, idempotent: bool) -> bool:
        if not isinstance(exc, Bitrix24Error) or isinstance(exc, OperationTimeLimit):
            return False  # operating-time waits are handled outside the backoff loop
        if not exc.retryable:
            return False
        return idempotent or not exc.outcome_unknown

    def _backoff(self, state: RetryCallState) -> float:
        wait = wait_exponential_jitter(initial=self.backoff_initial, max=self.backoff_max, jitter=self.backoff_initial)(
            state
        )
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, QueryLimitExceeded):
            wait = max(wait, 1.0 / self.rate)  # retrying sooner only refills the portal's bucket
        return wait

    def _before_retry(self, method: str, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self._count(retries=1)
        log.warning(
            "Bitrix24 %s %s: %s; retry %d of %d in %.1f s",
            self.host,
            method,
            getattr(exc, "code", None) or type(exc).__name__,
            state.attempt_number,
            self.max_retries,
            state.next_action.sleep if state.next_action else 0.0,
        )

    # ------------------------------------------------------------------ operating-time budget (pacing)
    # Each method may use `operating_budget` seconds of server time per 10 minutes (`limits.md`); past it the
    # portal refuses the method with OPERATION_TIME_LIMIT — for every caller in the older docs, for this caller
    # in the current ones. We keep our own use under `operating_share` of it: before sending k calls of a method,
    # if the last `time.operating` seen plus k times the observed cost per call would pass the share, we wait
    # for `operating_reset_at` (when the oldest minute basket leaves the sum) and look again. A long push slows
    # down instead of tripping the limit; what others used shows up in `operating` and is waited out the same way.
    def _observe_operating(self, method: str, block: dict) -> None:
        used = _num(block.get("operating"))
        if used is None:
            return
        key = method.lower()
        with self._operating_lock:
            previous = _num(self._last_time.get(key, {}).get("operating"))
            if previous is None:
                self._operating_before.setdefault(key, used)  # spent before this client's first call
            if previous is not None and used > previous and key not in self._operating_stale:
                step = used - previous
                known = self._operating_cost.get(key)
                self._operating_cost[key] = step if known is None else 0.8 * known + 0.2 * step
            self._operating_stale.discard(key)
            self.operating_peak[key] = max(self.operating_peak.get(key, 0.0), used)

    def pace_operating(self, calls: Mapping[str, int]) -> float:
        """Wait until `calls` (method -> number of calls about to be sent) fit under the budget's share;
        returns the seconds waited."""
        limit = self.operating_budget * self.operating_share
        waited = 0.0
        for method, count in calls.items():
            key = method.lower()
            with self._operating_lock:
                if key in self._operating_stale:
                    continue  # waited for a reset already: the next answer tells where we stand
                block = self._last_time.get(key) or {}
                used = _num(block.get("operating"))
                reset_at = _num(block.get("operating_reset_at"))
                cost = self._operating_cost.get(key, 0.0)
            if used is None or used + count * cost <= limit or not reset_at:
                continue
            server_now = time.time() + self._server_clock_offset
            wait = max(0.0, reset_at - server_now) + 0.5
            if wait > self.max_operating_wait_seconds:
                wait = self.max_operating_wait_seconds
            before = self._operating_before.get(key, 0.0)
            log.warning(
                "Bitrix24 %s %s: %.0f s of the %.0f s operating budget used in the last 10 minutes "
                "(keeping under %.0f%%%s); pausing %.1f s until operating_reset_at",
                self.host,
                method,
                used,
                self.operating_budget,
                self.operating_share * 100,
                f"; {before:.0f} s were already used before this run: other runs, applications or webhooks"
                if before >= limit / 2
                else "",
                wait,
            )
            time.sleep(wait)
            waited += wait
            with self._operating_lock:
                self._operating_stale.add(key)
            self._count(operating_pauses=1, operating_pause_seconds=wait)
        return waited

    def wait_for_operating_reset(self, method: str, exc: OperationTimeLimit) -> float:
        """Sleep until `method`'s operating-time window resets (from the error or the last time block)."""
        key = method.lower()
        reset_at = exc.reset_at or _num(self._last_time.get(key, {}).get("operating_reset_at"))
        if reset_at:
            # reset_at is the portal's clock (whole seconds): compare with the portal's "now", not ours.
            server_now = time.time() + self._server_clock_offset
            wait = max(0.0, reset_at - server_now) + 1.0
        else:
            wait = min(60.0, self.max_operating_wait_seconds)  # no reset time known: a conservative pause
        if wait > self.max_operating_wait_seconds:
            raise exc
        self._blocked_until[key] = time.monotonic() + wait
        log.warning(
            "Bitrix24 %s %s: OPERATION_TIME_LIMIT, waiting %.1f s for the operating-time reset", self.host, method, wait
        )
        return self._sleep_if_blocked(key)

    def _sleep_if_blocked(self, key: str) -> float:
        wait = self._blocked_until.get(key, 0.0) - time.monotonic()
        if wait <= 0:
            return 0.0
        time.sleep(wait)
        self._count(operating_waits=1, operating_wait_seconds=wait)
        return wait

    def _post(self, method: str, body: bytes) -> Envelope:
        """One paced HTTP request; the answer as an Envelope or a typed error."""
        self._sleep_if_blocked(method.lower())
        for renewal in (False, True):
            token = self.auth.token()
            try:
                return self._post_once(method, body, token)
            except AuthError as exc:
                # `expired_token` (401): renew and send the same call again, once (`settings/oauth/auto-renewal.md`)
                if (
                    renewal
                    or (exc.code or "").lower() not in ("expired_token", "invalid_token")
                    or not self.auth.renew(token)
                ):
                    raise
        raise AssertionError("unreachable")

    def _post_once(self, method: str, body: bytes, token: str | None) -> Envelope:
        self._count(pacer_wait_seconds=self.pacer.acquire(), http_calls=1)
        if token is not None:  # an application's token goes in the body, never in the logged request line
            auth = b'{"auth": ' + json.dumps(token).encode("ascii")
            body = auth + b"}" if body.strip() in (b"{}", b"") else auth + b", " + body.lstrip()[1:]
        failure: TransportError | None = None
        try:
            response = self._session.post(
                self.auth.url(method),
                data=body,
                timeout=(min(self.timeout, 10.0), self.timeout),
                headers={"Content-Type": "application/json; charset=utf-8", "Accept": "application/json"},
            )
            raw = response.content  # read the body on any status: errors live there
        except requests.RequestException as exc:
            # requests' messages contain the URL (the credential): keep only the kind of failure.
            failure = TransportError(_transport_reason(exc), sent=_maybe_sent(exc), host=self.host, method=method)
        if failure is not None:  # raised outside the except block: no chained exception to print the URL
            self._count(transport_errors=1)
            raise failure
        status = response.status_code
        try:
            payload = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            payload = None
        if isinstance(payload, dict) and "error" in payload and "result" not in payload:
            error = error_from_envelope(host=self.host, method=method, status=status, body=payload)
        elif status >= 400:  # no JSON error body (a balancer's HTML page): classify by status alone
            error = error_from_envelope(host=self.host, method=method, status=status, body=None)
        elif not isinstance(payload, dict) or "result" not in payload:
            # a 2xx we cannot read: the call may well have happened, so it counts as an unknown outcome
            error = ServerError("unreadable answer", host=self.host, method=method, status=status)
        else:
            time_block = payload.get("time") if isinstance(payload.get("time"), dict) else {}
            if time_block:
                if method.lower() != "batch":  # a batch's own block says nothing of its commands' methods
                    self._observe_operating(method, time_block)
                self._last_time[method.lower()] = time_block
                finish = _num(time_block.get("finish"))
                if finish:
                    self._server_clock_offset = finish - time.time()
            return Envelope(
                result=payload["result"],
                next=_int(payload.get("next")),
                total=_int(payload.get("total")),
                time=time_block,
            )
        if isinstance(error, QueryLimitExceeded):
            self._count(throttled=1)
        elif isinstance(error, ServerError):
            self._count(server_errors=1)
        raise error

    # ---------------------------------------------------------------------------------------- batch
    def batch(
        self, commands: Mapping[str, Any] | Sequence[Any], *, halt: bool = False, idempotent: bool | None = None
    ) -> BatchResult:
        """Run any number of commands, 50 per `batch` call, keeping each command's result or error apart.

        `commands`: a mapping name -> command or a sequence of commands (named `c0`, `c1`, ...); a command
        is `(method, params)` or a ready `"method?query"` string. `$result[name]` references work only
        within one chunk of 50. `idempotent` defaults to True unless a command is an `*.add`.
        A whole-call failure (503, 5xx, drop) is retried as a whole, like `call`.
        """
        if isinstance(commands, Mapping):
            named = [(str(name), cmd) for name, cmd in commands.items()]
        else:
            named = [(f"c{i}", cmd) for i, cmd in enumerate(commands)]
        encoded = [(name, *_encode_command(cmd)) for name, cmd in named]
        if idempotent is None:
            idempotent = not any(is_write_method(method) for _, method, _ in encoded)
        outcomes: dict[str, CommandOutcome] = {}
        for start in range(0, len(encoded), BATCH_LIMIT):
            outcomes.update(self._batch_chunk(encoded[start : start + BATCH_LIMIT], halt, idempotent))
        return BatchResult(outcomes)

    def _batch_chunk(
        self, chunk: list[tuple[str, str, str]], halt: bool, idempotent: bool
    ) -> dict[str, CommandOutcome]:
        body = json.dumps(
            {"halt": 1 if halt else 0, "cmd": {name: text for name, _, text in chunk}}, ensure_ascii=False
        ).encode("utf-8")
        self._count(batch_calls=1, batch_commands=len(chunk))
        per_method: dict[str, int] = {}
        for _, method, _ in chunk:
            per_method[method] = per_method.get(method, 0) + 1
        self.pace_operating(per_method)
        envelope = self._with_retries("batch", body, idempotent)
        inner = envelope.result if isinstance(envelope.result, dict) else {}
        results = _as_map(inner.get("result"))
        errors = _as_map(inner.get("result_error"))
        totals = _as_map(inner.get("result_total"))
        nexts = _as_map(inner.get("result_next"))
        times = _as_map(inner.get("result_time"))
        outcomes = {}
        for name, method, _ in chunk:
            outcome = CommandOutcome(
                name=name,
                method=method,
                total=_int(totals.get(name)),
                next=_int(nexts.get(name)),
                time=times.get(name) if isinstance(times.get(name), dict) else {},
            )
            if name in errors:
                outcome.error = error_from_envelope(
                    host=self.host,
                    method=method,
                    status=None,
                    body=errors[name] if isinstance(errors[name], dict) else {"error": str(errors[name])},
                )
            elif name in results:
                outcome.result = results[name]
                if outcome.time:  # inner commands carry their own method's operating time
                    self._observe_operating(method, outcome.time)
                    self._last_time[method.lower()] = outcome.time
            else:
                outcome.error = Bitrix24Error(
                    "not executed (batch halted)", host=self.host, method=method, code="NOT_EXECUTED"
                )
            if outcome.error is not None:
                self._count(command_errors=1)
            outcomes[name] = outcome
        return outcomes

    # --------------------------------------------------------------------------------------- export
    def export(
        self,
        method: str,
        *,
        filter: Mapping[str, Any] | None = None,
        select: Sequence[str] | None = None,
        params: Mapping[str, Any] | None = None,
        pages_per_call: int = BATCH_LIMIT,
    ) -> Iterator[list[dict]]:
        """Yield every record of a list method exactly once, page by page, by ID keyset.

        One call first asks the highest matching ID (`order ID DESC`, `start=-1`). Each batch call then chains up
        to `pages_per_call` pages, but no more than the IDs left below that highest one can fill: page 0 asks
        `filter[>ID]=<last ID seen>`, page i `filter[>ID]=$result[p<i-1>][49][ID]` (`order ID ASC`, `start=-1`:
        no counting). Results are read in
        order and reading stops at the first short page or failed command, whatever the portal made of the
        commands after it; the next call restarts from the last ID actually seen. Records added during the
        export get higher IDs and are picked up at most once; updates do not move a record.
        Works for `crm.{company,contact,deal,requisite,product}.list` and `crm.item.list` (pass
        `params={"entityTypeId": 31}`; camelCase `id`, rows under `items`).
        """
        id_field, wrapper = _list_shape(method)
        base_filter = dict(filter or {})
        last_id = int(base_filter.pop(f">{id_field}", 0) or 0)
        if any(key.lstrip("<>=!@%").lower() == id_field.lower() and key.startswith(">") for key in base_filter):
            raise ValueError("export filters by ID itself; pass a lower bound as '>ID' only")
        extra = dict(params or {})
        if "order" in extra or "start" in extra:
            raise ValueError("export sets order and start itself")
        fields = list(select) if select else None
        if fields and "*" not in fields and id_field not in fields:
            fields.append(id_field)
        ref_path = f"[{wrapper}]" if wrapper else ""
        pages_per_call = max(1, min(BATCH_LIMIT, pages_per_call))
        upper = self._highest_id(method, base_filter, extra, id_field, wrapper)
        if upper is None or upper <= last_id:
            return  # nothing matches (beyond the lower bound)
        failures = operating_waits = 0  # counted apart: a budget wait must not use up the fault retries
        while True:
            # Chain only the pages the export can still need: after a short page the portal substitutes a
            # missing `$result[..][49][ID]` with the whole page array, so every command chained after it runs a
            # malformed query and spends the method's operating time for nothing. The IDs left up to the highest
            # fill at most (upper - last_id) // 50 full pages; one more page ends the export on a short one.
            chain = max(1, min(pages_per_call, (upper - last_id) // PAGE_SIZE + 1))
            chunk = []
            for i in range(chain):
                page_filter = dict(base_filter)
                page_filter[f">{id_field}"] = (
                    last_id if i == 0 else f"$result[p{i - 1}]{ref_path}[{PAGE_SIZE - 1}][{id_field}]"
                )
                page_params = {**extra, "order": {id_field: "ASC"}, "filter": page_filter, "start": -1}
                if fields:
                    page_params["select"] = fields
                chunk.append((f"p{i}", method, batch_command(method, page_params)))
            outcomes = self._batch_chunk(chunk, halt=False, idempotent=True)
            first_error = None
            for i in range(chain):
                outcome = outcomes[f"p{i}"]
                if outcome.error is not None:
                    first_error = outcome.error if i == 0 else None
                    break  # later pages may hang on an unresolved reference: restart from last_id
                rows = _rows(outcome.result, wrapper)
                if rows is None:
                    raise ExportError(f"unexpected page shape in {outcome.name}", host=self.host, method=method)
                last_id = self._check_keyset(method, rows, id_field, last_id)
                if rows:
                    self._count(rows_exported=len(rows))
                    yield rows
                if len(rows) < PAGE_SIZE:
                    return
            if first_error is None:
                failures = operating_waits = 0
                continue
            # The first page itself failed: nothing moved, so back off (or wait for the budget) and retry.
            if isinstance(first_error, OperationTimeLimit):
                operating_waits += 1
                if operating_waits > self.max_operating_waits:
                    raise first_error
                self.wait_for_operating_reset(method, first_error)
                continue
            failures += 1
            if first_error.retryable and failures <= self.max_retries:
                self._count(retries=1)
                delay = min(self.backoff_max, self.backoff_initial * 2 ** (failures - 1))
                log.warning(
                    "Bitrix24 %s %s: page failed (%s); retry %d of %d in %.1f s",
                    self.host,
                    method,
                    first_error.code or type(first_error).__name__,
                    failures,
                    self.max_retries,
                    delay,
                )
                time.sleep(delay)
            else:
                raise first_error

    def _highest_id(
        self, method: str, base_filter: dict, extra: dict, id_field: str, wrapper: str | None
    ) -> int | None:
        """The highest ID matching the export's filter (one cheap call: ID DESC, no count), None when none."""
        envelope = self.call_envelope(
            method, {**extra, "order": {id_field: "DESC"}, "filter": base_filter, "select": [id_field], "start": -1}
        )
        rows = _rows(envelope.result, wrapper) or []
        try:
            return int(rows[0][id_field]) if rows else None
        except (KeyError, TypeError, ValueError):
            raise ExportError(f"a row without a numeric {id_field}", host=self.host, method=method) from None

    def export_all(self, method: str, **kw: Any) -> list[dict]:
        """`export` collected into one list."""
        return [row for page in self.export(method, **kw) for row in page]

    def _check_keyset(self, method: str, rows: list[dict], id_field: str, last_id: int) -> int:
        for row in rows:
            try:
                row_id = int(row[id_field])
            except (KeyError, TypeError, ValueError):
                raise ExportError(f"a row without a numeric {id_field}", host=self.host, method=method) from None
            if row_id <= last_id:
                raise ExportError(
                    f"IDs out of order ({row_id} after {last_id}): the portal ignored order/filter",
                    host=self.host,
                    method=method,
                )
            last_id = row_id
        return last_id


# ------------------------------------------------------------------------------------------ helpers
def _encode_command(command: Any) -> tuple[str, str]:
    """(method, command text) of a batch command given as `(method, params)` or `"method?query"`."""
    if isinstance(command, str):
        method = command.split("?", 1)[0]
        text = command
    elif isinstance(command, (tuple, list)) and len(command) in (1, 2):
        method = command[0]
        text = batch_command(method, command[1] if len(command) == 2 else None)
    else:
        raise TypeError("a batch command is (method, params) or 'method?query'")
    if not _METHOD_RE.match(method or ""):
        raise ValueError(f"not a Bitrix24 method name: {method!r}")
    return method, text


def _as_map(value: Any) -> dict:
    """PHP sends an empty map as `[]` and a map with keys 0..n as a list: read both as dicts."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(i): item for i, item in enumerate(value)}
    return {}


def _rows(result: Any, wrapper: str | None) -> list[dict] | None:
    if wrapper:
        result = result.get(wrapper) if isinstance(result, dict) else ([] if result == [] else None)
    if isinstance(result, dict):  # a PHP array with non-sequential keys
        result = list(result.values())
    return result if isinstance(result, list) else None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _num(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _transport_reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.ReadTimeout):
        return "read timeout (outcome unknown)"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed" if not _maybe_sent(exc) else "connection dropped (outcome unknown)"
    return f"transport error ({type(exc).__name__})"


def _maybe_sent(exc: requests.RequestException) -> bool:
    """False only when the connection was never established, so the portal cannot have seen the call."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return not isinstance(reason, (NewConnectionError, ConnectTimeoutError))
