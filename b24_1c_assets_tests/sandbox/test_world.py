"""The sandbox world generator: deterministic, valid identifiers, every tricky matching case, consistent documents."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import phonenumbers
import pytest
from stdnum.ru import inn as stdnum_inn
from stdnum.ru import ogrn as stdnum_ogrn

from b24_1c_assets.sandbox.world import Shipment, generate

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KPP_RE = re.compile(r"^\d{4}[\dA-Z]{2}\d{3}$")
NUMBER_RE = re.compile(r"^НФНФ-\d{6}$")


def _spellings(world, side):
    return [(p, s) for p in world.parties for s in getattr(p, f"{side}_spellings")]


def _plain(title: str) -> str:
    return " ".join(title.replace("«", "").replace("»", "").replace('"', "").split()).lower().replace("ё", "е")


# -- determinism and size ------------------------------------------------------------------------------------


def test_same_seed_and_scale_give_the_same_world(world):
    again = generate(seed=world.seed, scale=world.scale)
    assert again == world
    assert again.as_of == world.as_of


def test_world_does_not_depend_on_string_hashing():
    """Same on every machine: two interpreters with different PYTHONHASHSEED build the same world."""
    code = (
        "import hashlib; from b24_1c_assets.sandbox.world import generate; "
        "print(hashlib.sha256(repr(generate(seed=7, scale=80)).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(digests) == 1 and len(digests.pop().strip()) == 64


def test_other_seed_gives_another_world(world):
    other = generate(seed=world.seed + 1, scale=world.scale)
    assert [p.inn for p in other.parties] != [p.inn for p in world.parties]


@pytest.mark.parametrize("scale", [1, 2, 5])
def test_tiny_worlds_are_built(scale):
    tiny = generate(seed=3, scale=scale)
    assert len(tiny.parties) == scale
    assert len(tiny.items) >= 30


def test_scale_below_one_is_refused():
    with pytest.raises(ValueError, match="scale"):
        generate(seed=1, scale=0)


def test_volumes_per_party_are_realistic():
    big = generate(seed=11, scale=1000)
    n = len(big.parties)
    assert n == 1000
    assert 2.5 <= len(big.orders) / n <= 4.0
    assert 2.3 <= len(big.invoices) / n <= len(big.orders) / n
    assert 3.2 <= len(big.shipments) / n <= 5.0
    assert 2.5 <= len(big.payments) / n <= 5.0
    managers = [u for u in big.users if u.department == "sales"]
    assert len(managers) >= 5
    assert {u.department for u in big.users} == {"sales", "finance", "ops"}
    assert len(big.items) == 100


# -- identifiers ---------------------------------------------------------------------------------------------


def test_every_party_has_valid_identifiers(world):
    for p in world.parties:
        assert stdnum_inn.is_valid(p.inn), p.key
        assert stdnum_ogrn.is_valid(p.ogrn), p.key
        if p.kind == "legal":
            assert len(p.inn) == 10 and len(p.ogrn) == 13, p.key
            assert KPP_RE.match(p.kpp), p.key
            assert p.legal_form in ("ООО", "АО", "ПАО", "ЗАО")
        else:
            assert len(p.inn) == 12 and len(p.ogrn) == 15 and p.kpp is None, p.key
            assert p.legal_form == "ИП"
        number = phonenumbers.parse(p.phone, None)
        assert phonenumbers.is_valid_number(number), p.phone
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == p.phone
        assert re.fullmatch(r"[a-z0-9.\-]+@[a-z0-9.\-]+\.[a-z]+", p.email), p.email
        assert p.manager_id in {u.id for u in world.users if u.department == "sales" and u.active}


def test_inns_are_unique_except_branches(world):
    heads = [p for p in world.parties if p.head_key is None]
    assert len({p.inn for p in heads}) == len(heads)
    legal = [p for p in heads if p.kind == "legal"]
    assert len({p.email.split("@")[1] for p in legal}) == len(legal)  # one domain per company


def test_branches_share_inn_and_have_own_kpp(world):
    by_key = {p.key: p for p in world.parties}
    branches = [p for p in world.parties if p.head_key is not None]
    assert branches, "no branch in the world"
    for b in branches:
        head = by_key[b.head_key]
        assert head.head_key is None and head.kind == "legal"
        assert (b.inn, b.ogrn) == (head.inn, head.ogrn)
        assert b.kpp != head.kpp and b.kpp[4:6] == "43"
        assert b.email.split("@")[1] == head.email.split("@")[1] and b.email != head.email


def test_all_presences_and_kinds_occur(world):
    assert {p.presence for p in world.parties} == {"both", "1c", "crm"}
    assert {p.kind for p in world.parties} == {"legal", "ip"}
    for p in world.parties:
        assert bool(p.onec_spellings) == (p.presence != "crm"), p.key
        assert bool(p.crm_spellings) == (p.presence != "1c"), p.key


# -- tricky matching cases (each at least once at scale 60) ---------------------------------------------------


def test_titles_are_spelled_in_all_the_ways(world):
    titles = [s.title for _, s in _spellings(world, "crm") + _spellings(world, "onec")]
    assert any(re.match(r'^ООО "[^"]+"$', t) for t in titles)  # ООО "Ромашка"
    assert any("«" in t and "»" in t for t in titles)  # guillemets
    assert any(re.search(r" (ООО|АО|ПАО|ЗАО|ИП)$", t) for t in titles)  # Ромашка ООО
    assert any(
        t.startswith(
            (
                "Общество с ограниченной ответственностью",
                "Акционерное общество",
                "Индивидуальный предприниматель",
                "Публичное",
                "Закрытое",
            )
        )
        for t in titles
    )
    assert any(t != t.strip() or "  " in t for t in titles)  # extra spaces
    assert any(re.search(r"[А-ЯЁ]{4,}", t) and t == t.upper() for t in titles)  # upper case
    assert any(t == t.lower() and re.search(r"[а-я]", t) for t in titles)  # lower case
    assert any(re.match(r"^(OOO|AO|ПAO|ЗAO|IP) ", t) for t in titles)  # Latin look-alike legal form


def test_yo_is_written_as_e_on_one_side(world):
    cases = [
        p
        for p in world.parties
        if p.onec_spellings
        and p.crm_spellings
        and "ё" in p.onec_spellings[0].title.lower()
        and "ё" not in p.crm_spellings[0].title.lower()
    ]
    assert cases
    p = cases[0]
    assert (
        _plain(p.onec_spellings[0].title).replace("ооо", "").strip() in _plain(p.crm_spellings[0].title)
        or p.kind == "ip"
    )


def test_inn_noise_in_the_crm(world):
    both = [p for p in world.parties if p.presence == "both"]
    crm = [(p, p.crm_spellings[0]) for p in both]
    assert any(s.inn and s.inn != p.inn and s.inn.replace(" ", "") == p.inn for p, s in crm)  # spaces
    assert any(s.inn is None for p, s in crm)  # not filled
    assert any(
        s.inn and len(s.inn) == len(p.inn) and s.inn != p.inn and not stdnum_inn.is_valid(s.inn) for p, s in crm
    )  # typo in the CRM


def test_invalid_inn_checksum_in_1c(world):
    assert any(s.inn != p.inn and not stdnum_inn.is_valid(s.inn) for p, s in _spellings(world, "onec"))


def test_kpp_missing_on_one_side(world):
    both = [p for p in world.parties if p.presence == "both" and p.kind == "legal"]
    assert any(p.onec_spellings[0].kpp is None and p.crm_spellings[0].kpp == p.kpp for p in both)
    assert any(p.crm_spellings[0].kpp is None and p.crm_spellings[0].inn for p in both)


def test_duplicates_inside_each_system(world):
    dup_1c = [p for p in world.parties if len(p.onec_spellings) > 1]
    dup_crm = [p for p in world.parties if len(p.crm_spellings) > 1]
    assert dup_1c and dup_crm
    for p in dup_1c:
        assert p.onec_spellings[0].title != p.onec_spellings[1].title
        assert p.onec_spellings[1].inn == p.inn  # a true duplicate: same INN, other spelling
    for p in dup_crm:
        assert p.crm_spellings[0].title != p.crm_spellings[1].title


def test_some_crm_companies_are_already_linked_to_1c(world):
    linked = [p for p in world.parties if any(s.linked_onec for s in p.crm_spellings)]
    assert linked
    assert all(p.presence == "both" for p in linked)


def test_phones_in_many_formats_all_mean_the_party_phone(world):
    phones = [(p, s.phone) for p, s in _spellings(world, "crm") + _spellings(world, "onec") if s.phone]
    patterns = {
        "e164": r"^\+7\d{10}$",
        "paren8": r"^8 \(\d{3,4}\) [\d-]+$",
        "space7": r"^\+7 \d{3,4} \d{6,7}$",
        "plain8": r"^8\d{10}$",
        "paren7": r"^\+7 \(\d{3,4}\) [\d-]+$",
        "dash7": r"^\+7-\d{3,4}-[\d-]+$",
        "local10": r"^\(\d{3,4}\) [\d-]+$",
    }
    seen = {name for name, rx in patterns.items() for _, ph in phones if re.match(rx, ph)}
    assert seen == set(patterns)
    for p, ph in phones:
        parsed = phonenumbers.parse(ph, "RU")
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == p.phone, ph


def test_emails_with_case_and_space_noise(world):
    noisy = [(p, s.email) for p, s in _spellings(world, "crm") if s.email and s.email != p.email]
    assert noisy
    assert all(e.strip().lower() == p.email for p, e in noisy)
    assert any(e != e.strip() for _, e in noisy) and any(e.strip() != e.strip().lower() for _, e in noisy)


def test_different_parties_with_similar_names(world):
    heads = [p for p in world.parties if p.head_key is None and p.kind == "legal"]
    pairs = [
        (a, b)
        for a in heads
        for b in heads
        if a.key < b.key and a.inn != b.inn and b.short_name.startswith(a.short_name)
    ]
    assert pairs
    assert any(a.short_name == b.short_name for a, b in pairs)  # even the very same name


def test_ip_with_12_digit_inn_in_both_systems(world):
    ips = [p for p in world.parties if p.kind == "ip" and p.presence == "both"]
    assert ips and all(len((p.crm_spellings[0].inn or "0" * 12).replace(" ", "")) == 12 for p in ips)
    assert any(p.onec_spellings[0].title.startswith("ИП ") for p in ips)


# -- documents -----------------------------------------------------------------------------------------------


def test_documents_are_consistent(world):
    parties = {p.key: p for p in world.parties}
    contracts = {c.key: c for c in world.contracts}
    orders = {o.key: o for o in world.orders}
    invoices = {i.key: i for i in world.invoices}
    deals = {d.key: d for d in world.deals}
    items = {i.key for i in world.items}
    start = world.as_of - timedelta(days=190)
    for c in world.contracts:
        assert parties[c.party_key].presence != "crm"
        assert c.payment_term_days in (0, 7, 14, 30, 45)
    for kind in (world.orders, world.invoices, world.shipments, world.payments):
        assert [d.key for d in kind] == list(range(1, len(kind) + 1))
        for d in kind:
            assert NUMBER_RE.match(d.number), d.number
            assert start <= d.date < world.as_of, d
            assert d.amount > 0, d
            assert contracts[d.contract_key].party_key == d.party_key, d
    for o in world.orders:
        assert all(line.item_key in items and line.quantity > 0 and line.price > 0 for line in o.lines)
        if o.deleted:
            assert not o.posted
        if o.deal_key is not None:
            assert deals[o.deal_key].order_key == o.key and deals[o.deal_key].party_key == o.party_key
            assert deals[o.deal_key].created < o.date
    for doc in (*world.invoices, *world.shipments):
        order = orders[doc.order_key]
        assert (order.party_key, order.contract_key) == (doc.party_key, doc.contract_key), doc
        assert order.posted and doc.date > order.date, doc
    for s in world.shipments:
        assert Decimal(0) < s.amount <= orders[s.order_key].amount
    for pay in world.payments:
        if pay.order_key is not None:
            assert orders[pay.order_key].party_key == pay.party_key and pay.date > orders[pay.order_key].date
        if pay.invoice_key is not None:
            assert invoices[pay.invoice_key].party_key == pay.party_key
        assert pay.amount.as_tuple().exponent == -2, pay  # money: Decimal with two places
        if pay.channel == "cash":
            assert pay.amount <= 100000  # the legal cash limit between businesses
    for d in world.deals:
        assert parties[d.party_key].presence != "1c" and d.lines and d.created < world.as_of
        assert d.category_id in (0, 1, 2)
        assert d.stage in ("NEW", "PREPARATION", "PREPAYMENT_INVOICE", "EXECUTING", "FINAL_INVOICE", "WON", "LOSE")
        if d.order_key is not None:
            assert d.stage == "WON"


def test_document_numbers_follow_dates(world):
    for kind in (world.orders, world.shipments):
        assert [d.date for d in kind] == sorted(d.date for d in kind)
    assert [d.created for d in world.deals] == sorted(d.created for d in world.deals)


def test_items_catalog(world):
    assert len(world.items) == 30
    assert {i.kind for i in world.items} == {"goods", "service"}
    assert all(i.unit in ("шт", "кг", "м", "усл") and i.vat_rate in (20, 10, 0) and i.price > 0 for i in world.items)
    assert len({i.article for i in world.items}) == len(world.items)
    assert any(not i.in_crm for i in world.items) and any(i.deleted for i in world.items)
    assert all(i.price == i.price.quantize(Decimal("0.01")) and i.price.as_tuple().exponent == -2 for i in world.items)


def test_expected_balance_is_posted_shipments_minus_posted_payments(world):
    for p in world.parties:
        shipped = sum((s.amount for s in world.shipments if s.party_key == p.key and s.posted), Decimal(0))
        paid = sum((x.amount for x in world.payments if x.party_key == p.key and x.posted), Decimal(0))
        assert world.expected_balance(p.key) == shipped - paid, p.key


def test_expected_balance_follows_changes_to_the_world():
    w = generate(seed=5, scale=20)
    party = next(p for p in w.parties if p.presence != "crm")
    before = w.expected_balance(party.key)
    order = next(o for o in w.orders if o.party_key == party.key)
    w.shipments.append(
        Shipment(
            key=10**6,
            number="НФНФ-999999",
            date=w.as_of - timedelta(days=1),
            party_key=party.key,
            contract_key=order.contract_key,
            order_key=order.key,
            lines=list(order.lines),
        )
    )
    assert w.expected_balance(party.key) == before + order.amount
    w.shipments[-1].posted = False
    w.reindex()
    assert w.expected_balance(party.key) == before


def _overdue_by_fifo(world) -> dict[int, Decimal]:
    """Unpaid shipment remainders past their due date, settling payments oldest-first per contract."""
    terms = {c.key: c.payment_term_days for c in world.contracts}
    paid: dict[int, Decimal] = defaultdict(Decimal)
    for pay in world.payments:
        if pay.posted:
            paid[pay.contract_key] += pay.amount
    overdue: dict[int, Decimal] = defaultdict(Decimal)
    for s in sorted((s for s in world.shipments if s.posted), key=lambda s: s.date):
        settled = min(paid[s.contract_key], s.amount)
        paid[s.contract_key] -= settled
        if s.amount > settled and s.date + timedelta(days=terms[s.contract_key] or 10) < world.as_of:
            overdue[s.party_key] += s.amount - settled
    return overdue


def test_receivables_mix_has_debts_advances_overdue_and_over_limit(world):
    balances = {p.key: world.expected_balance(p.key) for p in world.parties}
    assert any(b > 0 for b in balances.values())  # debts
    assert any(b < 0 for b in balances.values())  # advances
    assert _overdue_by_fifo(world)  # debts beyond payment terms
    with_limit = [p for p in world.parties if p.credit_limit is not None]
    assert len(with_limit) > len(world.parties) / 2
    over = [p for p in with_limit if balances[p.key] > p.credit_limit]  # over the credit limit
    assert over
    open_stages = ("NEW", "PREPARATION", "PREPAYMENT_INVOICE", "EXECUTING", "FINAL_INVOICE")
    assert {d.party_key for d in world.deals if d.stage in open_stages} & {p.key for p in over}  # hold them
    assert any(p.head_key is None and p.credit_limit is None for p in world.parties)
    # Varied payment behaviour: several payments per order, unpaid orders, round advances without an order.
    per_order = defaultdict(int)
    for pay in world.payments:
        if pay.order_key:
            per_order[pay.order_key] += 1
    assert max(per_order.values()) >= 2
    assert any(pay.order_key is None for pay in world.payments)
    assert any(o.posted and o.key not in per_order for o in world.orders)
    assert {pay.channel for pay in generate(seed=7, scale=300).payments} == {"bank", "cash"}
