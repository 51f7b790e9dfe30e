"""How an extract lands in DuckDB and what the UI shows about it — shared by every source's assets.

Each extract is checked against its data contract (`domain/contracts.py`) on the way in: good rows are
stored, bad rows go to `quality.rejects` with the rule and the value that failed, and the contract's
result is reported as the asset check `contract`. A broken critical column fails the asset instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from b24_1c_assets.domain.contracts import Contract, quarantine
from b24_1c_assets.lib import tables
from b24_1c_assets.lib.resources import WarehouseResource
from b24_1c_assets.lib.tables import Table

PREVIEW_ROWS = 5
OWNERS = ["team:data"]
CONTRACT_CHECK = "contract"
MAX_NAMED_FAILURES = 10


def contract_check_spec(table: Table) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        CONTRACT_CHECK,
        asset=table.key,
        description="Rows keep the table's data contract; breaking rows are quarantined "
        "in quality.rejects with rule and value.",
    )


def with_lineage(frame: pd.DataFrame, context: dg.AssetExecutionContext) -> pd.DataFrame:
    """Every extracted row says when and by which run it was extracted."""
    frame = frame.copy()
    frame["_extracted_at"] = datetime.now(UTC).replace(tzinfo=None)
    frame["_run_id"] = context.run.run_id
    return frame


def preview(frame: pd.DataFrame, columns: list[str] | None = None) -> dg.MetadataValue:
    shown = frame[[c for c in (columns or list(frame.columns)[:8]) if c in frame.columns]].head(PREVIEW_ROWS)
    return dg.MetadataValue.md(shown.to_markdown(index=False) if not shown.empty else "_(no rows)_")


def checked_rows(
    context: dg.AssetExecutionContext, table: Table, frame: pd.DataFrame, contract: Contract
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the rows that keep `table`'s contract, with lineage; the rejects for quality.rejects). A broken critical
    column fails the asset, naming the records."""
    verdict = quarantine(frame, contract) if not frame.empty else None
    rejects = verdict.rejects if verdict is not None else pd.DataFrame()
    if verdict is not None and not verdict.critical_failures.empty:
        named = verdict.critical_failures.head(MAX_NAMED_FAILURES)
        reasons = "; ".join(
            f"record {r.record_id}: {r.column} fails {r.rule} (value {r.value!r})" for r in named.itertuples()
        )
        raise dg.Failure(
            description=f"{table}: {len(verdict.critical_failures)} critical contract failures — {reasons}",
            metadata={"rejects": dg.MetadataValue.md(named.to_markdown(index=False))},
        )
    return with_lineage(verdict.good if verdict is not None else frame, context), rejects


@dataclass(frozen=True)
class WindowMerge:
    """An incremental re-read merged into the table by `key` instead of replacing it: rows dated `>= since`
    (stored ones there that the re-read lacks are deleted), and `removed_keys` deleted whatever their date."""

    key: tuple[str, ...]
    date_column: str | None = None
    since: datetime | None = None
    removed_keys: tuple[tuple, ...] = ()


def store_extract(
    context: dg.AssetExecutionContext,
    store: WarehouseResource,
    table: Table,
    frame: pd.DataFrame,
    *,
    contract: Contract,
    api_calls: int,
    column_types: dict[str, str] | None = None,
    preview_columns: list[str] | None = None,
    extra: dict | None = None,
    merge: WindowMerge | None = None,
) -> dg.MaterializeResult:
    """Quarantine rows that break the contract, replace `table` with the rest (or merge them into it: `merge`),
    describe it."""
    good, rejects = checked_rows(context, table, frame, contract)
    with store.connect() as conn:
        if merge is None:
            rows = table.replace(conn, good, column_types=column_types)
        else:
            merged = table.merge(
                conn,
                good,
                key=merge.key,
                date_column=merge.date_column,
                since=merge.since,
                removed_keys=merge.removed_keys,
                column_types=column_types,
            )
            rows = merged.rows
            extra = {
                **(extra or {}),
                "merged_inserted": merged.inserted,
                "merged_updated": merged.updated,
                "merged_deleted": merged.deleted,
            }
        if not rejects.empty:
            tables.QUALITY_REJECTS.append(conn, with_lineage(rejects, context))
    metadata = {
        "dagster/row_count": rows,
        "dagster/table_name": str(table),
        "api_calls": api_calls,
        "rejected_rows": int(rejects["record_id"].nunique()) if not rejects.empty else 0,
        "preview": preview(good, preview_columns),
    }
    metadata.update(extra or {})
    check = dg.AssetCheckResult(
        check_name=CONTRACT_CHECK,
        passed=rejects.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rejected_rows": metadata["rejected_rows"],
            "failures": dg.MetadataValue.md(
                rejects.head(MAX_NAMED_FAILURES).to_markdown(index=False) if not rejects.empty else "_(none)_"
            ),
        },
    )
    return dg.MaterializeResult(metadata=metadata, check_results=[check])
