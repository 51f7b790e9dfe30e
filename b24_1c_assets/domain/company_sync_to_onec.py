"""CRM -> 1C counterparties (pure): which CRM companies may enter 1C, with what, and how many per run.

`only_crm` companies that are not duplicates, not in the review queue and not already linked to 1C become
counterparty candidates; `validate_counterparty` checks them (INN/OGRN checksums, KPP, name, kind vs INN
length) before anything may be written, and `counterparty_body` keeps only allow-listed fields.
`counterparty_plan` makes the stored plan, `counterparty_run` what one run does with it (cap, dry run).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from b24_1c_assets.domain.company_sync import (
    IP,
    IP_NAME_FIELDS,
    LEGAL,
    CompanyLink,
    CompanyPlan,
    CrmCompany,
    Presets,
    clean_text,
    is_blank,
    plan_json,
)
from b24_1c_assets.domain.matching import GUID_PATTERN
from b24_1c_assets.domain.normalize import normalize_inn, normalize_kpp, normalize_ogrn
from b24_1c_assets.domain.push_plan import Operation, Status, payload_hash

RUSSIA_OKSM = "643"  # Catalog_СтраныМира.Code of Russia (ОКСМ)
KIND_TO_1C = {LEGAL: ("ЮридическоеЛицо", "ЮридическоеЛицо"), IP: ("ИндивидуальныйПредприниматель", "ФизическоеЛицо")}
CANDIDATE_COLUMNS = ["key", "company_id", "title", "full_name", "inn", "kpp", "ogrn", "preset_kind", "emails", "phones"]
ONEC_PLAN_COLUMNS = [
    "key",
    "company_id",
    "operation",
    "reason",
    "inn",
    "kpp",
    "kind",
    "body",
    "dropped_fields",
    "problems",
    "before",
    "after",
    "payload_hash",
]


def counterparty_candidates(
    clients: pd.DataFrame,
    companies: dict[int, CrmCompany],
    presets: Presets | None,
    *,
    review_company_ids: Iterable[int] = (),
    duplicate_company_ids: Iterable[int] = (),
    link_originators: Iterable[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
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
            preset_kind = (
                IP if company.preset_id == presets.ip else LEGAL if company.preset_id == presets.legal else "other"
            )
        rows.append(
            {
                "key": str(company_id),
                "company_id": company_id,
                "title": company.title,
                "full_name": rq.get("RQ_COMPANY_FULL_NAME")
                or rq.get("RQ_NAME")
                or " ".join(str(rq[f]) for f in IP_NAME_FIELDS if not is_blank(rq.get(f)))
                or None,
                "inn": rq.get("RQ_INN"),
                "kpp": rq.get("RQ_KPP"),
                "ogrn": rq.get("RQ_OGRNIP") or rq.get("RQ_OGRN"),
                "preset_kind": preset_kind,
                "emails": company.emails,
                "phones": company.phones,
            }
        )
    return (
        pd.DataFrame(rows, columns=CANDIDATE_COLUMNS),
        pd.DataFrame(skipped, columns=["key", "company_id", "reason"]),
    )


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
            problems.append(
                f"INN has {len(inn.value)} digits but the requisite preset says "
                f"{'ИП' if preset == IP else 'legal entity'}"
            )
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
            problems.append(
                f"OGRN {ogrn.value!r} has {len(ogrn.value)} digits, expected "
                f"{13 if kind == LEGAL else 15} for {'a legal entity' if kind == LEGAL else 'an ИП'}"
            )
    name = clean_text(row.get("title"))
    if not name or not any(ch.isalpha() for ch in name):
        problems.append(f"name {row.get('title')!r} is empty or has no letters")
    values = {
        "name": name,
        "full_name": clean_text(row.get("full_name")) or name,
        "inn": inn.value,
        "kpp": kpp.value if kind == LEGAL else None,
        "ogrn": ogrn.value if ogrn.valid else None,
    }
    return Verdict(not problems, problems, kind, values)


def counterparty_body(verdict: Verdict, allowed: Iterable[str]) -> tuple[dict, list[str]]:
    """The Catalog_Контрагенты fields to POST (only `allowed` ones) and the names dropped by the allow-list."""
    kind_1c, legal_physical = KIND_TO_1C[verdict.kind]
    v = verdict.values
    # СтранаРегистрации: the ОКСМ code (Russia: INN/КПП/ОГРН are Russian), resolved to the Catalog_СтраныМира
    # ref when written. Without it UNF 3.0's ПередЗаписью clears the КПП of a legal entity.
    full = {
        "Description": v["name"],
        "НаименованиеПолное": v["full_name"],
        "ИНН": v["inn"],
        "КПП": v["kpp"] or "",
        "РегистрационныйНомер": v["ogrn"] or "",
        "ВидКонтрагента": kind_1c,
        "ЮридическоеФизическоеЛицо": legal_physical,
        "Покупатель": True,
        "СтранаРегистрации": RUSSIA_OKSM,
    }
    allowed = set(allowed)
    return {k: val for k, val in full.items() if k in allowed}, sorted(k for k in full if k not in allowed)


def counterparty_marker(company_id: int | str) -> str:
    """The trace left in 1C `Комментарий`, found before any POST so a rerun never creates a second one."""
    return f"b24-1c:company:{int(company_id)}"


# -- the plan, and one run of it ----------------------------------------------------------------------------


def counterparty_plan(
    clients: pd.DataFrame,
    companies: Mapping[int, CrmCompany],
    presets: Presets | None,
    link: CompanyLink,
    *,
    review_candidates: pd.DataFrame,
    duplicate_groups: pd.DataFrame,
    last_pushed: pd.DataFrame,
    allowed_fields: Iterable[str],
) -> CompanyPlan:
    """The CRM -> 1C plan, one row per only-CRM company (ONEC_PLAN_COLUMNS, key = company ID): create
    (validated, allow-listed body as JSON), invalid (problems named), skip (duplicate, in review, already
    linked) or link (created earlier, the link back not written)."""
    review_ids = review_candidates["company_id"].dropna().astype(int).tolist() if not review_candidates.empty else []
    dup_ids = (
        duplicate_groups.loc[duplicate_groups["system"].astype(str).str.lower().isin(["crm", "bitrix24"]), "record_id"]
        .astype(int)
        .tolist()
        if not duplicate_groups.empty
        else []
    )
    candidates, skipped = counterparty_candidates(
        clients,
        dict(companies),
        presets,
        review_company_ids=review_ids,
        duplicate_company_ids=dup_ids,
        link_originators=link.originators,
    )
    made = dict(zip(last_pushed["key"].astype(str), last_pushed["target_id"])) if not last_pushed.empty else {}
    allowed = list(allowed_fields)
    rows = [
        {"key": s["key"], "company_id": s["company_id"], "operation": Operation.SKIP, "reason": s["reason"]}
        for s in skipped.to_dict("records")
    ]
    for cand in candidates.to_dict("records"):
        verdict = validate_counterparty(cand)
        row = {
            "key": cand["key"],
            "company_id": cand["company_id"],
            "inn": verdict.values.get("inn"),
            "kpp": verdict.values.get("kpp"),
            "kind": verdict.kind,
        }
        if not verdict.ok:
            row.update(operation=Operation.INVALID, reason="validation", problems="; ".join(verdict.problems))
        elif cand["key"] in made:
            # created earlier but the CRM company still has no link: only the link is written again
            row.update(
                operation=Operation.LINK,
                reason="created earlier, link missing",
                body=plan_json({"Ref_Key": made[cand["key"]]}),
            )
        else:
            body, dropped = counterparty_body(verdict, allowed)
            row.update(
                operation=Operation.CREATE,
                reason="only in the CRM",
                body=plan_json(body),
                dropped_fields=",".join(dropped),
                after=plan_json(body),
                payload_hash=payload_hash(body),
            )
        rows.append(row)
    plan = pd.DataFrame(rows, columns=ONEC_PLAN_COLUMNS).astype({"company_id": "Int64"})
    # A create is an initial load (never pushed); a link rewrites an existing company: a change.
    writes = plan["operation"].isin([Operation.CREATE, Operation.LINK])
    guard_view = plan.assign(
        operation=writes.map({True: Operation.UPDATE, False: Operation.NOOP}),
        reason=(plan["operation"] == Operation.CREATE).map({True: "never pushed", False: "link"}),
    )
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
    todo = (
        plan[plan["operation"].isin([Operation.CREATE, Operation.LINK, Operation.INVALID])] if not plan.empty else plan
    )
    creates = todo[todo["operation"] == Operation.CREATE] if not todo.empty else todo
    allowed = set(creates.head(max_creates)["key"]) if not creates.empty else set()
    settled = []
    for r in todo.to_dict("records"):
        if r["operation"] == Operation.INVALID:
            settled.append(
                Settled(r["key"], Operation.CREATE, Status.REJECTED, f"not written: {r['problems']}", "data")
            )
        elif r["operation"] == Operation.CREATE and r["key"] not in allowed:
            settled.append(
                Settled(
                    r["key"],
                    Operation.CREATE,
                    Status.DEFERRED,
                    f"over the per-run cap of {max_creates}"
                    if max_creates
                    else "creating counterparties is off (onec_writes.toml max_creates_per_run = 0)",
                )
            )
        elif dry_run:
            settled.append(Settled(r["key"], r["operation"], Status.DRY_RUN))
    live = (
        todo.iloc[0:0]
        if dry_run or todo.empty
        else todo[(todo["operation"] == Operation.LINK) | todo["key"].isin(allowed)]
    )
    return CounterpartyRun(todo, live, settled)
