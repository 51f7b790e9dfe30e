"""The sandbox's one world: the business facts that both the Bitrix24 portal and the 1C base see.

This module holds the *truth layer* only: legal entities, people, goods and the business events between
them, with no system's field names. Each sandbox server projects it into its own records
(`bitrix24_seed.py` -> portal records, `onec_seed.py` -> 1C catalogs, documents and register movements),
and `exchange_files.py` writes the 1C view as exchange-folder files. Because every projection starts from
the same `World`, a client present in both systems is the same party seen twice, and tests can compare
what the product computed with what is true (`World.expected_*`).

Everything is deterministic for a (seed, scale): `generate(seed=7, scale=50)` is the same on every machine.
Money is `Decimal` with two places; dates are naive Moscow local time (1C's convention).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

# Namespace for deterministic 1C GUIDs: uuid5(WORLD_NS, f"{seed}:{kind}:{key}").
WORLD_NS = uuid.UUID("6b1f9a52-0c3e-4d0a-9a51-24b24c1c0001")

PartyKind = Literal["legal", "ip"]  # legal entity (ООО, АО ...) or individual entrepreneur (ИП)
Presence = Literal["both", "1c", "crm"]


@dataclass
class User:
    """A Bitrix24 user (sales manager, finance, ops). 1C knows managers as Catalog_Сотрудники by name."""

    id: int
    name: str
    last_name: str
    email: str
    department: Literal["sales", "finance", "ops"] = "sales"
    active: bool = True


@dataclass
class Spelling:
    """How one system wrote a party down. Several spellings in one system = duplicates there."""

    title: str  # e.g. 'ООО "Ромашка"', 'Ромашка ООО', 'Общество с ограниченной ответственностью «Ромашка»'
    inn: str | None  # as typed; may be None (not filled), or deliberately broken (bad checksum, spaces)
    kpp: str | None
    ogrn: str | None
    email: str | None  # as typed: 'Buh@Romashka.RU ' is fine
    phone: str | None  # as typed: '8 (495) 123-45-67', '+7 495 1234567', '84951234567'
    # CRM only: the 1C Ref_Key already stored on the company (ORIGIN_ID), when an earlier integration
    # linked it. None = not linked.
    linked_onec: bool = False
    # CRM only, for a linked spelling: the ORIGINATOR_ID the link was written under (None = the usual
    # earlier integration, trusted in settings) and the 1C record it names as (party key, 1C spelling
    # index) when that is not the party's first card (a deleted duplicate, no record, another party).
    originator: str | None = None
    origin_of: tuple[int, int] | None = None
    deleted: bool = False  # 1C only: the card is marked for deletion (DeletionMark)


@dataclass
class Party:
    """One real legal entity or one branch of it (same INN, own KPP)."""

    key: int
    kind: PartyKind
    legal_form: str  # 'ООО', 'АО', 'ПАО', 'ИП' ...
    short_name: str  # 'Ромашка' (no form, no quotes)
    full_name: str  # 'Общество с ограниченной ответственностью «Ромашка»'
    inn: str  # valid checksum (10 digits legal, 12 digits ИП)
    kpp: str | None  # 9 chars for legal entities, None for ИП
    ogrn: str | None  # 13 digits legal / 15 digits ИП (OGRNIP), valid checksum
    email: str
    phone: str  # E.164, '+74951234567'
    city: str
    segment: Literal["key", "regular", "small"]
    manager_id: int  # User.id of the responsible manager
    head_key: int | None = None  # for a branch: the head office's Party.key (same INN, other KPP)
    presence: Presence = "both"
    onec_spellings: list[Spelling] = field(default_factory=list)  # 1C catalog entries (len > 1 = dups)
    crm_spellings: list[Spelling] = field(default_factory=list)  # CRM companies (len > 1 = dups)
    credit_limit: Decimal | None = None  # agreed limit (kept in settings / a CRM field, not in UNF)


@dataclass
class Contract:
    """A sales contract (Catalog_ДоговорыКонтрагентов) of a party."""

    key: int
    party_key: int
    number: str
    signed_on: date
    payment_term_days: int  # СрокОплатыПокупателя; 0 = not set (the product applies its default)


@dataclass
class Item:
    """A catalog item (Catalog_Номенклатура / CRM product)."""

    key: int
    name: str
    article: str
    unit: str  # 'шт', 'кг', 'м', 'усл'
    price: Decimal  # retail price, RUB, VAT included
    vat_rate: int  # 20, 10, 0
    kind: Literal["goods", "service"] = "goods"
    deleted: bool = False  # marked for deletion in 1C
    in_crm: bool = True  # already a CRM product (keyed by XML_ID = 1C Ref_Key)


@dataclass
class Line:
    item_key: int
    quantity: Decimal
    price: Decimal

    @property
    def amount(self) -> Decimal:
        return (self.quantity * self.price).quantize(Decimal("0.01"))


@dataclass
class Deal:
    """A CRM deal. `order_key` is set when 1C already holds an order made from it."""

    key: int  # = the CRM deal ID
    party_key: int
    title: str
    category_id: int  # pipeline: 0 default, 1 'Опт', 2 'Проекты'
    # stage id without the C<N>: prefix: NEW, PREPARATION, PREPAYMENT_INVOICE, EXECUTING, FINAL_INVOICE, WON, LOSE
    stage: str
    lines: list[Line]
    created: datetime
    manager_id: int
    order_key: int | None = None

    @property
    def amount(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))


@dataclass
class Order:
    """A 1C customer order (Document_ЗаказПокупателя)."""

    key: int
    number: str  # 'НФНФ-000094'
    date: datetime
    party_key: int
    contract_key: int
    lines: list[Line]
    deal_key: int | None = None
    posted: bool = True
    deleted: bool = False
    due_dates: list[tuple[date, Decimal]] = field(default_factory=list)  # ПлатежныйКалендарь, may be empty

    @property
    def amount(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))


@dataclass
class Invoice:
    """A 1C invoice for payment (Document_СчетНаОплату), usually for an order."""

    key: int
    number: str
    date: datetime
    party_key: int
    contract_key: int
    order_key: int | None
    lines: list[Line]
    posted: bool = True

    @property
    def amount(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))


@dataclass
class Shipment:
    """A 1C shipment (Document_РасходнаяНакладная): creates the debt (РасчетыСПокупателями, Долг, Receipt)."""

    key: int
    number: str
    date: datetime
    party_key: int
    contract_key: int
    order_key: int | None
    lines: list[Line]
    posted: bool = True

    @property
    def amount(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))


@dataclass
class Payment:
    """Money received: Document_ПоступлениеНаСчет (bank) or Document_ПоступлениеВКассу (cash).

    Settles debt of the contract (oldest first); money beyond the debt is an advance (Аванс).
    """

    key: int
    number: str
    date: datetime
    party_key: int
    contract_key: int
    amount: Decimal
    channel: Literal["bank", "cash"]
    order_key: int | None = None
    invoice_key: int | None = None
    posted: bool = True


@dataclass
class World:
    seed: int
    scale: int
    as_of: datetime  # "now" of the world; documents are dated before it
    users: list[User]
    parties: list[Party]
    contracts: list[Contract]
    items: list[Item]
    deals: list[Deal]
    orders: list[Order]
    invoices: list[Invoice]
    shipments: list[Shipment]
    payments: list[Payment]

    def guid(self, kind: str, key: int) -> str:
        """The 1C Ref_Key of an object of this world (stable across runs and servers)."""
        return str(uuid.uuid5(WORLD_NS, f"{self.seed}:{kind}:{key}"))

    # -- truth for tests -------------------------------------------------------------------------
    # Σ posted shipments − Σ posted payments per party, built once and rebuilt when a document list is
    # replaced or grows/shrinks. After changing documents in place (e.g. `posted`), call `reindex()`.
    _balances: dict[int, Decimal] | None = field(default=None, init=False, repr=False, compare=False)
    _balances_stamp: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def reindex(self) -> None:
        """Forget cached truths (call after editing documents of this world in place)."""
        self._balances = None

    def expected_balances(self) -> dict[int, Decimal]:
        """Balance (debt minus advances) of every party with posted documents; missing key = 0."""
        stamp = (id(self.shipments), len(self.shipments), id(self.payments), len(self.payments))
        if self._balances is None or self._balances_stamp != stamp:
            totals: dict[int, Decimal] = {}
            for s in self.shipments:
                if s.posted:
                    totals[s.party_key] = totals.get(s.party_key, Decimal(0)) + s.amount
            for p in self.payments:
                if p.posted:
                    totals[p.party_key] = totals.get(p.party_key, Decimal(0)) - p.amount
            self._balances = {k: v.quantize(Decimal("0.01")) for k, v in totals.items()}
            self._balances_stamp = stamp
        return self._balances

    def expected_balance(self, party_key: int) -> Decimal:
        """Debt minus advances of a party over all its contracts, as 1C's Balance would say."""
        return self.expected_balances().get(party_key, Decimal("0.00"))


def generate(seed: int = 7, scale: int = 50) -> World:
    """A deterministic world of about `scale` parties with their documents (see `world_generator`)."""
    from b24_1c_assets.sandbox.world_generator import WorldGenerator  # it imports this module's classes

    return WorldGenerator(seed, scale).run()
