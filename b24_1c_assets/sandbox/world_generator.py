"""The generator behind `world.generate()`: parties, their spellings in each system, and six months of sales.

One `random.Random(seed)` drives everything, in a fixed order, so a (seed, scale) gives the same world on
every machine. Business events are simulated per order (order -> invoice -> shipments -> payments), each
event happening only if its date falls before `as_of`; keys and document numbers are given afterwards in
date order, as 1C and Bitrix24 would have numbered them.

Tricky matching cases are assigned to chosen parties: each case gets a few percent of the eligible parties
and at least one, so even a small world (scale 60) exercises all of them.
"""

from __future__ import annotations

import gc
import random
from bisect import bisect_right
from datetime import date, datetime, time, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from operator import attrgetter

from b24_1c_assets.sandbox import world_names as names
from b24_1c_assets.sandbox import world_taxids as taxids
from b24_1c_assets.sandbox.world import (
    Contract,
    Deal,
    Invoice,
    Item,
    Line,
    Order,
    Party,
    Payment,
    Shipment,
    Spelling,
    User,
    World,
)

AS_OF = datetime(2026, 11, 20, 18, 0)  # a Friday evening; the world's "now"
HISTORY_DAYS = 183  # documents cover about six months before AS_OF
OUR_DOMAIN = "promsnab-trade.ru"  # the seller's own e-mail domain (users)
CENT = Decimal("0.01")

# Public holidays (month, day) on which nobody ships or pays; weekends too.
_HOLIDAYS = {(1, d) for d in range(1, 9)} | {(2, 23), (3, 8), (5, 1), (5, 9), (6, 12), (11, 4)}

LINE_COUNTS = ((1, 25), (2, 25), (3, 20), (4, 14), (5, 9), (6, 7))  # lines per order
QTY_FACTOR = {"key": 4.0, "regular": 1.5, "small": 1.0}  # bigger clients buy more
SEGMENT_DISCOUNT = {"key": Decimal("0.92"), "regular": Decimal("0.97"), "small": Decimal(1)}
PRESENCE_CHOICE = (("both", 75), ("1c", 15), ("crm", 10))
LEGAL_FORM_CHOICE = (("ООО", 82), ("АО", 10), ("ПАО", 3), ("ЗАО", 5))
SEGMENT_CHOICE = (("key", 12), ("regular", 50), ("small", 38))
IP_SEGMENT_CHOICE = (("regular", 25), ("small", 75))
CITY_CHOICE = tuple(zip(names.CITIES, names.CITY_WEIGHTS))
ORDER_DEAL_CATEGORY_CHOICE = ((0, 55), (1, 35), (2, 10))  # pipelines 0 default, 1 'Опт', 2 'Проекты'
DEAL_CATEGORY_CHOICE = ((0, 60), (1, 30), (2, 10))
DEAL_STAGE_CHOICE = (
    ("NEW", 15),
    ("PREPARATION", 15),
    ("PREPAYMENT_INVOICE", 10),
    ("EXECUTING", 10),
    ("FINAL_INVOICE", 5),
    ("WON", 20),
    ("LOSE", 25),
)
ORDERS_PER_PARTY = {"key": (5, 12), "regular": (2, 5), "small": (1, 3)}  # over the six months
# Contract payment terms in days by segment (0 = not set: the product applies its default).
PAYMENT_TERMS = {
    "key": ((0, 5), (7, 5), (14, 20), (30, 40), (45, 30)),
    "regular": ((0, 15), (7, 15), (14, 25), (30, 30), (45, 15)),
    "small": ((0, 30), (7, 25), (14, 25), (30, 15), (45, 5)),
}
# How a customer pays one order (weights): in advance, on time, late, partly, never, too much, per shipment,
# or in two or three instalments.
PAYMENT_BEHAVIOURS = (
    ("prepay", 10),
    ("ontime", 34),
    ("late", 15),
    ("partial", 8),
    ("never", 6),
    ("overpay", 3),
    ("per_shipment", 12),
    ("instalments", 12),
)
DEAL_STAGES_OPEN = ("NEW", "PREPARATION", "PREPAYMENT_INVOICE", "EXECUTING", "FINAL_INVOICE")
DEAL_TOPICS = (
    "Поставка кабельной продукции",
    "Поставка стройматериалов",
    "Комплектация объекта",
    "Заявка с сайта",
    "Повторный заказ",
    "Тендер",
    "Монтаж вентиляции",
    "Электромонтаж",
    "Сервисный договор",
    "Поставка расходников",
)

# Share of each matching case among eligible parties (each case also gets at least one party).
CASE_SHARES = {
    "inn_spaces_crm": 0.03,
    "inn_missing_crm": 0.04,
    "inn_typo_crm": 0.02,
    "inn_typo_1c": 0.01,
    "kpp_missing_crm": 0.04,
    "kpp_missing_1c": 0.02,
    "dup_1c": 0.03,
    "dup_crm": 0.04,
    "linked": 0.15,
    "yo": 0.02,
    "similar_pair": 0.02,
    "email_noise": 0.06,
}

# Title styles per system, with weights. Every style is used at least once (coverage), then drawn.
ONEC_TITLE_STYLES = (("quoted", 60), ("guillemets", 14), ("full", 10), ("form_after", 5), ("spaces", 5), ("upper", 6))
CRM_TITLE_STYLES = (
    ("quoted", 28),
    ("bare", 18),
    ("guillemets", 10),
    ("form_after", 14),
    ("full", 6),
    ("spaces", 8),
    ("upper", 6),
    ("lower", 5),
    ("latin_form", 5),
)
PHONE_STYLES = (
    ("e164", 20),
    ("paren8", 22),
    ("space7", 14),
    ("plain8", 12),
    ("dash7", 8),
    ("paren7", 18),
    ("local10", 6),
)
_LATIN_LOOKALIKE = str.maketrans("ОАЕРСХВКМТ", "OAEPCXBKMT")


def _money(value: float | Decimal) -> Decimal:
    return Decimal(value).quantize(CENT, ROUND_HALF_UP)


def _is_workday(day: date) -> bool:
    return day.weekday() < 5 and (day.month, day.day) not in _HOLIDAYS


def _workday_on_or_after(day: date) -> date:
    while not _is_workday(day):
        day += timedelta(days=1)
    return day


class WorldGenerator:
    """Builds one `World`; use `run()` once."""

    def __init__(self, seed: int, scale: int, as_of: datetime = AS_OF) -> None:
        if scale < 1:
            raise ValueError(f"world scale must be at least 1 party, got {scale}")
        self.seed, self.scale, self.as_of = seed, scale, as_of
        self.rng = random.Random(seed)
        self.start_day = (as_of - timedelta(days=HISTORY_DAYS)).date()
        self.workdays = [
            d
            for d in (self.start_day + timedelta(days=i) for i in range(HISTORY_DAYS + 1))
            if _is_workday(d) and datetime.combine(d, time(9)) < as_of
        ]
        self.users: list[User] = []
        self.parties: list[Party] = []
        self.contracts: list[Contract] = []
        self.items: list[Item] = []
        self.deals: list[Deal] = []
        self.orders: list[Order] = []
        self.invoices: list[Invoice] = []
        self.shipments: list[Shipment] = []
        self.payments: list[Payment] = []
        self._inns: set[str] = set()
        self._domains: set[str] = set()
        self._contract_seq = 0
        self._prices: dict[str, list[Decimal]] = {}
        first = self.start_day - timedelta(days=31)
        days = [first + timedelta(days=i) for i in range(HISTORY_DAYS + 400)]
        self._next_workday: dict[date, date] = {}
        for day in reversed(days):
            if _is_workday(day) or day == days[-1]:
                following = day
            self._next_workday[day] = following

    # -- entry point -----------------------------------------------------------------------------------
    def run(self) -> World:
        # Millions of small acyclic objects: the cyclic GC would rescan them over and over for nothing.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run()
        finally:
            if was_enabled:
                gc.enable()

    def _run(self) -> World:
        self._make_users()
        self._make_items()
        self._make_parties()
        self._assign_name_cases()
        for party in self.parties:
            self._fill_contacts(party)
        self._make_spellings()
        contracts_by_party = self._make_contracts()
        sellable = [it for it in self.items if not it.deleted] or self.items
        for party in self.parties:
            if party.presence != "crm":
                self._simulate_sales(party, contracts_by_party[party.key], sellable)
            if party.presence != "1c":
                self._make_open_deals(party, sellable)
        self._number_documents()
        world = World(
            seed=self.seed,
            scale=self.scale,
            as_of=self.as_of,
            users=self.users,
            parties=self.parties,
            contracts=self.contracts,
            items=self.items,
            deals=self.deals,
            orders=self.orders,
            invoices=self.invoices,
            shipments=self.shipments,
            payments=self.payments,
        )
        self._set_credit_limits(world.expected_balances())
        return world

    # -- helpers ---------------------------------------------------------------------------------------
    def _weighted(self, options: tuple[tuple[object, int], ...]):
        """One option drawn by weight. `options` must be a long-lived tuple (a module constant): its cumulative
        weights are cached by identity, because this is the hot path."""
        table = _CUMULATIVE.get(id(options))
        if table is None:
            values, cum, total = [], [], 0
            for value, weight in options:
                total += weight
                values.append(value)
                cum.append(total)
            table = _CUMULATIVE[id(options)] = (values, cum, total, options)
        values, cum, total, _ = table
        return values[bisect_right(cum, self.rng.random() * total)]

    def _choice(self, seq):
        """rng.choice(seq), cheaper."""
        return seq[int(self.rng.random() * len(seq))]

    def _int(self, low: int, high: int) -> int:
        """randint(low, high), cheaper (random.randint is slow at a million calls)."""
        return low + int(self.rng.random() * (high - low + 1))

    def _covering(self, count: int, options: tuple[tuple[str, int], ...]) -> list[str]:
        """`count` draws from weighted options where every option occurs at least once (if count allows)."""
        forced = [o for o, _ in options][:count]
        drawn = forced + [self._weighted(options) for _ in range(count - len(forced))]
        self.rng.shuffle(drawn)
        return drawn

    def _pick(self, pool: list, share: float) -> list:
        """A few percent of `pool` (at least one when the pool is not empty), in pool order."""
        k = min(len(pool), max(1, round(share * len(pool))))
        chosen = set(self.rng.sample(range(len(pool)), k))
        return [p for i, p in enumerate(pool) if i in chosen]

    def _at(self, day: date, after: datetime | None = None) -> datetime:
        """A moment during office hours of `day`, strictly later than `after` when given."""
        seconds = 9 * 3600 + int(self.rng.random() * 9 * 3600)
        moment = datetime(day.year, day.month, day.day, seconds // 3600, seconds // 60 % 60, seconds % 60)
        if after is not None and moment <= after:
            moment = after + timedelta(minutes=self._int(5, 90))
        return moment

    def _later(self, moment: datetime, min_days: int, max_days: int) -> datetime:
        """A working-day moment `min_days..max_days` calendar days after `moment`."""
        day = moment.date() + timedelta(days=self._int(min_days, max_days))
        day = self._next_workday.get(day) or _workday_on_or_after(day)
        return self._at(day, after=moment)

    # -- users and catalog -----------------------------------------------------------------------------
    def _make_users(self) -> None:
        """id 1 = ops (portal administrator, owner of the integration webhook), 2 = finance, then managers."""
        used: set[str] = set()

        def user(uid: int, department: str, active: bool = True) -> User:
            first, _, last = names.person(self.rng)
            login = f"{names.translit(first)[0]}.{names.translit(last)}"
            email = f"{login}@{OUR_DOMAIN}"
            n = 2
            while email in used:
                email, n = f"{login}{n}@{OUR_DOMAIN}", n + 1
            used.add(email)
            return User(id=uid, name=first, last_name=last, email=email, department=department, active=active)

        self.users.append(user(1, "ops"))
        self.users.append(user(2, "finance"))
        managers = max(5, round(self.scale / 200))
        for i in range(managers):
            self.users.append(user(3 + i, "sales"))
        # A manager who left: inactive in Bitrix24, no clients any more.
        self.users.append(user(3 + managers, "sales", active=False))
        self.manager_ids = [u.id for u in self.users if u.department == "sales" and u.active]

    def _make_items(self) -> None:
        rng = self.rng
        count = max(30, self.scale // 10)
        seen: set[str] = set()
        # Walk the templates round-robin so even 30 items mix goods and services.
        for key in range(1, count + 1):
            template, unit, vat, (lo, hi), kind, options = names.ITEM_TEMPLATES[(key - 1) % len(names.ITEM_TEMPLATES)]
            name = template.format(*(self._choice(o) for o in options))
            article = f"{'УС' if kind == 'service' else 'ТВ'}-{key:05d}"
            if name in seen:
                name = f"{name} ({article})"
            seen.add(name)
            price = _money(rng.uniform(lo, hi))
            if price >= 1000:
                price = price.quantize(Decimal("1")).quantize(CENT)  # big prices: round roubles in a price list
            self.items.append(
                Item(key=key, name=name, article=article, unit=unit, price=price, vat_rate=vat, kind=kind)
            )
        for item in self._pick(self.items, 0.03):
            item.deleted = True  # marked for deletion in 1C (some still sit in the CRM)
        for item in self._pick(self.items, 0.12):
            item.in_crm = False  # new in 1C, not yet a CRM product

    # -- parties ---------------------------------------------------------------------------------------
    def _unique_inn(self, make) -> str:
        while True:
            inn = make()
            if inn not in self._inns:
                self._inns.add(inn)
                return inn

    def _phone(self, city: names.City, mobile: bool) -> str:
        if mobile:
            return f"+7{self._choice(names.MOBILE_CODES)}{self.rng.randrange(10**7):07d}"
        local_len = 10 - len(city.phone_code)
        local = str(self._int(2, 9)) + f"{self.rng.randrange(10 ** (local_len - 1)):0{local_len - 1}d}"
        return f"+7{city.phone_code}{local}"

    def _make_parties(self) -> None:
        rng = self.rng
        branches = 0
        while len(self.parties) < self.scale:
            head = self._new_party(len(self.parties) + 1)
            self.parties.append(head)
            # Some legal entities work with us through branches: same INN and OGRN, own KPP and city.
            # (Past half the world without a branch, the next eligible head gets one, so small worlds have one.)
            eligible = head.kind == "legal" and head.segment != "small" and len(self.parties) < self.scale
            no_branch_yet = not branches and len(self.parties) > self.scale / 2
            if eligible and (rng.random() < 0.08 or no_branch_yet):
                for seq in range(2, 2 + self._int(1, 2)):
                    if len(self.parties) >= self.scale:
                        break
                    self.parties.append(self._new_branch(head, len(self.parties) + 1, seq))
                    branches += 1

    def _new_party(self, key: int) -> Party:
        rng = self.rng
        city = self._weighted(CITY_CHOICE)
        office = self._choice(city.tax_offices)
        presence = self._weighted(PRESENCE_CHOICE)
        reg_year = self._int(2003, 2024)
        if rng.random() < 0.15:
            first, patronymic, last = names.person(rng)
            short = f"{last} {first} {patronymic}"
            inn = self._unique_inn(lambda: taxids.personal_inn(rng, office))
            return Party(
                key=key,
                kind="ip",
                legal_form="ИП",
                short_name=short,
                full_name=f"{names.LEGAL_FORMS_FULL['ИП']} {short}",
                inn=inn,
                kpp=None,
                ogrn=taxids.ogrnip(rng, reg_year, city.region),
                email="",
                phone=self._phone(city, True),
                city=city.name,
                segment=self._weighted(IP_SEGMENT_CHOICE),
                manager_id=self._choice(self.manager_ids),
                presence=presence,
            )
        form = self._weighted(LEGAL_FORM_CHOICE)
        segment = self._weighted(SEGMENT_CHOICE)
        short = names.company_name(rng)
        inn = self._unique_inn(lambda: taxids.legal_inn(rng, office))
        return Party(
            key=key,
            kind="legal",
            legal_form=form,
            short_name=short,
            full_name=f"{names.LEGAL_FORMS_FULL[form]} «{short}»",
            inn=inn,
            kpp=taxids.kpp(office),
            ogrn=taxids.ogrn(rng, reg_year, city.region),
            email="",
            phone=self._phone(city, rng.random() < 0.1),
            city=city.name,
            segment=segment,
            manager_id=self._choice(self.manager_ids),
            presence=presence,
        )

    def _new_branch(self, head: Party, key: int, seq: int) -> Party:
        city = self._weighted(CITY_CHOICE)
        office = self._choice(city.tax_offices)
        return Party(
            key=key,
            kind="legal",
            legal_form=head.legal_form,
            short_name=head.short_name,
            full_name=head.full_name,
            inn=head.inn,
            kpp=taxids.kpp(office, "43", seq),
            ogrn=head.ogrn,
            email="",
            phone=self._phone(city, False),
            city=city.name,
            segment=head.segment,
            manager_id=head.manager_id,
            head_key=head.key,
            presence=head.presence,
        )

    def _assign_name_cases(self) -> None:
        """Names with «ё», and pairs of different parties with look-alike names."""
        rng = self.rng
        heads = [p for p in self.parties if p.kind == "legal" and p.head_key is None]
        branches_of: dict[int, list[Party]] = {}
        for p in self.parties:
            if p.head_key is not None:
                branches_of.setdefault(p.head_key, []).append(p)

        def rename(party: Party, short: str) -> None:
            for p in [party, *branches_of.get(party.key, [])]:
                p.short_name = short
                p.full_name = f"{names.LEGAL_FORMS_FULL[p.legal_form]} «{short}»"

        self.yo_keys = set()
        for party in self._pick([p for p in heads if p.presence == "both"], CASE_SHARES["yo"]):
            rename(party, self._choice(names.NAME_WORDS_YO))
            self.yo_keys.add(party.key)
        pool = [p for p in heads if p.key not in self.yo_keys and not branches_of.get(p.key)]
        rng.shuffle(pool)
        pairs = min(len(pool) // 2, max(1, round(CASE_SHARES["similar_pair"] * len(pool))))
        self.similar_pairs = []
        for i in range(pairs):
            first, second = pool[2 * i], pool[2 * i + 1]
            # The first pair has identical names, the others look-alikes ('Вектор' / 'Вектор-М').
            rename(second, first.short_name if i == 0 else names.similar_name(rng, first.short_name))
            self.similar_pairs.append((first.key, second.key))

    def _fill_contacts(self, party: Party) -> None:
        if party.kind == "ip":
            last, first, patronymic = party.short_name.split(" ")
            login = f"{names.translit(last)}.{names.translit(first)[0]}{names.translit(patronymic)[0]}"
            party.email = f"{login}{self._int(1, 99)}@{self._choice(('yandex.ru', 'mail.ru', 'gmail.com', 'bk.ru'))}"
            return
        if party.head_key is not None:
            # A branch writes from its head office's domain (heads are filled first: they come first).
            domain = self.parties[party.head_key - 1].email.split("@")[1]
            party.email = f"filial{party.key}@{domain}"
            return
        base = names.translit(party.short_name) or "company"
        domain = f"{base}.ru"
        n = 2
        while domain in self._domains:  # another company already took this name's domain
            domain = f"{base}-{names.translit(party.city)[:3]}{n if n > 2 else ''}.ru"
            n += 1
        self._domains.add(domain)
        party.email = f"{self._choice(('info', 'buh', 'office', 'zakaz', 'sales', 'snab'))}@{domain}"

    # -- spellings -------------------------------------------------------------------------------------
    def _title(self, party: Party, style: str) -> str:
        name, form = party.short_name, party.legal_form
        if party.kind == "ip":
            last, first, patronymic = name.split(" ")
            initials = f"{last} {first[0]}.{patronymic[0]}."
            return {
                "quoted": f"ИП {name}",
                "guillemets": f"ИП {initials}",
                "full": party.full_name,
                "form_after": f"{name} ИП",
                "bare": name,
                "spaces": f"ИП  {name} ",
                "upper": f"ИП {name.upper()}",
                "lower": f"ип {name.lower()}",
                "latin_form": f"IP {name}",
            }[style]
        title = {
            "quoted": f'{form} "{name}"',
            "guillemets": f"{form} «{name}»",
            "full": f'{names.LEGAL_FORMS_FULL[form]} "{name}"' if self.rng.random() < 0.5 else party.full_name,
            "form_after": f"{name} {form}",
            "bare": name,
            "spaces": f' {form}  "{name}"  ',
            "upper": f'{form} "{name.upper()}"',
            "lower": f"{form.lower()} {name.lower()}",
            "latin_form": f'{form.translate(_LATIN_LOOKALIKE)} "{name}"',
        }[style]
        if party.head_key is not None and style in ("quoted", "guillemets") and self.rng.random() < 0.5:
            title += f" (филиал г. {party.city})"
        return title

    def _typed_phone(self, e164: str, style: str) -> str:
        national = e164[2:]
        code_len = 4 if national[:4] in _FOUR_DIGIT_CODES else 3
        code, local = national[:code_len], national[code_len:]
        grouped = (
            f"{local[:3]}-{local[3:5]}-{local[5:]}" if len(local) == 7 else f"{local[:2]}-{local[2:4]}-{local[4:]}"
        )
        return {
            "e164": e164,
            "paren8": f"8 ({code}) {grouped}",
            "space7": f"+7 {code} {local}",
            "plain8": f"8{national}",
            "dash7": f"+7-{code}-{grouped}",
            "paren7": f"+7 ({code}) {grouped}",
            "local10": f"({code}) {grouped}",
        }[style]

    def _noisy_email(self, email: str) -> str:
        box, domain = email.split("@")
        variant = self.rng.randrange(3)
        if variant == 0:
            return f"{box.capitalize()}@{domain.upper()} "
        if variant == 1:
            return f" {email.upper()}"
        return f"{box}@{domain.capitalize()}  "

    def _make_spellings(self) -> None:
        rng = self.rng
        both = [p for p in self.parties if p.presence == "both"]
        in_1c = [p for p in self.parties if p.presence != "crm"]
        in_crm = [p for p in self.parties if p.presence != "1c"]
        onec_styles = dict(zip((p.key for p in in_1c), self._covering(len(in_1c), ONEC_TITLE_STYLES)))
        crm_styles = dict(zip((p.key for p in in_crm), self._covering(len(in_crm), CRM_TITLE_STYLES)))
        crm_phones = dict(zip((p.key for p in in_crm), self._covering(len(in_crm), PHONE_STYLES)))

        # Identifier cases are exclusive per party (one broken thing at a time keeps the expected outcome
        # clear): slice a shuffled pool of parties present in both systems.
        pool = list(both)
        rng.shuffle(pool)
        id_case: dict[int, str] = {}
        for case in (
            "inn_typo_1c",
            "inn_typo_crm",
            "inn_missing_crm",
            "inn_spaces_crm",
            "kpp_missing_1c",
            "kpp_missing_crm",
        ):
            eligible = [p for p in pool if p.key not in id_case and (p.kind == "legal" or "kpp" not in case)]
            for p in self._pick(eligible, CASE_SHARES[case]):
                id_case[p.key] = case
        self.id_case = id_case
        dup_1c = {p.key for p in self._pick(in_1c, CASE_SHARES["dup_1c"])}
        dup_crm = {p.key for p in self._pick(in_crm, CASE_SHARES["dup_crm"])}
        linked = {
            p.key for p in self._pick([p for p in both if id_case.get(p.key) != "inn_typo_crm"], CASE_SHARES["linked"])
        }
        email_noise = {p.key for p in self._pick(in_crm, CASE_SHARES["email_noise"])}

        for p in self.parties:
            case = id_case.get(p.key)
            if p.presence != "crm":
                inn = taxids.broken_inn(rng, p.inn) if case == "inn_typo_1c" else p.inn
                kpp = None if case == "kpp_missing_1c" else p.kpp
                phone = self._typed_phone(p.phone, "paren7" if rng.random() < 0.7 else "paren8")
                p.onec_spellings.append(
                    Spelling(
                        title=self._title(p, onec_styles[p.key]),
                        inn=inn,
                        kpp=kpp,
                        ogrn=p.ogrn,
                        email=p.email if rng.random() < 0.95 else None,
                        phone=phone if rng.random() < 0.95 else None,
                    )
                )
                if p.key in dup_1c:
                    # An older card typed again by someone else: other title, often without KPP and contacts.
                    other = "upper" if onec_styles[p.key] != "upper" else "quoted"
                    p.onec_spellings.append(
                        Spelling(
                            title=self._title(p, other),
                            inn=p.inn,
                            kpp=p.kpp if rng.random() < 0.5 else None,
                            ogrn=None,
                            email=None,
                            phone=self._typed_phone(p.phone, "plain8"),
                        )
                    )
            if p.presence != "1c":
                crm_only = p.presence == "crm"
                inn: str | None = p.inn
                if case == "inn_typo_crm":
                    inn = taxids.broken_inn(rng, p.inn)
                elif case == "inn_missing_crm" or (crm_only and rng.random() < 0.3):
                    inn = None
                elif case == "inn_spaces_crm":
                    inn = f"{p.inn[:4]} {p.inn[4:]}" if rng.random() < 0.5 else f" {p.inn} "
                kpp = None if case == "kpp_missing_crm" or inn is None else p.kpp
                title = self._title(p, crm_styles[p.key])
                if p.key in self.yo_keys or (p.kind == "ip" and "ё" in title and rng.random() < 0.5):
                    title = title.replace("ё", "е").replace("Ё", "Е")
                email = self._noisy_email(p.email) if p.key in email_noise else p.email
                phone = self._typed_phone(p.phone, crm_phones[p.key])
                p.crm_spellings.append(
                    Spelling(
                        title=title,
                        inn=inn,
                        kpp=kpp,
                        ogrn=p.ogrn if inn and rng.random() < 0.5 else None,
                        email=email if rng.random() < 0.95 else None,
                        phone=phone if rng.random() < 0.95 else None,
                        linked_onec=p.key in linked,
                    )
                )
                if p.key in dup_crm:
                    # A second company made by another manager (from a lead): other title, often no INN.
                    other = "bare" if crm_styles[p.key] != "bare" else "form_after"
                    p.crm_spellings.append(
                        Spelling(
                            title=self._title(p, other),
                            inn=p.inn if rng.random() < 0.5 else None,
                            kpp=None,
                            ogrn=None,
                            email=p.email.upper() if rng.random() < 0.5 else None,
                            phone=self._typed_phone(p.phone, "paren8"),
                        )
                    )
        self._identity_cases(dup_1c, dup_crm, linked)

    def _identity_cases(self, dup_1c: set[int], dup_crm: set[int], linked: set[int]) -> None:
        """Client identity cases (duplicates on both sides, an earlier integration's links) and their near
        misses, drawn from a stream of their own so the rest of the world stays as it was."""
        rng = random.Random(self.seed * 7919 + 13)
        by_key = {p.key: p for p in self.parties}
        legal_dup_1c = [
            by_key[k]
            for k in sorted(dup_1c)
            if by_key[k].kind == "legal" and len(by_key[k].onec_spellings) > 1 and by_key[k].presence == "both"
        ]
        rng.shuffle(legal_dup_1c)
        self.identity_case: dict[int, str] = {}
        for i, p in enumerate(legal_dup_1c):
            dup = p.onec_spellings[1]
            if i % 3 == 0:  # the old card marked for deletion; an older connector's link still names it
                dup.deleted = True
                crm = p.crm_spellings[0]
                if not crm.linked_onec:
                    crm.linked_onec, crm.originator, crm.origin_of = True, "1C", (p.key, 1)
                    self.identity_case[p.key] = "foreign_deleted"
            else:  # same INN+KPP, typed again and never used: often called so
                dup.kpp = p.kpp
                if rng.random() < 0.5:
                    dup.title += " (дубль)"
                self.identity_case[p.key] = "dup_1c"
        legal_dup_crm = [
            by_key[k]
            for k in sorted(dup_crm)
            if by_key[k].kind == "legal"
            and len(by_key[k].crm_spellings) > 1
            and by_key[k].crm_spellings[0].kpp
            and by_key[k].crm_spellings[0].inn == by_key[k].inn
        ]
        rng.shuffle(legal_dup_crm)
        for i, p in enumerate(legal_dup_crm):
            second = p.crm_spellings[1]
            if i % 3 == 2:  # near miss: the second company carries another (valid) KPP of the same INN
                second.inn, second.kpp = p.inn, p.inn[:4] + "02" + p.kpp[6:]
                self.identity_case.setdefault(p.key, "dup_crm_other_kpp")
            else:  # the same INN+KPP typed twice
                second.inn, second.kpp = p.inn, p.kpp
                self.identity_case.setdefault(p.key, "dup_crm")
        # An earlier connector (ORIGINATOR_ID not trusted in settings) linked some companies: no requisite
        # and the name of years ago.
        pool = [
            p
            for p in self.parties
            if p.presence == "both"
            and p.key not in linked
            and p.key not in self.identity_case
            and len(p.crm_spellings) == 1
            and len(p.onec_spellings) == 1
            and p.head_key is None
        ]
        rng.shuffle(pool)
        count = max(3, round(0.04 * len(pool)))
        for i, p in enumerate(pool[:count]):
            crm = p.crm_spellings[0]
            crm.linked_onec, crm.originator = True, rng.choice(("1C", "unf-connector"))
            if i % 6 == 4:  # near miss: names a record 1C never had
                crm.origin_of = (p.key, 99)
                self.identity_case[p.key] = "foreign_missing"
            elif i % 6 == 5 and len(pool) > 2 * count:  # near miss: another party's record, INN contradicts
                other = pool[-1 - i]  # beyond the cases drawn: a plain party present in 1C
                crm.origin_of = (other.key, 0)
                crm.inn, crm.kpp = p.inn, p.kpp
                self.identity_case[p.key] = "foreign_inn_conflict"
            else:
                crm.inn = crm.kpp = crm.ogrn = None
                crm.title = f"{p.short_name} (старое название)" if rng.random() < 0.5 else crm.title
                self.identity_case[p.key] = "foreign_link"

    # -- contracts and sales ---------------------------------------------------------------------------
    def _make_contracts(self) -> dict[int, list[Contract]]:
        rng = self.rng
        by_party: dict[int, list[Contract]] = {}
        for p in self.parties:
            if p.presence == "crm":
                continue
            for _ in range(1 if rng.random() < 0.75 else 2):
                self._contract_seq += 1
                signed = _workday_on_or_after(self.as_of.date() - timedelta(days=self._int(200, 1600)))
                term = self._weighted(PAYMENT_TERMS[p.segment])
                contract = Contract(
                    key=self._contract_seq,
                    party_key=p.key,
                    number=f"ДП-{signed.year}/{self._contract_seq:04d}",
                    signed_on=signed,
                    payment_term_days=term,
                )
                self.contracts.append(contract)
                by_party.setdefault(p.key, []).append(contract)
        return by_party

    def _lines(self, segment: str, sellable: list[Item]) -> list[Line]:
        """1-6 lines of distinct items with quantities that fit the client's size and its discounted prices."""
        rng = self.rng
        count = min(self._weighted(LINE_COUNTS), len(sellable))
        factor = QTY_FACTOR[segment]
        prices = self._segment_prices(segment, sellable)
        picked: list[int] = []
        while len(picked) < count:
            i = int(rng.random() * len(sellable))
            if i not in picked:
                picked.append(i)
        lines = []
        for i in picked:
            item = sellable[i]
            if item.kind == "service":
                qty = Decimal(1)
            elif item.unit in ("м", "кг"):
                qty = (
                    Decimal(int(self._int(1, 40) * 5 * factor))
                    if rng.random() < 0.7
                    else Decimal(self._int(10, 500)) / 2
                )  # cut lengths / weighed goods: halves
            else:
                qty = Decimal(max(1, int(self._int(1, 40) * factor)))
            lines.append(Line(item_key=item.key, quantity=qty, price=prices[i]))
        return lines

    def _segment_prices(self, segment: str, sellable: list[Item]) -> list[Decimal]:
        """Catalog prices after the segment's discount, positionally like `sellable` (computed once)."""
        prices = self._prices.get(segment)
        if prices is None:
            discount = SEGMENT_DISCOUNT[segment]
            prices = self._prices[segment] = [(it.price * discount).quantize(CENT, ROUND_HALF_UP) for it in sellable]
        return prices

    def _split_lines(self, lines: list[Line]) -> tuple[list[Line], list[Line]] | None:
        """Two shipments of one order: whole lines apart, or one line's quantity split."""
        if len(lines) >= 2:
            cut = self._int(1, len(lines) - 1)
            return lines[:cut], lines[cut:]
        line = lines[0]
        if line.quantity >= 2 and line.quantity == line.quantity.to_integral():
            first = Decimal(self._int(1, int(line.quantity) - 1))
            return ([Line(line.item_key, first, line.price)], [Line(line.item_key, line.quantity - first, line.price)])
        return None

    def _pay(
        self,
        party: Party,
        contract: Contract,
        moment: datetime,
        amount: Decimal,
        order: Order | None,
        invoice: Invoice | None,
    ) -> None:
        """Record a payment if it happened before as_of (references are objects until numbering)."""
        if moment >= self.as_of or amount <= 0:
            return
        rng = self.rng
        cash_ok = amount <= 100000 and (party.kind == "ip" or party.segment == "small")  # cash limit 100k RUB
        linked = rng.random() < 0.9  # sometimes the bank statement names no order: settled by contract
        self.payments.append(
            Payment(
                key=0,
                number="",
                date=moment,
                party_key=party.key,
                contract_key=contract.key,
                amount=amount,
                channel="cash" if cash_ok and rng.random() < 0.3 else "bank",
                order_key=order if linked else None,
                invoice_key=invoice if linked else None,  # type: ignore[arg-type]
                posted=rng.random() > 0.005,
            )
        )

    def _simulate_sales(self, party: Party, contracts: list[Contract], sellable: list[Item]) -> None:
        rng = self.rng
        n_orders = self._int(*ORDERS_PER_PARTY[party.segment])
        for _ in range(n_orders):
            contract = self._choice(contracts)
            # Customers pay "on terms"; without agreed terms they take about ten days.
            term = contract.payment_term_days or 10
            opened = self._at(self._choice(self.workdays))
            lines = self._lines(party.segment, sellable)
            order = Order(key=0, number="", date=opened, party_key=party.key, contract_key=contract.key, lines=lines)
            self.orders.append(order)
            if party.presence == "both" and rng.random() < 0.45:
                # Made from a CRM deal that was won shortly before.
                won_day = opened.date() - timedelta(days=self._int(1, 20))
                while not _is_workday(won_day):
                    won_day -= timedelta(days=1)
                created = self._at(won_day)
                deal = Deal(
                    key=0,
                    party_key=party.key,
                    title=f"{self._choice(DEAL_TOPICS)}: {party.short_name}",
                    category_id=self._weighted(ORDER_DEAL_CATEGORY_CHOICE),
                    stage="WON",
                    lines=list(lines),
                    created=created,
                    manager_id=party.manager_id,
                    order_key=order,
                )  # type: ignore[arg-type]
                self.deals.append(deal)
                order.deal_key = deal  # type: ignore[assignment]
            roll = rng.random()
            if roll < 0.015:
                order.posted, order.deleted = False, True
                continue
            if roll < 0.035:
                order.posted = False  # a draft nobody finished
                continue

            invoice = None
            if rng.random() < 0.95:
                invoice = Invoice(
                    key=0,
                    number="",
                    date=self._later(opened, 0, 1),
                    party_key=party.key,
                    contract_key=contract.key,
                    order_key=order,
                    lines=list(lines),
                )  # type: ignore[arg-type]
                if invoice.date < self.as_of:
                    self.invoices.append(invoice)
                else:
                    invoice = None
            amount = total = order.amount
            behaviour = self._weighted(PAYMENT_BEHAVIOURS)
            start = invoice.date if invoice else opened
            if behaviour == "prepay":
                share = Decimal(1) if rng.random() < 0.7 else Decimal("0.5")
                paid_at = self._later(start, 1, 4)
                self._pay(party, contract, paid_at, _money(amount * share), order, invoice)
                start = paid_at
                if share < 1:
                    behaviour = "ontime"  # the rest after shipment
                    amount = amount - _money(amount * share)

            parts = self._split_lines(lines) if rng.random() < 0.45 else None
            planned: list[Shipment] = []
            moment = start
            for part in parts or (list(lines),):
                moment = self._later(moment, 1, 7 if not planned else 21)
                planned.append(
                    Shipment(
                        key=0,
                        number="",
                        date=moment,
                        party_key=party.key,
                        contract_key=contract.key,
                        order_key=order,
                        lines=part,  # type: ignore[arg-type]
                        posted=rng.random() > 0.01,
                    )
                )
            shipped = [s for s in planned if s.date < self.as_of]
            self.shipments.extend(shipped)
            if rng.random() < 0.55:
                due = _workday_on_or_after(planned[-1].date.date() + timedelta(days=term))
                order.due_dates = [(due, total)]
            if behaviour == "prepay" or not shipped or len(shipped) < len(planned) and behaviour != "per_shipment":
                continue  # paid in advance, or the customer waits for the rest of the goods
            last = shipped[-1].date
            if behaviour in ("ontime", "late") and len(shipped) > 1 and amount == total and rng.random() < 0.6:
                behaviour = "per_shipment" if behaviour == "ontime" else "late_per_shipment"
            if behaviour == "ontime":
                self._pay(party, contract, self._later(last, 0, term), amount, order, invoice)
            elif behaviour == "late":
                self._pay(party, contract, self._later(last, term + 5, term + 60), amount, order, invoice)
            elif behaviour == "partial":
                part_amount = _money(amount * Decimal(self._int(30, 70)) / 100).quantize(Decimal("100")).quantize(CENT)
                self._pay(party, contract, self._later(last, 0, term), part_amount, order, invoice)
                if rng.random() < 0.6:
                    self._pay(
                        party, contract, self._later(last, term + 10, term + 70), amount - part_amount, order, invoice
                    )
            elif behaviour == "overpay":
                extra = Decimal(self._choice((1000, 5000, 10000, 50000)))
                rounded = (amount / extra).to_integral_value(rounding="ROUND_CEILING") * extra
                self._pay(party, contract, self._later(last, 0, term), _money(rounded + extra), order, invoice)
            elif behaviour == "instalments":
                count = self._int(2, 3)
                part_amount = _money(_money(amount / count).quantize(Decimal("1000"), ROUND_DOWN)) or _money(
                    amount / count
                )
                moment = last
                for i in range(count):
                    moment = self._later(moment, 3 if i else 0, term // 2 + 10)
                    self._pay(
                        party,
                        contract,
                        moment,
                        part_amount if i < count - 1 else amount - part_amount * (count - 1),
                        order,
                        invoice,
                    )
            elif behaviour in ("per_shipment", "late_per_shipment"):
                delay = (0, term) if behaviour == "per_shipment" else (term + 5, term + 45)
                for s in shipped:
                    self._pay(party, contract, self._later(s.date, *delay), s.amount, order, invoice)
        if rng.random() < 0.06:
            # A round advance "for future deliveries" with no order yet.
            when = self._at(self._choice(self.workdays[-25:]))
            self._pay(
                party, self._choice(contracts), when, _money(self._choice((10, 25, 50, 100, 200)) * 1000), None, None
            )

    def _make_open_deals(self, party: Party, sellable: list[Item]) -> None:
        """Deals that are not (yet) 1C orders: in progress, lost, or won before the integration."""
        count = self._int(1, 4) if party.presence == "crm" else self._int(0, 3)
        for _ in range(count):
            stage = self._weighted(DEAL_STAGE_CHOICE)
            recent = stage in DEAL_STAGES_OPEN
            day = self._choice(self.workdays[-30:] if recent else self.workdays)
            self.deals.append(
                Deal(
                    key=0,
                    party_key=party.key,
                    title=f"{self._choice(DEAL_TOPICS)}: {party.short_name}",
                    category_id=self._weighted(DEAL_CATEGORY_CHOICE),
                    stage=stage,
                    lines=self._lines(party.segment, sellable),
                    created=self._at(day),
                    manager_id=party.manager_id,
                )
            )

    # -- numbering and limits --------------------------------------------------------------------------
    def _number_documents(self) -> None:
        """Keys and numbers in date order (as the systems assign them); object references become keys."""
        by_date = attrgetter("date")
        for docs in (self.orders, self.invoices, self.shipments):
            docs.sort(key=by_date)
            for i, doc in enumerate(docs, 1):
                doc.key, doc.number = i, f"НФНФ-{i:06d}"
        self.payments.sort(key=by_date)
        counters = {"bank": 0, "cash": 0}
        for i, pay in enumerate(self.payments, 1):
            counters[pay.channel] += 1
            pay.key, pay.number = i, f"НФНФ-{counters[pay.channel]:06d}"
        self.deals.sort(key=attrgetter("created"))
        for i, deal in enumerate(self.deals, 1):
            deal.key = i
        # Every document kind is numbered now: swap the object references for keys.
        for order in self.orders:
            if order.deal_key is not None:
                order.deal_key = order.deal_key.key  # type: ignore[attr-defined]
        for doc in (*self.invoices, *self.shipments, *self.payments):
            if doc.order_key is not None:
                doc.order_key = doc.order_key.key  # type: ignore[attr-defined]
        for pay in self.payments:
            if pay.invoice_key is not None:
                pay.invoice_key = pay.invoice_key.key  # type: ignore[attr-defined]
        for deal in self.deals:
            if deal.order_key is not None:
                deal.order_key = deal.order_key.key  # type: ignore[attr-defined]

    def _set_credit_limits(self, balances: dict[int, Decimal]) -> None:
        """Limits for most clients, above their debt; a few clients are already over their limit."""
        rng = self.rng
        floor = {"key": 1_000_000, "regular": 300_000, "small": 100_000}
        share = {"key": 1.0, "regular": 0.85, "small": 0.6}
        step = Decimal(50_000)
        for p in self.parties:
            if rng.random() < share[p.segment] * (0.7 if p.kind == "ip" else 1):
                need = max(balances.get(p.key, Decimal(0)), Decimal(0)) * Decimal(str(rng.uniform(1.3, 3.0)))
                limit = max(Decimal(floor[p.segment]), (need / step).to_integral_value(rounding="ROUND_CEILING") * step)
                p.credit_limit = limit.quantize(CENT)
        debtors = [p for p in self.parties if p.credit_limit is not None and balances.get(p.key, 0) > 20_000]
        over_limit = self._pick(debtors, 0.04) if debtors else []
        # At least one of them is in the CRM with a deal in progress: the case a credit hold acts on.
        open_deals = {d.party_key for d in self.deals if d.stage in DEAL_STAGES_OPEN}
        in_crm = [p for p in debtors if p.key in open_deals]
        if in_crm and not any(p.key in open_deals for p in over_limit):
            over_limit.append(self._choice(in_crm))
        for p in over_limit:
            over = balances[p.key] * Decimal(str(rng.uniform(0.5, 0.9)))
            limit = (over / 10_000).to_integral_value(rounding="ROUND_FLOOR") * 10_000
            p.credit_limit = max(Decimal(10_000), limit).quantize(CENT)


_CUMULATIVE: dict[int, tuple[list, list[int], int, tuple]] = {}  # id(options) -> table (keeps options alive)
_FOUR_DIGIT_CODES = {c.phone_code for c in names.CITIES if len(c.phone_code) == 4}
