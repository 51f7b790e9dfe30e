"""Normalisation of client identifiers and contacts (pure functions, no I/O).

Every normaliser works on one raw value and returns the normalised value plus a *reason* that is
``None`` when the value is valid, or a short code saying what is wrong (``'empty'``, ``'bad_length'``,
``'bad_checksum'`` ...). The ``normalize_onec_counterparties`` / ``normalize_crm_companies`` functions
apply them to whole extracts (100k rows): cheap string work is done with pandas ``.str`` operations and
the expensive per-value checks (checksums, phone parsing, name folding) run once per *distinct* value.

Identifiers keep their compacted digits even when invalid, so a reviewer can see what was typed and
candidate generation can still use them; only a ``None`` reason makes them usable for automatic matching.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import NamedTuple

import pandas as pd
import phonenumbers
from stdnum import exceptions as stdnum_errors
from stdnum.ru import inn as stdnum_inn
from stdnum.ru import ogrn as stdnum_ogrn


class Normalized(NamedTuple):
    """A normalised value and why it is not usable (``reason is None`` = valid)."""

    value: str | None
    reason: str | None

    @property
    def valid(self) -> bool:
        return self.reason is None and self.value is not None


class NameKey(NamedTuple):
    """A company name folded for comparison, and the legal form found in it (``'ООО'``, ``'ИП'``, None)."""

    name_key: str | None
    legal_form: str | None


# Separators people type inside identifiers: spaces (incl. NBSP), dashes of all kinds, dots, slashes.
_ID_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212._/]+")
_KPP_RE = re.compile(r"^\d{4}[\dA-Z]{2}\d{3}$")
# Cyrillic look-alikes typed in a KPP reason code are folded to the Latin capitals the ФНС uses.
_KPP_LOOKALIKES = str.maketrans("АВЕКМНОРСТХ", "ABEKMHOPCTX")


def _is_blank(raw: object) -> bool:
    if raw is None:
        return True
    if isinstance(raw, float) and raw != raw:  # NaN from pandas
        return True
    return isinstance(raw, str) and not raw.strip()


def _compact_id(raw: object) -> str:
    return _ID_SEPARATORS.sub("", str(raw).strip())


def _stdnum_reason(exc: Exception) -> str:
    if isinstance(exc, stdnum_errors.InvalidLength):
        return "bad_length"
    if isinstance(exc, stdnum_errors.InvalidChecksum):
        return "bad_checksum"
    return "bad_format"


@functools.lru_cache(maxsize=200_000)
def _check_inn(compact: str) -> Normalized:
    try:
        return Normalized(stdnum_inn.validate(compact), None)
    except stdnum_errors.ValidationError as exc:
        return Normalized(compact, _stdnum_reason(exc))


def normalize_inn(raw: object) -> Normalized:
    """INN (ИНН): 10 digits for organisations, 12 for individuals/ИП, checksum verified by python-stdnum.

    >>> normalize_inn(' 7707-083-893 ')
    Normalized(value='7707083893', reason=None)
    """
    if _is_blank(raw):
        return Normalized(None, "empty")
    return _check_inn(_compact_id(raw))


@functools.lru_cache(maxsize=200_000)
def _check_ogrn(compact: str) -> Normalized:
    try:
        return Normalized(stdnum_ogrn.validate(compact), None)
    except stdnum_errors.ValidationError as exc:
        return Normalized(compact, _stdnum_reason(exc))


def normalize_ogrn(raw: object) -> Normalized:
    """OGRN (13 digits, legal entity) or OGRNIP (15 digits, ИП), checksum verified by python-stdnum."""
    if _is_blank(raw):
        return Normalized(None, "empty")
    return _check_ogrn(_compact_id(raw))


def normalize_kpp(raw: object) -> Normalized:
    """KPP (КПП) has no checksum: check its structure, 4 digits + 2 digits-or-capitals + 3 digits.

    Latin capitals are allowed in the reason code (positions 5-6); Cyrillic look-alikes are folded to them.
    """
    if _is_blank(raw):
        return Normalized(None, "empty")
    compact = _compact_id(raw).upper().translate(_KPP_LOOKALIKES)
    if len(compact) != 9:
        return Normalized(compact, "bad_length")
    if not _KPP_RE.match(compact):
        return Normalized(compact, "bad_format")
    return Normalized(compact, None)


def kpp_reason_code(kpp: str | None) -> str | None:
    """The 2-char reason code of a KPP ('01' = registered at the organisation's own location, head office)."""
    return kpp[4:6] if kpp and len(kpp) == 9 else None


# -- names -------------------------------------------------------------------------------------------

# Canonical legal form -> spellings after folding (lower case, ё->е, punctuation to spaces).
# Short forms accept Latin/digit look-alikes ('OOO', '000', '3AO'); full forms are matched as words.
_LEGAL_FORMS: dict[str, tuple[str, ...]] = {
    "ООО": ("общество с ограниченной ответственностью", "[оo0]{3}"),
    "ОДО": ("общество с дополнительной ответственностью", "[оo0]д[оo0]"),
    "ПАО": ("публичное акционерное общество", "па[оo0]"),
    "НАО": ("непубличное акционерное общество", "н[аa][оo0]"),
    "ЗАО": ("закрытое акционерное общество", "[з3][аa][оo0]"),
    "ОАО": ("открытое акционерное общество", "[оo0][аa][оo0]"),
    "АО": ("акционерное общество", "[аa][оo0]"),
    "ИП": ("индивидуальный предприниматель", "ип"),
    "ФГУП": ("федеральное государственное унитарное предприятие", "фгуп"),
    "ГУП": ("государственное унитарное предприятие", "гуп"),
    "МУП": ("муниципальное унитарное предприятие", "муп"),
    "АНО": ("автономная некоммерческая организация", "ан[оo0]"),
}
# Longest spellings first so 'публичное акционерное общество' wins over 'акционерное общество'.
_FORM_SPELLINGS = sorted(
    ((form, spelling) for form, spellings in _LEGAL_FORMS.items() for spelling in spellings),
    key=lambda fs: -len(fs[1]),
)
_FORM_ALTERNATION = "|".join(f"(?P<f{i}>{spelling})" for i, (_, spelling) in enumerate(_FORM_SPELLINGS))
_LEADING_FORM = re.compile(rf"^(?:{_FORM_ALTERNATION})(?:\s+|$)")
_TRAILING_FORM = re.compile(rf"(?:^|\s+)(?:{_FORM_ALTERNATION})$")
# Everything that is not a letter or digit separates words: quotes of every kind («» “” „“ '"), commas ...
_NON_WORD = re.compile(r"[\W_]+")


def _form_of(match: re.Match) -> str:
    return _FORM_SPELLINGS[int(match.lastgroup[1:])][0]


@functools.lru_cache(maxsize=200_000)
def normalize_name(raw: object) -> NameKey:
    """Fold a company name into a comparison key and detect its legal form.

    Quotes and punctuation dropped, case folded, ё→е, the legal form (short or full, Latin look-alikes
    included) stripped from the start and from the end; words are then joined without spaces, so
    'ООО «Альфа-Строй»', 'Альфа Строй, ооо' and 'Общество с ограниченной ответственностью "АльфаСтрой"'
    all give 'альфастрой'. The key is for comparing; keep the original for display.

    >>> normalize_name('OOO "Ромашка"')
    NameKey(name_key='ромашка', legal_form='ООО')
    """
    if _is_blank(raw):
        return NameKey(None, None)
    text = _NON_WORD.sub(" ", str(raw).casefold().replace("ё", "е")).strip()
    form = None
    match = _LEADING_FORM.search(text)
    if match and match.end() < len(text):  # a bare 'АО' is a name, not a form
        form = _form_of(match)
        text = text[match.end() :]
    match = _TRAILING_FORM.search(text)
    if match and match.start() > 0:
        form = form or _form_of(match)
        text = text[: match.start()]
    key = text.replace(" ", "")
    return NameKey(key or None, form)


# -- e-mail and phone --------------------------------------------------------------------------------

# Loose on purpose: one '@', something before, a dotted domain after, no spaces.
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")
_EMAIL_SPLIT = re.compile(r"[,;\s]+")

# Free-mail domains: a shared address there is weak evidence that two records are the same company.
FREE_MAIL_DOMAINS = frozenset(
    {
        "mail.ru",
        "bk.ru",
        "inbox.ru",
        "list.ru",
        "internet.ru",
        "yandex.ru",
        "ya.ru",
        "yandex.com",
        "rambler.ru",
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "icloud.com",
        "me.com",
        "mail.com",
        "qip.ru",
        "ro.ru",
    }
)


def normalize_email(raw: object) -> Normalized:
    """Trim and lower-case an e-mail (a leading 'mailto:' and surrounding <> dropped), validated loosely."""
    if _is_blank(raw):
        return Normalized(None, "empty")
    value = str(raw).strip().strip("<>").strip().lower()
    if value.startswith("mailto:"):
        value = value[len("mailto:") :]
    if not _EMAIL_RE.match(value):
        return Normalized(value, "bad_format")
    return Normalized(value, None)


def is_free_mail(email: str) -> bool:
    """True when the (normalised) address is on a public free-mail domain."""
    return email.rpartition("@")[2] in FREE_MAIL_DOMAINS


_PHONE_PUNCTUATION_ONLY = re.compile(r"^\+?[\d\s().\-\u2010-\u2015]+$")
_NON_DIGIT = re.compile(r"\D")


def _phone_parse_key(text: str, region: str) -> str:
    """A canonical spelling for plain Russian numbers, so '8 (495) 123-45-67', '+7 495 1234567' and
    '84951234567' are parsed once (phone parsing is the costliest step on 100k rows); others as typed."""
    if region != "RU" or not _PHONE_PUNCTUATION_ONLY.match(text):
        return text
    digits = _NON_DIGIT.sub("", text)
    if text.lstrip().startswith("+"):
        return "+" + digits
    if len(digits) == 11 and digits[0] in "78":
        return "+7" + digits[1:]
    if len(digits) == 10:
        return "+7" + digits
    return text


# '+7' and ten digits, the first not 0: the canonical key of a plain Russian number (_phone_parse_key)
_PLAIN_PLUS7 = re.compile(r"\+7[1-9][0-9]{9}")


@functools.lru_cache(maxsize=400_000)
def _parse_phone(text: str, region: str) -> Normalized:
    if _PLAIN_PLUS7.fullmatch(text):
        # what phonenumbers.parse makes of it (country code 7, the ten digits), without its costly text scan
        number = phonenumbers.PhoneNumber(country_code=7, national_number=int(text[2:]))
    else:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            return Normalized(None, "unparseable")
    if not phonenumbers.is_valid_number(number):
        return Normalized(None, "invalid")
    return Normalized(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None)


def normalize_phone(raw: object, region: str = "RU") -> Normalized:
    """A phone number in E.164 ('8 (495) 123-45-67' -> '+74951234567') via `phonenumbers`; extensions dropped.

    Unparseable or impossible numbers give ``Normalized(None, 'unparseable' | 'invalid')``.
    """
    if _is_blank(raw):
        return Normalized(None, "empty")
    text = str(raw).strip()
    return _parse_phone(_phone_parse_key(text, region), region)


def _as_list(raw: object) -> list:
    if _is_blank(raw):
        return []
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, Iterable):
        return [v for v in raw if not _is_blank(v)]
    return [raw]


def normalize_emails(raw: object) -> tuple[list[str], list[str]]:
    """Normalise one address, a separated string ('a@x.ru; b@y.ru') or a list: (sorted valid, bad ones)."""
    good, bad = set(), []
    for item in _as_list(raw):
        for part in _EMAIL_SPLIT.split(str(item).strip()):
            if not part:
                continue
            result = normalize_email(part)
            if result.valid:
                good.add(result.value)
            else:
                bad.append(part)
    return sorted(good), bad


def normalize_phones(raw: object, region: str = "RU") -> tuple[list[str], list[str]]:
    """Normalise one phone or a list of phones: (sorted distinct E.164 numbers, raw values that failed)."""
    good, bad = set(), []
    for item in _as_list(raw):
        result = normalize_phone(str(item), region)
        if result.valid:
            good.add(result.value)
        else:
            bad.append(str(item))
    return sorted(good), bad


# -- whole extracts ----------------------------------------------------------------------------------

ONEC_COLUMNS = [
    "ref_key",
    "code",
    "description",
    "full_name",
    "inn",
    "kpp",
    "ogrn",
    "kind",
    "email",
    "phone",
    "deletion_mark",
]
CRM_COLUMNS = [
    "company_id",
    "title",
    "inn",
    "kpp",
    "ogrn",
    "originator_id",
    "origin_id",
    "onec_ref_uf",
    "emails",
    "phones",
    "assigned_by_id",
]
REJECT_COLUMNS = ["system", "record_id", "field", "value", "problem"]


def _require_columns(df: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} extract lacks columns {missing}")


def _normalize_series(series: pd.Series, fn) -> tuple[pd.Series, pd.Series]:
    """Apply a one-value normaliser once per distinct value; return (values, reasons) aligned to series."""
    # Compacting separators is vectorised; blanks become None so they map to 'empty'.
    text = series.astype("string").str.strip()
    text = text.mask(text.isna() | (text == ""))
    results = {v: fn(v) for v in text.dropna().unique()}
    values = text.map({v: r.value for v, r in results.items()}).astype(object)
    reasons = text.map({v: r.reason for v, r in results.items()}).astype(object)
    reasons = reasons.where(text.notna(), "empty")
    return values.where(values.notna(), None), reasons.where(reasons.notna(), None)


def _identifier_columns(df: pd.DataFrame) -> dict[str, pd.Series]:
    out = {}
    for col, fn in (("inn", normalize_inn), ("kpp", normalize_kpp), ("ogrn", normalize_ogrn)):
        values, reasons = _normalize_series(df[col], fn)
        out[col] = values
        out[f"{col}_reason"] = reasons
        out[f"{col}_valid"] = reasons.isna()
    return out


def _name_columns(names: pd.Series) -> tuple[pd.Series, pd.Series]:
    distinct = {v: normalize_name(v) for v in names.dropna().unique()}
    keys = names.map({v: r.name_key for v, r in distinct.items()}).astype(object)
    forms = names.map({v: r.legal_form for v, r in distinct.items()}).astype(object)
    return keys.where(keys.notna(), None), forms.where(forms.notna(), None)


def _rejects(system: str, ids: pd.Series, df: pd.DataFrame, norm: dict[str, pd.Series]) -> list[dict]:
    rows = []
    for col in ("inn", "kpp", "ogrn"):
        reasons = norm[f"{col}_reason"]
        bad = reasons.notna() & (reasons != "empty")
        for rid, raw, reason in zip(ids[bad], df.loc[bad, col], reasons[bad]):
            rows.append(
                {"system": system, "record_id": str(rid), "field": col, "value": str(raw), "problem": f"{col}_{reason}"}
            )
    return rows


def normalize_onec_counterparties(onec: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Normalise a 1C Catalog_Контрагенты extract (columns `ONEC_COLUMNS`).

    Returns (normalised frame, rejects). The frame keeps the input columns' meaning but with normalised
    `inn/kpp/ogrn` (+ `*_reason`, `*_valid`), `name_key`, `legal_form`, `emails`/`phones` lists and the
    first of each as `email`/`phone`. Rejects list every bad identifier/contact with the record id.
    """
    _require_columns(onec, ONEC_COLUMNS, "1C counterparties")
    df = onec.reset_index(drop=True)
    ids = df["ref_key"].astype("string").str.strip().str.lower()
    no_id = ids.isna() | (ids == "")
    id_rejects = [
        {"system": "1c", "record_id": "", "field": "ref_key", "value": str(code), "problem": "ref_key_missing"}
        for code in df.loc[no_id, "code"]
    ]
    df, ids = df[~no_id].reset_index(drop=True), ids[~no_id].astype(str).reset_index(drop=True)
    norm = _identifier_columns(df)
    # The legal name (full_name) carries the form more reliably; fall back to the short description.
    names = df["full_name"].where(
        df["full_name"].notna() & (df["full_name"].astype(str).str.strip() != ""), df["description"]
    )
    name_key, legal_form = _name_columns(names)
    short_key, short_form = _name_columns(df["description"])
    emails = df["email"].map(normalize_emails)
    phones = df["phone"].map(normalize_phones)
    out = pd.DataFrame(
        {
            "ref_key": ids,
            "code": df["code"],
            "name": df["description"],
            "full_name": df["full_name"],
            "kind": df["kind"],
            "deletion_mark": df["deletion_mark"].fillna(False).astype(bool),
            **norm,
            "name_key": short_key.where(short_key.notna(), name_key),
            "legal_form": legal_form.where(legal_form.notna(), short_form),
            "emails": emails.map(lambda t: t[0]),
            "phones": phones.map(lambda t: t[0]),
        }
    )
    out["email"] = out["emails"].map(lambda xs: xs[0] if xs else None)
    out["phone"] = out["phones"].map(lambda xs: xs[0] if xs else None)
    rejects = id_rejects + _rejects("1c", ids, df, norm) + _contact_rejects("1c", ids, emails, phones)
    return out, pd.DataFrame(rejects, columns=REJECT_COLUMNS)


def _contact_rejects(system: str, ids: pd.Series, emails: pd.Series, phones: pd.Series) -> list[dict]:
    rows = []
    for field, col, problem in (("email", emails, "email_bad_format"), ("phone", phones, "phone_unparseable")):
        for rid, (_, bad) in zip(ids, col):
            rows.extend(
                {"system": system, "record_id": str(rid), "field": field, "value": b, "problem": problem} for b in bad
            )
    return rows


def _clean_link(series: pd.Series) -> pd.Series:
    text = series.astype("string").str.strip().str.lower()
    return text.mask(text.isna() | (text == "")).astype(object).where(lambda s: s.notna(), None)


def normalize_crm_companies(crm: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Normalise a Bitrix24 company extract (columns `CRM_COLUMNS`; inn/kpp/ogrn from the requisite).

    Returns (normalised frame, rejects); see `normalize_onec_counterparties` for the added columns.
    ID links (`originator_id`, `origin_id`, `onec_ref_uf`) are trimmed and lower-cased (GUIDs).
    """
    _require_columns(crm, CRM_COLUMNS, "Bitrix24 companies")
    df = crm.reset_index(drop=True)
    numeric = pd.to_numeric(df["company_id"], errors="coerce")
    bad_id = numeric.isna() | (numeric % 1 != 0)
    id_rejects = [
        {
            "system": "crm",
            "record_id": str(v),
            "field": "company_id",
            "value": str(title),
            "problem": "company_id_invalid",
        }
        for v, title in zip(df.loc[bad_id, "company_id"], df.loc[bad_id, "title"])
    ]
    df = df[~bad_id].reset_index(drop=True)
    ids = numeric[~bad_id].astype("int64").reset_index(drop=True)
    norm = _identifier_columns(df)
    name_key, legal_form = _name_columns(df["title"])
    emails = df["emails"].map(normalize_emails)
    phones = df["phones"].map(normalize_phones)
    out = pd.DataFrame(
        {
            "company_id": ids,
            "title": df["title"],
            "assigned_by_id": df["assigned_by_id"],
            "originator_id": _clean_link(df["originator_id"]),
            "origin_id": _clean_link(df["origin_id"]),
            "onec_ref_uf": _clean_link(df["onec_ref_uf"]),
            **norm,
            "name_key": name_key,
            "legal_form": legal_form,
            "emails": emails.map(lambda t: t[0]),
            "phones": phones.map(lambda t: t[0]),
        }
    )
    out["email"] = out["emails"].map(lambda xs: xs[0] if xs else None)
    out["phone"] = out["phones"].map(lambda xs: xs[0] if xs else None)
    rejects = id_rejects + _rejects("crm", ids, df, norm) + _contact_rejects("crm", ids, emails, phones)
    return out, pd.DataFrame(rejects, columns=REJECT_COLUMNS)
