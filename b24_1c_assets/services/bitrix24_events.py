"""`POST /v1/bitrix24/events`: the receiver of Bitrix24 outbound webhooks (event handlers).

With an inbound webhook the portal refuses `event.bind` and `event.offline.*` (they need an application's
OAuth context), so change capture learns of CRM changes from an outbound webhook set up in the portal's UI
(Developer resources → Other → Outbound webhook) pointing here. The portal's queue server POSTs
`application/x-www-form-urlencoded` in PHP bracket form:

    event=ONCRMDEALUPDATE&event_handler_id=17&data[FIELDS][ID]=123&ts=1732400000
    &auth[domain]=acme.bitrix24.ru&auth[member_id]=a223c6...&auth[application_token]=51856f...

`auth[application_token]` is compared in constant time with B24_1C_B24_EVENT_TOKEN (the webhook form's
"Application token"); a mismatch answers 403 and nothing is kept (bitrix24/b24restdocs
api-reference/events/safe-event-handlers.md). An accepted event is appended to the durable journal
(`sync/event_journal.py`: {EVENT_NAME, EVENT_DATA: {FIELDS: {ID}}, ts, member_id, domain}; the token and any
OAuth token are never stored) and fsynced before the 200 — the portal does not redeliver, so an acknowledged
event must survive a crash. Appends of concurrent requests are committed together (one write and one fsync
per group), which keeps the answer fast under a burst; the queue server lowers the priority of slow handlers.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import re
import threading
from concurrent.futures import Future
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from b24_1c_assets.services.http import JSON, error, token_matches
from b24_1c_assets.sync.event_journal import EventJournal

PATH = "/v1/bitrix24/events"
MAX_FIELDS = 200
_EVENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
log = logging.getLogger(__name__)


class BadEvent(ValueError):
    pass


def php_form(body: bytes) -> dict[str, Any]:
    """A PHP-bracket form body as nested dicts: `data[FIELDS][ID]=5` -> {"data": {"FIELDS": {"ID": "5"}}};
    `a[]=1&a[]=2` -> {"a": ["1", "2"]}."""
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise BadEvent("body is not URL-encoded text (raw non-ASCII bytes, or not UTF-8 once decoded)") from None
    except ValueError as exc:  # too many fields
        raise BadEvent(str(exc)) from None
    form: dict[str, Any] = {}
    for key, value in pairs:
        base, _, rest = key.partition("[")
        path = [base] + (_BRACKETS.findall("[" + rest) if rest else [])
        node: Any = form
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if isinstance(node, list):  # a[] = list append
                if last:
                    node.append(value)
                    break
                node.append({})
                node = node[-1]
                continue
            if last:
                node[part] = value
            else:
                nxt = path[i + 1]
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = [] if nxt == "" else {}
                node = node[part]
    return form


def journal_record(form: dict[str, Any]) -> dict[str, Any]:
    """The journal's shape of one verified event, or BadEvent naming what is missing or wrong."""
    name = form.get("event")
    if not isinstance(name, str) or not _EVENT_NAME.match(name):
        raise BadEvent(f"event: missing or not an event name ({str(name)[:40]!r})")
    data = form.get("data")
    fields = data.get("FIELDS") if isinstance(data, dict) else None
    record_id = fields.get("ID") if isinstance(fields, dict) else None
    if not isinstance(record_id, str) or not record_id.isdigit():
        raise BadEvent(f"data[FIELDS][ID]: missing or not a number ({str(record_id)[:40]!r}) in {name}")
    auth = form.get("auth") if isinstance(form.get("auth"), dict) else {}
    ts = form.get("ts")
    event_data = {**data, "FIELDS": {**fields, "ID": int(record_id)}}  # data never carries credentials
    return {
        "EVENT_NAME": name.upper(),
        "EVENT_DATA": event_data,
        "ts": int(ts) if isinstance(ts, str) and ts.isdigit() else None,
        "member_id": auth.get("member_id") if isinstance(auth.get("member_id"), str) else None,
        "domain": auth.get("domain") if isinstance(auth.get("domain"), str) else None,
    }


class JournalWriter:
    """One thread appending to the journal; requests arriving together share one write and one fsync."""

    def __init__(self, journal: EventJournal, max_batch: int = 1000):
        self.journal, self.max_batch = journal, max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="event-journal", daemon=True)
        self._thread.start()

    def submit(self, event: dict) -> Future:
        future: Future = Future()
        self._queue.put((event, future))
        return future

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(None)  # after everything already queued
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            try:
                last = self.journal.append([event for event, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every waiting request must hear of it
                log.error("event journal append failed: %s: %s", type(exc).__name__, exc)
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for offset, (_, future) in enumerate(batch):
                future.set_result(last - len(batch) + 1 + offset)


async def receive_event(request: Request) -> JSON:
    config = request.app.state.config
    if not config.b24_event_token:
        return error(503, "the Bitrix24 event receiver is not configured (B24_1C_B24_EVENT_TOKEN)")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return error(415, "expected application/x-www-form-urlencoded (a Bitrix24 event handler POST)")
    try:
        form = php_form(await request.body())
    except BadEvent as exc:
        return error(400, str(exc))
    auth = form.get("auth") if isinstance(form.get("auth"), dict) else {}
    given = auth.get("application_token") if isinstance(auth.get("application_token"), str) else ""
    if not token_matches(given, config.b24_event_token):
        return error(403, "auth[application_token] does not match")
    try:
        record = journal_record(form)
    except BadEvent as exc:
        return error(400, str(exc))
    try:
        seq = await asyncio.wrap_future(request.app.state.journal_writer.submit(record))
    except OSError as exc:
        return error(
            503, f"event not stored ({type(exc).__name__}); the journal cannot be written", headers={"Retry-After": "5"}
        )
    return JSON({"result": "accepted", "seq": seq})
