"""The company sync's plans (pure): 1C -> CRM rows with the held-back filter, CRM -> 1C rows, what the guard
judges, and what one CRM -> 1C run does with its plan (rejected, capped, dry run)."""

import json

import pandas as pd

from b24_1c_assets.domain.company_sync import CompanyLink, CrmCompany, Presets
from b24_1c_assets.domain.company_sync_to_crm import DESIRED_FIELDS, crm_company_plan, desired_from_plan_row
from b24_1c_assets.domain.company_sync_to_onec import counterparty_plan, counterparty_run
from b24_1c_assets.domain.push_plan import Operation, Status, payload_hash

PRESETS = Presets(legal=1, ip=2)
LINK = CompanyLink("1c-unf", ("1C_UNF",), "UF_CRM_ONEC_REF")
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


def counterparty(ref, name, inn, kpp="", ogrn="", kind="ЮридическоеЛицо", email=None):
    contacts = [{"Тип": "АдресЭлектроннойПочты", "АдресЭП": email}] if email else []
    return {
        "Ref_Key": ref,
        "Description": name,
        "НаименованиеПолное": name,
        "ИНН": inn,
        "КПП": kpp,
        "РегистрационныйНомер": ogrn,
        "ВидКонтрагента": kind,
        "КонтактнаяИнформация": json.dumps(contacts),
        "DeletionMark": False,
        "IsFolder": False,
    }


COUNTERPARTIES = pd.DataFrame(
    [
        counterparty("ref-new", "ООО Ромашка", "7707083893", "773601001", "1027700132195", email="buh@romashka.ru"),
        counterparty("ref-held", "ООО Лютик", "7736207543", "773601001"),
        counterparty("ref-matched", "ООО Василёк", "7702070139", "770201001"),
    ]
)
CLIENTS = pd.DataFrame(
    {
        "onec_ref": ["ref-new", "ref-held", "ref-matched"],
        "company_id": [None, None, 7],
        "match_rule": ["only_1c", "only_1c", "inn_kpp"],
    }
)


def test_the_crm_plan_adds_updates_and_holds_back_with_the_reason():
    current = {7: CrmCompany(7, "Василёк", "1c-unf", "ref-matched")}
    plan = crm_company_plan(
        CLIENTS,
        COUNTERPARTIES,
        current,
        PRESETS,
        LINK,
        last_pushed=NO_PUSHES,
        failed_keys=set(),
        held={"ref-held": "duplicate in 1C (g1): clean up in 1C first"},
    )
    rows = plan.rows.set_index("key")
    assert rows.loc["ref-new", "operation"] == Operation.ADD and pd.isna(rows.loc["ref-new", "company_id"])
    fields = json.loads(rows.loc["ref-new", "company_fields"])
    assert fields["ORIGIN_ID"] == "ref-new" and fields["UF_CRM_ONEC_REF"] == "ref-new"
    assert json.loads(rows.loc["ref-new", "requisite_fields"])["RQ_INN"] == "7707083893"
    assert rows.loc["ref-held", "operation"] == Operation.HOLD_BACK
    assert rows.loc["ref-held", "reason"].startswith("duplicate in 1C")
    assert rows.loc["ref-matched", "operation"] == Operation.UPDATE  # no requisite yet: it is added
    assert plan.writes == 2 and plan.population == 1  # one CRM company exists with a 1C twin
    # the guard judges no held-back row, and an add as the "never pushed" update it came from
    guard = plan.guard_view.set_index("key")
    assert "ref-held" not in guard.index
    assert guard.loc["ref-new", "operation"] == Operation.UPDATE and guard.loc["ref-new", "reason"] == "never pushed"


def test_the_crm_plan_is_noop_once_pushed_and_in_sync_when_the_crm_already_holds_it():
    first = crm_company_plan(
        CLIENTS,
        COUNTERPARTIES,
        {7: CrmCompany(7, "Василёк", "1c-unf", "ref-matched")},
        PRESETS,
        LINK,
        last_pushed=NO_PUSHES,
        failed_keys=set(),
        held={},
    )
    pushed = first.rows.assign(payload=first.rows["after"], target_id=None)
    again = crm_company_plan(CLIENTS, COUNTERPARTIES, {}, PRESETS, LINK, last_pushed=pushed, failed_keys=set(), held={})
    assert set(again.rows["operation"]) == {Operation.NOOP} and again.writes == 0
    linked = CrmCompany(
        7,
        "Василёк",
        "1c-unf",
        "ref-matched",
        requisite_id=3,
        preset_id=1,
        requisite={
            "RQ_INN": "7702070139",
            "RQ_KPP": "770201001",
            "RQ_COMPANY_NAME": "ООО Василёк",
            "RQ_COMPANY_FULL_NAME": "ООО Василёк",
        },
    )
    clients = CLIENTS[CLIENTS["onec_ref"] == "ref-matched"]
    plan = crm_company_plan(
        clients, COUNTERPARTIES, {7: linked}, PRESETS, LINK, last_pushed=NO_PUSHES, failed_keys=set(), held={}
    )
    assert plan.rows["operation"].tolist() == [Operation.NOOP] and plan.rows["reason"].tolist() == ["in sync"]


def test_a_plan_row_gives_back_its_desired_company():
    plan = crm_company_plan(
        CLIENTS, COUNTERPARTIES, {}, PRESETS, LINK, last_pushed=NO_PUSHES, failed_keys=set(), held={}
    )
    row = plan.rows.set_index("key").loc["ref-new"].to_dict()
    desired = desired_from_plan_row({**row, "key": "ref-new"})
    assert desired["key"] == "ref-new" and desired["emails"] == ["buh@romashka.ru"] and desired["phones"] == []
    assert set(DESIRED_FIELDS) <= set(desired) and desired["inn"] == "7707083893"


def test_the_link_fields_carry_our_originator_and_user_field():
    assert LINK.originators == ("1c-unf", "1C_UNF")
    assert LINK.fields("r1") == {"ORIGINATOR_ID": "1c-unf", "ORIGIN_ID": "r1", "UF_CRM_ONEC_REF": "r1"}
    assert CompanyLink("1c-unf").fields("r1") == {"ORIGINATOR_ID": "1c-unf", "ORIGIN_ID": "r1"}


def crm_company(company_id, title, inn, kpp=None, **link):
    return CrmCompany(
        company_id, title, requisite_id=company_id, preset_id=1, requisite={"RQ_INN": inn, "RQ_KPP": kpp}, **link
    )


ONLY_CRM = pd.DataFrame({"onec_ref": [None] * 6, "company_id": [1, 2, 3, 4, 5, 6], "match_rule": ["only_crm"] * 6})
COMPANIES = {
    1: crm_company(1, "ООО Ромашка", "7707083893", "773601001"),
    2: crm_company(2, "ООО Лютик", "7736207543", "773601001"),
    3: crm_company(3, "ООО Плохой", "1234567890", "773601001"),
    4: crm_company(4, "ООО Связан", "7702070139", "770201001", originator_id="1c-unf", origin_id="ref-4"),
    5: crm_company(5, "ООО Дубль", "7710140679", "771001001"),
    6: crm_company(6, "ООО В очереди", "7714698320", "771401001"),
}


def onec_plan(last_pushed=NO_PUSHES):
    return counterparty_plan(
        ONLY_CRM,
        COMPANIES,
        PRESETS,
        LINK,
        review_candidates=pd.DataFrame({"onec_ref": ["r"], "company_id": [6], "reason": ["inn"]}),
        duplicate_groups=pd.DataFrame({"group_id": ["g"], "system": ["crm"], "record_id": ["5"]}),
        last_pushed=last_pushed,
        allowed_fields=ALLOWED,
    )


def test_the_1c_plan_creates_valid_companies_and_names_every_other_outcome():
    plan = onec_plan()
    rows = plan.rows.set_index("key")
    assert rows["operation"].to_dict() == {
        "1": Operation.CREATE,
        "2": Operation.CREATE,
        "3": Operation.INVALID,
        "4": Operation.SKIP,
        "5": Operation.SKIP,
        "6": Operation.SKIP,
    }
    assert rows.loc["4", "reason"] == "already linked to 1C" and rows.loc["5", "reason"] == "duplicate in the CRM"
    assert rows.loc["6", "reason"] == "candidate match in review" and "INN" in rows.loc["3", "problems"]
    body = json.loads(rows.loc["1", "body"])
    assert body["ИНН"] == "7707083893" and set(body) <= set(ALLOWED)
    assert rows.loc["1", "payload_hash"] == payload_hash(body)
    assert plan.writes == 2 and plan.population == 0
    guard = plan.guard_view.set_index("key")
    assert guard.loc["1", "operation"] == Operation.UPDATE and guard.loc["1", "reason"] == "never pushed"
    assert guard.loc["3", "operation"] == Operation.NOOP


def test_a_counterparty_made_earlier_without_its_link_is_only_linked():
    pushed = pd.DataFrame({"key": ["2"], "payload": ["{}"], "payload_hash": ["h"], "target_id": ["ref-made"]})
    rows = onec_plan(pushed).rows.set_index("key")
    assert rows.loc["2", "operation"] == Operation.LINK and json.loads(rows.loc["2", "body"]) == {"Ref_Key": "ref-made"}
    guard = onec_plan(pushed).guard_view.set_index("key")
    assert guard.loc["2", "operation"] == Operation.UPDATE and guard.loc["2", "reason"] == "link"  # a change


def test_a_run_rejects_bad_data_caps_creates_and_writes_nothing_when_dry():
    pushed = pd.DataFrame({"key": ["2"], "payload": ["{}"], "payload_hash": ["h"], "target_id": ["ref-made"]})
    extra = {7: crm_company(7, "ООО Третий", "7710140679", "771001001")}
    plan = counterparty_plan(
        pd.concat([ONLY_CRM, pd.DataFrame({"onec_ref": [None], "company_id": [7], "match_rule": ["only_crm"]})]),
        {**COMPANIES, **extra},
        PRESETS,
        LINK,
        review_candidates=pd.DataFrame(),
        duplicate_groups=pd.DataFrame(),
        last_pushed=pushed,
        allowed_fields=ALLOWED,
    ).rows
    assert plan.set_index("key")["operation"].to_dict() == {
        "1": Operation.CREATE,
        "2": Operation.LINK,
        "3": Operation.INVALID,
        "4": Operation.SKIP,
        "5": Operation.CREATE,
        "6": Operation.CREATE,
        "7": Operation.CREATE,
    }
    live = counterparty_run(plan, max_creates=2, dry_run=False)
    assert sorted(live.todo["key"]) == ["1", "2", "3", "5", "6", "7"]  # skips are not journaled
    settled = {s.key: s for s in live.settled}
    assert settled["3"].status == Status.REJECTED and settled["3"].operation == Operation.CREATE
    assert settled["3"].error.startswith("not written: ") and settled["3"].error_class == "data"
    assert {k for k, s in settled.items() if s.status == Status.DEFERRED} == {"6", "7"}  # over the cap of 2
    assert settled["6"].error == "over the per-run cap of 2"
    assert sorted(live.live["key"]) == ["1", "2", "5"]  # the link never counts against the cap
    dry = counterparty_run(plan, max_creates=2, dry_run=True)
    assert dry.live.empty
    assert {s.key: s.status for s in dry.settled} == {
        "1": Status.DRY_RUN,
        "2": Status.DRY_RUN,
        "3": Status.REJECTED,
        "5": Status.DRY_RUN,
        "6": Status.DEFERRED,
        "7": Status.DEFERRED,
    }
    assert counterparty_run(plan.iloc[0:0], max_creates=2, dry_run=False).settled == []
    off = counterparty_run(plan, max_creates=0, dry_run=False)  # the shipped setting: only links are written
    assert off.live["key"].tolist() == ["2"]
    assert {s.error for s in off.settled if s.status == Status.DEFERRED} == {
        "creating counterparties is off (onec_writes.toml max_creates_per_run = 0)"
    }
