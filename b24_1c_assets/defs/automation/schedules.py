"""Schedules (Moscow time, STOPPED until switched on in the UI): hourly incremental sync, nightly full sync that
closes the day's receivables partition."""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from b24_1c_assets.defs.jobs import full_sync, incremental_sync

MOSCOW = ZoneInfo("Europe/Moscow")


def moscow_day(moment: datetime) -> str:
    """The receivables partition key (Moscow calendar day) a tick at `moment` closes."""
    return moment.astimezone(MOSCOW).strftime("%Y-%m-%d")


hourly_incremental_sync = dg.ScheduleDefinition(
    name="hourly_incremental_sync",
    job=incremental_sync,
    cron_schedule="5 * * * *",
    execution_timezone="Europe/Moscow",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    tags={"trigger": "schedule"},
    description="Every hour at :05 Moscow: deals, companies, holds and orders caught up even when change "
    "capture missed something (runs queue behind the pools, never overlap a write).",
)


@dg.schedule(
    name="nightly_full_sync",
    job=full_sync,
    cron_schedule="30 23 * * *",
    execution_timezone="Europe/Moscow",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="23:30 Moscow every day: everything re-read and pushed, and that day's receivables "
    "partition closed (run key = the day, so a tick is never launched twice).",
)
def nightly_full_sync(context: dg.ScheduleEvaluationContext):
    day = moscow_day(context.scheduled_execution_time)
    return dg.RunRequest(run_key=f"nightly-{day}", partition_key=day, tags={"trigger": "schedule"})


defs = dg.Definitions(schedules=[hourly_incremental_sync, nightly_full_sync])
