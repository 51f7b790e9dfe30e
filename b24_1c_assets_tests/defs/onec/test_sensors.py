"""The exchange-folder sensor: one run request per new file, none for a file already loaded."""

from __future__ import annotations

import dagster as dg

from b24_1c_assets.defs.onec.sensors import exchange_folder_sensor
from b24_1c_assets.lib.resources import OneCResource
from b24_1c_assets.sandbox.exchange_files import write_exchange_files
from b24_1c_assets_tests.defs.onec.conftest import age


def evaluate(folder, instance, odata_url: str = ""):
    context = dg.build_sensor_context(
        instance=instance, resources={"onec": OneCResource(odata_url=odata_url, exchange_dir=str(folder))}
    )
    return exchange_folder_sensor(context)


def test_sensor_fires_once_per_new_file(world, exchange_dir, run_assets):
    instance = dg.DagsterInstance.ephemeral()
    assert isinstance(evaluate(exchange_dir, instance), dg.SkipReason)  # empty folder

    paths = write_exchange_files(world, exchange_dir)
    assert isinstance(evaluate(exchange_dir, instance), dg.SkipReason)  # too fresh: maybe still being written
    age(paths)
    result = evaluate(exchange_dir, instance)
    keys = [r.run_key for r in result.run_requests]
    assert len(keys) == len(paths) == len(set(keys))
    assert {k.split(":")[0] for k in keys} == {p.name for p in paths}
    assert all(r.tags["flow"] == "exchange_load" and r.tags["trigger"] == "sensor" for r in result.run_requests)
    assert evaluate(exchange_dir, instance).run_requests[0].run_key == keys[0]  # same file -> same run key

    run_assets(dg.AssetSelection.assets(["onec", "exchange_files"]))  # what the launched run does first
    assert isinstance(evaluate(exchange_dir, instance), dg.SkipReason)

    again = exchange_dir / "again-invoices.json"  # same content under a new name: already loaded
    again.write_bytes((exchange_dir / "processed" / "invoices.json").read_bytes())
    new = exchange_dir / "receivables-2.json"
    new.write_bytes(
        (exchange_dir / "processed" / "receivables.json")
        .read_bytes()
        .replace(b'"exported_at"', b'"infobase2": 1, "exported_at"')
    )
    age([again, new])
    result = evaluate(exchange_dir, instance)
    assert [r.run_key.split(":")[0] for r in result.run_requests] == ["receivables-2.json"]


def test_sensor_skips_when_odata_is_configured(exchange_dir):
    result = evaluate(exchange_dir, dg.DagsterInstance.ephemeral(), odata_url="http://127.0.0.1:1/odata")
    assert isinstance(result, dg.SkipReason)
