"""1C OData wire format: JSON values -> Python, query literals, URLs, error bodies.

Facts (reference onec-odata.md §3, §4.1, §7): Edm.Int64 arrives as a JSON string, Edm.Double as a JSON
number (read as Decimal, never float), the empty ref is the zero GUID and the empty date 0001-01-01T00:00:00,
datetimes are naive local time of the infobase, composites are `X` + `X_Type` strings. 1C reads `+` in a
query string literally, so spaces are `%20`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from lxml import etree

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
EMPTY_DATE = "0001-01-01T00:00:00"
UNDEFINED_TYPE = "StandardODATA.Undefined"

# Characters left readable in a path segment: OData key/function syntax, all legal in a URI path.
_PATH_SAFE = "()',=:$"
# In query values `&`, `=`, `+`, `#` and space must be encoded; keep OData punctuation readable.
_QUERY_SAFE = "$'(),:/*"


def loads(body: bytes | str) -> Any:
    """Parse a JSON answer with exact decimals (parse_float=Decimal)."""
    return json.loads(body, parse_float=Decimal)


# -- values -------------------------------------------------------------------------------------------


def parse_datetime(text: Any, tz: ZoneInfo) -> datetime | None:
    """`2026-03-01T10:00:00` (infobase local) -> aware datetime in `tz`; the empty date -> None."""
    if text is None or text == "" or text == EMPTY_DATE:
        return None
    value = text if isinstance(text, datetime) else datetime.fromisoformat(str(text))
    if value.year == 1:
        return None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)


def parse_guid(text: Any) -> str | None:
    if text is None or text == "" or text == ZERO_GUID:
        return None
    return str(text)


def parse_decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):  # never expected from loads(); keep exact digits of its repr
        return Decimal(repr(value))
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


def parse_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def converter(edm_type: str | None, tz: ZoneInfo):
    """The function reading one wire value of a declared Edm type (unknown type: only empty markers go)."""
    if edm_type in ("Edm.Int64", "Edm.Int32", "Edm.Int16", "Edm.Byte", "Edm.SByte"):
        return parse_int
    if edm_type in ("Edm.Double", "Edm.Decimal", "Edm.Single"):
        return parse_decimal
    if edm_type == "Edm.DateTime":
        return lambda v: parse_datetime(v, tz)
    if edm_type == "Edm.Guid":
        return parse_guid
    if edm_type == "Edm.Boolean":
        return lambda v: v if isinstance(v, bool) or v is None else str(v).lower() == "true"
    return _plain


def parse_value(edm_type: str | None, value: Any, tz: ZoneInfo) -> Any:
    """Convert one wire value by its declared Edm type."""
    return converter(edm_type, tz)(value)


class RowParser:
    """Typed copies of entities of one shape: annotations (`x@odata.*`, `odata.*`) dropped, values converted
    by the declared Edm types, tabular sections parsed by their row types. A composite `X` whose `X_Type`
    is `StandardODATA.Undefined` (or whose value is the zero GUID) becomes None; `X_Type` is kept as sent.
    Converters are chosen once per shape: rows are many, shapes few.
    """

    def __init__(
        self, types: Mapping[str, str], tz: ZoneInfo, row_types: Mapping[str, Mapping[str, str]] | None = None
    ):
        self.tz = tz
        self._convert = {name: converter(edm, tz) for name, edm in types.items()}
        self._sections = {name: RowParser(inner, tz) for name, inner in (row_types or {}).items()}
        self._composites = [(n, f"{n}_Type") for n in types if f"{n}_Type" in types]

    def __call__(self, row: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        convert = self._convert
        for name, value in row.items():
            if "@" in name or name.startswith("odata."):
                continue
            if isinstance(value, list):
                section = self._sections.get(name)
                if section is None:
                    section = self._sections[name] = RowParser({}, self.tz)
                out[name] = [section(r) if isinstance(r, Mapping) else r for r in value]
                continue
            conv = convert.get(name)
            out[name] = conv(value) if conv is not None else _plain(value)
        for name, type_name in self._composites:
            if out.get(type_name) == UNDEFINED_TYPE and name in out:
                out[name] = None
        return out


def _plain(value: Any) -> Any:
    return None if value == ZERO_GUID or value == EMPTY_DATE else value


def parse_row(
    row: Mapping[str, Any],
    types: Mapping[str, str],
    tz: ZoneInfo,
    row_types: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """One entity, typed (see RowParser)."""
    return RowParser(types, tz, row_types)(row)


# -- literals -----------------------------------------------------------------------------------------


def to_local(value: date | datetime, tz: ZoneInfo) -> datetime:
    """A date/datetime as infobase-local naive datetime (naive input is taken as infobase-local)."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time())
    if value.tzinfo is not None:
        value = value.astimezone(tz)
    return value.replace(tzinfo=None, microsecond=0)


def datetime_literal(value: date | datetime, tz: ZoneInfo) -> str:
    """`datetime'yyyy-mm-ddThh:mm:ss'` — 1C rejects date-only literals and time zones."""
    return "datetime'" + to_local(value, tz).strftime("%Y-%m-%dT%H:%M:%S") + "'"


def guid_literal(ref: str) -> str:
    return f"guid'{ref}'"


def string_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# -- URLs ---------------------------------------------------------------------------------------------


def path(*segments: str) -> str:
    """Percent-encode each segment as UTF-8 and join with `/` (an encoded `/` breaks virtual tables)."""
    return "/".join(quote(seg, safe=_PATH_SAFE) for seg in segments)


def query_string(params: Mapping[str, Any]) -> str:
    """`$filter=Date%20ge%20datetime'…'` — never `+` for a space."""
    return "&".join(
        f"{quote(str(k), safe='$')}={quote(str(v), safe=_QUERY_SAFE)}" for k, v in params.items() if v is not None
    )


# -- error bodies ---------------------------------------------------------------------------------

_IIS_STATUS = re.compile(r"HTTP Error (\d{3}\.\d+)")
_TAGS = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"\s+")


def parse_error_body(body: bytes, content_type: str = "") -> tuple[str | None, str]:
    """(code, message) of an error answer: OData JSON/XML, IIS sub-status page or HTML page."""
    text = body.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
    if not text:
        return None, ""
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            err = doc.get("odata.error") or doc.get("error")
            if isinstance(err, dict):
                msg = err.get("message")
                if isinstance(msg, dict):
                    msg = msg.get("value")
                code = err.get("code")
                return (None if code is None else str(code)), _short(str(msg or ""))
            # application-server JSON: exception / descr
            for key in ("descr", "exception", "message"):
                if isinstance(doc.get(key), str):
                    return None, _short(doc[key])
    if text.startswith("<?xml") or text.startswith("<m:error") or "<m:error" in text[:500]:
        try:
            parser = etree.XMLParser(resolve_entities=False, no_network=True)
            root = etree.fromstring(text.encode("utf-8"), parser=parser)
            code = root.findtext("{*}code")
            message = root.findtext("{*}message") or ""
            return code, _short(message)
        except etree.XMLSyntaxError:
            pass
    iis = _IIS_STATUS.search(text)
    if iis:
        return iis.group(1), _short(_html_text(text))
    if "<html" in text[:500].lower() or "<!doctype" in text[:100].lower():
        return None, _short(_html_text(text))
    return None, _short(text)


def _html_text(html: str) -> str:
    html = re.sub(r"(?is)<(script|style)[^>]*>.*?</\1>", " ", html)
    title = re.search(r"(?is)<title>(.*?)</title>", html)
    body = _SPACES.sub(" ", _TAGS.sub(" ", html)).strip()
    if title and title.group(1).strip() and title.group(1).strip() not in body[:200]:
        return f"{title.group(1).strip()}: {body}"
    return body


def _short(text: str, limit: int = 300) -> str:
    text = _SPACES.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
