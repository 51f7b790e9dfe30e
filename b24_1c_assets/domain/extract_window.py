"""Which part of 1C's history an extract re-reads: everything, or a window since the last success.

1C answers OData at a few thousand rows per second, so re-reading every document and every settlement
movement each night costs hours on a customer's server. Documents and register movements are read by
`Date`/`Period` since the last successful extract minus an overlap: accountants backdate documents and
repost old ones, and a change dated inside the overlap is caught by the next run. What the overlap cannot
catch (a document backdated further, an old one unposted) is caught by the periodic full re-read, and
for one client at once by the re-read a failed balance check asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class ExtractPolicy:
    """How far back an incremental extract re-reads and how often a full one runs (settings: extracts.toml)."""

    overlap_days: int = 45
    # Bitrix24 stamps DATE_MODIFY itself (nothing is backdated): the overlap only covers clock skew and
    # writes committed while the last extract ran
    crm_overlap_minutes: int = 60
    full_every_days: int = 7
    # clients whose balance disagrees with 1C's re-read one by one; more than this asks for a full extract
    max_balance_rereads: int = 200

    def __post_init__(self):
        if self.overlap_days < 1:
            raise ValueError(f"overlap_days must be at least 1 (got {self.overlap_days})")
        if self.crm_overlap_minutes < 1:
            raise ValueError(f"crm_overlap_minutes must be at least 1 (got {self.crm_overlap_minutes})")
        if self.full_every_days < 1:
            raise ValueError(f"full_every_days must be at least 1 (got {self.full_every_days})")


@dataclass(frozen=True)
class ExtractWindow:
    """`since` None: read everything (and replace the table); else read `date >= since` and merge."""

    since: datetime | None
    reason: str

    @property
    def full(self) -> bool:
        return self.since is None


def extract_window(
    now: datetime,
    last_success: datetime | None,
    last_full: datetime | None,
    policy: ExtractPolicy,
    *,
    force_full: bool = False,
    source: str = "onec",
) -> ExtractWindow:
    """The window of the next extract of one table of `source` ("onec": accounting dates, overlap in days from
    midnight; "bitrix24": modification stamps, overlap in minutes).

    last_success: when the last extract of the table (full or incremental) started; last_full: when the
    last full one did. A table never read, or last read fully `full_every_days` ago or more, is read in full.
    """
    if force_full:
        return ExtractWindow(None, "full re-read asked for")
    if last_success is None or last_full is None:
        return ExtractWindow(None, "first extract")
    if now - last_full >= timedelta(days=policy.full_every_days):
        return ExtractWindow(
            None, f"full re-read: the last one was {(now - last_full).days} days ago (every {policy.full_every_days})"
        )
    if source == "bitrix24":
        since = last_success - timedelta(minutes=policy.crm_overlap_minutes)
        return ExtractWindow(
            since,
            f"modified since the last extract ({last_success:%Y-%m-%d %H:%M}) minus "
            f"{policy.crm_overlap_minutes} minutes",
        )
    since = last_success - timedelta(days=policy.overlap_days)
    # midnight: a window that starts at a day boundary reads whole days, as accountants date documents
    since = since.replace(hour=0, minute=0, second=0, microsecond=0)
    return ExtractWindow(
        since, f"since the last extract ({last_success:%Y-%m-%d %H:%M}) minus {policy.overlap_days} days of overlap"
    )
