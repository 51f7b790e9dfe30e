"""Writes against the sandbox 1C OData server: POST/PATCH/DELETE, tabular sections, posting, error paths."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import quote

import pytest
import requests

from b24_1c_assets.sandbox.onec_seed import counterparty_guid
from b24_1c_assets_tests.conftest import both_onec_profiles

EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
ORDER = "Document_ЗаказПокупателя"
SETTLEMENTS = "AccumulationRegister_РасчетыСПокупателями"


class Client:
    """A minimal careful client: UTF-8 Basic auth, JSON, %20-encoded query strings."""

    def __init__(self, server):
        self.server = server
        self.s = requests.Session()
        self.s.auth = (server.username.encode(), server.password.encode())

    def url(self, path: str) -> str:
        path, _, query = path.partition("?")
        extra = f"&{query}" if query else ""
        return f"{self.server.odata_url}/{quote(path, safe=chr(39) + '()=,/$:')}?$format=json{extra}"

    def get(self, path):
        return self.s.get(self.url(path), timeout=10)

    def post(self, path, body=None, raw: bytes | None = None):
        if raw is not None:
            return self.s.post(self.url(path), data=raw, headers={"Content-Type": "application/json"}, timeout=10)
        return self.s.post(self.url(path), json=body, timeout=10)

    def patch(self, path, body, **headers):
        return self.s.patch(self.url(path), json=body, headers=headers, timeout=10)

    def delete(self, path):
        return self.s.delete(self.url(path), timeout=10)


@pytest.fixture
def client(onec):
    return Client(onec)


def err(r) -> tuple[int, str]:
    return r.status_code, r.json()["odata.error"]["code"]


def order_header(world, *, for_post: bool = True) -> dict:
    """What UNF needs to write an order's rows; `for_post`: also what its fill check needs at Post."""
    contract = world.contracts[0]
    header = {
        "Организация_Key": world.guid("organization", 1),
        "ВидЦен_Key": world.guid("price_type", 1),
        "ВалютаДокумента_Key": world.guid("currency", 643),
        "СтруктурнаяЕдиницаПродажи_Key": world.guid("structural_unit", 2),
        "СтруктурнаяЕдиницаРезерв_Key": world.guid("structural_unit", 1),
        "ХозяйственнаяОперация_Key": world.guid("business_operation", 1),
        "Контрагент_Key": counterparty_guid(world, contract.party_key),
        "Договор_Key": world.guid("contract", contract.key),
    }
    if for_post:
        header.update(
            {
                "ВидОперации": "ЗаказНаПродажу",
                "ДатаОтгрузки": "2026-12-01T00:00:00",
                "СостояниеЗаказа": world.guid("order_state", 3),
                "СостояниеЗаказа_Type": "StandardODATA.Catalog_СостоянияЗаказовПокупателей",
                "НалогообложениеНДС": "ОблагаетсяНДС",
                "Курс": 1,
                "Кратность": 1,
            }
        )
    return header


def stock(world, n=2, *, profile="unf30", vat=True):
    """`n` Запасы rows as the edition publishes them: the item composite in 3.0, a plain reference in 1.6."""
    rows = []
    for i in range(1, n + 1):
        item = world.guid("item", world.items[i].key)
        row = {
            "LineNumber": str(i),
            "Количество": 2,
            "Цена": 100.5,
            "Сумма": 201,
            "ЕдиницаИзмерения": world.guid("unit", 796),
            "ЕдиницаИзмерения_Type": "StandardODATA.Catalog_КлассификаторЕдиницИзмерения",
        }
        row.update(
            {"Номенклатура_Key": item}
            if profile == "unf16"
            else {"Номенклатура": item, "Номенклатура_Type": "StandardODATA.Catalog_Номенклатура"}
        )
        if vat:
            row["СтавкаНДС_Key"] = world.guid("vat_rate", 20)
        rows.append(row)
    return rows


def test_post_creates_with_location_auto_code_and_full_object(client):
    r = client.post(
        "Catalog_Контрагенты",
        {
            "Description": "ООО «Новый»",
            "ИНН": "7707083893",
            "Лишнее": 1,
            "КонтактнаяИнформация": [{"LineNumber": "1", "Тип": "Телефон", "НомерТелефона": "+74951234567"}],
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["Code"] and body["DataVersion"] == "AAAAAAAAAAA=" and "Лишнее" not in body
    assert body["КонтактнаяИнформация"][0]["LineNumber"] == "1" and body["DeletionMark"] is False
    assert r.headers["Location"].endswith(quote("Catalog_Контрагенты") + f"(guid'{body['Ref_Key']}')")
    again = client.s.get(r.headers["Location"] + "?$format=json", timeout=5).json()
    assert again["ИНН"] == "7707083893" and again["Ref_Key"] == body["Ref_Key"]


def test_patch_returns_full_object_and_bumps_dataversion_every_time(client, world):
    ref = counterparty_guid(world, world.parties[0].key)
    before = client.get(f"Catalog_Контрагенты(guid'{ref}')").json()
    r = client.patch(f"Catalog_Контрагенты(guid'{ref}')", {"Комментарий": "b24:marker"})
    assert r.status_code == 200 and r.json()["Description"] == before["Description"]
    assert r.json()["Комментарий"] == "b24:marker" and r.json()["DataVersion"] != before["DataVersion"]
    noop = client.patch(f"Catalog_Контрагенты(guid'{ref}')", {"Комментарий": "b24:marker"})
    assert noop.json()["DataVersion"] not in (before["DataVersion"], r.json()["DataVersion"])
    stale = client.patch(
        f"Catalog_Контрагенты(guid'{ref}')", {"Комментарий": "x"}, **{"If-Match": before["DataVersion"]}
    )
    assert stale.status_code == 200  # live 1C ignores If-Match


def test_if_match_enforced_when_configured(onec_factory, world):
    c = Client(onec_factory(enforce_if_match=True))
    ref = counterparty_guid(world, world.parties[0].key)
    current = c.get(f"Catalog_Контрагенты(guid'{ref}')").json()["DataVersion"]
    path = f"Catalog_Контрагенты(guid'{ref}')"
    assert c.patch(path, {"Комментарий": "a"}, **{"If-Match": current}).status_code == 200
    assert c.patch(path, {"Комментарий": "b"}, **{"If-Match": current}).status_code == 412


def test_write_errors_bad_guid_broken_json_missing_key(client, world):
    bad_guid = client.post("Catalog_ДоговорыКонтрагентов", {"Description": "x", "Организация_Key": "not-a-guid"})
    assert err(bad_guid) == (400, "1")
    assert err(client.post("Catalog_Контрагенты", raw=b'{"Description": "x",')) == (500, "-1")
    assert err(client.patch(f"Catalog_Контрагенты(guid'{EMPTY_GUID}')", {"Description": "x"})) == (404, "9")
    assert err(client.post("Catalog_Контрагенты_КонтактнаяИнформация", {"LineNumber": "1"})) == (400, "13")


def test_tabular_rows_need_line_numbers_from_one(client):
    base = {"Description": "ТЧ"}
    missing = client.post("Catalog_Контрагенты", {**base, "КонтактнаяИнформация": [{"Тип": "Телефон"}]})
    assert err(missing) == (500, "-1")
    shifted = client.post(
        "Catalog_Контрагенты", {**base, "КонтактнаяИнформация": [{"LineNumber": "2", "Тип": "Телефон"}]}
    )
    assert shifted.status_code == 400


def test_tabular_section_replaced_wholesale(client, world):
    ref = counterparty_guid(world, world.parties[0].key)
    rows = [{"LineNumber": "1", "Тип": "АдресЭлектроннойПочты", "АдресЭП": "a@b.ru", "Представление": "a@b.ru"}]
    r = client.patch(f"Catalog_Контрагенты(guid'{ref}')", {"КонтактнаяИнформация": rows})
    assert [x["АдресЭП"] for x in r.json()["КонтактнаяИнформация"]] == ["a@b.ru"]
    flat = client.get("Catalog_Контрагенты_КонтактнаяИнформация").json()["value"]
    assert [x["АдресЭП"] for x in flat if x["Ref_Key"] == ref] == ["a@b.ru"]


def test_order_needs_header_and_posting_locks_rows(client, world):
    bare = client.post(ORDER, {"Комментарий": "b24:deal:1", "Запасы": stock(world)})
    assert err(bare) == (500, "-1")
    r = client.post(ORDER, {**order_header(world), "Комментарий": "b24:deal:1", "Запасы": stock(world)})
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["Number"] and order["Posted"] is False and order["Запасы"][1]["Цена"] == 100.5
    path = f"{ORDER}(guid'{order['Ref_Key']}')"
    posted = client.post(f"{path}/Post?PostingModeOperational=false")
    assert posted.status_code == 200
    assert client.get(path).json()["Posted"] is True
    assert err(client.patch(path, {"Запасы": stock(world, 1)})) == (500, "-1")
    stamped = order["ДатаИзменения"]
    patched = client.patch(path, {"Комментарий": "b24:deal:1 upd"})
    assert patched.status_code == 200 and patched.json()["ДатаИзменения"] >= stamped != "0001-01-01T00:00:00"
    found = client.s.get(
        f"{client.server.odata_url}/{quote(ORDER)}?$format=json&$filter="
        + quote("substringof('b24:deal:1', Комментарий)"),
        timeout=5,
    ).json()["value"]
    assert [o["Ref_Key"] for o in found] == [order["Ref_Key"]]
    assert client.post(f"{path}/Unpost").status_code == 200
    assert client.get(path).json()["Posted"] is False
    assert client.patch(path, {"Запасы": stock(world, 1)}).status_code == 200


def test_post_of_shipment_moves_the_balance(client, world):
    party = world.parties[0]
    contract = next(c for c in world.contracts if c.party_key == party.key)
    cp = counterparty_guid(world, party.key)
    r = client.post(
        "Document_РасходнаяНакладная",
        {
            "Контрагент_Key": cp,
            "Договор_Key": world.guid("contract", contract.key),
            "Организация_Key": world.guid("organization", 1),
            "СуммаДокумента": 1234.5,
            "Date": "2020-01-01T00:00:00",
        },
    )
    ref = r.json()["Ref_Key"]
    cond = quote(f"Condition='Контрагент_Key eq guid''{cp}'''")

    def balance():
        rows = client.s.get(
            f"{client.server.odata_url}/{quote(SETTLEMENTS)}/Balance({cond})?$format=json", timeout=5
        ).json(parse_float=Decimal)["value"]
        return sum((x["СуммаBalance"] for x in rows), Decimal(0))

    before = balance()
    assert client.post(f"Document_РасходнаяНакладная(guid'{ref}')/Post").status_code == 200
    assert balance() == before + Decimal("1234.5")
    assert client.delete(f"Document_РасходнаяНакладная(guid'{ref}')").status_code == 204
    assert balance() == before
    assert err(client.get(f"Document_РасходнаяНакладная(guid'{ref}')")) == (404, "9")


def test_posting_a_marked_document_fails(client, world):
    ref = world.guid("order", world.orders[0].key)
    path = f"{ORDER}(guid'{ref}')"
    assert client.patch(path, {"DeletionMark": True}).status_code == 200
    assert err(client.post(f"{path}/Post")) == (500, "-1")


def test_fail_after_write_applies_the_write(onec_factory, world):
    from b24_1c_assets.sandbox.faults import Faults

    server = onec_factory(faults=Faults(error_500_share=1.0, fail_after_write=True))
    c = Client(server)
    r = c.post("Catalog_Валюты", {"Description": "USD", "Code": "840"})
    assert r.status_code == 500
    assert any(v["Code"] == "840" for v in server.state.objects["Catalog_Валюты"].values())


def test_auto_numbers_never_repeat_a_taken_one(client, onec):
    taken = {r["Number"] for r in onec.state.objects["Document_ЗаказПокупателя"].values()}
    onec.state.objects["Document_ЗаказПокупателя"]["squatter"] = {"Number": "НФНФ-999999", "Ref_Key": "squatter"}
    numbers = [client.post("Document_ЗаказПокупателя", {"Комментарий": f"t{i}"}).json()["Number"] for i in range(3)]
    assert len(set(numbers)) == 3 and not set(numbers) & (taken | {"НФНФ-999999"})


# -- UNF's own rules on writes and posting, per edition ------------------------------------------------------


@both_onec_profiles
def test_post_refuses_an_order_missing_what_unf_checks_naming_field_and_row(client, world, onec_profile):
    """Writing skips ОбработкаПроверкиЗаполнения; Post runs it and names every unfilled field and row."""
    r = client.post(
        ORDER,
        {
            **order_header(world, for_post=False),
            "Комментарий": "t",
            "Запасы": stock(world, 2, profile=onec_profile, vat=False),
        },
    )
    assert r.status_code == 201, r.text
    path = f"{ORDER}(guid'{r.json()['Ref_Key']}')"
    refused = client.post(f"{path}/Post")
    assert err(refused) == (500, "-1")
    message = refused.json()["odata.error"]["message"]["value"]
    assert message.startswith(f'Не удалось провести "Заказ покупателя {r.json()["Number"]} от ')
    for text in (
        'Поле "Операция" не заполнено',
        'Поле "Состояние" не заполнено',
        'Поле "Налогообложение" не заполнено',
        'Поле "Курс" не заполнено',
        'Поле "Кратность" не заполнено',
        'Не заполнена колонка "% НДС" в строке 1 списка "Товары, работы, услуги"',
        'Не заполнена колонка "% НДС" в строке 2 списка "Товары, работы, услуги"',
    ):
        assert text in message
    assert "Дата отгрузки" not in message  # checked for an order for sale only
    assert client.get(path).json()["Posted"] is False
    assert client.patch(path, {"ВидОперации": "ЗаказНаПродажу"}).status_code == 200
    assert 'Поле "Дата отгрузки" не заполнено' in client.post(f"{path}/Post").json()["odata.error"]["message"]["value"]
    # kept in the rows instead: checked per row
    assert client.patch(path, {"ПоложениеДатыОтгрузки": "ВТабличнойЧасти"}).status_code == 200
    message = client.post(f"{path}/Post").json()["odata.error"]["message"]["value"]
    assert 'Поле "Дата отгрузки"' not in message
    assert 'Не заполнена колонка "Дата отгрузки" в строке 2 списка "Товары, работы, услуги"' in message
    assert client.patch(path, {"ПоложениеДатыОтгрузки": "ВШапке"}).status_code == 200
    # the header filled, one row still without its rate: refused for that row alone
    rows = stock(world, 2, profile=onec_profile)
    del rows[1]["СтавкаНДС_Key"]
    assert client.patch(path, {**order_header(world), "Запасы": rows}).status_code == 200
    message = client.post(f"{path}/Post").json()["odata.error"]["message"]["value"]
    assert message.endswith('Не заполнена колонка "% НДС" в строке 2 списка "Товары, работы, услуги"')
    assert "Поле" not in message
    assert client.patch(path, {"Запасы": stock(world, 2, profile=onec_profile)}).status_code == 200
    assert client.post(f"{path}/Post").status_code == 200
    assert client.get(path).json()["Posted"] is True


@both_onec_profiles
def test_an_item_in_the_other_editions_shape_is_ignored_and_post_names_the_row(client, world, onec_profile):
    """1C ignores a property the object does not have (no 400): the row is saved without its item."""
    other = "unf16" if onec_profile == "unf30" else "unf30"
    r = client.post(ORDER, {**order_header(world), "Комментарий": "t", "Запасы": stock(world, 1, profile=other)})
    assert r.status_code == 201, r.text
    row = r.json()["Запасы"][0]
    item_field = "Номенклатура" if onec_profile == "unf30" else "Номенклатура_Key"
    assert row[item_field] in ("", EMPTY_GUID) and row["Количество"] == 2
    assert ("Номенклатура_Key" in row) == (onec_profile == "unf16")
    message = client.post(f"{ORDER}(guid'{r.json()['Ref_Key']}')/Post").json()["odata.error"]["message"]["value"]
    assert 'Не заполнена колонка "Номенклатура" в строке 1 списка "Товары, работы, услуги"' in message


def test_order_kind_is_set_by_before_write_unless_kinds_are_on(onec_factory, world):
    plain = Client(onec_factory())
    order = plain.post(ORDER, {**order_header(world), "Запасы": stock(world, 1)}).json()
    assert order["ВидЗаказа"] == world.guid("order_kind", 1)
    assert order["ВидЗаказа_Type"] == "StandardODATA.Catalog_ВидыЗаказовПокупателей"
    assert plain.post(f"{ORDER}(guid'{order['Ref_Key']}')/Post").status_code == 200
    kinds = Client(onec_factory(use_order_kinds=True))
    order = kinds.post(ORDER, {**order_header(world), "Запасы": stock(world, 1)}).json()
    assert order["ВидЗаказа"] == ""
    message = kinds.post(f"{ORDER}(guid'{order['Ref_Key']}')/Post").json()["odata.error"]["message"]["value"]
    assert 'Поле "Вид заказа" не заполнено' in message


def test_kpp_of_a_legal_entity_is_cleared_unless_registered_in_russia(client, world):
    """3.0 ПередЗаписью (ПривестиДанныеКСогласованномуСостоянию): КПП only for a legal entity of Russia."""
    russia = world.guid("country", 643)
    base = {
        "Description": "ООО «Ромашка»",
        "ИНН": "7707083893",
        "КПП": "773601001",
        "ВидКонтрагента": "ЮридическоеЛицо",
        "ЮридическоеФизическоеЛицо": "ЮридическоеЛицо",
    }
    no_country = client.post("Catalog_Контрагенты", base).json()
    assert no_country["КПП"] == "" and no_country["ИНН"] == "7707083893"
    russian = client.post("Catalog_Контрагенты", {**base, "СтранаРегистрации_Key": russia}).json()
    assert russian["КПП"] == "773601001"
    # an ИП never has a КПП, whatever the country
    ip = client.post(
        "Catalog_Контрагенты",
        {
            **base,
            "ИНН": "500100732259",
            "ВидКонтрагента": "ИндивидуальныйПредприниматель",
            "СтранаРегистрации_Key": russia,
        },
    ).json()
    assert ip["КПП"] == ""
    # the same on a later PATCH that drops the country
    path = f"Catalog_Контрагенты(guid'{russian['Ref_Key']}')"
    assert client.patch(path, {"СтранаРегистрации_Key": EMPTY_GUID}).json()["КПП"] == ""


@both_onec_profiles
def test_default_contract_is_a_register_in_30_and_a_counterparty_field_in_16(client, world, onec_profile):
    party = next(p for p in world.parties if sum(c.party_key == p.key for c in world.contracts) > 1)
    first = world.guid("contract", next(c for c in world.contracts if c.party_key == party.key).key)
    cp = counterparty_guid(world, party.key)
    fields = client.get(f"Catalog_Контрагенты(guid'{cp}')").json()
    register = client.get("InformationRegister_ОсновныеДоговорыКонтрагента")
    if onec_profile == "unf30":
        assert "ДоговорПоУмолчанию_Key" not in fields
        assert fields["УдалитьДоговорПоУмолчанию_Key"] not in (first, EMPTY_GUID)  # stale, unused by 3.0
        rows = [r for r in register.json()["value"] if r["Контрагент"] == cp]
        assert [(r["Договор_Key"], r["ВидДоговора"], r["Контрагент_Type"]) for r in rows] == [
            (first, "СПокупателем", "StandardODATA.Catalog_Контрагенты")
        ]
    else:
        assert fields["ДоговорПоУмолчанию_Key"] == first and "УдалитьДоговорПоУмолчанию_Key" not in fields
        assert register.status_code == 404


@both_onec_profiles
def test_payment_contract_and_advance_are_per_row(client, world, onec_profile):
    """РасшифровкаПлатежа carries Договор, ПризнакАванса, Заказ, СчетНаОплату; the header has no Договор."""
    party = next(p for p in world.parties if sum(c.party_key == p.key for c in world.contracts) > 1)
    c1, c2 = [world.guid("contract", c.key) for c in world.contracts if c.party_key == party.key][:2]
    cp = counterparty_guid(world, party.key)
    rows = [
        {"LineNumber": "1", "Договор_Key": c1, "ПризнакАванса": False, "СуммаРасчетов": 100, "СуммаПлатежа": 100},
        {"LineNumber": "2", "Договор_Key": c2, "ПризнакАванса": True, "СуммаРасчетов": 50, "СуммаПлатежа": 50},
    ]
    doc = client.post(
        "Document_ПоступлениеНаСчет",
        {
            "Организация_Key": world.guid("organization", 1),
            "Контрагент_Key": cp,
            "Договор_Key": c1,
            "СуммаДокумента": 150,
            "ВидОперации": "ОтПокупателя",
            "РасшифровкаПлатежа": rows,
        },
    )
    assert doc.status_code == 201 and "Договор_Key" not in doc.json()
    assert [r["ПризнакАванса"] for r in doc.json()["РасшифровкаПлатежа"]] == [False, True]
    assert client.post(f"Document_ПоступлениеНаСчет(guid'{doc.json()['Ref_Key']}')/Post").status_code == 200
    recorded = client.get(f"{SETTLEMENTS}_RecordType").json()["value"]
    moves = [m for m in recorded if m["Recorder"] == doc.json()["Ref_Key"]]
    assert sorted((m["Договор_Key"], m["ТипРасчетов"], m["Сумма"]) for m in moves) == sorted(
        [(c1, "Долг", 100), (c2, "Аванс", 50)]
    )


@both_onec_profiles
def test_a_new_counterparty_gets_its_default_contract(client, world, onec_profile):
    """UNF's ПередЗаписью/ПриЗаписи: a counterparty with no default contract gets a new «Основной договор»."""
    made = client.post(
        "Catalog_Контрагенты",
        {"Description": "ООО «Новый»", "ИНН": "7707083893", "ВидКонтрагента": "ЮридическоеЛицо", "Покупатель": True},
    ).json()
    contracts = [
        c
        for c in client.get("Catalog_ДоговорыКонтрагентов").json()["value"]
        if c.get("Owner_Key", c.get("Owner")) == made["Ref_Key"]
    ]  # 3.0: composite Owner
    assert [(c["Description"], c["ВидДоговора"]) for c in contracts] == [("Основной договор", "СПокупателем")]
    assert contracts[0]["Организация_Key"] == world.guid("organization", 1)
    if onec_profile == "unf30":
        rows = [
            r
            for r in client.get("InformationRegister_ОсновныеДоговорыКонтрагента").json()["value"]
            if r["Контрагент"] == made["Ref_Key"]
        ]
        assert [r["Договор_Key"] for r in rows] == [contracts[0]["Ref_Key"]]
    else:
        assert made["ДоговорПоУмолчанию_Key"] == contracts[0]["Ref_Key"]
    # a later write keeps it: no second contract
    client.patch(f"Catalog_Контрагенты(guid'{made['Ref_Key']}')", {"Комментарий": "x"})
    assert (
        sum(
            c.get("Owner_Key", c.get("Owner")) == made["Ref_Key"]
            for c in client.get("Catalog_ДоговорыКонтрагентов").json()["value"]
        )
        == 1
    )


def test_counterparty_kinds_are_unfs_enumerations(client):
    """ВидКонтрагента and ЮридическоеФизическоеЛицо take only their enumerations' values (Enums/*.xml)."""
    for kind, legal in (
        ("ЮридическоеЛицо", "ЮридическоеЛицо"),
        ("ИндивидуальныйПредприниматель", "ФизическоеЛицо"),
        ("ФизическоеЛицо", "ФизическоеЛицо"),
        ("ГосударственныйОрган", "ЮридическоеЛицо"),
    ):
        made = client.post(
            "Catalog_Контрагенты", {"Description": kind, "ВидКонтрагента": kind, "ЮридическоеФизическоеЛицо": legal}
        )
        assert made.status_code == 201 and made.json()["ВидКонтрагента"] == kind
    for field, value in (("ВидКонтрагента", "Юрлицо"), ("ЮридическоеФизическоеЛицо", "ИндивидуальныйПредприниматель")):
        refused = client.post("Catalog_Контрагенты", {"Description": "x", field: value})
        assert err(refused) == (400, "1") and field in refused.json()["odata.error"]["message"]["value"]
