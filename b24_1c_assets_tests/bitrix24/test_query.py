"""PHP http_build_query semantics for batch commands (expected strings are what PHP 8 prints)."""

from datetime import date
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest

from b24_1c_assets.bitrix24.query import batch_command, http_build_query, php_urlencode


def test_nested_filter_and_list_select_use_encoded_brackets():
    query = http_build_query({"filter": {">ID": 5}, "select": ["ID", "TITLE"], "start": -1})
    # php > echo http_build_query(['filter'=>['>ID'=>5],'select'=>['ID','TITLE'],'start'=>-1]);
    assert query == "filter%5B%3EID%5D=5&select%5B0%5D=ID&select%5B1%5D=TITLE&start=-1"
    assert parse_qsl(query) == [("filter[>ID]", "5"), ("select[0]", "ID"), ("select[1]", "TITLE"), ("start", "-1")]


def test_cyrillic_is_utf8_percent_encoded_and_space_is_plus():
    assert http_build_query({"fields": {"TITLE": "ООО «Ромашка»"}}) == (
        "fields%5BTITLE%5D=%D0%9E%D0%9E%D0%9E+%C2%AB%D0%A0%D0%BE%D0%BC%D0%B0%D1%88%D0%BA%D0%B0%C2%BB"
    )


def test_php_urlencode_escapes_tilde_and_reserved_characters():
    assert php_urlencode("a~b&c=d/e+f") == "a%7Eb%26c%3Dd%2Fe%2Bf"
    assert php_urlencode("A-z_0.9") == "A-z_0.9"


def test_booleans_none_and_empty_containers_as_php_does():
    # PHP: true -> 1, false -> 0, null and empty arrays are left out entirely.
    assert http_build_query({"a": True, "b": False, "c": None, "d": [], "e": {}, "f": ""}) == "a=1&b=0&f="


def test_numbers_decimals_and_dates():
    assert http_build_query({"i": 17, "f": 1.0, "g": 2.5, "m": Decimal("257000.00"), "d": date(2026, 1, 2)}) == (
        "i=17&f=1&g=2.5&m=257000.00&d=2026-01-02"
    )


def test_uf_fields_and_deep_nesting():
    assert http_build_query({"fields": {"UF_CRM_DEBT_SUM": "257000|RUB", "EMAIL": [{"VALUE": "a@b.ru"}]}}) == (
        "fields%5BUF_CRM_DEBT_SUM%5D=257000%7CRUB&fields%5BEMAIL%5D%5B0%5D%5BVALUE%5D=a%40b.ru"
    )


def test_result_reference_survives_a_php_round_trip():
    command = batch_command("crm.company.list", {"filter": {">ID": "$result[p0][49][ID]"}})
    method, query = command.split("?", 1)
    assert method == "crm.company.list"
    assert dict(parse_qsl(query)) == {"filter[>ID]": "$result[p0][49][ID]"}


def test_command_without_parameters_is_the_bare_method():
    assert batch_command("crm.dealcategory.list") == "crm.dealcategory.list"
    assert batch_command("crm.dealcategory.list", {}) == "crm.dealcategory.list"


def test_unsupported_values_are_rejected():
    with pytest.raises(TypeError):
        http_build_query({"x": object()})
    with pytest.raises(ValueError):
        http_build_query({"x": float("nan")})
