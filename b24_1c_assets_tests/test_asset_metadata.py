"""What a data engineer sees in the Dagster UI: every asset and check is described, and every
materialization of a full sync says how many rows, shows a preview and counts the API calls it made."""

import dagster as dg
import pytest

from b24_1c_assets.runner import run_full_sync
from b24_1c_assets_tests.defs.conftest import sandbox  # noqa: F401 — the fixture, shared with defs/ tests

ALLOWED_KINDS = {"duckdb", "bitrix24", "1c"}
SOURCE_KINDS = {"bitrix24", "1c"}  # an asset of such a kind talks to that system, so it counts its calls


@pytest.fixture(scope="module")
def loaded():
    from b24_1c_assets.definitions import defs

    return defs()


def _asset_specs(loaded):
    """(spec, resource keys of its asset definition) for every asset of the location."""
    return [(spec, set(assets_def.required_resource_keys)) for assets_def in loaded.assets for spec in assets_def.specs]


def test_every_asset_has_group_kinds_owner_and_says_what_a_row_is(loaded):
    specs = _asset_specs(loaded)
    assert len(specs) >= 40
    for spec, resources in specs:
        name = spec.key.to_user_string()
        assert spec.group_name and spec.group_name != "default", name
        assert spec.kinds and spec.kinds <= ALLOWED_KINDS, (name, spec.kinds)
        if "warehouse" in resources:
            assert "duckdb" in spec.kinds, name
        if "bitrix24" in resources:  # the Bitrix24 resource is only ever a REST client
            assert "bitrix24" in spec.kinds, name
        assert spec.owners, name
        assert spec.description and "one row per" in spec.description.lower(), name


def test_every_check_has_a_description(loaded):
    checks = [check for definition in [*loaded.assets, *(loaded.asset_checks or [])]
              for check in definition.check_specs]
    assert len(checks) >= 20
    for check in checks:
        assert check.description and len(check.description) > 20, check.key


def test_full_sync_materializations_carry_row_count_preview_and_api_calls(sandbox, loaded):  # noqa: F811
    result = run_full_sync(trigger="test", instance=dg.DagsterInstance.ephemeral())
    assert result.success
    kinds = {spec.key: spec.kinds for spec, _ in _asset_specs(loaded)}
    seen, calls = set(), {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        name, meta = mat.asset_key.to_user_string(), mat.metadata
        seen.add(mat.asset_key)
        rows = meta.get("dagster/row_count") or meta.get("dagster/partition_row_count")
        assert isinstance(rows, dg.IntMetadataValue) and rows.value >= 0, name
        assert isinstance(meta.get("preview"), dg.MarkdownMetadataValue) and meta["preview"].value.strip(), name
        if kinds[mat.asset_key] & SOURCE_KINDS:
            assert isinstance(meta.get("api_calls"), dg.IntMetadataValue), name
            calls[name] = meta["api_calls"].value
    assert seen == set(kinds)  # nothing escaped the audit
    # The counts are real: every extract over the API made at least one call, and the run made many.
    assert all(calls[k] >= 1 for k in calls if k.startswith(("bitrix24/", "onec/")) and k != "onec/exchange_files")
    assert sum(calls.values()) >= 50
