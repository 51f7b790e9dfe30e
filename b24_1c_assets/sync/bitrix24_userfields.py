"""Create the CRM user fields a flow writes, once, before writing them.

The portal silently ignores writes to a user field that does not exist, so a flow that skipped this
would report success and change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from b24_1c_assets.bitrix24 import Bitrix24Client, Bitrix24Error


@dataclass(frozen=True)
class UserField:
    name: str  # full name, e.g. UF_CRM_DEBT_SUM
    type: str  # string, integer, double, boolean, date, datetime, money ...
    label: str  # shown in the CRM form and list

    def add_params(self) -> dict:
        short = self.name.removeprefix("UF_CRM_")
        return {"fields": {"FIELD_NAME": short, "USER_TYPE_ID": self.type, "XML_ID": short,
                           "EDIT_FORM_LABEL": self.label, "LIST_COLUMN_LABEL": self.label,
                           "LIST_FILTER_LABEL": self.label}}


def ensure_userfields(client: Bitrix24Client, entity: str, fields: list[UserField], *, rounds: int = 5) -> list[str]:
    """Add the missing ones of `fields` to `crm.<entity>.userfield`; returns the names created."""
    created: list[str] = []
    for attempt in range(1, rounds + 1):
        existing = {row["FIELD_NAME"] for row in client.call(f"crm.{entity}.userfield.list", {}) or []}
        missing = [f for f in fields if f.name not in existing]
        if not missing:
            break
        try:
            outcomes = client.batch({f.name: (f"crm.{entity}.userfield.add", f.add_params()) for f in missing})
        except Bitrix24Error as exc:
            # A 5xx or dropped answer leaves the add's outcome unknown: the next round lists the fields again
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
