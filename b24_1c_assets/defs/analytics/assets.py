"""The analyst views (schema `analytics`) and the ops record of failed runs (`ops.run_failures`)."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from b24_1c_assets import settings
from b24_1c_assets.defs.analytics.runs import FLOW_TAG, redact, trigger_of
from b24_1c_assets.domain import analytics_sql
from b24_1c_assets.lib import tables
from b24_1c_assets.lib.landing import OWNERS
from b24_1c_assets.lib.resources import Bitrix24Resource, WarehouseResource

MAX_ALERT_CHARS = 1500
# What the views read: created after these so a full sync ends with views over fresh tables.
UPSTREAM = [
    t.key
    for t in (
        tables.BITRIX24_COMPANIES,
        tables.BITRIX24_REQUISITES,
        tables.BITRIX24_DEALS,
        tables.ONEC_COUNTERPARTIES,
        tables.ONEC_CUSTOMER_ORDERS,
        tables.ONEC_INVOICES,
        tables.ONEC_BANK_RECEIPTS,
        tables.ONEC_CASH_RECEIPTS,
        tables.ONEC_RECEIVABLES_BALANCE,
        tables.CLIENTS,
        tables.CLIENT_CREDIT_STATUS,
        tables.PUSH_COMPANY_RECEIVABLES,
    )
]


def present_columns(conn) -> dict[str, set[str]]:
    """table ("schema.name") -> its column names, for every table in the DuckDB file."""
    present: dict[str, set[str]] = {}
    for schema, table, column in conn.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE table_schema NOT IN ('analytics')"
    ).fetchall():
        present.setdefault(f"{schema}.{table}", set()).add(column)
    return present


def create_views(conn) -> dict[str, int]:
    """(Re)create every analytics view in one transaction; returns each view's row count."""
    conn.execute("BEGIN")
    try:
        for statement in analytics_sql.statements(present_columns(conn)):
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return {
        v.qualified: conn.execute(f"SELECT count(*) FROM {v.qualified}").fetchone()[0]
        for v in analytics_sql.view_definitions()
    }


@dg.asset(
    key=tables.ANALYTICS_VIEWS.key,
    deps=UPSTREAM,
    group_name="analytics",
    kinds={"duckdb"},
    owners=OWNERS,
    pool="duckdb",
    tags={"flow": "analytics"},
)
def analytics_views(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The documented analyst views of schema `analytics` (docs/analytics.md), one row per view here:
    client, balance and revenue reconciliation, aging, flow history and dead letters. Recreated after every
    sync so they follow the tables' current columns."""
    with warehouse.connect() as conn:
        counts = create_views(conn)
        balance = conn.execute(
            f"SELECT status, count(*) FROM {tables.BALANCE_RECONCILIATION} GROUP BY 1 ORDER BY 1"
        ).fetchall()
    table = pd.DataFrame({"view": list(counts), "rows": list(counts.values())})
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(counts),
            "dead_letters": counts[str(tables.DEAD_LETTERS)],
            "balance_statuses": ", ".join(f"{s}={n}" for s, n in balance) or "none",
            "preview": dg.MetadataValue.md(table.to_markdown(index=False)),
        }
    )  # all views, not the first few


def ops_user_ids() -> list[int]:
    return list(settings.notifications().ops_alerts.user_ids)


def failure_record(run: dg.DagsterRun, step_failures: list, run_message: str | None) -> dict:
    """The ops.run_failures row of a failed run: tags, the failed steps and their (redacted) errors."""
    steps, errors = [], []
    for event in step_failures:
        steps.append(event.step_key)
        error = getattr(event.event_specific_data, "error", None)
        while error is not None and error.cause is not None:  # the step's own exception, not the wrapper
            error = error.cause
        if error is not None:
            errors.append(f"{event.step_key}: {error.message.strip()}")
    tags = run.tags or {}
    return {
        "run_id": run.run_id,
        "job_name": run.job_name,
        "flow": tags.get(FLOW_TAG),
        "trigger": trigger_of(tags),
        "failed_steps": ", ".join(steps) or None,
        "error": redact("\n".join(errors) or run_message or "run failed"),
        "failed_at": datetime.now(UTC).replace(tzinfo=None),
    }


def alert_text(row: dict) -> str:
    text = (
        f"b24-1c: run {row['run_id'][:8]} failed — job {row['job_name']}, flow {row['flow'] or '-'}, "
        f"trigger {row['trigger']}, steps {row['failed_steps'] or '-'}.\n{row['error']}"
    )
    return text[:MAX_ALERT_CHARS]


def store_failure(warehouse: WarehouseResource, row: dict) -> None:
    with warehouse.connect(lock_wait_seconds=30) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {tables.RUN_FAILURES.schema}")
        conn.execute(analytics_sql.RUN_FAILURES_DDL)
        conn.execute(f"DELETE FROM {tables.RUN_FAILURES} WHERE run_id = ?", [row["run_id"]])  # one row per run
        conn.execute(
            f'INSERT INTO {tables.RUN_FAILURES} (run_id, job_name, flow, "trigger", failed_steps, error, '
            "failed_at, notified_user_ids, notified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                row["run_id"],
                row["job_name"],
                row["flow"],
                row["trigger"],
                row["failed_steps"],
                row["error"],
                row["failed_at"],
                row.get("notified_user_ids"),
                row.get("notified", False),
            ],
        )


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records every failed run of this code location in ops.run_failures (tags, "
    "failed steps, redacted error) and alerts the ops users of "
    "settings/notifications.toml [ops_alerts] in Bitrix24.",
)
def run_failure_alert(context: dg.RunFailureSensorContext, warehouse: WarehouseResource, bitrix24: Bitrix24Resource):
    row = failure_record(context.dagster_run, context.get_step_failure_events(), context.failure_event.message)
    store_failure(warehouse, row)  # recorded first: the alert may fail, the record must not be lost
    users = ops_user_ids()
    sent = []
    for user in users:
        try:
            bitrix24.client().call("im.notify.system.add", {"USER_ID": user, "MESSAGE": alert_text(row)})
            sent.append(user)
        except Exception as exc:  # noqa: BLE001 — an unreachable portal must not hide the failure record
            context.log.warning(f"ops alert to user {user} failed: {redact(str(exc))}")
    row.update(notified_user_ids=",".join(map(str, sent)) or None, notified=bool(users) and len(sent) == len(users))
    store_failure(warehouse, row)


defs = dg.Definitions(assets=[analytics_views], sensors=[run_failure_alert])
