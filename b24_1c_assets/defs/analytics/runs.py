"""Run tags every launcher should set, and the redaction applied to anything ops get to read."""

from __future__ import annotations

import re
from collections.abc import Mapping

FLOW_TAG = "flow"
TRIGGER_TAG = "trigger"

# A webhook path carries the secret code (/rest/<user>/<code>/); Basic/Bearer headers carry credentials.
_WEBHOOK = re.compile(r"/rest/(\d+)/[^/\s'\"]+")
_AUTH = re.compile(r"\b(Basic|Bearer)\s+[A-Za-z0-9+/=._~-]+", re.IGNORECASE)
_CREDENTIALS_IN_URL = re.compile(r"(https?://)[^/\s:@]+:[^/\s@]+@")
_QUERY_SECRET = re.compile(r"\b(auth|access_token|password|token)=[^&\s'\"]+", re.IGNORECASE)


def run_tags(flow: str, trigger: str, **extra: str) -> dict[str, str]:
    """Tags for a run launched by a job, schedule, sensor or CLI: `flow` and `trigger` (schedule, sensor, ...)."""
    return {FLOW_TAG: flow, TRIGGER_TAG: trigger, **{k: str(v) for k, v in extra.items()}}


def trigger_of(tags: Mapping[str, str]) -> str:
    """The run's trigger: its own tag, else what Dagster's tags say launched it, else manual."""
    if tags.get(TRIGGER_TAG):
        return tags[TRIGGER_TAG]
    if tags.get("dagster/schedule_name"):
        return f"schedule:{tags['dagster/schedule_name']}"
    if tags.get("dagster/sensor_name"):
        return f"sensor:{tags['dagster/sensor_name']}"
    if tags.get("dagster/backfill"):
        return "backfill"
    return "manual"


def redact(text: str | None) -> str | None:
    """Mask webhook codes, Basic/Bearer credentials, user:password@ in URLs and token query parameters."""
    if text is None:
        return None
    text = _WEBHOOK.sub(r"/rest/\1/***", text)
    text = _AUTH.sub(lambda m: f"{m.group(1)} ***", text)
    text = _CREDENTIALS_IN_URL.sub(r"\1***@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group(1)}=***", text)
