"""Wire format of 1C OData: types, literals, URL encoding, error bodies (pure functions)."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from b24_1c_assets.onec import wire

MSK = ZoneInfo("Europe/Moscow")


def test_loads_reads_money_as_decimal_never_float():
    doc = wire.loads('{"Сумма": 1500.10, "N": 3, "big": 12345678901234567.01}')
    assert doc["Сумма"] == Decimal("1500.10") and isinstance(doc["Сумма"], Decimal)
    assert doc["big"] == Decimal("12345678901234567.01")


def test_parse_row_types_by_edm_and_drops_empty_markers():
    types = {
        "LineNumber": "Edm.Int64",
        "Сумма": "Edm.Double",
        "Date": "Edm.DateTime",
        "Договор_Key": "Edm.Guid",
        "Posted": "Edm.Boolean",
        "Заказ": "Edm.String",
        "Заказ_Type": "Edm.String",
        "ОплатаДо": "Edm.DateTime",
    }
    row = {
        "LineNumber": "12",
        "Сумма": 7,
        "Date": "2026-03-01T10:15:00",
        "Договор_Key": wire.ZERO_GUID,
        "Posted": True,
        "Заказ": "",
        "Заказ_Type": "StandardODATA.Undefined",
        "ОплатаДо": wire.EMPTY_DATE,
        "Договор@navigationLinkUrl": "x",
        "Запасы": [{"LineNumber": "1", "Цена": Decimal("2.50")}],
    }
    out = wire.parse_row(row, types, MSK, {"Запасы": {"LineNumber": "Edm.Int64", "Цена": "Edm.Double"}})
    assert out["LineNumber"] == 12
    assert out["Сумма"] == Decimal("7") and isinstance(out["Сумма"], Decimal)
    assert out["Date"] == datetime(2026, 3, 1, 10, 15, tzinfo=MSK)
    assert out["Договор_Key"] is None and out["ОплатаДо"] is None
    assert out["Заказ"] is None and out["Заказ_Type"] == "StandardODATA.Undefined"
    assert "Договор@navigationLinkUrl" not in out
    assert out["Запасы"] == [{"LineNumber": 1, "Цена": Decimal("2.50")}]


def test_literals_are_infobase_local_without_zone():
    aware_utc = datetime(2026, 1, 31, 21, 30, tzinfo=ZoneInfo("UTC"))
    assert wire.datetime_literal(aware_utc, MSK) == "datetime'2026-02-01T00:30:00'"
    assert wire.datetime_literal(date(2026, 2, 1), MSK) == "datetime'2026-02-01T00:00:00'"
    assert wire.string_literal("O'Brien") == "'O''Brien'"


def test_query_uses_percent20_never_plus_and_keeps_slash_in_path():
    q = wire.query_string({"$filter": "Date ge datetime'2026-01-01T00:00:00' and substringof('a+b&c', Комментарий)"})
    assert "+" not in q and "%20" in q and "%2B" in q and "%26" in q
    assert q.startswith("$filter=Date%20ge%20datetime'2026-01-01T00:00:00'")
    p = wire.path("AccumulationRegister_РасчетыСПокупателями", "Balance(Period=datetime'2026-01-01T00:00:00')")
    assert "/Balance(Period=datetime'2026-01-01T00:00:00')" in p and "%2F" not in p
    assert p.startswith("AccumulationRegister_%D0%A0")


def test_error_bodies_json_xml_iis_html():
    body = '{"odata.error": {"code": "14", "message": {"lang": "ru", "value": "Ошибка разбора опций"}}}'
    assert wire.parse_error_body(body.encode()) == ("14", "Ошибка разбора опций")
    xml = (
        '<?xml version="1.0" encoding="utf-8"?><m:error xmlns:m="http://schemas.microsoft.com/ado/2007/08/'
        'dataservices/metadata"><m:code>9</m:code><m:message>Экземпляр сущности не найден</m:message></m:error>'
    )
    assert wire.parse_error_body(xml.encode()) == ("9", "Экземпляр сущности не найден")
    iis = b"<html><body><h3>HTTP Error 404.15 - Not Found</h3><p>query string is too long.</p></body></html>"
    code, msg = wire.parse_error_body(iis)
    assert code == "404.15" and "too long" in msg
    html = "<html><body>1C:Enterprise 8 application error by reason: Недостаточно памяти</body></html>"
    code, msg = wire.parse_error_body(html.encode())
    assert code is None and "Недостаточно памяти" in msg
