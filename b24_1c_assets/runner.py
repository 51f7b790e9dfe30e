"""Running the product's jobs outside the UI (the demo, benchmarks, tests) and summarising a run."""

from __future__ import annotations

from collections import Counter

import dagster as dg
from tabulate import tabulate

from b24_1c_assets.domain.push_plan import Operation, Status

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_full_sync(
    *,
    trigger: str,
    instance: dg.DagsterInstance | None = None,
    partition_key: str | None = None,
    raise_on_error: bool = False,
    quiet: bool = True,
    dry_run: bool = False,
) -> dg.ExecuteInProcessResult:
    """Execute `full_sync` in this process against the environment's portal, 1C and DuckDB file.

    `partition_key` is the receivables day to close (default: today in Moscow). The run carries the tag
    `b24_1c/dry_run` = `dry_run`: the demo, tests and benchmarks drive the sandbox and write into its 1C for
    real, where a scheduled run without the tag keeps 1C writes dry (settings onec_writes.toml [dry_run]).
    """
    from b24_1c_assets.definitions import defs
    from b24_1c_assets.lib.partitions import daily_partitions
    from b24_1c_assets.lib.push_flow import DRY_RUN_TAG

    job = defs().resolve_job_def("full_sync")
    instance = instance or dg.DagsterInstance.get()
    partition_key = partition_key or daily_partitions.get_last_partition_key()
    tags = {"trigger": trigger, DRY_RUN_TAG: "true" if dry_run else "false"}
    return job.execute_in_process(
        instance=instance,
        tags=tags,
        partition_key=partition_key,
        raise_on_error=raise_on_error,
        run_config=QUIET if quiet else None,
    )


def materialized_figures(result: dg.ExecuteInProcessResult) -> list[tuple[str, int | None, int | None]]:
    """(asset, rows, api calls) for every asset the run materialized, in run order."""
    figures = []
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization  # type: ignore[union-attr]
        meta = mat.metadata
        rows = meta.get("dagster/row_count") or meta.get("dagster/partition_row_count")
        calls = meta.get("api_calls")
        figures.append(
            (
                mat.asset_key.to_user_string(),
                rows.value if rows is not None else None,
                calls.value if calls is not None else None,
            )
        )
    return figures


def describe_run(result: dg.ExecuteInProcessResult, sandbox=None, *, per_asset: bool = False) -> str:
    """A short plain-text report of what a run did: outcome, totals, failures; each asset's figures on request."""
    figures = materialized_figures(result)
    lines = [
        f"run {result.run_id[:8]}: {'SUCCESS' if result.success else 'FAILURE'}, {len(figures)} assets "
        f"materialized, {sum(c or 0 for _, _, c in figures)} API calls counted by the assets"
    ]
    if per_asset:
        lines += [
            "  " + line
            for line in tabulate(
                [(a, r if r is not None else "-", c if c is not None else "-") for a, r, c in figures],
                headers=["asset", "rows", "API calls"],
                colalign=("left", "right", "right"),
            ).splitlines()
        ]
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                lines.append(
                    f"  check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} FAILED "
                    f"({evaluation.severity.value})"
                )
        if event.event_type_value == "STEP_FAILURE":
            error = getattr(event.event_specific_data, "error", None)
            while error is not None and error.cause is not None:  # the step's own exception, not the wrapper
                error = error.cause
            cause = error.message.strip().splitlines()[0] if error is not None else event.message
            lines.append(f"  FAILED {event.step_key}: {cause}")
    if sandbox is not None and getattr(sandbox, "portal", None) is not None:
        log = sandbox.portal.request_log
        statuses = Counter(str(entry.get("status")) for entry in log)
        lines.append(f"  Bitrix24 portal: {len(log)} HTTP calls, statuses {dict(statuses)}")
    if sandbox is not None and getattr(sandbox, "onec", None) is not None:
        log = sandbox.onec.request_log
        statuses = Counter(str(entry.get("status")) for entry in log)
        lines.append(f"  1C OData: {len(log)} HTTP requests, statuses {dict(statuses)}")
    return "\n".join(lines)


# Journal flows in the order the report lists them, with what each one writes where.
FLOWS = {
    "deals_to_onec_orders": "CRM deals -> 1C customer orders",
    "invoices_to_crm": "1C invoices -> CRM smart invoices",
    "catalog_to_crm": "1C items -> CRM products",
    "company_sync.to_crm": "1C counterparties -> CRM companies",
    "company_sync.to_1c": "CRM companies -> 1C counterparties",
    "company_receivables": "1C debts -> CRM company fields",
    "deal_holds": "credit holds -> CRM deal stages",
    "finance_digest": "finance digest -> Bitrix24 chat",
}
UNCHANGED = (Operation.IN_SYNC, Operation.NOOP, Operation.SKIP)  # journaled as ok, but nothing was sent
UNMATCHED = ("only_1c", "only_crm")


def _rows(conn, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of `sql`, or none when a table it reads does not exist (a step that failed or never ran)."""
    import duckdb

    try:
        return conn.execute(sql, params or []).fetchall()
    except duckdb.CatalogException:
        return []


def business_report(run_id: str, path: str | None = None) -> str:
    """What the run did to the business, read back from the DuckDB file: clients, holds, flows, rejects."""
    from b24_1c_assets import warehouse
    from b24_1c_assets.lib import tables

    with warehouse.connect(path, read_only=True) as conn:
        rules = _rows(conn, f"SELECT match_rule, count(*) FROM {tables.CLIENTS} GROUP BY 1 ORDER BY 2 DESC, 1")
        review = _rows(
            conn, f"SELECT reason, count(*) FROM {tables.CLIENT_MATCH_CANDIDATES} GROUP BY 1 ORDER BY 2 DESC, 1"
        )
        results = _rows(
            conn,
            f"SELECT flow, operation, reason, status, dry_run, key FROM {tables.SYNC_RESULTS} WHERE run_id = ?",
            [run_id],
        )
        statuses = _rows(
            conn,
            f"SELECT status, count(*) FROM {tables.CLIENT_CREDIT_STATUS} WHERE snapshot_date = "
            f"(SELECT max(snapshot_date) FROM {tables.CLIENT_CREDIT_STATUS}) GROUP BY 1 ORDER BY 1",
        )
        rejects = _rows(
            conn,
            f'SELECT "table", count(DISTINCT record_id) FROM {tables.QUALITY_REJECTS} '
            "WHERE _run_id = ? GROUP BY 1 ORDER BY 1",
            [run_id],
        )
        held = _rows(
            conn,
            "SELECT regexp_extract(reason, '^(in review|duplicate in 1C)'), count(*) "
            f"FROM {tables.COMPANY_FROM_1C_PLAN} WHERE operation = ? GROUP BY 1 ORDER BY 1",
            [Operation.HOLD_BACK.value],
        )
        # hold notices are not journaled per row: the transitions table says which were sent
        notices = _rows(
            conn,
            f"SELECT count(*) FILTER (WHERE notified), count(*) FROM {tables.HOLD_TRANSITIONS} WHERE run_id = ?",
            [run_id],
        ) or [(0, 0)]
        unpublished = _rows(conn, f'SELECT "table", hint FROM {tables.ONEC_PUBLICATION} WHERE NOT published ORDER BY 1')

    matched = [(rule, n) for rule, n in rules if rule not in UNMATCHED]
    unmatched = dict((rule, n) for rule, n in rules if rule in UNMATCHED)
    lines = [
        "",
        "Clients",
        f"  matched: {sum(n for _, n in matched)} ("
        + (", ".join(f"{rule} {n}" for rule, n in matched) or "none")
        + ")",
        f"  only in 1C: {unmatched.get('only_1c', 0)}, only in the CRM: {unmatched.get('only_crm', 0)}",
        f"  candidates to review: {sum(n for _, n in review)}"
        + (" (" + ", ".join(f"{reason} {n}" for reason, n in review) + ")" if review else ""),
        f"  1C-only clients not created in the CRM until decided: {sum(n for _, n in held)}"
        + (" (" + ", ".join(f"{why} {n}" for why, n in held) + ")" if held else ""),
    ]

    def ok_keys(flow: str, reason: str | None = None) -> int:
        return len(
            {
                key
                for f, op, why, status, dry, key in results
                if f == flow
                and status == Status.OK
                and not dry
                and op not in UNCHANGED
                and (reason is None or why == reason)
            }
        )

    lines += [
        "",
        "Receivables",
        "  credit status: " + (", ".join(f"{status} {n}" for status, n in statuses) or "none"),
        f"  debts pushed to CRM companies: {ok_keys('company_receivables')}",
        f"  deals suspended: {ok_keys('deal_holds', 'suspend')}, released: {ok_keys('deal_holds', 'release')}",
        f"  hold/release notices sent (timeline + chat): {notices[0][0]} of {notices[0][1]}",
    ]

    table = []
    for flow in [*FLOWS, *sorted({r[0] for r in results} - set(FLOWS))]:
        rows = [r for r in results if r[0] == flow]
        written = sum(1 for _, op, _, status, dry, _ in rows if status == Status.OK and not dry and op not in UNCHANGED)
        table.append(
            [
                FLOWS.get(flow, flow),
                written,
                sum(1 for _, op, _, status, _, _ in rows if status == Status.OK and op in UNCHANGED),
                sum(1 for r in rows if r[3] == Status.FAILED),
                sum(1 for r in rows if r[3] == Status.REJECTED),
                sum(1 for r in rows if r[4]),
            ]
        )
    lines += [
        "",
        "Flows written (this run)",
        *(
            "  " + line
            for line in tabulate(
                table, headers=["flow", "written", "unchanged", "failed", "rejected", "dry run"]
            ).splitlines()
        ),
    ]
    lines += [
        "",
        "Rejected rows (quality.rejects, this run)",
        *(
            ("  " + line for line in tabulate(rejects, headers=["table", "records"]).splitlines())
            if rejects
            else ["  none"]
        ),
    ]
    if unpublished:
        from b24_1c_assets.defs.onec.publication import FLOW_NEEDS

        missing = {table for table, _ in unpublished}
        skipped = sorted(flow for flow, needs in FLOW_NEEDS.items() if missing & set(needs))
        lines += [
            "",
            "1C objects not published (what needs them was skipped)",
            *(f"  onec.{table}: {hint}" for table, hint in unpublished),
            f"  flows skipped: {', '.join(skipped) or 'none'}",
        ]
    return "\n".join(lines)
