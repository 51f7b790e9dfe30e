"""`GET /v1/may-create-deal`: "may this company get a new deal?", from the latest receivables snapshot.

    GET /v1/may-create-deal?company_id=17        (or ?inn=7707083893)
    Authorization: Bearer <B24_1C_GATE_TOKEN>     (or &token=<...> for a CRM business-process webhook,
                                                   which cannot set headers)

Answers 200 with JSON {"allowed": true|false, "status", "held", "reasons", "balance", "credit_limit",
"overdue_amount", "days_overdue", "as_of", ...}; 401 without the right token; 400 without an identifier.
It reads the analysts' copy (`b24_1c_assets.analytics_copy`), never the working file: the copy is replaced
whole by a rename after each run, so the gate answers during runs instead of waiting on the sync's lock. Before
the first copy is published it answers 503 with Retry-After. The token is never logged.

Served by the product's HTTP service (`python -m b24_1c_assets.services`); `python -m
b24_1c_assets.services.credit_gate` still works and starts that service.
"""

from __future__ import annotations

import os
import threading

import duckdb
from starlette.requests import Request

from b24_1c_assets.domain.credit_gate import decide
from b24_1c_assets.lib import tables
from b24_1c_assets.services.http import JSON, credential, error, token_matches

PATH = "/v1/may-create-deal"


def lookup(
    conn: duckdb.DuckDBPyConnection, *, company_id: int | None = None, inn: str | None = None
) -> tuple[dict | None, str | None]:
    """The latest credit-status row and hold state of a company (by CRM ID or INN).

    Plain `fetchall` (DECIMAL arrives as exact Decimal): a DataFrame per request cost ~40 ms."""
    where, value = ("company_id = ?", company_id) if company_id is not None else ("inn = ?", inn)
    try:
        cursor = conn.execute(
            f"""SELECT * FROM {tables.CLIENT_CREDIT_STATUS} WHERE {where} AND
                snapshot_date = (SELECT max(snapshot_date) FROM {tables.CLIENT_CREDIT_STATUS})
                ORDER BY balance DESC LIMIT 1""",
            [value],
        )
        rows = cursor.fetchall()
    except duckdb.CatalogException:  # no receivables published yet
        return None, None
    if not rows:
        return None, None
    status = dict(zip([d[0] for d in cursor.description], rows[0]))
    state = None
    if status.get("company_id") is not None:
        try:
            found = conn.execute(
                f"SELECT state FROM {tables.HOLD_STATE} WHERE company_id = ?", [int(status["company_id"])]
            ).fetchall()
        except duckdb.CatalogException:
            found = []
        state = found[0][0] if found else None
    return status, state


class CopyReader:
    """One read-only connection to the analysts' copy, reopened when a new copy is renamed into place.

    Opening a DuckDB file costs ~60 ms, so the connection is kept; queries take turns on it (a lookup is a
    few ms). The file is ATTACHed to a private in-memory database: `duckdb.connect(path)` would hand back a
    cached instance of the same path, i.e. the replaced old copy.
    """

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._file: tuple[int, int, int] | None = None

    def run(self, fn, *args, **kwargs):
        """fn(connection, ...) on the current copy; FileNotFoundError before the first publication."""
        stat = os.stat(self.path)
        current = (stat.st_dev, stat.st_ino, stat.st_mtime_ns)
        with self._lock:
            if current != self._file or self._conn is None:
                self.close_locked()
                conn = duckdb.connect(":memory:")
                conn.execute(f"ATTACH '{self.path.replace(chr(39), chr(39) * 2)}' AS analyst_copy (READ_ONLY)")
                conn.execute("USE analyst_copy")
                self._conn, self._file = conn, current
            return fn(self._conn, *args, **kwargs)

    def close_locked(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn, self._file = None, None

    def close(self) -> None:
        with self._lock:
            self.close_locked()


def may_create_deal(request: Request) -> JSON:
    """Sync endpoint (Starlette runs it in its thread pool: DuckDB calls block)."""
    config = request.app.state.config
    if not config.gate_token:
        return error(503, "the credit gate is not configured (B24_1C_GATE_TOKEN)")
    query = request.query_params
    given = credential(request.headers.get("authorization")) or query.get("token", "")
    if not token_matches(given, config.gate_token):
        return error(401, "a valid token is required")
    company_id, inn = query.get("company_id"), query.get("inn")
    if not company_id and not inn:
        return error(400, "pass company_id or inn")
    try:
        company = int(company_id) if company_id else None
    except ValueError:
        return error(400, "company_id must be a number")
    try:
        status, state = request.app.state.copy_reader.run(lookup, company_id=company, inn=inn.strip() if inn else None)
    except FileNotFoundError:
        return error(
            503,
            "no receivables published yet (the analysts' copy appears after the first run)",
            headers={"Retry-After": "60"},
        )
    except duckdb.IOException:
        return error(503, "the receivables store cannot be read right now; retry shortly", headers={"Retry-After": "5"})
    return JSON(decide(status, state, allow_unknown=config.allow_unknown).as_json())


def main(argv: list[str] | None = None) -> int:
    from b24_1c_assets.services.__main__ import main as service_main

    return service_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
