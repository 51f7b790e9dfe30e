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


def _defs_modules():
    """Every module under b24_1c_assets/defs/, imported."""
    import importlib
    import pkgutil

    import b24_1c_assets.defs as root

    return [importlib.import_module(info.name) for info in pkgutil.walk_packages(root.__path__, root.__name__ + ".")]


def _what_a_module_defines(module) -> dg.Definitions:
    """Its `defs` when it has one, else whatever it holds at module level (how the defs-folder loader reads it)."""
    own = getattr(module, "defs", None)
    return own if isinstance(own, dg.Definitions) else dg.load_definitions_from_module(module)


def _names(definitions: dg.Definitions) -> dict[str, set[str]]:
    return {
        "assets": {
            key.to_user_string()
            for a in definitions.assets or []
            for key in (a.keys if isinstance(a, dg.AssetsDefinition) else [a.key])
        },
        "checks": {str(key) for c in definitions.asset_checks or [] for key in c.check_keys},
        "jobs": {job.name for job in definitions.jobs or []},
        "sensors": {sensor.name for sensor in definitions.sensors or []},
        "schedules": {schedule.name for schedule in definitions.schedules or []},
    }


def test_the_location_is_exactly_what_the_defs_modules_define(definitions):
    """definitions.py lists no module: whatever a module under defs/ defines is loaded, and nothing else is."""
    expected = {kind: set() for kind in _names(definitions)}
    for module in _defs_modules():
        for kind, names in _names(_what_a_module_defines(module)).items():
            expected[kind] |= names
    expected["assets"].add("analytics/analyst_copy")  # built in definitions.py from everything loaded
    assert _names(definitions) == expected
    assert len(expected["assets"]) >= 40 and {"full_sync", "incremental_sync"} <= expected["jobs"]


def test_a_module_exports_its_objects_once_through_its_defs():
    """An asset, check, job or sensor a module holds at module level is in the location: a module with a `defs`
    lists everything it defines there (the loader reads only `defs` when there is one)."""
    from b24_1c_assets.definitions import load_defs_folder

    loaded = _names(load_defs_folder())
    for module in _defs_modules():
        held = _names(dg.load_definitions_from_module(module))
        for kind, names in held.items():
            assert names <= loaded[kind], (module.__name__, kind, names - loaded[kind])


def test_a_module_dropped_into_a_defs_folder_is_loaded_without_listing_it(tmp_path, monkeypatch):
    """The loader definitions.py uses, on a throwaway package: a new flow's module is picked up as it lands."""
    import importlib

    from b24_1c_assets.definitions import load_defs_folder

    flow = tmp_path / "dropin_project" / "defs" / "new_flow"
    flow.mkdir(parents=True)
    for package in (flow.parent.parent, flow.parent, flow):
        (package / "__init__.py").write_text("")
    (flow / "assets.py").write_text(
        "import dagster as dg\n\n\n"
        "@dg.asset(key=['new_flow', 'rows'])\ndef rows():\n    return 1\n\n\n"
        "defs = dg.Definitions(assets=[rows])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = load_defs_folder(importlib.import_module("dropin_project.defs"))
    assert _names(loaded)["assets"] == {"new_flow/rows"}
