"""`/review`: the page where people settle client matches the client master could not decide.

    GET  /review?token=<B24_1C_REVIEW_TOKEN>      (or Authorization: Bearer ...)
    POST /review/decisions                        (form: token, onec_ref, company_id, decision, decided_by, note)

Lists `client_master.review_queue` from the analysts' copy - open candidate pairs and held-back 1C-only
clients, both records side by side with identifiers, contacts, addresses, deals, the 1C debt (latest
receivables snapshot), the rule and score - with accept / reject / "create in CRM" and a note. A decision is
appended to the review store (`sync/review_decisions.py`, SQLite): the page reads only the copy and writes
only that small file, so it never waits on the sync's lock on the working DuckDB file, and nothing is written
to 1C or Bitrix24 from here. The next run imports the store into `review.client_match_decisions` and honours
it (accept -> `reviewer_accept` link, reject -> the pair never comes back, create -> the company push makes a
CRM company for the 1C client). Plain HTML forms, server-rendered with Jinja2: no JavaScript.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote

import duckdb
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Route

from b24_1c_assets import warehouse
from b24_1c_assets.lib import tables
from b24_1c_assets.services.http import credential, error, token_matches
from b24_1c_assets.sync.review_decisions import DecisionStore, store_path

PATH = "/review"
DECISIONS_PATH = "/review/decisions"
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)
LABELS = {"accept": "accepted", "reject": "rejected", "create": "create in CRM"}


def _authorised(request: Request, given: str = "") -> tuple[bool, object | None]:
    config = request.app.state.config
    if not config.review_token:
        return False, error(503, "the review page is not configured (B24_1C_REVIEW_TOKEN)")
    given = given or credential(request.headers.get("authorization")) or request.query_params.get("token", "")
    if not token_matches(given, config.review_token):
        return False, error(401, "a valid token is required")
    return True, None


def _store(request: Request) -> DecisionStore:
    return DecisionStore(request.app.state.config.review_decisions or store_path())


def read_queue(conn: duckdb.DuckDBPyConnection) -> tuple[list[dict], str | None]:
    """The review queue with each client's 1C debt, and when the copy was published."""
    if not tables.REVIEW_QUEUE.exists(conn):
        return [], None
    queue = warehouse.query(
        conn, f"SELECT * FROM {tables.REVIEW_QUEUE} ORDER BY item, score DESC NULLS LAST, onec_ref, company_id"
    )
    if tables.CLIENT_CREDIT_STATUS.exists(conn):
        debt = warehouse.query(
            conn,
            f"""SELECT onec_ref, balance, overdue_amount FROM {tables.CLIENT_CREDIT_STATUS}
            WHERE onec_ref IS NOT NULL AND snapshot_date = (SELECT max(snapshot_date)
                                                            FROM {tables.CLIENT_CREDIT_STATUS})""",
        )
        queue = queue.merge(debt.drop_duplicates("onec_ref"), on="onec_ref", how="left")
    else:  # no receivables snapshot yet: debt unknown, shown as a dash
        queue["balance"], queue["overdue_amount"] = None, None
    published = None
    if tables.ANALYST_COPY_PUBLICATION.exists(conn):
        found = conn.execute(f"SELECT published_at FROM {tables.ANALYST_COPY_PUBLICATION} LIMIT 1").fetchone()
        published = str(found[0])[:19] if found else None
    queue = queue.astype(object).where(queue.notna(), None)
    return queue.to_dict("records"), published


def review_page(request: Request):
    ok, refusal = _authorised(request)
    if not ok:
        return refusal
    try:
        items, published = request.app.state.copy_reader.run(read_queue)
    except FileNotFoundError:
        items, published = None, None
    except duckdb.IOException:
        return error(503, "the analysts' copy cannot be read right now; retry shortly", headers={"Retry-After": "5"})
    recorded = _store(request).rows()
    latest = {}
    for row in recorded.to_dict("records"):  # oldest first: the last one per item wins
        company = (
            None if row["company_id"] is None or row["company_id"] != row["company_id"] else int(row["company_id"])
        )
        latest[(row["onec_ref"], company)] = row
        if row["decision"] == "create":
            latest[(row["onec_ref"], "any")] = row
    for item in items or []:
        company = None if item.get("company_id") is None else int(item["company_id"])
        item["company_id"] = company
        item["decided"] = latest.get((item["onec_ref"], company)) or latest.get((item["onec_ref"], "any"))
    html = TEMPLATES.get_template("review.html").render(
        items=items,
        published=published,
        token=request.query_params.get("token", ""),
        reviewer=unquote(request.cookies.get("reviewer", "")),
        decisions_path=DECISIONS_PATH,
        labels=LABELS,
        message=request.query_params.get("message", ""),
        recorded=len(recorded),
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


async def post_decision(request: Request):
    form = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace"), keep_blank_values=True))
    ok, refusal = _authorised(request, form.get("token", ""))
    if not ok:
        return refusal
    company = (form.get("company_id") or "").strip()
    try:
        company_id = int(company) if company else None
    except ValueError:
        return error(400, "company_id must be a number")
    store = _store(request)
    try:
        row = store.record(
            form.get("onec_ref", ""), company_id, form.get("decision", ""), form.get("decided_by", ""), form.get("note")
        )
    except ValueError as exc:
        return error(400, str(exc))
    message = (
        f"{LABELS[row['decision']]}: {row['onec_ref']}"
        + (f" / {company_id}" if company_id else "")
        + " - applies at the next run"
    )
    target = f"{PATH}?message={quote(message)}"
    if form.get("token"):
        target += f"&token={quote(form['token'])}"
    response = RedirectResponse(target, status_code=303)  # back to the list (POST-redirect-GET)
    # Remembered for the next form (percent-encoded: a header carries Latin-1 only, names are Cyrillic).
    response.set_cookie("reviewer", quote(row["decided_by"]), httponly=True, samesite="strict", max_age=30 * 86400)
    return response


def routes() -> list[Route]:
    """The review page's routes, mounted by the service app."""
    return [Route(PATH, review_page, methods=["GET"]), Route(DECISIONS_PATH, post_decision, methods=["POST"])]
