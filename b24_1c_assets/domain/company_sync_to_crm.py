"""1C -> CRM companies (pure): what to write into the CRM from 1C, and the plan of those writes.

Every 1C counterparty in `client_master.clients` (matched or `only_1c`) has a *desired* CRM company: title,
requisite (INN/KPP/OGRN under the legal-entity or ИП preset) and e-mails/phones from the 1C contact
information. `crm_company_writes` turns desired vs current into the calls to make, following field
ownership: 1C-owned requisite fields are overwritten, shared fields (title, contacts) only filled / unioned,
CRM-owned fields never touched. Multifield items are sent without an ID only when the company does not have
that value yet (Bitrix24 appends every ID-less item). `crm_company_plan` makes the stored plan.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from b24_1c_assets.domain.company_sync import (
    IP,
    IP_NAME_FIELDS,
    LEGAL,
    PRESET_NAMES,
    CompanyLink,
    CompanyPlan,
    CrmCompany,
    Presets,
    clean_text,
    email_key,
    is_blank,
    missing_items,
    onec_contacts,
    phone_key,
    plan_json,
)
from b24_1c_assets.domain.normalize import normalize_inn, normalize_kpp, normalize_ogrn
from b24_1c_assets.domain.ownership import FieldOwnership, default_ownership
from b24_1c_assets.domain.push_plan import Operation, plan_updates

KIND_BY_1C = {"ЮридическоеЛицо": LEGAL, "ИндивидуальныйПредприниматель": IP}
# Product field name -> (CRM place, CRM field). Names follow settings/field_ownership.toml.
CRM_FIELD = {
    "name": ("company", "TITLE"),
    "emails": ("company", "EMAIL"),
    "phones": ("company", "PHONE"),
    "legal_name": ("requisite", "RQ_COMPANY_NAME"),
    "full_name": ("requisite", "RQ_COMPANY_FULL_NAME"),
    "inn": ("requisite", "RQ_INN"),
    "kpp": ("requisite", "RQ_KPP"),
    "ogrn": ("requisite", "RQ_OGRN"),
}
DESIRED_FIELDS = ["name", "full_name", "inn", "kpp", "ogrn", "kind", "emails", "phones"]
CRM_PLAN_COLUMNS = [
    "key",
    "company_id",
    "operation",
    "reason",
    "changed_fields",
    "before",
    "after",
    "payload_hash",
    "company_fields",
    "requisite_id",
    "requisite_fields",
]


def desired_crm_companies(clients: pd.DataFrame, counterparties: pd.DataFrame) -> pd.DataFrame:
    """One row per 1C counterparty that should exist in the CRM: key (= 1C Ref_Key), company_id (None for
    `only_1c`), match_rule and the 1C values in DESIRED_FIELDS (emails/phones as lists).

    Counterparties marked for deletion and catalog groups are left out.
    """
    columns = ["key", "company_id", "match_rule", *DESIRED_FIELDS]
    if clients.empty or counterparties.empty:
        return pd.DataFrame(columns=columns)
    linked = clients[clients["onec_ref"].notna()][["onec_ref", "company_id", "match_rule"]]
    raw = counterparties.set_index("Ref_Key")
    rows = []
    for ref, company_id, rule in linked.itertuples(index=False):
        if ref not in raw.index:
            continue
        cp = raw.loc[ref]
        if isinstance(cp, pd.DataFrame):
            cp = cp.iloc[0]
        if bool(cp.get("DeletionMark")) is True or bool(cp.get("IsFolder")) is True:
            continue
        emails, phones = onec_contacts(cp.get("КонтактнаяИнформация"), cp.get("email"), cp.get("phone"))
        kind = KIND_BY_1C.get(clean_text(cp.get("ВидКонтрагента")) or "") or (
            IP if len(clean_text(cp.get("ИНН")) or "") == 12 else LEGAL
        )
        rows.append(
            {
                "key": str(ref),
                "company_id": None if pd.isna(company_id) else int(company_id),
                "match_rule": rule,
                "name": clean_text(cp.get("Description")),
                "full_name": clean_text(cp.get("НаименованиеПолное")) or clean_text(cp.get("Description")),
                "inn": _valid(normalize_inn(cp.get("ИНН"))),
                "kpp": _valid(normalize_kpp(cp.get("КПП"))),
                "ogrn": _valid(normalize_ogrn(cp.get("РегистрационныйНомер"))),
                "kind": kind,
                "emails": emails,
                "phones": phones,
            }
        )
    return pd.DataFrame(rows, columns=columns)


def _valid(n) -> str | None:
    # An invalid identifier from 1C is not copied into the CRM (it would overwrite a good one).
    return n.value if n.valid else None


@dataclass
class CompanyWrite:
    """The planned CRM calls for one 1C counterparty (key = its Ref_Key)."""

    key: str
    operation: Operation  # ADD | UPDATE | NOOP
    company_id: int | None
    company_fields: dict = field(default_factory=dict)  # crm.company.add/update fields
    requisite_id: int | None = None
    requisite_fields: dict = field(default_factory=dict)  # crm.requisite.add/update fields
    changed_fields: list[str] = field(default_factory=list)


_IP_FORMS = re.compile(
    r"^(?:индивидуальный\s+предприниматель|ип)\s+|\s+(?:ип|индивидуальный\s+предприниматель)$", re.IGNORECASE
)
_NAME_WORD = re.compile(r"^[A-Za-zА-Яа-яЁё][A-Za-zА-Яа-яЁё'-]*$")


def person_name(text: Any) -> dict[str, str] | None:
    """An entrepreneur's name as the ИП preset's fields: "ИП Иванов Иван Иванович" -> RQ_LAST_NAME Иванов,
    RQ_FIRST_NAME Иван, RQ_SECOND_NAME Иванович (no patronymic: two words). None when it is no person's name
    (initials, quotes, a trade name)."""
    if is_blank(text):
        return None
    words = _IP_FORMS.sub("", " ".join(str(text).split())).split()
    if len(words) not in (2, 3) or not all(_NAME_WORD.match(w) and len(w.rstrip(".")) > 1 for w in words):
        return None
    return dict(zip(IP_NAME_FIELDS, words))


def _ip_name_values(desired: Mapping[str, Any], presets: Presets | None) -> dict[str, Any]:
    shown = presets.ip_fields if presets is not None and presets.ip_fields else frozenset(IP_NAME_FIELDS)
    name = person_name(desired.get("full_name")) or person_name(desired.get("name"))
    if name and all(f in shown for f in IP_NAME_FIELDS[:2]):
        return {k: v for k, v in name.items() if k in shown}
    return {"RQ_NAME": desired.get("full_name") or desired.get("name")}  # stored, at least


def _requisite_values(desired: Mapping[str, Any], presets: Presets | None = None) -> dict[str, Any]:
    legal = desired["kind"] != IP
    values = {
        "RQ_INN": desired.get("inn"),
        "RQ_KPP": desired.get("kpp") if legal else None,
        "RQ_OGRN": desired.get("ogrn") if legal else None,
        "RQ_OGRNIP": None if legal else desired.get("ogrn"),
    }
    if legal:
        values.update(RQ_COMPANY_NAME=desired.get("name"), RQ_COMPANY_FULL_NAME=desired.get("full_name"))
    else:
        values.update(_ip_name_values(desired, presets))
    return {k: v for k, v in values.items() if not is_blank(v)}


def _new_requisite(desired: Mapping[str, Any], presets: Presets) -> dict:
    kind = desired["kind"]
    return {
        "ENTITY_TYPE_ID": 4,
        "PRESET_ID": presets.for_kind(kind),
        "NAME": PRESET_NAMES.get(kind, "Организация"),
        "XML_ID": desired["key"],
        "ACTIVE": "Y",
        **_requisite_values(desired, presets),
    }


def _multifield_items(values: list[str]) -> list[dict]:
    return [{"VALUE": v, "VALUE_TYPE": "WORK"} for v in values]


def crm_company_writes(
    desired: Mapping[str, Any],
    current: CrmCompany | None,
    presets: Presets,
    *,
    originator_id: str,
    link_originators: Iterable[str] = (),
    onec_ref_field: str | None = None,
    ownership: FieldOwnership | None = None,
) -> CompanyWrite:
    """What to send so the CRM company of one 1C counterparty holds what 1C owns.

    `current` None -> `add` (company with link and contacts, then its requisite). Otherwise only the
    writes field ownership allows: 1C-owned requisite fields (INN, KPP, OGRN, names) overwrite, the title
    is filled if empty, e-mails/phones the company lacks are appended; the link (ORIGINATOR_ID/ORIGIN_ID)
    is written when the company carries none of `link_originators`.
    """
    ownership = ownership or default_ownership()
    key = desired["key"]
    if current is None:
        fields = {
            "TITLE": desired.get("name") or desired.get("full_name"),
            "COMPANY_TYPE": "CUSTOMER",
            "OPENED": "Y",
            "ORIGINATOR_ID": originator_id,
            "ORIGIN_ID": key,
        }
        if onec_ref_field:
            fields[onec_ref_field] = key
        if desired.get("emails"):
            fields["EMAIL"] = _multifield_items(desired["emails"])
        if desired.get("phones"):
            fields["PHONE"] = _multifield_items(desired["phones"])
        return CompanyWrite(
            key,
            Operation.ADD,
            None,
            fields,
            None,
            _new_requisite(desired, presets),
            changed_fields=["company", "requisite"],
        )

    company_fields: dict[str, Any] = {}
    changed: list[str] = []
    linked = {o.lower() for o in (*link_originators, originator_id)}
    if not current.origin_id or (current.originator_id or "").lower() not in linked:
        if current.originator_id and (current.origin_id or "").strip().lower() == str(key).lower():
            # An earlier connector's link to this very record (id_link_foreign): its ORIGINATOR_ID stays, so
            # that connector keeps working; only our own user field is filled.
            if onec_ref_field:
                company_fields[onec_ref_field] = key
                changed.append("link")
        else:
            company_fields.update(ORIGINATOR_ID=originator_id, ORIGIN_ID=key)
            if onec_ref_field:
                company_fields[onec_ref_field] = key
            changed.append("link")
    if ownership.plan_field_writes("crm", {"name": current.title}, {"name": desired.get("name")}):
        company_fields["TITLE"] = desired["name"]
        changed.append("name")
    for name, crm_name, have, keyfn in (
        ("emails", "EMAIL", current.emails, email_key),
        ("phones", "PHONE", current.phones, phone_key),
    ):
        if (
            ownership.rule(name).rule in ("union", "fill_if_empty", "owner_wins")
            and ownership.rule(name).owner != "crm"
        ):
            new = missing_items(have, desired.get(name) or [], keyfn)
            if ownership.rule(name).rule == "fill_if_empty" and have:
                new = []
            if new:
                company_fields[crm_name] = _multifield_items(new)  # no ID: appended, never replaced
                changed.append(name)

    requisite_fields: dict[str, Any] = {}
    if current.requisite_id is None:
        if desired.get("inn"):
            requisite_fields = _new_requisite(desired, presets)
            changed.append("requisite")
    else:
        rq = current.requisite
        ogrn_field = "RQ_OGRNIP" if current.preset_id == presets.ip or desired["kind"] == IP else "RQ_OGRN"
        now = {
            "inn": rq.get("RQ_INN"),
            "kpp": rq.get("RQ_KPP"),
            "ogrn": rq.get(ogrn_field),
            "legal_name": rq.get("RQ_COMPANY_NAME"),
            "full_name": rq.get("RQ_COMPANY_FULL_NAME"),
        }
        incoming = {
            "inn": desired.get("inn"),
            "kpp": desired.get("kpp") if desired["kind"] != IP else None,
            "ogrn": desired.get("ogrn"),
        }
        if desired["kind"] != IP:
            incoming.update(legal_name=desired.get("name"), full_name=desired.get("full_name"))
        writes = ownership.plan_field_writes("crm", now, incoming)
        for name, value in writes.items():
            target = ogrn_field if name == "ogrn" else CRM_FIELD[name][1]
            requisite_fields[target] = value
            changed.append(name)
        if (
            desired["kind"] == IP
            and current.preset_id == presets.ip
            and all(is_blank(rq.get(f)) for f in IP_NAME_FIELDS)
        ):
            # an ИП requisite without the entrepreneur's name on the card (e.g. only RQ_NAME): fill it
            names = {k: v for k, v in _ip_name_values(desired, presets).items() if k in IP_NAME_FIELDS}
            if names:
                requisite_fields.update(names)
                changed.append("person_name")
    operation = Operation.UPDATE if company_fields or requisite_fields else Operation.NOOP
    return CompanyWrite(
        key, operation, current.company_id, company_fields, current.requisite_id, requisite_fields, changed
    )


def desired_payload(row: Mapping[str, Any]) -> dict:
    """The 1C values of a desired row, flattened for `push_plan.plan_updates` (lists joined)."""
    return {f: ",".join(row[f]) if isinstance(row.get(f), list) else row.get(f) for f in DESIRED_FIELDS}


# -- the plan ------------------------------------------------------------------------------------------


def crm_company_plan(
    clients: pd.DataFrame,
    counterparties: pd.DataFrame,
    current: Mapping[int, CrmCompany],
    presets: Presets,
    link: CompanyLink,
    *,
    last_pushed: pd.DataFrame,
    failed_keys: set[str],
    held: Mapping[str, str],
) -> CompanyPlan:
    """The 1C -> CRM plan, one row per 1C counterparty (CRM_PLAN_COLUMNS, key = Ref_Key): add, update or
    noop by what changed since the last successful push (`plan_updates`), the CRM calls from
    `crm_company_writes` as JSON; 1C-only clients in `held` get a `held_back` row with the reason instead."""
    desired = desired_crm_companies(clients, counterparties)
    if held and not desired.empty:
        desired = desired[~(desired["company_id"].isna() & desired["key"].isin(held.keys()))]
    flat = pd.DataFrame(
        [{"key": r["key"], **desired_payload(r)} for r in desired.to_dict("records")], columns=["key", *DESIRED_FIELDS]
    )
    base = plan_updates(flat, last_pushed, failed_keys, DESIRED_FIELDS)
    by_key = desired.set_index("key").to_dict("index") if not desired.empty else {}
    rows = []
    for planned in base.to_dict("records"):
        want = {"key": planned["key"], **by_key[planned["key"]]}
        row = {
            **planned,
            "company_id": want["company_id"],
            "company_fields": None,
            "requisite_id": None,
            "requisite_fields": None,
        }
        if planned["operation"] != Operation.NOOP:
            company = current.get(want["company_id"]) if want["company_id"] is not None else None
            row.update(
                crm_write_columns(
                    crm_company_writes(
                        want,
                        company,
                        presets,
                        originator_id=link.originator_id,
                        link_originators=link.link_originators,
                        onec_ref_field=link.onec_ref_field,
                    )
                )
            )
        rows.append(row)
    rows += [{"key": ref, "operation": Operation.HOLD_BACK, "reason": why} for ref, why in sorted(held.items())]
    plan = pd.DataFrame(rows, columns=CRM_PLAN_COLUMNS).astype({"company_id": "Int64", "requisite_id": "Int64"})
    judged = plan[plan["operation"] != Operation.HOLD_BACK]
    # An add is judged as the plan's update it came from: new companies are an initial load, not a change.
    guard_view = judged.assign(operation=judged["operation"].replace({Operation.ADD: Operation.UPDATE}))
    writes = int(plan["operation"].isin([Operation.ADD, Operation.UPDATE]).sum())
    return CompanyPlan(plan, writes, guard_view, int(plan["company_id"].notna().sum()))


def crm_write_columns(write: CompanyWrite) -> dict[str, Any]:
    """A plan row's columns for one `CompanyWrite` (what `sync` reads back to make the calls)."""
    columns = {
        "operation": write.operation,
        "changed_fields": ",".join(write.changed_fields),
        "company_fields": plan_json(write.company_fields),
        "requisite_id": write.requisite_id,
        "requisite_fields": plan_json(write.requisite_fields),
    }
    if write.operation == Operation.NOOP:
        columns["reason"] = "in sync"
    return columns


def desired_from_plan_row(row: Mapping[str, Any]) -> dict:
    """The desired company of a stored plan row (its `after` JSON, contacts back as lists)."""
    after = json.loads(row["after"])
    return {
        **after,
        "key": row["key"],
        "emails": [v for v in (after.get("emails") or "").split(",") if v],
        "phones": [v for v in (after.get("phones") or "").split(",") if v],
    }
