"""The sandbox 1C OData server over real loopback HTTP: reads, query options, quirks, errors, auth, faults."""

from __future__ import annotations

import base64
from datetime import timedelta
from decimal import Decimal
from urllib.parse import quote, urlencode

import pytest
import requests
from lxml import etree

from b24_1c_assets.sandbox.faults import Faults
from b24_1c_assets.sandbox.onec_seed import counterparty_guid, order_per_row
from b24_1c_assets.sandbox.onec_server import OneCServer

EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
CP = "Catalog_Контрагенты"
SETTLEMENTS = "AccumulationRegister_РасчетыСПокупателями"


@pytest.fixture(scope="module")
def reader(world):
    """One read-only server for the module (stable order so paging assertions are exact)."""
    server = OneCServer(world, password="пароль-1", shuffle_unordered=False).start()
    yield server
    server.stop()


def url(server, path: str, **params) -> str:
    """Percent-encode like a careful client: spaces as %20, never '+'."""
    q = urlencode(params, quote_via=quote, safe="$'(),/:=*") if params else ""
    return f"{server.odata_url}/{quote(path, safe=chr(39) + '()=,/$:')}" + (f"?{q}" if q else "")


def creds(server) -> tuple[bytes, bytes]:
    """Basic-auth credentials as UTF-8 bytes (requests would encode str as latin-1)."""
    return server.username.encode(), server.password.encode()


def get(server, path: str, raw_query: str | None = None, **params) -> requests.Response:
    target = url(server, path, **params)
    if raw_query is not None:
        target = f"{server.odata_url}/{quote(path, safe=chr(39) + '()=,/$:')}?{raw_query}"
    return requests.get(target, auth=creds(server), timeout=10)


def jget(server, path: str, **params) -> dict:
    r = get(server, path, **{"$format": "json", **params})
    assert r.status_code == 200, r.text
    return r.json(parse_float=Decimal)


def error_of(r: requests.Response) -> tuple[int, str, str]:
    body = r.json()["odata.error"]
    return r.status_code, body["code"], body["message"]["value"]


# -- service document, metadata, auth ------------------------------------------------------------------
def test_service_document_lists_published_sets_in_atom_and_json(reader):
    atom = get(reader, "")
    assert atom.status_code == 200 and "xml" in atom.headers["Content-Type"]
    hrefs = etree.fromstring(atom.content).xpath("//*[local-name()='collection']/@href")
    assert CP in hrefs and SETTLEMENTS in hrefs and f"{SETTLEMENTS}_RecordType" in hrefs
    js = jget(reader, "")
    section = "Catalog_Контрагенты_КонтактнаяИнформация"
    assert {"name": section, "url": section} in js["value"]


def test_metadata_is_edmx_v3_with_1c_container_and_unf_names(reader):
    r = get(reader, "$metadata")
    assert r.status_code == 200 and "xml" in r.headers["Content-Type"]
    doc = etree.fromstring(r.content)
    m = "http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"
    assert doc.find("{*}DataServices").get(f"{{{m}}}DataServiceVersion") == "3.0"
    schema = doc.find(".//{http://schemas.microsoft.com/ado/2009/11/edm}Schema")
    assert schema.get("Namespace") == "StandardODATA"
    assert schema.find("{*}EntityContainer").get("Name") == "EnterpriseV8"
    cp = schema.find("{*}EntityType[@Name='Catalog_Контрагенты']")
    props = {p.get("Name"): p.get("Type") for p in cp.findall("{*}Property")}
    assert props["Ref_Key"] == "Edm.Guid" and props["ИНН"] == "Edm.String"
    assert props["КонтактнаяИнформация"] == "Collection(StandardODATA.Catalog_Контрагенты_КонтактнаяИнформация_RowType)"
    rows = schema.find("{*}EntityType[@Name='AccumulationRegister_РасчетыСПокупателями_RecordType']")
    row_props = {p.get("Name"): p.get("Type") for p in rows.findall("{*}Property")}
    assert row_props["LineNumber"] == "Edm.Int64" and row_props["Документ_Type"] == "Edm.String"
    functions = {
        (f.get("Name"), f.find("{*}Parameter").get("Type"))
        for f in schema.find("{*}EntityContainer").findall("{*}FunctionImport")
    }
    assert ("Balance", f"StandardODATA.{SETTLEMENTS}") in functions
    assert ("SliceLast", "StandardODATA.InformationRegister_ЦеныНоменклатуры") in functions
    assert ("Post", "StandardODATA.Document_ЗаказПокупателя") in functions


def test_basic_auth_required_and_utf8_credentials(world, onec_factory):
    server = onec_factory(username="интеграция", password="секрет")
    assert requests.get(server.odata_url + "/$metadata", timeout=5).status_code == 401
    wrong = ("интеграция".encode(), "нет".encode())
    assert requests.get(server.odata_url + "/$metadata", auth=wrong, timeout=5).status_code == 401
    cp1251 = base64.b64encode("интеграция:секрет".encode("cp1251")).decode()
    r = requests.get(server.odata_url + "/$metadata", headers={"Authorization": f"Basic {cp1251}"}, timeout=5)
    assert r.status_code == 401
    utf8 = base64.b64encode("интеграция:секрет".encode()).decode()
    r = requests.get(server.odata_url + "/$metadata", headers={"Authorization": f"Basic {utf8}"}, timeout=5)
    assert r.status_code == 200


def test_unknown_and_unpublished_sets_are_404(world, onec_factory, reader):
    status, code, text = error_of(get(reader, "Catalog_Нет", **{"$format": "json"}))
    assert (status, code) == (404, "6") and "Catalog_Нет" in text
    partial = onec_factory(unpublished={"Catalog_Номенклатура"})
    r = get(partial, "Catalog_Номенклатура", **{"$format": "json"})
    assert r.status_code == 404
    assert 'StandardODATA.Catalog_Номенклатура"' not in get(partial, "$metadata").text
    assert get(partial, "Catalog_Валюты", **{"$format": "json"}).status_code == 200


def test_key_not_found_is_404_code_9(reader):
    r = get(reader, f"{CP}(guid'{EMPTY_GUID}')", **{"$format": "json"})
    assert error_of(r)[:2] == (404, "9")


# -- formats and wire types --------------------------------------------------------------------------
def test_atom_by_default_json_on_request(reader):
    atom = get(reader, "Catalog_Валюты")
    assert atom.headers["Content-Type"].startswith("application/atom+xml")
    feed = etree.fromstring(atom.content)
    assert feed.tag == "{http://www.w3.org/2005/Atom}feed" and feed.findall("{*}entry")
    by_accept = requests.get(
        url(reader, "Catalog_Валюты"), auth=creds(reader), headers={"Accept": "application/json"}, timeout=5
    )
    body = by_accept.json()
    assert body["odata.metadata"].endswith("$metadata#Catalog_Валюты") and body["value"][0]["Description"]
    assert "odata.nextLink" not in body


def test_wire_types_int64_strings_doubles_numbers_empty_refs(reader, world):
    orders = jget(reader, "Document_ЗаказПокупателя", **{"$top": "5", "$orderby": "Date"})["value"]
    row = orders[0]["Запасы"][0]
    assert row["LineNumber"] == "1" and isinstance(row["Цена"], Decimal)
    assert row["Номенклатура_Type"] == "StandardODATA.Catalog_Номенклатура"
    contracts = jget(reader, "Catalog_ДоговорыКонтрагентов", **{"$top": "1"})["value"]
    assert isinstance(contracts[0]["СрокОплатыПокупателя"], str)
    cps = jget(reader, CP, **{"$top": "1"})["value"][0]
    assert cps["Parent_Key"] == EMPTY_GUID and isinstance(cps["DataVersion"], str)
    docs = jget(reader, "Document_СчетНаОплату", **{"$top": "200"})["value"]
    assert any(
        d["ДокументОснование_Type"] in ("StandardODATA.Undefined", "StandardODATA.Document_ЗаказПокупателя")
        for d in docs
    )


# -- query options -----------------------------------------------------------------------------------
def test_select_fields_star_doublestar_and_unknown(reader):
    one = jget(reader, CP, **{"$top": "1", "$select": "Ref_Key, ИНН"})["value"][0]
    assert set(one) == {"Ref_Key", "ИНН"}
    star = jget(reader, CP, **{"$top": "1", "$select": "*"})["value"][0]
    assert "КонтактнаяИнформация" in star and "Description" in star
    dstar = jget(reader, CP, **{"$top": "1", "$select": "**"})["value"][0]
    assert "КонтактнаяИнформация" not in dstar and "Description" in dstar
    sub = jget(reader, "Document_ЗаказПокупателя", **{"$top": "1", "$select": "Ref_Key,Запасы/Цена"})["value"][0]
    assert set(sub["Запасы"][0]) == {"LineNumber", "Цена"}
    r = get(reader, CP, **{"$format": "json", "$select": "Ref_Key,Телефон"})
    status, code, text = error_of(r)
    assert (status, code) == (400, "6") and "Телефон" in text


def test_presentation_suffix_names_referenced_objects(reader):
    rows = jget(reader, "Catalog_ДоговорыКонтрагентов", **{"$top": "3", "$select": "Owner,Owner____Presentation"})
    for row in rows["value"]:
        owner = jget(reader, f"{CP}(guid'{row['Owner']}')")
        assert row["Owner____Presentation"] == owner["Description"]
    own = jget(reader, CP, **{"$top": "2", "$select": "Ref_Key, Presentation, Description"})["value"]
    assert all(r["Presentation"] == r["Description"] for r in own)


def test_orderby_ref_is_presentation_order_and_skip_before_top(reader):
    full = jget(reader, CP, **{"$orderby": "Ref_Key", "$select": "Ref_Key,Description,Code"})["value"]
    assert [(r["Description"], r["Code"]) for r in full] == sorted((r["Description"], r["Code"]) for r in full)
    assert [r["Ref_Key"] for r in full] != sorted(r["Ref_Key"] for r in full)
    page = get(reader, CP, raw_query="$top=2&$skip=3&$orderby=Ref_Key&$format=json").json()["value"]
    assert [r["Ref_Key"] for r in page] == [r["Ref_Key"] for r in full[3:5]]
    desc = jget(reader, CP, **{"$orderby": "Description desc", "$select": "Description"})["value"]
    assert [r["Description"] for r in desc] == sorted((r["Description"] for r in desc), reverse=True)


def test_no_orderby_gives_unstable_order_when_shuffling(onec_factory):
    server = onec_factory(shuffle_unordered=True)
    first = [r["Ref_Key"] for r in jget(server, CP, **{"$select": "Ref_Key"})["value"]]
    second = [r["Ref_Key"] for r in jget(server, CP, **{"$select": "Ref_Key"})["value"]]
    assert sorted(first) == sorted(second) and first != second
    stable = onec_factory(shuffle_unordered=False)
    a = [r["Ref_Key"] for r in jget(stable, CP, **{"$select": "Ref_Key"})["value"]]
    assert a == [r["Ref_Key"] for r in jget(stable, CP, **{"$select": "Ref_Key"})["value"]]


def test_inlinecount_is_string_and_ignores_skip_top(reader):
    total = len(jget(reader, CP, **{"$select": "Ref_Key"})["value"])
    body = jget(reader, CP, **{"$inlinecount": "allpages", "$top": "2", "$skip": "1", "$select": "Ref_Key"})
    assert body["odata.count"] == str(total) and len(body["value"]) == total


def test_inlinecount_can_honour_paging_when_configured(onec_factory):
    server = onec_factory(inlinecount_ignores_paging=False)
    body = jget(server, CP, **{"$inlinecount": "allpages", "$top": "0"})
    assert body["value"] == [] and int(body["odata.count"]) > 0


def test_count_segment_returns_bare_number(reader, world):
    legal = sum(len(p.onec_spellings) for p in world.parties if p.kind == "legal")
    r = get(reader, f"{CP}/$count", **{"$filter": "ВидКонтрагента eq 'ЮридическоеЛицо'"})
    assert r.status_code == 200 and r.text == str(legal)


def test_filters_strings_dates_navigation_lambda_composites(reader, world):
    party = next(p for p in world.parties if p.onec_spellings and p.onec_spellings[0].inn)
    inn = party.onec_spellings[0].inn
    hits = jget(reader, CP, **{"$filter": f"ИНН eq '{inn}'"})["value"]
    assert counterparty_guid(world, party.key) in {h["Ref_Key"] for h in hits}
    assert all(h["ИНН"] == inn for h in hits)
    by_party = jget(reader, "Document_ЗаказПокупателя", **{"$filter": f"Контрагент/ИНН eq '{inn}'"})["value"]
    assert by_party and all(o["Контрагент_Key"] in {h["Ref_Key"] for h in hits} for o in by_party)
    # UNF 3.0's contract owner is composite: no navigation through it (1C wants cast(Owner, ...) there)
    assert get(reader, "Catalog_ДоговорыКонтрагентов", **{"$filter": f"Owner/ИНН eq '{inn}'"}).status_code == 400
    sub = jget(reader, CP, **{"$filter": f"substringof('{party.onec_spellings[0].title[-4:]}', Description)"})
    assert any(h["Ref_Key"] == counterparty_guid(world, party.key) for h in sub["value"])
    dates = sorted(o.date for o in world.orders)
    lo, hi = dates[len(dates) // 4], dates[len(dates) // 2]
    window = jget(
        reader,
        "Document_ЗаказПокупателя",
        **{
            "$filter": f"Date ge datetime'{lo:%Y-%m-%dT%H:%M:%S}' and Date lt datetime'{hi:%Y-%m-%dT%H:%M:%S}'",
            "$select": "Date",
        },
    )["value"]
    lo_s, hi_s = lo.replace(microsecond=0), hi.replace(microsecond=0)
    assert len(window) == sum(1 for d in dates if lo_s <= d.replace(microsecond=0) < hi_s)
    big = jget(
        reader, "Document_ЗаказПокупателя", **{"$filter": "Запасы/any(d: d/Цена gt 10000)", "$select": "Ref_Key,Запасы"}
    )
    assert all(any(r["Цена"] > 10000 for r in o["Запасы"]) for o in big["value"])
    expected_big = sum(1 for o in world.orders if any(ln.price > 10000 for ln in o.lines))
    assert len(big["value"]) == expected_big
    ship = next(s for s in world.shipments if s.order_key is not None and not order_per_row(s))
    order_guid = world.guid("order", ship.order_key)
    by_cast = jget(
        reader,
        "Document_РасходнаяНакладная",
        **{"$filter": f"Заказ eq cast(guid'{order_guid}', 'Document_ЗаказПокупателя')"},
    )["value"]
    assert world.guid("shipment", ship.key) in {s["Ref_Key"] for s in by_cast}
    bare = jget(reader, "Document_РасходнаяНакладная", **{"$filter": f"Заказ eq guid'{order_guid}'"})["value"]
    assert bare == []  # a composite compared with a bare guid is always empty in 1C
    typed = jget(reader, "Document_РасходнаяНакладная", **{"$filter": "isof(Заказ, 'Document_ЗаказПокупателя')"})
    # a shipment naming its order per row has an Undefined header Заказ
    assert len(typed["value"]) == sum(1 for s in world.shipments if s.order_key is not None and not order_per_row(s))


@pytest.mark.parametrize(
    "flt,status,code",
    [
        ("ИНН eq", 400, "14"),
        ("ИНН eq 'a' and", 400, "14"),
        ("tolower(Description) eq 'a'", 400, "21"),
        ("contains(Description, 'a')", 400, "21"),
        ("Нет eq 1", 400, "14"),
        (f"Ref_Key gt guid'{EMPTY_GUID}'", 500, "-1"),
    ],
)
def test_filter_errors(reader, flt, status, code):
    assert error_of(get(reader, CP, **{"$format": "json", "$filter": flt}))[:2] == (status, code)


def test_plus_in_query_is_literal_and_fails_with_500(reader):
    r = get(
        reader,
        "Document_ЗаказПокупателя",
        raw_query="$format=json&$filter=Date%20ge%20datetime'2020-01-01T00:00:00'+and+DeletionMark%20eq%20false",
    )
    status, code, text = error_of(r)
    assert status == 500 and "ГДЕ" in text
    ok = get(
        reader,
        "Document_ЗаказПокупателя",
        raw_query="$format=json&$filter=Date%20ge%20datetime'2020-01-01T00:00:00'%20and%20DeletionMark%20eq%20false",
    )
    assert ok.status_code == 200


def test_long_query_string_is_iis_404_15(onec_factory):
    server = onec_factory(max_query_length=300)
    ors = " or ".join(f"Ref_Key eq guid'{EMPTY_GUID}'" for _ in range(20))
    r = get(server, CP, **{"$format": "json", "$filter": ors})
    assert r.status_code == 404 and "404.15" in r.text
    assert get(server, CP, **{"$format": "json", "$filter": f"Ref_Key eq guid'{EMPTY_GUID}'"}).status_code == 200


def test_expand_of_tabular_section_is_501(reader):
    assert get(reader, "Document_ЗаказПокупателя", **{"$format": "json", "$expand": "Запасы"}).status_code == 501


def test_bad_top_and_unknown_option_are_400(reader):
    assert error_of(get(reader, CP, **{"$format": "json", "$top": "x"}))[:2] == (400, "14")
    assert error_of(get(reader, CP, **{"$format": "json", "$bogus": "1"}))[:2] == (400, "14")


# -- registers ---------------------------------------------------------------------------------------
def _balances_by_counterparty(rows) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for r in rows:
        out[r["Контрагент_Key"]] = out.get(r["Контрагент_Key"], Decimal(0)) + r["СуммаBalance"]
    return out


def test_balance_equals_world_expected_balance(reader, world):
    rows = jget(reader, f"{SETTLEMENTS}/Balance")["value"]
    got = _balances_by_counterparty(rows)
    for party in world.parties:
        assert got.get(counterparty_guid(world, party.key), Decimal(0)) == world.expected_balance(party.key), party.key
    assert any(r["ТипРасчетов"] == "Долг" and r["СуммаBalance"] > 0 for r in rows)
    assert all(r["СуммаBalance"] < 0 for r in rows if r["ТипРасчетов"] == "Аванс")  # UNF: advance is negative


def test_balance_at_period_condition_and_dimensions(reader, world):
    first = min([s.date for s in world.shipments] + [p.date for p in world.payments])
    assert jget(reader, f"{SETTLEMENTS}/Balance(Period=datetime'{first:%Y-%m-%dT%H:%M:%S}')")["value"] == []
    party = max(world.parties, key=lambda p: abs(world.expected_balance(p.key)))
    cp = counterparty_guid(world, party.key)
    cond = f"Контрагент_Key eq guid''{cp}''"
    rows = jget(reader, f"{SETTLEMENTS}/Balance(Condition='{cond}',Dimensions='Контрагент')")["value"]
    assert len(rows) == 1 and set(rows[0]) == {"Контрагент_Key", "СуммаBalance", "СуммаВалBalance", "СуммаРегBalance"}
    assert rows[0]["СуммаBalance"] == world.expected_balance(party.key)
    filtered = jget(reader, f"{SETTLEMENTS}/Balance", **{"$filter": f"Контрагент_Key eq guid'{cp}'"})["value"]
    assert sum(r["СуммаBalance"] for r in filtered) == world.expected_balance(party.key)


def test_balance_condition_and_period_together(reader, world):
    party = max(world.parties, key=lambda p: len([s for s in world.shipments if s.party_key == p.key]))
    cp = counterparty_guid(world, party.key)
    dates = sorted(
        d.replace(microsecond=0)
        for d in [s.date for s in world.shipments if s.party_key == party.key]
        + [p.date for p in world.payments if p.party_key == party.key]
    )
    cut = dates[len(dates) // 2]
    expected = sum(
        (
            s.amount
            for s in world.shipments
            if s.party_key == party.key and s.posted and s.date.replace(microsecond=0) < cut
        ),
        Decimal(0),
    ) - sum(
        (
            p.amount
            for p in world.payments
            if p.party_key == party.key and p.posted and p.date.replace(microsecond=0) < cut
        ),
        Decimal(0),
    )
    cond = f"Контрагент_Key eq guid''{cp}'' and Period ge datetime''2000-01-01T00:00:00''"
    rows = jget(reader, f"{SETTLEMENTS}/Balance(Period=datetime'{cut:%Y-%m-%dT%H:%M:%S}',Condition='{cond}')")
    assert sum((r["СуммаBalance"] for r in rows["value"]), Decimal(0)) == expected


def test_balance_resource_filter_is_500(reader):
    r = get(reader, f"{SETTLEMENTS}/Balance", **{"$format": "json", "$filter": "СуммаBalance gt 0"})
    assert error_of(r)[0] == 500


def test_turnovers_receipts_match_shipments_in_window(reader, world):
    dates = sorted(s.date for s in world.shipments if s.posted)
    lo, hi = dates[0].replace(microsecond=0), dates[len(dates) // 2].replace(microsecond=0)
    path = (
        f"{SETTLEMENTS}/Turnovers(StartPeriod=datetime'{lo:%Y-%m-%dT%H:%M:%S}',"
        f"EndPeriod=datetime'{hi:%Y-%m-%dT%H:%M:%S}')"
    )
    rows = jget(reader, path, **{"$filter": "ТипРасчетов eq 'Долг'"})["value"]
    shipped = sum(
        (s.amount for s in world.shipments if s.posted and lo <= s.date.replace(microsecond=0) <= hi), Decimal(0)
    )
    assert sum(r["СуммаReceipt"] for r in rows) == shipped
    assert all(r["СуммаTurnover"] == r["СуммаReceipt"] - r["СуммаExpense"] for r in rows)


def test_record_sets_hide_recorder_in_rows_and_ignore_orderby(reader):
    a = jget(reader, SETTLEMENTS, **{"$top": "5"})["value"]
    b = jget(reader, SETTLEMENTS, **{"$top": "5", "$orderby": "Нет desc"})["value"]
    assert [x["Recorder"] for x in a] == [x["Recorder"] for x in b]
    assert a[0]["Recorder_Type"].startswith("StandardODATA.Document_")
    assert "Recorder" not in a[0]["RecordSet"][0] and a[0]["RecordSet"][0]["LineNumber"] == "1"


def test_record_type_set_and_recordset_windows_by_period(reader, world):
    rows = jget(reader, f"{SETTLEMENTS}_RecordType", **{"$select": "Period,Recorder"})["value"]
    periods = sorted(r["Period"] for r in rows)
    lo, hi = periods[len(periods) // 3], periods[2 * len(periods) // 3]
    window = jget(
        reader, f"{SETTLEMENTS}_RecordType", **{"$filter": f"Period ge datetime'{lo}' and Period lt datetime'{hi}'"}
    )["value"]
    assert len(window) == sum(1 for p in periods if lo <= p < hi)
    in_window = f"RecordSet/any(r: r/Period ge datetime'{lo}' and r/Period lt datetime'{hi}')"
    sets = jget(reader, SETTLEMENTS, **{"$filter": in_window})
    assert {s["Recorder"] for s in sets["value"]} == {r["Recorder"] for r in rows if lo <= r["Period"] < hi}


def test_record_type_rows_of_one_counterparty(reader, world):
    rows = jget(reader, f"{SETTLEMENTS}_RecordType", **{"$select": "Контрагент_Key,Period"})["value"]
    rows.sort(key=lambda r: r["Period"])
    cp, mid = rows[0]["Контрагент_Key"], rows[len(rows) // 2]["Period"]
    mine = jget(
        reader,
        f"{SETTLEMENTS}_RecordType",
        **{"$filter": f"Контрагент_Key eq guid'{cp}' and Period lt datetime'{mid}'", "$select": "Period"},
    )
    assert len(mine["value"]) == sum(1 for r in rows if r["Контрагент_Key"] == cp and r["Period"] < mid) > 0


def test_slicelast_gives_current_prices(reader, world):
    retail = world.guid("price_type", 1)
    rows = jget(
        reader,
        "InformationRegister_ЦеныНоменклатуры/SliceLast",
        **{"$filter": f"ВидЦен_Key eq guid'{retail}'", "$select": "Номенклатура_Key,Цена"},
    )["value"]
    price = {r["Номенклатура_Key"]: r["Цена"] for r in rows}
    assert len(price) == len(world.items)
    for item in world.items[:10]:
        assert price[world.guid("item", item.key)] == item.price
    early = (world.as_of.replace(microsecond=0) - timedelta(days=100)).isoformat()
    old = jget(
        reader,
        f"InformationRegister_ЦеныНоменклатуры/SliceLast(Period=datetime'{early}',"
        f"Condition='ВидЦен_Key eq guid''{retail}''')",
    )["value"]
    item = world.items[0]
    old_price = {r["Номенклатура_Key"]: r["Цена"] for r in old}[world.guid("item", item.key)]
    assert old_price == (item.price * Decimal("0.9")).quantize(Decimal("0.01"))


def test_balance_on_info_register_is_method_not_found(reader):
    r = get(reader, "InformationRegister_ЦеныНоменклатуры/Balance", **{"$format": "json"})
    assert error_of(r)[:2] == (400, "11")


# -- faults, logging, secrets ------------------------------------------------------------------------
def test_faults_500_and_drop(onec_factory):
    failing = onec_factory(faults=Faults(error_500_share=1.0))
    r = get(failing, "Catalog_Валюты", **{"$format": "json"})
    assert error_of(r)[:2] == (500, "-1")
    dropping = onec_factory(faults=Faults(drop_share=1.0))
    with pytest.raises(requests.exceptions.ConnectionError):
        get(dropping, "Catalog_Валюты")


def test_request_log_and_repr_hold_no_secret(onec_factory):
    server = onec_factory(password="s3cr3t-pass")
    get(server, "Catalog_Валюты", **{"$format": "json", "$top": "1"})
    requests.get(server.odata_url + "/Catalog_Валюты", auth=("integration", "wrong"), timeout=5)
    assert [e["status"] for e in server.request_log] == [200, 401]
    assert server.request_log[0]["entity_set"] == "Catalog_Валюты" and server.request_log[0]["query"]["$top"] == "1"
    assert "s3cr3t-pass" not in repr(server.request_log) and "s3cr3t-pass" not in repr(server)
