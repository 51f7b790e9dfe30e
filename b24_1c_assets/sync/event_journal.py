"""The durable queue of Bitrix24 events received by outbound webhook (`POST /v1/bitrix24/events`).

With an inbound webhook the portal refuses `event.bind` / `event.offline.*` (they need an application's OAuth
context), so events reach us only as HTTP POSTs from the portal's outbound webhooks. The HTTP service is the
only writer: it appends one JSON line per event and fsyncs before answering, so an acknowledged event survives
a crash. Readers (the change-capture sensor) keep a byte offset and read what came after it; a partly written
last line (a crash mid-append) is left for the next read, never parsed half.

One record: {"seq": n, "received_at": ISO UTC, "EVENT_NAME": "ONCRMDEALUPDATE",
"EVENT_DATA": {"FIELDS": {"ID": 17}}, "ts": portal timestamp, "member_id", "domain"} — the same
`EVENT_NAME` / `EVENT_DATA` shape as an offline event, so `domain.change_capture.changes_from_events` reads
both. The application token is verified by the service and never stored.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

JOURNAL_FILE = "bitrix24-events.jsonl"
DEFAULT_DIR = "data/events"


def journal_path(directory: str | os.PathLike | None = None) -> Path:
    """Where the journal lives: `directory`, else `B24_1C_EVENTS_DIR`, else `data/events`."""
    return Path(directory or os.environ.get("B24_1C_EVENTS_DIR") or DEFAULT_DIR) / JOURNAL_FILE


@dataclass(frozen=True)
class JournalRead:
    events: list[dict]
    offset: int  # where the next read starts


class EventJournal:
    """Append-only JSON-lines file; safe for threads of one process and for several processes (flock)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, events: list[dict]) -> int:
        """Append events durably (written and fsynced before return); returns the last sequence number."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                seq = self._last_seq(fh)
                now = datetime.now(UTC).isoformat(timespec="milliseconds")
                lines = []
                for event in events:
                    seq += 1
                    lines.append(json.dumps({"seq": seq, "received_at": now, **event}, ensure_ascii=False))
                fh.seek(0, os.SEEK_END)
                fh.write(("\n".join(lines) + "\n").encode("utf-8") if lines else b"")
                fh.flush()
                os.fsync(fh.fileno())
                return seq
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @staticmethod
    def _last_seq(fh) -> int:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        if size == 0:
            return 0
        back = min(size, 64 * 1024)
        fh.seek(size - back)
        tail = fh.read(back).rstrip(b"\n").rsplit(b"\n", 1)[-1]
        try:
            return int(json.loads(tail)["seq"])
        except (ValueError, KeyError):  # a torn last line: count whole lines instead
            fh.seek(0)
            return sum(1 for line in fh if line.endswith(b"\n"))

    def read_from(self, offset: int = 0, limit: int = 1000) -> JournalRead:
        """Up to `limit` whole events after byte `offset`, and the offset after the last one returned."""
        if not self.path.exists():
            return JournalRead([], offset)
        events: list[dict] = []
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            while len(events) < limit:
                line = fh.readline()
                if not line.endswith(b"\n"):  # end of file, or a line still being written
                    break
                offset += len(line)
                if line.strip():
                    events.append(json.loads(line))
        return JournalRead(events, offset)

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0
