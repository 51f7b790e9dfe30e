"""Duplicate groups inside 1C and inside Bitrix24; branches are not duplicates."""

from __future__ import annotations

from b24_1c_assets.domain.duplicates import DUPLICATE_COLUMNS, find_duplicates
from b24_1c_assets.domain.normalize import normalize_crm_companies, normalize_onec_counterparties
from b24_1c_assets_tests.domain.conftest import crm_frame, onec_frame

INN, INN2, IP_INN = "7729141771", "7776317060", "504555143938"


def _groups(onec_rows, crm_rows) -> set[tuple]:
    onec, _ = normalize_onec_counterparties(onec_frame(onec_rows))
    crm, _ = normalize_crm_companies(crm_frame(crm_rows))
    dups = find_duplicates(onec, crm)
    assert list(dups.columns) == DUPLICATE_COLUMNS
    return {(s, r, tuple(sorted(g["record_id"]))) for (s, r, _), g in dups.groupby(["system", "reason", "group_id"])}


def test_same_inn_kpp_is_a_duplicate_branches_are_not():
    onec = [
        {"ref_key": "a", "description": "Ромашка", "inn": INN, "kpp": "770101001"},
        {"ref_key": "b", "description": "ООО Ромашка", "inn": INN, "kpp": "7701 01 001"},
        {"ref_key": "branch", "description": "Ромашка", "inn": INN, "kpp": "781043001"},
    ]
    assert _groups(onec, []) == {("1c", "inn_kpp", ("a", "b"))}


def test_head_office_and_branches_alone_give_no_group():
    onec = [
        {"ref_key": f"k{i}", "description": "Ромашка", "inn": INN, "kpp": kpp}
        for i, kpp in enumerate(["770101001", "781043001", "165543001"])
    ]
    assert _groups(onec, []) == set()


def test_name_and_inn_with_missing_kpp():
    crm = [
        {"company_id": 1, "title": "ООО «Ромашка»", "inn": INN, "kpp": "770101001"},
        {"company_id": 2, "title": "Ромашка", "inn": INN},
        {"company_id": 3, "title": "Лютик", "inn": INN, "kpp": "781043001"},  # a branch: no group
    ]
    assert _groups([], crm) == {("crm", "name_inn_kpp_missing", ("1", "2"))}


def test_two_ip_records_with_one_inn():
    onec = [
        {"ref_key": "p1", "description": "ИП Иванов", "inn": IP_INN, "kind": "ip"},
        {"ref_key": "p2", "description": "Иванов И.И.", "inn": IP_INN, "kind": "ip"},
    ]
    assert _groups(onec, []) == {("1c", "inn_kpp", ("p1", "p2"))}


def test_same_name_without_inn_and_id_link_duplicates_in_crm():
    crm = [
        {"company_id": 10, "title": "Альфа-Строй", "onec_ref_uf": "r1"},
        {"company_id": 11, "title": 'ООО "Альфа Строй"', "originator_id": "1c-unf", "origin_id": "R1"},
        {"company_id": 12, "title": "Альфа Строй", "inn": INN2},  # has an INN: not in name_no_inn
        {"company_id": 13, "title": "Бета", "originator_id": "amocrm", "origin_id": "r1"},  # foreign id
    ]
    assert _groups([], crm) == {("crm", "name_no_inn", ("10", "11")), ("crm", "id_link", ("10", "11"))}


def test_deletion_marked_records_and_invalid_inns_are_left_out():
    onec = [
        {"ref_key": "a", "description": "Ромашка", "inn": INN, "kpp": "770101001"},
        {"ref_key": "dead", "description": "Ромашка", "inn": INN, "kpp": "770101001", "deletion_mark": True},
        {"ref_key": "x", "description": "Ромашка-2", "inn": "7707083894", "kpp": "770101001"},
        {"ref_key": "y", "description": "Ромашка-3", "inn": "7707083894", "kpp": "770101001"},
    ]
    assert _groups(onec, []) == set()
