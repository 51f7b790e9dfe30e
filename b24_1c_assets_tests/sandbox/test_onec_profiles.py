"""The sandbox 1C follows each UNF edition's published metadata (shapes from the configuration dumps)."""

import pytest
import requests

from b24_1c_assets.onec.metadata import Metadata
from b24_1c_assets.sandbox.onec_profiles import FIELDS, PROFILES, get_profile
from b24_1c_assets.sandbox.onec_schema import INVOICE_PAYMENTS, SETTLEMENTS


def _metadata(server) -> Metadata:
    resp = requests.get(f"{server.odata_url}/$metadata", auth=(server.username, server.password), timeout=10)
    resp.raise_for_status()
    return Metadata.parse(resp.content)


def test_every_difference_names_its_source_and_known_editions():
    for f in FIELDS:
        assert f.source and ".xml" in f.source, f
        assert set(f.shapes) <= set(PROFILES), f
    with pytest.raises(ValueError, match="unf30, unf16"):
        get_profile("unf99")


@pytest.mark.parametrize("profile, order_field, has_reg", [("unf30", "Заказ", True), ("unf16", "Заказ_Key", False)])
def test_settlements_register_shape_per_edition(onec_factory, profile, order_field, has_reg):
    meta = _metadata(onec_factory(profile=profile))
    rows = meta.fields(f"{SETTLEMENTS}_RecordType")
    assert order_field in rows
    assert ("Заказ_Type" in rows) is (profile == "unf30")  # composite in 3.0, a single ref in 1.6
    assert ("СуммаРег" in rows) is has_reg
    assert "СодержаниеПроводки" in rows and "СодержаниеУчета" not in rows
    balance = meta.fields(f"{SETTLEMENTS}/Balance")
    assert ("СуммаРегBalance" in balance) is has_reg and order_field in balance


@pytest.mark.parametrize("profile", PROFILES)
def test_invoice_payments_is_a_turnover_register(onec_factory, profile):
    server = onec_factory(profile=profile)
    meta = _metadata(server)
    rows = meta.fields(f"{INVOICE_PAYMENTS}_RecordType")
    assert "RecordType" not in rows and {"Active", "Period", "СчетНаОплату", "СчетНаОплату_Type"} <= set(rows)
    assert (meta.sets[INVOICE_PAYMENTS], "Balance") not in meta.functions
    assert set(meta.fields(f"{INVOICE_PAYMENTS}/Turnovers")) == {
        "СчетНаОплату",
        "СчетНаОплату_Type",
        "Организация_Key",
        "СуммаTurnover",
        "СуммаОплатыTurnover",
        "СуммаАвансаTurnover",
    }
    auth = (server.username, server.password)
    ok = requests.get(f"{server.odata_url}/{INVOICE_PAYMENTS}/Turnovers()?$format=json", auth=auth, timeout=10)
    assert ok.status_code == 200 and ok.json()["value"]
    assert all("СуммаReceipt" not in r for r in ok.json()["value"])
    no_balance = requests.get(f"{server.odata_url}/{INVOICE_PAYMENTS}/Balance()?$format=json", auth=auth, timeout=10)
    assert no_balance.status_code == 400
    bad = requests.get(
        f"{server.odata_url}/{INVOICE_PAYMENTS}_RecordType?$format=json&$select=RecordType", auth=auth, timeout=10
    )
    assert bad.status_code == 400


@pytest.mark.parametrize("profile, composite", [("unf30", True), ("unf16", False)])
def test_order_stock_item_shape_per_edition(onec_factory, profile, composite):
    server = onec_factory(profile=profile)
    rows = _metadata(server).row_types("Document_ЗаказПокупателя")["Запасы"]
    assert ("Номенклатура_Type" in rows) is composite and ("Номенклатура_Key" in rows) is (not composite)
    order = next(iter(server.state.objects["Document_ЗаказПокупателя"].values()))
    line = order["Запасы"][0]
    assert (line.get("Номенклатура_Key") is None) is composite  # seeded in the edition's own shape
    for doc in ("Document_РасходнаяНакладная", "Document_СчетНаОплату"):  # a plain reference in both
        assert "Номенклатура_Key" in _metadata(server).row_types(doc)["Запасы"]
