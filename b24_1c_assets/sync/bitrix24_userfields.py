"""Create the CRM user fields a flow writes, once, before writing them.

The portal silently ignores writes to a user field that does not exist, so a flow that skipped this
would report success and change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from b24_1c_assets.bitrix24 import Bitrix24Client


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


def ensure_userfields(client: Bitrix24Client, entity: str, fields: list[UserField]) -> list[str]:
    """Add the missing ones of `fields` to `crm.<entity>.userfield`; returns the names created."""
    existing = {row["FIELD_NAME"] for row in client.call(f"crm.{entity}.userfield.list", {}) or []}
    missing = [f for f in fields if f.name not in existing]
    if missing:
        outcomes = client.batch({f.name: (f"crm.{entity}.userfield.add", f.add_params()) for f in missing})
        for name, outcome in outcomes.items():
            outcome.unwrap()  # a field we cannot create must stop the flow: writes to it would vanish
    return [f.name for f in missing]
