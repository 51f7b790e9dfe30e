"""CRM -> 1C counterparty writes: create each counterparty in 1C (or find the one an earlier run made by its
marker), then write its Ref_Key back to the CRM company, so the next matching links the two by ID."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.domain.company_sync import CompanyLink
from b24_1c_assets.domain.company_sync_to_onec import CounterpartyRun, counterparty_marker
from b24_1c_assets.domain.push_plan import Operation, Status
from b24_1c_assets.onec.errors import OneCError
from b24_1c_assets.sync.bitrix24_writes import RowOutcome, WriteCommand, apply_commands

COUNTERPARTIES = "Catalog_Контрагенты"


@dataclass
class CounterpartyPush:
    """What one run of the CRM -> 1C push did: an outcome per journaled row, {company ID: Ref_Key} of the
    counterparties that exist in 1C, and the calls made to each system."""

    outcomes: list[RowOutcome] = field(default_factory=list)
    target_ids: dict[str, str] = field(default_factory=dict)
    onec_calls: int = 0
    bitrix24_calls: int = 0


def push_counterparties(
    run: CounterpartyRun, link: CompanyLink, onec_client: Callable[[], object], b24_client: Callable[[], Bitrix24Client]
) -> CounterpartyPush:
    """The rows the run settled without a call (rejected, deferred, dry run) as outcomes, then its live rows
    written. The clients are made only when a row is written: a dry run never connects to 1C."""
    push = CounterpartyPush(
        [
            RowOutcome(s.key, s.operation, s.status, error=s.error, error_class=s.error_class, attempts=0)
            for s in run.settled
        ]
    )
    if run.live.empty:
        return push
    onec, b24 = onec_client(), b24_client()
    before = (onec.stats.requests, b24.stats.http_calls)
    written, push.target_ids = write_counterparties(onec, b24, run.live, link)
    push.outcomes += written
    push.onec_calls, push.bitrix24_calls = onec.stats.requests - before[0], b24.stats.http_calls - before[1]
    return push


def write_counterparties(
    onec_client, b24_client: Bitrix24Client, live: pd.DataFrame, link: CompanyLink
) -> tuple[list[RowOutcome], dict[str, str]]:
    """Create (or find by marker) each `create` row's counterparty, then link every row's CRM company to its
    Ref_Key. Returns the outcomes and {company ID: Ref_Key} of every counterparty that exists in 1C - a
    counterparty whose link failed still counts as made: its ref stays the baseline target."""
    outcomes: dict[str, RowOutcome] = {}
    refs: dict[str, str] = {}
    countries: dict[str, str | None] = {}
    for r in live.to_dict("records"):
        if r["operation"] == Operation.LINK:
            refs[r["key"]] = json.loads(r["body"])["Ref_Key"]
            continue
        ref, failure = _create_counterparty(onec_client, r["key"], json.loads(r["body"]), countries)
        if ref:
            refs[r["key"]] = ref
        if failure:
            outcomes[r["key"]] = failure
    operations = dict(zip(live["key"], live["operation"]))
    links = [
        WriteCommand(key, "crm.company.update", {"id": int(key), "fields": link.fields(ref)})
        for key, ref in refs.items()
    ]
    for outcome in apply_commands(b24_client, links):
        operation = Operation.CREATE if operations[outcome.key] == Operation.CREATE else Operation.LINK
        if outcome.status == Status.OK:
            if outcome.key not in outcomes:  # linked, but a КПП 1C dropped stays reported
                outcomes[outcome.key] = RowOutcome(outcome.key, operation, Status.OK, attempts=outcome.attempts)
        else:
            outcomes[outcome.key] = RowOutcome(
                outcome.key,
                operation,
                Status.FAILED,
                error=f"created in 1C as {refs[outcome.key]}, CRM link failed: {outcome.error}",
                error_class=outcome.error_class,
            )
    return list(outcomes.values()), refs


def _create_counterparty(
    onec_client, key: str, body: dict, countries: dict[str, str | None]
) -> tuple[str | None, RowOutcome | None]:
    """(Ref_Key of the counterparty in 1C or None, the row's failure or None): looked up by marker first, so a
    rerun after a crash never POSTs a second one."""
    marker = counterparty_marker(key)
    try:
        found = onec_client.find_by_marker(COUNTERPARTIES, marker)
        if found:
            return found[0]["Ref_Key"], None
        code = body.pop("СтранаРегистрации", None)
        if code:
            if code not in countries:
                countries[code] = onec_client.country(code)
            if countries[code] is None:
                return None, RowOutcome(
                    key,
                    Operation.CREATE,
                    Status.FAILED,
                    error_class="data",
                    error=(
                        f"Catalog_СтраныМира has no country with code {code} (or is not published): UNF would "
                        "clear the КПП of a legal entity written without its country"
                    ),
                )
            body["СтранаРегистрации_Key"] = countries[code]
        created = onec_client.create_counterparty(body, marker)
    except OneCError as exc:  # names host + entity set only, never the credentials
        return None, RowOutcome(key, Operation.CREATE, Status.FAILED, error=str(exc)[:500], error_class="data")
    if body.get("КПП") and created.get("КПП") != body["КПП"]:
        # 1C kept the object but dropped the КПП (ПередЗаписью): linked, and reported
        return created["Ref_Key"], RowOutcome(
            key,
            Operation.CREATE,
            Status.FAILED,
            error_class="data",
            error=(
                f"1C saved counterparty {created['Ref_Key']} without the КПП {body['КПП']} sent: UNF clears it "
                "for a legal entity not registered in Russia (allow СтранаРегистрации in onec_writes.toml)"
            ),
        )
    return created["Ref_Key"], None
