"""User fields looked up by name past the first page of 50; smart-invoice fields through userfieldconfig; the
deal Suspended stage created with crm.status.add where a portal lacks it — against the sandbox portal."""

from __future__ import annotations

import pytest
import requests

from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.sync.bitrix24_stages import StageSetupError, ensure_suspended_stages
from b24_1c_assets.sync.bitrix24_userfields import (
    SMART_INVOICE_UF_ENTITY,
    UserField,
    ensure_item_userfields,
    ensure_userfields,
)


@pytest.fixture
def empty(portal_factory):
    return portal_factory(rate=1000.0, burst=1000, seed=False)


def client_of(portal, url=None) -> Bitrix24Client:
    return Bitrix24Client(url or portal.webhook_url, rate=1000, burst=1000, max_retries=1, backoff_initial=0.01)


def test_a_field_past_the_first_page_of_50_is_found_not_added_again(empty):
    for i in range(60):  # a portal where other integrations made many fields before ours
        empty.state.define_userfield("company", {"FIELD_NAME": f"OTHER_{i:02d}", "USER_TYPE_ID": "string"})
    empty.state.define_userfield("company", {"FIELD_NAME": "DEBT_SUM", "USER_TYPE_ID": "double"})
    first_page = requests.post(empty.webhook_url + "crm.company.userfield.list", json={}, timeout=10).json()
    assert len(first_page["result"]) == 50 and first_page["next"] == 50 and first_page["total"] == 61
    client = client_of(empty)
    created = ensure_userfields(
        client,
        "company",
        [UserField("UF_CRM_DEBT_SUM", "double", "Долг"), UserField("UF_CRM_DEBT_DAYS", "integer", "Дней")],
    )
    assert created == ["UF_CRM_DEBT_DAYS"]
    assert ensure_userfields(client, "company", [UserField("UF_CRM_DEBT_DAYS", "integer", "Дней")]) == []
    lookups = [c for e in empty.request_log for c in (e.get("commands") or []) if c == "crm.company.userfield.list"]
    assert lookups  # looked up by FIELD_NAME inside batch calls


def test_smart_invoice_fields_are_created_with_userfieldconfig(empty):
    client = client_of(empty)
    field = UserField("UF_CRM_SMART_INVOICE_ONEC_PAID", "double", "Оплачено")
    assert ensure_item_userfields(client, SMART_INVOICE_UF_ENTITY, [field]) == [field.name]
    assert ensure_item_userfields(client, SMART_INVOICE_UF_ENTITY, [field]) == []
    assert set(empty.state.invoice_userfields) == {field.name}


def test_the_suspended_stage_is_created_once_per_pipeline_before_the_final_stages(empty):
    empty.state.add_category(1, "Опт")
    client = client_of(empty)
    assert ensure_suspended_stages(client, {0, 1}) == ["HOLD", "C1:HOLD"]
    assert ensure_suspended_stages(client, {0, 1}) == []
    for category in (0, 1):
        stages = empty.state.deal_stages(category)
        codes = [s["STATUS_ID"].split(":")[-1] for s in stages]
        assert codes.index("HOLD") < codes.index("WON") and stages[codes.index("HOLD")]["SEMANTICS"] is None
    deal = requests.post(empty.webhook_url + "crm.deal.add", json={"fields": {"CATEGORY_ID": 1}}, timeout=10).json()
    moved = requests.post(
        empty.webhook_url + "crm.deal.update",
        json={"id": deal["result"], "fields": {"STAGE_ID": "C1:HOLD"}},
        timeout=10,
    )
    assert moved.status_code == 200 and empty.state.record("deal", deal["result"])["STAGE_ID"] == "C1:HOLD"


def test_a_stage_that_cannot_be_created_fails_naming_the_pipeline(empty):
    empty.state.add_category(2, "Проекты")
    manager = client_of(empty, empty.add_webhook(7))  # no CRM administrator
    with pytest.raises(StageSetupError, match="pipeline 2 «Проекты».*C2:HOLD.*administrator"):
        ensure_suspended_stages(manager, {2})
    with pytest.raises(StageSetupError, match="pipeline 9.*no such deal pipeline"):
        ensure_suspended_stages(client_of(empty), {9})
