"""Deals of clients on hold: suspended in their own pipeline, released after payment, notified once."""

import uuid
from collections import defaultdict
from decimal import Decimal

import dagster as dg
import duckdb

SELECTION = dg.AssetSelection.groups("bitrix24_raw", "onec_raw", "client_master", "receivables", "crm_push")
SETTLEMENTS = "AccumulationRegister_РасчетыСПокупателями"


def hold_notices(portal) -> int:
    """Notifications about hold changes (the finance digest goes through the same method)."""
    return sum(n["MESSAGE"].startswith(("Клиент «", "Кредитный стоп")) for n in portal.state.notifications)


def held_company(db_path):
    with duckdb.connect(db_path, read_only=True) as conn:
        return conn.execute(
            """SELECT s.company_id, c.onec_ref, list(d.deal_id), list(d.previous_stage)
               FROM receivables.hold_state s JOIN receivables.suspended_deals d USING (company_id)
               JOIN client_master.clients c USING (company_id)
               WHERE s.state = 'held' GROUP BY ALL ORDER BY count(*) DESC LIMIT 1"""
        ).fetchone()


def notified_transitions(db_path) -> int:
    with duckdb.connect(db_path, read_only=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM receivables.hold_transitions WHERE notified AND assigned_by_id IS NOT NULL"
        ).fetchone()[0]


def pay_everything(onec_server, counterparty_ref: str) -> None:
    """Post a payment in the 1C sandbox that settles the counterparty's debt on every contract."""
    register = onec_server.state.registers[SETTLEMENTS]
    debt, template = defaultdict(Decimal), {}
    for rows in register.by_recorder.values():
        for row in rows:
            if row["Контрагент_Key"] == counterparty_ref and row["ТипРасчетов"] == "Долг":
                sign = 1 if row["RecordType"] == "Receipt" else -1
                debt[row["Договор_Key"]] += sign * Decimal(str(row["Сумма"]))
                template[row["Договор_Key"]] = row
    recorder = str(uuid.uuid4())
    payment = [
        dict(
            template[contract],
            Recorder=recorder,
            LineNumber=n,
            RecordType="Expense",
            Сумма=amount,
            СуммаВал=amount,
            СуммаРег=amount,
        )
        for n, (contract, amount) in enumerate(((c, a) for c, a in debt.items() if a > 0), 1)
    ]
    register.put(recorder, payment)


def test_hold_suspends_then_payment_releases_to_previous_stages_with_one_notice_each(sandbox, run_assets, tmp_path):
    db = str(tmp_path / "b24_1c.duckdb")
    assert run_assets(SELECTION).success
    company, onec_ref, deals, previous = held_company(db)
    for deal in deals:
        stage = sandbox.portal.state.record("deal", int(deal))["STAGE_ID"]
        assert stage.endswith("HOLD") and stage.split(":")[0] == (
            previous[deals.index(deal)].split(":")[0] if ":" in previous[deals.index(deal)] else "HOLD"
        )
    notices = hold_notices(sandbox.portal)
    assert notices > 0 and notices == notified_transitions(db)

    pay_everything(sandbox.onec, onec_ref)
    assert run_assets(SELECTION).success
    for deal, stage in zip(deals, previous):
        assert sandbox.portal.state.record("deal", int(deal))["STAGE_ID"] == stage
    with duckdb.connect(db, read_only=True) as conn:
        state = conn.execute("SELECT state FROM receivables.hold_state WHERE company_id = ?", [company]).fetchone()[0]
        log = conn.execute(
            "SELECT to_state, notified FROM receivables.hold_transitions WHERE company_id = ? ORDER BY decided_at",
            [company],
        ).fetchall()
    assert state == "clear" and log == [("held", True), ("clear", True)]
    after_release = hold_notices(sandbox.portal)
    assert after_release == notified_transitions(db)  # one notice per change of state, no more

    assert run_assets(SELECTION).success  # nothing changed for this client: no move, no repeated notice
    with duckdb.connect(db, read_only=True) as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM receivables.hold_transitions WHERE company_id = ?", [company]
            ).fetchone()[0]
            == 2
        )
    assert hold_notices(sandbox.portal) == notified_transitions(db)
    for deal, stage in zip(deals, previous):
        assert sandbox.portal.state.record("deal", int(deal))["STAGE_ID"] == stage


def test_manual_release_is_honoured(sandbox, run_assets, tmp_path):
    db = str(tmp_path / "b24_1c.duckdb")
    assert run_assets(SELECTION).success
    company, _, deals, previous = held_company(db)
    with duckdb.connect(db) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS review")
        conn.execute(
            "CREATE TABLE review.manual_releases (company_id BIGINT, until DATE, reason VARCHAR, released_by VARCHAR)"
        )
        conn.execute(
            "INSERT INTO review.manual_releases VALUES (?, DATE '2099-01-01', 'гарантийное письмо', 'cfo')", [company]
        )
    assert run_assets(SELECTION).success
    for deal, stage in zip(deals, previous):
        assert sandbox.portal.state.record("deal", int(deal))["STAGE_ID"] == stage
