"""OneCClient against the sandbox 1C OData server over loopback HTTP: reads, paging, errors, retries, writes."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from b24_1c_assets.onec import (
    OneCAuthError,
    OneCConnectionError,
    OneCPublicationError,
    OneCRequestError,
    WriteNotApplied,
    WriteNotVerified,
    odata,
)
from b24_1c_assets.sandbox.faults import Faults
from b24_1c_assets.sandbox.onec_seed import counterparty_guid
from b24_1c_assets_tests.conftest import both_onec_profiles

from .conftest import ScriptedFaults

MSK = ZoneInfo("Europe/Moscow")
pytestmark = both_onec_profiles  # every read and write against UNF 3.0's and 1.6's metadata


def _gets(server, entity_set):
    return [r for r in server.request_log if r["method"] == "GET" and r["entity_set"] == entity_set]


# -- reads --------------------------------------------------------------------------------------------


def test_counterparties_paged_complete_typed_with_contacts(onec, world, client_for):
    client = client_for(onec, page_size=8)
    rows = client.counterparties()
    spellings = sum(len(p.onec_spellings) for p in world.parties)
    assert len(rows) == len(onec.state.objects["Catalog_Контрагенты"]) == spellings
    assert len({r["Ref_Key"] for r in rows}) == len(rows)
    by_ref = {r["Ref_Key"]: r for r in rows}
    for party in world.parties:
        for idx, spelling in enumerate(party.onec_spellings):
            row = by_ref[counterparty_guid(world, party.key, idx)]
            assert row["email"] == spelling.email and row["phone"] == spelling.phone
            assert row["ИНН"] == (spelling.inn or "")
    assert all(isinstance(r["КонтактнаяИнформация"][0]["LineNumber"], int) for r in rows if r["КонтактнаяИнформация"])
    for req in _gets(onec, "Catalog_Контрагенты"):
        assert req["query"]["$format"] == "json" and req["query"]["$orderby"] and "$select" in req["query"]


def test_contracts_owner_and_payment_term(onec, world, client_for):
    rows = {r["Ref_Key"]: r for r in client_for(onec).contracts()}
    assert len(rows) == len(world.contracts)
    for c in world.contracts:
        row = rows[world.guid("contract", c.key)]
        assert row["Owner_Key"] == counterparty_guid(world, c.party_key)
        assert row["СрокОплатыПокупателя"] == c.payment_term_days  # Int64 string on the wire -> int


def test_items_price_types_and_slice_last_prices(onec, world, client_for):
    client = client_for(onec, page_size=7)
    items = client.items()
    assert {i["Ref_Key"] for i in items} == {world.guid("item", it.key) for it in world.items}
    retail = next(p for p in client.price_types() if p["Description"] == "Розничная")
    prices = client.prices(world.as_of.date(), price_type=retail["Ref_Key"])
    assert len(prices) == len(world.items)
    expected = {world.guid("item", it.key): it.price for it in world.items}
    for p in prices:
        assert isinstance(p["Цена"], Decimal) and p["Цена"] == expected[p["Номенклатура_Key"]]
    old = client.prices(world.as_of - timedelta(days=200), price_type=retail["Ref_Key"])
    assert any(p["Цена"] != expected[p["Номенклатура_Key"]] for p in old)  # the slice follows the date


def test_documents_in_date_windows_exact_with_bounded_skip(onec, world, client_for):
    client = client_for(onec, page_size=5, window_pages=2)
    orders = client.documents(odata.ORDERS)
    assert len(orders) == len(world.orders) and len({o["Ref_Key"] for o in orders}) == len(orders)
    truth = {world.guid("order", o.key): o for o in world.orders}
    for row in orders:
        order = truth[row["Ref_Key"]]
        assert row["Date"] == order.date.replace(tzinfo=MSK)
        assert row["СуммаДокумента"] == order.amount == sum(line["Сумма"] for line in row["Запасы"])
    requests = _gets(onec, odata.ORDERS)
    windowed = [r for r in requests if "$filter" in r["query"]]
    assert windowed and all(
        "Date ge datetime'" in r["query"]["$filter"] and "Date lt datetime'" in r["query"]["$filter"] for r in windowed
    )
    # $skip never grows past a window's page budget, whatever the month size
    assert max(int(r["query"].get("$skip", 0)) for r in windowed) <= 5 * (2 - 1)
    # busy months were re-opened at the last instant read (not only at month starts)
    assert any("-01T00:00:00' and" not in r["query"]["$filter"] for r in windowed[1:])


def test_window_reopen_at_an_instant_shared_by_many_rows(onec, world, client_for):
    # 13 movements at one instant span three pages of 5: the re-opened window must not repeat or lose any
    store = onec.state.registers[odata.SETTLEMENTS]
    recorder, rows = next(iter(store.by_recorder.items()))
    template = rows[0]
    store.put(recorder, [{**template, "LineNumber": n} for n in range(1, 14)])
    at = datetime.fromisoformat(template["Period"])
    since, until = at - timedelta(days=3), at + timedelta(days=3)
    moves = client_for(onec, page_size=5, window_pages=2).settlement_movements(since, until)
    expected = [r for r in store.by_period()[1] if since <= datetime.fromisoformat(r["Period"]) < until]
    assert len(expected) >= 13 and len(moves) == len(expected)
    assert len({(m["Recorder"], m["LineNumber"]) for m in moves}) == len(moves)


def test_documents_since_until(onec, world, client_for):
    since = world.as_of - timedelta(days=90)
    until = world.as_of - timedelta(days=30)
    rows = client_for(onec, page_size=10).documents(odata.SHIPMENTS, since, until)
    expected = {world.guid("shipment", s.key) for s in world.shipments if since <= s.date < until}
    assert {r["Ref_Key"] for r in rows} == expected and len(rows) == len(expected)


def test_settlement_movements_sum_to_world_balances(onec, world, client_for):
    moves = client_for(onec, page_size=50, window_pages=2).settlement_movements()
    assert len(moves) == len(onec.state.registers[odata.SETTLEMENTS])
    assert len({(m["Recorder"], m["LineNumber"]) for m in moves}) == len(moves)
    net = defaultdict(Decimal)
    assert any(m["Active"] is False for m in moves)  # deactivated lines arrive, and must not count
    for m in moves:
        if m["Active"]:
            net[m["Контрагент_Key"]] += m["Сумма"] if m["RecordType"] == "Receipt" else -m["Сумма"]
    for party in world.parties:
        assert net.get(counterparty_guid(world, party.key), Decimal(0)) == world.expected_balance(party.key)


def test_receivables_balance_matches_world(onec, world, client_for):
    rows = client_for(onec, page_size=6).receivables_balance(world.as_of.date())
    per_party = defaultdict(Decimal)
    for r in rows:
        assert r["СуммаBalance"] != 0 and isinstance(r["СуммаBalance"], Decimal)
        per_party[r["Контрагент_Key"]] += r["СуммаBalance"]
    for party in world.parties:
        assert per_party.get(counterparty_guid(world, party.key), Decimal(0)) == world.expected_balance(party.key)
    [req] = [r for r in onec.request_log if "/Balance(" in r["path"]][:1]
    assert "Dimensions='Контрагент,Договор,ТипРасчетов'" in req["path"]


def test_invoice_payments_movements(onec, client_for):
    rows = client_for(onec, page_size=40).invoice_payments()
    assert len(rows) == len(onec.state.registers[odata.INVOICE_PAYMENTS])
    assert all(r["СчетНаОплату_Type"].startswith("StandardODATA.Document_") for r in rows)


def test_query_strings_never_use_plus_for_spaces(onec, world, client_for):
    client = client_for(onec, page_size=20)
    client.documents(odata.INVOICES, world.as_of - timedelta(days=60))
    client.find_by_marker(odata.COUNTERPARTIES, "b24 marker+1")
    filters = [r["query"]["$filter"] for r in onec.request_log if "$filter" in r["query"]]
    assert filters and all(" " in f for f in filters)  # %20 decodes to a space; a '+' would stay literal
    assert any("substringof('b24 marker+1', Комментарий)" == f for f in filters)
    assert all(r["status"] == 200 for r in onec.request_log)


# -- auth and errors ----------------------------------------------------------------------------------


def test_utf8_credentials_and_auth_error_without_secrets(onec_factory, client_for):
    server = onec_factory(username="интеграция", password="пароль-Ёж")
    assert client_for(server).price_types()
    bad_pw = "неверный-Секрет"
    wrong = odata.OneCClient(server.odata_url, "интеграция", bad_pw)
    with pytest.raises(OneCAuthError) as err:
        wrong.price_types()
    assert err.value.status == 401 and "$metadata" in str(err.value)
    for text in (str(err.value), repr(wrong), repr(err.value)):
        assert bad_pw not in text and "пароль" not in text


def test_missing_set_stops_with_publication_hint(onec_factory, client_for):
    client = client_for(onec_factory(unpublished=["Catalog_Номенклатура"]))
    with pytest.raises(OneCPublicationError) as err:
        client.items()
    assert "Справочник Номенклатура (Catalog_Номенклатура" in str(err.value)
    assert "УстановитьСоставСтандартногоИнтерфейсаOData" in str(err.value)
    assert client.price_types()  # other sets still work


def test_missing_field_is_named_before_any_data_request(onec, client_for):
    client = client_for(onec)
    with pytest.raises(OneCPublicationError, match="ЛимитЗадолженности"):
        client.documents(odata.ORDERS, select=["Ref_Key", "Date", "ЛимитЗадолженности"])
    assert not _gets(onec, odata.ORDERS)


def test_odata_errors_name_set_code_and_message(onec, client_for):
    client = client_for(onec)
    with pytest.raises(OneCRequestError) as err:
        client.read_catalog(odata.COUNTERPARTIES, ["Ref_Key"], filter="tolower(Description) eq 'x'")
    assert err.value.status == 400 and err.value.code == "21"
    assert "Catalog_Контрагенты" in str(err.value) and onec.odata_url.split("/")[2] in str(err.value)
    with pytest.raises(OneCRequestError) as err:
        client.read_catalog("Catalog_НетТакого", ["Ref_Key"])
    assert err.value.status == 404 and err.value.code == "6" and "Catalog_НетТакого" in str(err.value)
    assert client.get_object(odata.COUNTERPARTIES, str(uuid.uuid4())) is None  # 404 code 9 = absent


def test_iis_query_string_limit_404_15(onec, client_for):
    client = client_for(onec)
    with pytest.raises(OneCRequestError) as err:
        client.find_by_marker(odata.COUNTERPARTIES, "x" * 2100)
    assert err.value.code == "404.15" and "too long" in err.value.message
    assert client.stats.retries == 0  # a permanent error is not retried


# -- retries ------------------------------------------------------------------------------------------


def test_transient_failures_are_retried_and_reads_stay_complete(onec_factory, world, client_for):
    server = onec_factory(faults=Faults(error_503_share=0.25, drop_share=0.1, seed=11))
    client = client_for(server, page_size=10, max_retries=8)
    rows = client.counterparties()
    assert len(rows) == sum(len(p.onec_spellings) for p in world.parties)
    assert client.stats.retries > 0 and client.stats.requests > client.stats.retries


def test_retries_are_bounded(onec, client_for):
    client = client_for(onec, max_retries=2)
    _ = client.metadata
    before = client.stats.requests
    onec.faults = ScriptedFaults("503", count=10)
    with pytest.raises(OneCRequestError) as err:
        client.price_types()
    assert err.value.status == 503 and "Service Unavailable" in err.value.message
    assert client.stats.requests - before == 3 and client.stats.retries == 2


def test_internal_error_500_on_a_read_is_retried(onec, client_for):
    client = client_for(onec, max_retries=3)
    _ = client.metadata
    before = client.stats.requests
    onec.faults = ScriptedFaults("500", count=2)  # 1C's generic 500: a lock conflict, a restarting server
    assert len(client.price_types()) == 2
    assert client.stats.requests - before == 3 and client.stats.retries == 2


def test_register_read_completes_with_a_share_of_internal_errors(onec_factory, client_for):
    server = onec_factory(faults=Faults(error_500_share=0.05, seed=5))
    client = client_for(server, page_size=20, window_pages=3, max_retries=6)
    moves = client.settlement_movements()
    assert len(moves) == len(server.state.registers[odata.SETTLEMENTS]) and client.stats.retries > 0
    assert any(r["status"] == 500 for r in server.request_log)


def test_deterministic_500_fails_after_bounded_retries_naming_the_query(onec_factory, client_for):
    server = onec_factory(faults=Faults(always_500=(f"{odata.SETTLEMENTS}/Balance",)))
    client = client_for(server, max_retries=2)
    _ = client.metadata
    before = client.stats.requests
    with pytest.raises(OneCRequestError) as err:
        client.receivables_balance()
    assert err.value.status == 500 and client.stats.requests - before == 3
    text = str(err.value)
    assert "Произошла внутренняя ошибка OData сервиса" in text and "3 attempts" in text
    assert f"{odata.SETTLEMENTS}/Balance(Dimensions='Контрагент,Договор,ТипРасчетов')" in text
    assert server.password not in text
    assert len(client.price_types()) == 2  # other reads are unaffected


def test_timeout_is_retried_then_reported(onec, client_for):
    client = client_for(onec, timeout=0.2, max_retries=1)
    _ = client.metadata
    onec.faults = Faults(slow_share=1.0, slow_seconds=0.6)
    with pytest.raises(OneCConnectionError, match="timeout"):
        client.price_types()
    assert client.stats.retries == 1


# -- writes -------------------------------------------------------------------------------------------


def _new_counterparty(title="ООО «Новый клиент»", country=None):
    """A legal entity; UNF 3.0 keeps its КПП only with СтранаРегистрации = Россия (`country`)."""
    body = {
        "Description": title,
        "НаименованиеПолное": title,
        "ИНН": "7707083893",
        "КПП": "770701001",
        "ВидКонтрагента": "ЮридическоеЛицо",
        "Покупатель": True,
    }
    return {**body, "СтранаРегистрации_Key": country} if country else body


def _with_marker(server, marker):
    return [r for r in server.state.objects["Catalog_Контрагенты"].values() if marker in r.get("Комментарий", "")]


def test_create_counterparty_found_by_marker_after_lost_answer(onec, client_for):
    client = client_for(onec)
    _ = client.metadata
    marker = f"b24:{uuid.uuid4()}"
    onec.faults = ScriptedFaults("drop", fail_after_write=True)
    created = client.create_counterparty(_new_counterparty(), marker)
    assert created["Description"] == "ООО «Новый клиент»" and marker in created["Комментарий"]
    assert len(_with_marker(onec, marker)) == 1 and client.stats.reconciliations == 1
    assert [r["method"] for r in onec.request_log].count("POST") == 1  # never re-POSTed blindly


def test_create_not_applied_is_reported_absent_then_created_once(onec, client_for):
    client = client_for(onec)
    _ = client.metadata
    marker = f"b24:{uuid.uuid4()}"
    onec.faults = ScriptedFaults("503")  # fails before the write happens
    with pytest.raises(WriteNotApplied):
        client.create_counterparty(_new_counterparty(), marker)
    assert _with_marker(onec, marker) == []
    created = client.create_counterparty(_new_counterparty(), marker)
    assert [r["Ref_Key"] for r in _with_marker(onec, marker)] == [created["Ref_Key"]]


def test_update_counterparty_and_reconcile_unknown_outcome(onec, client_for, world):
    client = client_for(onec)
    ref = client.create_counterparty(_new_counterparty(country=world.guid("country", 643)), "b24:upd")["Ref_Key"]
    before = onec.state.objects["Catalog_Контрагенты"][ref]["DataVersion"]
    updated = client.update_counterparty(ref, {"КПП": "770702002"})
    assert updated["КПП"] == "770702002" and updated["DataVersion"] != before
    onec.faults = ScriptedFaults("500", fail_after_write=True)
    again = client.update_counterparty(ref, {"НаименованиеПолное": "ООО «Новое имя»"})
    assert again["НаименованиеПолное"] == "ООО «Новое имя»" and client.stats.reconciliations == 1


# 1.6 checks the row's unit at Post too (Запасы.ЕдиницаИзмерения is FillChecking=ShowError in its metadata)
def _unit(world):
    return {
        "ЕдиницаИзмерения": world.guid("unit", 796),
        "ЕдиницаИзмерения_Type": "StandardODATA.Catalog_КлассификаторЕдиницИзмерения",
    }


def _order_header(server, world):
    st = server.state.objects
    first = lambda name: next(iter(st[name]))  # noqa: E731
    party = world.parties[0]
    return {
        "Date": datetime(2026, 3, 2, 11, 0),
        "Организация_Key": first("Catalog_Организации"),
        "Контрагент_Key": counterparty_guid(world, party.key),
        "Договор_Key": world.guid("contract", next(c.key for c in world.contracts if c.party_key == party.key)),
        "ВидЦен_Key": first("Catalog_ВидыЦен"),
        "ВалютаДокумента_Key": first("Catalog_Валюты"),
        "СтруктурнаяЕдиницаПродажи_Key": first("Catalog_СтруктурныеЕдиницы"),
        "СтруктурнаяЕдиницаРезерв_Key": first("Catalog_СтруктурныеЕдиницы"),
        "ХозяйственнаяОперация_Key": world.guid("business_operation", 1),
        "СуммаДокумента": Decimal("2469.14"),
        # what UNF's fill check at Post needs besides (Documents/ЗаказПокупателя, ОбработкаПроверкиЗаполнения)
        "ВидОперации": "ЗаказНаПродажу",
        "ДатаОтгрузки": datetime(2026, 3, 5),
        "СостояниеЗаказа": world.guid("order_state", 3),
        "СостояниеЗаказа_Type": "StandardODATA.Catalog_СостоянияЗаказовПокупателей",
        "НалогообложениеНДС": "ОблагаетсяНДС",
        "Курс": Decimal(1),
        "Кратность": Decimal(1),
    }


def test_customer_order_with_rows_posted_and_exact_money(onec, world, client_for):
    client = client_for(onec)
    item = world.guid("item", world.items[0].key)
    rows = [
        {
            "Номенклатура": item,
            "Номенклатура_Type": "StandardODATA.Catalog_Номенклатура",
            "Количество": Decimal("2"),
            "Цена": Decimal("1234.57"),
            "Сумма": Decimal("2469.14"),
            "СтавкаНДС_Key": world.guid("vat_rate", 20),
            **_unit(world),
        }
    ]
    order = client.create_customer_order(_order_header(onec, world), rows, "b24:deal:42", post=True)
    assert order["Posted"] is True
    assert order["Запасы"][0]["LineNumber"] == 1 and order["Запасы"][0]["Цена"] == Decimal("1234.57")
    assert order["Date"] == datetime(2026, 3, 2, 11, 0, tzinfo=MSK)
    assert [o["Ref_Key"] for o in client.find_by_marker(odata.ORDERS, "b24:deal:42")] == [order["Ref_Key"]]


def test_order_missing_header_is_reported_not_applied(onec, world, client_for):
    client = client_for(onec)
    header = _order_header(onec, world)
    del header["ВидЦен_Key"]
    rows = [
        {
            "Номенклатура": world.guid("item", world.items[0].key),
            "Количество": Decimal("1"),
            "Цена": Decimal("1"),
            "Сумма": Decimal("1"),
        }
    ]
    with pytest.raises(WriteNotApplied, match="ВидЦен"):
        client.create_customer_order(header, rows, "b24:deal:43")
    assert client.find_by_marker(odata.ORDERS, "b24:deal:43") == []


def test_post_with_lost_answer_is_confirmed_by_reading_back(onec, world, client_for):
    client = client_for(onec)
    order = client.create_customer_order(_order_header(onec, world), [], "b24:deal:44")
    assert order["Posted"] is False
    onec.faults = ScriptedFaults("drop", fail_after_write=True)
    client.post_document(odata.ORDERS, order["Ref_Key"])
    assert onec.state.objects[odata.ORDERS][order["Ref_Key"]]["Posted"] is True
    assert client.stats.reconciliations == 1


def test_pages_are_sized_by_bytes_after_the_first(onec, world, client_for):
    client = client_for(onec, page_size=5, page_bytes_target=20_000, max_page_size=12)
    rows = client.counterparties()
    assert len(rows) == sum(len(p.onec_spellings) for p in world.parties)
    tops = [int(r["query"]["$top"]) for r in _gets(onec, "Catalog_Контрагенты")]
    assert tops[0] == 5 and max(tops) > 5 and max(tops) <= 12


def test_posted_order_rows_replaced_via_unpost_patch_post_with_lost_answers(onec, world, client_for, onec_profile):
    client = client_for(onec)  # rows in 3.0's composite shape: the client fits them to 1.6's Номенклатура_Key
    item = world.guid("item", world.items[1].key)
    row = {
        "Номенклатура": item,
        "Номенклатура_Type": "StandardODATA.Catalog_Номенклатура",
        "Количество": Decimal("1"),
        "Цена": Decimal("10.10"),
        "Сумма": Decimal("10.10"),
        "СтавкаНДС_Key": world.guid("vat_rate", 20),
        **_unit(world),
    }
    order = client.create_customer_order(_order_header(onec, world), [row], "b24:deal:45", post=True)
    ref = order["Ref_Key"]
    onec.faults = ScriptedFaults("drop", fail_after_write=True)
    client.unpost_document(odata.ORDERS, ref)
    assert onec.state.objects[odata.ORDERS][ref]["Posted"] is False
    onec.faults = ScriptedFaults("503", fail_after_write=True)
    rows = [row, {**row, "Количество": Decimal("3"), "Сумма": Decimal("30.30")}]
    updated = client.update_customer_order(ref, {"СуммаДокумента": Decimal("40.40")}, rows)
    assert [r["Сумма"] for r in updated["Запасы"]] == [Decimal("10.10"), Decimal("30.30")]
    assert updated["СуммаДокумента"] == Decimal("40.40") and client.stats.reconciliations == 2
    client.post_document(odata.ORDERS, ref)
    assert client.get_object(odata.ORDERS, ref, ["Ref_Key", "Posted"])["Posted"] is True


def test_patch_lost_before_the_write_is_reported_not_applied(onec, client_for, world):
    client = client_for(onec)
    ref = client.create_counterparty(_new_counterparty(country=world.guid("country", 643)), "b24:upd2")["Ref_Key"]
    onec.faults = ScriptedFaults("drop")  # the connection drops before 1C sees the PATCH
    with pytest.raises(WriteNotApplied):
        client.update_counterparty(ref, {"КПП": "770703003"})
    assert onec.state.objects["Catalog_Контрагенты"][ref]["КПП"] == "770701001"
    assert [r["method"] for r in onec.request_log].count("PATCH") <= 1


def test_counterparty_groups_are_left_out_unless_asked(onec, client_for):
    folder_ref = str(uuid.uuid4())
    template = next(iter(onec.state.objects["Catalog_Контрагенты"].values()))
    onec.state.add(
        "Catalog_Контрагенты",
        {
            **template,
            "Ref_Key": folder_ref,
            "IsFolder": True,
            "Description": "Покупатели",
            "Code": "999999999",
            "ИНН": "",
            "КонтактнаяИнформация": [],
        },
    )
    client = client_for(onec)
    assert folder_ref not in {r["Ref_Key"] for r in client.counterparties()}
    assert folder_ref in {r["Ref_Key"] for r in client.counterparties(include_folders=True)}


def test_aware_bounds_are_taken_in_infobase_time(onec, world, client_for):
    # 21:00 UTC on the eve = 00:00 Moscow: the same window as naive Moscow midnights
    day = (world.as_of - timedelta(days=40)).replace(hour=0, minute=0, second=0, microsecond=0)
    utc = ZoneInfo("UTC")
    aware = client_for(onec).documents(
        odata.ORDERS,
        (day - timedelta(hours=3)).replace(tzinfo=utc),
        (day + timedelta(days=20) - timedelta(hours=3)).replace(tzinfo=utc),
    )
    naive = client_for(onec).documents(odata.ORDERS, day, day + timedelta(days=20))
    assert [o["Ref_Key"] for o in aware] == [o["Ref_Key"] for o in naive]
    assert {o["Ref_Key"] for o in naive} == {
        world.guid("order", o.key) for o in world.orders if day <= o.date < day + timedelta(days=20)
    }


def test_check_publication_lists_every_gap(onec_factory, client_for):
    assert client_for(onec_factory()).check_publication() is None
    client = client_for(
        onec_factory(unpublished=["Catalog_ВидыЦен", "AccumulationRegister_ОплатаСчетовИЗаказов_RecordType"])
    )
    with pytest.raises(OneCPublicationError) as err:
        client.check_publication()
    assert "Справочник ВидыЦен (Catalog_ВидыЦен" in str(err.value)
    assert "Регистр накопления ОплатаСчетовИЗаказов" in str(err.value)


def test_order_rows_fit_the_editions_item_shape_and_are_read_back(onec, world, client_for, onec_profile):
    """`Запасы.Номенклатура`: composite in 3.0, `Номенклатура_Key` in 1.6, as `$metadata` declares it."""
    client = client_for(onec)
    item = world.guid("item", world.items[2].key)
    row = {
        "Номенклатура": item,
        "Номенклатура_Type": "StandardODATA.Catalog_Номенклатура",
        "Количество": Decimal("1"),
        "Цена": Decimal("5"),
        "Сумма": Decimal("5"),
        "СтавкаНДС_Key": world.guid("vat_rate", 20),
        **_unit(world),
    }
    order = client.create_customer_order(_order_header(onec, world), [row], "b24:deal:46", post=True)
    saved = onec.state.objects[odata.ORDERS][order["Ref_Key"]]["Запасы"][0]
    assert saved["Номенклатура_Key" if onec_profile == "unf16" else "Номенклатура"] == item
    assert order["Posted"] is True


def test_a_row_1c_saved_without_its_item_fails_the_read_back_and_post_names_it(onec, world, client_for, onec_profile):
    """1C ignores a property the row lacks: the write 'succeeds' with no item. The read-back catches it."""
    client = client_for(onec)
    item = world.guid("item", world.items[2].key)
    # a shape the row does not have (and no `_Type` to fit it by): 1C drops it silently
    wrong = {
        "Номенклатура_Key" if onec_profile == "unf30" else "Номенклатура": item,
        "Количество": Decimal("1"),
        "Цена": Decimal("5"),
        "Сумма": Decimal("5"),
        "СтавкаНДС_Key": world.guid("vat_rate", 20),
        **_unit(world),
    }
    with pytest.raises(WriteNotVerified, match="row 1 of Запасы was saved with Номенклатура"):
        client.create_customer_order(_order_header(onec, world), [wrong], "b24:deal:47", post=True)
    (ref,) = [o["Ref_Key"] for o in client.find_by_marker(odata.ORDERS, "b24:deal:47")]
    assert onec.state.objects[odata.ORDERS][ref]["Posted"] is False  # never posted without its item
    with pytest.raises(OneCRequestError, match='колонка "Номенклатура" в строке 1'):
        client.post_document(odata.ORDERS, ref)  # UNF's fill check refuses it: a refusal, not an unknown outcome


def test_one_clients_whole_settlement_history_is_re_read_within_the_query_string_limit(onec, world, client_for):
    client = client_for(onec, page_size=50)
    everything = client.settlement_movements()
    parties = sorted({m["Контрагент_Key"] for m in everything})[: 2 * odata.COUNTERPARTIES_PER_FILTER + 1]
    requests_before = client.stats.requests
    theirs = client.settlement_movements(counterparties=parties)
    expected = {(m["Recorder"], m["LineNumber"]) for m in everything if m["Контрагент_Key"] in set(parties)}
    assert {(m["Recorder"], m["LineNumber"]) for m in theirs} == expected and len(theirs) == len(expected)
    assert client.stats.requests > requests_before  # read from 1C (three filter groups), not from memory


@pytest.mark.parametrize(
    "read, entity_set",
    [("counterparties", odata.COUNTERPARTIES), ("contracts", odata.CONTRACTS), ("items", odata.ITEMS)],
)
def test_a_catalog_read_by_key_returns_what_the_whole_read_does_for_those_keys(onec, client_for, read, entity_set):
    client = client_for(onec, page_size=50)
    whole = {r["Ref_Key"]: r for r in getattr(client, read)()}
    versions = client.versions(entity_set, include_folders=read != "counterparties")
    assert set(versions) == set(whole) and all(v for v in versions.values())
    refs = sorted(whole)[: 2 * odata.REFS_PER_FILTER + 3]
    some = {r["Ref_Key"]: r for r in getattr(client, read)(refs=refs)}
    assert some == {ref: whole[ref] for ref in refs}


def test_windowed_reads_come_page_by_page_and_add_up_to_the_whole_read(onec, client_for):
    client = client_for(onec, page_size=50, window_pages=2)
    pages = list(client.iter_settlement_movements())
    assert len(pages) > 10 and max(len(p) for p in pages) <= 50  # never more than a page held at a time
    rows = [row for page in pages for row in page]
    assert len(rows) == len(onec.state.registers[odata.SETTLEMENTS])
    assert len({(r["Recorder"], r["LineNumber"]) for r in rows}) == len(rows)
    assert all(isinstance(r["Сумма"], Decimal) for r in rows)  # parsed as they come
