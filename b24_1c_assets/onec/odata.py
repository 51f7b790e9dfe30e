"""`OneCClient`: reads and writes 1C:UNF through the standard OData interface (v3, JSON).

Protocol rules this client follows (reference onec-odata.md):
* HTTP Basic with UTF-8 credentials; `$format=json`; `%20` for spaces; each path segment encoded alone.
* Always an explicit `$select`; `$metadata` read first, missing sets/fields stop with a publication hint.
* No server paging link: catalogs page with a fixed `$orderby` + `$top`/`$skip`; documents and register
  movements are read in `Date`/`Period` windows, `$skip` only inside a window, and a window that grows
  past `window_pages` pages is split at the last instant read (so `$skip` never grows unbounded).
  Pages are sized by bytes after the first one (`page_bytes_target`), as 1C's cost is per entry size.
* Only GETs are retried (timeouts, connection errors, 500/502/503/504) with bounded backoff. A POST/PATCH/Post
  with an unknown outcome is reconciled by reading back (marker in `Комментарий`, or the fields sent).
"""

from __future__ import annotations

import base64
import json
import logging
from calendar import monthrange
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import requests
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from . import wire
from .errors import (
    OneCAuthError,
    OneCConnectionError,
    OneCError,
    OneCRequestError,
    OneCWireError,
    WriteNotApplied,
    WriteNotVerified,
)
from .metadata import Metadata

log = logging.getLogger(__name__)

COUNTERPARTIES = "Catalog_Контрагенты"
CONTRACTS = "Catalog_ДоговорыКонтрагентов"
ITEMS = "Catalog_Номенклатура"
PRICE_TYPES = "Catalog_ВидыЦен"
PRICES = "InformationRegister_ЦеныНоменклатуры"
ORDERS = "Document_ЗаказПокупателя"
INVOICES = "Document_СчетНаОплату"
SHIPMENTS = "Document_РасходнаяНакладная"
BANK_RECEIPTS = "Document_ПоступлениеНаСчет"
CASH_RECEIPTS = "Document_ПоступлениеВКассу"
SETTLEMENTS = "AccumulationRegister_РасчетыСПокупателями"
INVOICE_PAYMENTS = "AccumulationRegister_ОплатаСчетовИЗаказов"
# UNF 3.0 keeps the default contract here (InformationRegisters/ОсновныеДоговорыКонтрагента.xml); 1.6 keeps it
# in Catalog_Контрагенты.ДоговорПоУмолчанию, which 3.0 renamed УдалитьДоговорПоУмолчанию and no longer uses.
DEFAULT_CONTRACTS = "InformationRegister_ОсновныеДоговорыКонтрагента"
VAT_RATES = "Catalog_СтавкиНДС"
COUNTRIES = "Catalog_СтраныМира"
_CP_TYPE = f"StandardODATA.{COUNTERPARTIES}"
ITEM_REF = ("Номенклатура",)  # the references a written order row must show when read back

# (required, optional) fields per set. Required ones missing in $metadata stop the run; optional ones
# are selected only when published (they differ between UNF releases).
CATALOG_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    COUNTERPARTIES: (
        ("Ref_Key", "DataVersion", "Code", "Description", "DeletionMark", "ИНН", "КПП", "КонтактнаяИнформация"),
        (
            "IsFolder",
            "Parent_Key",
            "НаименованиеПолное",
            "РегистрационныйНомер",
            "ВидКонтрагента",
            "ЮридическоеФизическоеЛицо",
            "СтранаРегистрации_Key",
            "Покупатель",
            "Поставщик",
            "ДоговорПоУмолчанию_Key",
            "Ответственный_Key",
            "Комментарий",
        ),
    ),
    CONTRACTS: (
        ("Ref_Key", "Description", "СрокОплатыПокупателя"),
        (
            "DataVersion",
            "Code",
            "DeletionMark",
            "НомерДоговора",
            "ДатаДоговора",
            "ВидДоговора",
            "Недействителен",
            "ВалютаРасчетов_Key",
            "Организация_Key",
            "ВидЦен_Key",
        ),
    ),
    ITEMS: (
        ("Ref_Key", "Code", "Description", "DeletionMark"),
        (
            "DataVersion",
            "IsFolder",
            "Parent_Key",
            "Артикул",
            "ТипНоменклатуры",
            "ЕдиницаИзмерения",
            "ЕдиницаИзмерения_Key",
            "ВидСтавкиНДС",
            "СтавкаНДС_Key",
            "Недействителен",
            "Комментарий",
        ),
    ),
    PRICE_TYPES: (("Ref_Key", "Description"), ("Code", "DeletionMark", "ЦенаВключаетНДС", "ВалютаЦены_Key")),
}
_DOC_HEADER = ("Ref_Key", "Number", "Date", "Posted", "DeletionMark", "Контрагент_Key", "СуммаДокумента")
DOCUMENT_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    ORDERS: (
        _DOC_HEADER + ("Договор_Key", "Запасы"),
        (
            "DataVersion",
            "Комментарий",
            "СостояниеЗаказа",
            "ДатаОтгрузки",
            "ОплатаДо",
            "ДатаИзменения",
            "Организация_Key",
            "Ответственный_Key",
            "ВидЦен_Key",
            "ПлатежныйКалендарь",
        ),
    ),
    INVOICES: (
        _DOC_HEADER + ("Договор_Key",),
        ("DataVersion", "Комментарий", "ДокументОснование", "Заказ", "Организация_Key", "Запасы"),
    ),
    SHIPMENTS: (
        _DOC_HEADER + ("Договор_Key",),
        ("DataVersion", "Комментарий", "Заказ", "Организация_Key", "Ответственный_Key", "Запасы"),
    ),
    # no header Договор: contract, order, invoice and advance flag are per row of РасшифровкаПлатежа
    BANK_RECEIPTS: (
        _DOC_HEADER,
        ("DataVersion", "ВидОперации", "Комментарий", "НазначениеПлатежа", "Организация_Key", "РасшифровкаПлатежа"),
    ),
    CASH_RECEIPTS: (
        _DOC_HEADER,
        ("DataVersion", "ВидОперации", "Комментарий", "Организация_Key", "РасшифровкаПлатежа"),
    ),
}
SETTLEMENT_DIMENSIONS = ("Контрагент_Key", "Договор_Key", "ТипРасчетов")
SETTLEMENT_OPTIONAL = ("Организация_Key", "Документ", "Заказ")

# Counterparties per `or` filter: each adds ~130 bytes of percent-encoded query, and IIS refuses a query
# string over 2048 bytes by default (404.15) next to the register's $select and the date window.
COUNTERPARTIES_PER_FILTER = 6
REFS_PER_FILTER = 8  # `Ref_Key eq guid'…'` terms per catalog read by key, under the same limit
RETRY_STATUSES = (500, 502, 503, 504)  # for GETs; 500: 1C's generic internal error (lock conflict, restart)


@dataclass
class OneCStats:
    """Counters of one client: HTTP requests sent, GET retries, rows returned, response bytes."""

    requests: int = 0
    retries: int = 0
    rows: int = 0
    bytes: int = 0
    reconciliations: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class OneCClient:
    """Client of one 1C infobase's standard OData interface (`…/odata/standard.odata`).

    Methods return lists of plain dicts keyed by 1C field names, values parsed: Int64 -> int, money ->
    Decimal, refs -> GUID str (empty ref -> None), dates -> aware datetimes in the infobase time zone
    (empty date -> None). Date arguments may be naive (taken as infobase-local) or aware.
    """

    def __init__(
        self,
        odata_url: str,
        username: str,
        password: str,
        *,
        timeout: float | tuple[float, float] = (10.0, 120.0),
        max_retries: int = 4,
        timezone: str = "Europe/Moscow",
        page_size: int = 1000,
        window_pages: int = 10,
        page_bytes_target: int | None = 16 * 2**20,
        max_page_size: int = 20000,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        session: requests.Session | None = None,
    ):
        self._base = odata_url.rstrip("/")
        parts = urlsplit(self._base)
        self.host = parts.hostname or "?"
        if parts.port:
            self.host += f":{parts.port}"
        # Basic auth built here: requests would encode str credentials as latin-1 (Cyrillic logins fail).
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self.__auth_header = f"Basic {token}"
        self.timeout = timeout
        self.max_retries = max_retries
        self.tz = ZoneInfo(timezone)
        self.page_size = page_size
        self.window_pages = window_pages
        # pages start at page_size entries and are then sized by bytes (None = fixed page_size)
        self.page_bytes_target = page_bytes_target
        self.max_page_size = max_page_size
        self._backoff = (backoff_initial, backoff_max)
        self._session = session or requests.Session()
        self._metadata: Metadata | None = None
        self._parsers: dict[str, wire.RowParser] = {}
        self._aliases: dict[str, dict[str, str]] = {}  # set -> {field asked for: its published shape}
        self.stats = OneCStats()

    def __repr__(self) -> str:
        return f"OneCClient(host={self.host!r}, timezone={self.tz.key!r})"

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------------------------------------------
    # HTTP
    # ------------------------------------------------------------------------------------------------

    def _url(self, segments: Sequence[str], params: Mapping[str, Any] | None) -> str:
        url = self._base + "/" + wire.path(*segments)
        query = wire.query_string(params or {})
        return f"{url}?{query}" if query else url

    def _send(
        self, method: str, segments: Sequence[str], params: Mapping[str, Any] | None, body: Any = None, *, label: str
    ) -> requests.Response:
        """One HTTP exchange; raises OneCConnectionError / OneCRequestError (never with credentials)."""
        headers = {"Authorization": self.__auth_header, "Accept": "application/json"}
        data = None
        if body is not None:
            data = _dumps(body, self.tz).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        self.stats.requests += 1
        try:
            resp = self._session.request(
                method,
                self._url(segments, params),
                data=data,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise OneCConnectionError(host=self.host, method=method, entity_set=label, reason="timeout") from None
        except requests.ConnectionError as exc:
            reason = type(exc.__context__ or exc).__name__
            raise OneCConnectionError(
                host=self.host, method=method, entity_set=label, reason=f"connection error ({reason})"
            ) from None
        self.stats.bytes += len(resp.content)
        if resp.status_code >= 400:
            code, message = wire.parse_error_body(resp.content, resp.headers.get("Content-Type", ""))
            cls = OneCAuthError if resp.status_code in (401, 403) else OneCRequestError
            raise cls(
                host=self.host, method=method, entity_set=label, status=resp.status_code, code=code, message=message
            )
        return resp

    def _get(self, segments: Sequence[str], params: Mapping[str, Any] | None, *, label: str) -> requests.Response:
        """GET with bounded retries on transient failures (idempotent, so safe to repeat).

        A 500 is retried too: 1C answers a lock conflict or a restarting server with HTTP 500 and its generic
        «Произошла внутренняя ошибка OData сервиса…», the same answer as for a query it can never run. So
        a 500 gets the same bounded retries, and one that stays names the query it was given.
        """

        def count_retry(state) -> None:
            self.stats.retries += 1
            log.info(
                "1C GET %s on %s: retry %d after %s", label, self.host, state.attempt_number, state.outcome.exception()
            )

        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait_exponential_jitter(initial=self._backoff[0], max=self._backoff[1]),
            retry=retry_if_exception(_is_retryable_get),
            before_sleep=count_retry,
            reraise=True,
        )
        try:
            return retrying(self._send, "GET", segments, params, label=label)
        except OneCRequestError as exc:
            if exc.status != 500:
                raise
            query = unquote(wire.query_string(params or {}))
            raise OneCRequestError(
                host=self.host,
                method="GET",
                entity_set=label,
                status=500,
                code=exc.code,
                message=f"{exc.message} (still after {self.max_retries + 1} attempts; the query: "
                f"{'/'.join(segments)}{'?' + query if query else ''})",
            ) from None

    def _get_json(self, segments: Sequence[str], params: Mapping[str, Any], *, label: str) -> Any:
        params = {"$format": "json", **params}
        resp = self._get(segments, params, label=label)
        try:
            return wire.loads(resp.content)
        except ValueError:
            raise OneCWireError(
                f"1C OData GET {label} on {self.host}: answer is not JSON "
                f"(Content-Type {resp.headers.get('Content-Type')!r})"
            ) from None

    # ------------------------------------------------------------------------------------------------
    # metadata
    # ------------------------------------------------------------------------------------------------

    @property
    def metadata(self) -> Metadata:
        """The publication's `$metadata` (read once, on first use)."""
        if self._metadata is None:
            resp = self._get(["$metadata"], None, label="$metadata")
            try:
                self._metadata = Metadata.parse(resp.content)
            except Exception as exc:  # lxml syntax errors and friends
                raise OneCWireError(f"1C OData $metadata on {self.host} is not readable XML: {exc}") from None
        return self._metadata

    def check_publication(self) -> None:
        """Check every set and required field this client reads, reporting all gaps in one
        OneCPublicationError (run it first: a partial publication then fails with the full list)."""
        needs: dict[str, tuple[str, ...]] = {s: req for s, (req, _) in {**CATALOG_FIELDS, **DOCUMENT_FIELDS}.items()}
        needs = {s: tuple(f for f in req if f != "Контрагент_Key") for s, req in needs.items()}
        needs[f"{PRICES}/SliceLast"] = ("Номенклатура_Key", "ВидЦен_Key", "Цена")
        needs[f"{SETTLEMENTS}/Balance"] = ("СуммаBalance",)
        needs[f"{SETTLEMENTS}_RecordType"] = ("Period", "LineNumber", "RecordType", "Сумма") + SETTLEMENT_DIMENSIONS
        needs[f"{INVOICE_PAYMENTS}_RecordType"] = ("Period", "LineNumber", "СчетНаОплату", "Сумма")  # no RecordType
        self.metadata.require_all(needs)

    def _select(self, entity_set: str, required: Iterable[str], optional: Iterable[str] = ()) -> list[str]:
        """Check required fields, add the published optional ones, keep composites with their `_Type`.

        A reference is published single-typed (`X_Key`) or composite (`X` + `X_Type`) as the edition
        declares it (`РасчетыСПокупателями.Заказ`: composite in UNF 3.0, `Заказ_Key` in 1.6): a field asked
        for in one shape is read in the shape `$metadata` declares and given back under both names (`_parse`).
        """
        declared = self.metadata.fields(entity_set)
        aliases = self._aliases.setdefault(entity_set, {})
        required, optional = list(required), list(optional)
        asked = set(required) | set(optional)

        def published(name: str) -> str:
            other = _other_shape(name)  # a caller asking for both spellings takes what is there, unaliased
            if name not in declared and other is not None and other in declared and other not in asked:
                aliases[name] = other
                return other
            return name

        required = [published(f) for f in required]
        self.metadata.require(entity_set, required)
        fields = required + [f for f in map(published, optional) if f in declared and f not in required]
        for name in list(fields):
            if self.metadata.is_composite(entity_set, name) and f"{name}_Type" not in fields:
                fields.append(f"{name}_Type")
        return fields

    def _ref_field(self, entity_set: str, name: str) -> str:
        """A reference attribute as published: `X_Key` for a plain ref, `X` for a composite (`X` + `X_Type`)."""
        declared = self.metadata.fields(entity_set)
        return name if f"{name}_Key" not in declared and name in declared else f"{name}_Key"

    def _parse(self, entity_set: str, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        parser = self._parsers.get(entity_set)
        if parser is None:
            parser = self._parsers[entity_set] = wire.RowParser(
                self.metadata.fields(entity_set), self.tz, self.metadata.row_types(entity_set)
            )
        aliases = self._aliases.get(entity_set, {})
        out = []
        for row in rows:
            try:
                parsed = parser(row)
                for wanted, published in aliases.items():  # the asked-for name too (see `_select`)
                    parsed.setdefault(wanted, parsed.get(published))
                out.append(parsed)
            except (ValueError, TypeError) as exc:
                raise OneCWireError(
                    f"1C OData {entity_set} on {self.host}: unreadable row "
                    f"{row.get('Ref_Key') or row.get('Recorder_Key') or row.get('Recorder') or ''}: "
                    f"{exc}"
                ) from None
        self.stats.rows += len(out)
        return out

    # ------------------------------------------------------------------------------------------------
    # paging
    # ------------------------------------------------------------------------------------------------

    def _fetch(self, segments: Sequence[str], params: Mapping[str, Any], *, label: str) -> tuple[list[dict], int]:
        """One page: (rows, response bytes)."""
        before = self.stats.bytes
        rows = _value(self._get_json(segments, params, label=label), label)
        return rows, self.stats.bytes - before

    def _next_top(self, top: int, rows: int, nbytes: int) -> int:
        """Size the next page by bytes (1C builds each page in temp files; `$top` counts entries, whose size
        varies by orders of magnitude): aim at `page_bytes_target`, within [page_size, max_page_size]."""
        if self.page_bytes_target is None or rows == 0:
            return top
        wanted = int(self.page_bytes_target * rows / max(nbytes, 1))
        return max(self.page_size, min(self.max_page_size, wanted))

    def _pages(self, segments: Sequence[str], params: Mapping[str, Any], *, label: str) -> Iterator[list[dict]]:
        """`$top`/`$skip` pages under a fixed `$orderby` until a short page."""
        skip, top = 0, self.page_size
        while True:
            rows, nbytes = self._fetch(segments, {**params, "$top": top, "$skip": skip or None}, label=label)
            yield rows
            if len(rows) < top:
                return
            skip += len(rows)
            top = self._next_top(top, len(rows), nbytes)

    def read_catalog(
        self, entity_set: str, select: Sequence[str], *, filter: str | None = None, orderby: str = "Ref_Key"
    ) -> list[dict[str, Any]]:
        """All rows of a catalog (or any small set) under a fixed order, parsed."""
        params = {"$select": ",".join(select), "$filter": filter, "$orderby": orderby}
        rows: list[dict] = []
        for page in self._pages([entity_set], params, label=entity_set):
            rows.extend(page)
        return self._parse(entity_set, rows)

    def iter_windowed(
        self,
        entity_set: str,
        select: Sequence[str],
        *,
        date_field: str,
        key_fields: Sequence[str],
        since: date | datetime | None,
        until: date | datetime | None,
        filter: str | None = None,
        tie_order: Sequence[str] = ("Ref_Key",),
    ) -> Iterator[list[dict[str, Any]]]:
        """Rows with `since <= date_field < until`, page by page (parsed), read in date windows (at most a
        calendar month): a caller that lands each page never holds the whole read.

        Inside a window pages go by `$skip` under `$orderby=<date_field>,<tie_order>`. A window that needs
        more than `window_pages` pages is split: the rest is re-opened at the last instant read with a
        span shrunk to the density seen (spans grow back when windows get sparse). So `$skip` stays
        within a window of bounded size and the read is linear in the rows. Rows of the re-open instant
        read twice are dropped by `key_fields`.
        """
        since, until = self._bounds(entity_set, date_field, since, until, filter)
        if since is None:
            return
        order = ",".join([f"{date_field} asc"] + [f"{f} asc" for f in tie_order])
        state = {"span": None, "top": self.page_size}
        for start, end in month_windows(since, until):
            for page in self._read_window(entity_set, select, date_field, key_fields, start, end, filter, order, state):
                if page:
                    yield self._parse(entity_set, page)

    def _read_window(
        self, entity_set, select, date_field, key_fields, start, end, extra, order, state
    ) -> Iterator[list[dict]]:
        lower = wire.to_local(start, self.tz).isoformat()[:19]
        end_at = wire.to_local(end, self.tz).isoformat()[:19]
        seen_at_lower: set[tuple] = set()  # rows at the instant a window re-opened at: already taken
        while lower < end_at:
            span = state["span"]
            upper = end_at if span is None else min(end_at, (datetime.fromisoformat(lower) + span).isoformat()[:19])
            skip = pages = read_in_window = 0
            tail_at, tail_keys = "", set()  # the latest instant read in this pass and the keys read at it
            while True:
                flt = (
                    f"{date_field} ge {wire.datetime_literal(datetime.fromisoformat(lower), self.tz)} and "
                    f"{date_field} lt {wire.datetime_literal(datetime.fromisoformat(upper), self.tz)}"
                )
                if extra:
                    flt = f"({flt}) and ({extra})"
                top = state["top"]
                params = {
                    "$select": ",".join(select),
                    "$filter": flt,
                    "$orderby": order,
                    "$top": top,
                    "$skip": skip or None,
                }
                page, nbytes = self._fetch([entity_set], params, label=entity_set)
                pages += 1
                rows: list[dict] = []
                for row in page:
                    at, key = str(row.get(date_field, ""))[:19], tuple(row.get(k) for k in key_fields)
                    if at == lower and key in seen_at_lower:
                        continue
                    rows.append(row)
                    if at != tail_at:
                        tail_at, tail_keys = at, set()
                    tail_keys.add(key)
                yield rows
                if len(page) < top:  # window complete: size the next one to about two pages
                    state["span"] = _next_span(
                        datetime.fromisoformat(upper) - datetime.fromisoformat(lower),
                        read_in_window + len(page),
                        2 * state["top"],
                    )
                    lower, seen_at_lower = upper, set()
                    break
                state["top"] = self._next_top(top, len(page), nbytes)
                read_in_window += len(page)
                if pages >= self.window_pages and tail_at > lower:
                    # too dense: re-open at the last instant read with a span that fits about two pages
                    covered = datetime.fromisoformat(tail_at) - datetime.fromisoformat(lower)
                    state["span"] = _next_span(covered, read_in_window, 2 * state["top"])
                    lower, seen_at_lower = tail_at, set(tail_keys)
                    break
                skip += len(page)

    def _bounds(self, entity_set, date_field, since, until, extra):
        """Bounds as infobase-local naive datetimes: an open `since` from the earliest row (one `$top=1`
        probe), an open `until` = the next local midnight."""
        since = None if since is None else wire.to_local(since, self.tz)
        until = None if until is None else wire.to_local(until, self.tz)
        if until is None:
            midnight = datetime.now(self.tz).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
            until = midnight + timedelta(days=1)
        if since is None:
            params = {"$select": date_field, "$orderby": f"{date_field} asc", "$top": 1, "$filter": extra}
            first = _value(self._get_json([entity_set], params, label=entity_set), entity_set)
            if not first:
                return None, None
            since = datetime.fromisoformat(str(first[0][date_field])[:19])
        return since, until

    # ------------------------------------------------------------------------------------------------
    # reads (UNF names, reference §11)
    # ------------------------------------------------------------------------------------------------

    def versions(self, entity_set: str, *, include_folders: bool = True) -> dict[str, str]:
        """{Ref_Key: DataVersion} of every object of a catalog: a cheap read (two short fields a row) that says
        which objects changed since we read them (DataVersion moves on every write, even a no-op)."""
        declared = self.metadata.fields(entity_set)
        flt = None if include_folders or "IsFolder" not in declared else "IsFolder eq false"
        return {
            r["Ref_Key"]: r["DataVersion"]
            for r in self.read_catalog(entity_set, ["Ref_Key", "DataVersion"], filter=flt)
        }

    def _catalog_rows(self, entity_set: str, select: Sequence[str], refs: Sequence[str] | None) -> list[dict]:
        """The whole catalog, or only the objects `refs` (read `REFS_PER_FILTER` at a time)."""
        if refs is None:
            return self.read_catalog(entity_set, select)
        rows: list[dict] = []
        for flt in _any_of("Ref_Key", refs, REFS_PER_FILTER):
            rows += self.read_catalog(entity_set, select, filter=flt)
        return rows

    def counterparties(
        self, *, include_folders: bool = False, refs: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Catalog_Контрагенты with `email`/`phone` taken from КонтактнаяИнформация (first of each kind).
        Groups (`IsFolder`) are left out unless asked for; items marked for deletion are kept (DeletionMark).

        UNF has no e-mail/phone attributes: e-mail = АдресЭП (or Представление) where Тип =
        «АдресЭлектроннойПочты»; phone = НомерТелефона (or Представление) where Тип = «Телефон».
        """
        required, optional = CATALOG_FIELDS[COUNTERPARTIES]
        rows = self._catalog_rows(COUNTERPARTIES, self._select(COUNTERPARTIES, required, optional), refs)
        if not include_folders:
            rows = [r for r in rows if not r.get("IsFolder")]
        for row in rows:
            row["email"], row["phone"] = contact_email_phone(row.get("КонтактнаяИнформация") or [])
        defaults: dict[str, list[dict]] = {}
        for d in self.default_contracts(rows):
            defaults.setdefault(d["Контрагент_Key"], []).append(d)
        for row in rows:
            row["default_contracts"] = defaults.get(row["Ref_Key"], [])
        return rows

    def default_contracts(self, counterparties: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
        """The default contract of each counterparty: rows {Контрагент_Key, Организация_Key, ВидДоговора,
        Договор_Key}. UNF 3.0: InformationRegister_ОсновныеДоговорыКонтрагента (one per organisation and kind
        of contract); UNF 1.6: Catalog_Контрагенты.ДоговорПоУмолчанию (taken from `counterparties` as read,
        organisation and kind unknown). Neither published: none."""
        if self.metadata.has_set(DEFAULT_CONTRACTS):
            declared = self.metadata.fields(DEFAULT_CONTRACTS)
            party = "Контрагент" if "Контрагент" in declared else "Контрагент_Key"
            select = self._select(DEFAULT_CONTRACTS, ("Организация_Key", party, "Договор_Key"), ("ВидДоговора",))
            rows = self.read_catalog(DEFAULT_CONTRACTS, select, orderby=f"Организация_Key,{party}")
            return [
                {
                    "Контрагент_Key": r.get(party),
                    "Организация_Key": r.get("Организация_Key"),
                    "ВидДоговора": r.get("ВидДоговора"),
                    "Договор_Key": r.get("Договор_Key"),
                }
                for r in rows
                if r.get(f"{party}_Type", _CP_TYPE) == _CP_TYPE  # not an organisation
                and r.get("Договор_Key") not in (None, wire.ZERO_GUID)
            ]
        return [
            {
                "Контрагент_Key": r["Ref_Key"],
                "Организация_Key": None,
                "ВидДоговора": None,
                "Договор_Key": r["ДоговорПоУмолчанию_Key"],
            }
            for r in counterparties
            if r.get("ДоговорПоУмолчанию_Key") not in (None, "", wire.ZERO_GUID)
        ]

    def vat_rates(self) -> list[dict[str, Any]]:
        """Catalog_СтавкиНДС: Ставка, and in 3.0 the kind of rate each one is (ВидСтавкиНДС)."""
        return self.read_catalog(
            VAT_RATES,
            self._select(
                VAT_RATES,
                ("Ref_Key", "Description", "Ставка"),
                ("DeletionMark", "ВидСтавкиНДС", "Расчетная", "НеОблагается"),
            ),
        )

    def country(self, code: str) -> str | None:
        """Ref_Key of the Catalog_СтраныМира entry with this ОКСМ code (643 = Russia), None if absent."""
        if not self.metadata.has_set(COUNTRIES):
            return None
        rows = self.read_catalog(COUNTRIES, ["Ref_Key", "Code"], filter=f"Code eq {wire.string_literal(code)}")
        return rows[0]["Ref_Key"] if rows else None

    def contracts(self, refs: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Catalog_ДоговорыКонтрагентов; the owning counterparty is always given as `Owner_Key`.

        UNF 3.0 lets a contract belong to a counterparty or an organisation (composite `Owner` + `Owner_Type`,
        Catalogs/ДоговорыКонтрагентов.xml); 1.6 to counterparties only (`Owner_Key`). An organisation's
        contract has no counterparty: `Owner_Key` None.
        """
        required, optional = CATALOG_FIELDS[CONTRACTS]
        declared = self.metadata.fields(CONTRACTS) if self.metadata.has_set(CONTRACTS) else {}
        owner = "Owner" if "Owner" in declared and "Owner_Key" not in declared else "Owner_Key"
        rows = self._catalog_rows(CONTRACTS, self._select(CONTRACTS, required + (owner,), optional), refs)
        if owner == "Owner":
            for row in rows:
                kind = str(row.get("Owner_Type") or "").rsplit(".", 1)[-1]
                row["Owner_Key"] = row.get("Owner") if kind in (COUNTERPARTIES, "") else None
        return rows

    def items(self, refs: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Catalog_Номенклатура (groups included: see `IsFolder`)."""
        required, optional = CATALOG_FIELDS[ITEMS]
        return self._catalog_rows(ITEMS, self._select(ITEMS, required, optional), refs)

    def price_types(self) -> list[dict[str, Any]]:
        """Catalog_ВидыЦен."""
        required, optional = CATALOG_FIELDS[PRICE_TYPES]
        return self.read_catalog(PRICE_TYPES, self._select(PRICE_TYPES, required, optional))

    def prices(self, as_of: date | datetime | None = None, price_type: str | None = None) -> list[dict[str, Any]]:
        """Last prices per item (InformationRegister_ЦеныНоменклатуры/SliceLast) at `as_of` (default: now).

        A date means "end of that day" (the slice is taken at the next midnight).
        """
        args = []
        if as_of is not None:
            args.append(f"Period={wire.datetime_literal(_end_of(as_of), self.tz)}")
        if price_type:
            # the Condition is a string literal inside the path: inner quotes are doubled
            args.append("Condition=" + wire.string_literal(f"ВидЦен_Key eq {wire.guid_literal(price_type)}"))
        fn = f"SliceLast({','.join(args)})" if args else "SliceLast()"
        label = f"{PRICES}/SliceLast"
        select = self._select(
            label,
            ("Номенклатура_Key", "ВидЦен_Key", "Цена"),
            ("Period", "Характеристика_Key", "ЕдиницаИзмерения", "ЕдиницаИзмерения_Key"),
        )
        order = [f for f in ("Номенклатура_Key", "ВидЦен_Key", "Характеристика_Key") if f in select]
        params = {"$select": ",".join(select), "$orderby": ",".join(f"{f} asc" for f in order)}
        rows: list[dict] = []
        for page in self._pages([PRICES, fn], params, label=label):
            rows.extend(page)
        return self._parse(label, rows)

    def documents(self, entity_set: str, since=None, until=None, **how) -> list[dict[str, Any]]:
        """Every document `iter_documents` reads, as one list."""
        return _rows(self.iter_documents(entity_set, since, until, **how))

    def iter_documents(
        self,
        entity_set: str,
        since: date | datetime | None = None,
        until: date | datetime | None = None,
        *,
        select: Sequence[str] | None = None,
        filter: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Documents of one set with `since <= Date < until` (open ends: from the first / until tomorrow),
        page by page."""
        self.metadata.require(entity_set)
        party = self._ref_field(entity_set, "Контрагент")
        if select is None:
            required, optional = DOCUMENT_FIELDS.get(
                entity_set, (("Ref_Key", "Number", "Date", "Posted", "DeletionMark"), ())
            )
            required = tuple(party if f == "Контрагент_Key" else f for f in required)
            select = self._select(entity_set, required, optional)
        else:
            select = self._select(entity_set, select)
        pages = self.iter_windowed(
            entity_set, select, date_field="Date", key_fields=("Ref_Key",), since=since, until=until, filter=filter
        )
        for rows in pages:
            if party == "Контрагент":  # composite on payments in some releases: give the ref under one name
                for row in rows:
                    row.setdefault("Контрагент_Key", row.get("Контрагент"))
            yield rows

    def _movements(
        self,
        register: str,
        required: Sequence[str],
        optional: Sequence[str],
        since,
        until,
        *,
        turnover: bool = False,
        filter: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Register movements, page by page; `turnover`: a turnover register, whose rows have no RecordType."""
        entity_set = f"{register}_RecordType"
        declared = self.metadata.fields(entity_set) if self.metadata.has_set(entity_set) else {}
        recorder = "Recorder_Key" if "Recorder_Key" in declared else "Recorder"
        base = ("Period", recorder, "LineNumber") + (() if turnover else ("RecordType",))
        select = self._select(entity_set, tuple(base) + tuple(required), ("Active",) + tuple(optional))
        return self.iter_windowed(
            entity_set,
            select,
            date_field="Period",
            key_fields=(recorder, "LineNumber"),
            since=since,
            until=until,
            tie_order=(recorder, "LineNumber"),
            filter=filter,
        )

    def settlement_movements(self, since=None, until=None, **how) -> list[dict[str, Any]]:
        """Every movement `iter_settlement_movements` reads, as one list."""
        return _rows(self.iter_settlement_movements(since, until, **how))

    def iter_settlement_movements(
        self,
        since: date | datetime | None = None,
        until: date | datetime | None = None,
        *,
        counterparties: Sequence[str] = (),
    ) -> Iterator[list[dict[str, Any]]]:
        """Movements of AccumulationRegister_РасчетыСПокупателями (`_RecordType`) with since <= Period < until,
        page by page; with `counterparties` (Ref_Keys), only theirs: a client's whole history re-read when its
        balance disagrees with 1C's, in groups small enough for IIS's query-string limit."""
        for flt in _any_of("Контрагент_Key", counterparties, COUNTERPARTIES_PER_FILTER) if counterparties else [None]:
            yield from self._movements(
                SETTLEMENTS,
                SETTLEMENT_DIMENSIONS + ("Сумма",),
                SETTLEMENT_OPTIONAL + ("СуммаВал", "СуммаРег"),
                since,
                until,
                filter=flt,
            )

    def invoice_payments(self, since=None, until=None) -> list[dict[str, Any]]:
        """Every movement `iter_invoice_payments` reads, as one list."""
        return _rows(self.iter_invoice_payments(since, until))

    def iter_invoice_payments(
        self, since: date | datetime | None = None, until: date | datetime | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Movements of AccumulationRegister_ОплатаСчетовИЗаказов (invoice/order obligation and payments), page
        by page.

        A turnover register in UNF 3.0 and 1.6 (AccumulationRegisters/ОплатаСчетовИЗаказов.xml,
        RegisterType Turnovers): its rows carry no RecordType, every movement adds to the turnover.
        """
        return self._movements(
            INVOICE_PAYMENTS,
            ("СчетНаОплату", "Сумма"),
            ("СуммаОплаты", "СуммаАванса", "Организация_Key", "Контрагент_Key"),
            since,
            until,
            turnover=True,
        )

    def receivables_balance(
        self,
        as_of: date | datetime | None = None,
        *,
        dimensions: Sequence[str] | None = ("Контрагент", "Договор", "ТипРасчетов"),
    ) -> list[dict[str, Any]]:
        """AccumulationRegister_РасчетыСПокупателями/Balance: non-zero balances, by default per
        counterparty × contract × ТипРасчетов (`Dimensions=`), `dimensions=None` for every dimension.

        A date includes the whole day (the balance is taken at the next midnight: 1C excludes movements
        at the boundary instant). Zero rows are dropped here because 1C refuses filters on resources.
        Pages are ordered by all returned dimensions, so `$skip` paging cannot overlap.
        """
        label = f"{SETTLEMENTS}/Balance"
        self.metadata.require(label, ["СуммаBalance"])
        declared = self.metadata.fields(label)
        names = (
            list(dimensions)
            if dimensions
            else [
                d
                for d in ("Организация", "Контрагент", "Договор", "Документ", "Заказ", "ТипРасчетов")
                if d in declared or f"{d}_Key" in declared
            ]
        )
        dim_fields = [f"{d}_Key" if f"{d}_Key" in declared else d for d in names]
        args = []
        if as_of is not None:
            args.append(f"Period={wire.datetime_literal(_end_of(as_of), self.tz)}")
        if dimensions:
            args.append("Dimensions=" + wire.string_literal(",".join(names)))
        fn = f"Balance({','.join(args)})"
        select = self._select(label, dim_fields + ["СуммаBalance"], ("СуммаВалBalance", "СуммаРегBalance"))
        order = ",".join(f"{f} asc" for f in dim_fields)
        rows: list[dict] = []
        for page in self._pages([SETTLEMENTS, fn], {"$select": ",".join(select), "$orderby": order}, label=label):
            rows.extend(page)
        return [r for r in self._parse(label, rows) if r.get("СуммаBalance")]

    def find_by_marker(self, entity_set: str, marker: str, *, field: str = "Комментарий") -> list[dict[str, Any]]:
        """Objects whose `field` contains `marker` (`substringof('<marker>', field)`)."""
        self.metadata.require(entity_set, [field])
        flt = f"substringof({wire.string_literal(marker)}, {field})"
        params = {"$select": "Ref_Key," + field, "$filter": flt, "$orderby": "Ref_Key"}
        doc = self._get_json([entity_set], params, label=entity_set)
        return self._parse(entity_set, _value(doc, entity_set))

    def get_object(self, entity_set: str, ref: str, select: Sequence[str] | None = None) -> dict[str, Any] | None:
        """One object by Ref_Key, or None if 1C says it does not exist (404 code 9)."""
        params = {"$select": ",".join(select)} if select else {}
        try:
            doc = self._get_json([f"{entity_set}({wire.guid_literal(ref)})"], params, label=entity_set)
        except OneCRequestError as exc:
            if exc.status == 404 and exc.code in ("9", None):
                return None
            raise
        return self._parse(entity_set, [doc])[0]

    # ------------------------------------------------------------------------------------------------
    # writes: never retried blindly
    # ------------------------------------------------------------------------------------------------

    def _create(self, entity_set: str, body: dict, marker: str, marker_field: str) -> dict[str, Any]:
        """POST; on an unknown outcome find the object by its marker (found -> it, absent -> WriteNotApplied)."""
        self.metadata.require(entity_set, [k for k in body if "@" not in k and k != marker_field] + [marker_field])
        try:
            resp = self._send("POST", [entity_set], {"$format": "json"}, body, label=entity_set)
        except OneCError as exc:
            if not _unknown_outcome(exc):
                raise
            self.stats.reconciliations += 1
            found = self.find_by_marker(entity_set, marker, field=marker_field)
            if len(found) > 1:
                raise OneCError(
                    f"1C OData POST {entity_set} on {self.host}: {len(found)} objects carry the "
                    f"same marker after an unknown outcome; resolve by hand"
                ) from None
            if not found:
                raise WriteNotApplied(
                    f"1C OData POST {entity_set} on {self.host}: outcome unknown ({exc}); "
                    "no object with the marker, safe to create again",
                    cause=exc,
                ) from None
            log.info("1C POST %s on %s: outcome unknown, found by marker", entity_set, self.host)
            return self.get_object(entity_set, found[0]["Ref_Key"]) or found[0]
        return self._parse(entity_set, [wire.loads(resp.content)])[0]

    def create_counterparty(self, fields: Mapping[str, Any], marker: str) -> dict[str, Any]:
        """POST a Catalog_Контрагенты item; `marker` (unique per planned write) is appended to Комментарий."""
        body = _with_marker(dict(fields), marker, "Комментарий")
        return self._create(COUNTERPARTIES, body, marker, "Комментарий")

    def update_object(self, entity_set: str, ref: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH an object (tabular sections in `fields` replace the old rows wholesale). On an unknown
        outcome the object is re-read: shows the sent values -> returned; otherwise WriteNotApplied
        (PATCH is not repeated blindly)."""
        self.metadata.require(entity_set, [k for k in fields if "@" not in k])
        segment = f"{entity_set}({wire.guid_literal(ref)})"
        try:
            resp = self._send("PATCH", [segment], {"$format": "json"}, dict(fields), label=entity_set)
        except OneCError as exc:
            if not _unknown_outcome(exc):
                raise
            self.stats.reconciliations += 1
            current = self.get_object(entity_set, ref)
            if current is not None and _shows(current, self._typed(entity_set, fields)):
                return current
            raise WriteNotApplied(
                f"1C OData PATCH {entity_set} on {self.host}: outcome unknown ({exc}); "
                "the object does not show the new values",
                cause=exc,
            ) from None
        return self._parse(entity_set, [wire.loads(resp.content)])[0]

    def _typed(self, entity_set: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Values as a read would return them (to compare what was sent with what 1C holds)."""
        return wire.RowParser(self.metadata.fields(entity_set), self.tz, self.metadata.row_types(entity_set))(
            wire.loads(_dumps(dict(fields), self.tz))
        )

    def update_counterparty(self, ref: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH a Catalog_Контрагенты item (see `update_object`)."""
        return self.update_object(COUNTERPARTIES, ref, fields)

    def update_customer_order(
        self, ref: str, header: Mapping[str, Any], rows: Sequence[Mapping[str, Any]] | None = None
    ) -> dict[str, Any]:
        """PATCH an order's header and, if given, all its `Запасы` rows (LineNumber 1..n).

        1C refuses new rows on a posted order (500): `unpost_document` first, `post_document` after.
        """
        body = dict(header)
        if rows is not None:
            body["Запасы"] = self._fit_rows(ORDERS, "Запасы", rows)
        order = self.update_object(ORDERS, ref, body)
        if rows is not None:
            self._verify_rows(ORDERS, order, "Запасы", body["Запасы"], ITEM_REF)
        return order

    def create_customer_order(
        self, header: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], marker: str, *, post: bool = False
    ) -> dict[str, Any]:
        """POST a Document_ЗаказПокупателя with its `Запасы` rows (LineNumber 1..n), marker in Комментарий.

        With `post=True` the order is then posted (`Post`, non-operational) and re-read.
        """
        body = _with_marker(dict(header), marker, "Комментарий")
        body["Запасы"] = self._fit_rows(ORDERS, "Запасы", rows)
        order = self._create(ORDERS, body, marker, "Комментарий")
        self._verify_rows(ORDERS, order, "Запасы", body["Запасы"], ITEM_REF)
        if post:
            self.post_document(ORDERS, order["Ref_Key"])
            order = self.get_object(ORDERS, order["Ref_Key"]) or order
        return order

    def _fit_rows(self, entity_set: str, section: str, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Rows (LineNumber 1..n) with each reference in the shape `$metadata` declares for the section: a
        reference given as a composite (`X` + `X_Type`, as in 3.0's `Запасы.Номенклатура`) goes as `X_Key`
        where the row has a single reference (UNF 1.6). 1C ignores a property the row does not have, so a
        wrong shape would save a row with no item (`_verify_rows` catches what this cannot)."""
        declared = self.metadata.row_types(entity_set).get(section, {})
        out = []
        for i, row in enumerate(rows, start=1):
            fitted = dict(row)
            for name in [k for k in row if k.endswith("_Type")]:
                base = name[: -len("_Type")]
                if f"{base}_Key" in declared and base not in declared:
                    fitted[f"{base}_Key"] = fitted.pop(base, None)
                    fitted.pop(name)
            out.append({**fitted, "LineNumber": str(i)})
        return out

    def _verify_rows(
        self,
        entity_set: str,
        saved: Mapping[str, Any],
        section: str,
        sent: Sequence[Mapping[str, Any]],
        refs: Sequence[str],
    ) -> None:
        """The object as 1C answered the write must carry each reference sent in each row (`refs`: base
        names); else WriteNotVerified naming the row and field (a property 1C did not know was dropped)."""
        have = saved.get(section) or []
        for i, row in enumerate(sent):
            for base in refs:
                field = base if base in row else f"{base}_Key"
                if field not in row:
                    continue
                got = have[i].get(field) if i < len(have) and isinstance(have[i], Mapping) else None
                if str(got or "").lower() != str(row[field] or "").lower():
                    raise WriteNotVerified(
                        f"1C OData {entity_set} {saved.get('Ref_Key')} on {self.host}: row {i + 1} of {section} "
                        f"was saved with {field}={got!r}, not the {row[field]!r} sent (a property 1C does not "
                        f"have is ignored: check the shape in $metadata)"
                    )

    def post_document(self, entity_set: str, ref: str, *, operational: bool = False) -> None:
        """POST …/Document_X(guid'…')/Post. On an unknown outcome reads `Posted` back to decide."""
        try:
            self._send(
                "POST",
                [f"{entity_set}({wire.guid_literal(ref)})", "Post"],
                {"PostingModeOperational": "true" if operational else "false"},
                label=f"{entity_set}/Post",
            )
        except OneCError as exc:
            if not _unknown_outcome(exc):
                raise
            self.stats.reconciliations += 1
            current = self.get_object(entity_set, ref, ["Ref_Key", "Posted"])
            if not (current and current.get("Posted")):
                if _refused(exc):  # the configuration's own checks said no: the same Post fails again
                    raise
                raise WriteNotApplied(
                    f"1C OData Post {entity_set} on {self.host}: outcome unknown ({exc}); the document is not posted",
                    cause=exc,
                ) from None

    def unpost_document(self, entity_set: str, ref: str) -> None:
        """POST …/Document_X(guid'…')/Unpost. On an unknown outcome reads `Posted` back to decide."""
        try:
            self._send(
                "POST", [f"{entity_set}({wire.guid_literal(ref)})", "Unpost"], None, label=f"{entity_set}/Unpost"
            )
        except OneCError as exc:
            if not _unknown_outcome(exc):
                raise
            self.stats.reconciliations += 1
            current = self.get_object(entity_set, ref, ["Ref_Key", "Posted"])
            if current is None or current.get("Posted"):
                raise WriteNotApplied(
                    f"1C OData Unpost {entity_set} on {self.host}: outcome unknown ({exc}); "
                    "the document is still posted",
                    cause=exc,
                ) from None


# -- helpers --------------------------------------------------------------------------------------------


def _rows(pages: Iterable[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """A paged read as one list (for callers that want it whole)."""
    return [row for page in pages for row in page]


def _any_of(field: str, refs: Sequence[str], per: int) -> Iterator[str]:
    """`field eq guid'…' or …` filters over the distinct `refs`, `per` terms each (IIS caps the query string)."""
    wanted = sorted(set(refs))
    for start in range(0, len(wanted), per):
        yield " or ".join(f"{field} eq {wire.guid_literal(ref)}" for ref in wanted[start : start + per])


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, OneCConnectionError) or (isinstance(exc, OneCRequestError) and exc.transient)


def _is_retryable_get(exc: BaseException) -> bool:
    """What an idempotent GET retries: no answer, a gateway/overload status, or 1C's 500 (see `_get`)."""
    return _is_transient(exc) or (isinstance(exc, OneCRequestError) and exc.status in RETRY_STATUSES)


def _unknown_outcome(exc: Exception) -> bool:
    """A write may or may not have happened: no answer, or a 5xx (1C can fail after committing)."""
    return isinstance(exc, OneCConnectionError) or (
        isinstance(exc, OneCRequestError) and exc.status is not None and exc.status >= 500
    )


def _refused(exc: Exception) -> bool:
    """A 500 carrying the configuration's own message (a fill check at Post, «Не удалось провести …»), not
    the platform's generic internal error nor a gateway page: 1C said no, and will say it again."""
    return (
        isinstance(exc, OneCRequestError)
        and exc.status == 500
        and exc.code == "-1"
        and bool(exc.message)
        and not exc.message.startswith("Произошла внутренняя ошибка")
    )


def _shows(current: Mapping[str, Any], sent: Mapping[str, Any]) -> bool:
    """Does the object read back carry every value sent (tabular rows compared column by column)?"""
    for name, value in sent.items():
        have = current.get(name)
        if isinstance(value, list):
            if not isinstance(have, list) or len(have) != len(value):
                return False
            if not all(_shows(h, v) for h, v in zip(have, value) if isinstance(v, Mapping) and isinstance(h, Mapping)):
                return False
        elif have != value:
            return False
    return True


def _other_shape(name: str) -> str | None:
    """`X_Key` <-> `X`: the other way 1C may publish the same reference (plain vs composite)."""
    if name.endswith("_Key"):
        return name[:-4] or None
    if "/" in name or name.endswith("_Type"):
        return None
    return f"{name}_Key"


def _value(doc: Any, label: str) -> list[dict]:
    if not isinstance(doc, dict) or not isinstance(doc.get("value"), list):
        raise OneCWireError(f"1C OData {label}: answer has no 'value' list")
    return doc["value"]


def _with_marker(body: dict, marker: str, field: str) -> dict:
    current = str(body.get(field) or "")
    if marker not in current:
        body[field] = f"{current} {marker}".strip()
    return body


def _next_span(span: timedelta, rows: int, target_rows: int) -> timedelta | None:
    """The window span that should hold about `target_rows` at the density just seen (None = a month)."""
    if rows <= 0:
        return None if span >= timedelta(days=8) else span * 4
    wanted = span * min(4.0, target_rows / rows)
    if wanted >= timedelta(days=31):
        return None
    return max(timedelta(seconds=1), wanted)


def _end_of(value: date | datetime) -> date | datetime:
    """A date -> the next midnight (to include the whole day); a datetime as is."""
    if isinstance(value, datetime):
        return value
    return datetime.combine(value + timedelta(days=1), datetime.min.time())


def month_windows(since: date | datetime, until: date | datetime) -> list[tuple[datetime, datetime]]:
    """[since, until) cut at calendar-month starts (naive datetimes, or aware ones kept aware)."""
    start = since if isinstance(since, datetime) else datetime.combine(since, datetime.min.time())
    end = until if isinstance(until, datetime) else datetime.combine(until, datetime.min.time())
    if start.tzinfo is not None and end.tzinfo is None:
        end = end.replace(tzinfo=start.tzinfo)
    if end.tzinfo is not None and start.tzinfo is None:
        start = start.replace(tzinfo=end.tzinfo)
    out = []
    while start < end:
        days = monthrange(start.year, start.month)[1]
        nxt = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days)
        out.append((start, min(nxt, end)))
        start = nxt
    return out


def contact_email_phone(rows: Iterable[Mapping[str, Any]]) -> tuple[str | None, str | None]:
    """First e-mail and first phone of a КонтактнаяИнформация table section."""
    email = phone = None
    for row in rows:
        kind = row.get("Тип")
        if kind == "АдресЭлектроннойПочты" and email is None:
            email = row.get("АдресЭП") or row.get("Представление") or None
        elif kind == "Телефон" and phone is None:
            phone = row.get("НомерТелефона") or row.get("Представление") or None
    return email, phone


def _dumps(body: Any, tz: ZoneInfo) -> str:
    """JSON for 1C: Decimal as a number with its exact digits, datetimes as infobase-local `yyyy-mm-ddThh:mm:ss`."""
    digits: list[str] = []

    def swap(obj):
        # json has no raw-number hook: Decimals become placeholders, substituted after dumping
        if isinstance(obj, Decimal):
            digits.append(format(obj, "f"))
            return f"\x00dec{len(digits) - 1}\x00"
        if isinstance(obj, (datetime, date)):
            return wire.to_local(obj, tz).isoformat()
        if isinstance(obj, dict):
            return {k: swap(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [swap(v) for v in obj]
        return obj

    text = json.dumps(swap(body), ensure_ascii=False)
    for i, value in enumerate(digits):
        text = text.replace(f'"\\u0000dec{i}\\u0000"', value, 1)
    return text
