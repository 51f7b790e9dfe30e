"""DuckDB storage: how tables are written and read, whatever the asset.

DuckDB allows one writer process per file, so every writer keeps its connection short: fetch over HTTP
first, then open, write in one transaction, close (never hold a connection across network calls). The
Dagster layer adds a `duckdb` pool of 1 on top so concurrent runs queue instead of failing on the lock.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DUCKDB_PATH = PROJECT_ROOT / "data" / "b24_1c.duckdb"

_IDENT = re.compile(r"^[^\W\d]\w*$")  # letters (1C names are Cyrillic), digits, underscore


def duckdb_path() -> str:
    """The DuckDB file named by B24_1C_DUCKDB_PATH, else data/b24_1c.duckdb."""
    return os.environ.get("B24_1C_DUCKDB_PATH") or str(DEFAULT_DUCKDB_PATH)


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return f'"{name}"'


def quiet(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """No progress bar: DuckDB draws one for a statement over 2 s, into the step's log."""
    conn.execute("SET enable_progress_bar = false")
    return conn


@contextmanager
def connect(
    path: str | None = None, *, read_only: bool = False, lock_wait_seconds: float = 120.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection. Waits for another process's write lock instead of failing at once."""
    path = path or duckdb_path()
    if not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_wait_seconds
    delay = 0.1
    while True:
        try:
            conn = quiet(duckdb.connect(path, read_only=read_only))
            break
        except duckdb.IOException as exc:  # "Could not set lock on file": another writer holds it
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def _transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All of the block's statements or none of them."""
    conn.execute("BEGIN")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def to_cell(value: Any) -> Any:
    """A raw API value as one DuckDB cell: nested lists/dicts as JSON text, Decimal kept exact."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return value


def records_frame(records: Iterable[dict], columns: list[str] | None = None) -> pd.DataFrame:
    """Raw records (dicts from an API) as a DataFrame of cells, columns in a stable order."""
    rows = [{k: to_cell(v) for k, v in record.items()} for record in records]
    frame = pd.DataFrame.from_records(rows)
    if columns is not None:
        for col in columns:
            if col not in frame.columns:
                frame[col] = None
        frame = frame[columns + [c for c in frame.columns if c not in columns]]
    return frame


class StagedRows:
    """A large read staged chunk by chunk in Parquet parts under a temporary folder, so the rows never sit in
    memory whole; `replace_table` and `merge_table` take it in place of a frame.

    Each chunk's columns get their types from its own values (`_stage`), so they can differ between chunks
    (a Decimal with more places, a column every row of one chunk left empty): the parts are read back as one
    relation with each column cast to the widest of its types.
    """

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="b24_1c_staged_")
        self._conn = quiet(duckdb.connect())  # in memory: staging never takes the warehouse file's lock
        self._parts: list[tuple[str, dict[str, str]]] = []  # (file, {column: SQL type})
        self._excluded: dict[str, set[str]] = {}  # column: values whose rows are left out when read back
        self.rows = 0

    def __enter__(self) -> StagedRows:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()
        self._folder.cleanup()

    def add(self, frame: pd.DataFrame, *, column_types: dict[str, str] | None = None) -> None:
        """Stage one chunk (cast as `replace_table` would cast it)."""
        if frame.empty:
            return
        staged, types = _stage(frame, column_types)
        path = str(Path(self._folder.name) / f"part-{len(self._parts):05d}.parquet")
        self._conn.register("_frame", staged)
        try:
            relation = self._conn.sql(f"SELECT {_select_list(staged, types)} FROM _frame")
            kinds = {c: str(t) for c, t in zip(relation.columns, relation.types)}
            relation.write_parquet(path)
        finally:
            self._conn.unregister("_frame")
        self._parts.append((path, kinds))
        self.rows += len(frame)

    @property
    def empty(self) -> bool:
        return self.rows == 0

    def exclude(self, column: str, values: Iterable[Any]) -> None:
        """Leave the rows whose `column` (as text) is one of `values` out of what is read back."""
        self._excluded.setdefault(column, set()).update(str(v) for v in values)

    def duplicated(self, column: str) -> list[str]:
        """Values of `column` that more than one staged row carries (as text)."""
        if column not in self.columns:
            return []
        rows = self._conn.execute(
            f"SELECT CAST({_ident(column)} AS VARCHAR) FROM ({self.select_sql()}) "
            f"WHERE {_ident(column)} IS NOT NULL GROUP BY 1 HAVING count(*) > 1"
        ).fetchall()
        return [r[0] for r in rows]

    def __len__(self) -> int:
        return self.rows

    @property
    def columns(self) -> list[str]:
        seen: dict[str, None] = {}
        for _, kinds in self._parts:
            seen.update(dict.fromkeys(kinds))
        return list(seen)

    def column_types(self) -> dict[str, str]:
        """{column: the type every part can be cast to}: the most places of a DECIMAL, `"NULL"` for a column no
        chunk filled, else the first part's type."""
        final: dict[str, str] = {}
        for column in self.columns:
            kinds = [k[column] for _, k in self._parts if column in k and k[column].strip('"') != "NULL"]
            if not kinds:
                final[column] = "NULL"
            elif all(k.startswith("DECIMAL") for k in kinds):
                places = max(int(re.findall(r"\d+", k)[1]) for k in kinds)
                final[column] = f"DECIMAL(38,{places})"
            else:
                final[column] = kinds[0]
        return final

    def select_sql(self) -> str:
        """One SELECT over every part, columns in one order and type, excluded rows left out."""
        final = self.column_types()
        where = " AND ".join(
            f"CAST({_ident(c)} AS VARCHAR) NOT IN ({', '.join(_literal(v) for v in sorted(values))})"
            for c, values in self._excluded.items()
            if values and c in final
        )
        where = f"WHERE {where}" if where else ""
        selects = []
        for path, kinds in self._parts:
            cells = []
            for column, kind in final.items():
                name = _ident(column)
                if kind == "NULL":
                    cells.append(f"NULL AS {name}")
                elif column not in kinds or kinds[column].strip('"') == "NULL":
                    cells.append(f"CAST(NULL AS {kind}) AS {name}")
                else:
                    cells.append(f"CAST({name} AS {kind}) AS {name}")
            selects.append(f"SELECT {', '.join(cells)} FROM read_parquet({_literal(path)}) {where}")
        return "\nUNION ALL\n".join(selects)


def replace_table(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    frame: pd.DataFrame | StagedRows,
    *,
    column_types: dict[str, str] | None = None,
) -> int:
    """Replace `schema.table` with `frame` in one transaction; returns the row count.

    `column_types` casts named columns (e.g. {"amount": "DECIMAL(18,2)"}); Decimal objects are cast from
    their text so no kopeck is lost through float. Staged rows were cast when staged.
    """
    target = f"{_ident(schema)}.{_ident(table)}"
    if isinstance(frame, StagedRows):
        if not frame.empty:
            return _replace_from_staged(conn, schema, target, frame)
        frame = pd.DataFrame()
    if frame.empty and (table_exists(conn, schema, table) or len(frame.columns) == 0):
        # An empty extract has no reliable shape of its own: keep the table's columns, drop its rows.
        if table_exists(conn, schema, table):
            conn.execute(f"DELETE FROM {target}")
        return 0
    staged, types = _stage(frame, column_types)
    with _transaction(conn):
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
        conn.register("_frame", staged)
        conn.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT {_select_list(staged, types)} FROM _frame")
        conn.unregister("_frame")
    return len(frame)


def _replace_from_staged(conn: duckdb.DuckDBPyConnection, schema: str, target: str, staged: StagedRows) -> int:
    with _transaction(conn):
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
        conn.execute(f"CREATE OR REPLACE TABLE {target} AS {staged.select_sql()}")
        rows = conn.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
    return rows


def append_table(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    frame: pd.DataFrame,
    *,
    column_types: dict[str, str] | None = None,
) -> int:
    """Append `frame` to `schema.table`, creating it from the frame's shape when missing."""
    if frame.empty:
        return 0
    target = f"{_ident(schema)}.{_ident(table)}"
    staged, types = _stage(frame, column_types)
    with _transaction(conn):
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
        conn.register("_frame", staged)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {target} AS SELECT {_select_list(staged, types)} FROM _frame LIMIT 0")
        cols = ", ".join(_ident(c) for c in staged.columns)
        conn.execute(f"INSERT INTO {target} ({cols}) SELECT {_select_list(staged, types)} FROM _frame")
        conn.unregister("_frame")
    return len(frame)


def stored_columns(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict[str, str]:
    """{column: SQL type} of a stored table, in order; empty when it does not exist."""
    return dict(
        conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position",
            [schema, table],
        ).fetchall()
    )


def table_exists(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    rows = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, table]
    ).fetchall()  # fetch all: DuckDB 2 refuses new work on a half-read result
    return bool(rows and rows[0][0])


def read_table(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> pd.DataFrame:
    """The whole table (DECIMAL columns as exact Decimal), or an empty frame when it does not exist yet."""
    if not table_exists(conn, schema, table):
        return pd.DataFrame()
    return query(conn, f"SELECT * FROM {_ident(schema)}.{_ident(table)}")


def query(conn: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    """A query's rows as a DataFrame with DECIMAL columns as exact `Decimal` objects.

    DuckDB's own `.df()` turns DECIMAL into float64, which loses kopecks on large sums: money columns
    travel as text and are parsed here instead.
    """
    relation = conn.sql(sql, params=params) if params else conn.sql(sql)
    decimals = [c for c, t in zip(relation.columns, relation.types) if str(t).startswith("DECIMAL")]
    if not decimals:
        return relation.df()
    projection = ", ".join(
        f"CAST({_ident(c)} AS VARCHAR) AS {_ident(c)}" if c in decimals else _ident(c) for c in relation.columns
    )
    frame = relation.project(projection).df()
    for col in decimals:
        frame[col] = [None if v is None else Decimal(v) for v in frame[col]]
    return frame


def _stage(frame: pd.DataFrame, column_types: dict[str, str] | None) -> tuple[pd.DataFrame, dict[str, str]]:
    """The frame as DuckDB should scan it, and the SQL type of each column that needs a cast.

    Decimal columns travel as text and are cast to DECIMAL with enough places (money never passes
    through float); explicit `column_types` win.
    """
    staged = frame.copy()
    types: dict[str, str] = {}
    for col in staged.columns:
        if staged[col].dtype != object:
            continue
        sample = staged[col].dropna()
        if sample.empty:
            continue
        if all(isinstance(v, Decimal) for v in sample):
            places = max([2] + [-v.as_tuple().exponent for v in sample if v.is_finite()])
            types[col] = f"DECIMAL(38,{min(places, 10)})"
            staged[col] = staged[col].map(lambda v: None if v is None or v != v else str(v))
        elif isinstance(sample.iloc[0], (datetime, date)):
            staged[col] = pd.to_datetime(staged[col], utc=any(getattr(v, "tzinfo", None) for v in sample))
        elif any(isinstance(v, Decimal) for v in sample):
            staged[col] = staged[col].map(lambda v: None if v is None or v != v else str(v))
    for col, sql_type in (column_types or {}).items():
        if col in staged.columns:
            types[col] = sql_type
            if staged[col].dtype == object:
                staged[col] = staged[col].map(lambda v: None if v is None or v != v else str(v))
    return staged, types


def _select_list(frame: pd.DataFrame, column_types: dict[str, str] | None) -> str:
    parts = []
    for col in frame.columns:
        sql_type = (column_types or {}).get(col)
        parts.append(f"CAST({_ident(col)} AS {sql_type}) AS {_ident(col)}" if sql_type else _ident(col))
    return ", ".join(parts) if parts else "*"


def replace_partition(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    frame: pd.DataFrame,
    *,
    column: str,
    value: Any,
    column_types: dict[str, str] | None = None,
) -> int:
    """Replace the rows of one partition (`column = value`) with `frame`, in one transaction.

    Rerunning a day replaces that day and nothing else; an empty frame leaves the day empty.
    """
    return _replace_where(conn, schema, table, frame, f"{_ident(column)} = ?", [value], column_types)


def replace_rows(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    frame: pd.DataFrame,
    *,
    column: str,
    values: Iterable[Any],
    column_types: dict[str, str] | None = None,
) -> int:
    """Replace every row whose `column` is one of `values` with `frame`, in one transaction (e.g. some clients'
    whole history re-read)."""
    return _replace_where(
        conn,
        schema,
        table,
        frame,
        f"CAST({_ident(column)} AS VARCHAR) IN (SELECT unnest(?::VARCHAR[]))",
        [[str(v) for v in values]],
        column_types,
    )


def _replace_where(
    conn, schema: str, table: str, frame: pd.DataFrame, where: str, params: list, column_types: dict[str, str] | None
) -> int:
    """Delete the rows `where` says, insert `frame` (creating the table from its shape when missing)."""
    target = f"{_ident(schema)}.{_ident(table)}"
    staged, types = _stage(frame, column_types)
    with _transaction(conn):
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
        if table_exists(conn, schema, table):
            conn.execute(f"DELETE FROM {target} WHERE {where}", params)
        if not staged.empty:
            conn.register("_frame", staged)
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {target} AS SELECT {_select_list(staged, types)} FROM _frame LIMIT 0"
            )
            cols = ", ".join(_ident(c) for c in staged.columns)
            conn.execute(f"INSERT INTO {target} ({cols}) SELECT {_select_list(staged, types)} FROM _frame")
            conn.unregister("_frame")
    return len(frame)


@dataclass(frozen=True)
class MergeCounts:
    """What a merge did to a table: rows added, replaced (same key, re-read) and removed."""

    inserted: int
    updated: int
    deleted: int
    rows: int  # in the table afterwards


def merge_table(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    frame: pd.DataFrame | StagedRows,
    *,
    key: Sequence[str],
    date_column: str | None = None,
    since: datetime | None = None,
    removed_keys: Iterable[tuple] = (),
    column_types: dict[str, str] | None = None,
) -> MergeCounts:
    """Upsert a partial re-read into `schema.table` by `key`, in one transaction.

    Rows whose key the re-read returns are replaced (changed, or moved into the window from an older date);
    with `date_column`/`since`, stored rows dated `>= since` that the re-read no longer returns are deleted
    (a document deleted in 1C, the movements of an unposted one); `removed_keys` are deleted whatever
    their date. A missing table is created from the frame. Columns new in the frame are added.
    """
    if (date_column is None) != (since is None):
        raise ValueError("merge_table: date_column and since go together")
    target = f"{_ident(schema)}.{_ident(table)}"
    existing = stored_columns(conn, schema, table)
    if not set(key) | {date_column or key[0]} <= set(existing):
        # no table yet, or one made from an empty extract (no columns of its own): nothing to merge into
        if frame.empty and existing:
            return MergeCounts(
                inserted=0, updated=0, deleted=0, rows=conn.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
            )
        rows = replace_table(conn, schema, table, frame, column_types=column_types)
        return MergeCounts(inserted=rows, updated=0, deleted=0, rows=rows)
    removed = [tuple(k) for k in removed_keys]
    keys = [_ident(k) for k in key]
    match = " AND ".join(f"i.{k} = t.{k}" for k in keys)
    with _transaction(conn):
        before = conn.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
        conditions: list[str] = []
        updated = 0
        incoming: list[str] = []
        if not frame.empty:
            if isinstance(frame, StagedRows):
                conn.execute(f"CREATE OR REPLACE TEMP TABLE _incoming AS {frame.select_sql()}")
            else:
                staged, types = _stage(frame, column_types)
                conn.register("_frame", staged)
                conn.execute(
                    f"CREATE OR REPLACE TEMP TABLE _incoming AS SELECT {_select_list(staged, types)} FROM _frame"
                )
                conn.unregister("_frame")
            for name, sql_type in conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = '_incoming' ORDER BY ordinal_position"
            ).fetchall():
                incoming.append(name)
                if name not in existing:
                    typed = "VARCHAR" if sql_type.strip('"') == "NULL" else sql_type
                    conn.execute(f"ALTER TABLE {target} ADD COLUMN {_ident(name)} {typed}")
                elif existing[name].strip('"') == "NULL" and sql_type.strip('"') != "NULL":
                    # a column no row had filled yet was stored untyped: it takes the type of its first values
                    conn.execute(f"ALTER TABLE {target} ALTER COLUMN {_ident(name)} SET DATA TYPE {sql_type}")
            updated = conn.execute(
                f"SELECT count(*) FROM {target} t WHERE EXISTS (SELECT 1 FROM _incoming i WHERE {match})"
            ).fetchall()[0][0]
            conditions.append(f"EXISTS (SELECT 1 FROM _incoming i WHERE {match})")
        params: list = []
        if date_column is not None:
            # an aware `since` compares instants (Bitrix24 stamps carry their offset); a naive one, 1C local time
            kind = "TIMESTAMPTZ" if since.tzinfo is not None else "TIMESTAMP"
            conditions.append(f"TRY_CAST(t.{_ident(date_column)} AS {kind}) >= CAST(? AS {kind})")
            params.append(since)
        if removed:
            conn.execute(f"CREATE OR REPLACE TEMP TABLE _removed ({', '.join(f'{k} VARCHAR' for k in keys)})")
            conn.executemany(
                f"INSERT INTO _removed VALUES ({', '.join('?' for _ in keys)})", [[str(v) for v in k] for k in removed]
            )
            conditions.append(
                "EXISTS (SELECT 1 FROM _removed r WHERE "
                + " AND ".join(f"r.{k} = CAST(t.{k} AS VARCHAR)" for k in keys)
                + ")"
            )
        if conditions:
            conn.execute(f"DELETE FROM {target} t WHERE {' OR '.join(conditions)}", params)
        after_delete = conn.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
        cols = ", ".join(_ident(c) for c in incoming)
        arrived = 0
        if incoming:
            arrived = conn.execute("SELECT count(*) FROM _incoming").fetchall()[0][0]
            conn.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM _incoming")
        conn.execute("DROP TABLE IF EXISTS _incoming")
        conn.execute("DROP TABLE IF EXISTS _removed")
    deleted = before - after_delete - updated
    return MergeCounts(inserted=arrived - updated, updated=updated, deleted=deleted, rows=after_delete + arrived)
