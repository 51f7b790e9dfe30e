"""Sandbox 1C:UNF base speaking 1C's standard OData (`/unf/odata/standard.odata`) over loopback HTTP.

Behaviour follows reference onec-odata.md (§15 checklist), including the quirks a real client must survive:
Atom unless JSON is asked for, Int64 as JSON strings, no next link, unstable order without `$orderby`,
`$inlinecount` that ignores `$skip`/`$top`, a literal `+` in the query string, 500s for `Ref_Key gt guid'…'`
and for filters on `Balance` resources, 404.15 past the IIS query-string limit, a slow first request.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import random
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from b24_1c_assets.sandbox.faults import Faults
from b24_1c_assets.sandbox.onec_filter import (
    WHERE_NOT_ALLOWED,
    Node,
    ODataError,
    Scope,
    bounds,
    compile_filter,
    equals,
    lambda_bounds,
    parse_datetime_literal,
    parse_guid_literal,
    syntax_error,
)
from b24_1c_assets.sandbox.onec_profiles import DEFAULT_PROFILE, Profile, get_profile
from b24_1c_assets.sandbox.onec_schema import (
    BALANCE_SUFFIXES,
    CONTRACT,
    COUNTRIES,
    CP,
    DEFAULT_CONTRACTS,
    EMPTY_DATE,
    EMPTY_GUID,
    NS,
    ORDER_KINDS,
    ORDER_REQUIRED_HEADER,
    SETTLEMENTS,
    EntitySet,
    Prop,
    dimension_props,
    metadata_xml,
    sets_for,
    virtual_props,
    virtual_tables,
)
from b24_1c_assets.sandbox.onec_seed import OneCState, RegisterStore, data_version, next_data_version, seed
from b24_1c_assets.sandbox.world import World

BASE_PATH = "/unf/odata/standard.odata"
ORDER = "Document_ЗаказПокупателя"
INTERNAL = "Произошла внутренняя ошибка OData сервиса. Дополнительные сведения можно найти в технологическом журнале."
KNOWN_OPTIONS = {
    "$filter",
    "$select",
    "$orderby",
    "$top",
    "$skip",
    "$inlinecount",
    "$format",
    "$expand",
    "$allowedOnly",
    "$count",
}
FUNCTION_PARAMS = {
    "Period",
    "Condition",
    "Dimensions",
    "StartPeriod",
    "EndPeriod",
    "PostingModeOperational",
    "allowedOnly",
}
ATOM_NS = (
    'xmlns="http://www.w3.org/2005/Atom" '
    'xmlns:d="http://schemas.microsoft.com/ado/2007/08/dataservices" '
    'xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"'
)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json;charset=utf-8"
    headers: dict = field(default_factory=dict)
    error: str | None = None  # 1C error code for the request log
    drop: bool = False


def _json_default(value):
    if isinstance(value, Decimal):
        return float(value)  # Edm.Double travels as a JSON number
    raise TypeError(type(value).__name__)


def _not_found_segment(name: str) -> ODataError:
    return ODataError(404, "6", f"Сегмент пути '{name}' не найден!")


def _split_params(text: str) -> dict[str, str]:
    """`a=guid'…',b='x,y'` -> raw literal texts by name (commas inside quotes kept, '' = quote)."""
    out, buf, name, in_str, i = {}, "", None, False, 0
    while i < len(text):
        c = text[i]
        if c == "'":
            in_str = not in_str
            buf += c
        elif c == "=" and not in_str and name is None:
            name, buf = buf.strip(), ""
        elif c == "," and not in_str:
            if name is not None:
                out[name] = buf.strip()
            name, buf = None, ""
        else:
            buf += c
        i += 1
    if name is not None:
        out[name] = buf.strip()
    elif buf.strip():
        out[""] = buf.strip()
    return out


def _literal(raw: str):
    """A URL literal: guid'…', datetime'…', '…' (doubled quotes), number, true/false."""
    if raw.startswith("guid'") and raw.endswith("'"):
        return parse_guid_literal(raw[5:-1])
    if raw.startswith("datetime'") and raw.endswith("'"):
        return parse_datetime_literal(raw[9:-1])
    if len(raw) >= 2 and raw[0] == "'" and raw[-1] == "'":
        return raw[1:-1].replace("''", "'")
    if raw in ("true", "false"):
        return raw == "true"
    if re.fullmatch(r"-?\d+(\.\d+)?", raw):
        return Decimal(raw)
    raise ODataError(400, "1", f"Не удалось разобрать строку '{raw}'")


class OneCService:
    """The OData protocol over a `OneCState`, independent of the HTTP server (one lock for all data)."""

    def __init__(
        self,
        state: OneCState,
        odata_url: str,
        *,
        published: list[str],
        shuffle_unordered: bool,
        enforce_if_match: bool,
        inlinecount_ignores_paging: bool = True,
        rng_seed: int = 0,
        profile: str | Profile = DEFAULT_PROFILE,
        use_order_kinds: bool = False,
    ):
        self.profile = get_profile(profile)
        self.use_order_kinds = use_order_kinds  # the ИспользоватьВидыЗаказовПокупателей option
        self.sets = sets_for(self.profile.name)
        self.state = state
        self.odata_url = odata_url
        self.published = published
        self.published_set = set(published)
        self.shuffle_unordered = shuffle_unordered
        self.enforce_if_match = enforce_if_match
        self.inlinecount_ignores_paging = inlinecount_ignores_paging
        self.rng = random.Random(rng_seed)
        self.lock = threading.RLock()
        self._metadata: bytes | None = None
        self._codes: dict[str, tuple[int, set]] = {}
        self._date_index: dict[str, tuple[int, list[str], list[dict]]] = {}

    # -- entry point -----------------------------------------------------------------------------
    def handle(self, method: str, resource: str, query: dict[str, str], headers, body: bytes) -> Reply:
        as_json = self._wants_json(query, headers)
        try:
            with self.lock:
                return self._dispatch(method, resource, query, headers, body, as_json)
        except ODataError as e:
            return self._error(e, as_json)

    def _wants_json(self, query, headers) -> bool:
        fmt = query.get("$format", "")
        if fmt:
            return "json" in fmt.lower()
        return "application/json" in (headers.get("Accept") or "")

    def _error(self, e: ODataError, as_json: bool) -> Reply:
        if as_json:
            body = json.dumps(
                {"odata.error": {"code": e.code, "message": {"lang": "ru", "value": e.message}}}, ensure_ascii=False
            ).encode()
            return Reply(e.status, body, error=e.code)
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<m:error xmlns:m="http://schemas.microsoft.com/ado/'
            f'2007/08/dataservices/metadata"><m:code>{escape(e.code)}</m:code>'
            f"<m:message>{escape(e.message)}</m:message></m:error>"
        )
        return Reply(e.status, xml.encode(), "application/xml;charset=utf-8", error=e.code)

    def _dispatch(self, method, resource, query, headers, body, as_json) -> Reply:
        for k in query:
            if k.startswith("$") and k not in KNOWN_OPTIONS:
                raise syntax_error(f"неизвестная опция запроса '{k}'")
        segments = [s for s in resource.split("/") if s != ""]
        if not segments:
            return self._service_document(as_json)
        if segments == ["$metadata"]:
            if self._metadata is None:
                self._metadata = metadata_xml(self.published, self.sets).encode()
            return Reply(200, self._metadata, "application/xml;charset=utf-8")
        m = re.fullmatch(r"([^()]+)(?:\((.*)\))?", segments[0], re.S)
        if not m:
            raise _not_found_segment(segments[0])
        name, key_text = m.group(1), m.group(2)
        if name not in self.published_set:
            raise _not_found_segment(name)
        es = self.sets[name]
        expand = [x.strip() for x in query.get("$expand", "").split(",") if x.strip()]
        if any(x.split("/")[0] in es.tabular for x in expand):
            raise ODataError(501, "0", "Возможность не поддерживается")  # live: $expand of a tabular section
        rest = segments[1:]
        if method == "GET":
            if key_text is None and not rest:
                return self._read_collection(es, self._collection(es, query), query, as_json)
            if key_text is None and rest == ["$count"]:
                items = self._filtered(es, self._collection(es, query), query)
                return Reply(200, str(len(items)).encode(), "text/plain;charset=utf-8")
            if key_text is None and len(rest) == 1:
                return self._virtual_table(es, rest[0], query, as_json)
            if key_text is not None and not rest:
                rec = self._find(es, key_text)
                return self._read_entity(es, rec, query, as_json)
            raise _not_found_segment("/".join(rest))
        if method == "POST":
            if key_text is None and not rest:
                return self._create(es, self._parse_body(body), as_json)
            if key_text is not None and rest in (["Post"], ["Unpost"]):
                return self._post_document(es, key_text, rest[0] == "Post")
            raise ODataError(405, "19", "Использованный HTTP-метод запрещен в данном контексте")
        if method in ("PATCH", "PUT", "MERGE") and key_text is not None and not rest:
            return self._update(es, key_text, self._parse_body(body), headers, as_json, replace=method == "PUT")
        if method == "DELETE" and key_text is not None and not rest:
            return self._delete(es, key_text)
        raise ODataError(405, "19", "Использованный HTTP-метод запрещен в данном контексте")

    # -- service document ------------------------------------------------------------------------
    def _service_document(self, as_json: bool) -> Reply:
        if as_json:
            doc = {
                "odata.metadata": f"{self.odata_url}/$metadata",
                "value": [{"name": n, "url": n} for n in self.published],
            }
            return Reply(200, json.dumps(doc, ensure_ascii=False).encode())
        cols = "".join(
            f'<collection href="{escape(n)}"><atom:title>{escape(n)}</atom:title></collection>' for n in self.published
        )
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<service xmlns="http://www.w3.org/2007/app" '
            f'xmlns:atom="http://www.w3.org/2005/Atom" xml:base="{escape(self.odata_url)}/">'
            f"<workspace><atom:title>Default</atom:title>{cols}</workspace></service>"
        )
        return Reply(200, xml.encode(), "application/xml;charset=utf-8")

    # -- collections -----------------------------------------------------------------------------
    def _collection(self, es: EntitySet, query) -> list[dict]:
        """All items of a set (before $filter), narrowed by an index when the filter bounds Date/Period."""
        st = self.state
        flt = self._compile(es, query.get("$filter"))
        if es.is_object:
            objects = st.objects.get(es.name, {})
            rng = bounds(flt, "Date") if flt is not None and es.kind == "document" else None
            if rng:
                return self._date_window(es.name, objects, rng)
            return list(objects.values())
        if es.kind == "tabular":
            owner = self.sets[es.register]  # type: ignore[index]
            section = es.section  # type: ignore[attr-defined]
            return [
                {"Ref_Key": ref, **row}
                for ref, rec in st.objects.get(owner.name, {}).items()
                for row in rec.get(section, [])
            ]
        if es.kind == "register_row":
            store = st.registers[es.register]  # type: ignore[index]
            return list(self._register_rows(es, store, flt))
        if es.kind == "records":
            store = st.registers[es.register]  # type: ignore[index]
            rng = lambda_bounds(flt, "RecordSet", "Period") if flt is not None else None
            recorders = store.by_recorder.keys()
            if rng:
                recorders = dict.fromkeys(r["Recorder"] for r in store.window(*rng)).keys()
            return [self._record_set(store, r) for r in recorders]
        if es.kind == "info_register":
            return list(st.info_register(es.name))
        return []

    @staticmethod
    def _register_rows(
        rows_es: EntitySet, store: RegisterStore, flt: Node | None, window: tuple | None = None
    ) -> list[dict]:
        """Movements a filter can touch, via the store's indexes: one counterparty/contract
        (`X_Key eq guid'…'`) and/or a Period window (from the filter, else `window`). The caller still
        applies the whole filter."""
        rng = window if window is not None and (window[0] is not None or window[2] is not None) else None
        if rng is None and flt is not None:
            rng = bounds(flt, "Period")  # only narrows: the caller applies the filter itself
        for dim in ("Контрагент_Key", "Договор_Key"):
            value = equals(flt, dim) if flt is not None and rows_es.prop(dim) is not None else None
            if isinstance(value, str):
                rows = store.with_value(dim, value)
                if rng:
                    lo, lo_inc, hi, hi_inc = rng
                    rows = [
                        r
                        for r in rows
                        if (lo is None or (r["Period"] >= lo if lo_inc else r["Period"] > lo))
                        and (hi is None or (r["Period"] <= hi if hi_inc else r["Period"] < hi))
                    ]
                return rows
        return store.window(*rng) if rng else store.by_period()[1]

    def _record_set(self, store: RegisterStore, recorder: str) -> dict:
        rows = store.by_recorder[recorder]
        return {"Recorder": recorder, "Recorder_Type": rows[0]["Recorder_Type"], "RecordSet": rows}

    def _date_window(self, set_name, objects, rng) -> list[dict]:
        version = self.state.versions.get(set_name, 0)
        cached = self._date_index.get(set_name)
        if cached is None or cached[0] != version:
            recs = sorted(objects.values(), key=lambda r: r["Date"])
            cached = (version, [r["Date"] for r in recs], recs)
            self._date_index[set_name] = cached
        _, dates, recs = cached
        lo, lo_inc, hi, hi_inc = rng
        start = 0 if lo is None else (bisect.bisect_left if lo_inc else bisect.bisect_right)(dates, lo)
        end = len(recs) if hi is None else (bisect.bisect_right if hi_inc else bisect.bisect_left)(dates, hi)
        return recs[start:end]

    def _resolve(self, set_name: str, ref_key) -> dict | None:
        if not isinstance(ref_key, str):
            return None
        return self.state.objects.get(set_name, {}).get(ref_key)

    def _scope(self, set_name: str) -> Scope | None:
        es = self.sets.get(set_name)
        return Scope.of(es) if es is not None and set_name in self.published_set else None

    def _compile(self, es: EntitySet, text: str | None, scope: Scope | None = None) -> Node | None:
        if text is None or text.strip() == "":
            return None
        return compile_filter(text, es, self._resolve, self._scope, scope)

    def _filtered(self, es, items, query, scope: Scope | None = None) -> list[dict]:
        node = self._compile(es, query.get("$filter"), scope)
        if node is None:
            return items
        fn = node.fn
        return [r for r in items if fn(r, {})]

    def _page(self, es, items, query, *, orderable=True, scope: Scope | None = None) -> tuple[list[dict], int | None]:
        """$filter, $inlinecount, $orderby (or shuffle), $skip then $top."""
        items = self._filtered(es, items, query, scope)
        inline = query.get("$inlinecount")
        if inline not in (None, "allpages", "none"):
            raise syntax_error(f"неверное значение $inlinecount '{inline}'")
        count = len(items) if inline == "allpages" else None
        order = query.get("$orderby")
        if order and orderable:
            items = self._ordered(es, items, order, scope)
        elif self.shuffle_unordered and orderable and len(items) > 1:
            items = list(items)
            self.rng.shuffle(items)  # 1C gives no stable order without $orderby
        skip, top = self._int_option(query, "$skip"), self._int_option(query, "$top")
        if count is None or not self.inlinecount_ignores_paging:  # per the doc, $inlinecount ignores them
            if skip:
                items = items[skip:]
            if top is not None:
                items = items[:top]
        return items, count

    @staticmethod
    def _int_option(query, name) -> int | None:
        raw = query.get(name)
        if raw is None:
            return None
        if not raw.strip().isdigit():
            raise syntax_error(f"неверное значение {name} '{raw}'")
        return int(raw)

    def _presentation(self, set_name: str, rec: dict | None):
        if rec is None:
            return ("",)
        if self.sets[set_name].kind == "document":
            return (rec.get("Date", ""), rec.get("Number", ""))
        return (rec.get("Description", ""), rec.get("Code", ""))

    def _ordered(self, es, items, order: str, scope: Scope | None) -> list[dict]:
        scope = scope or Scope.of(es)
        keys = []
        for part in order.split(","):
            words = part.strip().split()
            if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
                raise syntax_error(f"неверное выражение $orderby '{part.strip()}'")
            keys.append((words[0], len(words) == 2 and words[1] == "desc"))
        items = list(items)
        for path, desc in reversed(keys):
            items.sort(key=self._sort_key(es, scope, path), reverse=desc)
        return items

    def _sort_key(self, es, scope: Scope, path: str):
        names = path.split("/")
        getters = []
        cur_scope = scope
        for i, name in enumerate(names):
            last = i == len(names) - 1
            nav = cur_scope.props.get(f"{name}_Key")
            if not last and nav is not None and nav.target and self.sets.get(nav.target):
                getters.append(lambda r, k=f"{name}_Key", t=nav.target: self._resolve(t, r.get(k)) if r else None)
                cur_scope = Scope.of(self.sets[nav.target])
                continue
            prop = cur_scope.props.get(name)
            if not last or prop is None:
                raise _not_found_segment(name)
            if name == "Ref_Key" and cur_scope.es_name in self.sets and self.sets[cur_scope.es_name].is_object:
                target = cur_scope.es_name  # by reference = by presentation, not by GUID
            else:
                target = prop.target if prop.target in self.sets else None

            def key(r, name=name, target=target, empty=prop.empty):
                for g in getters:
                    r = g(r)
                v = None if r is None else r.get(name, empty)
                if target:
                    return self._presentation(target, self._resolve(target, v))
                if v is None:
                    return (0, "")
                return (1, v)

            return key
        raise _not_found_segment(path)

    # -- projection and rendering ----------------------------------------------------------------
    def _selection(self, es: EntitySet, props: list[Prop], tabular: dict[str, list[Prop]], query):
        """-> (fields, sections {name: columns or None}, presentations)."""
        raw = query.get("$select")
        if raw is None or raw.strip() == "":
            return [p.name for p in props], {s: None for s in tabular}, []
        fields, sections, presentations = [], {}, []
        names = {p.name for p in props}
        for item in (x.strip() for x in raw.split(",")):
            if item == "*":
                fields += [p.name for p in props]
                sections.update({s: None for s in tabular})
            elif item == "**":
                fields += [p.name for p in props]
            elif item in names:
                fields.append(item)
            elif item in tabular:
                sections[item] = None
            elif "/" in item and item.split("/", 1)[0] in tabular:
                section, col = item.split("/", 1)
                if col not in {p.name for p in tabular[section]}:
                    raise _bad_select(col)
                if sections.get(section, []) is not None:
                    sections.setdefault(section, []).append(col)
            elif item == "Presentation" and es.is_object:
                presentations.append("")  # the object's own presentation
            elif item.endswith("____Presentation"):
                base = item[: -len("____Presentation")]
                if base == "*":
                    presentations += [p.name[:-4] for p in props if p.target] + [
                        p.name for p in props if f"{p.name}_Type" in names
                    ]
                elif f"{base}_Key" in names or f"{base}_Type" in names:
                    presentations.append(base)
                else:
                    raise _bad_select(item)
            else:
                raise _bad_select(item)
        wanted = set(fields)
        return [p.name for p in props if p.name in wanted], sections, presentations

    @staticmethod
    def _own_presentation(es: EntitySet, rec: dict | None) -> str:
        if rec is None:
            return ""
        if es.kind == "document":
            return f"{rec.get('Number', '')} от {rec.get('Date', '')}"
        return rec.get("Description", "")

    def _present(self, rec: dict, base: str, props: dict[str, Prop]) -> str:
        key = props.get(f"{base}_Key")
        if key is not None and key.target:
            target = self._resolve(key.target, rec.get(key.name))
        elif f"{base}_Type" in props:
            tname = (rec.get(f"{base}_Type") or "").removeprefix(f"{NS}.")
            target = self._resolve(tname, rec.get(base)) if tname in self.sets else None
            key = Prop(base, "Edm.String", target=tname)
        else:
            return ""
        return self._own_presentation(self.sets[key.target], target)

    def _project(self, es, rec, props_by_name, fields, sections, presentations, tabular, strip=()) -> dict:
        out = {}
        for name in fields:
            prop = props_by_name[name]
            v = rec.get(name, prop.empty)  # seeded objects store filled properties only
            if prop.edm == "Edm.Int64" and v is not None:
                v = str(v)
            out[name] = v
        for section, cols in sections.items():
            row_props = tabular[section]
            row_out = []
            for row in rec.get(section, []):
                r = {}
                for p in row_props:
                    if p.name in strip or (cols is not None and p.name not in cols and p.name != "LineNumber"):
                        continue
                    v = row.get(p.name, p.empty)
                    r[p.name] = str(v) if p.edm == "Edm.Int64" and v is not None else v
                row_out.append(r)
            out[section] = row_out
        for base in presentations:
            if base == "":
                out["Presentation"] = self._own_presentation(es, rec)
            else:
                out[f"{base}____Presentation"] = self._present(rec, base, props_by_name)
        return out

    def _render_rows(self, es: EntitySet, items, query, props=None, tabular=None):
        props = props if props is not None else es.props
        tabular = tabular if tabular is not None else es.tabular
        by_name = {p.name: p for p in props}
        fields, sections, presentations = self._selection(es, props, tabular, query)
        strip = ("Recorder", "Recorder_Type") if es.kind == "records" else ()
        return [self._project(es, r, by_name, fields, sections, presentations, tabular, strip) for r in items]

    def _read_collection(
        self, es: EntitySet, items, query, as_json, *, props=None, type_name=None, scope=None, orderable=True
    ) -> Reply:
        if es.kind == "records":
            orderable_here = False  # record sets ignore $orderby (even an unknown field)
            items, count = self._page(
                es, items, {k: v for k, v in query.items() if k != "$orderby"}, orderable=orderable_here, scope=scope
            )
        else:
            items, count = self._page(es, items, query, orderable=orderable, scope=scope)
        rows = self._render_rows(es, items, query, props)
        type_name = type_name or es.name
        if as_json:
            doc = {"odata.metadata": f"{self.odata_url}/$metadata#{type_name}"}
            if count is not None:
                doc["odata.count"] = str(count)
            doc["value"] = rows
            if "nometadata" in query.get("$format", ""):
                doc.pop("odata.metadata")
            return Reply(200, json.dumps(doc, ensure_ascii=False, default=_json_default).encode())
        return Reply(
            200,
            self._atom_feed(type_name, rows, count, props or es.props, es),
            "application/atom+xml;type=feed;charset=utf-8",
        )

    def _read_entity(self, es, rec, query, as_json) -> Reply:
        row = self._render_rows(es, [rec], query)[0]
        if as_json:
            doc = {"odata.metadata": f"{self.odata_url}/$metadata#{es.name}/@Element", **row}
            return Reply(200, json.dumps(doc, ensure_ascii=False, default=_json_default).encode())
        xml = '<?xml version="1.0" encoding="UTF-8"?>\n' + self._atom_entry(es, row, es.props, root=True)
        return Reply(200, xml.encode(), "application/atom+xml;type=entry;charset=utf-8")

    # -- Atom --------------------------------------------------------------------------------------
    def _atom_value(self, name, value, edm) -> str:
        if value is None:
            return f'<d:{name} m:type="{edm}" m:null="true"/>'
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list):
            inner = "".join(
                "<d:element>"
                + "".join(self._atom_value(k, v, self._edm_of(v)) for k, v in row.items())
                + "</d:element>"
                for row in value
            )
            return f'<d:{name} m:type="{escape(edm)}">{inner}</d:{name}>'
        else:
            text = escape(str(value))
        return f'<d:{name} m:type="{edm}">{text}</d:{name}>' if edm != "Edm.String" else f"<d:{name}>{text}</d:{name}>"

    @staticmethod
    def _edm_of(v) -> str:
        if isinstance(v, bool):
            return "Edm.Boolean"
        if isinstance(v, Decimal):
            return "Edm.Double"
        return "Edm.String"

    def _atom_entry(self, es, row, props, root=False) -> str:
        by_name = {p.name: p for p in props}
        parts = []
        for k, v in row.items():
            p = by_name.get(k)
            edm = p.edm if p else (f"Collection({NS}.{es.name}_{k}_RowType)" if isinstance(v, list) else "Edm.String")
            parts.append(self._atom_value(k, v, edm))
        key = row.get("Ref_Key") or row.get("Recorder") or ""
        ident = f"{self.odata_url}/{es.name}(guid'{key}')" if key else f"{self.odata_url}/{es.name}"
        ns = f" {ATOM_NS}" if root else ""
        return (
            f"<entry{ns}><id>{escape(ident)}</id>"
            f'<category term="{NS}.{escape(es.name)}" '
            'scheme="http://schemas.microsoft.com/ado/2007/08/dataservices/scheme"/>'
            f'<title type="text"/><updated>{_now_iso()}</updated><author/>'
            f'<content type="application/xml"><m:properties>{"".join(parts)}</m:properties></content></entry>'
        )

    def _atom_feed(self, type_name, rows, count, props, es) -> bytes:
        entries = "".join(self._atom_entry(es, r, props) for r in rows)
        count_xml = f"<m:count>{count}</m:count>" if count is not None else ""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<feed {ATOM_NS} xml:base="{escape(self.odata_url)}/">'
            f"<id>{escape(self.odata_url)}/{escape(type_name)}</id>"
            f'<title type="text">{escape(type_name)}</title><updated>{_now_iso()}</updated><author/>'
            f"{count_xml}{entries}</feed>"
        ).encode()

    # -- keys --------------------------------------------------------------------------------------
    def _find(self, es: EntitySet, key_text: str) -> dict:
        if es.is_object:
            raw = key_text.strip()
            if raw.startswith("Ref_Key="):
                raw = raw[len("Ref_Key=") :]
            if not (raw.startswith("guid'") and raw.endswith("'")):
                raise ODataError(400, "7", "Не хватает элемента ключа сущности")
            ref = parse_guid_literal(raw[5:-1])
            rec = self.state.objects.get(es.name, {}).get(ref)
            if rec is None:
                raise ODataError(404, "9", f'Экземпляр сущности "{es.name}" не найден по переданному ключу.')
            return rec
        params = {k: _literal(v) for k, v in _split_params(key_text).items()}
        if es.kind == "records":
            store = self.state.registers[es.register]  # type: ignore[index]
            recorder = params.get("Recorder") or params.get("Recorder_Key") or params.get("")
            if isinstance(recorder, str) and recorder.lower() in store.by_recorder:
                return self._record_set(store, recorder.lower())
        elif es.kind == "info_register":
            for rec in self.state.info_register(es.name):
                if all(rec.get(k) == v for k, v in params.items()):
                    return rec
        raise ODataError(404, "9", f'Экземпляр сущности "{es.name}" не найден по переданному ключу.')

    # -- virtual tables ----------------------------------------------------------------------------
    def _virtual_table(self, es: EntitySet, segment: str, query, as_json) -> Reply:
        m = re.fullmatch(r"(\w+)(?:\((.*)\))?", segment, re.S)
        if not m:
            raise _not_found_segment(segment)
        fn, raw_params = m.group(1), m.group(2) or ""
        params = {k: v for k, v in query.items() if k in FUNCTION_PARAMS}
        params.update(_split_params(raw_params))
        params = {k: _literal(v) if k != "" else v for k, v in params.items() if k}
        if es.kind == "records" and fn in {t[0] for t in virtual_tables(es)}:
            return self._register_totals(es, fn, params, query, as_json)
        if es.kind == "info_register" and fn in ("SliceLast", "SliceFirst"):
            return self._slice(es, fn == "SliceLast", params, query, as_json)
        raise ODataError(400, "11", f"Метод не найден: '{fn}'")

    def _register_totals(self, es, fn, params, query, as_json) -> Reply:
        rows_es = self.sets[f"{es.name}_RecordType"]
        store = self.state.registers[es.register]  # type: ignore[index]
        dims = list(rows_es.dimensions)
        if isinstance(params.get("Dimensions"), str) and params["Dimensions"].strip():
            wanted = [d.strip() for d in params["Dimensions"].split(",")]
            unknown = [d for d in wanted if d not in dims]
            if unknown:
                raise ODataError(400, "4", f"Неверное значение параметра Dimensions: '{unknown[0]}'")
            dims = [d for d in dims if d in wanted]
        if fn == "Balance":  # a balance at an instant excludes movements at that instant
            period = params.get("Period")
            window = (None, True, period if isinstance(period, str) else None, False)
            suffixes, type_name = BALANCE_SUFFIXES, f"{es.name}_Balance"
        else:
            start, end = params.get("StartPeriod"), params.get("EndPeriod")
            window = (start if isinstance(start, str) else None, True, end if isinstance(end, str) else None, True)
            suffixes = next(t[2] for t in virtual_tables(es) if t[0] == fn)
            type_name = f"{es.name}_Turnover"
        turnover_register = es.register_kind == "turnovers"  # no RecordType: every movement adds
        cond = params.get("Condition")
        node = self._compile(rows_es, cond) if isinstance(cond, str) else None
        rows = self._register_rows(rows_es, store, node, window)
        if node is not None:
            rows = [r for r in rows if node.fn(r, {})]
        dim_fields = [f for d in dims for f in dimension_props(rows_es, d)]
        resources = rows_es.resources
        # Receipts and expenses summed per dimension tuple: the hot loop of Balance at 1M movements.
        receipts: dict[tuple, list[Decimal]] = {}
        expenses: dict[tuple, list[Decimal]] = {}
        zeros = [Decimal(0)] * len(resources)
        for r in rows:
            if not r.get("Active", True):
                continue
            k = tuple([r.get(f) for f in dim_fields])
            side = receipts if turnover_register or r["RecordType"] == "Receipt" else expenses
            acc = side.get(k)
            if acc is None:
                acc = side[k] = list(zeros)
            for i, res in enumerate(resources):
                acc[i] += r.get(res) or 0
        groups = {k: receipts.get(k, zeros) + expenses.get(k, zeros) for k in {**receipts, **expenses}}
        result = []
        n = len(resources)
        for k, acc in groups.items():
            rec = dict(zip(dim_fields, k))
            if fn == "Balance":
                values = [acc[i] - acc[n + i] for i in range(n)]
                if not any(values):
                    continue  # 1C's Balance has no zero rows
                rec.update({f"{res}Balance": v for res, v in zip(resources, values)})
            else:
                if not any(acc):
                    continue
                for i, res in enumerate(resources):
                    if not turnover_register:
                        rec[f"{res}Receipt"], rec[f"{res}Expense"] = acc[i], acc[n + i]
                    rec[f"{res}Turnover"] = acc[i] - acc[n + i]
            result.append(rec)
        props = [
            p
            for p in virtual_props(rows_es, suffixes)
            if p.name in dim_fields or any(p.name.endswith(s) for s in suffixes) and p.name not in rows_es.by_name
        ]
        virtual = EntitySet(type_name, "virtual", (), props)
        scope = Scope.of(virtual)
        flt = self._compile(virtual, query.get("$filter"), scope)
        if flt is not None and any(f.endswith(suffixes) for f in flt.fields):
            raise ODataError(500, "-1", WHERE_NOT_ALLOWED)  # resources can't be filtered on Balance
        return self._read_collection(virtual, result, query, as_json, props=props, type_name=type_name, scope=scope)

    def _slice(self, es, last: bool, params, query, as_json) -> Reply:
        period = params.get("Period")
        records = self.state.prices
        cond = params.get("Condition")
        if isinstance(cond, str) and cond.strip():
            node = self._compile(es, cond)
            records = [r for r in records if node.fn(r, {})]  # type: ignore[union-attr]
        best: dict[tuple, dict] = {}
        for r in records:
            if isinstance(period, str) and (r["Period"] > period if last else r["Period"] < period):
                continue
            k = (r["ВидЦен_Key"], r["Номенклатура_Key"], r["Характеристика_Key"])
            cur = best.get(k)
            if cur is None or (r["Period"] > cur["Period"] if last else r["Period"] < cur["Period"]):
                best[k] = r
        return self._read_collection(es, list(best.values()), query, as_json)

    # -- writes ------------------------------------------------------------------------------------
    @staticmethod
    def _parse_body(body: bytes):
        try:
            data = json.loads(body.decode("utf-8"), parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            raise ODataError(500, "-1", "Непредвиденный символ при чтении JSON") from None
        if not isinstance(data, dict):
            raise ODataError(500, "-1", "Непредвиденный символ при чтении JSON")
        return data

    @staticmethod
    def _coerce(prop: Prop, value):
        edm = prop.edm
        if value is None:
            return prop.empty
        if edm == "Edm.Guid":
            guid = r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
            if not isinstance(value, str) or not re.fullmatch(guid, value):
                raise ODataError(400, "1", f"Не удалось разобрать строку '{value}' как значение типа Edm.Guid!")
            return value.lower()
        if edm == "Edm.DateTime":
            try:
                return parse_datetime_literal(str(value))
            except ODataError:
                raise ODataError(
                    400, "1", f"Не удалось разобрать строку '{value}' как значение типа Edm.DateTime!"
                ) from None
        if edm == "Edm.Double":
            try:
                return Decimal(str(value))
            except ArithmeticError:
                raise ODataError(
                    400, "1", f"Не удалось разобрать строку '{value}' как значение типа Edm.Double!"
                ) from None
        if edm.startswith("Edm.Int"):
            try:
                return int(str(value))
            except ValueError:
                raise ODataError(400, "1", f"Не удалось разобрать строку '{value}' как значение типа {edm}!") from None
        if edm == "Edm.Boolean":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise ODataError(400, "1", f"Не удалось разобрать строку '{value}' как значение типа Edm.Boolean!")
        text = value if isinstance(value, str) else str(value)
        if prop.values and text and text not in prop.values:
            # an enumeration takes only its own value names (the text is our reading of 1C's parse error)
            raise ODataError(400, "1", f"Не удалось разобрать строку '{text}' как значение свойства '{prop.name}'")
        return text

    def _apply(self, es: EntitySet, rec: dict, data: dict) -> set[str]:
        """Write body properties into a record (unknown ones ignored); returns the changed sections."""
        sections = set()
        for name, value in data.items():
            if name.endswith("@odata.bind"):
                base = name[: -len("@odata.bind")]
                prop = es.prop(f"{base}_Key")
                m = re.search(r"guid'([^']+)'", str(value))
                if prop is not None and m:
                    rec[prop.name] = self._coerce(prop, m.group(1))
                continue
            if "@" in name or name.startswith("odata.") or name in ("Ref_Key", "DataVersion", "Posted", "Predefined"):
                continue
            if name in es.tabular:
                rec[name] = self._rows(es, name, value)
                sections.add(name)
                continue
            prop = es.prop(name)
            if prop is not None:
                rec[name] = self._coerce(prop, value)
        return sections

    def _rows(self, es: EntitySet, section: str, value) -> list[dict]:
        if not isinstance(value, list):
            raise ODataError(400, "4", f"Неверное значение свойства '{section}'")
        row_props = es.tabular[section]
        rows = []
        for n, item in enumerate(value, 1):
            if not isinstance(item, dict) or "LineNumber" not in item:
                raise ODataError(500, "-1", INTERNAL)  # 1C's answer to a row without LineNumber
            try:
                line = int(str(item["LineNumber"]))
            except ValueError:
                raise ODataError(
                    400, "1", f"Не удалось разобрать строку '{item['LineNumber']}' как значение типа Edm.Int64!"
                ) from None
            if line != n:
                raise ODataError(
                    400, "4", f"Неверное значение свойства 'LineNumber' ({line}) в табличной части '{section}'"
                )
            row = {p.name: p.empty for p in row_props}
            for p in row_props:
                if p.name in item and p.name != "LineNumber":
                    row[p.name] = self._coerce(p, item[p.name])
            row["LineNumber"] = n
            rows.append(row)
        return rows

    def _check_order(self, es: EntitySet, rec: dict) -> None:
        """UNF's ПередЗаписью of an order: Запасы need the header filled (grach's finding)."""
        if es.name != "Document_ЗаказПокупателя" or not rec.get("Запасы"):
            return
        missing = [f for f in ORDER_REQUIRED_HEADER if rec.get(f) in (EMPTY_GUID, "", None)]
        if missing:
            raise ODataError(
                500,
                "-1",
                f"Ошибка при вызове метода контекста (Записать): не заполнено поле "
                f"«{missing[0].removesuffix('_Key')}» документа «Заказ покупателя»",
            )

    def _before_write(self, es: EntitySet, rec: dict, *, new: bool) -> None:
        """What UNF's ПередЗаписью changes on its own (ОбменДанными.Загрузка is off over OData)."""
        if (
            es.name == ORDER
            and not self.use_order_kinds
            and not _composite(rec, "ВидЗаказа")
            and es.prop("ВидЗаказа") is not None
        ):
            # Documents/ЗаказПокупателя ObjectModule, ПередЗаписью: without order kinds the kind is «Основной»
            main = next(
                (
                    r
                    for r in self.state.objects.get(ORDER_KINDS, {}).values()
                    if r.get("PredefinedDataName") == "Основной"
                ),
                None,
            )
            if main is not None:
                rec["ВидЗаказа"], rec["ВидЗаказа_Type"] = main["Ref_Key"], f"{NS}.{ORDER_KINDS}"
        if es.name == CP and not rec.get("IsFolder"):
            self._counterparty_before_write(rec)

    def _after_write(self, es: EntitySet, rec: dict) -> None:
        """A counterparty always has a default contract (Catalogs/Контрагенты ObjectModule, ПередЗаписью /
        ПриЗаписи, both editions): none yet -> its contract with the highest number, else a new «Основной
        договор» filled as ДоговорыКонтрагентов.ОбработкаЗаполнения fills it. 3.0 records it in
        ОсновныеДоговорыКонтрагента, 1.6 in the counterparty's ДоговорПоУмолчанию."""
        if es.name != CP or rec.get("IsFolder"):
            return
        ref = rec["Ref_Key"]
        in_register = es.prop("ДоговорПоУмолчанию_Key") is None
        register = self.state.info_register(DEFAULT_CONTRACTS)
        if in_register and any(r.get("Контрагент") == ref for r in register):
            return
        if not in_register and rec.get("ДоговорПоУмолчанию_Key") not in (None, "", EMPTY_GUID):
            return
        own = sorted(
            (
                c
                for c in self.state.objects.get(CONTRACT, {}).values()
                if (c.get("Owner_Key") or c.get("Owner")) == ref and not c.get("DeletionMark")
            ),
            key=lambda c: str(c.get("НомерДоговора") or ""),
            reverse=True,
        )
        contract = own[0] if own else self._new_default_contract(rec)
        if in_register:
            register.append(
                {
                    "Организация_Key": contract.get("Организация_Key", EMPTY_GUID),
                    "Контрагент": ref,
                    "Контрагент_Type": f"{NS}.{CP}",
                    "ВидДоговора": contract.get("ВидДоговора", ""),
                    "Договор_Key": contract["Ref_Key"],
                }
            )
        else:
            rec["ДоговорПоУмолчанию_Key"] = contract["Ref_Key"]

    def _new_default_contract(self, party: dict) -> dict:
        es = self.sets[CONTRACT]

        def first(set_name: str, **match) -> str:
            return next(
                (
                    r["Ref_Key"]
                    for r in self.state.objects.get(set_name, {}).values()
                    if all(r.get(k) == v for k, v in match.items())
                ),
                EMPTY_GUID,
            )

        contract = self.state.blank(es)
        kind = "СПоставщиком" if party.get("Поставщик") and not party.get("Покупатель") else "СПокупателем"
        contract.update(
            Ref_Key=str(uuid.uuid4()),
            DataVersion=data_version(0),
            Description="Основной договор",
            Owner_Key=party["Ref_Key"],
            Owner_Type=f"{NS}.{CP}",
            ВидДоговора=kind,
            Организация_Key=first("Catalog_Организации"),
            ВалютаРасчетов_Key=first("Catalog_Валюты", Code="643"),
            ВидЦен_Key=first("Catalog_ВидыЦен"),
        )
        self.profile.reshape(CONTRACT, contract)  # the owner as the edition publishes it (3.0: composite)
        self._auto_code(es, contract)
        self.state.add(CONTRACT, contract)
        return contract

    def _counterparty_before_write(self, rec: dict) -> None:
        """ПривестиДанныеКСогласованномуСостоянию of Catalogs/Контрагенты (ObjectModule), per edition."""
        kind, country = rec.get("ВидКонтрагента"), rec.get("СтранаРегистрации_Key") or EMPTY_GUID
        russia = next(
            (
                r["Ref_Key"]
                for r in self.state.objects.get(COUNTRIES, {}).values()
                if r.get("PredefinedDataName") == "Россия"
            ),
            None,
        )
        if self.profile.flag("counterparty_before_write") == "unf16":
            if kind == "ЮридическоеЛицо":
                rec["ИНН"] = (rec.get("ИНН") or "")[:12]
            elif kind in ("ИндивидуальныйПредприниматель", "ФизическоеЛицо", "ГосударственныйОрган"):
                rec["СтранаРегистрации_Key"] = EMPTY_GUID
                if kind != "ИндивидуальныйПредприниматель":
                    rec["РегистрационныйНомер"] = ""
            return
        if kind == "ЮридическоеЛицо":
            rec["ИНН"] = (rec.get("ИНН") or "")[:10]
            if russia is not None and country == russia:
                rec["РегистрационныйНомер"] = (rec.get("РегистрационныйНомер") or "")[:13]
            elif "КПП" in rec:
                rec["КПП"] = ""  # a legal entity not registered in Russia has no КПП
        elif kind == "ИндивидуальныйПредприниматель":
            rec["КПП"] = ""
            rec["РегистрационныйНомер"] = (rec.get("РегистрационныйНомер") or "")[:15]
        elif kind == "ФизическоеЛицо":
            rec["КПП"], rec["РегистрационныйНомер"] = "", ""
        elif kind == "ГосударственныйОрган":
            rec["СтранаРегистрации_Key"] = EMPTY_GUID

    def _fill_check(self, es: EntitySet, rec: dict) -> None:
        """ОбработкаПроверкиЗаполнения at Post (writes skip it, posting runs it): the edition's required
        header fields and Запасы columns; refused with the platform's messages, all of them, as 1C lists them."""
        checks = self.profile.flag("order_post_checks") if es.name == ORDER else None
        if not checks:
            return
        messages = []
        header = list(checks["header"])
        rows = list(checks["rows"])
        if self.use_order_kinds:
            header.append(("ВидЗаказа", "Вид заказа"))
        # The shipment date is checked for an order for sale only: in the header, or per row when the
        # order keeps it in its rows (ПоложениеДатыОтгрузки = ВТабличнойЧасти)
        if rec.get("ВидОперации") != "ЗаказНаПродажу" or rec.get("ПоложениеДатыОтгрузки") == "ВТабличнойЧасти":
            header = [(n, s) for n, s in header if n != "ДатаОтгрузки"]
            if rec.get("ВидОперации") == "ЗаказНаПродажу":
                rows.append(("ДатаОтгрузки", "Дата отгрузки"))
        for name, synonym in header:
            if es.prop(name) is not None and _unfilled(rec.get(name)):
                messages.append(f'Поле "{synonym}" не заполнено')
        for row in rec.get("Запасы") or []:
            for name, synonym in rows:
                if _unfilled(row.get(name)):
                    messages.append(
                        f'Не заполнена колонка "{synonym}" в строке {row["LineNumber"]} списка "{checks["section"]}"'
                    )
        if messages:
            date = rec.get("Date", "")
            when = f"{date[8:10]}.{date[5:7]}.{date[:4]} {date[11:19]}"
            raise ODataError(
                500,
                "-1",
                f'Не удалось провести "Заказ покупателя {rec.get("Number", "")} от {when}"!\n' + "\n".join(messages),
            )

    def _auto_code(self, es: EntitySet, rec: dict) -> None:
        field_name = "Code" if es.kind == "catalog" else "Number"
        taken = self._taken_codes(es.name, field_name)
        while True:
            n = self.state.next_code(es.name)
            if es.kind == "catalog":
                code = f"НФ-{n:08d}" if es.name == "Catalog_Номенклатура" else f"{n:09d}"
            else:
                code = f"НФНФ-{n:06d}"
            if code not in taken:
                rec[field_name] = code
                taken.add(code)
                return

    def _taken_codes(self, set_name: str, field_name: str) -> set:
        """Codes/numbers in use in a set, kept between creates (a scan per create made a first load
        quadratic); rebuilt when the set changed size behind our back (seeding, another writer)."""
        objects = self.state.objects.get(set_name, {})
        cached = self._codes.get(set_name)
        if cached is None or cached[0] != len(objects):
            cached = (len(objects), {r.get(field_name) for r in objects.values()})
        # the record being created is added right after: expect one more next time
        self._codes[set_name] = (len(objects) + 1, cached[1])
        return cached[1]

    def _create(self, es: EntitySet, data: dict, as_json: bool) -> Reply:
        if es.kind == "tabular":
            raise ODataError(400, "13", "Создание строк табличных частей напрямую не поддерживается")
        if es.kind == "info_register":
            return self._create_price(es, data, as_json)
        if not es.is_object:
            raise ODataError(405, "19", "Использованный HTTP-метод запрещен в данном контексте")
        rec = self.state.blank(es)
        ref = data.get("Ref_Key")
        if ref not in (None, "", EMPTY_GUID):
            ref = self._coerce(es.by_name["Ref_Key"], ref)
            if ref in self.state.objects.get(es.name, {}):
                raise ODataError(400, "15", "Сущность с таким ключом уже существует")
        else:
            ref = str(uuid.uuid4())
        self._apply(es, rec, data)
        rec["Ref_Key"], rec["DataVersion"] = ref, data_version(0)
        key_field = "Code" if es.kind == "catalog" else "Number"
        if not rec.get(key_field):
            self._auto_code(es, rec)
        if es.kind == "document" and rec.get("Date") == EMPTY_DATE:
            rec["Date"] = datetime.now().replace(microsecond=0).isoformat()
        self._before_write(es, rec, new=True)
        self._check_order(es, rec)
        _touch(es, rec)
        self.state.add(es.name, rec)
        self._after_write(es, rec)
        reply = self._read_entity(es, rec, {}, as_json)
        reply.status = 201
        reply.headers["Location"] = f"{self.odata_url}/{quote(es.name)}(guid'{ref}')"
        return reply

    def _create_price(self, es: EntitySet, data: dict, as_json: bool) -> Reply:
        rec = {p.name: p.empty for p in es.props}
        self._apply(es, rec, data)
        key = tuple(rec[k] for k in es.key)
        records = self.state.info_register(es.name)
        if any(tuple(r[k] for k in es.key) == key for r in records):
            raise ODataError(400, "15", "Запись с таким ключом уже существует")
        records.append(rec)
        reply = self._read_entity(es, rec, {}, as_json)
        reply.status = 201
        return reply

    def _update(self, es, key_text, data, headers, as_json, *, replace: bool) -> Reply:
        if not es.is_object:
            raise ODataError(405, "19", "Использованный HTTP-метод запрещен в данном контексте")
        rec = self._find(es, key_text)
        if_match = headers.get("If-Match")
        if self.enforce_if_match and if_match and if_match.strip('W/"') != rec["DataVersion"]:
            raise ODataError(412, "-1", "Объект был изменен другим пользователем")
        new = dict(rec)
        if replace:
            blank = self.state.blank(es)
            for k in blank:
                if k not in ("Ref_Key", "DataVersion", "Code", "Number", "Posted"):
                    new[k] = blank[k]
        sections = self._apply(es, new, data)
        if "Запасы" in sections and es.name == "Document_ЗаказПокупателя" and rec.get("Posted"):
            raise ODataError(
                500,
                "-1",
                "Ошибка при вызове метода контекста (Записать): нельзя изменить "
                "табличную часть «Запасы» проведенного заказа",
            )
        self._before_write(es, new, new=False)
        self._check_order(es, new)
        new["DataVersion"] = next_data_version(rec["DataVersion"])  # +1 on every write, even a no-op
        _touch(es, new)
        rec.clear()
        rec.update(new)
        self.state.versions[es.name] = self.state.versions.get(es.name, 0) + 1
        self._after_write(es, rec)
        return self._read_entity(es, rec, {}, as_json)

    def _delete(self, es, key_text) -> Reply:
        if not es.is_object:
            raise ODataError(405, "19", "Использованный HTTP-метод запрещен в данном контексте")
        rec = self._find(es, key_text)
        del self.state.objects[es.name][rec["Ref_Key"]]
        self.state.versions[es.name] = self.state.versions.get(es.name, 0) + 1
        for store in self.state.registers.values():
            store.remove(rec["Ref_Key"])  # a deleted recorder takes its movements along
        return Reply(204, b"", "")

    def _post_document(self, es, key_text, post: bool) -> Reply:
        if es.kind != "document":
            raise ODataError(400, "11", "Метод не найден")
        rec = self._find(es, key_text)
        if post:
            if rec.get("DeletionMark"):
                raise ODataError(500, "-1", "Помеченный на удаление документ не может быть проведен")
            self._check_order(es, rec)
            self._fill_check(es, rec)
            rec["Posted"] = True
        else:
            rec["Posted"] = False
        rec["DataVersion"] = next_data_version(rec["DataVersion"])
        _touch(es, rec)
        self._repost(es, rec)
        return Reply(200, b"", "")

    def _repost(self, es, rec) -> None:
        """Movements of documents posted over OData: debt for a shipment, a settlement for a payment."""
        store = self.state.registers.get(SETTLEMENTS)
        if store is None:
            return
        ref = rec["Ref_Key"]
        kinds = {
            "Document_РасходнаяНакладная": ("Receipt", rec.get("Контрагент_Key")),
            "Document_ПоступлениеНаСчет": ("Expense", rec.get("Контрагент_Key")),
            "Document_ПоступлениеВКассу": ("Expense", rec.get("Контрагент_Key")),
        }
        if es.name not in kinds:
            return
        if not rec["Posted"]:
            store.remove(ref)
            return
        record_type, cp = kinds[es.name]
        if es.name == "Document_РасходнаяНакладная":
            # the order: the header's, else the rows' (a shipment may name it per row only)
            order = _composite(rec, "Заказ") or next(
                (o for o in map(lambda r: _composite(r, "Заказ"), rec.get("Запасы") or []) if o), ""
            )
            amount = rec.get("СуммаДокумента") or Decimal(0)
            lines = [(rec.get("Договор_Key", EMPTY_GUID), order, "Долг", amount)]
        else:  # a payment: contract, order and advance flag per row of РасшифровкаПлатежа
            lines = [
                (
                    row.get("Договор_Key", EMPTY_GUID),
                    _composite(row, "Заказ"),
                    "Аванс" if row.get("ПризнакАванса") else "Долг",
                    row.get("СуммаРасчетов") or Decimal(0),
                )
                for row in rec.get("РасшифровкаПлатежа") or []
            ]
        moves = []
        for n, (contract, order, settlement, amount) in enumerate(lines, 1):
            moves.append(
                self.profile.reshape(
                    SETTLEMENTS,
                    {
                        "Recorder": ref,
                        "Recorder_Type": f"{NS}.{es.name}",
                        "Period": rec["Date"],
                        "LineNumber": n,
                        "Active": True,
                        "RecordType": record_type,
                        "Организация_Key": rec.get("Организация_Key", EMPTY_GUID),
                        "Контрагент_Key": cp,
                        "Договор_Key": contract,
                        "Документ": ref,
                        "Документ_Type": f"{NS}.{es.name}",
                        "Заказ": order,
                        "Заказ_Type": f"{NS}.Document_ЗаказПокупателя" if order else "StandardODATA.Undefined",
                        "ТипРасчетов": settlement,
                        "Сумма": amount,
                        "СуммаВал": amount,
                        "СуммаРег": amount,
                        "СодержаниеПроводки": "",
                    },
                    "RecordSet",
                )
            )
        store.put(ref, moves)


def _unfilled(value) -> bool:
    """1C's ЗначениеЗаполнено turned around: empty ref/date/string, zero number, Undefined."""
    return value in (None, "", EMPTY_GUID, EMPTY_DATE, 0) or (isinstance(value, Decimal) and value == 0)


def _composite(rec: dict, name: str) -> str:
    """A reference held as a composite (`X`) or a single reference (`X_Key`), '' when empty."""
    value = rec.get(name) or rec.get(f"{name}_Key") or ""
    return "" if value == EMPTY_GUID else value


def _touch(es: EntitySet, rec: dict) -> None:
    """UNF stamps an order's ДатаИзменения on every write (what incremental order sync keys on)."""
    if es.prop("ДатаИзменения") is not None:
        rec["ДатаИзменения"] = datetime.now().replace(microsecond=0).isoformat()


def _bad_select(name: str) -> ODataError:
    return ODataError(400, "6", f"Сегмент пути '{name}' не найден!")


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class OneCServer:
    """A sandbox 1C:UNF OData server on loopback; `.start()` serves in a daemon thread.

    Options beyond the common contract: `shuffle_unordered` (random order without `$orderby`),
    `unpublished` (set names left out of the publication), `max_query_length` (IIS limit -> 404.15),
    `cold_start_seconds` (delay of the first request), `enforce_if_match` (412 on a stale If-Match; real 1C
    ignores it), `inlinecount_ignores_paging` (the documented 1C behaviour; False = `$top=0&$inlinecount=allpages`
    counts cheaply as 42c saw live), `state` (a pre-seeded `OneCState`, e.g. shared by benchmarks), `rng_seed`,
    `profile` (the UNF edition whose metadata the base follows: `unf30` default, `unf16`; see onec_profiles),
    `empty_dimensions` (settlement-register dimensions, `Заказ`/`Документ`, Undefined in every movement),
    `use_order_kinds` (the order-kinds option: ВидЗаказа is then required at Post, else ПередЗаписью sets it).
    """

    def __init__(
        self,
        world: World,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "integration",
        password: str | None = None,
        faults: Faults | None = None,
        *,
        shuffle_unordered: bool = True,
        unpublished=(),
        max_query_length: int = 2000,
        cold_start_seconds: float = 0.0,
        enforce_if_match: bool = False,
        inlinecount_ignores_paging: bool = True,
        state: OneCState | None = None,
        rng_seed: int = 0,
        profile: str = DEFAULT_PROFILE,
        empty_dimensions: tuple[str, ...] = (),
        use_order_kinds: bool = False,
    ):
        self.world = world
        self.host, self._port = host, port
        self.username = username
        self.password = password if password is not None else secrets.token_urlsafe(12)
        self.faults = faults or Faults()
        self.max_query_length = max_query_length
        self.cold_start_seconds = cold_start_seconds
        self.profile = get_profile(profile)
        self.sets = sets_for(self.profile.name)
        self.state = (
            state if state is not None else seed(world, profile=self.profile.name, empty_dimensions=empty_dimensions)
        )
        self.published = [n for n in self.sets if n not in set(unpublished)]
        self.request_log: list[dict] = []
        self._opts = dict(
            shuffle_unordered=shuffle_unordered,
            enforce_if_match=enforce_if_match,
            inlinecount_ignores_paging=inlinecount_ignores_paging,
            rng_seed=rng_seed,
            profile=self.profile,
            use_order_kinds=use_order_kinds,
        )
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._warm = threading.Event()
        self.service: OneCService | None = None

    def __repr__(self) -> str:  # never show the password
        return f"OneCServer({self.host}:{self._port}, user={self.username!r})"

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd else self._port

    @property
    def odata_url(self) -> str:
        return f"http://{self.host}:{self.port}{BASE_PATH}"

    def start(self) -> OneCServer:
        handler = type("OneCHandler", (_Handler,), {"app": self})
        self._httpd = ThreadingHTTPServer((self.host, self._port), handler)
        self._httpd.daemon_threads = True
        self.service = OneCService(self.state, self.odata_url, published=self.published, **self._opts)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="onec-odata", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")  # UTF-8 only (IIS 401.5)
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, pwd = raw.partition(":")
        return secrets.compare_digest(user.encode(), self.username.encode()) and secrets.compare_digest(
            pwd.encode(), self.password.encode()
        )

    def serve(self, method: str, raw_path: str, headers, body: bytes) -> Reply:
        """One HTTP request -> Reply (auth, IIS limits, faults, then the OData service)."""
        path, _, raw_query = raw_path.partition("?")
        if not (path == BASE_PATH or path.startswith(BASE_PATH + "/")):
            return Reply(404, b"Not Found", "text/plain")
        if len(raw_query) > self.max_query_length:
            return Reply(
                404,
                b"<html><body><h2>HTTP Error 404.15 - Not Found</h2><p>The request filtering module "
                b"is configured to deny a request where the query string is too long.</p></body></html>",
                "text/html",
                error="404.15",
            )
        if not self._authorized(headers.get("Authorization")):
            return Reply(401, b"Unauthorized", "text/plain", {"WWW-Authenticate": 'Basic realm="1C"'}, error="401")
        if not self._warm.is_set():
            if self.cold_start_seconds:
                time.sleep(self.cold_start_seconds)
            self._warm.set()
        write = method != "GET"
        if not write and self.faults.always_500 and self._always_fails(path):
            return self._fault_reply("500")  # type: ignore[return-value]
        fault = self.faults.pick() if self.faults.any else None
        if fault == "slow":
            time.sleep(self.faults.slow_seconds)
        if fault and not (write and self.faults.fail_after_write):
            early = self._fault_reply(fault)
            if early is not None:
                return early
        resource = "/".join(unquote(s) for s in path[len(BASE_PATH) :].split("/"))
        query: dict[str, str] = {}
        for part in raw_query.split("&") if raw_query else []:
            k, _, v = part.partition("=")
            query[unquote(k)] = unquote(v)  # not unquote_plus: 1C keeps '+' literal
        reply = self.service.handle(method, resource, query, headers, body)  # type: ignore[union-attr]
        if fault and write and self.faults.fail_after_write:
            late = self._fault_reply(fault)
            if late is not None:
                return late
        return reply

    def _always_fails(self, path: str) -> bool:
        """A read of a set (or its virtual table) listed in `faults.always_500`."""
        resource = unquote(path[len(BASE_PATH) :]).strip("/")
        base, _, rest = resource.partition("/")
        base = base.split("(", 1)[0]
        function = f"{base}/{rest.split('(', 1)[0]}" if rest else base
        return base in self.faults.always_500 or function in self.faults.always_500

    @staticmethod
    def _fault_reply(fault: str) -> Reply | None:
        if fault == "drop":
            return Reply(0, drop=True)
        if fault == "503":
            return Reply(503, b"<html><body><h1>Service Unavailable</h1></body></html>", "text/html", error="503")
        if fault == "500":
            body = json.dumps(
                {"odata.error": {"code": "-1", "message": {"lang": "ru", "value": INTERNAL}}}, ensure_ascii=False
            ).encode()
            return Reply(500, body, error="-1")
        return None  # 'slow' is served late, not failed


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: Nagle + delayed ACK would add ~40 ms
    server_version = "Microsoft-IIS/10.0"
    app: OneCServer

    def log_message(self, *args) -> None:  # keep test output quiet; the request log records requests
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        app = self.app
        try:
            reply = app.serve(self.command, self.path, self.headers, body)
        except Exception:  # noqa: BLE001 - an emulator bug must still look like 1C's 500
            reply = Reply(
                500,
                json.dumps(
                    {"odata.error": {"code": "-1", "message": {"lang": "ru", "value": INTERNAL}}}, ensure_ascii=False
                ).encode(),
                error="-1",
            )
        path, _, raw_query = self.path.partition("?")
        resource = unquote(path[len(BASE_PATH) :]).lstrip("/")
        app.request_log.append(
            {
                "method": self.command,
                "path": resource,
                "entity_set": re.split(r"[(/]", resource, maxsplit=1)[0],
                "query": {unquote(k): unquote(v) for k, _, v in (p.partition("=") for p in raw_query.split("&") if p)},
                "status": reply.status,
                "error": reply.error,
                "kind": "read" if self.command == "GET" else "write",
            }
        )
        if reply.drop:
            self.close_connection = True
            return
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.send_header("DataServiceVersion", "3.0")
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_MERGE = _serve
