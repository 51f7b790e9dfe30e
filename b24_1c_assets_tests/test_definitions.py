"""The code location loads, and every asset is described the way the UI's users rely on."""

import dagster as dg
import pytest


@pytest.fixture
def definitions(monkeypatch, tmp_path):
    monkeypatch.setenv("B24_WEBHOOK_URL", "https://portal.example/rest/1/secretcode123/")
    monkeypatch.setenv("B24_1C_DUCKDB_PATH", str(tmp_path / "t.duckdb"))
    from b24_1c_assets.definitions import defs

    loaded = defs()
    dg.Definitions.validate_loadable(loaded)
    return loaded


def test_every_asset_has_group_kinds_owner_and_a_docstring(definitions):
    specs = list(definitions.resolve_all_asset_specs())
    assert len(specs) >= 20
    for spec in specs:
        name = spec.key.to_user_string()
        assert spec.group_name and spec.group_name != "default", name
        assert spec.kinds, name
        assert spec.owners, name
        assert spec.description and "one row per" in spec.description.lower(), name


def test_full_sync_job_covers_every_asset(definitions):
    job = definitions.resolve_job_def("full_sync")
    specs = {spec.key for spec in definitions.resolve_all_asset_specs()}
    assert specs == set(job.asset_layer.selected_asset_keys)


def test_the_webhook_secret_is_not_in_resource_config(definitions):
    resource = definitions.resources["bitrix24"]
    assert isinstance(resource.webhook_url, dg.EnvVar) and "secretcode123" not in repr(resource)
