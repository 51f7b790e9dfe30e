"""The company sync's write ordering against the sandbox portal and 1C (real HTTP): companies added once
even after a crash before the journal, requisites after their company, counterparties found by marker, the
link written back."""

import json

import pandas as pd

from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.domain.company_sync import CompanyLink, Presets
from b24_1c_assets.domain.company_sync_to_crm import crm_company_plan
from b24_1c_assets.domain.company_sync_to_onec import (
    counterparty_body,
    counterparty_marker,
    counterparty_run,
    validate_counterparty,
)
from b24_1c_assets.domain.push_plan import Operation, Status
from b24_1c_assets.onec import OneCClient
from b24_1c_assets.sync.crm_company_writes import find_linked_companies, requisite_presets, write_companies
from b24_1c_assets.sync.onec_counterparty_writes import push_counterparties, write_counterparties

LINK = CompanyLink("1c-unf", ("1C_UNF",), "UF_CRM_ONEC_REF")
REF = "5e1f0a00-0000-4000-8000-0000000c0a01"
NO_PUSHES = pd.DataFrame(columns=["key", "payload", "payload_hash", "target_id"])
ALLOWED = [
    "Description",
    "НаименованиеПолное",
    "ИНН",
    "КПП",
    "РегистрационныйНомер",
    "ВидКонтрагента",
    "ЮридическоеФизическоеЛицо",
    "Покупатель",
    "СтранаРегистрации",
]


def portal_writes(portal, start):
    out = []
    for entry in portal.request_log[start:]:
        out += [m for m in entry.get("commands") or [entry["method"]] if m.rsplit(".", 1)[-1] in ("add", "update")]
    return out


def add_plan(presets: Presets) -> pd.DataFrame:
    counterparties = pd.DataFrame(
        [
            {
                "Ref_Key": REF,
                "Description": "ООО Новый клиент",
                "НаименованиеПолное": "ООО «Новый клиент»",
                "ИНН": "7707083893",
                "КПП": "773601001",
                "РегистрационныйНомер": "1027700132195",
                "ВидКонтрагента": "ЮридическоеЛицо",
                "DeletionMark": False,
                "IsFolder": False,
                "КонтактнаяИнформация": json.dumps([{"Тип": "АдресЭлектроннойПочты", "АдресЭП": "new@client.ru"}]),
            }
        ]
    )
    clients = pd.DataFrame({"onec_ref": [REF], "company_id": [None], "match_rule": ["only_1c"]})
    plan = crm_company_plan(
        clients, counterparties, {}, presets, LINK, last_pushed=NO_PUSHES, failed_keys=set(), held={}
    ).rows
    return plan[plan["operation"] == Operation.ADD]


def test_a_company_is_added_with_its_requisite_and_never_twice(portal):
    client = Bitrix24Client(portal.webhook_url, rate=50, burst=50)
    todo = add_plan(requisite_presets(client))
    assert len(todo) == 1
    outcomes, ids = write_companies(client, todo, LINK)
    assert [(o.key, o.operation, o.status) for o in outcomes] == [(REF, Operation.ADD, Status.OK)]
    company = portal.state.record("company", int(ids[REF]))
    assert company["ORIGIN_ID"] == REF and company["ORIGINATOR_ID"] == "1c-unf" and company["UF_CRM_ONEC_REF"] == REF
    requisites = [
        r
        for r in portal.state.tables["requisite"].rows.values()
        if str(r["ENTITY_ID"]) == ids[REF] and str(r["ENTITY_TYPE_ID"]) == "4"
    ]
    assert len(requisites) == 1 and requisites[0]["RQ_INN"] == "7707083893"
    assert find_linked_companies(client, [REF], LINK.originators) == {REF: int(ids[REF])}

    # the journal never heard of it (a crash): the same plan finds the company by ORIGIN_ID, adds nothing
    start = len(portal.request_log)
    again, again_ids = write_companies(client, todo, LINK)
    assert again_ids == ids
    assert [m for m in portal_writes(portal, start) if m.endswith(".add")] == []
    assert [(o.key, o.status) for o in again] == [(REF, Status.OK)]
    assert len([c for c in portal.state.tables["company"].rows.values() if c.get("ORIGIN_ID") == REF]) == 1


def test_nothing_to_write_calls_nothing(portal):
    client = Bitrix24Client(portal.webhook_url, rate=50, burst=50)
    start = len(portal.request_log)
    assert write_companies(client, pd.DataFrame(columns=["key", "operation"]), LINK) == ([], {})
    assert len(portal.request_log) == start


def test_a_counterparty_is_created_once_by_marker_and_linked_back(portal, onec):
    b24 = Bitrix24Client(portal.webhook_url, rate=50, burst=50)
    company_ids = [int(r["ID"]) for r in b24.export_all("crm.company.list", select=["ID"])][:2]
    verdict = validate_counterparty(
        {
            "inn": "7707083893",
            "kpp": "773601001",
            "ogrn": "1027700132195",
            "title": "ООО Ромашка",
            "preset_kind": "legal",
        }
    )
    body, _ = counterparty_body(verdict, ALLOWED)
    earlier = "5e1f0a00-0000-4000-8000-0000000c0a02"  # made by an earlier run whose link was lost
    live = pd.DataFrame(
        [
            {"key": str(company_ids[0]), "operation": Operation.CREATE, "body": json.dumps(body, ensure_ascii=False)},
            {"key": str(company_ids[1]), "operation": Operation.LINK, "body": json.dumps({"Ref_Key": earlier})},
            {"key": "99999999", "operation": Operation.LINK, "body": json.dumps({"Ref_Key": earlier})},
        ]
    )
    onec_client = OneCClient(onec.odata_url, onec.username, onec.password)
    try:
        outcomes, refs = write_counterparties(onec_client, b24, live, LINK)
        by_key = {o.key: o for o in outcomes}
        made = refs[str(company_ids[0])]
        assert by_key[str(company_ids[0])].operation == Operation.CREATE
        assert by_key[str(company_ids[0])].status == Status.OK
        assert by_key[str(company_ids[1])].operation == Operation.LINK
        assert by_key[str(company_ids[1])].status == Status.OK
        # the link failed, but the counterparty exists in 1C: its ref stays the target, the row is failed
        assert by_key["99999999"].status == Status.FAILED and "CRM link failed" in by_key["99999999"].error
        assert refs["99999999"] == earlier
        catalog = onec.state.objects["Catalog_Контрагенты"]
        assert counterparty_marker(company_ids[0]) in catalog[made]["Комментарий"]
        for company_id, ref in ((company_ids[0], made), (company_ids[1], earlier)):
            company = portal.state.record("company", company_id)
            assert company["ORIGIN_ID"] == ref and company["ORIGINATOR_ID"] == "1c-unf"

        # a rerun (crash before the journal) finds the counterparty by its marker: no second POST
        start, size = len(onec.request_log), len(catalog)
        _, again = write_counterparties(onec_client, b24, live.iloc[:1], LINK)
        assert again == {str(company_ids[0]): made} and len(catalog) == size
        assert [e for e in onec.request_log[start:] if e["kind"] == "write"] == []
    finally:
        onec_client.close()


def test_a_dry_run_settles_every_row_without_a_client():
    def no_client():
        raise AssertionError("a dry run must not connect")

    plan = pd.DataFrame(
        {
            "key": ["1", "2", "3"],
            "operation": [Operation.CREATE, Operation.CREATE, Operation.INVALID],
            "problems": [None, None, "INN '1': checksum"],
        }
    )
    push = push_counterparties(counterparty_run(plan, max_creates=1, dry_run=True), LINK, no_client, no_client)
    assert [(o.key, o.status, o.attempts) for o in push.outcomes] == [
        ("1", Status.DRY_RUN, 0),
        ("2", Status.DEFERRED, 0),
        ("3", Status.REJECTED, 0),
    ]
    assert (push.target_ids, push.onec_calls, push.bitrix24_calls) == ({}, 0, 0)
