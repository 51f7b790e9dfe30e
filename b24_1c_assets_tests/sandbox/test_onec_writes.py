"""Writes against the sandbox 1C OData server: POST/PATCH/DELETE, tabular sections, posting, error paths."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import quote

import pytest
import requests

from b24_1c_assets.sandbox.onec_seed import counterparty_guid

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


def order_header(world) -> dict:
    contract = world.contracts[0]
    return {"Организация_Key": world.guid("organization", 1), "ВидЦен_Key": world.guid("price_type", 1),
            "ВалютаДокумента_Key": world.guid("currency", 643),
            "СтруктурнаяЕдиницаПродажи_Key": world.guid("structural_unit", 2),
            "СтруктурнаяЕдиницаРезерв_Key": world.guid("structural_unit", 1),
            "ХозяйственнаяОперация_Key": world.guid("business_operation", 1),
            "Контрагент_Key": counterparty_guid(world, contract.party_key), "Договор_Key": world.guid("contract", contract.key)}


def stock(world, n=2):
    return [{"LineNumber": str(i), "Номенклатура": world.guid("item", world.items[i].key),
             "Номенклатура_Type": "StandardODATA.Catalog_Номенклатура", "Количество": 2, "Цена": 100.5,
             "Сумма": 201} for i in range(1, n + 1)]


def test_post_creates_with_location_auto_code_and_full_object(client):
    r = client.post("Catalog_Контрагенты", {"Description": "ООО «Новый»", "ИНН": "7707083893", "Лишнее": 1,
                                            "КонтактнаяИнформация": [{"LineNumber": "1", "Тип": "Телефон",
                                                                      "НомерТелефона": "+74951234567"}]})
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
    stale = client.patch(f"Catalog_Контрагенты(guid'{ref}')", {"Комментарий": "x"}, **{"If-Match": before["DataVersion"]})
    assert stale.status_code == 200  # live 1C ignores If-Match


def test_if_match_enforced_when_configured(onec_factory, world):
    c = Client(onec_factory(enforce_if_match=True))
    ref = counterparty_guid(world, world.parties[0].key)
    current = c.get(f"Catalog_Контрагенты(guid'{ref}')").json()["DataVersion"]
    assert c.patch(f"Catalog_Контрагенты(guid'{ref}')", {"Комментарий": "a"}, **{"If-Match": current}).status_code == 200
    assert c.patch(f"Catalog_Контрагенты(guid'{ref}')", {"Комментарий": "b"}, **{"If-Match": current}).status_code == 412


def test_write_errors_bad_guid_broken_json_missing_key(client, world):
    assert err(client.post("Catalog_ДоговорыКонтрагентов", {"Description": "x", "Owner_Key": "not-a-guid"})) == (400, "1")
    assert err(client.post("Catalog_Контрагенты", raw=b'{"Description": "x",')) == (500, "-1")
    assert err(client.patch(f"Catalog_Контрагенты(guid'{EMPTY_GUID}')", {"Description": "x"})) == (404, "9")
    assert err(client.post("Catalog_Контрагенты_КонтактнаяИнформация", {"LineNumber": "1"})) == (400, "13")


def test_tabular_rows_need_line_numbers_from_one(client):
    base = {"Description": "ТЧ"}
    missing = client.post("Catalog_Контрагенты", {**base, "КонтактнаяИнформация": [{"Тип": "Телефон"}]})
    assert err(missing) == (500, "-1")
    shifted = client.post("Catalog_Контрагенты", {**base, "КонтактнаяИнформация": [{"LineNumber": "2", "Тип": "Телефон"}]})
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
    found = client.s.get(f"{client.server.odata_url}/{quote(ORDER)}?$format=json&$filter="
                         + quote("substringof('b24:deal:1', Комментарий)"), timeout=5).json()["value"]
    assert [o["Ref_Key"] for o in found] == [order["Ref_Key"]]
    assert client.post(f"{path}/Unpost").status_code == 200
    assert client.get(path).json()["Posted"] is False
    assert client.patch(path, {"Запасы": stock(world, 1)}).status_code == 200


def test_post_of_shipment_moves_the_balance(client, world):
    party = world.parties[0]
    contract = next(c for c in world.contracts if c.party_key == party.key)
    cp = counterparty_guid(world, party.key)
    r = client.post("Document_РасходнаяНакладная", {"Контрагент_Key": cp, "Договор_Key": world.guid("contract", contract.key),
                                                   "Организация_Key": world.guid("organization", 1),
                                                   "СуммаДокумента": 1234.5, "Date": "2020-01-01T00:00:00"})
    ref = r.json()["Ref_Key"]
    cond = quote(f"Condition='Контрагент_Key eq guid''{cp}'''")

    def balance():
        rows = client.s.get(f"{client.server.odata_url}/{quote(SETTLEMENTS)}/Balance({cond})?$format=json",
                            timeout=5).json(parse_float=Decimal)["value"]
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
