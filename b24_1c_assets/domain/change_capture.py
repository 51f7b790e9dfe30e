"""Change capture from Bitrix24: which deals/companies changed since the last look, without I/O.

Three sources feed it. Offline events (the portal's durable queue, application mode only, read under our
`auth_connector`, so our own writes never appear there), events received from outbound webhooks (webhook mode:
they name IDs only, so the records are re-read and our own user's changes dropped) and a sweep on `DATE_MODIFY` with an
overlap window, which catches what the queue
lost. The sweep cannot see a connector, so it drops changes made by the integration's own user (the inbound
webhook's user: give the integration a technical user of its own). A sweep hit already seen with the same
`DATE_MODIFY` is not a new change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

EVENT_ENTITIES = {"ONCRMDEAL": "deal", "ONCRMCOMPANY": "company", "ONCRMREQUISITE": "requisite"}
WATCHED_EVENTS = tuple(f"{prefix}{action}" for prefix in EVENT_ENTITIES for action in ("ADD", "UPDATE"))
SWEPT = {"deal": "crm.deal.list", "company": "crm.company.list"}


@dataclass
class CaptureCursor:
    """What the sensor remembers between ticks (stored as JSON in the Dagster cursor).

    watermark: the newest DATE_MODIFY the sweep has seen (portal wire format, with offset).
    seen: "entity:ID" -> DATE_MODIFY of sweep hits inside the overlap window (so they are not re-launched).
    pending: the run launched for a batch of events: {"run_key", "process_id"}; the events are confirmed
    (`event.offline.clear`) only once that run succeeded.
    bound: offline handlers for our connector are bound (application mode).
    offline_refused: the error code the portal refused offline events with (None: not refused / not tried).
    journal_offset: byte offset in the outbound-webhook event journal up to which events are handled.
    """

    watermark: str | None = None
    seen: dict[str, str] = field(default_factory=dict)
    pending: dict | None = None
    bound: bool = False
    attempt: int = 0
    offline_refused: str | None = None
    journal_offset: int = 0

    @classmethod
    def load(cls, text: str | None) -> CaptureCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            watermark=data.get("watermark"),
            seen=dict(data.get("seen") or {}),
            pending=data.get("pending"),
            bound=bool(data.get("bound")),
            attempt=int(data.get("attempt") or 0),
            offline_refused=data.get("offline_refused"),
            journal_offset=int(data.get("journal_offset") or 0),
        )

    def dump(self) -> str:
        return json.dumps(
            {
                "watermark": self.watermark,
                "seen": self.seen,
                "pending": self.pending,
                "bound": self.bound,
                "attempt": self.attempt,
                "offline_refused": self.offline_refused,
                "journal_offset": self.journal_offset,
            },
            sort_keys=True,
        )


def parse_wire_time(value: str) -> datetime:
    """A Bitrix24 datetime (`2026-11-25T14:30:00+03:00`) as an aware datetime."""
    return datetime.fromisoformat(str(value))


def sweep_from(watermark: str, overlap: timedelta) -> str:
    """The `>=DATE_MODIFY` bound of the next sweep: watermark minus the overlap, in the watermark's offset."""
    return (parse_wire_time(watermark) - overlap).isoformat(timespec="seconds")


def changes_from_events(events: list[dict]) -> dict[str, set[int]]:
    """entity -> IDs named by offline events (`EVENT_DATA.FIELDS.ID`); unknown event names are ignored."""
    changed: dict[str, set[int]] = {}
    for event in events:
        name = str(event.get("EVENT_NAME") or "").upper()
        entity = next((e for prefix, e in EVENT_ENTITIES.items() if name.startswith(prefix)), None)
        record_id = ((event.get("EVENT_DATA") or {}).get("FIELDS") or {}).get("ID")
        if entity is None or record_id in (None, ""):
            continue
        changed.setdefault(entity, set()).add(int(record_id))
    return changed


def drop_own_changes(
    named: dict[str, set[int]], modified_by: dict[str, dict[int, str]], own_user_id: int | None
) -> tuple[dict[str, set[int]], int]:
    """(changes, how many were ours) of records named by received events, after re-reading who last modified
    each (`modified_by`: entity -> ID -> MODIFY_BY_ID). An event only names an ID (outbound webhooks carry no
    author we could trust), so the record's current MODIFY_BY_ID decides: our integration user -> our own
    write, dropped. A record the re-read did not find (deleted) or an entity we cannot re-read is kept."""
    kept: dict[str, set[int]] = {}
    own = 0
    for entity, ids in named.items():
        authors = modified_by.get(entity, {})
        for record_id in ids:
            if own_user_id is not None and authors.get(record_id) == str(own_user_id):
                own += 1
                continue
            kept.setdefault(entity, set()).add(record_id)
    return kept, own


@dataclass
class SweepOutcome:
    changed: dict[str, set[int]]
    watermark: str | None
    seen: dict[str, str]
    own: int  # hits dropped as the integration's own writes


def evaluate_sweep(
    hits: dict[str, list[dict]],
    *,
    watermark: str | None,
    seen: dict[str, str],
    overlap: timedelta,
    own_user_id: int | None,
) -> SweepOutcome:
    """New changes among sweep hits (rows with ID, DATE_MODIFY, MODIFY_BY_ID per entity).

    A hit is new unless it is the integration's own write or was already seen with the same DATE_MODIFY.
    The watermark moves to the newest DATE_MODIFY; `seen` keeps only hits inside the next overlap window.
    """
    changed: dict[str, set[int]] = {}
    own = 0
    newest = parse_wire_time(watermark) if watermark else None
    stamps: dict[str, str] = dict(seen)
    for entity, rows in hits.items():
        for row in rows:
            key, stamp = f"{entity}:{int(row['ID'])}", str(row.get("DATE_MODIFY") or "")
            if not stamp:
                continue
            moment = parse_wire_time(stamp)
            newest = moment if newest is None or moment > newest else newest
            if seen.get(key) == stamp:
                continue
            stamps[key] = stamp
            if own_user_id is not None and str(row.get("MODIFY_BY_ID") or "") == str(own_user_id):
                own += 1
                continue
            changed.setdefault(entity, set()).add(int(row["ID"]))
    new_watermark = newest.isoformat(timespec="seconds") if newest is not None else watermark
    keep_from = newest - overlap if newest is not None else None
    kept = {k: v for k, v in stamps.items() if keep_from is None or parse_wire_time(v) >= keep_from}
    return SweepOutcome(changed, new_watermark, kept, own)


def merge(*sources: dict[str, set[int]]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for source in sources:
        for entity, ids in source.items():
            out.setdefault(entity, set()).update(ids)
    return {e: ids for e, ids in out.items() if ids}
