"""Client master at scale: normalise and match N synthetic clients on each side (default 100,000).

The generator (below, self-contained and seeded) knows the truth: which 1C record and which CRM
company are the same party. Noise: INN/KPP typed with spaces or dashes, legal forms and quotes spelled
many ways (Latin OOO, full forms, trailing form), phones in national formats, e-mails in mixed case,
CRM companies without KPP, with INN typos (bad checksum), without requisites (only e-mail/phone),
already linked by ORIGIN_ID, duplicated in the CRM, and head offices with branches (one INN, several KPP).

Figures: seconds and peak traced memory (tracemalloc, Python + numpy/pandas buffers) per stage, and
precision/recall of automatic matches against the truth: `precision` per record pair, `precision_entity`
per legal entity (INN) - they differ only where a KPP-less CRM branch record is rolled up to its head office
(the stated branch policy) or an OGRN-only record meets a single 1C record of a multi-branch entity. Run: `python -m benchmarks.bench_matching [N]`.
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

ROOTS = ["ромашк", "вектор", "альф", "бет", "гамм", "дельт", "сигм", "омег", "строй", "торг", "лес",
         "тех", "пром", "агро", "мет", "энерг", "транс", "логист", "снаб", "инвест", "сервис", "групп",
         "капитал", "север", "юг", "восток", "запад", "центр", "урал", "сибир", "волг", "дон", "нев",
         "кам", "оки", "балт", "кавказ", "алтай", "байкал", "амур"]
ENDINGS = ["а", "ия", "ум", "он", "ика", "ex", "ос", "ит", ""]
FORM_SPELLINGS = ['ООО "{n}"', "ООО «{n}»", "{n} ООО", "Общество с ограниченной ответственностью «{n}»",
                  'OOO "{n}"', "ООО „{n}“", "{n}, ооо"]
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
        return " ".join(digits[i:i + 3] for i in range(0, len(digits), 3))
    if style < 0.15:
        return digits[:4] + "-" + digits[4:]
    return digits


def _phone_text(rng: random.Random, e164: str) -> str:
    n = e164[2:]
    style = rng.randrange(4)
    return [f"8 ({n[:3]}) {n[3:6]}-{n[6:8]}-{n[8:]}", f"+7 {n[:3]} {n[3:]}", f"8{n}", e164][style]


def generate(n: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, set[tuple[str, int]], dict]:
    """(1C extract, CRM extract, true record pairs, true legal entity (INN) of every record)."""
    rng = random.Random(seed)
    onec, crm, truth, entity = [], [], set(), {}
    company_id = 1
    head = None
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
        if presence < 0.92:  # 1C side
            onec.append({"ref_key": ref, "code": f"{i:09d}", "description": name, "full_name": title,
                         "inn": _spaced(rng, inn), "kpp": kpp, "ogrn": ogrn, "kind": "ip" if ip else "legal",
                         "email": email.upper() if rng.random() < 0.1 else email,
                         "phone": _phone_text(rng, phone), "deletion_mark": rng.random() < 0.01})
            entity[("1c", ref)] = inn
        if presence > 0.08 or presence < 0.01:  # CRM side (mostly both)
            noise = rng.random()
            row = {"company_id": company_id, "title": title, "inn": _spaced(rng, inn), "kpp": kpp,
                   "ogrn": None, "originator_id": None, "origin_id": None, "onec_ref_uf": None,
                   "emails": [email], "phones": [_phone_text(rng, phone)], "assigned_by_id": 1 + i % 12}
            if noise < 0.03:
                row["kpp"] = None  # requisite without KPP
            elif noise < 0.04:
                row["inn"] = inn[:-1] + str((int(inn[-1]) + 1) % 10)  # typo, bad checksum
            elif noise < 0.06:
                row["inn"] = row["kpp"] = None  # no requisites at all
            elif noise < 0.08:
                row["originator_id"], row["origin_id"] = "1c-unf", ref.upper()
            elif noise < 0.10:
                row["inn"], row["kpp"], row["ogrn"] = None, None, ogrn  # only OGRN
            crm.append(row)
            entity[("crm", company_id)] = inn
            if presence < 0.92 and not onec[-1]["deletion_mark"]:
                truth.add((ref, company_id))
            company_id += 1
            if rng.random() < 0.01:  # a CRM duplicate of the same party
                crm.append({**row, "company_id": company_id, "emails": list(row["emails"]),
                            "phones": list(row["phones"])})
                truth.add((ref, company_id))  # either copy is a correct (if ambiguous) partner
                entity[("crm", company_id)] = inn
                company_id += 1
    return pd.DataFrame(onec), pd.DataFrame(crm), truth, entity


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
    onec, crm, truth, entity = _stage("generate", lambda: generate(n), figures, trace_memory)
    onec_n, onec_rej = _stage("normalize_1c", lambda: normalize_onec_counterparties(onec), figures, trace_memory)
    crm_n, crm_rej = _stage("normalize_crm", lambda: normalize_crm_companies(crm), figures, trace_memory)
    rejects = pd.concat([onec_rej, crm_rej], ignore_index=True)
    result = _stage("match", lambda: match_normalized(onec_n, crm_n, rejects=rejects), figures, trace_memory)
    dups = _stage("duplicates", lambda: find_duplicates(onec_n, crm_n), figures, trace_memory)

    clients = result.clients
    linked = clients[clients["onec_ref"].notna() & clients["company_id"].notna()]
    auto = set(zip(linked["onec_ref"], linked["company_id"].astype(int)))
    truth_refs = {r for r, _ in truth}
    figures.update({
        "onec_rows": len(onec), "crm_rows": len(crm), "clients": len(clients), "auto_matches": len(auto),
        "candidates": len(result.candidates), "rejects": len(result.rejects),
        "duplicate_groups": dups["group_id"].nunique() if len(dups) else 0,
        "precision": round(len(auto & truth) / len(auto), 5) if auto else None,
        # Same legal entity (INN) but maybe another branch record: the head-office roll-up policy.
        "precision_entity": (round(sum(entity[("1c", r)] == entity[("crm", c)] for r, c in auto) / len(auto), 5)
                             if auto else None),
        "recall_refs": round(len({r for r, _ in auto} & truth_refs) / len(truth_refs), 4) if truth_refs else None,
    })
    figures["rules"] = clients["match_rule"].value_counts().to_dict()
    return figures


def main(n: int | None = None) -> dict:
    """Benchmark entry point for `python -m benchmarks`: prints a short table, returns the figures."""
    n = n or (int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 100_000)
    # Timings come from an untraced run (tracemalloc slows allocation-heavy code); memory from a traced one.
    timed = run(n, trace_memory=False)
    traced = run(n, trace_memory=True)
    print(f"bench_matching: {n:,} clients per side")
    print(f"{'stage':<15}{'wall s':>10}{'cpu s':>10}{'peak MB':>10}")
    for stage in ("generate", "normalize_1c", "normalize_crm", "match", "duplicates"):
        timed[f"{stage}_peak_mb"] = traced[f"{stage}_peak_mb"]
        print(f"{stage:<15}{timed[stage + '_s']:>10}{timed[stage + '_cpu_s']:>10}{timed[stage + '_peak_mb']:>10}")
    timed["load_avg_1m"] = round(os.getloadavg()[0], 2)  # other work on the box inflates wall time
    for key in ("auto_matches", "candidates", "rejects", "duplicate_groups", "precision", "precision_entity",
                "recall_refs", "load_avg_1m"):
        print(f"{key:<15}{timed[key]!s:>20}")
    print(f"{'rules':<15}{timed['rules']}")
    return timed


if __name__ == "__main__":
    main()
