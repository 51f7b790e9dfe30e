"""What a data engineer sees in the Dagster UI: every asset and check is described, and every
materialization of a full sync says how many rows, shows a preview and counts the API calls it made.
The same run feeds the `make demo` report, checked against the run's own figures."""

import re

import dagster as dg
import duckdb
import pytest

from b24_1c_assets import runner
from b24_1c_assets.sandbox import start_sandbox

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
    checks = [
        check for definition in [*loaded.assets, *(loaded.asset_checks or [])] for check in definition.check_specs
    ]
    assert len(checks) >= 20
    for check in checks:
        assert check.description and len(check.description) > 20, check.key


@pytest.fixture(scope="module")
def full_sync(world, tmp_path_factory):
    """One full sync on the sandbox for this module's tests: (result, DuckDB path)."""
    path = str(tmp_path_factory.mktemp("full_sync") / "b24_1c.duckdb")
    with start_sandbox(world=world, rate=50, burst=50) as sandbox, pytest.MonkeyPatch.context() as env:
        for name, value in sandbox.env().items():
            env.setenv(name, value)
        env.setenv("B24_1C_DUCKDB_PATH", path)
        env.setenv("ONEC_EXCHANGE_DIR", str(tmp_path_factory.mktemp("exchange")))
        result = runner.run_full_sync(trigger="test", instance=dg.DagsterInstance.ephemeral())
    assert result.success
    return result, path


def _metadata(result, key: str) -> dict:
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key.to_user_string() == key:
            return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    raise KeyError(key)


def test_full_sync_materializations_carry_row_count_preview_and_api_calls(full_sync, loaded):
    result, _ = full_sync
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


def test_the_demo_report_reads_the_run_back(full_sync):
    result, path = full_sync
    report = runner.business_report(result.run_id, path)
    with duckdb.connect(path, read_only=True) as conn:
        matched = conn.execute(
            "SELECT count(*) FROM client_master.clients WHERE onec_ref IS NOT NULL AND company_id IS NOT NULL"
        ).fetchone()[0]
        inn_kpp = conn.execute("SELECT count(*) FROM client_master.clients WHERE match_rule = 'inn_kpp'").fetchone()[0]
        candidates = conn.execute("SELECT count(*) FROM client_master.client_match_candidates").fetchone()[0]
        held = conn.execute(
            "SELECT count(*) FROM crm_push.company_from_1c_plan WHERE operation = 'held_back'"
        ).fetchone()[0]
        reasons = conn.execute(
            "SELECT CASE WHEN reason LIKE 'in review%' THEN 'in review' ELSE 'duplicate in 1C' "
            "END, count(*) FROM crm_push.company_from_1c_plan WHERE operation = 'held_back' "
            "GROUP BY 1"
        ).fetchall()
        sent, transitions = conn.execute(
            "SELECT count(*) FILTER (WHERE notified), count(*) FROM receivables.hold_transitions WHERE run_id = ?",
            [result.run_id],
        ).fetchone()
    receivables, holds = _metadata(result, "crm_push/company_receivables"), _metadata(result, "crm_push/deal_holds")
    orders, invoices = _metadata(result, "onec_push/customer_orders"), _metadata(result, "crm_push/smart_invoices")
    assert f"matched: {matched} (" in report and f"inn_kpp {inn_kpp}" in report
    assert f"candidates to review: {candidates}" in report and candidates > 0
    assert f"not created in the CRM until decided: {held} (" in report and held > 0
    for reason, n in reasons:
        assert f"{reason} {n}" in report
    assert f"notices sent (timeline + chat): {sent} of {transitions}" in report and sent > 0
    assert f"debts pushed to CRM companies: {receivables['succeeded']}" in report and receivables["succeeded"] > 0
    assert f"deals suspended: {holds['suspended']}, released: {holds['released']}" in report
    flows = {m.group(1): int(m.group(2)) for m in re.finditer(r"^ +(\S.*?\S) {2,}(\d+) ", report, re.M)}
    assert flows["CRM deals -> 1C customer orders"] == orders["succeeded"] > 0
    assert flows["1C invoices -> CRM smart invoices"] == invoices["succeeded"] > 0
    for flow in (
        "1C items -> CRM products",
        "1C counterparties -> CRM companies",
        "CRM companies -> 1C counterparties",
    ):
        assert flow in flows
    assert "Rejected rows (quality.rejects, this run)" in report
