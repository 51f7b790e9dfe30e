"""Read-only `batch` lookups that survive per-command failures.

`Bitrix24Client.batch` retries a whole failed call but hands per-command errors to the caller. For reads,
repeating a command that failed for a passing reason (5xx inside the batch, limits) is always safe; without
this a single command error among 50 fails the whole step on every run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.bitrix24.errors import OperationTimeLimit

log = logging.getLogger(__name__)


def batch_read(
    client: Bitrix24Client, commands: Mapping[str, Any], *, rounds: int = 4, pause_seconds: float = 0.5
) -> dict[str, Any]:
    """name -> result of read-only commands; transient command errors are sent again (alone), up to `rounds`.

    Raises the first remaining error when a command still fails (or failed for a lasting reason).
    """
    results: dict[str, Any] = {}
    pending = dict(commands)
    budget_waits = 0
    attempt = 0
    while attempt < rounds:
        attempt += 1
        answers = client.batch(pending, idempotent=True)
        retry = {}
        blocked = None
        for name, command in pending.items():
            answer = answers[name]
            if answer.ok:
                results[name] = answer.result
            elif isinstance(answer.error, OperationTimeLimit) and budget_waits < client.max_operating_waits:
                retry[name], blocked = command, answer.error
            elif answer.error.retryable and attempt < rounds:
                retry[name] = command
            else:
                raise answer.error
        if not retry:
            break
        if blocked is not None:  # the method's operating budget is spent: wait for its reset, not a fault round
            budget_waits += 1
            attempt -= 1
            client.wait_for_operating_reset(blocked.method, blocked)
            pending = retry
            continue
        log.info("Bitrix24: %d of %d read commands failed transiently; sending them again", len(retry), len(pending))
        time.sleep(pause_seconds * attempt)
        pending = retry
    return results


def find_by_external_id(
    client: Bitrix24Client,
    method: str,
    external_ids: list[str],
    *,
    external_field: str,
    id_field: str,
    params: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """external id -> record id, looked up live (one `method` command per id, 50 per batch) before any add:
    a rerun after a crash finds what the crashed run made and never creates a twin.

    `method` is a list method (`crm.product.list`, `crm.item.list` with `params` {"entityTypeId": ...});
    a result may be a list of rows or {"items": rows}."""
    found: dict[str, str] = {}
    for start in range(0, len(external_ids), 50):
        chunk = external_ids[start : start + 50]
        answers = batch_read(
            client,
            {
                f"q{i}": (
                    method,
                    {**(params or {}), "filter": {external_field: x}, "select": [id_field, external_field]},
                )
                for i, x in enumerate(chunk)
            },
        )
        for i, external in enumerate(chunk):
            result = answers[f"q{i}"]
            rows = result.get("items", []) if isinstance(result, dict) else (result or [])
            for row in rows:
                if str(row.get(external_field)) == external:
                    found.setdefault(external, str(row[id_field]))
    return found
