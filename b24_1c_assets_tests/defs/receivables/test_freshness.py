"""The receivables snapshot's freshness check: a day not closed shows as a failed check."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from b24_1c_assets.definitions import defs
from b24_1c_assets.defs.receivables.assets import SNAPSHOT
from b24_1c_assets.defs.receivables.freshness import SNAPSHOT_FRESHNESS
from b24_1c_assets.lib.partitions import daily_partitions

SNAPSHOT_SPEC = dg.AssetSpec(SNAPSHOT, partitions_def=daily_partitions)


def evaluate(instance: dg.DagsterInstance) -> dg.AssetCheckEvaluation:
    result = dg.materialize(
        [*SNAPSHOT_FRESHNESS, SNAPSHOT_SPEC],
        instance=instance,
        selection=dg.AssetSelection.all_asset_checks(),
        raise_on_error=False,
    )
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def test_a_snapshot_never_closed_fails_its_freshness_check():
    evaluation = evaluate(dg.DagsterInstance.ephemeral())
    assert not evaluation.passed and evaluation.asset_key == SNAPSHOT
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "expect partition" in (evaluation.description or "")


def test_the_closed_days_make_it_fresh():
    instance = dg.DagsterInstance.ephemeral()
    today = datetime.now(ZoneInfo("Europe/Moscow")).date()
    for day in (today - timedelta(days=1), today):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=SNAPSHOT, partition=day.isoformat()))
    assert evaluate(instance).passed


def test_the_check_and_its_sensor_are_in_the_location():
    definitions = defs()
    assert "receivables_freshness_sensor" in {s.name for s in definitions.sensors}
    checks = definitions.resolve_asset_graph().asset_check_keys
    assert dg.AssetCheckKey(SNAPSHOT, "freshness_check") in checks
