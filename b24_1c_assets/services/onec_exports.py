"""`POST /v1/onec/exports`: 1C pushes an export over HTTP instead of dropping a file in the exchange folder.

    POST /v1/onec/exports
    Authorization: Basic <any user : B24_1C_ONEC_EXPORT_TOKEN>   (or Bearer <token>)
    Content-Encoding: gzip                                        (optional; a gzip body is also recognised)
    body: a JSON export (docs/exchange-format.md) or CommerceML import.xml / offers.xml,
          UTF-8 (BOM or not) or windows-1251 (with or without an XML declaration)

The body is checked with the exchange folder's own parser (`onec.exchange.parse_exchange_bytes`) before anything
is kept, then staged as a file of the exchange folder (written beside it and renamed in, so the folder never
holds half a body). `exchange_folder_sensor` launches its load like any dropped file; bad rows of a good body
are quarantined by that load with their reasons, and the answer lists them already.

Answers: 202 {"id", "status": "staged", "sha256", "file_type", "records", "bad_rows", ...};
200 {"status": "duplicate", "id": <the earlier one>} for content already staged or loaded (the folder's
SHA-256 rule; kept in `duplicates/`); 400 for a body that is not JSON/XML at all, broken, truncated or not
gzip-decodable; 422 for well-formed content the exchange schema refuses (unknown file_type, record_count
mismatch, ...). A refused body is kept in `rejected/` with a `.reason.txt`, as the folder does.
`GET /v1/onec/exports/{id}` says where an export is now: staged, loaded, rejected (with the reason) or
duplicate.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import zlib
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from lxml import etree
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from b24_1c_assets.onec import commerceml
from b24_1c_assets.onec.errors import ExchangeFileRejected
from b24_1c_assets.onec.exchange import ExchangeFolder, decode_bytes, parse_exchange_bytes
from b24_1c_assets.services.http import JSON, credential, error, token_matches

PATH = "/v1/onec/exports"
PREFIX = "http-"
_ID = re.compile(r"^http-\d{8}T\d{6}\d{6}-[0-9a-f]{12}$")
MAX_REASONS = 20


class Inbox:
    """Stages checked exports into one exchange folder; one process writes it (the service)."""

    def __init__(self, folder: str | os.PathLike, tz: str, max_bytes: int):
        self.folder = ExchangeFolder(folder, timezone=tz)
        self.path = self.folder.path
        self.tz = ZoneInfo(tz)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # duplicate check and staging are one step
        self._hashes: dict[tuple[str, int, int], str] = {}  # (name, size, mtime_ns) -> sha256 of waiting files

    def receive(self, body: bytes, content_encoding: str | None) -> JSON:
        try:
            data = self._gunzip(body, content_encoding)
        except ValueError as exc:
            return error(400, str(exc))
        digest = hashlib.sha256(data).hexdigest()
        export_id = f"{PREFIX}{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{digest[:12]}"
        try:
            file_type, version, exported, header, records, bad = parse_exchange_bytes(export_id, data, self.tz)
        except ExchangeFileRejected as exc:
            status = 422 if _well_formed(data) else 400
            kept = self._keep(data, export_id, _suffix(data), "rejected", exc.reason)
            return error(status, exc.reason, id=export_id, kept_as=kept)
        name = f"{export_id}{'.xml' if file_type in ('catalog', 'offers') else '.json'}"
        with self._lock:
            earlier = self._earlier(digest)
            if earlier is not None:
                where, earlier_name = earlier
                reason = f"same content (sha256 {digest}) as {earlier_name} ({where})"
                kept = self._keep(data, export_id, Path(name).suffix, "duplicates", reason)
                return JSON(
                    {
                        "status": "duplicate",
                        "id": Path(earlier_name).stem,
                        "duplicate_id": export_id,
                        "sha256": digest,
                        "earlier": where,
                        "kept_as": kept,
                    }
                )
            self._stage(data, name)
        return JSON(
            {
                "status": "staged",
                "id": export_id,
                "sha256": digest,
                "file_type": file_type,
                "schema_version": version,
                "exported_at": exported,
                "records": len(records),
                "bad_rows": len(bad),
                "bad_row_reasons": [f"#{b['index']}: {b['reason']}" for b in bad[:MAX_REASONS]],
            },
            status_code=202,
        )

    def _gunzip(self, body: bytes, content_encoding: str | None) -> bytes:
        encoding = (content_encoding or "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip"):
            raise ValueError(f"Content-Encoding {encoding!r} not supported (gzip or none)")
        if encoding == "identity" and not body.startswith(b"\x1f\x8b"):
            return body
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(body, self.max_bytes + 1)
        except zlib.error as exc:
            raise ValueError(f"body is not valid gzip: {exc}") from None
        if len(data) > self.max_bytes:
            raise ValueError(f"body over {self.max_bytes} bytes once decompressed")
        if not inflater.eof:
            raise ValueError("gzip body is truncated")
        return data

    def _earlier(self, digest: str) -> tuple[str, str] | None:
        """Where the same content already is: ("loaded", name) from the manifest, or ("waiting", name)."""
        manifest = self.folder._manifest()  # noqa: SLF001 - the folder's own duplicate record
        if digest in manifest:
            return "loaded", manifest[digest]["name"]
        seen = {}
        for entry in self.path.iterdir():
            if not entry.is_file() or entry.name.startswith(".") or entry.suffix.lower() not in (".json", ".xml"):
                continue
            stat = entry.stat()
            key = (entry.name, stat.st_size, stat.st_mtime_ns)
            seen[key] = self._hashes.get(key) or hashlib.sha256(entry.read_bytes()).hexdigest()
            if seen[key] == digest:
                self._hashes.update(seen)
                return "waiting to load", entry.name
        self._hashes = seen
        return None

    def _stage(self, data: bytes, name: str) -> None:
        """Write beside the folder's listing (a dot file), fsync, rename in: the sensor sees all or nothing."""
        tmp = self.path / f".{name}.part"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path / name)

    def _keep(self, data: bytes, export_id: str, suffix: str, sub: str, reason: str) -> str:
        target = self.path / sub / f"{export_id}{suffix}"
        tmp = target.with_name(f".{target.name}.part")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        target.with_name(target.name + ".reason.txt").write_text(reason + "\n", "utf-8")
        return f"{sub}/{target.name}"

    def status(self, export_id: str) -> dict | None:
        """Where export `export_id` is now."""
        for sub, state in (
            ("", "staged"),
            ("processed", "loaded"),
            ("rejected", "rejected"),
            ("duplicates", "duplicate"),
        ):
            for suffix in (".json", ".xml", ".bin"):
                found = self.path / sub / f"{export_id}{suffix}"
                if found.exists():
                    answer = {"id": export_id, "status": state}
                    reason = found.with_name(found.name + ".reason.txt")
                    if reason.exists():
                        answer["reason"] = reason.read_text("utf-8").strip()
                    return answer
        return None


def _suffix(data: bytes) -> str:
    head = data.lstrip()[:1]
    return ".xml" if head == b"<" else ".json" if head == b"{" else ".bin"


def _well_formed(data: bytes) -> bool:
    """Is the body syntactically JSON or XML (so the schema, not the syntax, refused it)?"""
    try:
        text = decode_bytes(data).lstrip()
    except (UnicodeDecodeError, ValueError):
        return False
    try:
        if text.startswith("{"):
            json.loads(text)
            return True
        if text.startswith("<"):
            commerceml.parse_xml(text)
            return True
    except (ValueError, etree.XMLSyntaxError):
        return False
    return False


def _authorized(request: Request) -> JSON | None:
    config = request.app.state.config
    if not config.onec_export_token:
        return error(503, "1C exports are not configured (B24_1C_ONEC_EXPORT_TOKEN)")
    if not token_matches(credential(request.headers.get("authorization")), config.onec_export_token):
        return error(
            401,
            "a valid token is required (HTTP Basic password or Bearer)",
            headers={"WWW-Authenticate": 'Basic realm="b24-1c", charset="UTF-8"'},
        )
    return None


async def receive_export(request: Request) -> JSON:
    refused = _authorized(request)
    if refused is not None:
        return refused
    body = await request.body()
    inbox: Inbox = request.app.state.inbox
    # parsing a large export is CPU and disk work: off the event loop
    return await run_in_threadpool(inbox.receive, body, request.headers.get("content-encoding"))


def export_status(request: Request) -> JSON:
    refused = _authorized(request)
    if refused is not None:
        return refused
    export_id = request.path_params["export_id"]
    if not _ID.match(export_id):
        return error(400, "not an export id")
    found = request.app.state.inbox.status(export_id)
    return JSON(found) if found else error(404, f"no export {export_id}")
