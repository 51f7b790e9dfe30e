"""Freshness of the receivables snapshot: a Moscow day not closed by its end shows as a failed check.

The nightly full sync closes each day's partition at 23:30 Moscow; by 23:59 it must be there. Between runs
the check is evaluated by its sensor, so a stopped schedule or a failing nightly run is visible in the UI
(and in the asset's check history) instead of the CRM quietly showing yesterday's debts.
"""

import warnings

import dagster as dg

from b24_1c_assets.defs.receivables.assets import SNAPSHOT

# Dagster 1.13 marks these builders superseded by FreshnessPolicy, which is not an asset check; we want the
# check (visible next to the contracts and guards), so the notice is silenced here, once.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    SNAPSHOT_FRESHNESS = dg.build_time_partition_freshness_checks(
        assets=[SNAPSHOT], deadline_cron="59 23 * * *", timezone="Europe/Moscow", severity=dg.AssetCheckSeverity.WARN
    )
    receivables_freshness_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=SNAPSHOT_FRESHNESS,
        name="receivables_freshness_sensor",
        minimum_interval_seconds=600,
        default_status=dg.DefaultSensorStatus.STOPPED,
    )

defs = dg.Definitions(asset_checks=SNAPSHOT_FRESHNESS, sensors=[receivables_freshness_sensor])
