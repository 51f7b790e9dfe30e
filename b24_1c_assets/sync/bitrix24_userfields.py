"""Create the CRM user fields a flow writes, once, before writing them.

The portal silently ignores writes to a user field that does not exist, so a flow that skipped this
would report success and change nothing.

`crm.<entity>.userfield.list` answers 50 fields per page (`api-reference/crm/companies/userfields/
crm-company-userfield-list.md`: "returns a single page (max 50 records)"); on a portal with more fields a
first-page read makes ours look missing and the next `userfield.add` fails on a name that exists. So each field
is looked up by name: `filter: {FIELD_NAME: ...}`, one command per field in one batch call. Fields of crm.item
types (smart invoices) live in `userfieldconfig.*` (`entityId` CRM_SMART_INVOICE, names UF_CRM_SMART_INVOICE_...,
scope `userfieldconfig`).
"""

from __future__ import annotations

from dataclasses import dataclass

from b24_1c_assets.bitrix24 import Bitrix24Client, Bitrix24Error
from b24_1c_assets.sync.bitrix24_reads import batch_read

SMART_INVOICE_UF_ENTITY = "CRM_SMART_INVOICE"


@dataclass(frozen=True)
class UserField:
    name: str  # full name, e.g. UF_CRM_DEBT_SUM
    type: str  # string, integer, double, boolean, date, datetime, money ...
    label: str  # shown in the CRM form and list

    def add_params(self) -> dict:
        short = self.name.removeprefix("UF_CRM_")
        return {
            "fields": {
                "FIELD_NAME": short,
                "USER_TYPE_ID": self.type,
                "XML_ID": short,
                "EDIT_FORM_LABEL": self.label,
                "LIST_COLUMN_LABEL": self.label,
                "LIST_FILTER_LABEL": self.label,
            }
        }

    def config_params(self, entity_id: str) -> dict:
        return {
            "moduleId": "crm",
            "field": {
                "entityId": entity_id,
                "fieldName": self.name,
                "userTypeId": self.type,
                "xmlId": self.name,
                "editFormLabel": self.label,
            },
        }


def existing_userfields(client: Bitrix24Client, entity: str, names: list[str]) -> set[str]:
    """Which of `names` exist on `crm.<entity>.userfield`, each looked up by FIELD_NAME (not a first page)."""
    answers = batch_read(
        client,
        {f"f{i}": (f"crm.{entity}.userfield.list", {"filter": {"FIELD_NAME": name}}) for i, name in enumerate(names)},
    )
    return {
        row["FIELD_NAME"] for result in answers.values() for row in (result or []) if row.get("FIELD_NAME") in names
    }


def _ensure(client: Bitrix24Client, fields: list[UserField], existing_names, add_command, rounds: int) -> list[str]:
    """Look the fields up, add the missing ones in one batch, repeat while an outcome is unknown or retryable."""
    created: list[str] = []
    for attempt in range(1, rounds + 1):
        existing = existing_names()
        missing = [f for f in fields if f.name not in existing]
        if not missing:
            break
        try:
            outcomes = client.batch({f.name: add_command(f) for f in missing})
        except Bitrix24Error as exc:
            # A 5xx or dropped answer leaves the add's outcome unknown: the next round looks the fields up again
            # instead of adding blindly (a field name can only exist once, so that is the lookup).
            if not exc.retryable or attempt == rounds:
                raise
            continue
        created += [f.name for f in missing if outcomes[f.name].ok]
        retry = [o for o in outcomes.values() if not o.ok and o.error.retryable]
        for outcome in outcomes.values():
            if not outcome.ok and (not outcome.error.retryable or attempt == rounds):
                outcome.unwrap()  # a field we cannot create must stop the flow: writes to it would vanish
        if not retry:
            break
    return created


def ensure_userfields(client: Bitrix24Client, entity: str, fields: list[UserField], *, rounds: int = 5) -> list[str]:
    """Add the missing ones of `fields` to `crm.<entity>.userfield`; returns the names created."""
    return _ensure(
        client,
        fields,
        lambda: existing_userfields(client, entity, [f.name for f in fields]),
        lambda f: (f"crm.{entity}.userfield.add", f.add_params()),
        rounds,
    )


def existing_item_userfields(client: Bitrix24Client, entity_id: str, fields: list[UserField]) -> set[str]:
    """Which of `fields` exist on a crm.item type (`userfieldconfig.list`, moduleId crm, by fieldName)."""
    answers = batch_read(
        client,
        {
            f"f{i}": (
                "userfieldconfig.list",
                {"moduleId": "crm", "filter": {"entityId": entity_id, "fieldName": f.name}},
            )
            for i, f in enumerate(fields)
        },
    )
    return {
        row.get("fieldName")
        for result in answers.values()
        for row in ((result or {}).get("fields") or [] if isinstance(result, dict) else [])
    }


def ensure_item_userfields(
    client: Bitrix24Client, entity_id: str, fields: list[UserField], *, rounds: int = 5
) -> list[str]:
    """The same for a crm.item type's fields through `userfieldconfig.list|add` (moduleId crm)."""
    return _ensure(
        client,
        fields,
        lambda: existing_item_userfields(client, entity_id, fields),
        lambda f: ("userfieldconfig.add", f.config_params(entity_id)),
        rounds,
    )
