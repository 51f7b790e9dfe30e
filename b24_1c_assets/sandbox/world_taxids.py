"""Russian tax identifiers for the sandbox world: INN, KPP, OGRN/OGRNIP with correct check digits.

Check digits come from python-stdnum (the same code the product validates with), so a generated number
is valid exactly when the product's validator says so. `broken_inn` makes the opposite on purpose: a
one-digit typo that fails the checksum, as people type it.
"""

from __future__ import annotations

import random

from stdnum.ru import inn as stdnum_inn
from stdnum.ru import ogrn as stdnum_ogrn


def legal_inn(rng: random.Random, tax_office: str) -> str:
    """A 10-digit INN of an organisation registered at `tax_office` (4 digits)."""
    body = tax_office + f"{rng.randrange(100000):05d}"
    return body + stdnum_inn.calc_company_check_digit(body)


def personal_inn(rng: random.Random, tax_office: str) -> str:
    """A 12-digit INN of an individual (ИП) registered at `tax_office` (4 digits)."""
    body = tax_office + f"{rng.randrange(1000000):06d}"
    return body + stdnum_inn.calc_personal_check_digits(body)


def kpp(tax_office: str, reason: str = "01", seq: int = 1) -> str:
    """KPP = tax office (4) + reason code (2: 01 head office, 43 branch, 50 largest taxpayer) + sequence (3)."""
    return f"{tax_office}{reason}{seq:03d}"


def ogrn(rng: random.Random, year: int, region: str) -> str:
    """A 13-digit OGRN: sign 1/5, year (2), region (2), tax office (2), record number (5), check digit."""
    body = f"{rng.choice('15')}{year % 100:02d}{region}{rng.randrange(1, 100):02d}{rng.randrange(100000):05d}"
    return body + stdnum_ogrn.calc_check_digit(body + "0")


def ogrnip(rng: random.Random, year: int, region: str) -> str:
    """A 15-digit OGRNIP: sign 3, year (2), region (2), record number (9), check digit (mod 13, < 10).

    The official rule is mod 13 mod 10; stdnum accepts only remainders below 10, so we draw until both agree.
    """
    while True:
        body = f"3{year % 100:02d}{region}{rng.randrange(10**9):09d}"
        check = int(body) % 13
        if check < 10:
            return body + str(check)


def broken_inn(rng: random.Random, inn: str) -> str:
    """The same INN with one digit mistyped so that the checksum fails (a realistic typo)."""
    while True:
        pos = rng.randrange(len(inn))
        digit = str((int(inn[pos]) + rng.randrange(1, 10)) % 10)
        typo = inn[:pos] + digit + inn[pos + 1 :]
        if not stdnum_inn.is_valid(typo):
            return typo
