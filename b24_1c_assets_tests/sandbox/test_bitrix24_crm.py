"""CRM semantics of the sandbox portal over real HTTP: filters, select, order, paging, multifields, user fields,
pipelines and stages, requisites, products, smart invoices, timeline/notifications and offline events."""

from __future__ import annotations

import pytest
import requests


def call(portal, method: str, params: dict | None = None) -> dict:
    if method.startswith("event."):  # application context only: a webhook is refused (test_bitrix24_auth.py)
        response = requests.post(
            f"{portal.base_url}/rest/{method}", json={**(params or {}), "auth": portal.application_token()}, timeout=10
        )
    else:
        response = requests.post(portal.webhook_url + method, json=params or {}, timeout=10)
    body = response.json()
    body["_status"] = response.status_code
    return body


def ids(body: dict) -> list[int]:
    return sorted(int(r["ID"]) for r in body["result"])


@pytest.fixture
def empty(portal_factory):
    return portal_factory(rate=1000.0, burst=1000, seed=False)


@pytest.fixture
def firms(empty):
    """Three companies with known fields (IDs 1..3) and one user field."""
    call(empty, "crm.company.userfield.add", {"fields": {"FIELD_NAME": "CREDIT_FLAG", "USER_TYPE_ID": "string"}})
    for title, revenue, flag, email in (
        ("ООО «Ромашка»", "100", "Y", "buh@romashka.ru"),
        ("Лютик", "200", "", None),
        ("ромашка плюс", "300.5", "N", "Info@Romashka-Plus.ru"),
    ):
        fields = {"TITLE": title, "REVENUE": revenue, "UF_CRM_CREDIT_FLAG": flag}
        if email:
            fields["EMAIL"] = [{"VALUE": email, "VALUE_TYPE": "WORK"}]
        assert call(empty, "crm.company.add", {"fields": fields})["_status"] == 200
    return empty


# -- filters ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filter_, expected",
    [
        ({"ID": 2}, [2]),
        ({"=ID": "2"}, [2]),
        ({"ID": [1, 3]}, [1, 3]),
        ({"!ID": 2}, [1, 3]),
        ({"!=ID": 2}, [1, 3]),
        ({">REVENUE": 100}, [2, 3]),
        ({">=REVENUE": 200}, [2, 3]),
        ({"<REVENUE": 200}, [1]),
        ({"<=REVENUE": "200.00"}, [1, 2]),
        ({"%TITLE": "РОМАШКА"}, [1, 3]),
        ({"=%TITLE": "ромашка%"}, [3]),
        ({"%=TITLE": "%«Ромашка»"}, [1]),
        ({"@ID": [2, 3]}, [2, 3]),
        ({"!@ID": [2, 3]}, [1]),
        ({"!UF_CRM_CREDIT_FLAG": ""}, [1, 3]),
        ({"UF_CRM_CREDIT_FLAG": ""}, [2]),
        ({"EMAIL": "info@romashka-plus.ru"}, [3]),
        ({"%TITLE": "ромашка", ">ID": 1}, [3]),
        ({"UNKNOWN_FIELD": "x"}, [1, 2, 3]),
    ],
)
def test_filter_prefixes(firms, filter_, expected):
    assert ids(call(firms, "crm.company.list", {"filter": filter_, "select": ["ID"]})) == expected


def test_filter_by_modification_date_accepts_iso_dates(firms):
    firms.state.record("company", 1)["DATE_MODIFY"] = "2026-01-10T09:00:00+03:00"
    assert ids(call(firms, "crm.company.list", {"filter": {"<DATE_MODIFY": "2026-02-01T00:00:00+03:00"}})) == [1]
    assert ids(call(firms, "crm.company.list", {"filter": {">=DATE_MODIFY": "2026-01-10"}})) == [1, 2, 3]


# -- select, multifields ------------------------------------------------------------------------------


def test_select_explicit_star_uf_and_multifields_only_when_asked(firms):
    explicit = call(firms, "crm.company.list", {"select": ["ID", "TITLE"]})["result"][0]
    assert set(explicit) == {"ID", "TITLE"}
    star = call(firms, "crm.company.list", {"select": ["*"]})["result"][0]
    assert {"ID", "TITLE", "DATE_MODIFY", "ORIGIN_ID", "REVENUE"} <= set(star)
    assert "EMAIL" not in star and "UF_CRM_CREDIT_FLAG" not in star
    assert star["REVENUE"] == "100.00"
    uf = call(firms, "crm.company.list", {"select": ["ID", "UF_*", "EMAIL"]})["result"][0]
    assert uf["UF_CRM_CREDIT_FLAG"] == "Y" and uf["EMAIL"][0]["VALUE"] == "buh@romashka.ru"
    got = call(firms, "crm.company.get", {"id": 1})["result"]
    assert got["EMAIL"][0]["TYPE_ID"] == "EMAIL" and got["HAS_EMAIL"] == "Y" and "UF_CRM_CREDIT_FLAG" in got


def test_multifield_update_appends_changes_and_deletes(firms):
    original = call(firms, "crm.company.get", {"id": 1})["result"]["EMAIL"][0]
    call(firms, "crm.company.update", {"id": 1, "fields": {"EMAIL": [{"VALUE": "buh@romashka.ru"}]}})
    emails = call(firms, "crm.company.get", {"id": 1})["result"]["EMAIL"]
    assert [e["VALUE"] for e in emails] == ["buh@romashka.ru", "buh@romashka.ru"]  # re-sent without ID: a copy
    call(
        firms,
        "crm.company.update",
        {
            "id": 1,
            "fields": {
                "EMAIL": [{"ID": original["ID"], "VALUE": "director@romashka.ru"}, {"ID": emails[1]["ID"], "VALUE": ""}]
            },
        },
    )
    emails = call(firms, "crm.company.get", {"id": 1})["result"]["EMAIL"]
    assert emails == [{"ID": original["ID"], "VALUE_TYPE": "WORK", "VALUE": "director@romashka.ru", "TYPE_ID": "EMAIL"}]


# -- order and paging ---------------------------------------------------------------------------------


def test_paging_next_total_and_start_minus_one(empty):
    for chunk in range(3):
        cmd = {f"c{i}": f"crm.company.add?fields[TITLE]=Firm{chunk * 40 + i:03d}" for i in range(40)}
        assert call(empty, "batch", {"cmd": cmd})["_status"] == 200
    pages = [call(empty, "crm.company.list", {"select": ["ID"], "start": s}) for s in (0, 50, 100)]
    assert [len(p["result"]) for p in pages] == [50, 50, 20]
    assert [p.get("next") for p in pages] == [50, 100, None]
    assert {p["total"] for p in pages} == {120}
    fast = call(empty, "crm.company.list", {"select": ["ID"], "start": -1, "order": {"ID": "ASC"}})
    assert len(fast["result"]) == 50 and "total" not in fast and "next" not in fast
    seen, last = [], 0
    while True:  # keyset export
        page = call(
            empty, "crm.company.list", {"select": ["ID"], "filter": {">ID": last}, "order": {"ID": "ASC"}, "start": -1}
        )["result"]
        seen += [int(r["ID"]) for r in page]
        if len(page) < 50:
            break
        last = int(page[-1]["ID"])
    assert seen == list(range(1, 121))


def test_order_by_text_and_descending(firms):
    rows = call(firms, "crm.company.list", {"order": {"REVENUE": "DESC"}, "select": ["ID"]})["result"]
    assert [r["ID"] for r in rows] == ["3", "2", "1"]
    rows = call(firms, "crm.company.list", {"order": {"TITLE": "ASC"}, "select": ["TITLE"]})["result"]
    assert [r["TITLE"] for r in rows] == ["Лютик", "ООО «Ромашка»", "ромашка плюс"]
    rows = call(firms, "crm.company.list", {"order": {"EMAIL": "ASC"}, "select": ["ID"]})["result"]
    assert [r["ID"] for r in rows] == ["2", "1", "3"]  # no e-mail sorts first, like NULL in MySQL


# -- writes, user fields ------------------------------------------------------------------------------


def test_update_bumps_date_modify_and_ignores_unknown_uf_fields(firms):
    firms.state.record("company", 2)["DATE_MODIFY"] = "2026-01-01T00:00:00+03:00"
    assert (
        call(firms, "crm.company.update", {"id": 2, "fields": {"UF_CRM_NOT_THERE": "x", "COMMENTS": "ok"}})["result"]
        is True
    )
    got = call(firms, "crm.company.get", {"id": 2})["result"]
    assert got["DATE_MODIFY"] > "2026-01-01T00:00:00+03:00" and got["COMMENTS"] == "ok"
    assert "UF_CRM_NOT_THERE" not in got


def test_userfield_add_prefixes_the_name_and_refuses_duplicates(empty):
    body = call(
        empty,
        "crm.deal.userfield.add",
        {"fields": {"FIELD_NAME": "ON_HOLD", "USER_TYPE_ID": "boolean", "XML_ID": "ON_HOLD"}},
    )
    assert body["_status"] == 200 and int(body["result"]) > 0
    listed = call(empty, "crm.deal.userfield.list", {"filter": {"FIELD_NAME": "UF_CRM_ON_HOLD"}})["result"]
    assert [f["USER_TYPE_ID"] for f in listed] == ["boolean"]
    again = call(empty, "crm.deal.userfield.add", {"fields": {"FIELD_NAME": "UF_CRM_ON_HOLD"}})
    assert again["_status"] == 400 and again["error"] == "ERROR_CORE"
    assert call(empty, "crm.company.userfield.list")["result"] == []
    assert (
        call(empty, "crm.company.userfield.add", {"fields": {"FIELD_NAME": "X", "USER_TYPE_ID": "nope"}})["_status"]
        == 400
    )


def test_money_and_fields_description(firms):
    call(firms, "crm.company.userfield.add", {"fields": {"FIELD_NAME": "DEBT", "USER_TYPE_ID": "money"}})
    call(firms, "crm.company.update", {"id": 1, "fields": {"UF_CRM_DEBT": "257000|RUB"}})
    assert call(firms, "crm.company.get", {"id": 1})["result"]["UF_CRM_DEBT"] == "257000|RUB"
    fields = call(firms, "crm.company.fields")["result"]
    assert fields["ID"]["isReadOnly"] is True and fields["EMAIL"]["isMultiple"] is True
    assert fields["UF_CRM_DEBT"]["type"] == "money"


# -- deals, pipelines, stages -------------------------------------------------------------------------


def test_pipelines_and_stages_with_prefixes_and_semantics(b24_seeded):
    categories = call(b24_seeded, "crm.category.list", {"entityTypeId": 2})["result"]["categories"]
    assert [(c["id"], c["name"]) for c in categories] == [(0, "Общая"), (1, "Опт"), (2, "Проекты")]
    assert [c["NAME"] for c in call(b24_seeded, "crm.dealcategory.list")["result"]] == ["Опт", "Проекты"]
    stages = call(b24_seeded, "crm.dealcategory.stage.list", {"id": 1})["result"]
    assert "C1:HOLD" not in [s["STATUS_ID"] for s in stages]  # no Suspended stage until someone adds it
    assert all(s["STATUS_ID"].startswith("C1:") for s in stages)
    statuses = call(b24_seeded, "crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE"}})["result"]
    semantics = {s["STATUS_ID"]: s["SEMANTICS"] for s in statuses}
    assert semantics["WON"] == "S" and semantics["LOSE"] == "F" and semantics["NEW"] is None
    [invoice_pipeline] = call(b24_seeded, "crm.category.list", {"entityTypeId": 31})["result"]["categories"]
    assert invoice_pipeline["isDefault"] == "Y" and invoice_pipeline["id"] != 1  # differs per portal
    entity = f"SMART_INVOICE_STAGE_{invoice_pipeline['id']}"
    invoices = call(b24_seeded, "crm.status.list", {"filter": {"ENTITY_ID": entity}})["result"]
    assert [s["STATUS_ID"].split(":")[1] for s in invoices] == ["N", "S", "P", "D"]
    assert all(s["STATUS_ID"].startswith(f"DT31_{invoice_pipeline['id']}:") for s in invoices)
    assert call(b24_seeded, "crm.status.list", {"filter": {"ENTITY_ID": "SMART_INVOICE_STAGE_1"}})["result"] == []


def test_status_add_prefixes_pipeline_stages_sorts_before_the_final_ones_and_needs_an_administrator(empty):
    empty.state.add_category(1, "Опт")
    fields = {"ENTITY_ID": "DEAL_STAGE_1", "STATUS_ID": "HOLD", "NAME": "Приостановлена", "SEMANTICS": ""}
    late = call(empty, "crm.status.add", {"fields": {**fields, "SORT": 65}})
    assert late["_status"] == 400 and "after the final stage" in late["error_description"]
    assert call(empty, "crm.status.add", {"fields": {**fields, "SORT": 55}})["_status"] == 200
    again = call(empty, "crm.status.add", {"fields": {**fields, "SORT": 56}})
    assert again["_status"] == 400 and again["error"] == "ERROR_CORE"
    listed = call(empty, "crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE_1"}})["result"]
    stages = [s["STATUS_ID"] for s in listed]
    assert stages.index("C1:HOLD") == stages.index("C1:FINAL_INVOICE") + 1  # saved with the C1: prefix, in order
    missing = call(empty, "crm.status.add", {"fields": {"ENTITY_ID": "DEAL_STAGE"}})
    assert missing["error_description"] == "The field STATUS_ID is required."
    manager = empty.add_webhook(7)
    denied = requests.post(
        manager + "crm.status.add", json={"fields": {**fields, "ENTITY_ID": "DEAL_STAGE"}}, timeout=10
    ).json()
    assert denied["error_description"] == "Access denied."


def test_deal_stage_rules(empty):
    empty.state.add_category(1, "Опт")
    deal_id = call(empty, "crm.deal.add", {"fields": {"TITLE": "Опт", "CATEGORY_ID": 1, "OPPORTUNITY": 15000}})[
        "result"
    ]
    deal = call(empty, "crm.deal.get", {"id": deal_id})["result"]
    assert (deal["STAGE_ID"], deal["STAGE_SEMANTIC_ID"], deal["CLOSED"], deal["OPPORTUNITY"]) == (
        "C1:NEW",
        "P",
        "N",
        "15000.00",
    )
    wrong = call(empty, "crm.deal.update", {"id": deal_id, "fields": {"STAGE_ID": "WON"}})
    assert wrong["_status"] == 400 and "pipeline 1" in wrong["error_description"]
    unknown = call(empty, "crm.deal.update", {"id": deal_id, "fields": {"STAGE_ID": "C1:HOLD"}})
    assert unknown["_status"] == 400  # not a stage of this portal (yet)
    call(
        empty,
        "crm.status.add",
        {"fields": {"ENTITY_ID": "DEAL_STAGE_1", "STATUS_ID": "HOLD", "NAME": "Приостановлена", "SORT": 55}},
    )
    call(empty, "crm.deal.update", {"id": deal_id, "fields": {"CATEGORY_ID": 0, "STAGE_ID": "C1:HOLD"}})
    deal = call(empty, "crm.deal.get", {"id": deal_id})["result"]
    assert (deal["CATEGORY_ID"], deal["STAGE_ID"], deal["STAGE_SEMANTIC_ID"]) == ("1", "C1:HOLD", "P")
    call(empty, "crm.deal.update", {"id": deal_id, "fields": {"STAGE_ID": "C1:WON"}})
    deal = call(empty, "crm.deal.get", {"id": deal_id})["result"]
    assert (deal["STAGE_SEMANTIC_ID"], deal["CLOSED"]) == ("S", "Y")
    assert call(empty, "crm.deal.add", {"fields": {"CATEGORY_ID": 0, "STAGE_ID": "C1:NEW"}})["_status"] == 400


def test_product_rows_set_and_get_recompute_the_amount(empty):
    product_id = call(empty, "crm.product.add", {"fields": {"NAME": "Кабель ВВГ", "PRICE": 120.5, "XML_ID": "ref-1"}})[
        "result"
    ]
    deal_id = call(empty, "crm.deal.add", {"fields": {"TITLE": "Кабель"}})["result"]
    assert (
        call(
            empty,
            "crm.deal.productrows.set",
            {
                "id": deal_id,
                "rows": [
                    {"PRODUCT_ID": product_id, "PRICE": 120.5, "QUANTITY": 10},
                    {"PRODUCT_NAME": "Доставка", "PRICE": 500},
                ],
            },
        )["result"]
        is True
    )
    rows = call(empty, "crm.deal.productrows.get", {"id": deal_id})["result"]
    assert [(r["PRODUCT_ID"], r["PRODUCT_NAME"], r["QUANTITY"]) for r in rows] == [
        (product_id, "Кабель ВВГ", 10.0),
        (0, "Доставка", 1.0),
    ]
    assert call(empty, "crm.deal.get", {"id": deal_id})["result"]["OPPORTUNITY"] == "1705.00"
    assert ids(call(empty, "crm.product.list", {"filter": {"XML_ID": "ref-1"}})) == [product_id]


# -- requisites ---------------------------------------------------------------------------------------


def test_requisites_are_separate_from_companies_with_presets(firms):
    presets = {p["NAME"]: p["ID"] for p in call(firms, "crm.requisite.preset.list")["result"]}
    assert {"Организация", "ИП"} <= set(presets)
    ip_fields = [
        f["FIELD_NAME"]
        for f in call(firms, "crm.requisite.preset.field.list", {"preset": {"ID": presets["ИП"]}})["result"]
    ]
    assert ip_fields[:3] == ["RQ_LAST_NAME", "RQ_FIRST_NAME", "RQ_SECOND_NAME"] and "RQ_OGRNIP" in ip_fields
    assert "RQ_NAME" not in ip_fields  # stored if written, not shown on the card
    assert call(firms, "crm.requisite.preset.field.list", {"preset": {"ID": 99}})["_status"] == 400
    incomplete = call(firms, "crm.requisite.add", {"fields": {"ENTITY_TYPE_ID": 4, "ENTITY_ID": 1}})
    assert incomplete["_status"] == 400 and "PRESET_ID" in incomplete["error_description"]
    rq = call(
        firms,
        "crm.requisite.add",
        {
            "fields": {
                "ENTITY_TYPE_ID": 4,
                "ENTITY_ID": 1,
                "NAME": "Организация",
                "PRESET_ID": presets["Организация"],
                "RQ_INN": "7707083893",
                "RQ_KPP": "773601001",
            }
        },
    )["result"]
    found = call(firms, "crm.requisite.list", {"filter": {"RQ_INN": "7707083893"}, "select": ["ID", "ENTITY_ID"]})
    assert found["result"] == [{"ID": str(rq), "ENTITY_ID": "1"}]
    assert "RQ_INN" not in call(firms, "crm.company.get", {"id": 1})["result"]
    call(firms, "crm.requisite.update", {"id": rq, "fields": {"RQ_KPP": "773601002"}})
    assert call(firms, "crm.requisite.get", {"id": rq})["result"]["RQ_KPP"] == "773601002"


# -- smart invoices -----------------------------------------------------------------------------------


def test_smart_invoices_use_camel_case_typed_fields_and_item_wrapping(firms):
    stage = f"DT31_{firms.state.default_invoice_category}:"
    added = call(
        firms,
        "crm.item.add",
        {
            "entityTypeId": 31,
            "fields": {
                "title": "Счёт 17",
                "companyId": 1,
                "opportunity": "15000.50",
                "xmlId": "inv-17",
                "stageId": stage + "S",
            },
        },
    )
    item = added["result"]["item"]
    assert isinstance(item["id"], int) and item["opportunity"] == 15000.5 and item["companyId"] == 1
    assert item["categoryId"] == firms.state.default_invoice_category
    call(firms, "crm.item.update", {"entityTypeId": 31, "id": item["id"], "fields": {"stageId": stage + "P"}})
    listed = call(firms, "crm.item.list", {"entityTypeId": 31, "filter": {"xmlId": "inv-17"}, "select": ["*"]})
    assert listed["total"] == 1
    got = listed["result"]["items"][0]
    assert got["stageId"] == stage + "P" and got["previousStageId"] == stage + "S" and got["stageSemanticId"] == "S"
    wrong = call(firms, "crm.item.update", {"entityTypeId": 31, "id": item["id"], "fields": {"stageId": "DT31_1:P"}})
    assert wrong["_status"] == 400  # a stage of another (here: no) pipeline
    assert call(firms, "crm.item.get", {"entityTypeId": 31, "id": 999})["_status"] == 400
    assert call(firms, "crm.item.list", {"entityTypeId": 31, "filter": {"NOPE": 1}})["_status"] == 400
    assert call(firms, "crm.item.list", {})["_status"] == 400


def test_smart_invoice_user_fields_exist_only_once_created_with_userfieldconfig(firms):
    item = call(firms, "crm.item.add", {"entityTypeId": 31, "fields": {"title": "Счёт", "companyId": 1}})
    item_id = item["result"]["item"]["id"]
    # an unknown field is ignored without an error (`crm-item-update.md`): the value is simply lost
    lost = call(
        firms,
        "crm.item.update",
        {"entityTypeId": 31, "id": item_id, "fields": {"ufCrmSmartInvoiceOnecPaid": "100.00", "noSuchField": 1}},
    )
    assert lost["_status"] == 200 and "ufCrmSmartInvoiceOnecPaid" not in lost["result"]["item"]
    wrong_prefix = call(
        firms,
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {"entityId": "CRM_SMART_INVOICE", "fieldName": "UF_CRM_ONEC_PAID", "userTypeId": "double"},
        },
    )
    assert wrong_prefix["_status"] == 400 and wrong_prefix["error_description"] == "You cannot create custom fields"
    made = call(
        firms,
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {
                "entityId": "CRM_SMART_INVOICE",
                "fieldName": "UF_CRM_SMART_INVOICE_ONEC_PAID",
                "userTypeId": "double",
            },
        },
    )
    assert made["result"]["field"]["fieldName"] == "UF_CRM_SMART_INVOICE_ONEC_PAID"
    assert (
        call(
            firms,
            "userfieldconfig.add",
            {
                "moduleId": "crm",
                "field": {
                    "entityId": "CRM_SMART_INVOICE",
                    "fieldName": "UF_CRM_SMART_INVOICE_ONEC_PAID",
                    "userTypeId": "double",
                },
            },
        )["_status"]
        == 400
    )
    found = call(
        firms,
        "userfieldconfig.list",
        {"moduleId": "crm", "filter": {"entityId": "CRM_SMART_INVOICE", "fieldName": "UF_CRM_SMART_INVOICE_ONEC_PAID"}},
    )
    assert [f["id"] for f in found["result"]["fields"]] == [made["result"]["field"]["id"]] and found["total"] == 1
    call(
        firms,
        "crm.item.update",
        {
            "entityTypeId": 31,
            "id": item_id,
            "useOriginalUfNames": "Y",
            "fields": {"UF_CRM_SMART_INVOICE_ONEC_PAID": "100.00"},
        },
    )
    camel = call(firms, "crm.item.get", {"entityTypeId": 31, "id": item_id})["result"]["item"]
    original = call(firms, "crm.item.get", {"entityTypeId": 31, "id": item_id, "useOriginalUfNames": "Y"})
    assert camel["ufCrmSmartInvoiceOnecPaid"] == "100.00"
    assert original["result"]["item"]["UF_CRM_SMART_INVOICE_ONEC_PAID"] == "100.00"


# -- timeline, notifications, users -------------------------------------------------------------------


def test_timeline_comment_notification_and_users(b24_seeded, world):
    comment = call(
        b24_seeded,
        "crm.timeline.comment.add",
        {"fields": {"ENTITY_ID": 1, "ENTITY_TYPE": "company", "COMMENT": "Долг 257 000 ₽"}},
    )
    assert comment["_status"] == 200 and b24_seeded.state.timeline[-1]["COMMENT"] == "Долг 257 000 ₽"
    assert (
        call(
            b24_seeded,
            "crm.timeline.comment.add",
            {"fields": {"ENTITY_ID": 999999, "ENTITY_TYPE": "deal", "COMMENT": "x"}},
        )["_status"]
        == 400
    )
    user = world.users[0]
    assert (
        call(b24_seeded, "im.notify.system.add", {"USER_ID": user.id, "MESSAGE": "Сделка приостановлена"})["_status"]
        == 200
    )
    assert b24_seeded.state.notifications[-1]["USER_ID"] == user.id
    users = call(b24_seeded, "user.get", {"ID": user.id})["result"]
    assert [(u["ID"], u["EMAIL"]) for u in users] == [(str(user.id), user.email)]
    assert call(b24_seeded, "user.get", {"FILTER": {"ACTIVE": True}})["total"] == sum(u.active for u in world.users)


# -- offline events -----------------------------------------------------------------------------------


def test_offline_events_reserve_clear_and_coalesce(firms):
    firms.state.events.clear()
    firms.state._unreserved.clear()
    call(firms, "crm.company.update", {"id": 1, "fields": {"COMMENTS": "a"}})
    call(firms, "crm.company.update", {"id": 1, "fields": {"COMMENTS": "b"}})  # same object: one queue record
    deal_id = call(firms, "crm.deal.add", {"fields": {"TITLE": "Новая"}})["result"]
    got = call(firms, "event.offline.get", {"clear": 0})["result"]
    assert [(e["EVENT_NAME"], e["EVENT_DATA"]["FIELDS"]["ID"]) for e in got["events"]] == [
        ("ONCRMCOMPANYUPDATE", 1),
        ("ONCRMDEALADD", deal_id),
    ]
    assert call(firms, "event.offline.get", {"clear": 0})["result"]["events"] == []  # reserved by the first reader
    assert call(firms, "event.offline.clear", {"process_id": got["process_id"]})["result"] is True
    assert firms.state.events == {}


def test_unconfirmed_offline_events_come_back(portal_factory):
    portal = portal_factory(rate=1000.0, burst=1000, seed=False, offline_reserve_seconds=0.0)
    company = call(portal, "crm.company.add", {"fields": {"TITLE": "A"}})["result"]
    call(
        portal,
        "crm.requisite.add",
        {"fields": {"ENTITY_TYPE_ID": 4, "ENTITY_ID": company, "PRESET_ID": 1, "NAME": "Организация"}},
    )
    first = call(portal, "event.offline.get", {"clear": 0})["result"]
    again = call(portal, "event.offline.get", {"clear": 0})["result"]
    assert [e["EVENT_NAME"] for e in first["events"]] == ["ONCRMCOMPANYADD", "ONCRMREQUISITEADD"]
    assert [e["ID"] for e in again["events"]] == [e["ID"] for e in first["events"]]
    call(portal, "event.offline.clear", {"process_id": first["process_id"]})  # stale process: nothing removed
    assert len(portal.state.events) == 2
    assert call(portal, "event.offline.get", {})["result"]["events"]  # default clear=1 deletes on read
    assert portal.state.events == {}


def test_auth_connector_keeps_a_writer_from_hearing_its_own_changes(empty):
    assert (
        call(empty, "event.bind", {"event": "ONCRMCOMPANYADD", "event_type": "offline", "auth_connector": "b24_1c"})[
            "result"
        ]
        is True
    )
    call(empty, "crm.company.add", {"fields": {"TITLE": "Из 1С"}, "auth_connector": "b24_1c"})
    call(empty, "crm.company.add", {"fields": {"TITLE": "Руками"}})
    ours = call(empty, "event.offline.get", {"auth_connector": "b24_1c"})["result"]["events"]
    assert [(e["EVENT_NAME"], e["EVENT_DATA"]["FIELDS"]["ID"]) for e in ours] == [("ONCRMCOMPANYADD", 2)]
    others = call(empty, "event.offline.get", {})["result"]["events"]  # the queue without connector hears both
    assert [e["EVENT_DATA"]["FIELDS"]["ID"] for e in others] == [1, 2]
    assert call(empty, "event.bind", {"event": "ONCRMDEALADD"})["_status"] == 400  # online handlers: not here


def test_a_process_re_selects_its_unconfirmed_events(empty):
    call(empty, "crm.contact.add", {"fields": {"NAME": "Ольга"}})
    first = call(empty, "event.offline.get", {"clear": 0})["result"]
    assert [e["EVENT_NAME"] for e in first["events"]] == ["ONCRMCONTACTADD"]
    again = call(empty, "event.offline.get", {"clear": 0, "process_id": first["process_id"]})["result"]
    assert again["events"] == first["events"] and again["process_id"] == first["process_id"]
    listed = call(empty, "event.offline.list")["result"]
    assert [e["PROCESS_ID"] for e in listed] == [first["process_id"]]


@pytest.fixture
def b24_seeded(portal_factory):
    return portal_factory(rate=1000.0, burst=1000)


def test_delete_removes_the_record_and_queues_an_event(firms):
    firms.state.events.clear()
    firms.state._unreserved.clear()
    assert call(firms, "crm.company.delete", {"id": 2})["result"] is True
    assert call(firms, "crm.company.get", {"id": 2})["error_description"] == "Not found"
    assert ids(call(firms, "crm.company.list", {"filter": {"UF_CRM_CREDIT_FLAG": ""}})) == []
    events = call(firms, "event.offline.get", {})["result"]["events"]
    assert [(e["EVENT_NAME"], e["EVENT_DATA"]["FIELDS"]["ID"]) for e in events] == [("ONCRMCOMPANYDELETE", 2)]


def test_duplicates_by_phone_and_email(firms):
    call(firms, "crm.company.update", {"id": 2, "fields": {"PHONE": [{"VALUE": "8 (495) 123-45-67"}]}})
    by_phone = call(
        firms, "crm.duplicate.findbycomm", {"type": "PHONE", "values": ["+74951234567"], "entity_type": "COMPANY"}
    )["result"]
    assert by_phone == {"COMPANY": [2]}
    by_email = call(firms, "crm.duplicate.findbycomm", {"type": "EMAIL", "values": ["INFO@romashka-plus.ru "]})
    assert by_email["result"] == {"COMPANY": [3]}
    assert call(firms, "crm.duplicate.findbycomm", {"type": "EMAIL", "values": ["nobody@x.ru"]})["result"] == []
    assert (
        call(firms, "crm.duplicate.findbycomm", {"type": "EMAIL", "values": [f"a{i}@x.ru" for i in range(21)]})[
            "_status"
        ]
        == 400
    )
