"""Reviewers' match decisions as the review page records them: a small SQLite file beside the warehouse.

The page must never wait on the sync: DuckDB lets one process write the working file, and a run holds it for
minutes. So the page appends each decision to this store (SQLite: many processes, short write locks, WAL so
readers never block), and the next client-master run imports the rows it has not seen yet into DuckDB table
`review.client_match_decisions` (idempotent by `decision_id`), where the matcher reads them as before. The
path is `review/client_match_decisions.sqlite` beside the DuckDB file (settings `client_master.toml`,
`decisions_store`), or `B24_1C_REVIEW_DECISIONS`.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from b24_1c_assets import settings, warehouse
from b24_1c_assets.domain.matching import DECISION_COLUMNS, DECISIONS

STORE_COLUMNS = ["decision_id", *DECISION_COLUMNS]
_SCHEMA = """CREATE TABLE IF NOT EXISTS client_match_decisions (
    decision_id TEXT PRIMARY KEY, onec_ref TEXT NOT NULL, company_id INTEGER, decision TEXT NOT NULL,
    decided_by TEXT NOT NULL, decided_at TEXT NOT NULL, note TEXT)"""


def store_path(database_path: str | None = None, relative: str | None = None) -> Path:
    """Where the store lives: B24_1C_REVIEW_DECISIONS, else `relative` (default: client_master.toml
    `decisions_store`, so the page and the sync agree) to the DuckDB file's folder."""
    explicit = os.environ.get("B24_1C_REVIEW_DECISIONS")
    if explicit:
        return Path(explicit)
    relative = relative or settings.client_master().decisions_store
    return Path(database_path or warehouse.duckdb_path()).parent / relative


class DecisionStore:
    """Append-only decisions; a connection per call (the page serves requests from a thread pool)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_SCHEMA)
        return conn

    def record(
        self,
        onec_ref: str,
        company_id: int | None,
        decision: str,
        decided_by: str,
        note: str | None = None,
        decided_at: datetime | None = None,
    ) -> dict:
        """Append one decision; ValueError naming the field when it is not one a run could apply."""
        ref = (onec_ref or "").strip().lower()
        who = (decided_by or "").strip()
        if not ref:
            raise ValueError("onec_ref is required")
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
        if company_id is None and decision != "create":
            raise ValueError(f"company_id is required to {decision} a pair")
        if not who:
            raise ValueError("decided_by (the reviewer's name) is required")
        row = {
            "decision_id": str(uuid.uuid4()),
            "onec_ref": ref,
            "company_id": None if company_id is None else int(company_id),
            "decision": decision,
            "decided_by": who[:200],
            "decided_at": (decided_at or datetime.now(UTC)).isoformat(timespec="milliseconds"),
            "note": (note or "").strip()[:2000] or None,
        }
        with self._connect() as conn:
            conn.execute(
                f"INSERT INTO client_match_decisions ({', '.join(STORE_COLUMNS)}) VALUES "
                f"({', '.join('?' for _ in STORE_COLUMNS)})",
                [row[c] for c in STORE_COLUMNS],
            )
        return row

    def rows(self) -> pd.DataFrame:
        """Every decision recorded (`STORE_COLUMNS`), oldest first."""
        if not self.path.exists():
            return pd.DataFrame(columns=STORE_COLUMNS)
        with self._connect() as conn:
            found = conn.execute(
                f"SELECT {', '.join(STORE_COLUMNS)} FROM client_match_decisions ORDER BY rowid"
            ).fetchall()  # insertion order
        frame = pd.DataFrame(found, columns=STORE_COLUMNS)
        frame["company_id"] = frame["company_id"].astype("Int64")
        return frame


def import_into_warehouse(conn, store: DecisionStore) -> int:
    """Copy the store's decisions not yet in `review.client_match_decisions` into it; returns how many."""
    rows = store.rows()
    if rows.empty:
        return 0
    conn.execute("CREATE SCHEMA IF NOT EXISTS review")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS review.client_match_decisions (onec_ref VARCHAR, company_id BIGINT, "
        "decision VARCHAR, decided_by VARCHAR, decided_at VARCHAR, note VARCHAR, decision_id VARCHAR)"
    )
    columns = {
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'review' "
            "AND table_name = 'client_match_decisions'"
        ).fetchall()
    }
    if "decision_id" not in columns:  # a table reviewers made by hand before the page existed
        conn.execute("ALTER TABLE review.client_match_decisions ADD COLUMN decision_id VARCHAR")
    seen = {
        r[0]
        for r in conn.execute(
            "SELECT decision_id FROM review.client_match_decisions WHERE decision_id IS NOT NULL"
        ).fetchall()
    }
    new = rows[~rows["decision_id"].isin(seen)]
    if new.empty:
        return 0
    conn.register("new_decisions", new.astype(object).where(new.notna(), None))
    try:
        conn.execute(
            "INSERT INTO review.client_match_decisions (onec_ref, company_id, decision, decided_by, "
            "decided_at, note, decision_id) SELECT onec_ref, CAST(company_id AS BIGINT), decision, "
            "decided_by, decided_at, note, decision_id FROM new_decisions"
        )
    finally:
        conn.unregister("new_decisions")
    return len(new)
