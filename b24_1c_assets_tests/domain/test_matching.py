"""Matching ladder against the labelled fixture set: exact outcome per case and precision 1.0."""

from __future__ import annotations

import pandas as pd
import pytest

from b24_1c_assets.domain.matching import CANDIDATE_COLUMNS, CLIENT_COLUMNS, client_id_for, match_clients
from b24_1c_assets_tests.domain.conftest import (
    crm_activity_frame,
    crm_frame,
    decisions_frame,
    load_cases,
    onec_activity_frame,
    onec_frame,
)

CASES = load_cases()


def _run(cases: list[dict]):
    onec = onec_frame([r for c in cases for r in c["onec"]])
    crm = crm_frame([r for c in cases for r in c["crm"]])
    decisions = decisions_frame([d for c in cases for d in c.get("decisions", [])])
    return match_clients(
        onec,
        crm,
        decisions,
        onec_activity=onec_activity_frame([a for c in cases for a in c.get("onec_activity", [])]),
        crm_activity=crm_activity_frame([a for c in cases for a in c.get("crm_activity", [])]),
    )


def _matches(result) -> set[tuple]:
    linked = result.clients[result.clients["onec_ref"].notna() & result.clients["company_id"].notna()]
    return {(r, int(c), rule) for r, c, rule in zip(linked["onec_ref"], linked["company_id"], linked["match_rule"])}


def _candidates(result) -> set[tuple]:
    cand = result.candidates
    return {(r, int(c), reason) for r, c, reason in zip(cand["onec_ref"], cand["company_id"], cand["reason"])}


def _expected(case: dict, key: str) -> set[tuple]:
    return {(r, int(c), x) for r, c, x in case["expect"][key]}


def test_fixture_set_is_big_enough():
    assert len(CASES) >= 30
    assert len({c["id"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case_outcome_alone(case):
    result = _run([case])
    assert _matches(result) == _expected(case, "matches")
    assert _candidates(result) == _expected(case, "candidates")


def test_all_cases_together_give_the_same_outcomes():
    """Mixed in one run, no case leaks into another (e.g. via names or one-digit-off INNs)."""
    result = _run(CASES)
    expected_matches = set().union(*(_expected(c, "matches") for c in CASES))
    expected_candidates = set().union(*(_expected(c, "candidates") for c in CASES))
    assert _matches(result) == expected_matches
    assert _candidates(result) == expected_candidates


def test_precision_of_automatic_matches_is_one():
    result = _run(CASES)
    auto = {(r, c) for r, c, rule in _matches(result) if rule != "reviewer_accept"}
    truth = {(r, c) for case in CASES for r, c, _ in _expected(case, "matches")}
    assert auto, "no automatic matches at all"
    correct = auto & truth
    assert len(correct) / len(auto) == 1.0


def test_every_record_appears_once_in_clients():
    result = _run(CASES)
    clients = result.clients
    assert list(clients.columns) == CLIENT_COLUMNS
    live_refs = {r["ref_key"].lower() for c in CASES for r in c["onec"] if not r.get("deletion_mark")}
    companies = {r["company_id"] for c in CASES for r in c["crm"]}
    assert sorted(clients["onec_ref"].dropna()) == sorted(live_refs)
    assert sorted(clients["company_id"].dropna().astype(int)) == sorted(companies)
    assert clients["client_id"].is_unique
    assert set(clients["match_rule"]) <= {
        "id_link",
        "id_link_foreign",
        "inn_kpp",
        "onec_duplicate_survivor",
        "crm_duplicate_survivor",
        "inn_branch_rule",
        "ogrn",
        "reviewer_accept",
        "only_1c",
        "only_crm",
    }


def test_output_is_deterministic_under_input_order():
    a = _run(CASES)
    b = _run(list(reversed(CASES)))
    pd.testing.assert_frame_equal(a.clients, b.clients)
    pd.testing.assert_frame_equal(a.candidates, b.candidates)


def test_client_row_takes_legal_fields_from_1c_and_contacts_from_both():
    case = next(c for c in CASES if c["id"] == "inn_kpp_exact_with_formatting")
    onec = onec_frame([{**case["onec"][0], "email": "buh@romashka.ru"}])
    crm = crm_frame(
        [{**case["crm"][0], "emails": ["Sales@Romashka.ru"], "phones": ["8 (495) 123-45-67"], "assigned_by_id": 42}]
    )
    row = match_clients(onec, crm).clients.iloc[0]
    assert row["client_id"] == client_id_for("r01", None)
    assert (row["inn"], row["kpp"], row["name"], row["legal_form"]) == ("7729141771", "770101001", "Ромашка", "ООО")
    assert row["emails"] == ["buh@romashka.ru", "sales@romashka.ru"]
    assert row["email"] == "buh@romashka.ru"
    assert row["phone"] == "+74951234567"
    assert row["assigned_by_id"] == 42
    assert row["confidence"] == pytest.approx(0.99)


def test_candidate_queue_carries_evidence_and_scores():
    case = next(c for c in CASES if c["id"] == "email_phone_name_together_still_candidate")
    cand = _run([case]).candidates
    assert list(cand.columns) == CANDIDATE_COLUMNS
    row = cand.iloc[0]
    assert row["reasons"] == "email+phone+name"
    assert row["shared_email"] == "info@omega26.ru"
    assert row["shared_phone"] == "+74952262626"
    assert row["name_key"] == "омега"
    assert 0.6 < row["score"] < 1.0


def test_rejects_name_record_and_problem():
    onec = onec_frame(
        [
            {
                "ref_key": "x1",
                "description": "Альфа",
                "inn": "7707083894",
                "kpp": "77010100",
                "phone": "12345",
                "email": "not-an-email",
            }
        ]
    )
    crm = crm_frame(
        [
            {"company_id": 5, "title": "Бета", "inn": "7707-08", "ogrn": "1027700132196"},
            {"company_id": 5, "title": "Бета дубль"},
        ]
    )
    rejects = match_clients(onec, crm).rejects
    got = set(zip(rejects["system"], rejects["record_id"], rejects["problem"]))
    assert got == {
        ("1c", "x1", "inn_bad_checksum"),
        ("1c", "x1", "kpp_bad_length"),
        ("1c", "x1", "phone_unparseable"),
        ("1c", "x1", "email_bad_format"),
        ("crm", "5", "inn_bad_length"),
        ("crm", "5", "ogrn_bad_checksum"),
        ("crm", "5", "duplicate_record_id"),
    }


def test_decision_conflicting_with_id_link_is_reported():
    case = next(c for c in CASES if c["id"] == "reviewer_accept_conflicting_with_id_link_not_applied")
    rejects = _run([case]).rejects
    assert rejects[rejects["system"] == "decisions"]["problem"].tolist() == ["decision_conflicts_with_id_link"]


def test_generic_block_values_are_not_paired():
    """A call-centre phone shared by many records yields no candidates (blocking cap keeps it linear)."""
    from b24_1c_assets.domain.matching import BLOCK_CAP

    n = BLOCK_CAP + 5
    onec = onec_frame(
        [{"ref_key": f"g{i}", "description": f"Компания {i}", "phone": "8 800 555-35-35"} for i in range(n)]
    )
    crm = crm_frame([{"company_id": 9000 + i, "title": f"Фирма {i}", "phones": ["+78005553535"]} for i in range(n)])
    result = match_clients(onec, crm)
    assert result.candidates.empty
    assert set(result.clients["match_rule"]) == {"only_1c", "only_crm"}


def test_missing_columns_are_a_clear_error():
    with pytest.raises(ValueError, match="1C counterparties extract lacks columns"):
        match_clients(pd.DataFrame({"ref_key": ["a"]}), crm_frame([]))


def test_bad_ids_and_decisions_are_rejected_without_losing_good_rows():
    onec = onec_frame(
        [
            {"ref_key": "ok1", "description": "Ромашка", "inn": "7729141771", "kpp": "770101001"},
            {"ref_key": None, "code": "000123", "description": "Без ссылки"},
        ]
    )
    crm = crm_frame(
        [
            {"company_id": 1, "title": "Ромашка", "inn": "7729141771", "kpp": "770101001"},
            {"company_id": None, "title": "Без ID"},
            {"company_id": "abc", "title": "Кривой ID"},
        ]
    )
    decisions = decisions_frame(
        [
            {"onec_ref": "ok1", "company_id": None, "decision": "accept"},
            {"onec_ref": "ok1", "company_id": 1, "decision": "maybe"},
        ]
    )
    result = match_clients(onec, crm, decisions)
    assert _matches(result) == {("ok1", 1, "inn_kpp")}
    got = sorted(zip(result.rejects["system"], result.rejects["problem"]))
    assert got == [
        ("1c", "ref_key_missing"),
        ("crm", "company_id_invalid"),
        ("crm", "company_id_invalid"),
        ("decisions", "decision_malformed"),
        ("decisions", "decision_malformed"),
    ]
