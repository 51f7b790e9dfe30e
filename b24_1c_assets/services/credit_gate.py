"""A read-only HTTP endpoint: "may this company get a new deal?", from the latest receivables snapshot.

    GET /v1/may-create-deal?company_id=17        (or ?inn=7707083893)
    Authorization: Bearer <B24_1C_GATE_TOKEN>     (or &token=<...> for a CRM business-process webhook,
                                                   which cannot set headers)

Answers 200 with JSON {"allowed": true|false, "status", "held", "reasons", "balance", "credit_limit",
"overdue_amount", "days_overdue", "as_of", ...}; 401 without the right token; 400 without an identifier.
Each request opens DuckDB read-only for a moment; when a writer holds the file, it answers 503 with
Retry-After rather than a stale guess. The token is never logged.

Run: `python -m b24_1c_assets.services.credit_gate --port 8765` (token from B24_1C_GATE_TOKEN).
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import duckdb

from b24_1c_assets import warehouse
from b24_1c_assets.domain.credit_gate import decide

log = logging.getLogger(__name__)
PATH = "/v1/may-create-deal"


def lookup(database: str, *, company_id: int | None = None, inn: str | None = None) -> tuple[dict | None, str | None]:
    """The latest credit-status row and hold state of a company (by CRM ID or INN)."""
    with warehouse.connect(database, read_only=True, lock_wait_seconds=2.0) as conn:
        if not warehouse.table_exists(conn, "receivables", "client_credit_status"):
            return None, None
        where, value = ("company_id = ?", company_id) if company_id is not None else ("inn = ?", inn)
        rows = warehouse.query(conn, f"""SELECT * FROM receivables.client_credit_status WHERE {where} AND
                snapshot_date = (SELECT max(snapshot_date) FROM receivables.client_credit_status)
                ORDER BY balance DESC LIMIT 1""", [value])
        if rows.empty:
            return None, None
        status = rows.iloc[0].to_dict()
        state = None
        if status.get("company_id") is not None and warehouse.table_exists(conn, "receivables", "hold_state"):
            found = conn.execute("SELECT state FROM receivables.hold_state WHERE company_id = ?",
                                 [int(status["company_id"])]).fetchall()
            state = found[0][0] if found else None
        return status, state


class GateHandler(BaseHTTPRequestHandler):
    server: "CreditGate"

    def log_message(self, fmt, *args):  # the default logs the query string, which may carry the token
        log.info("credit gate %s %s", self.command, urlsplit(self.path).path)

    def do_GET(self):  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.path != PATH:
            return self._send(404, {"error": "not found"})
        given = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip() or query.get("token", "")
        if not hmac.compare_digest(given.encode(), self.server.token.encode()):
            return self._send(401, {"error": "a valid token is required"})
        company_id, inn = query.get("company_id"), query.get("inn")
        if not company_id and not inn:
            return self._send(400, {"error": "pass company_id or inn"})
        try:
            status, state = lookup(self.server.database, company_id=int(company_id) if company_id else None,
                                   inn=inn.strip() if inn else None)
        except ValueError:
            return self._send(400, {"error": "company_id must be a number"})
        except duckdb.IOException:
            return self._send(503, {"error": "the receivables store is being written; retry shortly"},
                              {"Retry-After": "5"})
        return self._send(200, decide(status, state, allow_unknown=self.server.allow_unknown).as_json())

    def _send(self, status: int, body: dict, headers: dict | None = None):
        payload = json.dumps(body, ensure_ascii=False, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class CreditGate(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, database: str, token: str, host: str = "127.0.0.1", port: int = 0, *, allow_unknown: bool = True):
        if not token:
            raise ValueError("the credit gate needs a token (B24_1C_GATE_TOKEN)")
        super().__init__((host, port), GateHandler)
        self.database, self.token, self.allow_unknown = database, token, allow_unknown

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}{PATH}"

    def start(self) -> "CreditGate":
        threading.Thread(target=self.serve_forever, daemon=True, name="credit-gate").start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--deny-unknown", action="store_true", help="refuse companies with no known receivables")
    args = parser.parse_args(argv)
    gate = CreditGate(warehouse.duckdb_path(), os.environ.get("B24_1C_GATE_TOKEN", ""), args.host, args.port,
                      allow_unknown=not args.deny_unknown)
    print(f"credit gate on {gate.url}", flush=True)
    try:
        gate.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
