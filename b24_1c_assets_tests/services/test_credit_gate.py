"""`GET /v1/may-create-deal` on the service: read from the analysts' copy, token by header or `token=`."""

import logging
import subprocess
import sys

import duckdb
import pytest
import requests

from b24_1c_assets.analytics_copy import publish
from b24_1c_assets_tests.services.conftest import GATE_TOKEN, access_lines

STATUS_ROWS = """(DATE '2026-11-24', 17, '7707083893', 150000.00::DECIMAL(38,2), 100000.00::DECIMAL(38,2), 'hold',
     'balance 150000.00 over limit 100000.00', 20000.00::DECIMAL(38,2), 45),
    (DATE '2026-11-24', 18, '5001007322', 10.00::DECIMAL(38,2), 100000.00::DECIMAL(38,2), 'ok', '',
     0.00::DECIMAL(38,2), 0)"""


def _working_db(path, rows=STATUS_ROWS, held=17):
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS receivables")
        conn.execute(f"""CREATE OR REPLACE TABLE receivables.client_credit_status AS SELECT * FROM (VALUES {rows})
            AS t(snapshot_date, company_id, inn, balance, credit_limit, status, status_reasons, overdue_amount,
                 days_overdue)""")
        conn.execute(f"CREATE OR REPLACE TABLE receivables.hold_state AS SELECT {held} AS company_id, 'held' AS state")


@pytest.fixture
def gate(tmp_path, service_config, start_service):
    _working_db(tmp_path / "work.duckdb")
    publish(str(tmp_path / "work.duckdb"), service_config.analytics_db)
    return start_service(service_config)


def ask(gate, **params):
    return requests.get(
        gate.url + "/v1/may-create-deal", params=params, headers={"Authorization": f"Bearer {GATE_TOKEN}"}, timeout=5
    )


def test_held_company_may_not_get_a_new_deal_and_says_why(gate):
    answer = ask(gate, company_id=17).json()
    assert answer["allowed"] is False and answer["held"] is True and answer["status"] == "hold"
    assert answer["balance"] == "150000.00" and "over limit" in answer["reasons"] and answer["days_overdue"] == 45
    assert ask(gate, inn="5001007322").json()["allowed"] is True
    unknown = ask(gate, company_id=999).json()
    assert unknown["allowed"] is True and unknown["status"] == "unknown"
    assert ask(gate, company_id="x").status_code == 400


def test_token_is_required_and_never_logged(gate, caplog):
    caplog.set_level(logging.DEBUG)
    url = gate.url + "/v1/may-create-deal"
    assert requests.get(url, params={"company_id": 17}, timeout=5).status_code == 401
    assert requests.get(url, params={"company_id": 17, "token": "wrong"}, timeout=5).status_code == 401
    assert (
        requests.get(url, params={"company_id": 17}, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code
        == 401
    )
    via_query = requests.get(url, params={"company_id": 17, "token": GATE_TOKEN}, timeout=5)
    assert via_query.status_code == 200 and via_query.json()["allowed"] is False
    assert ask(gate).status_code == 400
    access = access_lines(caplog, 5)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("b24_1c_assets")]
    assert len(access) == 5 and any("token=***" in line for line in access)
    assert not any(GATE_TOKEN in line for line in ours)  # (the test's own HTTP client logs its URL)


def test_gate_answers_while_a_writer_holds_the_working_file_and_follows_a_new_copy(gate, tmp_path, service_config):
    """The old gate read the working file and answered 503 during runs; the copy is never locked."""
    work = tmp_path / "work.duckdb"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys\nc = duckdb.connect({str(work)!r})\nprint('locked', flush=True)\nsys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        with pytest.raises(duckdb.IOException):  # the working file is really taken
            duckdb.connect(str(work), read_only=True)
        assert ask(gate, company_id=17).json()["held"] is True
    finally:
        writer.stdin.close()
        writer.wait(10)
    _working_db(work, held=18)  # the next run: 17 released, 18 held
    publish(str(work), service_config.analytics_db)
    assert ask(gate, company_id=17).json()["held"] is False
    assert ask(gate, company_id=18).json()["held"] is True


def test_before_the_first_copy_the_gate_says_retry_later(service):
    answer = ask(service, company_id=17)
    assert answer.status_code == 503 and answer.headers["Retry-After"] and "published" in answer.json()["error"]


def test_old_entry_point_still_starts_the_service():
    done = subprocess.run(
        [sys.executable, "-m", "b24_1c_assets.services.credit_gate", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "b24_1c_assets.services" in done.stdout and "--deny-unknown" in done.stdout
