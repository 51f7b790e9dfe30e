import pandas as pd

from b24_1c_assets.domain.contracts import BITRIX24_CONTRACTS, quarantine


def test_bad_rows_are_quarantined_with_rule_and_value_and_good_rows_go_on():
    companies = pd.DataFrame(
        {
            "ID": ["1", "2", "3"],
            "TITLE": ["ООО «Ромашка»", "Bad\x02Name", "АО Вектор"],
            "ASSIGNED_BY_ID": ["5", "5", "five"],
        }
    )
    verdict = quarantine(companies, BITRIX24_CONTRACTS["companies"])
    assert list(verdict.good["ID"]) == ["1"]
    by_record = {r.record_id: r for r in verdict.rejects.itertuples()}
    assert set(by_record) == {"2", "3"}
    assert by_record["2"].column == "TITLE" and "Bad" in by_record["2"].value
    assert by_record["3"].column == "ASSIGNED_BY_ID" and by_record["3"].value == "five"
    assert verdict.critical_failures.empty


def test_broken_key_is_critical():
    deals = pd.DataFrame(
        {"ID": ["1", "1"], "STAGE_ID": ["NEW", "WON"], "CATEGORY_ID": ["0", "0"], "OPPORTUNITY": ["100.00", "1,5"]}
    )
    verdict = quarantine(deals, BITRIX24_CONTRACTS["deals"])
    critical = verdict.critical_failures
    assert set(critical["column"]) == {"ID"}  # both rows share one ID; one bad amount of two is not a broken column
    assert verdict.good.empty


def test_a_few_bad_amounts_are_quarantined_without_failing_the_table():
    deals = pd.DataFrame(
        {
            "ID": [str(i) for i in range(1, 11)],
            "STAGE_ID": ["NEW"] * 10,
            "CATEGORY_ID": ["0"] * 10,
            "OPPORTUNITY": ["100.00"] * 8 + ["1 500,00", "-"],
        }
    )
    verdict = quarantine(deals, BITRIX24_CONTRACTS["deals"])
    assert verdict.critical_failures.empty
    assert set(verdict.rejects["record_id"]) == {"9", "10"} and len(verdict.good) == 8
    assert set(verdict.rejects["critical"]) == {True}
