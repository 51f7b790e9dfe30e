"""The review page over HTTP: lists the queue from the analysts' copy, records decisions in its own store, and
the next match honours them - the working DuckDB file is never opened by the page."""

from __future__ import annotations

import duckdb
import pandas as pd
import requests

from b24_1c_assets.domain.company_sync import held_back_adds
from b24_1c_assets.domain.duplicates import find_duplicates
from b24_1c_assets.domain.matching import created_in_crm, match_clients
from b24_1c_assets.domain.review_queue import REVIEW_COLUMNS, review_queue
from b24_1c_assets.sync.review_decisions import DecisionStore, import_into_warehouse
from b24_1c_assets.warehouse import read_table, replace_table
from b24_1c_assets_tests.domain.conftest import crm_frame, onec_frame
from b24_1c_assets_tests.services.conftest import GATE_TOKEN, REVIEW_TOKEN

ONEC = [
    {"ref_key": "r-mail", "description": "Фи", "inn": "7770434190", "kpp": "772201001", "email": "buh@phi-group.ru"},
    {"ref_key": "r-tel", "description": "Пси", "inn": "7782447571", "kpp": "772401001", "phone": "8 (495) 224-24-24"},
    {"ref_key": "r-a", "description": "Тета", "inn": "7749786908", "kpp": "770801001"},
    {"ref_key": "r-b", "description": "Тета ООО", "inn": "7749786908", "kpp": "770801001"},
]
CRM = [
    {"company_id": 122, "title": "Фи Групп", "emails": ["buh@phi-group.ru"]},
    {"company_id": 124, "title": "Пси Логистик", "phones": ["+7 495 2242424"]},
]
RAW_1C = pd.DataFrame(
    {
        "Ref_Key": ["r-mail"],
        "КонтактнаяИнформация": ['[{"Тип": "Адрес", "Представление": "г. Москва, ул. Ленина, д. 1"}]'],
    }
)
RAW_CRM = pd.DataFrame({"ID": ["122", "124"], "ADDRESS": ["ул. Мира, 5", None], "ADDRESS_CITY": ["Москва", None]})


def _match(decisions: pd.DataFrame | None = None):
    return match_clients(onec_frame(ONEC), crm_frame(CRM), decisions)


def _publish_queue(path, result) -> pd.DataFrame:
    dups = find_duplicates(result.onec, result.crm, survivors=result.survivors)
    held = held_back_adds(result.clients, dups, result.candidates)
    queue = review_queue(
        result.candidates, held, result.onec, result.crm, RAW_1C, RAW_CRM, None, "https://portal.example.ru"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as conn:
        replace_table(conn, "client_master", "review_queue", queue)
    return queue


def test_queue_shows_both_sides_and_the_held_back_duplicates():
    matched = _match()
    queue = review_queue(
        candidates=matched.candidates,
        held_back={"r-b": "duplicate in 1C"},
        onec=matched.onec,
        crm=matched.crm,
        onec_raw=RAW_1C,
        companies_raw=RAW_CRM,
        crm_activity=None,
        portal_origin="https://portal.example.ru",
    )
    assert list(queue.columns) == REVIEW_COLUMNS
    mail = queue[queue["onec_ref"] == "r-mail"].iloc[0]
    assert (mail["item"], mail["company_id"], mail["rule"], mail["crm_title"]) == (
        "candidate",
        122,
        "email",
        "Фи Групп",
    )
    assert mail["onec_address"] == "г. Москва, ул. Ленина, д. 1" and mail["crm_address"] == "ул. Мира, 5, Москва"
    assert mail["card_url"] == "https://portal.example.ru/crm/company/details/122/"
    held = queue[queue["item"] == "held_back"]
    assert held[["onec_ref", "hold_reason"]].values.tolist() == [["r-b", "duplicate in 1C"]]


def test_page_lists_decides_and_the_next_match_honours_it(service_config, start_service, tmp_path):
    _publish_queue(tmp_path / "analytics" / "b24_1c.duckdb", _match())
    service = start_service(service_config)
    page = requests.get(service.url + "/review", params={"token": REVIEW_TOKEN}, timeout=5)
    assert page.status_code == 200
    assert "Фи Групп" in page.text and "г. Москва, ул. Ленина, д. 1" in page.text and "Create in CRM" in page.text
    form = {"token": REVIEW_TOKEN, "decided_by": "boris", "note": "checked by phone"}
    sent = requests.post(
        service.url + "/review/decisions",
        timeout=5,
        allow_redirects=False,
        data={**form, "onec_ref": "r-mail", "company_id": "122", "decision": "accept"},
    )
    assert sent.status_code == 303 and sent.headers["location"].startswith("/review?message=")
    requests.post(
        service.url + "/review/decisions",
        timeout=5,
        data={**form, "onec_ref": "r-tel", "company_id": "124", "decision": "reject"},
    )
    requests.post(
        service.url + "/review/decisions",
        timeout=5,
        data={**form, "onec_ref": "r-b", "company_id": "", "decision": "create"},
    )
    again = requests.get(service.url + "/review", params={"token": REVIEW_TOKEN}, timeout=5).text
    assert "accepted by boris" in again and "create in CRM by boris" in again

    # Refusals name the problem; a wrong token never records anything.
    bad = requests.post(
        service.url + "/review/decisions",
        timeout=5,
        data={**form, "onec_ref": "r-tel", "company_id": "124", "decision": "merge"},
    )
    assert bad.status_code == 400 and "decision must be one of" in bad.json()["error"]
    nameless = requests.post(
        service.url + "/review/decisions",
        timeout=5,
        data={**form, "decided_by": " ", "onec_ref": "r-tel", "company_id": "124", "decision": "reject"},
    )
    assert nameless.status_code == 400 and "decided_by" in nameless.json()["error"]
    assert (
        requests.post(
            service.url + "/review/decisions",
            timeout=5,
            data={**form, "token": GATE_TOKEN, "onec_ref": "r-tel", "company_id": "124", "decision": "accept"},
        ).status_code
        == 401
    )

    store = DecisionStore(service_config.review_decisions)
    assert store.rows()[["onec_ref", "decision", "decided_by", "note"]].values.tolist() == [
        ["r-mail", "accept", "boris", "checked by phone"],
        ["r-tel", "reject", "boris", "checked by phone"],
        ["r-b", "create", "boris", "checked by phone"],
    ]

    # The next run: the store is imported (once) into the working file and the matcher honours it.
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb")) as conn:
        assert import_into_warehouse(conn, store) == 3
        assert import_into_warehouse(conn, store) == 0
        decisions = read_table(conn, "review", "client_match_decisions")
    result = _match(decisions)
    linked = result.clients.dropna(subset=["onec_ref", "company_id"])
    assert linked[["onec_ref", "company_id", "match_rule"]].values.tolist() == [["r-mail", 122, "reviewer_accept"]]
    assert result.candidates[result.candidates["onec_ref"].isin(["r-tel", "r-b"])].empty
    dups = find_duplicates(result.onec, result.crm, survivors=result.survivors)
    held = held_back_adds(result.clients, dups, result.candidates, created=created_in_crm(decisions))
    assert "r-b" not in held and "r-a" in held  # "create in CRM" releases only the client it was given for


def test_page_before_the_first_copy_says_so(service):
    page = requests.get(service.url + "/review", params={"token": REVIEW_TOKEN}, timeout=5)
    assert page.status_code == 200 and "after the first sync run" in page.text
