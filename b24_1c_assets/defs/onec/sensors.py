"""A new file in the 1C exchange folder launches its load, and the cheap assets that depend on it."""

import hashlib
import time
from pathlib import Path

import dagster as dg

from b24_1c_assets.lib import tables
from b24_1c_assets.lib.partitions import daily_partitions
from b24_1c_assets.lib.resources import OneCResource
from b24_1c_assets.onec.exchange import SKIP_SUFFIXES, ExchangeFolder

exchange_load = dg.define_asset_job(
    "exchange_load",
    selection=(
        dg.AssetSelection.assets(tables.EXCHANGE_FILES.key)
        | dg.AssetSelection.groups("onec_raw", "client_master")
        | dg.AssetSelection.assets(
            tables.RECEIVABLES_SNAPSHOT.key, tables.CLIENT_CREDIT_STATUS.key, tables.ANALYST_COPY.key
        )
    ),
    partitions_def=daily_partitions,
    description="Load new exchange-folder files into the raw onec.* tables, then rebuild the client master "
    "and today's receivables from them, then publish the analysts' copy.",
    tags={"flow": "exchange_load"},
)


def new_files(folder: ExchangeFolder) -> list[tuple[Path, str]]:
    """(path, sha256) of files the loader would take, read-only (no moves: the run does those)."""
    loaded = folder.loaded_hashes()
    now = time.time()
    out = []
    for entry in sorted(folder.path.iterdir(), key=lambda p: (p.stat().st_mtime, p.name)):
        if (
            not entry.is_file()
            or entry.name.startswith(".")
            or entry.name.lower().endswith(SKIP_SUFFIXES)
            or entry.suffix.lower() not in (".json", ".xml")
        ):
            continue
        if now - entry.stat().st_mtime < folder.min_age_seconds:  # maybe still being written
            continue
        digest = hashlib.sha256(entry.read_bytes()).hexdigest()
        if digest not in loaded:
            out.append((entry, digest))
    return out


@dg.sensor(
    job=exchange_load,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Watches ONEC_EXCHANGE_DIR (when 1C is read from the exchange folder): one run per new "
    "file (run key = file name + SHA-256), loading it and rebuilding client master and "
    "receivables.",
)
def exchange_folder_sensor(context: dg.SensorEvaluationContext, onec: OneCResource):
    if onec.uses_odata:
        return dg.SkipReason("ONEC_ODATA_URL is set: 1C is read through OData, not the exchange folder")
    found = new_files(ExchangeFolder(onec.exchange_dir, timezone=onec.timezone))
    if not found:
        return dg.SkipReason(f"no new file in {onec.exchange_dir}")
    partition = daily_partitions.get_last_partition_key()
    # Dagster runs a run_key once: the same file (name and content) never launches a second load.
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"{path.name}:{digest}",
                partition_key=partition,
                tags={"flow": "exchange_load", "trigger": "sensor", "exchange_file": path.name},
            )
            for path, digest in found
        ]
    )


defs = dg.Definitions(jobs=[exchange_load], sensors=[exchange_folder_sensor])
