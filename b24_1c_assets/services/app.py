"""The product's one HTTP service: everything that calls us, on Starlette (run by uvicorn).

| route | caller | token |
|---|---|---|
| `GET /healthz` | monitoring | none |
| `GET /v1/may-create-deal` | CRM forms and business processes (credit gate) | B24_1C_GATE_TOKEN, Bearer or `token=` |
| `POST /v1/onec/exports`, `GET /v1/onec/exports/{id}` | 1C's scheduled export job | \
B24_1C_ONEC_EXPORT_TOKEN, Basic or Bearer |
| `POST /v1/bitrix24/events` | Bitrix24 outbound webhook | B24_1C_B24_EVENT_TOKEN as `auth[application_token]` |
| `GET /review`, `POST /review/decisions` | people settling client matches (`services/review.py`) | \
B24_1C_REVIEW_TOKEN, Bearer or `token=` (form field on POST) |

A route whose token is not set answers 503 naming the variable. Every request passes the guard
(`services/http.py`): body caps per route, time limits, a JSON access log without secrets.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from b24_1c_assets.services import bitrix24_events, credit_gate, onec_exports, review
from b24_1c_assets.services.config import ServiceConfig
from b24_1c_assets.services.http import JSON, Guard
from b24_1c_assets.sync.event_journal import EventJournal


def healthz(request: Request) -> JSON:
    """Alive, and whether each part can work: its token set, its folder or file in place."""
    config: ServiceConfig = request.app.state.config
    copy = Path(config.analytics_db)
    journal_dir = Path(config.events_journal).parent
    return JSON(
        {
            "status": "ok",
            "routes": config.configured_routes(),
            "analyst_copy": "present" if copy.exists() else "not published yet",
            "exchange_folder_writable": os.access(config.exchange_dir, os.W_OK),
            "event_journal_writable": os.access(journal_dir, os.W_OK),
        }
    )


def body_cap(config: ServiceConfig):
    limits = config.limits

    def cap(path: str) -> int:
        if path == onec_exports.PATH:
            return limits.export_bytes
        if path == bitrix24_events.PATH:
            return limits.event_bytes
        return limits.other_bytes

    return cap


def build_app(config: ServiceConfig | None = None) -> Guard:
    """The service as an ASGI app (the guard around Starlette)."""
    config = config or ServiceConfig.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        writer = bitrix24_events.JournalWriter(EventJournal(config.events_journal))
        app.state.journal_writer = writer
        try:
            yield
        finally:
            writer.close()  # what was accepted is written before the process ends
            app.state.copy_reader.close()

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route(credit_gate.PATH, credit_gate.may_create_deal, methods=["GET"]),
            Route(onec_exports.PATH, onec_exports.receive_export, methods=["POST"]),
            Route(onec_exports.PATH + "/{export_id}", onec_exports.export_status, methods=["GET"]),
            Route(bitrix24_events.PATH, bitrix24_events.receive_event, methods=["POST"]),
            *review.routes(),
        ],
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.copy_reader = credit_gate.CopyReader(config.analytics_db)
    app.state.inbox = onec_exports.Inbox(config.exchange_dir, config.timezone, config.limits.export_bytes)
    guarded = Guard(app, config.limits, body_cap(config))
    guarded.state = app.state  # type: ignore[attr-defined]  # tests and benches reach the app's state here
    return guarded
