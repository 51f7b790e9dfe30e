"""The client match review page as a reviewer uses it, in headless Chromium, and what the next run makes of it.

The client master runs on the sandbox, the analysts' copy is published, the product's HTTP service serves
`/review` from it; in Chromium a reviewer types a name and a note, accepts one candidate and rejects another.
The decisions land in the review store at once (the working DuckDB file is never opened by the page); the next
run imports them into `review.client_match_decisions` (who, when, note) and its `clients` holds the accepted
pair as `reviewer_accept` while the rejected pair is gone from the queue.
"""

from __future__ import annotations

import time

import dagster as dg
import duckdb
import pytest

from b24_1c_assets.analytics_copy import publish
from b24_1c_assets.lib import tables
from b24_1c_assets.services.config import ServiceConfig
from b24_1c_assets.services.server import ServiceThread
from b24_1c_assets.sync.review_decisions import DecisionStore
from b24_1c_assets_tests.ui.chromium import BINARY, Browser

TOKEN = "review-ui-secret-5c1d"
CLIENT_MASTER = dg.AssetSelection.assets(tables.CLIENTS.key).required_multi_asset_neighbors()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(420),
    pytest.mark.skipif(BINARY is None, reason="chromium is not installed (apt-get install chromium chromium-driver)"),
]


def _decide(browser: Browser, onec_ref: str, company_id: int, decision: str, who: str, note: str) -> None:
    """Type the name and note into the item's form and press its button, as a person would."""
    table = f'table[data-onec-ref="{onec_ref}"][data-company-id="{company_id}"]'
    script = f"""(() => {{
        const t = document.querySelector('{table}');
        t.querySelector('input[name=decided_by]').value = {who!r};
        t.querySelector('input[name=note]').value = {note!r};
        t.querySelector('button[value={decision}]').click();
        return true; }})()"""
    assert browser.call("Runtime.evaluate", expression=script, returnByValue=True)["result"]["value"] is True


def _wait_text(browser: Browser, expected: str, seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    text = ""
    while time.monotonic() < deadline:
        found = browser.call(
            "Runtime.evaluate", expression="document.body ? document.body.innerText : ''", returnByValue=True
        )
        text = " ".join(str(found.get("result", {}).get("value", "")).split())
        if expected in text:
            return text
        time.sleep(0.3)
    raise AssertionError(f"not shown within {seconds} s: {expected!r}; page: {text[:1500]}")


def test_accept_and_reject_in_the_browser_are_honoured_by_the_next_run(run_assets, tmp_path, monkeypatch):
    store_file = tmp_path / "review" / "client_match_decisions.sqlite"
    monkeypatch.setenv("B24_1C_REVIEW_DECISIONS", str(store_file))
    run_assets(dg.AssetSelection.assets(tables.CLIENTS.key).upstream() | CLIENT_MASTER)
    working, copy = tmp_path / "b24_1c.duckdb", tmp_path / "analytics" / "b24_1c.duckdb"
    publish(str(working), str(copy))
    with duckdb.connect(str(copy), read_only=True) as conn:
        queue = conn.execute(
            "SELECT onec_ref, company_id FROM client_master.review_queue "
            "WHERE item = 'candidate' ORDER BY score DESC, onec_ref, company_id"
        ).fetchall()
    # Two pairs sharing no record, so accepting one cannot collide with the other.
    picked: list[tuple[str, int]] = []
    for ref, company in queue:
        if all(ref != r and company != c for r, c in picked):
            picked.append((ref, int(company)))
    assert len(picked) >= 2, queue
    accepted, rejected = picked[0], picked[1]

    config = ServiceConfig(
        review_token=TOKEN,
        analytics_db=str(copy),
        review_decisions=str(store_file),
        exchange_dir=str(tmp_path / "exchange"),
        events_journal=str(tmp_path / "events" / "bitrix24-events.jsonl"),
    )
    with ServiceThread(config) as service, Browser(tmp_path / "chromium") as browser:
        page = browser.text_when(f"{service.url}/review?token={TOKEN}", ["Client match review", "Candidate"])
        assert accepted[0] in page and rejected[0] in page
        _decide(browser, *accepted, "accept", "Анна Рецензент", "same INN in the contract")
        _wait_text(browser, f"accepted: {accepted[0]} / {accepted[1]} - applies at the next run")
        _decide(browser, *rejected, "reject", "Анна Рецензент", "different companies")
        text = _wait_text(browser, f"rejected: {rejected[0]} / {rejected[1]} - applies at the next run")
        assert "accepted by Анна Рецензент" in text and "rejected by Анна Рецензент" in text
        browser.screenshot(tmp_path / "review.png")
        # Without the token the page and the form refuse.
        assert browser.text_when(f"{service.url}/review", ["a valid token is required"])

    recorded = DecisionStore(store_file).rows()
    assert sorted(zip(recorded["onec_ref"], recorded["company_id"].astype(int), recorded["decision"])) == sorted(
        [(*accepted, "accept"), (*rejected, "reject")]
    )

    run_assets(CLIENT_MASTER)  # the next run
    with duckdb.connect(str(working), read_only=True) as conn:
        decisions = conn.execute(
            "SELECT onec_ref, company_id, decision, decided_by, decided_at, note "
            "FROM review.client_match_decisions ORDER BY decision"
        ).fetchall()
        accepted_rule = conn.execute(
            "SELECT match_rule FROM client_master.clients WHERE onec_ref = ? AND company_id = ?", list(accepted)
        ).fetchall()
        left = conn.execute("SELECT onec_ref, company_id FROM client_master.client_match_candidates").fetchall()
        queued = conn.execute(
            "SELECT onec_ref, company_id FROM client_master.review_queue WHERE company_id IS NOT NULL"
        ).fetchall()
    assert [(r, c, d, who, note) for r, c, d, who, _, note in decisions] == [
        (*accepted, "accept", "Анна Рецензент", "same INN in the contract"),
        (*rejected, "reject", "Анна Рецензент", "different companies"),
    ]
    assert all(at for *_, at, _ in decisions)
    assert accepted_rule == [("reviewer_accept",)]
    assert accepted not in left and rejected not in left
    assert accepted not in queued and rejected not in queued
    run_assets(CLIENT_MASTER)  # a third run imports nothing twice
    with duckdb.connect(str(working), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM review.client_match_decisions").fetchone()[0] == 2
