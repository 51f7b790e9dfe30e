"""Client master at scale: normalise and match N synthetic clients on each side (default 100,000).

The generator (below, self-contained and seeded) knows the truth: which 1C record and which CRM
company are the same party. Noise: INN/KPP typed with spaces or dashes, legal forms and quotes spelled
many ways (Latin OOO, full forms, trailing form), phones in national formats, e-mails in mixed case,
CRM companies without KPP, with INN typos (bad checksum), without requisites (only e-mail/phone),
already linked by ORIGIN_ID, duplicated in the CRM, and head offices with branches (one INN, several KPP).
Client identity cases (issue 13, `CASE_SHARES`, from a second random stream): duplicates in 1C (a live
'дубль' without documents; deleted; both live with documents - a candidate by design), duplicates in the CRM
(same INN+KPP; near miss with another KPP), an earlier connector's ORIGIN_ID under an untrusted ORIGINATOR_ID
(live record; near misses: deleted, unknown, another party's record).

Figures: seconds and peak traced memory (tracemalloc, Python + numpy/pandas buffers) per stage, and
precision/recall of automatic matches against the truth: `precision` per record pair, `precision_entity`
per legal entity (INN) - they differ only where a KPP-less CRM branch record is rolled up to its head office
(the stated branch policy) or an OGRN-only record meets a single 1C record of a multi-branch entity.
`by_category`: per case, links, wrong links (record pair / INN), precision, and recall per party (found when
one of its true pairs is linked: with duplicates only one record of a side can be); `no_id_evidence` holds the
parties whose only evidence is contacts or a broken INN (review by design), `all_with_id_evidence` the rest.
Run: `python -m benchmarks.bench_matching [N]` (BENCH_QUICK=1: 20,000).
"""

from __future__ import annotations

import gc
import os
import random
import sys
import time
import tracemalloc

import pandas as pd

from b24_1c_assets.domain.duplicates import find_duplicates
from b24_1c_assets.domain.matching import match_normalized
from b24_1c_assets.domain.normalize import normalize_crm_companies, normalize_onec_counterparties

ROOTS = [
    "ромашк",
    "вектор",
    "альф",
    "бет",
    "гамм",
    "дельт",
    "сигм",
    "омег",
    "строй",
    "торг",
    "лес",
    "тех",
    "пром",
    "агро",
    "мет",
    "энерг",
    "транс",
    "логист",
    "снаб",
    "инвест",
    "сервис",
    "групп",
    "капитал",
    "север",
    "юг",
    "восток",
    "запад",
    "центр",
    "урал",
    "сибир",
    "волг",
    "дон",
    "нев",
    "кам",
    "оки",
    "балт",
    "кавказ",
    "алтай",
    "байкал",
    "амур",
]
ENDINGS = ["а", "ия", "ум", "он", "ика", "ex", "ос", "ит", ""]
FORM_SPELLINGS = [
    'ООО "{n}"',
    "ООО «{n}»",
    "{n} ООО",
    "Общество с ограниченной ответственностью «{n}»",
    'OOO "{n}"',
    "ООО „{n}“",
    "{n}, ооо",
]
REGIONS = ["77", "78", "50", "16", "66", "54", "23", "52"]


def _inn10(rng: random.Random) -> str:
    body = rng.choice(REGIONS) + "".join(rng.choice("0123456789") for _ in range(7))
    weights = (2, 4, 10, 3, 5, 9, 4, 6, 8)
    return body + str(sum(w * int(d) for w, d in zip(weights, body)) % 11 % 10)


def _inn12(rng: random.Random) -> str:
    body = rng.choice(REGIONS) + "".join(rng.choice("0123456789") for _ in range(8))
    d11 = sum(w * int(d) for w, d in zip((7, 2, 4, 10, 3, 5, 9, 4, 6, 8), body)) % 11 % 10
    body += str(d11)
    return body + str(sum(w * int(d) for w, d in zip((3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8), body)) % 11 % 10)


def _ogrn(rng: random.Random, ip: bool) -> str:
    if ip:
        body = "3" + "".join(rng.choice("0123456789") for _ in range(13))
        return body + str(int(body) % 13 % 10)
    body = "1" + "".join(rng.choice("0123456789") for _ in range(11))
    return body + str(int(body) % 11 % 10)


def _spaced(rng: random.Random, digits: str) -> str:
    style = rng.random()
    if style < 0.1:
        return " ".join(digits[i : i + 3] for i in range(0, len(digits), 3))
    if style < 0.15:
        return digits[:4] + "-" + digits[4:]
    return digits


def _phone_text(rng: random.Random, e164: str) -> str:
    n = e164[2:]
    style = rng.randrange(4)
    return [f"8 ({n[:3]}) {n[3:6]}-{n[6:8]}-{n[8:]}", f"+7 {n[:3]} {n[3:]}", f"8{n}", e164][style]


# Identity cases (issue 13) and their near misses, drawn per party from a second random stream so the base
# world above stays the same; shares of all parties.
CASE_SHARES = (
    ("dup_1c", 0.015),  # a second live 1C card, same INN+KPP, never used (no documents): survivor rule links
    ("dup_1c_deleted", 0.005),  # the second 1C card is marked for deletion
    ("dup_1c_both_live", 0.002),  # near miss: both 1C cards have documents - stays a candidate
    ("dup_crm", 0.015),  # a second CRM company, same INN+KPP, newer and without deals: survivor rule links
    ("dup_crm_wrong_kpp", 0.005),  # near miss: the second CRM company has another (valid) KPP
    ("foreign_link", 0.02),  # ORIGIN_ID = the Ref_Key under a foreign ORIGINATOR_ID, no requisite, old name
    ("foreign_deleted", 0.003),  # near miss: foreign ORIGIN_ID of a deletion-marked 1C card
    ("foreign_missing", 0.003),  # near miss: foreign ORIGIN_ID of no 1C record at all
    ("foreign_inn_conflict", 0.003),  # near miss: foreign ORIGIN_ID of another party, INN contradicts
)
FOREIGN_ORIGINATORS = ("1C", "unf-connector")
ACTIVITY_FROM = pd.Timestamp("2026-05-20")


def _case(rng: random.Random) -> str:
    draw, acc = rng.random(), 0.0
    for name, share in CASE_SHARES:
        acc += share
        if draw < acc:
            return name
    return "plain"


def _dup_ref(seed: int, i: int, n: int = 1) -> str:
    return f"{seed:08x}-0000-4000-9{n:03x}-{i:012x}"


def generate(n: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, set[tuple[str, int]], dict]:
    """(1C extract, CRM extract, true record pairs, labels).

    labels: `entity` - the true legal entity (INN) of every record; `party`/`category` of every record
    (("1c", ref) / ("crm", company_id)); `onec_activity` / `crm_activity` - documents and deals per record."""
    rng = random.Random(seed)
    crng = random.Random(seed + 1)
    onec, crm, truth, entity = [], [], set(), {}
    party, category = {}, {}
    onec_activity, crm_activity = [], []
    company_id = 1
    head = None
    last_live_ref = None

    def add_onec(row: dict, p: int, cat: str, documents: int) -> None:
        onec.append(row)
        party[("1c", row["ref_key"])], category[("1c", row["ref_key"])] = p, cat
        last = ACTIVITY_FROM + pd.Timedelta(days=crng.randrange(180)) if documents else None
        onec_activity.append({"ref_key": row["ref_key"], "documents": documents, "last_activity": last})

    def add_crm(row: dict, p: int, cat: str, deals: int, age_days: int) -> None:
        crm.append(row)
        party[("crm", row["company_id"])], category[("crm", row["company_id"])] = p, cat
        crm_activity.append(
            {
                "company_id": row["company_id"],
                "deals": deals,
                "open_deals": min(deals, 1),
                "created": pd.Timestamp("2026-11-01") - pd.Timedelta(days=age_days),
            }
        )

    for i in range(n):
        ip = rng.random() < 0.1
        branch = not ip and head is not None and rng.random() < 0.05
        if branch:
            inn, ogrn, name = head
        else:
            inn = _inn12(rng) if ip else _inn10(rng)
            ogrn = _ogrn(rng, ip)
            name = (rng.choice(ROOTS) + rng.choice(ENDINGS) + rng.choice(ROOTS)).capitalize() + f" {i % 997}"
            if not ip:
                head = (inn, ogrn, name)
        kpp = None if ip else inn[:4] + ("43" if branch else "01") + f"{rng.randrange(1000):03d}"
        title = f"ИП {name}" if ip else rng.choice(FORM_SPELLINGS).format(n=name)
        domain = f"c{i}.ru" if rng.random() < 0.7 else "mail.ru"
        email = f"buh{i}@{domain}"
        phone = f"+79{rng.randrange(10**9):09d}"
        ref = f"{seed:08x}-0000-4000-8000-{i:012x}"
        presence = rng.random()
        both = 0.01 <= presence < 0.92 and presence > 0.08
        cat = _case(crng) if both else "plain"
        if cat in ("dup_1c", "dup_1c_deleted", "dup_1c_both_live", "dup_crm_wrong_kpp") and ip:
            cat = "plain"  # these cases need a KPP
        live, live_dup = True, None
        if presence < 0.92:  # 1C side
            row = {
                "ref_key": ref,
                "code": f"{i:09d}",
                "description": name,
                "full_name": title,
                "inn": _spaced(rng, inn),
                "kpp": kpp,
                "ogrn": ogrn,
                "kind": "ip" if ip else "legal",
                "email": email.upper() if rng.random() < 0.1 else email,
                "phone": _phone_text(rng, phone),
                "deletion_mark": rng.random() < 0.01,
            }
            live = not row["deletion_mark"]
            add_onec(row, i, cat, crng.randrange(1, 30) if crng.random() < 0.9 else 0)
            entity[("1c", ref)] = inn
            if cat.startswith("dup_1c") or cat == "foreign_deleted":
                dup = {
                    **row,
                    "ref_key": _dup_ref(seed, i),
                    "code": f"D{i:08d}",
                    "description": f"{name} (дубль)",
                    "full_name": None,
                    "email": None,
                    "ogrn": None,
                    "deletion_mark": cat in ("dup_1c_deleted", "foreign_deleted"),
                }
                add_onec(dup, i, cat, crng.randrange(1, 5) if cat == "dup_1c_both_live" else 0)
                entity[("1c", dup["ref_key"])] = inn
                if not dup["deletion_mark"]:
                    live_dup = dup["ref_key"]  # the same party: a link to it is correct too
                if cat == "dup_1c_both_live":
                    onec_activity[-2]["documents"] = max(onec_activity[-2]["documents"], 1)
                    onec_activity[-2]["last_activity"] = onec_activity[-2]["last_activity"] or ACTIVITY_FROM
        if presence > 0.08 or presence < 0.01:  # CRM side (mostly both)
            noise = rng.random()
            no_evidence = False
            row = {
                "company_id": company_id,
                "title": title,
                "inn": _spaced(rng, inn),
                "kpp": kpp,
                "ogrn": None,
                "originator_id": None,
                "origin_id": None,
                "onec_ref_uf": None,
                "emails": [email],
                "phones": [_phone_text(rng, phone)],
                "assigned_by_id": 1 + i % 12,
            }
            if noise < 0.03:
                row["kpp"] = None  # requisite without KPP
            elif noise < 0.04:
                row["inn"] = inn[:-1] + str((int(inn[-1]) + 1) % 10)  # typo, bad checksum
                no_evidence = True
            elif noise < 0.06:
                row["inn"] = row["kpp"] = None  # no requisites at all
                no_evidence = True
            elif noise < 0.08:
                row["originator_id"], row["origin_id"] = "1c-unf", ref.upper()
            elif noise < 0.10:
                row["inn"], row["kpp"], row["ogrn"] = None, None, ogrn  # only OGRN
            if no_evidence and cat == "plain":
                # Only contacts or a broken INN: a reviewer's call by design, never an automatic link.
                cat = "no_id_evidence"
                category[("1c", ref)] = cat
            if cat.startswith("foreign"):
                # The earlier integration's link, under its own ORIGINATOR_ID.
                row["originator_id"] = crng.choice(FOREIGN_ORIGINATORS)
                row["origin_id"] = {
                    "foreign_link": ref,
                    "foreign_deleted": _dup_ref(seed, i),
                    "foreign_missing": _dup_ref(seed, i, 0xFFF),
                    "foreign_inn_conflict": last_live_ref or _dup_ref(seed, i, 0xFFE),
                }[cat]
                if cat == "foreign_link":  # typically no requisite and the name of years ago
                    row.update(inn=None, kpp=None, ogrn=None, title=f"{name.split()[0]} (старое)")
                else:  # the near misses carry the party's own requisite: INN/KPP decide
                    row.update(inn=inn, kpp=kpp)
            add_crm(row, i, cat, crng.randrange(0, 6) + 1, 400 + crng.randrange(1000))
            entity[("crm", company_id)] = inn
            if presence < 0.92 and live:
                truth.add((ref, company_id))
            if live_dup:
                truth.add((live_dup, company_id))
            company_id += 1
            if cat in ("dup_crm", "dup_crm_wrong_kpp"):
                dup = {
                    **row,
                    "company_id": company_id,
                    "title": name,
                    "emails": [],
                    "phones": list(row["phones"]),
                    "inn": inn,
                    "kpp": kpp,
                    "originator_id": None,
                    "origin_id": None,
                }
                if cat == "dup_crm_wrong_kpp":
                    dup["kpp"] = inn[:4] + "02" + kpp[6:]  # a valid KPP of another registration
                else:
                    truth.add((ref, company_id))
                    row.update(inn=inn, kpp=kpp)  # both carry the same INN+KPP
                    crm[-1] = row
                add_crm(dup, i, cat, 0, crng.randrange(300))
                entity[("crm", company_id)] = inn
                company_id += 1
            elif rng.random() < 0.01:  # a CRM duplicate of the same party (legacy noise: often no KPP)
                crm.append(
                    {**row, "company_id": company_id, "emails": list(row["emails"]), "phones": list(row["phones"])}
                )
                party[("crm", company_id)], category[("crm", company_id)] = i, cat
                crm_activity.append(
                    {"company_id": company_id, "deals": 0, "open_deals": 0, "created": pd.Timestamp("2026-11-01")}
                )
                if presence < 0.92 and live:
                    truth.add((ref, company_id))  # either copy is a correct (if ambiguous) partner
                entity[("crm", company_id)] = inn
                company_id += 1
        if presence < 0.92 and live:
            last_live_ref = ref
    labels = {
        "entity": entity,
        "party": party,
        "category": category,
        "onec_activity": pd.DataFrame(onec_activity),
        "crm_activity": pd.DataFrame(crm_activity),
    }
    return pd.DataFrame(onec), pd.DataFrame(crm), truth, labels


def precision_recall_by_category(auto: set[tuple[str, int]], truth: set[tuple[str, int]], labels: dict) -> dict:
    """Per category: automatic links, wrong ones, precision, and recall per party (a party counts as found
    when one of its true record pairs is linked: with duplicates only one record of a side can be)."""
    party, category, entity = labels["party"], labels["category"], labels["entity"]
    wrong_entity: dict[str, int] = {}
    true_parties: dict[str, set] = {}
    for ref, _company in truth:
        true_parties.setdefault(category[("1c", ref)], set()).add(party[("1c", ref)])
    found: dict[str, set] = {}
    links: dict[str, list[bool]] = {}
    for ref, company in auto:
        cats = {category[("1c", ref)], category[("crm", company)]}
        for cat in cats:
            links.setdefault(cat, []).append((ref, company) in truth)
            if entity[("1c", ref)] != entity[("crm", company)]:
                wrong_entity[cat] = wrong_entity.get(cat, 0) + 1
        if (ref, company) in truth:
            found.setdefault(category[("1c", ref)], set()).add(party[("1c", ref)])
    out = {}
    for cat in sorted(set(true_parties) | set(links)):
        ok = links.get(cat, [])
        parties = true_parties.get(cat, set())
        out[cat] = {
            "parties": len(parties),
            "links": len(ok),
            "wrong": ok.count(False),
            "wrong_entity": wrong_entity.get(cat, 0),
            "precision": round(ok.count(True) / len(ok), 5) if ok else None,
            "recall": round(len(found.get(cat, set()) & parties) / len(parties), 4) if parties else None,
        }
    all_parties = set().union(*true_parties.values()) if true_parties else set()
    all_found = set().union(*found.values()) if found else set()
    with_evidence = {p for cat, ps in true_parties.items() if cat != "no_id_evidence" for p in ps}
    out["all_with_id_evidence"] = {
        "parties": len(with_evidence),
        "links": len(auto),
        "wrong": len(auto - truth),
        "wrong_entity": sum(entity[("1c", r)] != entity[("crm", c)] for r, c in auto),
        "precision": round(len(auto & truth) / len(auto), 5) if auto else None,
        "recall": round(len(set().union(*found.values()) & with_evidence) / len(with_evidence), 4)
        if with_evidence and found
        else None,
    }
    out["all"] = {
        "parties": len(all_parties),
        "links": len(auto),
        "wrong": len(auto - truth),
        "wrong_entity": sum(entity[("1c", r)] != entity[("crm", c)] for r, c in auto),
        "precision": round(len(auto & truth) / len(auto), 5) if auto else None,
        "recall": round(len(all_found & all_parties) / len(all_parties), 4) if all_parties else None,
    }
    return out


def _stage(name: str, fn, figures: dict, trace: bool):
    gc.collect()
    if trace:
        tracemalloc.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    result = fn()
    figures[f"{name}_s"] = round(time.perf_counter() - started, 2)
    figures[f"{name}_cpu_s"] = round(time.process_time() - cpu_started, 2)
    if trace:
        figures[f"{name}_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    return result


def run(n: int = 100_000, trace_memory: bool = True) -> dict:
    """Generate, normalise, match and dedupe; return the figures (seconds, MB, counts, precision)."""
    figures: dict = {"n_per_side": n}
    onec, crm, truth, labels = _stage("generate", lambda: generate(n), figures, trace_memory)
    entity = labels["entity"]
    onec_n, onec_rej = _stage("normalize_1c", lambda: normalize_onec_counterparties(onec), figures, trace_memory)
    crm_n, crm_rej = _stage("normalize_crm", lambda: normalize_crm_companies(crm), figures, trace_memory)
    rejects = pd.concat([onec_rej, crm_rej], ignore_index=True)
    result = _stage(
        "match",
        lambda: match_normalized(
            onec_n, crm_n, rejects=rejects, onec_activity=labels["onec_activity"], crm_activity=labels["crm_activity"]
        ),
        figures,
        trace_memory,
    )
    dups = _stage(
        "duplicates", lambda: find_duplicates(onec_n, crm_n, survivors=result.survivors), figures, trace_memory
    )

    clients = result.clients
    linked = clients[clients["onec_ref"].notna() & clients["company_id"].notna()]
    auto = set(zip(linked["onec_ref"], linked["company_id"].astype(int)))
    truth_refs = {r for r, _ in truth}
    figures.update(
        {
            "onec_rows": len(onec),
            "crm_rows": len(crm),
            "clients": len(clients),
            "auto_matches": len(auto),
            "candidates": len(result.candidates),
            "rejects": len(result.rejects),
            "duplicate_groups": dups["group_id"].nunique() if len(dups) else 0,
            "precision": round(len(auto & truth) / len(auto), 5) if auto else None,
            # Same legal entity (INN) but maybe another branch record: the head-office roll-up policy.
            "precision_entity": (
                round(sum(entity[("1c", r)] == entity[("crm", c)] for r, c in auto) / len(auto), 5) if auto else None
            ),
            "recall_refs": round(len({r for r, _ in auto} & truth_refs) / len(truth_refs), 4) if truth_refs else None,
        }
    )
    figures["by_category"] = precision_recall_by_category(auto, truth, labels)
    figures["recall"] = figures["by_category"]["all"]["recall"]
    figures["rules"] = clients["match_rule"].value_counts().to_dict()
    return figures


def main(n: int | None = None) -> dict:
    """Benchmark entry point for `python -m benchmarks`: prints a short table, returns the figures."""
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    n = n or (int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 20_000 if quick else 100_000)
    # Timings come from an untraced run (tracemalloc slows allocation-heavy code); memory from a traced one.
    timed = run(n, trace_memory=False)
    traced = run(n, trace_memory=True)
    print(f"bench_matching: {n:,} clients per side")
    print(f"{'stage':<15}{'wall s':>10}{'cpu s':>10}{'peak MB':>10}")
    for stage in ("generate", "normalize_1c", "normalize_crm", "match", "duplicates"):
        timed[f"{stage}_peak_mb"] = traced[f"{stage}_peak_mb"]
        print(f"{stage:<15}{timed[stage + '_s']:>10}{timed[stage + '_cpu_s']:>10}{timed[stage + '_peak_mb']:>10}")
    timed["load_avg_1m"] = round(os.getloadavg()[0], 2)  # other work on the box inflates wall time
    for key in (
        "auto_matches",
        "candidates",
        "rejects",
        "duplicate_groups",
        "precision",
        "precision_entity",
        "recall_refs",
        "recall",
        "load_avg_1m",
    ):
        print(f"{key:<15}{timed[key]!s:>20}")
    print(f"{'rules':<15}{timed['rules']}")
    print(f"{'category':<22}{'parties':>9}{'links':>9}{'wrong':>7}{'wrong_inn':>10}{'precision':>11}{'recall':>9}")
    for cat, row in timed["by_category"].items():
        print(
            f"{cat:<22}{row['parties']:>9}{row['links']:>9}{row['wrong']:>7}{row['wrong_entity']:>10}"
            f"{row['precision']!s:>11}{row['recall']!s:>9}"
        )
    return timed


if __name__ == "__main__":
    main()
