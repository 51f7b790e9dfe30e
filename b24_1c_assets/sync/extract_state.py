"""What each incremental extract read, in DuckDB: `sync.extract_state`, one row per extract of a table.

The next extract's window starts from the last success (`domain/extract_window.py`); ops read here when a
table was last read in full, what window each run read and how many rows and requests it cost.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pandas as pd

from b24_1c_assets.domain.extract_window import ExtractWindow
from b24_1c_assets.lib.tables import SYNC_EXTRACT_STATE


def last_extracts(conn: duckdb.DuckDBPyConnection, source: str, table: str) -> tuple[datetime | None, datetime | None]:
    """(start of the last successful extract, start of the last full one) of `source.table`; None when never."""
    if not SYNC_EXTRACT_STATE.exists(conn):
        return None, None
    row = conn.execute(
        f"SELECT max(started_at), max(started_at) FILTER (WHERE full_read) FROM {SYNC_EXTRACT_STATE} "
        "WHERE source = ? AND table_name = ?",
        [source, table],
    ).fetchall()[0]
    return row[0], row[1]


def record_extract(
    conn: duckdb.DuckDBPyConnection,
    *,
    source: str,
    table: str,
    started_at: datetime,
    window: ExtractWindow,
    rows_read: int,
    requests: int,
    inserted: int,
    updated: int,
    deleted: int,
    run_id: str,
) -> None:
    """Append one finished extract. `started_at` (1C's local time) is the next window's reference: a change
    made while this extract ran is re-read next time."""
    SYNC_EXTRACT_STATE.append(
        conn,
        pd.DataFrame(
            [
                {
                    "source": source,
                    "table_name": table,
                    "started_at": started_at,
                    "full_read": window.full,
                    "since": window.since,
                    "reason": window.reason,
                    "rows_read": rows_read,
                    "requests": requests,
                    "inserted": inserted,
                    "updated": updated,
                    "deleted": deleted,
                    "run_id": run_id,
                    "recorded_at": datetime.now(UTC).replace(tzinfo=None),
                }
            ]
        ),
        column_types={"since": "TIMESTAMP", "started_at": "TIMESTAMP"},
    )
