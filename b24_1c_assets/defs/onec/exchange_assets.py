"""1C read through the exchange folder (ONEC_EXCHANGE_DIR) when ONEC_ODATA_URL is not set.

`onec/exchange_files` claims each new file (b24_1c_assets.onec.exchange), maps it to the raw table shapes
(domain/exchange_records.py) and stages the rows in `onec_exchange.records` in ONE DuckDB transaction; the
file moves to `processed/` only after that commit, to `rejected/` (with a reason file) otherwise. Bad rows of
a good file go to `quality.rejects`. The raw `onec.*` assets then rebuild their tables from the staged rows
(`exchange_extract`), so everything downstream reads the same tables as with OData.
"""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from b24_1c_assets.domain import exchange_records as er
from b24_1c_assets.domain.contracts import Contract
from b24_1c_assets.lib import tables
from b24_1c_assets.lib.landing import OWNERS, preview, store_extract
from b24_1c_assets.lib.resources import OneCResource, WarehouseResource
from b24_1c_assets.lib.tables import Table
from b24_1c_assets.onec.errors import ExchangeFileRejected
from b24_1c_assets.onec.exchange import ExchangeBatch, ExchangeFolder
from b24_1c_assets.warehouse import records_frame

RECORDS, FILES, REJECTS = tables.EXCHANGE_RECORDS, tables.EXCHANGE_FILE_LOG, tables.QUALITY_REJECTS

_DDL = [
    f"CREATE SCHEMA IF NOT EXISTS {RECORDS.schema}",
    f"CREATE TABLE IF NOT EXISTS {RECORDS} (tbl VARCHAR, record_key VARCHAR, record VARCHAR, "
    "source_file VARCHAR, sha256 VARCHAR, loaded_at TIMESTAMP)",
    f"CREATE TABLE IF NOT EXISTS {FILES} (name VARCHAR, sha256 VARCHAR, file_type VARCHAR, "
    "exported_at TIMESTAMP WITH TIME ZONE, as_of TIMESTAMP WITH TIME ZONE, records BIGINT, bad_rows BIGINT, "
    "status VARCHAR, reason VARCHAR, loaded_at TIMESTAMP, run_id VARCHAR)",
    f"CREATE SCHEMA IF NOT EXISTS {REJECTS.schema}",
    f'CREATE TABLE IF NOT EXISTS {REJECTS} ("table" VARCHAR, record_id VARCHAR, "column" VARCHAR, '
    "rule VARCHAR, value VARCHAR, critical BOOLEAN, _extracted_at TIMESTAMP, _run_id VARCHAR)",
]


def exchange_folder(onec: OneCResource) -> ExchangeFolder:
    return ExchangeFolder(onec.exchange_dir, timezone=onec.timezone)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def stage_batch(conn, batch: ExchangeBatch, run_id: str) -> dict[str, int]:
    """Stage one parsed file's rows, bad rows and file record in one transaction; rows staged per table."""
    mapped = er.map_file(batch.file_type, batch.records, batch.header, batch.exported_at)
    now = _now()
    counts = {}
    conn.execute("BEGIN")
    try:
        for sql in _DDL:
            conn.execute(sql)
        for table, rows in mapped.tables.items():
            keyed = {er.row_key(table, r): r for r in rows}  # the file's last row for a key wins
            if table in mapped.replace:
                conn.execute(f"DELETE FROM {RECORDS} WHERE tbl = ?", [table])
            elif keyed:
                conn.register("_keys", pd.DataFrame({"k": list(keyed)}))
                conn.execute(f"DELETE FROM {RECORDS} WHERE tbl = ? AND record_key IN (SELECT k FROM _keys)", [table])
                conn.unregister("_keys")
            if keyed:
                staged = pd.DataFrame(
                    {
                        "tbl": table,
                        "record_key": list(keyed),
                        "record": [er.encode_row(r) for r in keyed.values()],
                        "source_file": batch.file.name,
                        "sha256": batch.file.sha256,
                        "loaded_at": now,
                    }
                )
                conn.register("_rows", staged)
                conn.execute(f"INSERT INTO {RECORDS} SELECT * FROM _rows")
                conn.unregister("_rows")
            counts[table] = len(keyed)
        if batch.bad_rows:
            rejects = pd.DataFrame(
                {
                    "table": f"{RECORDS.schema}.{batch.file_type}",
                    "record_id": [er.reject_record_id(b["record"]) for b in batch.bad_rows],
                    "column": None,
                    "rule": [f"{batch.file.name} row #{b['index']}: {b['reason']}" for b in batch.bad_rows],
                    "value": [
                        er.encode_row(b["record"]) if isinstance(b["record"], dict) else str(b["record"])
                        for b in batch.bad_rows
                    ],
                    "critical": False,
                    "_extracted_at": now,
                    "_run_id": run_id,
                }
            )
            conn.register("_rejects", rejects)
            conn.execute(
                f'INSERT INTO {REJECTS} ("table", record_id, "column", rule, value, critical, '
                "_extracted_at, _run_id) SELECT * FROM _rejects"
            )
            conn.unregister("_rejects")
        _log_file(
            conn,
            batch.file.name,
            batch.file.sha256,
            batch.file_type,
            batch.exported_at,
            batch.header.get("as_of"),
            len(batch.records),
            len(batch.bad_rows),
            "loaded",
            None,
            run_id,
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return counts


def _log_file(conn, name, sha256, file_type, exported_at, as_of, records, bad_rows, status, reason, run_id):
    conn.execute(
        f"INSERT INTO {FILES} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            name,
            sha256,
            file_type,
            exported_at,
            as_of if isinstance(as_of, datetime) else None,
            records,
            bad_rows,
            status,
            reason,
            _now(),
            run_id,
        ],
    )


@dg.asset(
    key=tables.EXCHANGE_FILES.key,
    group_name="onec_raw",
    kinds={"1c", "duckdb"},
    owners=OWNERS,
    pool="onec_exchange",  # one consumer per folder: give this pool a limit of 1
    tags={"flow": "extract", "source": "1c"},
    description="Files loaded from the 1C exchange folder (when ONEC_ODATA_URL is not set), one row per file "
    "in onec_exchange.files: type, records, bad rows, loaded or rejected with the reason. Rows are "
    "staged in onec_exchange.records for the raw onec.* tables.",
)
def exchange_files(
    context: dg.AssetExecutionContext, onec: OneCResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    if onec.uses_odata:
        return dg.MaterializeResult(
            metadata={
                "source": "odata",
                "files_loaded": 0,
                "dagster/row_count": 0,
                "api_calls": 0,
                "preview": preview(pd.DataFrame()),
                "note": "ONEC_ODATA_URL is set: the exchange folder is not read",
            }
        )
    folder = exchange_folder(onec)
    loaded, rejected, rows = [], [], 0
    for file in folder.pending():
        try:
            with folder.claim(file) as batch, warehouse.connect() as conn:
                counts = stage_batch(conn, batch, context.run.run_id)
            loaded.append(
                {
                    "file": file.name,
                    "type": batch.file_type,
                    "records": len(batch.records),
                    "bad_rows": len(batch.bad_rows),
                    "tables": ", ".join(f"{t}={n}" for t, n in counts.items()),
                }
            )
            rows += len(batch.records)
        except ExchangeFileRejected as exc:
            reason = exc.reason
        except Exception as exc:  # noqa: BLE001 — claim() already moved it to rejected/ with this reason
            reason = f"load failed: {type(exc).__name__}: {exc}"
        else:
            continue
        context.log.warning(f"exchange file {file.name} rejected: {reason}")
        rejected.append({"file": file.name, "reason": reason})
        with warehouse.connect() as conn:
            for sql in _DDL:
                conn.execute(sql)
            _log_file(conn, file.name, file.sha256, None, None, None, 0, 0, "rejected", reason, context.run.run_id)
    table = pd.DataFrame(loaded + rejected)
    return dg.MaterializeResult(
        metadata={
            "source": "exchange",
            "exchange_dir": onec.exchange_dir,
            "dagster/row_count": len(loaded) + len(rejected),
            "api_calls": 0,  # files, not the OData API
            "files_loaded": len(loaded),
            "files_rejected": len(rejected),
            "records_loaded": rows,
            "bad_rows": int(sum(f["bad_rows"] for f in loaded)),
            "preview": dg.MetadataValue.md(table.to_markdown(index=False) if not table.empty else "_(no new files)_"),
        }
    )


def staged_rows(conn, table: str) -> list[dict]:
    if not RECORDS.exists(conn):
        return []
    texts = conn.execute(f"SELECT record FROM {RECORDS} WHERE tbl = ? ORDER BY record_key", [table]).fetchall()
    return [er.decode_row(table, t) for (t,) in texts]


def _latest_receivables_as_of(conn) -> datetime | None:
    if not FILES.exists(conn):
        return None
    found = conn.execute(
        f"SELECT as_of FROM {FILES} WHERE file_type = 'receivables' AND status = 'loaded' "
        "ORDER BY loaded_at DESC, as_of DESC LIMIT 1"
    ).fetchall()
    return found[0][0] if found else None


def exchange_extract(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    target: Table,
    contract: Contract,
    preview_columns: list[str],
) -> dg.MaterializeResult:
    """Rebuild raw `onec.<table>` from the staged exchange rows, in the OData extract's shape."""
    table, note = target.name, None
    with warehouse.connect(read_only=False) as conn:
        if table in er.DERIVED:
            as_of = _latest_receivables_as_of(conn)
            records = (
                er.derive_settlement_movements(
                    staged_rows(conn, "receivables_balance"), staged_rows(conn, "invoices"), as_of
                )
                if as_of
                else []
            )
            note = er.DERIVED[table]
        elif table in er.NOT_IN_FORMAT:
            records, note = [], er.NOT_IN_FORMAT[table]
        else:
            records = staged_rows(conn, table)
            if not records:
                note = f"no `{er.FROM_FILES[table]}` exchange file loaded yet"
    columns = [c for c, _ in er.COLUMNS[table]]
    frame = records_frame(records, columns)
    extra = {"source": "exchange", "extracted_at": datetime.now().isoformat(timespec="seconds")}
    if table in er.FROM_FILES:
        extra["exchange_file_type"] = er.FROM_FILES[table]
    if note:
        extra["exchange_note"] = note
        context.log.info(f"{target} from the exchange folder: {note}")
    return store_extract(
        context,
        warehouse,
        target,
        frame,
        contract=contract,
        api_calls=0,
        column_types={**er.column_types(table), "_run_id": "VARCHAR"},
        preview_columns=preview_columns,
        extra=extra,
    )


defs = dg.Definitions(assets=[exchange_files])
