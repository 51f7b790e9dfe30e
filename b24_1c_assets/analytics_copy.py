"""The analysts' copy of the warehouse (`data/analytics/b24_1c.duckdb`): what people and the credit gate open.

DuckDB lets one read-write process into a file, and not while any other process holds it — read-only
connections included. An analyst who keeps DBeaver, the duckdb CLI or a notebook open on the working file
(`B24_1C_DUCKDB_PATH`) would make every writer of the next run wait and fail. So nobody but the sync opens the
working file: after every successful run the sync publishes a copy of the analyst-facing schemas, written to a
temporary file beside the copy and renamed into place (`os.replace`). A connection already open keeps reading
the old copy (its file stays alive until closed); the next connection opens the new one. The copy is only ever
written as a whole new file, so read-only connections to it never block anything.

What the copy holds: the `analytics` views materialized as tables (with their comments), every table of
`client_master` and `receivables`, `sync.results`, `quality.rejects`, `ops.run_failures` (when there), and
`meta.publication` (one row: when,
by which run, rows per table).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from b24_1c_assets import warehouse
from b24_1c_assets.lib import tables

COPY_DIR = "analytics"
# schema -> tables to copy (None = every table and view of the schema)
PUBLISHED: dict[str, tuple[str, ...] | None] = {
    "analytics": None,
    "client_master": None,
    "receivables": None,
    "sync": ("results",),
    "quality": ("rejects",),
    "ops": ("run_failures",),
}


def analytics_copy_path(working: str | None = None) -> str:
    """`B24_1C_ANALYTICS_DUCKDB_PATH`, else `analytics/<name>` beside the working file
    (`data/b24_1c.duckdb` -> `data/analytics/b24_1c.duckdb`)."""
    explicit = os.environ.get("B24_1C_ANALYTICS_DUCKDB_PATH")
    if explicit:
        return explicit
    source = Path(working or warehouse.duckdb_path())
    return str(source.parent / COPY_DIR / source.name)


@dataclass
class Publication:
    path: str
    seconds: float
    tables: dict[str, int] = field(default_factory=dict)  # "schema.table" -> rows
    bytes: int = 0


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _objects(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str | None]]:
    """(schema, name, comment) of every published table or view in catalog `src`, in a stable order."""
    rows = conn.execute("""
        SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE database_name = 'src'
        UNION ALL
        SELECT schema_name, view_name, comment FROM duckdb_views() WHERE database_name = 'src' AND NOT internal
        ORDER BY 1, 2""").fetchall()
    return [(s, n, c) for s, n, c in rows if s in PUBLISHED and (PUBLISHED[s] is None or n in PUBLISHED[s])]


def publish(working: str | None = None, target: str | None = None, *, run_id: str | None = None) -> Publication:
    """Copy the analyst-facing schemas of `working` into a new file and rename it onto `target`.

    Reads `working` read-only in one transaction (one consistent state). Callers run it where no other writer
    is active (the `duckdb` pool of a run); a writer holding the file makes the attach wait like any reader.
    """
    started = time.perf_counter()
    working = working or warehouse.duckdb_path()
    target_path = Path(target or analytics_copy_path(working))
    target_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = target_path.with_name(f".{target_path.name}.{os.getpid()}.tmp")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    try:
        with warehouse.connect(str(tmp)) as conn:
            _attach_source(conn, working)
            conn.execute("BEGIN")
            for schema, name, comment in _objects(conn):
                q_schema, q_name = warehouse._ident(schema), warehouse._ident(name)
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {q_schema}")
                conn.execute(f"CREATE TABLE {q_schema}.{q_name} AS SELECT * FROM src.{q_schema}.{q_name}")
                if comment:
                    conn.execute(f"COMMENT ON TABLE {q_schema}.{q_name} IS {_literal(comment)}")
                for column, column_comment in conn.execute(
                    "SELECT column_name, comment FROM duckdb_columns() WHERE database_name = 'src' "
                    "AND schema_name = ? AND table_name = ? AND comment IS NOT NULL",
                    [schema, name],
                ).fetchall():
                    conn.execute(
                        f"COMMENT ON COLUMN {q_schema}.{q_name}.{warehouse._ident(column)} "
                        f"IS {_literal(column_comment)}"
                    )
                counts[f"{schema}.{name}"] = conn.execute(f"SELECT count(*) FROM {q_schema}.{q_name}").fetchone()[0]
            conn.execute("COMMIT")
            conn.execute("DETACH src")
            publication = tables.ANALYST_COPY_PUBLICATION
            conn.execute(f"CREATE SCHEMA {publication.schema}")
            conn.execute(
                f"CREATE TABLE {publication} (published_at TIMESTAMP, run_id VARCHAR, source VARCHAR, "
                "tables MAP(VARCHAR, BIGINT))"
            )
            conn.execute(
                f"INSERT INTO {publication} VALUES (?, ?, ?, MAP(?::VARCHAR[], ?::BIGINT[]))",
                [
                    datetime.now(UTC).replace(tzinfo=None),
                    run_id,
                    Path(working).name,
                    list(counts),
                    list(counts.values()),
                ],
            )
            conn.execute(
                f"COMMENT ON TABLE {publication} IS 'When this copy was published, by which run, "
                "from which working file (name only), and the rows of every table in it (UTC).'"
            )
            conn.execute("CHECKPOINT")
        _fsync(tmp)
        os.replace(tmp, target_path)  # atomic: a reader sees the old file or the new one, never a mix
        _fsync(target_path.parent)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return Publication(str(target_path), time.perf_counter() - started, counts, target_path.stat().st_size)


def _attach_source(conn: duckdb.DuckDBPyConnection, working: str, lock_wait_seconds: float = 120.0) -> None:
    """ATTACH the working file read-only, waiting (like `warehouse.connect`) while another process writes it."""
    deadline = time.monotonic() + lock_wait_seconds
    delay = 0.1
    while True:
        try:
            conn.execute(f"ATTACH {_literal(working)} AS src (READ_ONLY)")
            return
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
