"""Companies both ways (pure): what both directions of the company sync share.

The sync itself is in two modules, one per direction: `company_sync_to_crm` (1C counterparties -> CRM
companies with requisite and contacts) and `company_sync_to_onec` (valid CRM-only companies -> 1C
counterparties). Here: the requisite presets, contact values compared normalised, which 1C-only clients have
a CRM company made for them or must wait for a person (read by the client master too), the CRM company as the
planners read it, how a company carries its 1C link, and the plan both directions hand to the guard.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from b24_1c_assets.domain.client_sources import multifield_values
from b24_1c_assets.domain.normalize import normalize_email, normalize_phone

FLOW_TO_CRM = "company_sync.to_crm"  # journal flow of the 1C → CRM company push
FLOW_TO_1C = "company_sync.to_1c"  # journal flow of the CRM → 1C counterparty push
LEGAL, IP = "legal", "ip"
PRESET_XML_IDS = {LEGAL: "#CRM_REQUISITE_PRESET_DEF_RU_COMPANY#", IP: "#CRM_REQUISITE_PRESET_DEF_RU_INDIVIDUAL#"}
PRESET_NAMES = {LEGAL: "Организация", IP: "ИП"}
# The RU individual (ИП) preset shows the entrepreneur as three fields; RQ_NAME is stored but not on the card
# (`../shared/reference/bitrix24-rest.md`, verified corrections; read per portal with
# `crm.requisite.preset.field.list`).
IP_NAME_FIELDS = ("RQ_LAST_NAME", "RQ_FIRST_NAME", "RQ_SECOND_NAME")


def is_blank(value: Any) -> bool:
    """None, NaN or whitespace only: a value the CRM or 1C does not really hold."""
    return (
        value is None or (isinstance(value, float) and pd.isna(value)) or (isinstance(value, str) and not value.strip())
    )


def clean_text(value: Any) -> str | None:
    """The value as trimmed text, None when blank."""
    return None if is_blank(value) else str(value).strip()


# -- presets ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Presets:
    """Requisite preset IDs of the portal (from `crm.requisite.preset.list`) and the fields the ИП preset
    shows (`crm.requisite.preset.field.list`; empty = not read: the RU individual preset's standard set)."""

    legal: int
    ip: int
    ip_fields: frozenset = frozenset()

    def for_kind(self, kind: str) -> int:
        return self.ip if kind == IP else self.legal


def pick_presets(presets: Iterable[Mapping[str, Any]]) -> Presets:
    """The legal-entity and ИП presets: by the standard XML_ID, else by the standard name."""
    active = [p for p in presets if str(p.get("ACTIVE", "Y")) != "N"]
    found = {}
    for kind in (LEGAL, IP):
        match = [p for p in active if p.get("XML_ID") == PRESET_XML_IDS[kind]] or [
            p for p in active if str(p.get("NAME", "")).strip() == PRESET_NAMES[kind]
        ]
        if not match:
            raise ValueError(
                f"crm.requisite.preset.list has no active preset for {PRESET_NAMES[kind]!r} "
                f"(XML_ID {PRESET_XML_IDS[kind]})"
            )
        found[kind] = int(sorted(match, key=lambda p: int(p["ID"]))[0]["ID"])
    return Presets(legal=found[LEGAL], ip=found[IP])


def with_ip_fields(presets: Presets, fields: Iterable[Mapping[str, Any]]) -> Presets:
    """`presets` with the ИП preset's shown fields from `crm.requisite.preset.field.list {preset: {ID}}`."""
    return Presets(presets.legal, presets.ip, frozenset(str(f.get("FIELD_NAME")) for f in fields))


# -- contacts -----------------------------------------------------------------------------------------


def email_key(value: str) -> str:
    """An e-mail as compared (normalised when valid, else lowercased)."""
    n = normalize_email(value)
    return n.value if n.valid else value.strip().lower()


def phone_key(value: str) -> str:
    """A phone as compared (normalised when valid, else its digits)."""
    n = normalize_phone(value)
    return n.value if n.valid else "".join(ch for ch in value if ch.isdigit())


def onec_contacts(contact_info: Any, email: Any = None, phone: Any = None) -> tuple[list[str], list[str]]:
    """Every e-mail and phone of a 1C КонтактнаяИнформация section (JSON text or list), first-seen order."""
    rows = json.loads(contact_info) if isinstance(contact_info, str) and contact_info.strip() else contact_info
    emails, phones = [], []
    for row in rows if isinstance(rows, list) else []:
        kind = row.get("Тип")
        if kind == "АдресЭлектроннойПочты":
            emails.append(clean_text(row.get("АдресЭП")) or clean_text(row.get("Представление")))
        elif kind == "Телефон":
            phones.append(clean_text(row.get("НомерТелефона")) or clean_text(row.get("Представление")))
    emails += [clean_text(email)]
    phones += [clean_text(phone)]
    return _distinct(emails, email_key), _distinct(phones, phone_key)


def _distinct(values: Iterable[str | None], key) -> list[str]:
    seen, out = set(), []
    for value in values:
        if value and key(value) not in seen:
            seen.add(key(value))
            out.append(value)
    return out


def missing_items(current: list[str], incoming: list[str], key) -> list[str]:
    """Incoming multifield values the record lacks (compared normalised): the only ones to append."""
    have = {key(v) for v in current}
    return [v for v in _distinct(incoming, key) if key(v) not in have]


# -- which clients have, or may get, a CRM company made from 1C ----------------------------------------

CREATED_FROM_1C = "created_from_1c"  # match rule of a 1C-only client whose CRM company this product made


def link_created_companies(clients: pd.DataFrame, pushed: pd.DataFrame) -> pd.DataFrame:
    """`clients` with the CRM companies made since matching filled in (1C → CRM company sync).

    `pushed` is the company push's last successful write per 1C ref (`key`, `target_id`). Matching ran before
    those companies existed; without this, flows later in the same run (invoices, debts) would treat their
    clients as having no CRM company until the next run re-matched them."""
    if clients.empty or pushed.empty or "company_id" not in clients:
        return clients
    made = {str(k): int(t) for k, t in zip(pushed["key"], pushed["target_id"]) if str(t or "").isdigit()}
    out = clients.copy()
    todo = out["company_id"].isna() & out["onec_ref"].astype(str).isin(made.keys())
    if todo.any():
        out["company_id"] = out["company_id"].astype("Int64")
        out.loc[todo, "company_id"] = out.loc[todo, "onec_ref"].astype(str).map(made).astype("Int64")
        out.loc[todo, "match_rule"] = CREATED_FROM_1C
    return out


def held_back_adds(
    clients: pd.DataFrame, duplicate_groups: pd.DataFrame, candidates: pd.DataFrame, created: Iterable[str] = ()
) -> dict[str, str]:
    """1C-only clients that must not become new CRM companies yet, by 1C ref, with the reason.

    A new company for a client that is still a match candidate (its INN or contacts already in the CRM), or
    for one of several 1C records of the same INN/KPP, would put a duplicate into the CRM: the review queue
    and the cleanup in 1C decide first. `created`: refs a reviewer sent to "create in CRM" - never held."""
    if clients.empty:
        return {}
    only_1c = clients[clients["onec_ref"].notna() & clients["company_id"].isna()]
    refs = set(only_1c["onec_ref"].astype(str)) - {str(r) for r in created}
    held: dict[str, str] = {}
    if not candidates.empty:
        for ref, company_id, reason in candidates[["onec_ref", "company_id", "reason"]].itertuples(index=False):
            if str(ref) in refs and str(ref) not in held:
                held[str(ref)] = f"in review: candidate for CRM company {company_id} ({reason})"
    if not duplicate_groups.empty:
        in_1c = duplicate_groups[duplicate_groups["system"] == "1c"]
        for group, ref in in_1c[["group_id", "record_id"]].itertuples(index=False):
            if str(ref) in refs and str(ref) not in held:
                held[str(ref)] = f"duplicate in 1C ({group}): clean up in 1C first"
    return held


# -- the CRM company, its link, a plan ------------------------------------------------------------


@dataclass
class CrmCompany:
    """A CRM company as the planner needs it: title, link, multifields (ID + VALUE), its requisite."""

    company_id: int
    title: str | None = None
    originator_id: str | None = None
    origin_id: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    requisite_id: int | None = None
    preset_id: int | None = None
    requisite: dict = field(default_factory=dict)  # RQ_* as stored


def crm_companies_by_id(
    companies: pd.DataFrame | list[dict], requisites: pd.DataFrame | list[dict]
) -> dict[int, CrmCompany]:
    """`bitrix24.companies` + `bitrix24.requisites` (frames or REST records) -> {company_id: CrmCompany}.

    The requisite that counts is the lowest-ID active company requisite (as in client matching).
    """
    companies = pd.DataFrame(companies) if not isinstance(companies, pd.DataFrame) else companies
    requisites = pd.DataFrame(requisites) if not isinstance(requisites, pd.DataFrame) else requisites
    out: dict[int, CrmCompany] = {}
    for rec in companies.to_dict("records"):
        cid = int(rec["ID"])
        out[cid] = CrmCompany(
            cid,
            clean_text(rec.get("TITLE")),
            clean_text(rec.get("ORIGINATOR_ID")),
            clean_text(rec.get("ORIGIN_ID")),
            multifield_values(rec.get("EMAIL")),
            multifield_values(rec.get("PHONE")),
        )
    if not requisites.empty:
        rq = requisites[requisites["ENTITY_TYPE_ID"].astype(str) == "4"]
        if "ACTIVE" in rq.columns:
            rq = rq[rq["ACTIVE"].fillna("Y").astype(str) != "N"]
        for rec in sorted(rq.to_dict("records"), key=lambda r: int(r["ID"])):
            company = out.get(int(rec["ENTITY_ID"]))
            if company is not None and company.requisite_id is None:
                company.requisite_id = int(rec["ID"])
                company.preset_id = None if is_blank(rec.get("PRESET_ID")) else int(rec["PRESET_ID"])
                company.requisite = {k: clean_text(v) for k, v in rec.items() if str(k).startswith("RQ_")}
    return out


@dataclass(frozen=True)
class CompanyLink:
    """How a CRM company carries its 1C link (settings/client_master.toml): the ORIGINATOR_ID we write, the
    ones an earlier integration wrote, and our user field holding the Ref_Key (None: not used)."""

    originator_id: str
    link_originators: tuple[str, ...] = ()
    onec_ref_field: str | None = None

    @property
    def originators(self) -> tuple[str, ...]:
        return (self.originator_id, *self.link_originators)

    def fields(self, ref: str) -> dict[str, str]:
        """The company fields that link it to the 1C counterparty `ref`."""
        return {
            "ORIGINATOR_ID": self.originator_id,
            "ORIGIN_ID": ref,
            **({self.onec_ref_field: ref} if self.onec_ref_field else {}),
        }


def plan_json(value: Any) -> str:
    """A plan column's JSON text: keys sorted, Cyrillic kept readable."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@dataclass(frozen=True)
class CompanyPlan:
    """A stored plan, the number of its rows that write, the rows the guard judges (in `plan_updates`'
    update/noop terms) and the population the guard's shares are taken of."""

    rows: pd.DataFrame
    writes: int
    guard_view: pd.DataFrame
    population: int
