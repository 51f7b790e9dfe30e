import logging

import duckdb
import pytest
import requests

from b24_1c_assets.services.credit_gate import CreditGate

TOKEN = "gate-secret-7f3a"


@pytest.fixture
def gate(tmp_path):
    db = str(tmp_path / "g.duckdb")
    with duckdb.connect(db) as conn:
        conn.execute("CREATE SCHEMA receivables")
        conn.execute("""CREATE TABLE receivables.client_credit_status AS SELECT * FROM (VALUES
            (DATE '2026-11-24', 17, '7707083893', 150000.00::DECIMAL(38,2), 100000.00::DECIMAL(38,2), 'hold',
             'balance 150000.00 over limit 100000.00', 20000.00::DECIMAL(38,2), 45),
            (DATE '2026-11-24', 18, '5001007322', 10.00::DECIMAL(38,2), 100000.00::DECIMAL(38,2), 'ok', '',
             0.00::DECIMAL(38,2), 0))
            AS t(snapshot_date, company_id, inn, balance, credit_limit, status, status_reasons, overdue_amount,
                 days_overdue)""")
        conn.execute("CREATE TABLE receivables.hold_state AS SELECT 17 AS company_id, 'held' AS state")
    server = CreditGate(db, TOKEN).start()
    yield server
    server.stop()


def ask(gate, **params):
    return requests.get(gate.url, params=params, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)


def test_held_company_may_not_get_a_new_deal_and_says_why(gate):
    answer = ask(gate, company_id=17).json()
    assert answer["allowed"] is False and answer["held"] is True and answer["status"] == "hold"
    assert answer["balance"] == "150000.00" and "over limit" in answer["reasons"] and answer["days_overdue"] == 45
    assert ask(gate, inn="5001007322").json()["allowed"] is True
    unknown = ask(gate, company_id=999).json()
    assert unknown["allowed"] is True and unknown["status"] == "unknown"


def test_token_is_required_and_never_logged(gate, caplog):
    caplog.set_level(logging.DEBUG)
    assert requests.get(gate.url, params={"company_id": 17}, timeout=5).status_code == 401
    assert requests.get(gate.url, params={"company_id": 17, "token": "wrong"}, timeout=5).status_code == 401
    via_query = requests.get(gate.url, params={"company_id": 17, "token": TOKEN}, timeout=5)
    assert via_query.status_code == 200 and via_query.json()["allowed"] is False
    assert ask(gate).status_code == 400
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("b24_1c_assets")]
    assert ours and not any(TOKEN in line for line in ours)  # (the test's own HTTP client logs its URL)
