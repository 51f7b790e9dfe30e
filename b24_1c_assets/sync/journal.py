"""The sync journal in DuckDB: every planned row's outcome, and what was last written successfully.

* `sync.results`  — append-only audit: run, flow, key, operation, before/after, status, error, when.
* `sync.push_state` — per (flow, key) the payload last written successfully: the planner's baseline.
A row whose latest result failed is planned again on the next run until it succeeds.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pandas as pd

from b24_1c_assets.domain.push_plan import Operation, Status
from b24_1c_assets.sync.bitrix24_writes import RowOutcome
from b24_1c_assets.warehouse import table_exists

SCHEMA = "sync"
RESULT_COLUMNS = [
    "run_id",
    "flow",
    "key",
    "target_id",
    "operation",
    "reason",
    "before",
    "after",
    "payload_hash",
    "status",
    "error",
    "error_class",
    "attempts",
    "dry_run",
    "recorded_at",
]


def last_pushed(conn: duckdb.DuckDBPyConnection, flow: str) -> pd.DataFrame:
    """key, payload (JSON), payload_hash, target_id of the last successful write per key."""
    if not table_exists(conn, SCHEMA, "push_state"):
        return pd.DataFrame(columns=["key", "payload", "payload_hash", "target_id"])
    return conn.execute("SELECT key, payload, payload_hash, target_id FROM sync.push_state WHERE flow = ?", [flow]).df()


def failed_keys(conn: duckdb.DuckDBPyConnection, flow: str, *, status: str | None = None) -> set[str]:
    """Keys whose latest recorded outcome in `flow` is a failure (retried on every run until success);
    `status` narrows to one kind of failure (e.g. 'failed' leaves out 'rejected')."""
    if not table_exists(conn, SCHEMA, "results"):
        return set()
    rows = conn.execute(
        """SELECT key FROM (
               SELECT key, status, row_number() OVER (PARTITION BY key ORDER BY recorded_at DESC) AS n
               FROM sync.results WHERE flow = ? AND NOT dry_run)
           WHERE n = 1 AND status <> ? AND (? IS NULL OR status = ?)""",
        [flow, Status.OK.value, status, status],
    ).fetchall()
    return {r[0] for r in rows}


def record(
    conn: duckdb.DuckDBPyConnection,
    *,
    flow: str,
    run_id: str,
    plan: pd.DataFrame,
    outcomes: list[RowOutcome],
    dry_run: bool = False,
    target_ids: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Journal the outcomes of one run of a flow; advance the baseline for rows written successfully.

    plan: key, operation, reason, before, after, payload_hash (as `push_plan.plan_updates` makes it).
    Returns the result rows written.
    """
    now = datetime.now(UTC).replace(tzinfo=None)
    by_key = plan.set_index("key").to_dict("index") if not plan.empty else {}
    rows = []
    for outcome in outcomes:
        planned = by_key.get(outcome.key, {})
        target = (target_ids or {}).get(outcome.key) or (
            str(outcome.result) if outcome.operation == Operation.ADD and outcome.status == Status.OK else None
        )
        rows.append(
            {
                "run_id": run_id,
                "flow": flow,
                "key": outcome.key,
                "target_id": target,
                "operation": str(outcome.operation),
                "reason": planned.get("reason"),
                "before": planned.get("before"),
                "after": planned.get("after"),
                "payload_hash": planned.get("payload_hash"),
                "status": str(outcome.status),
                "error": outcome.error,
                "error_class": outcome.error_class,
                "attempts": outcome.attempts,
                "dry_run": dry_run,
                "recorded_at": now,
            }
        )
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    if results.empty:
        return results
    conn.execute("BEGIN")
    try:
        _append(conn, results)
        if not dry_run:
            _advance_state(conn, results[results["status"] == Status.OK], now)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return results


def _append(conn, results: pd.DataFrame) -> None:
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    conn.execute("""CREATE TABLE IF NOT EXISTS sync.results (
        run_id VARCHAR, flow VARCHAR, key VARCHAR, target_id VARCHAR, operation VARCHAR, reason VARCHAR,
        before VARCHAR, after VARCHAR, payload_hash VARCHAR, status VARCHAR, error VARCHAR, error_class VARCHAR,
        attempts INTEGER, dry_run BOOLEAN, recorded_at TIMESTAMP)""")
    conn.register("_results", results)
    conn.execute(f"INSERT INTO sync.results SELECT {', '.join(RESULT_COLUMNS)} FROM _results")
    conn.unregister("_results")


def _advance_state(conn, ok: pd.DataFrame, now: datetime) -> None:
    conn.execute("""CREATE TABLE IF NOT EXISTS sync.push_state (
        flow VARCHAR, key VARCHAR, payload VARCHAR, payload_hash VARCHAR, target_id VARCHAR,
        pushed_at TIMESTAMP, PRIMARY KEY (flow, key))""")
    if ok.empty:
        return
    state = pd.DataFrame(
        {
            "flow": ok["flow"],
            "key": ok["key"],
            "payload": ok["after"],
            "payload_hash": ok["payload_hash"],
            "target_id": ok["target_id"],
            "pushed_at": now,
        }
    )
    conn.register("_state", state)
    conn.execute(
        """INSERT INTO sync.push_state SELECT flow, key, payload, payload_hash, target_id, pushed_at """
        """FROM _state
                    ON CONFLICT (flow, key) DO UPDATE SET payload = excluded.payload,
                        payload_hash = excluded.payload_hash,
                        target_id = coalesce(excluded.target_id, sync.push_state.target_id),
                        pushed_at = excluded.pushed_at"""
    )
    conn.unregister("_state")
