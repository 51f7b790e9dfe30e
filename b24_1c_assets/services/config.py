"""The HTTP service's settings, all from the environment (see README's configuration table)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from b24_1c_assets import warehouse
from b24_1c_assets.analytics_copy import analytics_copy_path
from b24_1c_assets.sync.event_journal import journal_path
from b24_1c_assets.sync.review_decisions import store_path as review_store_path

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Request body caps (bytes) and time limits (seconds)."""

    export_bytes: int = 64 * MB  # a whole 1C export, after gunzip too (a CommerceML import.xml of ~100k items)
    event_bytes: int = 64 * 1024  # one Bitrix24 event is well under 2 KiB
    other_bytes: int = 16 * 1024  # GET routes and the review page's forms
    body_seconds: float = 120.0  # the whole body must arrive within this (a stalled sender is cut off: 408)
    handler_seconds: float = 120.0  # a handler taking longer answers 503 (parsing a big export is the slow one)


@dataclass(frozen=True)
class ServiceConfig:
    gate_token: str = ""
    onec_export_token: str = ""
    b24_event_token: str = ""
    review_token: str = ""
    analytics_db: str = ""  # the analysts' copy the credit gate reads
    exchange_dir: str = ""
    events_journal: str = ""
    review_decisions: str = ""  # the review page's decision store (sync/review_decisions.py)
    timezone: str = "Europe/Moscow"  # 1C's infobase time zone, as OneCResource (validation only)
    allow_unknown: bool = True  # the credit gate lets a company with no receivables through
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_env(cls, **overrides) -> ServiceConfig:
        env = os.environ
        limits = Limits(export_bytes=int(float(env.get("B24_1C_SERVICE_MAX_EXPORT_MB", "64")) * MB))
        values = dict(
            gate_token=env.get("B24_1C_GATE_TOKEN", ""),
            onec_export_token=env.get("B24_1C_ONEC_EXPORT_TOKEN", ""),
            b24_event_token=env.get("B24_1C_B24_EVENT_TOKEN", ""),
            review_token=env.get("B24_1C_REVIEW_TOKEN", ""),
            analytics_db=analytics_copy_path(),
            exchange_dir=env.get("ONEC_EXCHANGE_DIR") or str(warehouse.PROJECT_ROOT / "data" / "exchange"),
            events_journal=str(journal_path()),
            review_decisions=str(review_store_path()),
            limits=limits,
        )
        values.update(overrides)
        return cls(**values)

    def configured_routes(self) -> list[str]:
        return [
            name
            for name, token in (
                ("credit gate", self.gate_token),
                ("1C exports", self.onec_export_token),
                ("Bitrix24 events", self.b24_event_token),
                ("review", self.review_token),
            )
            if token
        ]

    def __repr__(self) -> str:  # never print a token
        return (
            f"ServiceConfig(routes={self.configured_routes()}, analytics_db={Path(self.analytics_db).name!r}, "
            f"exchange_dir={Path(self.exchange_dir).name!r})"
        )
