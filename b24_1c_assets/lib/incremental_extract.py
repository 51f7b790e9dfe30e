"""Incremental extracts as Dagster runs them: which window to read (from `sync.extract_state`, the settings
and the run's tags), and landing the re-read (merged by key, or replacing the table after a full read).

The rule of the window is `domain/extract_window.py`; the merge is `warehouse.merge_table`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import dagster as dg
import pandas as pd

from b24_1c_assets import settings
from b24_1c_assets.domain.contracts import Contract
from b24_1c_assets.domain.extract_window import ExtractWindow, extract_window
from b24_1c_assets.lib.api_calls import ApiCalls, calls_made
from b24_1c_assets.lib.landing import WindowMerge, store_extract
from b24_1c_assets.lib.resources import WarehouseResource
from b24_1c_assets.lib.tables import Table
from b24_1c_assets.sync.extract_state import last_extracts, record_extract

FULL_EXTRACT_TAG = "b24_1c/full_extract"  # "true": every incremental table read whole in this run


def next_window(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, table: Table, started: datetime
) -> ExtractWindow:
    """The window this run reads of `table` (its schema names the source; `started`: now, as the source's
    stamps are kept)."""
    with warehouse.connect() as conn:
        last_success, last_full = last_extracts(conn, table.schema, table.name)
    forced = str(context.run.tags.get(FULL_EXTRACT_TAG, "")).lower() in ("1", "true", "yes")
    return extract_window(started, last_success, last_full, settings.extracts(), force_full=forced, source=table.schema)


def land_window(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    table: Table,
    *,
    frame: pd.DataFrame | Iterable[pd.DataFrame],
    window: ExtractWindow,
    started: datetime,
    key: tuple[str, ...],
    date_column: str | None,
    requests: int | ApiCalls,
    contract: Contract,
    preview_columns: list[str],
    since: datetime | None = None,
    extra: dict | None = None,
    removed_keys: tuple[tuple, ...] = (),
) -> dg.MaterializeResult:
    """Store what the window read (a frame, or chunks of a large read: `store_extract`) (replace after a full
    read, else merge by `key`: on `date_column >= since` (default: the window's), or, for a catalog read by
    DataVersion, the changed objects plus `removed_keys`) and append the extract to `sync.extract_state`."""
    since = since or window.since if date_column else None
    result = store_extract(
        context,
        warehouse,
        table,
        frame,
        contract=contract,
        api_calls=requests,
        preview_columns=preview_columns,
        merge=None if window.full else WindowMerge(key, date_column, since, removed_keys),
        extra={
            **(extra or {}),
            "full_read": window.full,
            "window_since": since.isoformat() if since and not window.full else "",
            "window_reason": window.reason,
        },
    )
    rows_read = _number((result.metadata or {}).get("rows_read"))
    merged = {
        name: _number((result.metadata or {}).get(f"merged_{name}")) for name in ("inserted", "updated", "deleted")
    }
    with warehouse.connect() as conn:
        record_extract(
            conn,
            source=table.schema,
            table=table.name,
            started_at=started,
            window=window,
            rows_read=rows_read,
            requests=calls_made(requests),
            run_id=context.run.run_id,
            **merged,
        )
    return result


def _number(value) -> int:
    return int(getattr(value, "value", value) or 0)
