"""The exchange folder (`ONEC_EXCHANGE_DIR`): files 1C exports when OData is not available.

Formats are documented in docs/exchange-format.md: JSON files (counterparties, invoices, payments,
receivables) with a header (file_type, schema_version, exported_at, record_count) and CommerceML 2
`import.xml` / `offers.xml`. Encodings: UTF-8 with or without BOM, windows-1251 (also without an XML
declaration).

Lifecycle: `pending()` lists files ready to load; `claim(file)` parses the whole file before handing it
over and moves it to `processed/` only when the caller's block finishes, or to `rejected/` with a
`<name>.reason.txt` beside it. A corrupt or truncated file is rejected as a whole, never half-loaded. A
file whose content hash was loaded before goes to `duplicates/` and is not loaded again (manifest
`.manifest.json`). Bad rows inside a good file come back in `batch.bad_rows` with a reason.
One consumer per folder is assumed (the Dagster job runs with a concurrency limit of one).
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from . import commerceml, wire
from .errors import ExchangeFileRejected

FORMAT = "b24-1c-exchange"
SCHEMA_VERSION = 1
JSON_TYPES = ("counterparties", "invoices", "payments", "receivables")
XML_TYPES = ("catalog", "offers")
SKIP_SUFFIXES = (".tmp", ".part", ".partial", ".lock", ".reason.txt")
MANIFEST = ".manifest.json"


# -- decoding ---------------------------------------------------------------------------------------

_XML_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def decode_bytes(data: bytes) -> str:
    """UTF-8 (BOM or not), UTF-16 with BOM, windows-1251; an XML declaration's encoding is honoured."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(codec).lstrip("\ufeff")
    declared = _XML_ENCODING.match(data[:200])
    if declared:
        try:
            return data.decode(declared.group(1).decode("ascii"))
        except LookupError:
            raise ValueError(f"unknown encoding {declared.group(1)!r} in the XML declaration") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.end == len(data):
            # Valid UTF-8 cut inside its last character: a truncated UTF-8 file, not windows-1251. Decode what
            # is whole so the parse that follows names the truncation.
            return data[: exc.start].decode("utf-8")
        # Not UTF-8: 1C's other export encoding. cp1251 maps nearly every byte, so corruption shows up
        # in the JSON/XML parse that follows, never as mojibake loaded silently into UTF-8 text fields.
        return data.decode("cp1251")


# -- JSON record schemas ----------------------------------------------------------------------------


@dataclass(frozen=True)
class F:
    """A field of a record: kind guid/str/decimal/int/bool/datetime/rows; rows have `fields`."""

    kind: str
    required: bool = False
    fields: dict[str, F] | None = None
    choices: tuple[str, ...] | None = None


_LINE = {
    "LineNumber": F("int", True),
    "Номенклатура_Key": F("guid", True),
    "Количество": F("decimal", True),
    "Цена": F("decimal", True),
    "Сумма": F("decimal", True),
}
SCHEMAS: dict[str, dict[str, F]] = {
    "counterparties": {
        "Ref_Key": F("guid", True),
        "Description": F("str", True),
        "Code": F("str"),
        "НаименованиеПолное": F("str"),
        "ИНН": F("str"),
        "КПП": F("str"),
        "РегистрационныйНомер": F("str"),
        "ВидКонтрагента": F("str", choices=("ЮридическоеЛицо", "ФизическоеЛицо", "ИндивидуальныйПредприниматель")),
        "DeletionMark": F("bool"),
        "email": F("str"),
        "phone": F("str"),
        "Договоры": F(
            "rows",
            fields={
                "Ref_Key": F("guid", True),
                "Description": F("str", True),
                "НомерДоговора": F("str"),
                "ДатаДоговора": F("datetime"),
                "СрокОплатыПокупателя": F("int"),
            },
        ),
    },
    "invoices": {
        "Ref_Key": F("guid", True),
        "Number": F("str", True),
        "Date": F("datetime", True),
        "Posted": F("bool", True),
        "DeletionMark": F("bool"),
        "Контрагент_Key": F("guid", True),
        "Договор_Key": F("guid"),
        "Заказ_Key": F("guid"),
        "СуммаДокумента": F("decimal", True),
        "ОплатаДо": F("datetime"),
        "Запасы": F("rows", fields=_LINE),
    },
    "payments": {
        "Ref_Key": F("guid", True),
        "Number": F("str", True),
        "Date": F("datetime", True),
        "Posted": F("bool", True),
        "DeletionMark": F("bool"),
        "Вид": F("str", True, choices=("ПоступлениеНаСчет", "ПоступлениеВКассу")),
        "Контрагент_Key": F("guid", True),
        "Договор_Key": F("guid"),
        "СчетНаОплату_Key": F("guid"),
        "Заказ_Key": F("guid"),
        "СуммаДокумента": F("decimal", True),
    },
    "receivables": {
        "Контрагент_Key": F("guid", True),
        "Договор_Key": F("guid"),
        "ТипРасчетов": F("str", True, choices=("Долг", "Аванс")),
        "СуммаBalance": F("decimal", True),
    },
}
_KEYS = {
    "counterparties": ("Ref_Key",),
    "invoices": ("Ref_Key",),
    "payments": ("Ref_Key",),
    "receivables": ("Контрагент_Key", "Договор_Key", "ТипРасчетов"),
}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _convert(kind: str, value: Any, spec: F, tz: ZoneInfo) -> Any:
    if value is None or value == "":
        return None
    if kind == "guid":
        if not isinstance(value, str) or not _GUID.match(value):
            raise ValueError(f"not a GUID: {value!r}")
        return wire.parse_guid(value.lower())
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"not a string: {value!r}")
        if spec.choices and value not in spec.choices:
            raise ValueError(f"{value!r} is not one of {', '.join(spec.choices)}")
        return value
    if kind == "decimal":
        if isinstance(value, bool):
            raise ValueError(f"not a number: {value!r}")
        result = wire.parse_decimal(value)
        if result is not None and not result.is_finite():
            raise ValueError(f"not a finite number: {value!r}")
        return result
    if kind == "int":
        if isinstance(value, bool) or (isinstance(value, Decimal) and value != value.to_integral_value()):
            raise ValueError(f"not an integer: {value!r}")
        return int(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"not true/false: {value!r}")
        return value
    if kind == "datetime":
        if not isinstance(value, str):
            raise ValueError(f"not a date: {value!r}")
        text = value if "T" in value else value + "T00:00:00"
        return wire.parse_datetime(text, tz)
    raise AssertionError(kind)


def validate_record(record: Any, schema: dict[str, F], tz: ZoneInfo) -> dict[str, Any]:
    """A typed copy of one record, or ValueError naming the field and the problem."""
    if not isinstance(record, dict):
        raise ValueError("record is not an object")
    out: dict[str, Any] = {}
    for name, spec in schema.items():
        value = record.get(name)
        if spec.kind == "rows":
            if value is None:
                out[name] = []
                continue
            if not isinstance(value, list):
                raise ValueError(f"{name}: not a list")
            rows = []
            for i, row in enumerate(value, start=1):
                try:
                    rows.append(validate_record(row, spec.fields or {}, tz))
                except ValueError as exc:
                    raise ValueError(f"{name} row {i}: {exc}") from None
            out[name] = rows
            continue
        try:
            out[name] = _convert(spec.kind, value, spec, tz)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise ValueError(f"{name}: {exc}") from None
        if spec.required and out[name] is None:
            raise ValueError(f"{name} is missing")
    # keep fields the schema does not know (newer minor exports) as sent
    for name, value in record.items():
        out.setdefault(name, value)
    return out


# -- files and batches ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExchangeFile:
    """A file waiting in the exchange folder."""

    path: Path
    sha256: str
    size: int

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class ExchangeBatch:
    """The parsed content of one whole file. `records` are typed (Decimal money, aware datetimes in the
    infobase time zone); `bad_rows` = [{"index", "record", "reason"}] for the caller to quarantine."""

    file: ExchangeFile
    file_type: str
    schema_version: str
    exported_at: datetime | None
    header: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    bad_rows: list[dict[str, Any]] = field(default_factory=list)

    def frame(self):
        """The good records as a pandas DataFrame (1C field names as columns)."""
        import pandas as pd

        return pd.DataFrame.from_records(self.records)


def parse_exchange_bytes(name: str, data: bytes, tz: ZoneInfo) -> tuple[str, str, datetime | None, dict, list, list]:
    """(file_type, schema_version, exported_at, header, records, bad_rows) or ExchangeFileRejected."""
    if not data.strip():
        raise ExchangeFileRejected(name, "file is empty")
    try:
        text = decode_bytes(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ExchangeFileRejected(name, f"cannot decode: {exc}") from None
    stripped = text.lstrip()
    if stripped.startswith("<"):
        return _parse_xml(name, stripped, tz)
    if stripped.startswith("{"):
        return _parse_json(name, stripped, tz)
    raise ExchangeFileRejected(name, "neither JSON nor XML")


def _parse_xml(name, text, tz):
    try:
        doc = commerceml.read(commerceml.parse_xml(text))
    except etree.XMLSyntaxError as exc:
        raise ExchangeFileRejected(name, f"broken or truncated XML: {exc}") from None
    except ValueError as exc:
        raise ExchangeFileRejected(name, f"not a CommerceML 2 file: {exc}") from None
    exported = None
    if doc.exported_at:
        try:
            exported = wire.parse_datetime(doc.exported_at[:19], tz)
        except ValueError:
            exported = None
    header = {"format": "CommerceML", **doc.extra}
    return doc.kind, doc.schema_version or "", exported, header, doc.records, doc.bad_rows


def _parse_json(name, text, tz):
    try:
        doc = wire.loads(text)
    except ValueError as exc:
        raise ExchangeFileRejected(name, f"broken or truncated JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ExchangeFileRejected(name, "top level is not an object")
    file_type, version = doc.get("file_type"), doc.get("schema_version")
    if doc.get("format") != FORMAT:
        raise ExchangeFileRejected(name, f"format is {doc.get('format')!r}, expected {FORMAT!r}")
    if file_type not in JSON_TYPES:
        raise ExchangeFileRejected(name, f"unknown file_type {file_type!r} (expected one of {', '.join(JSON_TYPES)})")
    if not isinstance(version, int) or version < 1 or version > SCHEMA_VERSION:
        raise ExchangeFileRejected(name, f"schema_version {version!r} not supported (reader knows 1..{SCHEMA_VERSION})")
    records = doc.get("records")
    if not isinstance(records, list):
        raise ExchangeFileRejected(name, "'records' is missing or not a list")
    if doc.get("record_count") != len(records):
        raise ExchangeFileRejected(
            name, f"record_count {doc.get('record_count')!r} but {len(records)} records: incomplete export"
        )
    try:
        exported = wire.parse_datetime(doc.get("exported_at"), tz)
        if exported is None:
            raise ValueError("empty")
    except (ValueError, TypeError):
        raise ExchangeFileRejected(name, f"exported_at {doc.get('exported_at')!r} is not a date-time") from None
    header = {k: v for k, v in doc.items() if k != "records"}
    if file_type == "receivables":
        try:
            header["as_of"] = wire.parse_datetime(doc.get("as_of"), tz)
        except (ValueError, TypeError):
            header["as_of"] = None
        if header["as_of"] is None:
            raise ExchangeFileRejected(name, "receivables file without a valid as_of")
    good, bad, seen = [], [], {}
    schema, key_fields = SCHEMAS[file_type], _KEYS[file_type]
    for index, record in enumerate(records):
        try:
            row = validate_record(record, schema, tz)
        except ValueError as exc:
            bad.append({"index": index, "record": record, "reason": str(exc)})
            continue
        key = tuple(row.get(k) for k in key_fields)
        if key in seen:
            bad.append({"index": index, "record": record, "reason": f"duplicate key {key} (first at #{seen[key]})"})
            continue
        seen[key] = index
        good.append(row)
    return file_type, str(version), exported, header, good, bad


class ExchangeFolder:
    """One exchange folder: `pending()`, `load(file)`, `claim(file)` (see module doc)."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        timezone: str = "Europe/Moscow",
        min_age_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
    ):
        self.path = Path(path)
        self.tz = ZoneInfo(timezone)
        # A file younger than this may still be being written by 1C (writers should rename into place).
        self.min_age_seconds = min_age_seconds
        self._clock = clock
        for sub in ("processed", "rejected", "duplicates"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"ExchangeFolder({str(self.path)!r})"

    # manifest: content hash -> where and when the file was loaded
    def _manifest(self) -> dict[str, dict]:
        try:
            return json.loads((self.path / MANIFEST).read_text("utf-8"))
        except FileNotFoundError:
            return {}

    def _save_manifest(self, manifest: dict) -> None:
        tmp = self.path / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), "utf-8")
        os.replace(tmp, self.path / MANIFEST)

    def loaded_hashes(self) -> set[str]:
        return set(self._manifest())

    def pending(self) -> list[ExchangeFile]:
        """Files ready to load, oldest first. Already-loaded content is moved to `duplicates/`."""
        manifest = self._manifest()
        out, now = [], self._clock()
        for entry in sorted(self.path.iterdir(), key=lambda p: (p.stat().st_mtime, p.name)):
            if not entry.is_file() or entry.name.startswith(".") or entry.name.lower().endswith(SKIP_SUFFIXES):
                continue
            if entry.suffix.lower() not in (".json", ".xml"):
                continue
            if now - entry.stat().st_mtime < self.min_age_seconds:
                continue
            data = entry.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest in manifest:
                self._move(
                    entry,
                    "duplicates",
                    f"same content (sha256 {digest}) as {manifest[digest]['name']} loaded at "
                    f"{manifest[digest]['loaded_at']}",
                )
                continue
            out.append(ExchangeFile(entry, digest, len(data)))
        return out

    def load(self, file: ExchangeFile) -> ExchangeBatch:
        """Parse a whole file (no moving). Raises ExchangeFileRejected for a corrupt/unknown file."""
        data = file.path.read_bytes()
        if hashlib.sha256(data).hexdigest() != file.sha256:
            raise ExchangeFileRejected(file.name, "file changed after it was listed (still being written?)")
        file_type, version, exported, header, records, bad = parse_exchange_bytes(file.name, data, self.tz)
        return ExchangeBatch(file, file_type, version, exported, header, records, bad)

    @contextlib.contextmanager
    def claim(self, file: ExchangeFile) -> Iterator[ExchangeBatch]:
        """Parse `file` and yield its batch; on a clean exit move it to `processed/` and remember its hash,
        on an exception (parse or the caller's load) move it to `rejected/` with the reason, then re-raise."""
        if file.sha256 in self._manifest():
            raise ExchangeFileRejected(file.name, "already loaded (duplicate content)")
        try:
            batch = self.load(file)
        except ExchangeFileRejected as exc:
            self.reject(file, exc.reason)
            raise
        try:
            yield batch
        except BaseException as exc:
            self.reject(file, f"load failed: {type(exc).__name__}: {exc}")
            raise
        self._move(file.path, "processed", None)
        manifest = self._manifest()
        manifest[file.sha256] = {
            "name": file.name,
            "file_type": batch.file_type,
            "loaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "records": len(batch.records),
            "bad_rows": len(batch.bad_rows),
        }
        self._save_manifest(manifest)

    def reject(self, file: ExchangeFile, reason: str) -> Path:
        return self._move(file.path, "rejected", reason)

    def _move(self, source: Path, sub: str, reason: str | None) -> Path:
        target = self.path / sub / source.name
        if target.exists():  # same name dropped again with other content: keep both
            stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
            target = target.with_name(f"{source.stem}.{stamp}{source.suffix}")
        os.replace(source, target)
        if reason is not None:
            target.with_name(target.name + ".reason.txt").write_text(reason + "\n", "utf-8")
        return target
