"""Schedules: the nightly run closes the Moscow day it runs on (run key = that day), the hourly one runs
incremental_sync; both, and the change-capture sensor, load with the location and start switched off."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from b24_1c_assets.defs.automation.schedules import hourly_incremental_sync, nightly_full_sync
from b24_1c_assets.lib.partitions import daily_partitions

MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.mark.parametrize(
    "moment, day",
    [
        (datetime(2026, 11, 25, 23, 30, tzinfo=MOSCOW), "2026-11-25"),
        (datetime(2026, 11, 25, 20, 30, tzinfo=UTC), "2026-11-25"),  # the same tick, told in UTC
        (datetime(2026, 11, 25, 21, 30, tzinfo=UTC), "2026-11-26"),  # 00:30 in Moscow: the next day
    ],
)
def test_nightly_full_sync_closes_the_moscow_day_with_the_day_as_run_key(moment, day):
    request = nightly_full_sync(dg.build_schedule_context(scheduled_execution_time=moment))
    assert (request.partition_key, request.run_key) == (day, f"nightly-{day}")
    assert request.tags["trigger"] == "schedule"
    assert day in daily_partitions.get_partition_keys(current_time=moment)  # the day exists at tick time


def test_nightly_schedule_fires_at_23_30_moscow():
    assert (nightly_full_sync.cron_schedule, nightly_full_sync.execution_timezone) == ("30 23 * * *", "Europe/Moscow")
    assert nightly_full_sync.job_name == "full_sync"


def test_hourly_schedule_targets_incremental_sync():
    assert hourly_incremental_sync.job_name == "incremental_sync"
    assert (hourly_incremental_sync.cron_schedule, hourly_incremental_sync.execution_timezone) == (
        "5 * * * *",
        "Europe/Moscow",
    )
    moment = datetime(2026, 11, 25, 10, 5, tzinfo=MOSCOW)
    data = hourly_incremental_sync.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=moment))
    [request] = data.run_requests
    assert request.tags["trigger"] == "schedule" and request.partition_key is None


def test_automation_loads_switched_off_and_jobs_resolve(definitions):
    assert definitions.resolve_schedule_def("nightly_full_sync").default_status == dg.DefaultScheduleStatus.STOPPED
    assert (
        definitions.resolve_schedule_def("hourly_incremental_sync").default_status == dg.DefaultScheduleStatus.STOPPED
    )
    sensor = definitions.resolve_sensor_def("crm_change_capture")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED and sensor.job_name == "incremental_sync"
    incremental = definitions.resolve_job_def("incremental_sync")
    keys = {k.to_user_string() for k in incremental.asset_layer.selected_asset_keys}
    assert {"bitrix24/deals", "bitrix24/companies", "onec/counterparties", "crm_push/deal_holds"} <= keys
    assert not any(k.startswith("receivables/") for k in keys)  # nightly business, not per CRM change


def test_full_sync_defaults_to_todays_moscow_day(definitions):
    job = definitions.resolve_job_def("full_sync")
    today = datetime.now(MOSCOW).strftime("%Y-%m-%d")
    assert job.tags["dagster/partition"] == today == daily_partitions.get_last_partition_key()


# incremental_sync as it was selected by hand before its assets carried the tag (issue 15): the same assets.
INCREMENTAL_BY_HAND = (
    dg.AssetSelection.assets(
        dg.AssetKey(["bitrix24", "deals"]),
        dg.AssetKey(["bitrix24", "companies"]),
        dg.AssetKey(["bitrix24", "requisites"]),
        dg.AssetKey(["bitrix24", "products"]),
    )
    | dg.AssetSelection.groups("client_master", "company_sync", "order_sync")
    | dg.AssetSelection.assets(dg.AssetKey(["crm_push", "deal_hold_plan"]), dg.AssetKey(["crm_push", "deal_holds"]))
    | dg.AssetSelection.assets(
        *[
            dg.AssetKey(["onec", name])
            for name in ("counterparties", "contracts", "items", "customer_orders", "shipments")
        ]
    )
    | dg.AssetSelection.assets(dg.AssetKey(["analytics", "analyst_copy"]))
)


def test_incremental_sync_selects_the_tagged_assets_the_same_as_the_old_hand_made_list(definitions):
    graph = definitions.resolve_asset_graph()
    job = definitions.resolve_job_def("incremental_sync")
    selected = set(job.asset_layer.selected_asset_keys)
    assert selected == INCREMENTAL_BY_HAND.resolve(graph)
    assert len(selected) == 23
    # the checks of those assets run with them, as before
    checks = set(job.asset_layer.asset_graph.asset_check_keys)
    assert checks == INCREMENTAL_BY_HAND.resolve_checks(graph)
    assert all(check.asset_key in selected for check in checks) and checks


def _load_full_sync(*, served: bool, at: datetime):
    """build_full_sync() as a code server (served=True, the location's name reported) or a one-off process
    loads it, at the moment `at`."""
    from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext, DefinitionsLoadType
    from dagster._core.definitions.repository_definition import RepositoryLoadData
    from dagster._core.test_utils import freeze_time

    from b24_1c_assets.defs.jobs import build_full_sync

    context = DefinitionsLoadContext(
        DefinitionsLoadType.INITIALIZATION,
        repository_load_data=RepositoryLoadData(code_location_name="b24_1c_assets") if served else None,
    )
    with freeze_time(at), DefinitionsLoadContext.scoped(context):
        return build_full_sync()


def test_full_sync_served_since_yesterday_launches_for_today():
    """A code server that loaded the location yesterday holds no day; the day is read when the run is launched."""
    yesterday = datetime(2026, 11, 24, 9, 0, tzinfo=MOSCOW)
    today = datetime(2026, 11, 25, 14, 0, tzinfo=MOSCOW)
    job = _load_full_sync(served=True, at=yesterday)
    assert "dagster/partition" not in job.tags and job.tags["flow"] == "full_sync"
    from dagster._core.test_utils import freeze_time

    with freeze_time(today):  # what the partition picker offers last, and what the nightly tick asks for
        assert daily_partitions.get_last_partition_key() == "2026-11-25"
        request = nightly_full_sync(dg.build_schedule_context(scheduled_execution_time=today))
        assert request.partition_key == "2026-11-25"
    # the same job loaded by the one-off process that launches it (dagster job execute) closes that day
    assert _load_full_sync(served=False, at=today).tags["dagster/partition"] == "2026-11-25"
    assert _load_full_sync(served=False, at=yesterday).tags["dagster/partition"] == "2026-11-24"
