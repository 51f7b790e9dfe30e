"""What the sandbox servers were asked, summed for a benchmark: HTTP calls by method, write commands, rows held.

`python -m b24_1c_assets.sandbox --control` answers `figures` on standard input with these summaries (and clears
the request logs), so a bench can run the servers in their own process and still count the calls per stage.
"""

from __future__ import annotations

from collections import Counter

WRITE_SUFFIXES = (".add", ".update", ".set", ".delete")
WRITE_PREFIXES = ("timeline.", "im.", "crm.activity.")


def portal_rows(portal) -> dict[str, int]:
    """Records the portal holds, by table (smart invoices apart)."""
    state = portal.state
    with state.lock:
        rows = {name: len(table.rows) for name, table in state.tables.items()}
        rows["smart_invoice"] = len(state.invoices.rows)
    return rows


def onec_rows(onec) -> dict[str, int]:
    """Objects and register movements the 1C base holds, by entity set."""
    state = onec.state
    rows = {name: len(records) for name, records in state.objects.items()}
    for name, store in state.registers.items():
        rows[name] = sum(len(r) for r in store.by_recorder.values())
    return rows


def portal_figures(entries: list[dict]) -> dict:
    """HTTP calls by method, write commands (inside batches or alone), list commands by method."""
    by_method = Counter(e.get("method") for e in entries)
    commands: Counter = Counter()
    for e in entries:
        for c in e.get("commands") or ([] if e.get("method") == "batch" else [e.get("method")]):
            commands[str(c).partition("?")[0].strip().lower()] += 1
    writes = sum(n for m, n in commands.items() if m.endswith(WRITE_SUFFIXES) or m.startswith(WRITE_PREFIXES))
    return {
        "http": len(entries),
        "throttled": sum(1 for e in entries if e.get("error") == "QUERY_LIMIT_EXCEEDED"),
        "write_commands": writes,
        "by_method": dict(by_method.most_common()),
        "list_commands": dict(sorted((m, n) for m, n in commands.items() if m.endswith(".list"))),
    }


def onec_figures(entries: list[dict]) -> dict:
    """1C requests, writes, and requests by entity set and kind."""
    sets = Counter((e["entity_set"], e["kind"]) for e in entries)
    return {
        "http": len(entries),
        "writes": sum(1 for e in entries if e["kind"] == "write"),
        "by_set": {f"{s} {k}": n for (s, k), n in sets.most_common()},
    }


def take_figures(sandbox) -> dict:
    """The calls both servers logged since the last take, summed; the logs are cleared."""
    out: dict = {}
    if sandbox.portal is not None:
        with sandbox.portal._log_lock:
            entries = list(sandbox.portal.request_log)
            sandbox.portal.request_log.clear()
        out["portal"] = portal_figures(entries)
    if sandbox.onec is not None:
        log = sandbox.onec.request_log  # appended without a lock: take what is there, keep what comes after
        taken = len(log)
        entries = log[:taken]
        del log[:taken]
        out["onec"] = onec_figures(entries)
    return out


def held_rows(sandbox) -> dict:
    """Rows each server holds now."""
    return {
        "crm_rows": portal_rows(sandbox.portal) if sandbox.portal is not None else {},
        "onec_rows": onec_rows(sandbox.onec) if sandbox.onec is not None else {},
    }
