"""Incremental extracts as Dagster runs them: which window to read (from `sync.extract_state`, the settings
and the run's tags), and landing the re-read (merged by key, or replacing the table after a full read).

The rule of the window is `domain/extract_window.py`; the merge is `warehouse.merge_table`.
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import pandas as pd

from b24_1c_assets import settings
from b24_1c_assets.domain.contracts import Contract
from b24_1c_assets.domain.extract_window import ExtractPolicy, ExtractWindow, extract_window
from b24_1c_assets.lib.landing import WindowMerge, store_extract
from b24_1c_assets.lib.resources import WarehouseResource
from b24_1c_assets.sync.extract_state import last_extracts, record_extract

FULL_EXTRACT_TAG = "b24_1c/full_extract"  # "true": every incremental table read whole in this run


def extract_policy() -> ExtractPolicy:
    return ExtractPolicy(**settings.load("extracts"))


def next_window(context: dg.AssetExecutionContext, warehouse: WarehouseResource, source: str, table: str,
                started: datetime) -> ExtractWindow:
    """The window this run reads of `source.table` (`started`: now, as the source's stamps are kept)."""
    with warehouse.connect() as conn:
        last_success, last_full = last_extracts(conn, source, table)
    forced = str(context.run.tags.get(FULL_EXTRACT_TAG, "")).lower() in ("1", "true", "yes")
    return extract_window(started, last_success, last_full, extract_policy(), force_full=forced, source=source)


def land_window(context: dg.AssetExecutionContext, warehouse: WarehouseResource, *, source: str, table: str,
                frame: pd.DataFrame, window: ExtractWindow, started: datetime, key: tuple[str, ...],
                date_column: str | None, since: datetime | None, requests: int, contract: Contract,
                preview_columns: list[str], extra: dict | None = None,
                removed_keys: tuple[tuple, ...] = ()) -> dg.MaterializeResult:
    """Store what the window read (replace after a full read, else merge by `key`: on `date_column >= since`,
    or, for a catalog read by DataVersion, the changed objects plus `removed_keys`) and append the extract to
    `sync.extract_state`."""
    result = store_extract(context, warehouse, source, table, frame, contract=contract, api_calls=requests,
                           preview_columns=preview_columns,
                           merge=None if window.full else WindowMerge(key, date_column, since, removed_keys),
                           extra={**(extra or {}), "full_read": window.full,
                                  "window_since": since.isoformat() if since else "",
                                  "window_reason": window.reason, "rows_read": len(frame)})
    merged = {name: _number((result.metadata or {}).get(f"merged_{name}")) for name in ("inserted", "updated",
                                                                                           "deleted")}
    with warehouse.connect() as conn:
        record_extract(conn, source=source, table=table, started_at=started, window=window, rows_read=len(frame),
                       requests=requests, run_id=context.run.run_id, **merged)
    return result


def _number(value) -> int:
    return int(getattr(value, "value", value) or 0)
