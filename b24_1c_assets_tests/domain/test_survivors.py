"""Survivor rules of duplicate groups, and how the matcher and the duplicate report use them."""

from __future__ import annotations

from b24_1c_assets.domain.duplicates import find_duplicates
from b24_1c_assets.domain.matching import match_clients
from b24_1c_assets.domain.normalize import normalize_crm_companies, normalize_onec_counterparties
from b24_1c_assets.domain.survivors import crm_survivors, onec_survivors
from b24_1c_assets_tests.domain.conftest import crm_activity_frame, crm_frame, onec_activity_frame, onec_frame

INN, KPP = "7729141771", "770101001"
OTHER_INN = "7776317060"


def _onec(rows):
    return normalize_onec_counterparties(onec_frame(rows))[0]


def _crm(rows):
    return normalize_crm_companies(crm_frame(rows))[0]


def _survivor(groups, key=f"{INN}/{KPP}"):
    rows = groups[groups["key"] == key]
    assert rows["survivor_id"].nunique(dropna=False) == 1
    return rows["survivor_id"].iloc[0], rows["why"].iloc[0]


def test_onec_only_record_with_documents_survives_deleted_never_does():
    onec = _onec(
        [
            {"ref_key": "a", "description": "Ромашка", "inn": INN, "kpp": KPP},
            {"ref_key": "b", "description": "Ромашка", "inn": INN, "kpp": KPP},
            {"ref_key": "dead", "description": "Ромашка", "inn": INN, "kpp": KPP, "deletion_mark": True},
        ]
    )
    activity = onec_activity_frame(
        [
            {"ref_key": "b", "documents": 7, "last_activity": "2026-11-01"},
            {"ref_key": "dead", "documents": 40, "last_activity": "2026-11-19"},
        ]
    )
    groups = onec_survivors(onec, activity)
    assert sorted(groups["record_id"]) == ["a", "b"]  # the deletion-marked record is no member
    survivor, why = _survivor(groups)
    assert survivor == "b" and "documents" in why and "2026-11-01" in why


def test_onec_two_live_records_with_documents_are_undecided():
    onec = _onec(
        [
            {"ref_key": "a", "description": "Ромашка", "inn": INN, "kpp": KPP},
            {"ref_key": "b", "description": "Ромашка (дубль)", "inn": INN, "kpp": KPP},
        ]
    )
    activity = onec_activity_frame([{"ref_key": "a", "documents": 1}, {"ref_key": "b", "documents": 2}])
    survivor, why = _survivor(onec_survivors(onec, activity))
    assert survivor is None and "2 live records have documents" in why


def test_onec_without_documents_most_recent_activity_then_dubl_name():
    onec = _onec(
        [
            {"ref_key": "a", "description": "Ромашка", "inn": INN, "kpp": KPP},
            {"ref_key": "b", "description": "Ромашка дубль", "inn": INN, "kpp": KPP},
        ]
    )
    newer_b = onec_activity_frame(
        [
            {"ref_key": "a", "documents": 0, "last_activity": "2024-01-01"},
            {"ref_key": "b", "documents": 0, "last_activity": "2025-01-01"},
        ]
    )
    assert _survivor(onec_survivors(onec, newer_b))[0] == "b"
    assert _survivor(onec_survivors(onec, None)) == ("a", "no documents; the others are named as duplicates ('дубль')")


def test_legal_entities_without_kpp_and_branches_form_no_group():
    onec = _onec(
        [
            {"ref_key": "a", "description": "Ромашка", "inn": INN},
            {"ref_key": "b", "description": "Ромашка", "inn": INN},
            {"ref_key": "c", "description": "Ромашка", "inn": INN, "kpp": KPP},
            {"ref_key": "d", "description": "Ромашка", "inn": INN, "kpp": "781043001"},
        ]
    )
    assert onec_survivors(onec).empty
    ip = _onec(
        [
            {"ref_key": "p1", "description": "ИП Иванов", "inn": "504555143938", "kind": "ip"},
            {"ref_key": "p2", "description": "Иванов И.И.", "inn": "504555143938", "kind": "ip"},
        ]
    )
    assert sorted(onec_survivors(ip)["record_id"]) == ["p1", "p2"]  # an ИП has no KPP: its INN is enough


def test_crm_rule_order_requisite_deals_open_deals_oldest():
    crm = _crm(
        [
            {"company_id": 1, "title": "Ромашка", "inn": INN, "kpp": KPP},
            {"company_id": 2, "title": "Ромашка", "inn": INN, "kpp": KPP},
            {"company_id": 3, "title": "Ромашка", "inn": INN, "kpp": KPP},
        ]
    )

    def pick(rows, has_requisite=None):
        return _survivor(crm_survivors(crm, crm_activity_frame(rows), has_requisite))

    assert pick([{"company_id": 2, "deals": 1}], has_requisite={1: False, 2: False, 3: True}) == (
        "3",
        "the only company with a requisite",
    )
    assert pick([{"company_id": 2, "deals": 5}, {"company_id": 3, "deals": 4}]) == ("2", "most deals (5 vs 4)")
    assert (
        pick([{"company_id": 2, "deals": 5, "open_deals": 1}, {"company_id": 3, "deals": 5, "open_deals": 2}])[0] == "3"
    )
    assert pick(
        [
            {"company_id": 1, "created": "2025-01-01"},
            {"company_id": 2, "created": "2021-05-05"},
            {"company_id": 3, "created": "2024-01-01"},
        ]
    ) == ("2", "the oldest (created 2021-05-05)")
    assert pick([]) == ("1", "the oldest (lowest company ID)")


def test_duplicate_report_names_survivor_why_and_card_link():
    onec = onec_frame(
        [
            {"ref_key": "a", "description": "Ромашка", "inn": INN, "kpp": KPP},
            {"ref_key": "b", "description": "Ромашка (дубль)", "inn": INN, "kpp": KPP},
        ]
    )
    crm = crm_frame(
        [
            {"company_id": 10, "title": "Ромашка", "inn": INN, "kpp": KPP},
            {"company_id": 11, "title": "ООО Ромашка", "inn": INN, "kpp": KPP},
            {"company_id": 12, "title": "Лютик", "inn": OTHER_INN, "kpp": "770201001"},
        ]
    )
    result = match_clients(
        onec,
        crm,
        onec_activity=onec_activity_frame([{"ref_key": "a", "documents": 3}]),
        crm_activity=crm_activity_frame([{"company_id": 11, "deals": 2}]),
    )
    linked = result.clients.dropna(subset=["onec_ref", "company_id"])
    assert list(zip(linked["onec_ref"], linked["company_id"], linked["match_rule"])) == [
        ("a", 11, "onec_duplicate_survivor")
    ]
    assert result.candidates.empty
    dups = find_duplicates(
        result.onec, result.crm, survivors=result.survivors, portal_origin="https://portal.example.ru/"
    )
    inn_kpp = dups[dups["reason"] == "inn_kpp"].set_index(["system", "record_id"])
    assert set(inn_kpp.loc["1c", "survivor_id"]) == {"a"}
    assert set(inn_kpp.loc["crm", "survivor_id"]) == {"11"}
    assert inn_kpp.loc[("crm", "10"), "why"] == "most deals (2 vs 0)"
    assert inn_kpp.loc[("crm", "10"), "card_url"] == "https://portal.example.ru/crm/company/details/10/"
    assert inn_kpp.loc[("1c", "b"), "card_url"] is None
    # The 1C link is never given to two companies, and the non-survivors stay unlinked.
    assert result.clients["onec_ref"].dropna().is_unique
    assert result.clients["company_id"].dropna().is_unique
    only = result.clients[result.clients["match_rule"].isin(["only_1c", "only_crm"])]
    assert set(only["onec_ref"].dropna()) == {"b"} and set(only["company_id"].dropna()) == {10, 12}


def test_foreign_originators_are_reported():
    ref = "5e1f0a00-0000-4000-8000-00000000aa01"
    onec = onec_frame(
        [
            {"ref_key": ref, "description": "Ромашка", "inn": INN, "kpp": KPP},
            {
                "ref_key": "5e1f0a00-0000-4000-8000-00000000aa02",
                "description": "Лютик",
                "inn": OTHER_INN,
                "kpp": "770201001",
                "deletion_mark": True,
            },
        ]
    )
    crm = crm_frame(
        [
            {"company_id": 1, "title": "Ромашка (старое)", "originator_id": "1C", "origin_id": ref},
            {
                "company_id": 2,
                "title": "Лютик",
                "originator_id": "1C",
                "origin_id": "5e1f0a00-0000-4000-8000-00000000aa02",
            },
            {"company_id": 3, "title": "Сделка", "originator_id": "amocrm", "origin_id": "12345"},
        ]
    )
    report = match_clients(onec, crm, originator_ids=("1c-unf",)).foreign_originators
    assert report.to_dict("records") == [
        {
            "originator_id": "1c",
            "companies": 2,
            "live_1c_refs": 1,
            "linked": 1,
            "conflicts": 0,
            "stale_refs": 1,
            "example_company_ids": "1,2",
        }
    ]
    # Once the administrator trusts it, the same link is an ordinary id_link.
    trusted = match_clients(onec, crm, originator_ids=("1c-unf", "1C"))
    assert trusted.foreign_originators.empty
    assert set(trusted.clients.loc[trusted.clients["company_id"] == 1, "match_rule"]) == {"id_link"}
