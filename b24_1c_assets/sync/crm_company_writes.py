"""1C -> CRM company writes in the order the portal needs: find what an earlier run already made, add the
new companies, then company updates and requisites (a requisite needs its company's ID); one outcome per
planned row, its parts combined."""

from __future__ import annotations

import json

import pandas as pd

from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.domain.company_sync import (
    CompanyLink,
    CrmCompany,
    Presets,
    crm_companies_by_id,
    pick_presets,
    with_ip_fields,
)
from b24_1c_assets.domain.company_sync_to_crm import crm_company_writes, crm_write_columns, desired_from_plan_row
from b24_1c_assets.domain.push_plan import Operation, Status
from b24_1c_assets.sync.bitrix24_userfields import UserField, ensure_userfields
from b24_1c_assets.sync.bitrix24_writes import RowOutcome, WriteCommand, apply_commands

CHUNK = 50  # IDs per `@` filter, as the portal's list pages


def requisite_presets(client: Bitrix24Client) -> Presets:
    """The legal-entity and ИП presets, with the fields the ИП preset shows (its person-name fields)."""
    presets = pick_presets(client.call("crm.requisite.preset.list", {"select": ["ID", "NAME", "XML_ID", "ACTIVE"]}))
    return with_ip_fields(presets, client.call("crm.requisite.preset.field.list", {"preset": {"ID": presets.ip}}) or [])


def find_linked_companies(client: Bitrix24Client, refs: list[str], originators: tuple[str, ...]) -> dict[str, int]:
    """{1C ref: CRM company ID} of companies already carrying one of `refs` as ORIGIN_ID (lowest ID wins)."""
    found: dict[str, int] = {}
    for start in range(0, len(refs), CHUNK):
        records = client.export_all(
            "crm.company.list",
            select=["ID", "ORIGINATOR_ID", "ORIGIN_ID"],
            filter={"@ORIGIN_ID": refs[start : start + CHUNK], "@ORIGINATOR_ID": list(originators)},
        )
        for rec in sorted(records, key=lambda r: int(r["ID"])):
            found.setdefault(str(rec["ORIGIN_ID"]), int(rec["ID"]))
    return found


def fetch_companies(client: Bitrix24Client, company_ids: list[int]) -> dict[int, CrmCompany]:
    """Current state (fields, multifields, requisite) of a few companies, read from the portal."""
    companies, requisites = [], []
    for start in range(0, len(company_ids), CHUNK):
        chunk = company_ids[start : start + CHUNK]
        companies += client.export_all(
            "crm.company.list",
            filter={"@ID": chunk},
            select=["ID", "TITLE", "ORIGINATOR_ID", "ORIGIN_ID", "EMAIL", "PHONE"],
        )
        requisites += client.export_all(
            "crm.requisite.list", filter={"ENTITY_TYPE_ID": 4, "@ENTITY_ID": chunk}, select=["*"]
        )
    return crm_companies_by_id(companies, requisites) if company_ids else {}


def combine(key: str, operation: str, parts: list[RowOutcome]) -> RowOutcome:
    """One row's outcome from its calls (company, requisite): failed when any part failed."""
    bad = [p for p in parts if p.status != Status.OK]
    if bad:
        return RowOutcome(
            key,
            operation,
            Status.FAILED,
            error="; ".join(p.error or "" for p in bad)[:500],
            error_class=bad[0].error_class,
            attempts=max(p.attempts for p in parts),
        )
    return RowOutcome(key, operation, Status.OK, attempts=max((p.attempts for p in parts), default=1))


def write_companies(
    client: Bitrix24Client, todo: pd.DataFrame, link: CompanyLink
) -> tuple[list[RowOutcome], dict[str, str]]:
    """Write the add/update rows of the 1C -> CRM plan; returns the outcomes and {1C ref: company ID}."""
    if todo.empty:
        return [], {}
    if link.onec_ref_field:  # the portal ignores writes to a missing user field: create it first
        ensure_userfields(client, "company", [UserField(link.onec_ref_field, "string", "Ссылка 1С")])
    presets = requisite_presets(client)
    rows = {r["key"]: r for r in todo.to_dict("records")}
    company_ids = {k: int(r["company_id"]) for k, r in rows.items() if not pd.isna(r["company_id"])}
    # Idempotency: a company this product (or a crashed earlier run) already made is found by ORIGIN_ID and
    # planned again against what it holds now.
    adds = [k for k, r in rows.items() if r["operation"] == Operation.ADD]
    existing = find_linked_companies(client, adds, link.originators) if adds else {}
    found = fetch_companies(client, sorted(set(existing.values())))
    for key, company_id in existing.items():
        write = crm_company_writes(
            desired_from_plan_row(rows[key]),
            found.get(company_id),
            presets,
            originator_id=link.originator_id,
            link_originators=link.link_originators,
            onec_ref_field=link.onec_ref_field,
        )
        columns = crm_write_columns(write)
        rows[key] = {
            **rows[key],
            **{k: columns[k] for k in ("operation", "company_fields", "requisite_id", "requisite_fields")},
        }
        company_ids[key] = company_id
    parts: dict[str, list[RowOutcome]] = {k: [] for k in rows}
    new = [
        WriteCommand(
            k,
            "crm.company.add",
            {"fields": json.loads(r["company_fields"]), "params": {"REGISTER_SONET_EVENT": "N"}},
            Operation.ADD,
        )
        for k, r in rows.items()
        if r["operation"] == Operation.ADD
    ]
    for outcome in apply_commands(client, new):
        parts[outcome.key].append(outcome)
        if outcome.status == Status.OK:
            company_ids[outcome.key] = int(outcome.result)
    for outcome in apply_commands(client, _updates_and_requisites(rows, company_ids)):
        parts[outcome.key.split("|")[0]].append(outcome)
    outcomes = []
    for key, row_parts in parts.items():
        operation = rows[key]["operation"]
        if row_parts:
            outcomes.append(combine(key, Operation.UPDATE if operation == Operation.NOOP else operation, row_parts))
        elif operation == Operation.NOOP:  # made by an earlier run and already as planned: nothing sent
            outcomes.append(RowOutcome(key, Operation.NOOP, Status.OK))
    return outcomes, {k: str(v) for k, v in company_ids.items()}


def _updates_and_requisites(rows: dict[str, dict], company_ids: dict[str, int]) -> list[WriteCommand]:
    """The second wave: company updates and requisite adds/updates of every row whose company exists."""
    commands = []
    for key, r in rows.items():
        if key not in company_ids:
            continue
        company_fields = json.loads(r["company_fields"] or "{}")
        requisite_fields = json.loads(r["requisite_fields"] or "{}")
        if r["operation"] == Operation.UPDATE and company_fields:
            commands.append(
                WriteCommand(f"{key}|company", "crm.company.update", {"id": company_ids[key], "fields": company_fields})
            )
        if requisite_fields:
            if r["requisite_id"] is None or pd.isna(r["requisite_id"]):
                fields = {**requisite_fields, "ENTITY_ID": company_ids[key]}
                commands.append(
                    WriteCommand(f"{key}|requisite", "crm.requisite.add", {"fields": fields}, Operation.ADD)
                )
            else:
                commands.append(
                    WriteCommand(
                        f"{key}|requisite",
                        "crm.requisite.update",
                        {"id": int(r["requisite_id"]), "fields": requisite_fields},
                    )
                )
    return commands
