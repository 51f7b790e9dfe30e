"""Running the product's jobs outside the UI (the demo, benchmarks, tests) and summarising a run."""

from __future__ import annotations

from collections import Counter

import dagster as dg


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_full_sync(*, trigger: str, instance: dg.DagsterInstance | None = None, partition_key: str | None = None,
                  raise_on_error: bool = False, quiet: bool = True) -> dg.ExecuteInProcessResult:
    """Execute `full_sync` in this process against the environment's portal, 1C and DuckDB file.

    `partition_key` is the receivables day to close (default: today in Moscow).
    """
    from b24_1c_assets.definitions import defs
    from b24_1c_assets.defs.partitions import daily_partitions

    job = defs().resolve_job_def("full_sync")
    instance = instance or dg.DagsterInstance.get()
    partition_key = partition_key or daily_partitions.get_last_partition_key()
    return job.execute_in_process(instance=instance, tags={"trigger": trigger}, partition_key=partition_key,
                                  raise_on_error=raise_on_error, run_config=QUIET if quiet else None)


def materialized_figures(result: dg.ExecuteInProcessResult) -> list[tuple[str, int | None, int | None]]:
    """(asset, rows, api calls) for every asset the run materialized, in run order."""
    figures = []
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization  # type: ignore[union-attr]
        meta = mat.metadata
        rows = meta.get("dagster/row_count") or meta.get("dagster/partition_row_count")
        calls = meta.get("api_calls")
        figures.append((mat.asset_key.to_user_string(),
                        rows.value if rows is not None else None,
                        calls.value if calls is not None else None))
    return figures


def describe_run(result: dg.ExecuteInProcessResult, sandbox=None) -> str:
    """A short plain-text report of what a run did."""
    lines = [f"run {result.run_id[:8]}: {'SUCCESS' if result.success else 'FAILURE'}"]
    for asset, rows, calls in materialized_figures(result):
        calls_text = f", {calls} API calls" if calls is not None else ""
        lines.append(f"  {asset:<40} {rows if rows is not None else '-':>8} rows{calls_text}")
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                lines.append(f"  check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} FAILED "
                             f"({evaluation.severity.value})")
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
