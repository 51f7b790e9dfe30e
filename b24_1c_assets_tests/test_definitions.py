"""The code location loads, and every asset is described the way the UI's users rely on."""

import dagster as dg


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
