"""Pure rules of the company sync: presets, contacts, CRM writes by ownership, 1C candidates and validation."""

import json

import pandas as pd
import pytest

from b24_1c_assets.domain.company_sync import (
    CREATED_FROM_1C,
    IP,
    CrmCompany,
    Presets,
    held_back_adds,
    link_created_companies,
    onec_contacts,
    pick_presets,
    with_ip_fields,
)
from b24_1c_assets.domain.company_sync_to_crm import crm_company_writes, person_name
from b24_1c_assets.domain.company_sync_to_onec import (
    counterparty_body,
    counterparty_candidates,
    counterparty_marker,
    validate_counterparty,
)
from b24_1c_assets.domain.push_plan import Operation

PRESETS = Presets(legal=1, ip=2)
PORTAL_PRESETS = [
    {"ID": "1", "NAME": "Организация", "XML_ID": "#CRM_REQUISITE_PRESET_DEF_RU_COMPANY#", "ACTIVE": "Y"},
    {"ID": "2", "NAME": "ИП", "XML_ID": "#CRM_REQUISITE_PRESET_DEF_RU_INDIVIDUAL#", "ACTIVE": "Y"},
    {"ID": "3", "NAME": "Физ. лицо", "XML_ID": "#CRM_REQUISITE_PRESET_DEF_RU_PERSON#", "ACTIVE": "Y"},
]
LEGAL = {
    "key": "ref-1",
    "name": "ООО Ромашка",
    "full_name": "Общество с ограниченной ответственностью «Ромашка»",
    "inn": "7707083893",
    "kpp": "773601001",
    "ogrn": "1027700132195",
    "kind": "legal",
    "emails": ["buh@romashka.ru"],
    "phones": ["+74951234567"],
}


def test_presets_by_xml_id_else_by_name():
    assert pick_presets(PORTAL_PRESETS) == Presets(1, 2)
    renamed = [{"ID": "7", "NAME": "Организация", "ACTIVE": "Y"}, {"ID": "9", "NAME": "ИП", "ACTIVE": "Y"}]
    assert pick_presets(renamed) == Presets(7, 9)
    with pytest.raises(ValueError, match="ИП"):
        pick_presets(PORTAL_PRESETS[:1])


def test_onec_contacts_reads_every_email_and_phone_once():
    section = json.dumps(
        [
            {"Тип": "АдресЭлектроннойПочты", "АдресЭП": "Buh@Romashka.ru"},
            {"Тип": "Телефон", "НомерТелефона": "8 (495) 123-45-67"},
            {"Тип": "Телефон", "Представление": "+7 495 765-43-21"},
            {"Тип": "Адрес", "Представление": "Москва"},
        ]
    )
    emails, phones = onec_contacts(section, "buh@romashka.ru ", "+74951234567")
    assert emails == ["Buh@Romashka.ru"]
    assert phones == ["8 (495) 123-45-67", "+7 495 765-43-21"]


def test_add_carries_link_contacts_and_the_right_preset():
    write = crm_company_writes(LEGAL, None, PRESETS, originator_id="1c-unf", onec_ref_field="UF_CRM_ONEC_REF")
    assert write.operation == Operation.ADD
    assert write.company_fields["ORIGINATOR_ID"] == "1c-unf" and write.company_fields["ORIGIN_ID"] == "ref-1"
    assert write.company_fields["UF_CRM_ONEC_REF"] == "ref-1"
    assert write.company_fields["EMAIL"] == [{"VALUE": "buh@romashka.ru", "VALUE_TYPE": "WORK"}]
    assert write.requisite_fields["PRESET_ID"] == 1 and write.requisite_fields["RQ_OGRN"] == "1027700132195"
    ip = {**LEGAL, "inn": "500100732259", "kpp": None, "ogrn": "304500116000157", "kind": "ip"}
    rq = crm_company_writes(ip, None, PRESETS, originator_id="1c-unf").requisite_fields
    assert rq["PRESET_ID"] == 2 and rq["RQ_OGRNIP"] == "304500116000157"
    assert "RQ_KPP" not in rq and "RQ_OGRN" not in rq


def test_update_writes_only_what_1c_owns_and_appends_only_missing_contacts():
    current = CrmCompany(
        5,
        "Ромашка (наш VIP)",
        "1c-unf",
        "ref-1",
        emails=["BUH@romashka.ru", "sales@x.ru"],
        phones=["8 495 123 45 67"],
        requisite_id=9,
        preset_id=1,
        requisite={
            "RQ_INN": "7707083893",
            "RQ_KPP": "773601002",
            "RQ_OGRN": "1027700132195",
            "RQ_COMPANY_NAME": "ООО Ромашка",
            "RQ_COMPANY_FULL_NAME": "Общество с ограниченной ответственностью «Ромашка»",
        },
    )
    want = {**LEGAL, "emails": ["buh@romashka.ru", "new@romashka.ru"], "phones": ["+74951234567"]}
    write = crm_company_writes(want, current, PRESETS, originator_id="1c-unf")
    assert write.operation == Operation.UPDATE
    assert write.company_fields == {"EMAIL": [{"VALUE": "new@romashka.ru", "VALUE_TYPE": "WORK"}]}  # title kept
    assert write.requisite_fields == {"RQ_KPP": "773601001"}  # 1C owns KPP
    in_sync = CrmCompany(
        5,
        "x",
        "1c-unf",
        "ref-1",
        emails=["buh@romashka.ru"],
        phones=["+7 (495) 123-45-67"],
        requisite_id=9,
        preset_id=1,
        requisite={**current.requisite, "RQ_KPP": "773601001"},
    )
    assert crm_company_writes(LEGAL, in_sync, PRESETS, originator_id="1c-unf").operation == Operation.NOOP


def test_update_links_an_unlinked_company_and_adds_a_missing_requisite():
    bare = CrmCompany(6, None)
    write = crm_company_writes(LEGAL, bare, PRESETS, originator_id="1c-unf")
    assert write.company_fields["ORIGIN_ID"] == "ref-1" and write.company_fields["TITLE"] == "ООО Ромашка"
    assert write.requisite_id is None and write.requisite_fields["RQ_INN"] == "7707083893"
    earlier = CrmCompany(6, "t", "1C_UNF", "ref-1")  # an earlier integration's link is kept
    assert (
        "ORIGIN_ID"
        not in crm_company_writes(
            LEGAL, earlier, PRESETS, originator_id="1c-unf", link_originators=("1C_UNF",)
        ).company_fields
    )


def test_a_foreign_connectors_link_to_the_same_record_is_kept_only_our_field_is_filled():
    ref = "5e1f0a00-0000-4000-8000-00000000bb01"
    foreign = CrmCompany(7, "Ромашка (старое)", "1C", ref.upper())
    write = crm_company_writes(
        {**LEGAL, "key": ref},
        foreign,
        PRESETS,
        originator_id="1c-unf",
        link_originators=("1C_UNF",),
        onec_ref_field="UF_CRM_ONEC_REF",
    )
    assert write.company_fields["UF_CRM_ONEC_REF"] == ref
    assert "ORIGINATOR_ID" not in write.company_fields and "ORIGIN_ID" not in write.company_fields
    # A foreign link to another record is replaced by ours (the matcher linked this company elsewhere).
    other = CrmCompany(7, "t", "1C", "5e1f0a00-0000-4000-8000-00000000bb02")
    fields = crm_company_writes({**LEGAL, "key": ref}, other, PRESETS, originator_id="1c-unf").company_fields
    assert (fields["ORIGINATOR_ID"], fields["ORIGIN_ID"]) == ("1c-unf", ref)


def test_a_company_linked_by_another_connector_never_becomes_a_new_counterparty():
    clients = pd.DataFrame({"match_rule": ["only_crm", "only_crm"], "company_id": [1, 2], "onec_ref": [None, None]})
    companies = {
        i: CrmCompany(
            i, f"Компания {i}", requisite_id=i, preset_id=1, requisite={"RQ_INN": "7707083893", "RQ_KPP": "773601001"}
        )
        for i in (1, 2)
    }
    companies[1].originator_id, companies[1].origin_id = "1C", "5e1f0a00-0000-4000-8000-00000000bb03"
    companies[2].originator_id, companies[2].origin_id = "amocrm", "4711"  # not a 1C id
    cands, skipped = counterparty_candidates(clients, companies, PRESETS, link_originators=("1c-unf",))
    assert cands["company_id"].tolist() == [2]
    assert skipped.to_dict("records") == [
        {"key": "1", "company_id": 1, "reason": "linked to 1C by another connector (ORIGINATOR_ID 1C)"}
    ]


def test_candidates_leave_out_linked_duplicate_and_reviewed_companies():
    clients = pd.DataFrame(
        {
            "match_rule": ["only_crm"] * 4 + ["inn_kpp"],
            "company_id": [1, 2, 3, 4, 5],
            "onec_ref": [None, None, None, None, "r"],
        }
    )
    companies = {
        i: CrmCompany(
            i, f"Компания {i}", requisite_id=i, preset_id=1, requisite={"RQ_INN": "7707083893", "RQ_KPP": "773601001"}
        )
        for i in range(1, 6)
    }
    companies[1].originator_id, companies[1].origin_id = "1c-unf", "ref-x"
    cands, skipped = counterparty_candidates(
        clients, companies, PRESETS, review_company_ids=[3], duplicate_company_ids=[2], link_originators=("1c-unf",)
    )
    assert cands["company_id"].tolist() == [4] and cands.iloc[0]["preset_kind"] == "legal"
    assert dict(zip(skipped["company_id"], skipped["reason"])) == {
        1: "already linked to 1C",
        2: "duplicate in the CRM",
        3: "candidate match in review",
    }


@pytest.mark.parametrize(
    "row, problem",
    [
        ({"inn": "7707083894", "kpp": "773601001", "title": "ООО А"}, "bad_checksum"),
        ({"inn": "7707083893", "kpp": None, "title": "ООО А"}, "KPP None: empty"),
        ({"inn": "500100732259", "kpp": "773601001", "title": "ИП Петров"}, "KPP '773601001' given for an ИП"),
        ({"inn": "500100732259", "title": "ИП Петров", "preset_kind": "legal"}, "preset says legal entity"),
        ({"inn": "7707083893", "kpp": "773601001", "ogrn": "304500116000157", "title": "ООО А"}, "expected 13"),
        ({"inn": "7707083893", "kpp": "773601001", "title": " - "}, "no letters"),
    ],
)
def test_validation_names_the_problem(row, problem):
    verdict = validate_counterparty(row)
    assert not verdict.ok and any(problem in p for p in verdict.problems), verdict.problems


def test_an_ip_with_12_digit_inn_is_never_a_legal_entity_and_body_obeys_the_allow_list():
    verdict = validate_counterparty(
        {"inn": "500100732259", "ogrn": "304500116000157", "title": "ИП Петров П.П.", "preset_kind": "ip"}
    )
    assert verdict.ok and verdict.kind == "ip"
    body, dropped = counterparty_body(verdict, ["Description", "ИНН", "ВидКонтрагента", "ЮридическоеФизическоеЛицо"])
    assert body == {
        "Description": "ИП Петров П.П.",
        "ИНН": "500100732259",
        "ВидКонтрагента": "ИндивидуальныйПредприниматель",
        "ЮридическоеФизическоеЛицо": "ФизическоеЛицо",
    }
    assert "Покупатель" in dropped and "КПП" in dropped
    assert counterparty_marker("42") == "b24-1c:company:42"


def test_companies_made_for_1c_only_clients_are_linked_for_later_flows():
    clients = pd.DataFrame(
        {
            "onec_ref": ["r1", "r2", None, "r4"],
            "company_id": [None, 7, 9, None],
            "match_rule": ["only_1c", "inn_kpp", "only_crm", "only_1c"],
        }
    )
    pushed = pd.DataFrame({"key": ["r1", "r2", "r4"], "target_id": ["101", "999", None]})
    out = link_created_companies(clients, pushed)
    assert out["company_id"].tolist() == [101, 7, 9, pd.NA]  # a matched company is never replaced
    assert out["match_rule"].tolist() == [CREATED_FROM_1C, "inn_kpp", "only_crm", "only_1c"]
    assert clients["company_id"].isna().sum() == 2  # input untouched
    assert link_created_companies(clients, pushed.iloc[0:0]).equals(clients)


def test_new_companies_wait_for_review_and_for_1c_cleanup():
    clients = pd.DataFrame({"onec_ref": ["a", "b", "c", "d", "e"], "company_id": [None, None, None, 5, None]})
    dups = pd.DataFrame(
        {
            "system": ["1c", "1c", "crm"],
            "group_id": ["1c:inn_kpp:77/01", "1c:inn_kpp:77/01", "x"],
            "record_id": ["b", "d", "e"],
        }
    )
    candidates = pd.DataFrame({"onec_ref": ["a", "a"], "company_id": [33, 34], "reason": ["inn_conflict"] * 2})
    held = held_back_adds(clients, dups, candidates)
    assert held == {
        "a": "in review: candidate for CRM company 33 (inn_conflict)",
        "b": "duplicate in 1C (1c:inn_kpp:77/01): clean up in 1C first",
    }
    # c is a plain 1C-only client (created); d is matched; e's duplicate group is in the CRM, not 1C
    assert held_back_adds(clients, dups.iloc[0:0], candidates.iloc[0:0]) == {}


def test_a_sole_trader_requisite_carries_the_name_in_the_ip_presets_person_fields():
    """RU individual preset: RQ_LAST_NAME / RQ_FIRST_NAME / RQ_SECOND_NAME show on the card; RQ_NAME alone is
    stored but not shown. The fields come from crm.requisite.preset.field.list."""
    assert person_name("Индивидуальный предприниматель Иванов Иван Иванович") == {
        "RQ_LAST_NAME": "Иванов",
        "RQ_FIRST_NAME": "Иван",
        "RQ_SECOND_NAME": "Иванович",
    }
    assert person_name("ИП Петрова-Водкина Анна") == {"RQ_LAST_NAME": "Петрова-Водкина", "RQ_FIRST_NAME": "Анна"}
    assert person_name("ИП Иванов И.И.") is None and person_name("ООО «Ромашка»") is None
    presets = with_ip_fields(
        Presets(1, 2),
        [{"FIELD_NAME": f} for f in ("RQ_LAST_NAME", "RQ_FIRST_NAME", "RQ_SECOND_NAME", "RQ_INN", "RQ_OGRNIP")],
    )
    desired = {
        "key": "k1",
        "kind": IP,
        "name": "ИП Иванов И.И.",
        "inn": "500100732259",
        "ogrn": "304500116000157",
        "full_name": "Индивидуальный предприниматель Иванов Иван Иванович",
        "emails": [],
        "phones": [],
    }
    write = crm_company_writes(desired, None, presets, originator_id="1C")
    rq = write.requisite_fields
    assert (rq["PRESET_ID"], rq["RQ_LAST_NAME"], rq["RQ_FIRST_NAME"], rq["RQ_SECOND_NAME"], rq["RQ_OGRNIP"]) == (
        2,
        "Иванов",
        "Иван",
        "Иванович",
        "304500116000157",
    )
    assert "RQ_NAME" not in rq and "RQ_KPP" not in rq
    unsplit = crm_company_writes(
        {**desired, "full_name": "ИП «Мастерская»", "name": "Мастерская"}, None, presets, originator_id="1C"
    ).requisite_fields
    assert unsplit["RQ_NAME"] == "ИП «Мастерская»" and "RQ_LAST_NAME" not in unsplit
