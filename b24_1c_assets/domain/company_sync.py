"""Companies both ways: what to write into the CRM from 1C, and which CRM companies may enter 1C (pure).

1C -> CRM: every 1C counterparty in `client_master.clients` (matched or `only_1c`) has a *desired* CRM
company: title, requisite (INN/KPP/OGRN under the legal-entity or ИП preset) and e-mails/phones from the
1C contact information. `crm_company_writes` turns desired vs current into the calls to make, following
field ownership: 1C-owned requisite fields are overwritten, shared fields (title, contacts) only filled /
unioned, CRM-owned fields never touched. Multifield items are sent without an ID only when the company
does not have that value yet (Bitrix24 appends every ID-less item).

CRM -> 1C: `only_crm` companies that are not duplicates, not in the review queue and not already linked to
1C become counterparty candidates; `validate_counterparty` checks them (INN/OGRN checksums, KPP, name,
kind vs INN length) before anything may be written, and `counterparty_body` keeps only allow-listed fields.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import pandas as pd

from b24_1c_assets.domain.client_sources import multifield_values
from b24_1c_assets.domain.matching import GUID_PATTERN
from b24_1c_assets.domain.normalize import normalize_email, normalize_inn, normalize_kpp, normalize_ogrn, normalize_phone
from b24_1c_assets.domain.ownership import FieldOwnership, default_ownership
from b24_1c_assets.domain.push_plan import Operation, Status, payload_hash, plan_updates

LEGAL, IP = "legal", "ip"
PRESET_XML_IDS = {LEGAL: "#CRM_REQUISITE_PRESET_DEF_RU_COMPANY#", IP: "#CRM_REQUISITE_PRESET_DEF_RU_INDIVIDUAL#"}
PRESET_NAMES = {LEGAL: "Организация", IP: "ИП"}
KIND_BY_1C = {"ЮридическоеЛицо": LEGAL, "ИндивидуальныйПредприниматель": IP}
# Product field name -> (CRM place, CRM field). Names follow settings/field_ownership.toml.
CRM_FIELD = {"name": ("company", "TITLE"), "emails": ("company", "EMAIL"), "phones": ("company", "PHONE"),
             "legal_name": ("requisite", "RQ_COMPANY_NAME"), "full_name": ("requisite", "RQ_COMPANY_FULL_NAME"),
             "inn": ("requisite", "RQ_INN"), "kpp": ("requisite", "RQ_KPP"), "ogrn": ("requisite", "RQ_OGRN")}
DESIRED_FIELDS = ["name", "full_name", "inn", "kpp", "ogrn", "kind", "emails", "phones"]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value)) or (isinstance(value, str)
                                                                             and not value.strip())


def _text(value: Any) -> str | None:
    return None if _blank(value) else str(value).strip()


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
        match = [p for p in active if p.get("XML_ID") == PRESET_XML_IDS[kind]] or \
                [p for p in active if str(p.get("NAME", "")).strip() == PRESET_NAMES[kind]]
        if not match:
            raise ValueError(f"crm.requisite.preset.list has no active preset for {PRESET_NAMES[kind]!r} "
                             f"(XML_ID {PRESET_XML_IDS[kind]})")
        found[kind] = int(sorted(match, key=lambda p: int(p["ID"]))[0]["ID"])
    return Presets(legal=found[LEGAL], ip=found[IP])


def with_ip_fields(presets: Presets, fields: Iterable[Mapping[str, Any]]) -> Presets:
    """`presets` with the ИП preset's shown fields from `crm.requisite.preset.field.list {preset: {ID}}`."""
    return Presets(presets.legal, presets.ip, frozenset(str(f.get("FIELD_NAME")) for f in fields))


# -- contacts -----------------------------------------------------------------------------------------

def _email_key(value: str) -> str:
    n = normalize_email(value)
    return n.value if n.valid else value.strip().lower()


def _phone_key(value: str) -> str:
    n = normalize_phone(value)
    return n.value if n.valid else "".join(ch for ch in value if ch.isdigit())


def onec_contacts(contact_info: Any, email: Any = None, phone: Any = None) -> tuple[list[str], list[str]]:
    """Every e-mail and phone of a 1C КонтактнаяИнформация section (JSON text or list), first-seen order."""
    rows = json.loads(contact_info) if isinstance(contact_info, str) and contact_info.strip() else contact_info
    emails, phones = [], []
    for row in rows if isinstance(rows, list) else []:
        kind = row.get("Тип")
        if kind == "АдресЭлектроннойПочты":
            emails.append(_text(row.get("АдресЭП")) or _text(row.get("Представление")))
        elif kind == "Телефон":
            phones.append(_text(row.get("НомерТелефона")) or _text(row.get("Представление")))
    emails += [_text(email)]
    phones += [_text(phone)]
    return _distinct(emails, _email_key), _distinct(phones, _phone_key)


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


# -- 1C -> CRM ----------------------------------------------------------------------------------------

FLOW_TO_CRM = "company_sync.to_crm"  # journal flow of the 1C → CRM company push
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


def held_back_adds(clients: pd.DataFrame, duplicate_groups: pd.DataFrame,
                   candidates: pd.DataFrame, created: Iterable[str] = ()) -> dict[str, str]:
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
        kind = KIND_BY_1C.get(_text(cp.get("ВидКонтрагента")) or "") or (
            IP if len(_text(cp.get("ИНН")) or "") == 12 else LEGAL)
        rows.append({"key": str(ref), "company_id": None if pd.isna(company_id) else int(company_id),
                     "match_rule": rule, "name": _text(cp.get("Description")),
                     "full_name": _text(cp.get("НаименованиеПолное")) or _text(cp.get("Description")),
                     "inn": _valid(normalize_inn(cp.get("ИНН"))), "kpp": _valid(normalize_kpp(cp.get("КПП"))),
                     "ogrn": _valid(normalize_ogrn(cp.get("РегистрационныйНомер"))), "kind": kind,
                     "emails": emails, "phones": phones})
    return pd.DataFrame(rows, columns=columns)


def _valid(n) -> str | None:
    # An invalid identifier from 1C is not copied into the CRM (it would overwrite a good one).
    return n.value if n.valid else None


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


def crm_companies_by_id(companies: pd.DataFrame | list[dict], requisites: pd.DataFrame | list[dict]
                        ) -> dict[int, CrmCompany]:
    """`bitrix24.companies` + `bitrix24.requisites` (frames or REST records) -> {company_id: CrmCompany}.

    The requisite that counts is the lowest-ID active company requisite (as in client matching).
    """
    companies = pd.DataFrame(companies) if not isinstance(companies, pd.DataFrame) else companies
    requisites = pd.DataFrame(requisites) if not isinstance(requisites, pd.DataFrame) else requisites
    out: dict[int, CrmCompany] = {}
    for rec in companies.to_dict("records"):
        cid = int(rec["ID"])
        out[cid] = CrmCompany(cid, _text(rec.get("TITLE")), _text(rec.get("ORIGINATOR_ID")),
                              _text(rec.get("ORIGIN_ID")), multifield_values(rec.get("EMAIL")),
                              multifield_values(rec.get("PHONE")))
    if not requisites.empty:
        rq = requisites[requisites["ENTITY_TYPE_ID"].astype(str) == "4"]
        if "ACTIVE" in rq.columns:
            rq = rq[rq["ACTIVE"].fillna("Y").astype(str) != "N"]
        for rec in sorted(rq.to_dict("records"), key=lambda r: int(r["ID"])):
            company = out.get(int(rec["ENTITY_ID"]))
            if company is not None and company.requisite_id is None:
                company.requisite_id = int(rec["ID"])
                company.preset_id = None if _blank(rec.get("PRESET_ID")) else int(rec["PRESET_ID"])
                company.requisite = {k: _text(v) for k, v in rec.items() if str(k).startswith("RQ_")}
    return out


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


# The RU individual (ИП) preset shows the entrepreneur as three fields; RQ_NAME is stored but not on the card
# (`../shared/reference/bitrix24-rest.md`, verified corrections; read per portal with
# `crm.requisite.preset.field.list`).
IP_NAME_FIELDS = ("RQ_LAST_NAME", "RQ_FIRST_NAME", "RQ_SECOND_NAME")
_IP_FORMS = re.compile(r"^(?:индивидуальный\s+предприниматель|ип)\s+|\s+(?:ип|индивидуальный\s+предприниматель)$",
                       re.IGNORECASE)
_NAME_WORD = re.compile(r"^[A-Za-zА-Яа-яЁё][A-Za-zА-Яа-яЁё'-]*$")


def person_name(text: Any) -> dict[str, str] | None:
    """An entrepreneur's name as the ИП preset's fields: "ИП Иванов Иван Иванович" -> RQ_LAST_NAME Иванов,
    RQ_FIRST_NAME Иван, RQ_SECOND_NAME Иванович (no patronymic: two words). None when it is no person's name
    (initials, quotes, a trade name)."""
    if _blank(text):
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
    values = {"RQ_INN": desired.get("inn"), "RQ_KPP": desired.get("kpp") if legal else None,
              "RQ_OGRN": desired.get("ogrn") if legal else None, "RQ_OGRNIP": None if legal else desired.get("ogrn")}
    if legal:
        values.update(RQ_COMPANY_NAME=desired.get("name"), RQ_COMPANY_FULL_NAME=desired.get("full_name"))
    else:
        values.update(_ip_name_values(desired, presets))
    return {k: v for k, v in values.items() if not _blank(v)}


def _new_requisite(desired: Mapping[str, Any], presets: Presets) -> dict:
    kind = desired["kind"]
    return {"ENTITY_TYPE_ID": 4, "PRESET_ID": presets.for_kind(kind), "NAME": PRESET_NAMES.get(kind, "Организация"),
            "XML_ID": desired["key"], "ACTIVE": "Y", **_requisite_values(desired, presets)}


def _multifield_items(values: list[str]) -> list[dict]:
    return [{"VALUE": v, "VALUE_TYPE": "WORK"} for v in values]


def crm_company_writes(desired: Mapping[str, Any], current: CrmCompany | None, presets: Presets, *,
                       originator_id: str, link_originators: Iterable[str] = (),
                       onec_ref_field: str | None = None,
                       ownership: FieldOwnership | None = None) -> CompanyWrite:
    """What to send so the CRM company of one 1C counterparty holds what 1C owns.

    `current` None -> `add` (company with link and contacts, then its requisite). Otherwise only the
    writes field ownership allows: 1C-owned requisite fields (INN, KPP, OGRN, names) overwrite, the title
    is filled if empty, e-mails/phones the company lacks are appended; the link (ORIGINATOR_ID/ORIGIN_ID)
    is written when the company carries none of `link_originators`.
    """
    ownership = ownership or default_ownership()
    key = desired["key"]
    if current is None:
        fields = {"TITLE": desired.get("name") or desired.get("full_name"), "COMPANY_TYPE": "CUSTOMER",
                  "OPENED": "Y", "ORIGINATOR_ID": originator_id, "ORIGIN_ID": key}
        if onec_ref_field:
            fields[onec_ref_field] = key
        if desired.get("emails"):
            fields["EMAIL"] = _multifield_items(desired["emails"])
        if desired.get("phones"):
            fields["PHONE"] = _multifield_items(desired["phones"])
        return CompanyWrite(key, Operation.ADD, None, fields, None, _new_requisite(desired, presets),
                            changed_fields=["company", "requisite"])

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
    for name, crm_name, have, keyfn in (("emails", "EMAIL", current.emails, _email_key),
                                        ("phones", "PHONE", current.phones, _phone_key)):
        if ownership.rule(name).rule in ("union", "fill_if_empty", "owner_wins") and \
                ownership.rule(name).owner != "crm":
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
        now = {"inn": rq.get("RQ_INN"), "kpp": rq.get("RQ_KPP"), "ogrn": rq.get(ogrn_field),
               "legal_name": rq.get("RQ_COMPANY_NAME"), "full_name": rq.get("RQ_COMPANY_FULL_NAME")}
        incoming = {"inn": desired.get("inn"), "kpp": desired.get("kpp") if desired["kind"] != IP else None,
                    "ogrn": desired.get("ogrn")}
        if desired["kind"] != IP:
            incoming.update(legal_name=desired.get("name"), full_name=desired.get("full_name"))
        writes = ownership.plan_field_writes("crm", now, incoming)
        for name, value in writes.items():
            target = ogrn_field if name == "ogrn" else CRM_FIELD[name][1]
            requisite_fields[target] = value
            changed.append(name)
        if desired["kind"] == IP and current.preset_id == presets.ip and all(_blank(rq.get(f)) for f in IP_NAME_FIELDS):
            # an ИП requisite without the entrepreneur's name on the card (e.g. only RQ_NAME): fill it
            names = {k: v for k, v in _ip_name_values(desired, presets).items() if k in IP_NAME_FIELDS}
            if names:
                requisite_fields.update(names)
                changed.append("person_name")
    operation = Operation.UPDATE if company_fields or requisite_fields else Operation.NOOP
    return CompanyWrite(key, operation, current.company_id, company_fields, current.requisite_id,
                        requisite_fields, changed)


def desired_payload(row: Mapping[str, Any]) -> dict:
    """The 1C values of a desired row, flattened for `push_plan.plan_updates` (lists joined)."""
    return {f: ",".join(row[f]) if isinstance(row.get(f), list) else row.get(f) for f in DESIRED_FIELDS}


# -- CRM -> 1C ----------------------------------------------------------------------------------------

RUSSIA_OKSM = "643"  # Catalog_СтраныМира.Code of Russia (ОКСМ)
KIND_TO_1C = {LEGAL: ("ЮридическоеЛицо", "ЮридическоеЛицо"), IP: ("ИндивидуальныйПредприниматель", "ФизическоеЛицо")}
CANDIDATE_COLUMNS = ["key", "company_id", "title", "full_name", "inn", "kpp", "ogrn", "preset_kind", "emails",
                     "phones"]


def counterparty_candidates(clients: pd.DataFrame, companies: dict[int, CrmCompany], presets: Presets | None,
                            *, review_company_ids: Iterable[int] = (), duplicate_company_ids: Iterable[int] = (),
                            link_originators: Iterable[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CRM companies that may become 1C counterparties, and the ones left out with the reason.

    Taken: `only_crm` clients. Left out: a duplicate inside the CRM, a candidate in the review queue, or a
    company already carrying a 1C link (created from 1C, or linked by an earlier integration) - the loop
    guard: what came from 1C never goes back as a new counterparty.
    Returns (candidates in CANDIDATE_COLUMNS with key = company ID, skipped: key, company_id, reason).
    """
    review, dups = set(map(int, review_company_ids)), set(map(int, duplicate_company_ids))
    linked = {o.lower() for o in link_originators}
    rows, skipped = [], []
    only_crm = clients[(clients["match_rule"] == "only_crm") & clients["company_id"].notna()]
    for company_id in only_crm["company_id"].astype(int):
        company = companies.get(company_id)
        reason = None
        if company is None:
            reason = "company not in the extract"
        elif company.origin_id and (company.originator_id or "").lower() in linked:
            reason = "already linked to 1C"
        elif company.origin_id and company.originator_id and re.fullmatch(GUID_PATTERN, company.origin_id.lower()):
            # Another connector's 1C link (its record deleted or unknown here): never re-created in 1C.
            reason = f"linked to 1C by another connector (ORIGINATOR_ID {company.originator_id})"
        elif company_id in dups:
            reason = "duplicate in the CRM"
        elif company_id in review:
            reason = "candidate match in review"
        if reason:
            skipped.append({"key": str(company_id), "company_id": company_id, "reason": reason})
            continue
        rq = company.requisite
        preset_kind = None
        if presets is not None and company.preset_id is not None:
            preset_kind = IP if company.preset_id == presets.ip else LEGAL if company.preset_id == presets.legal \
                else "other"
        rows.append({"key": str(company_id), "company_id": company_id, "title": company.title,
                     "full_name": rq.get("RQ_COMPANY_FULL_NAME") or rq.get("RQ_NAME")
                     or " ".join(str(rq[f]) for f in IP_NAME_FIELDS if not _blank(rq.get(f))) or None,
                     "inn": rq.get("RQ_INN"), "kpp": rq.get("RQ_KPP"),
                     "ogrn": rq.get("RQ_OGRNIP") or rq.get("RQ_OGRN"), "preset_kind": preset_kind,
                     "emails": company.emails, "phones": company.phones})
    return (pd.DataFrame(rows, columns=CANDIDATE_COLUMNS),
            pd.DataFrame(skipped, columns=["key", "company_id", "reason"]))


@dataclass
class Verdict:
    """A candidate after validation: the clean values, or the problems that stop it."""

    ok: bool
    problems: list[str]
    kind: str | None = None
    values: dict = field(default_factory=dict)


def validate_counterparty(row: Mapping[str, Any]) -> Verdict:
    """Check a CRM company before it may enter the books: INN checksum, kind from the INN length (10 = legal
    entity, 12 = ИП) agreeing with the requisite preset, KPP required for a legal entity and absent for an
    ИП, OGRN/OGRNIP checksum and length for the kind, a name."""
    problems: list[str] = []
    inn = normalize_inn(row.get("inn"))
    if not inn.valid:
        problems.append(f"INN {row.get('inn')!r}: {inn.reason}")
    kind = None
    if inn.valid:
        kind = LEGAL if len(inn.value) == 10 else IP
        preset = row.get("preset_kind")
        if preset in (LEGAL, IP) and preset != kind:
            problems.append(f"INN has {len(inn.value)} digits but the requisite preset says "
                            f"{'ИП' if preset == IP else 'legal entity'}")
        elif preset == "other":
            problems.append("requisite preset is neither legal entity nor ИП")
    kpp = normalize_kpp(row.get("kpp"))
    if kind == LEGAL and not kpp.valid:
        problems.append(f"KPP {row.get('kpp')!r}: {kpp.reason}")
    if kind == IP and kpp.value:
        problems.append(f"KPP {kpp.value!r} given for an ИП (12-digit INN)")
    ogrn = normalize_ogrn(row.get("ogrn"))
    if ogrn.value is not None:
        if not ogrn.valid:
            problems.append(f"OGRN {row.get('ogrn')!r}: {ogrn.reason}")
        elif kind and len(ogrn.value) != (13 if kind == LEGAL else 15):
            problems.append(f"OGRN {ogrn.value!r} has {len(ogrn.value)} digits, expected "
                            f"{13 if kind == LEGAL else 15} for {'a legal entity' if kind == LEGAL else 'an ИП'}")
    name = _text(row.get("title"))
    if not name or not any(ch.isalpha() for ch in name):
        problems.append(f"name {row.get('title')!r} is empty or has no letters")
    values = {"name": name, "full_name": _text(row.get("full_name")) or name, "inn": inn.value,
              "kpp": kpp.value if kind == LEGAL else None, "ogrn": ogrn.value if ogrn.valid else None}
    return Verdict(not problems, problems, kind, values)


def counterparty_body(verdict: Verdict, allowed: Iterable[str]) -> tuple[dict, list[str]]:
    """The Catalog_Контрагенты fields to POST (only `allowed` ones) and the names dropped by the allow-list."""
    kind_1c, legal_physical = KIND_TO_1C[verdict.kind]
    v = verdict.values
    # СтранаРегистрации: the ОКСМ code (Russia: INN/КПП/ОГРН are Russian), resolved to the Catalog_СтраныМира
    # ref when written. Without it UNF 3.0's ПередЗаписью clears the КПП of a legal entity.
    full = {"Description": v["name"], "НаименованиеПолное": v["full_name"], "ИНН": v["inn"],
            "КПП": v["kpp"] or "", "РегистрационныйНомер": v["ogrn"] or "", "ВидКонтрагента": kind_1c,
            "ЮридическоеФизическоеЛицо": legal_physical, "Покупатель": True, "СтранаРегистрации": RUSSIA_OKSM}
    allowed = set(allowed)
    return {k: val for k, val in full.items() if k in allowed}, sorted(k for k in full if k not in allowed)


def counterparty_marker(company_id: int | str) -> str:
    """The trace left in 1C `Комментарий`, found before any POST so a rerun never creates a second one."""
    return f"b24-1c:company:{int(company_id)}"


# -- plans --------------------------------------------------------------------------------------------

CRM_PLAN_COLUMNS = ["key", "company_id", "operation", "reason", "changed_fields", "before", "after",
                    "payload_hash", "company_fields", "requisite_id", "requisite_fields"]
ONEC_PLAN_COLUMNS = ["key", "company_id", "operation", "reason", "inn", "kpp", "kind", "body", "dropped_fields",
                     "problems", "before", "after", "payload_hash"]


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
        return {"ORIGINATOR_ID": self.originator_id, "ORIGIN_ID": ref,
                **({self.onec_ref_field: ref} if self.onec_ref_field else {})}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@dataclass(frozen=True)
class CompanyPlan:
    """A stored plan, the number of its rows that write, the rows the guard judges (in `plan_updates`'
    update/noop terms) and the population the guard's shares are taken of."""

    rows: pd.DataFrame
    writes: int
    guard_view: pd.DataFrame
    population: int


def crm_company_plan(clients: pd.DataFrame, counterparties: pd.DataFrame, current: Mapping[int, CrmCompany],
                     presets: Presets, link: CompanyLink, *, last_pushed: pd.DataFrame, failed_keys: set[str],
                     held: Mapping[str, str]) -> CompanyPlan:
    """The 1C -> CRM plan, one row per 1C counterparty (CRM_PLAN_COLUMNS, key = Ref_Key): add, update or
    noop by what changed since the last successful push (`plan_updates`), the CRM calls from
    `crm_company_writes` as JSON; 1C-only clients in `held` get a `held_back` row with the reason instead."""
    desired = desired_crm_companies(clients, counterparties)
    if held and not desired.empty:
        desired = desired[~(desired["company_id"].isna() & desired["key"].isin(held.keys()))]
    flat = pd.DataFrame([{"key": r["key"], **desired_payload(r)} for r in desired.to_dict("records")],
                        columns=["key", *DESIRED_FIELDS])
    base = plan_updates(flat, last_pushed, failed_keys, DESIRED_FIELDS)
    by_key = desired.set_index("key").to_dict("index") if not desired.empty else {}
    rows = []
    for planned in base.to_dict("records"):
        want = {"key": planned["key"], **by_key[planned["key"]]}
        row = {**planned, "company_id": want["company_id"], "company_fields": None, "requisite_id": None,
               "requisite_fields": None}
        if planned["operation"] != Operation.NOOP:
            company = current.get(want["company_id"]) if want["company_id"] is not None else None
            row.update(crm_write_columns(crm_company_writes(want, company, presets, originator_id=link.originator_id,
                                                            link_originators=link.link_originators,
                                                            onec_ref_field=link.onec_ref_field)))
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
    columns = {"operation": write.operation, "changed_fields": ",".join(write.changed_fields),
               "company_fields": _json(write.company_fields), "requisite_id": write.requisite_id,
               "requisite_fields": _json(write.requisite_fields)}
    if write.operation == Operation.NOOP:
        columns["reason"] = "in sync"
    return columns


def desired_from_plan_row(row: Mapping[str, Any]) -> dict:
    """The desired company of a stored plan row (its `after` JSON, contacts back as lists)."""
    after = json.loads(row["after"])
    return {**after, "key": row["key"], "emails": [v for v in (after.get("emails") or "").split(",") if v],
            "phones": [v for v in (after.get("phones") or "").split(",") if v]}


def counterparty_plan(clients: pd.DataFrame, companies: Mapping[int, CrmCompany], presets: Presets | None,
                      link: CompanyLink, *, review_candidates: pd.DataFrame, duplicate_groups: pd.DataFrame,
                      last_pushed: pd.DataFrame, allowed_fields: Iterable[str]) -> CompanyPlan:
    """The CRM -> 1C plan, one row per only-CRM company (ONEC_PLAN_COLUMNS, key = company ID): create
    (validated, allow-listed body as JSON), invalid (problems named), skip (duplicate, in review, already
    linked) or link (created earlier, the link back not written)."""
    review_ids = review_candidates["company_id"].dropna().astype(int).tolist() if not review_candidates.empty else []
    dup_ids = (duplicate_groups.loc[duplicate_groups["system"].astype(str).str.lower().isin(["crm", "bitrix24"]),
                                    "record_id"].astype(int).tolist() if not duplicate_groups.empty else [])
    candidates, skipped = counterparty_candidates(clients, dict(companies), presets, review_company_ids=review_ids,
                                                  duplicate_company_ids=dup_ids, link_originators=link.originators)
    made = dict(zip(last_pushed["key"].astype(str), last_pushed["target_id"])) if not last_pushed.empty else {}
    allowed = list(allowed_fields)
    rows = [{"key": s["key"], "company_id": s["company_id"], "operation": Operation.SKIP, "reason": s["reason"]}
            for s in skipped.to_dict("records")]
    for cand in candidates.to_dict("records"):
        verdict = validate_counterparty(cand)
        row = {"key": cand["key"], "company_id": cand["company_id"], "inn": verdict.values.get("inn"),
               "kpp": verdict.values.get("kpp"), "kind": verdict.kind}
        if not verdict.ok:
            row.update(operation=Operation.INVALID, reason="validation", problems="; ".join(verdict.problems))
        elif cand["key"] in made:
            # created earlier but the CRM company still has no link: only the link is written again
            row.update(operation=Operation.LINK, reason="created earlier, link missing",
                       body=_json({"Ref_Key": made[cand["key"]]}))
        else:
            body, dropped = counterparty_body(verdict, allowed)
            row.update(operation=Operation.CREATE, reason="only in the CRM", body=_json(body),
                       dropped_fields=",".join(dropped), after=_json(body), payload_hash=payload_hash(body))
        rows.append(row)
    plan = pd.DataFrame(rows, columns=ONEC_PLAN_COLUMNS).astype({"company_id": "Int64"})
    # A create is an initial load (never pushed); a link rewrites an existing company: a change.
    writes = plan["operation"].isin([Operation.CREATE, Operation.LINK])
    guard_view = plan.assign(operation=writes.map({True: Operation.UPDATE, False: Operation.NOOP}),
                             reason=(plan["operation"] == Operation.CREATE).map({True: "never pushed", False: "link"}))
    population = int(clients["onec_ref"].notna().sum()) if not clients.empty else 0
    return CompanyPlan(plan, int(writes.sum()), guard_view, population)


@dataclass(frozen=True)
class Settled:
    """A planned row closed without a write call: its operation, status and why."""

    key: str
    operation: Operation
    status: Status
    error: str | None = None
    error_class: str | None = None


@dataclass(frozen=True)
class CounterpartyRun:
    """What one run of the CRM -> 1C push does with its plan: the rows it journals, the ones it writes and
    the ones it settles without a call."""

    todo: pd.DataFrame
    live: pd.DataFrame
    settled: list[Settled]


def counterparty_run(plan: pd.DataFrame, *, max_creates: int, dry_run: bool) -> CounterpartyRun:
    """Invalid rows are rejected (bad data, not a failed write: retrying cannot help until someone fixes the
    CRM record), creates over the per-run cap wait for the next run, a dry run settles the rest."""
    todo = plan[plan["operation"].isin([Operation.CREATE, Operation.LINK, Operation.INVALID])] if not plan.empty \
        else plan
    creates = todo[todo["operation"] == Operation.CREATE] if not todo.empty else todo
    allowed = set(creates.head(max_creates)["key"]) if not creates.empty else set()
    settled = []
    for r in todo.to_dict("records"):
        if r["operation"] == Operation.INVALID:
            settled.append(Settled(r["key"], Operation.CREATE, Status.REJECTED, f"not written: {r['problems']}",
                                   "data"))
        elif r["operation"] == Operation.CREATE and r["key"] not in allowed:
            settled.append(Settled(r["key"], Operation.CREATE, Status.DEFERRED,
                                   f"over the per-run cap of {max_creates}"))
        elif dry_run:
            settled.append(Settled(r["key"], r["operation"], Status.DRY_RUN))
    live = todo.iloc[0:0] if dry_run or todo.empty else \
        todo[(todo["operation"] == Operation.LINK) | todo["key"].isin(allowed)]
    return CounterpartyRun(todo, live, settled)
