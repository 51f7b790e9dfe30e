"""The sandbox portal's protocol: URLs and auth, parameter encodings, envelopes and errors, the leaky bucket,
operating time, batch, fault injection and the request log. Real HTTP over loopback."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import requests

from b24_1c_assets.sandbox.bitrix24_portal import parse_php_query
from b24_1c_assets.sandbox.faults import Faults


def call(portal, method: str, params: dict | None = None, **kw) -> requests.Response:
    return requests.post(portal.webhook_url + method, json=params or {}, timeout=10, **kw)


def php_query(params: dict, prefix: str | None = None) -> str:
    """PHP http_build_query (keys and values percent-encoded, UTF-8), as a careful client encodes batch commands."""
    parts = []
    items = params.items() if isinstance(params, dict) else enumerate(params)
    for key, value in items:
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, (dict, list)):
            parts.append(php_query(value, name))
        else:
            parts.append(f"{quote(name, safe='')}={quote(str(value), safe='')}")
    return "&".join(p for p in parts if p)


@pytest.fixture
def b24(portal_factory):
    """A seeded portal with a limit high enough for functional tests."""
    return portal_factory(rate=1000.0, burst=1000)


@pytest.fixture
def empty(portal_factory):
    return portal_factory(rate=1000.0, burst=1000, seed=False)


def crm_company_count(world) -> int:
    return sum(len(p.crm_spellings) for p in world.parties if p.presence != "1c")


# -- envelopes and errors -----------------------------------------------------------------------------


def test_list_envelope_has_strings_total_next_and_time_block(b24, world):
    body = call(b24, "crm.company.list", {"select": ["ID", "TITLE"]}).json()
    assert len(body["result"]) == 50
    assert body["total"] == crm_company_count(world)
    assert body["next"] == 50
    assert all(isinstance(row["ID"], str) for row in body["result"])
    assert set(body["time"]) == {
        "start",
        "finish",
        "duration",
        "processing",
        "date_start",
        "date_finish",
        "operating_reset_at",
        "operating",
    }
    assert body["time"]["date_start"].endswith("+03:00")
    assert body["time"]["operating_reset_at"] > body["time"]["start"]


def test_json_form_and_query_string_parameters_mean_the_same(b24):
    params = {"filter": {"%TITLE": "ООО", ">ID": 3}, "select": ["ID", "TITLE"], "order": {"ID": "DESC"}}
    via_json = call(b24, "crm.company.list", params).json()["result"]
    via_form = requests.post(
        b24.webhook_url + "crm.company.list",
        data=php_query(params).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    ).json()
    via_query = requests.get(b24.webhook_url + "crm.company.list?" + php_query(params), timeout=10).json()
    assert via_json and via_json == via_form["result"] == via_query["result"]
    assert [int(r["ID"]) for r in via_json] == sorted((int(r["ID"]) for r in via_json), reverse=True)


def test_method_names_are_case_insensitive_and_take_a_json_suffix(b24):
    response = call(b24, "CRM.Company.List.json", {"select": ["ID"], "start": -1})
    assert response.status_code == 200 and len(response.json()["result"]) == 50


def test_wrong_webhook_code_is_401_no_auth_found(b24):
    wrong = b24.webhook_url.replace(b24.webhook_code, "x" * len(b24.webhook_code))
    response = requests.post(wrong + "crm.company.list", json={}, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"] == "NO_AUTH_FOUND"
    other_user = b24.webhook_url.replace(f"/rest/{b24.user_id}/", "/rest/999/")
    assert requests.post(other_user + "crm.company.list", json={}, timeout=10).status_code == 401


def test_unknown_method_is_404_error_method_not_found(b24):
    response = call(b24, "crm.company.frobnicate")
    assert response.status_code == 404
    assert response.json() == {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}


def test_missing_record_is_400_not_found(b24):
    for method, params in (
        ("crm.company.get", {"id": 999999}),
        ("crm.deal.update", {"id": 999999, "fields": {}}),
        ("crm.contact.get", {"ID": "999999"}),
    ):
        response = call(b24, method, params)
        assert response.status_code == 400, method
        assert response.json() == {"error": "", "error_description": "Not found"}


def test_bad_parameters_are_400_with_an_error(b24):
    response = call(b24, "crm.company.list", {"filter": "TITLE=x"})
    assert response.status_code == 400 and response.json()["error"] == "ERROR_ARGUMENT"
    response = call(b24, "crm.company.list", {"start": "abc"})
    assert response.status_code == 400 and response.json()["error"] == "ERROR_ARGUMENT"
    response = call(b24, "crm.company.get", {})
    assert response.status_code == 400 and "ID" in response.json()["error_description"]
    response = requests.post(
        b24.webhook_url + "crm.company.list",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400 and response.json()["error"] == "ERROR_ARGUMENT"


def test_php_query_parser_handles_nesting_lists_appends_and_utf8():
    parsed = parse_php_query(
        "filter%5B%3EID%5D=5&filter[@ID][0]=1&filter[@ID][1]=2&select[]=ID&select[]=TITLE"
        "&fields[TITLE]=%D0%A0%D0%BE%D0%BC%D0%B0%D1%88%D0%BA%D0%B0+2&fields[EMAIL][n0][VALUE]=a"
    )
    assert parsed == {
        "filter": {">ID": "5", "@ID": ["1", "2"]},
        "select": ["ID", "TITLE"],
        "fields": {"TITLE": "Ромашка 2", "EMAIL": {"n0": {"VALUE": "a"}}},
    }


# -- limits -------------------------------------------------------------------------------------------


def test_leaky_bucket_refuses_the_call_over_the_burst_and_does_nothing(portal_factory):
    portal = portal_factory(rate=0.5, burst=5, seed=False)
    answers = [call(portal, "crm.company.add", {"fields": {"TITLE": f"Компания {i}"}}) for i in range(6)]
    assert [a.status_code for a in answers].count(503) == 1
    refused = next(a for a in answers if a.status_code == 503)
    assert refused.json()["error"] == "QUERY_LIMIT_EXCEEDED"
    assert len(portal.state.tables["company"].rows) == 5


def test_batch_counts_as_one_request_in_the_bucket(portal_factory):
    portal = portal_factory(rate=0.5, burst=2, seed=False)
    cmd = {f"c{i}": "crm.company.add?" + php_query({"fields": {"TITLE": f"Фирма {i}"}}) for i in range(20)}
    first = call(portal, "batch", {"cmd": cmd})
    second = call(portal, "crm.company.list", {"start": -1})
    assert first.status_code == 200 and second.status_code == 200
    assert len(portal.state.tables["company"].rows) == 20
    assert len(portal.request_log) == 2 and len(portal.request_log[0]["commands"]) == 20


def test_operating_time_limit_blocks_only_the_heavy_method_until_reset(portal_factory):
    portal = portal_factory(operating_budget=0.5, operating_extra_cost=1.0)
    first = call(portal, "crm.company.list", {"select": ["ID"]})
    assert first.status_code == 200 and first.json()["time"]["operating"] >= 1.0
    blocked = call(portal, "crm.company.list", {"select": ["ID"], "start": -1})
    assert blocked.status_code == 503 and blocked.json()["error"] == "OPERATION_TIME_LIMIT"
    assert call(portal, "crm.deal.list", {"select": ["ID"], "start": -1}).status_code == 200
    inner = call(portal, "batch", {"cmd": {"a": "crm.company.list?start=-1", "b": "crm.deal.list?start=-1"}}).json()
    assert inner["result"]["result_error"]["a"]["error"] == "OPERATION_TIME_LIMIT"
    assert "b" in inner["result"]["result"]
    used, reset_at = portal.operating_used("crm.company.list")
    assert used >= 1.0 and reset_at > first.json()["time"]["finish"]


# -- batch --------------------------------------------------------------------------------------------


def test_batch_parses_php_encoding_with_nested_filters_arrays_uf_fields_and_cyrillic(empty):
    assert (
        call(
            empty, "crm.company.userfield.add", {"fields": {"FIELD_NAME": "DEBT_SUM", "USER_TYPE_ID": "double"}}
        ).status_code
        == 200
    )
    cmd = {
        "add1": "crm.company.add?"
        + php_query(
            {
                "fields": {
                    "TITLE": "ООО «Ромашка» & Ко",
                    "UF_CRM_DEBT_SUM": "257000.5",
                    "EMAIL": [{"VALUE": "buh@romashka.ru", "VALUE_TYPE": "WORK"}],
                }
            }
        ),
        "add2": "crm.company.add?" + php_query({"fields": {"TITLE": "Лютик"}}),
        "find": "crm.company.list?"
        + php_query(
            {
                "filter": {"@ID": ["$result[add1]", "$result[add2]"], "%TITLE": "ромашка"},
                "select": ["ID", "TITLE", "UF_CRM_DEBT_SUM", "EMAIL"],
            }
        ),
    }
    body = call(empty, "batch", {"halt": 0, "cmd": cmd}).json()["result"]
    assert body["result_error"] == []
    found = body["result"]["find"]
    assert len(found) == 1 and found[0]["TITLE"] == "ООО «Ромашка» & Ко"
    assert found[0]["UF_CRM_DEBT_SUM"] == "257000.5"
    assert found[0]["EMAIL"][0]["VALUE"] == "buh@romashka.ru"
    assert body["result_total"] == {"find": 1}
    assert set(body["result_time"]) == {"add1", "add2", "find"}


def test_batch_result_references_resolve_and_unresolvable_ones_stay_literal(b24):
    cmd = {
        "c1": "crm.company.list?filter[>ID]=0&order[ID]=ASC&select[0]=ID&start=-1",
        "c2": "crm.requisite.list?filter[ENTITY_TYPE_ID]=4&filter[ENTITY_ID]=$result[c1][0][ID]",
        "c3": "crm.company.get?id=$result[nope][0][ID]",
        "c4": "crm.company.get?id=$result[c1][0][ID]",
    }
    body = call(b24, "batch", {"cmd": cmd}).json()["result"]
    first_id = body["result"]["c1"][0]["ID"]
    assert [r["ENTITY_ID"] for r in body["result"]["c2"]] == [first_id]
    assert body["result"]["c4"]["ID"] == first_id
    assert body["result_error"]["c3"]["error_description"] == "ID is not defined or invalid."
    assert b24.request_log[-1]["commands"] == [
        "crm.company.list",
        "crm.requisite.list",
        "crm.company.get",
        "crm.company.get",
    ]


def test_batch_halt_stops_at_the_first_error_and_halt_0_runs_all(b24):
    cmd = {"a": "crm.company.get?id=1", "b": "crm.company.get?id=999999", "c": "crm.company.get?id=2"}
    halted = call(b24, "batch", {"halt": 1, "cmd": cmd}).json()["result"]
    assert set(halted["result"]) == {"a"} and set(halted["result_error"]) == {"b"}
    full = call(b24, "batch", {"halt": 0, "cmd": cmd}).json()["result"]
    assert set(full["result"]) == {"a", "c"}
    assert full["result_error"]["b"] == {"error": "", "error_description": "Not found"}


def test_batch_with_a_list_of_commands_answers_php_arrays(b24):
    body = call(b24, "batch", {"cmd": ["crm.company.get?id=1", "crm.company.get?id=999999"]}).json()["result"]
    assert isinstance(body["result"], list) and body["result"][0]["ID"] == "1"
    assert body["result_error"] == {"1": {"error": "", "error_description": "Not found"}}
    assert body["result_total"] == [] and body["result_next"] == []


def test_batch_of_more_than_50_commands_is_refused_whole(empty):
    cmd = {f"c{i}": f"crm.company.add?fields[TITLE]=X{i}" for i in range(51)}
    response = call(empty, "batch", {"cmd": cmd})
    assert response.status_code == 400
    assert response.json() == {"error": "ERROR_BATCH_LENGTH_EXCEEDED", "error_description": "Max batch length exceeded"}
    assert len(empty.state.tables["company"].rows) == 0
    ok = call(empty, "batch", {"cmd": dict(list(cmd.items())[:50])})
    assert ok.status_code == 200 and len(empty.state.tables["company"].rows) == 50


def test_batch_inside_batch_is_not_allowed_and_unknown_inner_methods_fail_alone(b24):
    body = call(
        b24,
        "batch",
        {
            "cmd": {
                "inner": "batch?cmd[x]=crm.company.get%3Fid%3D1",
                "bad": "crm.nothing.list",
                "ok": "crm.company.get?id=1",
            }
        },
    ).json()["result"]
    assert body["result_error"]["inner"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
    assert body["result_error"]["bad"]["error"] == "ERROR_METHOD_NOT_FOUND"
    assert body["result"]["ok"]["ID"] == "1"


def test_batch_form_encoded_cmd_with_double_encoding(b24):
    # cmd values inside a form body are encoded twice, as the docs warn.
    inner = "crm.company.list?" + php_query({"filter": {"ID": 2}, "select": ["ID"]})
    body = requests.post(
        b24.webhook_url + "batch.json",
        data=f"halt=0&cmd[one]={quote(inner, safe='')}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    ).json()
    assert body["result"]["result"]["one"] == [{"ID": "2"}]


# -- faults -------------------------------------------------------------------------------------------


def test_injected_503_is_a_plain_balancer_page_and_500_a_json_error(portal_factory):
    p503 = portal_factory(faults=Faults(error_503_share=1.0), seed=False)
    response = call(p503, "crm.company.add", {"fields": {"TITLE": "A"}})
    assert response.status_code == 503 and "html" in response.headers["Content-Type"]
    p500 = portal_factory(faults=Faults(error_500_share=1.0), seed=False)
    response = call(p500, "crm.company.add", {"fields": {"TITLE": "A"}})
    assert response.status_code == 500 and response.json()["error"] == "INTERNAL_SERVER_ERROR"
    assert not p503.state.tables["company"].rows and not p500.state.tables["company"].rows


def test_injected_drop_closes_the_connection_without_an_answer(portal_factory):
    portal = portal_factory(faults=Faults(drop_share=1.0), seed=False)
    with pytest.raises(requests.ConnectionError):
        call(portal, "crm.company.list")
    assert portal.request_log[-1]["error"] == "DROPPED"


def test_injected_slow_answer_outlasts_a_short_client_timeout(portal_factory):
    portal = portal_factory(faults=Faults(slow_share=1.0, slow_seconds=1.0), seed=False)
    with pytest.raises(requests.Timeout):
        requests.post(portal.webhook_url + "crm.company.list", json={}, timeout=0.2)


def test_fail_after_write_applies_the_write_then_fails_the_answer(portal_factory):
    portal = portal_factory(faults=Faults(error_500_share=1.0, fail_after_write=True), seed=False)
    response = call(portal, "crm.company.add", {"fields": {"TITLE": "Записано"}})
    assert response.status_code == 500
    assert [r["TITLE"] for r in portal.state.tables["company"].rows.values()] == ["Записано"]
    assert call(portal, "crm.company.list").status_code == 500  # reads fail without side effects


def test_per_command_batch_errors(portal_factory):
    portal = portal_factory(faults=Faults(batch_command_error_share=1.0), seed=False)
    body = call(portal, "batch", {"cmd": {"a": "crm.company.add?fields[TITLE]=A", "b": "crm.company.list"}}).json()
    assert set(body["result"]["result_error"]) == {"a", "b"}
    assert body["result"]["result_error"]["a"]["error"] == "INTERNAL_SERVER_ERROR"
    assert not portal.state.tables["company"].rows
    after = portal_factory(faults=Faults(batch_command_error_share=1.0, fail_after_write=True), seed=False)
    body = call(after, "batch", {"cmd": {"a": "crm.company.add?fields[TITLE]=A"}}).json()
    assert "a" in body["result"]["result_error"] and len(after.state.tables["company"].rows) == 1


# -- request log --------------------------------------------------------------------------------------


def test_request_log_counts_calls_without_any_secret(b24):
    call(b24, "crm.company.list", {"select": ["ID"], "auth": "token-123"})
    call(b24, "crm.company.update", {"id": 1, "fields": {"TITLE": "Новое имя"}})
    call(b24, "batch", {"cmd": {"a": "crm.company.get?id=1", "b": "crm.deal.update?id=1&fields[TITLE]=x"}})
    requests.post(b24.webhook_url.replace(b24.webhook_code, "bad") + "crm.company.list", json={}, timeout=10)
    log = b24.request_log
    assert [(e["method"], e["status"], e["kind"]) for e in log] == [
        ("crm.company.list", 200, "read"),
        ("crm.company.update", 200, "write"),
        ("batch", 200, "write"),
        ("crm.company.list", 401, "read"),
    ]
    assert log[2]["commands"] == ["crm.company.get", "crm.deal.update"] and log[3]["error"] == "NO_AUTH_FOUND"
    dumped = json.dumps(log, ensure_ascii=False) + repr(log) + repr(b24)
    assert b24.webhook_code not in dumped and "token-123" not in dumped
    b24.clear_log()
    assert b24.request_log == []


def test_concurrent_callers_share_one_consistent_crm(empty):
    from concurrent.futures import ThreadPoolExecutor

    def add(n: int) -> int:
        with requests.Session() as session:
            return [
                session.post(
                    empty.webhook_url + "crm.company.add", json={"fields": {"TITLE": f"T{n}-{i}"}}, timeout=10
                ).json()["result"]
                for i in range(10)
            ][-1]

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(add, range(8)))
    rows = empty.state.tables["company"].rows
    assert len(rows) == 80 and sorted(rows) == list(range(1, 81))
    assert len({r["TITLE"] for r in rows.values()}) == 80


def test_a_reference_past_a_short_page_substitutes_what_resolved_as_the_portal_does(b24):
    """`$result[p0][49][ID]` after a 3-row page: the portal puts in the part it could resolve (the page array),
    so the chained command runs with a malformed filter instead of an empty one."""
    cmd = {
        "p0": "crm.company.list?filter[>ID]=0&order[ID]=ASC&select[0]=ID&start=-1&filter[%3C%3DID]=3",
        "p1": "crm.company.list?filter[>ID]=$result[p0][49][ID]&order[ID]=ASC&select[0]=ID&start=-1",
        "t": "crm.company.list?filter[%TITLE]=x$result[p0][49][ID]&select[0]=ID&start=-1",
    }
    body = call(b24, "batch", {"cmd": cmd}).json()["result"]
    assert len(body["result"]["p0"]) == 3
    # the malformed queries run (and cost operating time) but find nothing; an empty string would have
    # read ">ID > ''" and returned the table again
    assert body["result"]["p1"] == [] and body["result"]["t"] == []
    assert body["result_time"]["p1"]["operating"] > 0
    from b24_1c_assets.sandbox.bitrix24_portal import _substitute

    page = body["result"]["p0"]
    assert _substitute({">ID": "$result[p0][49][ID]"}, {"p0": page}) == {">ID": page}
    assert _substitute({"%TITLE": "x$result[p0][49][ID]"}, {"p0": page}) == {"%TITLE": "xArray"}
    assert _substitute({">ID": "$result[p0][2][ID]"}, {"p0": page}) == {">ID": "3"}
