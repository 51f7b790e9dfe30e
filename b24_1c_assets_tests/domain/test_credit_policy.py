from datetime import date
from decimal import Decimal as D

import pandas as pd

from b24_1c_assets.domain.credit_policy import HOLD, OK, WARNING, CreditPolicy, assess, may_release

POLICY = CreditPolicy.from_dict(
    {
        "limits": {
            "default": 100000,
            "segments": {"key": 1000000},
            "clients": {"7707083893": 5000},
            "crm_field": "UF_CRM_CREDIT_LIMIT",
        },
        "hold": {"over_limit": True, "overdue_days": 30, "overdue_amount": 50000},
        "warning": {"limit_share": 0.8, "any_overdue": True},
        "exemptions": [{"inn": "500100732259", "until": "2026-12-31", "reason": "prepaid"}],
    }
)
AS_OF = date(2026, 11, 20)


def client(inn, balance, overdue="0", days=0, segment=None, crm_limit=None, kpp=None):
    return {
        "inn": inn,
        "kpp": kpp,
        "balance": D(balance),
        "overdue_amount": D(overdue),
        "days_overdue": days,
        "segment": segment,
        "crm_limit": crm_limit,
    }


def test_statuses_and_reasons():
    frame = pd.DataFrame(
        [
            client("1111111111", "10000"),  # ok
            client("2222222222", "85000"),  # warning: 85% of default
            client("3333333333", "120000"),  # hold: over limit
            client("4444444444", "1000", "1000", days=45),  # hold: overdue 45 days
            client("5555555555", "900000", segment="key"),  # warning at 90% of the key segment
            client("7707083893", "6000"),  # hold: client override 5000
            client("6666666666", "60000", crm_limit="50000|RUB"),  # hold: CRM limit 50000
            client("500100732259", "999999"),  # exempt
        ]
    )
    out = assess(frame, POLICY, AS_OF)
    assert list(out["status"]) == [OK, WARNING, HOLD, HOLD, WARNING, HOLD, HOLD, OK]
    assert "over limit 100000" in out.loc[2, "status_reasons"]
    assert "overdue 45 days" in out.loc[3, "status_reasons"]
    assert out.loc[5, "credit_limit"] == D("5000")
    assert out.loc[6, "credit_limit"] == D("50000")
    assert out.loc[7, "status_reasons"].startswith("exempt until 2026-12-31: prepaid")
    assert out.loc[1, "utilisation"] == D("0.85")


def test_release_needs_a_margin_inside_the_limit():
    assert not may_release(D("99000"), D("100000"), 0, POLICY)  # inside, but within the 5% margin
    assert may_release(D("90000"), D("100000"), 0, POLICY)
    assert not may_release(D("10"), D("100000"), 31, POLICY)


def test_default_settings_file_loads():
    policy = CreditPolicy.load()
    assert policy.default_limit > 0 and policy.aging.default_term_days == 14
