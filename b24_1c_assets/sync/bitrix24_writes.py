"""Send planned Bitrix24 writes in batches and say what happened to each row.

One failed command never loses the other 49 (batch `halt=0`). Commands that failed for a passing reason
(limits, 5xx, injected faults) are sent again, alone with the other failures, for a few rounds; a command
refused for its data is not repeated: its error goes to the results table and the row is retried on the
next run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from b24_1c_assets.bitrix24 import Bitrix24Client, Bitrix24Error
from b24_1c_assets.bitrix24.errors import AuthError, BadRequest, MethodNotFound, NotFound, OperationTimeLimit
from b24_1c_assets.domain.push_plan import Operation, Status

log = logging.getLogger(__name__)

# What the product's calls need (`api-reference/scopes/permissions.md`): crm.* (companies, deals, requisites,
# products, smart invoices, statuses), im.notify.* (alerts), user.get (managers), userfieldconfig.* (smart-invoice
# user fields). Asked once before the first write of a run, all missing ones named at once.
REQUIRED_SCOPES = ("crm", "im", "user", "userfieldconfig")

# Our writes carry this `auth_connector`: the offline-event queue bound with it (change capture) does not hear
# about them, so a push never comes back as a CRM change (loop prevention).
OUR_CONNECTOR = "b24-1c"


@dataclass
class WriteCommand:
    """One row's write: `method` with `params`, identified by the flow's row `key`."""

    key: str
    method: str
    params: dict
    operation: str = Operation.UPDATE


@dataclass
class RowOutcome:
    key: str
    operation: str
    status: str  # a Status
    result: Any = None
    error: str | None = None
    error_class: str | None = None  # retryable | data | reference | permission
    attempts: int = 1
    extra: dict = field(default_factory=dict)


def error_class(error: Bitrix24Error) -> str:
    """Dead-letter reason class: only `retryable` rows are retried automatically in-run."""
    if error.retryable:
        return "retryable"
    if isinstance(error, AuthError):
        return "permission"
    if isinstance(error, (NotFound, MethodNotFound)):
        return "reference"
    if isinstance(error, BadRequest):
        return "data"
    return "data"


def describe(error: Bitrix24Error) -> str:
    code = getattr(error, "code", None) or type(error).__name__
    description = getattr(error, "description", None) or str(error)
    return f"{code}: {description}"[:500]


def apply_commands(
    client: Bitrix24Client,
    commands: list[WriteCommand],
    *,
    rounds: int = 3,
    pause_seconds: float = 1.0,
    connector: str | None = OUR_CONNECTOR,
) -> list[RowOutcome]:
    """Run every command through `batch`; retry the transient failures; one outcome per command.

    `connector` is sent as `auth_connector` with every command (None: not sent). Before the first write of the
    client (one per run) the portal is asked which scopes it grants: a missing one raises MissingScopes."""
    if commands:
        client.require_scopes(REQUIRED_SCOPES)
    outcomes: dict[str, RowOutcome] = {}
    pending = [with_connector(cmd, connector) for cmd in commands]
    budget_waits = 0
    attempt = 0
    while attempt < rounds:
        attempt += 1
        if not pending:
            break
        named = {f"r{i}": (cmd.method, cmd.params) for i, cmd in enumerate(pending)}
        try:
            result = client.batch(named, idempotent=all(c.operation != Operation.ADD for c in pending))
        except Bitrix24Error as exc:  # the whole call failed after the client's own retries
            for cmd in pending:
                outcomes[cmd.key] = RowOutcome(
                    cmd.key,
                    cmd.operation,
                    Status.FAILED,
                    error=describe(exc),
                    error_class=error_class(exc),
                    attempts=attempt,
                )
            if not exc.retryable or getattr(exc, "outcome_unknown", False):
                break
            time.sleep(pause_seconds * attempt)
            continue
        retry = []
        for i, cmd in enumerate(pending):
            outcome = result[f"r{i}"]
            if outcome.ok:
                outcomes[cmd.key] = RowOutcome(
                    cmd.key, cmd.operation, Status.OK, result=outcome.result, attempts=attempt
                )
            else:
                cls = error_class(outcome.error)
                outcomes[cmd.key] = RowOutcome(
                    cmd.key,
                    cmd.operation,
                    Status.FAILED,
                    error=describe(outcome.error),
                    error_class=cls,
                    attempts=attempt,
                )
                # an `add` whose command failed did not happen (the portal answered): safe to resend
                if cls == "retryable":
                    retry.append(cmd)
        blocked = next(
            (
                result[f"r{i}"].error
                for i, cmd in enumerate(pending)
                if cmd in retry and isinstance(result[f"r{i}"].error, OperationTimeLimit)
            ),
            None,
        )
        if blocked is not None and budget_waits < client.max_operating_waits:
            # OPERATION_TIME_LIMIT inside batch: the method's budget is spent; wait for operating_reset_at
            # (as export does) and send the blocked commands again without using up a fault round.
            budget_waits += 1
            attempt -= 1
            try:
                client.wait_for_operating_reset(blocked.method, blocked)
            except OperationTimeLimit:
                break  # the reset is further away than the client may wait: the rows stay failed (retryable)
        elif retry and attempt < rounds:
            log.info("Bitrix24: %d of %d commands failed transiently; sending them again", len(retry), len(pending))
            time.sleep(pause_seconds * attempt)
        pending = retry
    return [outcomes[cmd.key] for cmd in commands if cmd.key in outcomes]


def with_connector(command: WriteCommand, connector: str | None) -> WriteCommand:
    """The command with `auth_connector` added to its params (the caller's params are left untouched)."""
    if not connector or "auth_connector" in command.params:
        return command
    return WriteCommand(command.key, command.method, dict(command.params, auth_connector=connector), command.operation)
