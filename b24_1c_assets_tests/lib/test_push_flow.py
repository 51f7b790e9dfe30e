"""lib/push_flow against real (in-process) Dagster runs: the one guard (limits from push_guard.toml, the
override tag) and the one dry-run switch (the run tag decides, else the per-system default in settings)."""

import dagster as dg
import pandas as pd
import pytest

from b24_1c_assets.domain.push_plan import Operation, Status
from b24_1c_assets.lib import push_flow

PLAN = dg.AssetKey(["test", "plan"])


def changed_plan(rows: int) -> pd.DataFrame:
    """A plan changing `rows` rows that were pushed before (not an initial load)."""
    return pd.DataFrame(
        {
            "key": [str(i) for i in range(rows)],
            "operation": Operation.UPDATE,
            "reason": "changed",
            "changed_fields": "PRICE",
        }
    )


def run_guarded(plan: pd.DataFrame, population: int, flow: str, tags: dict | None = None):
    @dg.asset(key=PLAN, check_specs=[push_flow.guard_spec(PLAN, "test writes")])
    def guarded(context: dg.AssetExecutionContext):
        return dg.MaterializeResult(check_results=[push_flow.guard_check(context, PLAN, plan, population, flow)])

    result = dg.materialize([guarded], tags=tags, raise_on_error=False)
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


@pytest.fixture
def shipped_settings(monkeypatch):
    monkeypatch.delenv("B24_1C_SETTINGS_DIR", raising=False)


def test_one_check_name_limits_from_push_guard_toml_and_the_override_tag(shipped_settings):
    # catalog: max_changes 500 (push_guard.toml [catalog], moved there from deal_orders.toml [guard])
    within = run_guarded(changed_plan(10), 10_000, "catalog")
    assert within.check_name == push_flow.GUARD_CHECK == "push_guard" and within.passed
    blocked = run_guarded(changed_plan(501), 10_000, "catalog")
    assert not blocked.passed and "501 rows would change (limit 500)" in blocked.description
    assert push_flow.GUARD_OVERRIDE_TAG in blocked.description
    forced = run_guarded(changed_plan(501), 10_000, "catalog", tags={push_flow.GUARD_OVERRIDE_TAG: "new price list"})
    assert forced.passed and forced.metadata["override"].value == "new price list"
    # a nested flow name reads its nested table; keys it leaves out take GuardLimits' defaults (500)
    assert not run_guarded(changed_plan(501), 10_000, "company_sync.to_1c").passed


def test_a_flow_without_limits_fails_instead_of_running_unguarded(shipped_settings):
    with pytest.raises(Exception, match="no guard limits"):
        push_flow.guard_limits("no_such_flow")


def dry_run_of(system: str, tags: dict | None = None) -> bool:
    seen = {}

    @dg.asset
    def writer(context: dg.AssetExecutionContext):
        seen["dry"] = push_flow.is_dry_run(context, system)

    assert dg.materialize([writer], tags=tags).success
    return seen["dry"]


def test_dry_run_tag_decides_else_the_per_system_default(shipped_settings):
    # shipped defaults: 1C writes are dry, Bitrix24 writes are live
    assert dry_run_of("onec") is True and dry_run_of("bitrix24") is False
    assert dry_run_of("onec", {push_flow.DRY_RUN_TAG: "false"}) is False
    assert dry_run_of("bitrix24", {push_flow.DRY_RUN_TAG: "true"}) is True


def test_dry_run_default_comes_from_onec_writes_toml(tmp_path, monkeypatch):
    folder = tmp_path / "settings"
    folder.mkdir()
    (folder / "onec_writes.toml").write_text("[dry_run]\nonec = false\nbitrix24 = true\n", encoding="utf-8")
    monkeypatch.setenv("B24_1C_SETTINGS_DIR", str(folder))
    assert dry_run_of("onec") is False and dry_run_of("bitrix24") is True
    assert dry_run_of("bitrix24", {push_flow.DRY_RUN_TAG: "false"}) is False  # the tag still decides


def test_a_misspelt_tag_or_system_fails_loudly(shipped_settings):
    with pytest.raises(dg.Failure, match="expected true or false"):
        dry_run_of("onec", {push_flow.DRY_RUN_TAG: "maybe"})
    with pytest.raises(ValueError, match="unknown system"):
        push_flow.dry_run_default("1c")


def test_dry_run_outcomes_keep_each_rows_operation():
    rows = pd.DataFrame({"key": ["1", "2"], "operation": [Operation.CREATE, Operation.LINK]})
    assert [(o.key, o.operation, o.status) for o in push_flow.dry_run_outcomes(rows)] == [
        ("1", "create", "ok"),
        ("2", "link", "ok"),
    ]
    assert {o.status for o in push_flow.dry_run_outcomes(rows, Status.DRY_RUN)} == {"dry_run"}


def test_push_metadata_counts_statuses():
    results = pd.DataFrame(
        {
            "key": ["1", "2", "3", "4"],
            "operation": "update",
            "target_id": None,
            "error": None,
            "status": [Status.OK, Status.FAILED, Status.REJECTED, Status.DEFERRED],
        }
    )
    metadata = push_flow.push_metadata(results, planned=4, api_calls=2, dry_run=False)
    assert (metadata["succeeded"], metadata["failed"], metadata["rejected"], metadata["deferred"]) == (1, 1, 1, 1)
