"""Normalisers on real-world spellings, one value at a time and over whole extracts."""

from __future__ import annotations

import pytest

from b24_1c_assets.domain.normalize import (
    is_free_mail,
    kpp_reason_code,
    normalize_crm_companies,
    normalize_email,
    normalize_emails,
    normalize_inn,
    normalize_kpp,
    normalize_name,
    normalize_ogrn,
    normalize_onec_counterparties,
    normalize_phone,
    normalize_phones,
)
from b24_1c_assets_tests.domain.conftest import crm_frame, onec_frame


@pytest.mark.parametrize(
    "raw, value, reason",
    [
        ("7707083893", "7707083893", None),  # Sberbank, 10 digits
        (" 7707 083 893 ", "7707083893", None),
        ("7707-083-893", "7707083893", None),
        ("7707\u00a0083893", "7707083893", None),  # NBSP from Excel
        ("500100732259", "500100732259", None),  # 12 digits, personal
        ("7707083894", "7707083894", "bad_checksum"),
        ("500100732250", "500100732250", "bad_checksum"),
        ("77070838", "77070838", "bad_length"),
        ("77O7083893", "77O7083893", "bad_format"),  # letter O typed for zero
        ("", None, "empty"),
        ("   ", None, "empty"),
        (None, None, "empty"),
        (float("nan"), None, "empty"),
    ],
)
def test_inn(raw, value, reason):
    assert tuple(normalize_inn(raw)) == (value, reason)


@pytest.mark.parametrize(
    "raw, value, reason",
    [
        ("770701001", "770701001", None),
        ("7707 01 001", "770701001", None),
        ("7707AB001", "7707AB001", None),  # Latin capitals allowed in the reason code
        ("7707ab001", "7707AB001", None),
        ("7707АВ001", "7707AB001", None),  # Cyrillic look-alikes folded
        ("77070100", "77070100", "bad_length"),
        ("7707010011", "7707010011", "bad_length"),
        ("77A701001", "77A701001", "bad_format"),  # letters only in positions 5-6
        ("7707Ж1001", "7707Ж1001", "bad_format"),
        (None, None, "empty"),
    ],
)
def test_kpp(raw, value, reason):
    assert tuple(normalize_kpp(raw)) == (value, reason)


def test_kpp_reason_code():
    assert kpp_reason_code("770701001") == "01"
    assert kpp_reason_code("165543001") == "43"
    assert kpp_reason_code(None) is None


@pytest.mark.parametrize(
    "raw, value, reason",
    [
        ("1027700132195", "1027700132195", None),  # OGRN
        ("1 027 700 132 195", "1027700132195", None),
        ("304500116000157", "304500116000157", None),  # OGRNIP
        ("1027700132196", "1027700132196", "bad_checksum"),
        ("102770013219", "102770013219", "bad_length"),
        (None, None, "empty"),
    ],
)
def test_ogrn(raw, value, reason):
    assert tuple(normalize_ogrn(raw)) == (value, reason)


@pytest.mark.parametrize(
    "raw, key, form",
    [
        ('ООО "Ромашка"', "ромашка", "ООО"),
        ("ООО «Ромашка»", "ромашка", "ООО"),
        ("ООО „Ромашка“", "ромашка", "ООО"),
        ("ООО “Ромашка”", "ромашка", "ООО"),
        ("Ромашка ООО", "ромашка", "ООО"),
        ("ромашка, ооо", "ромашка", "ООО"),
        ("Общество с ограниченной ответственностью «Ромашка»", "ромашка", "ООО"),
        ('ОБЩЕСТВО С ОГРАНИЧЕННОЙ ОТВЕТСТВЕННОСТЬЮ "РОМАШКА"', "ромашка", "ООО"),
        ('OOO "Ромашка"', "ромашка", "ООО"),  # Latin OOO
        ("000 Ромашка", "ромашка", "ООО"),  # zeros
        ('ООО "ДОМ КОМИКСОВ "МАЯК""', "домкомиксовмаяк", "ООО"),  # nested doubled quotes
        ("ООО  Альфа-Строй ", "альфастрой", "ООО"),
        ("Ёлка-Сервис", "елкасервис", None),
        ("АО «Вектор»", "вектор", "АО"),
        ("Акционерное общество «Вектор»", "вектор", "АО"),
        ("ЗАО Вектор", "вектор", "ЗАО"),
        ("3AO Вектор", "вектор", "ЗАО"),  # digit 3 + Latin A, O
        ('Закрытое акционерное общество "Вектор"', "вектор", "ЗАО"),
        ("ПАО Сбербанк", "сбербанк", "ПАО"),
        ("Публичное акционерное общество «Сбербанк России»", "сбербанкроссии", "ПАО"),
        ("ОАО «РЖД»", "ржд", "ОАО"),
        ("Открытое акционерное общество «Российские железные дороги»", "российскиежелезныедороги", "ОАО"),
        ("Непубличное акционерное общество «Север»", "север", "НАО"),
        ("ИП Иванов Иван Иванович", "ивановиваниванович", "ИП"),
        ("Индивидуальный предприниматель Иванов Иван Иванович", "ивановиваниванович", "ИП"),
        ("Иванов Иван Иванович ИП", "ивановиваниванович", "ИП"),
        ("ФГУП «Почта России»", "почтароссии", "ФГУП"),
        ("Аоника", "аоника", None),  # starts with 'ао' but is a word
        ("АО", "ао", None),  # a bare form is kept as the name
        ("", None, None),
        (None, None, None),
    ],
)
def test_name_key(raw, key, form):
    assert tuple(normalize_name(raw)) == (key, form)


@pytest.mark.parametrize(
    "raw, value, reason",
    [
        ("Buh@Romashka.RU ", "buh@romashka.ru", None),
        ("<sales@romashka.ru>", "sales@romashka.ru", None),
        ("mailto:Info@Romashka.ru", "info@romashka.ru", None),
        ("buh@romashka", "buh@romashka", "bad_format"),
        ("buh romashka.ru", "buh romashka.ru", "bad_format"),
        ("", None, "empty"),
    ],
)
def test_email(raw, value, reason):
    assert tuple(normalize_email(raw)) == (value, reason)


def test_email_lists_and_free_mail():
    assert normalize_emails("a@x.ru; B@X.ru, bad@") == (["a@x.ru", "b@x.ru"], ["bad@"])
    assert normalize_emails(["c@y.ru", None, "c@Y.ru"]) == (["c@y.ru"], [])
    assert normalize_emails(None) == ([], [])
    assert is_free_mail("ivanov@mail.ru") and is_free_mail("x@gmail.com")
    assert not is_free_mail("buh@romashka.ru")


@pytest.mark.parametrize(
    "raw, value, reason",
    [
        ("8 (495) 123-45-67", "+74951234567", None),
        ("+7 495 1234567", "+74951234567", None),
        ("84951234567", "+74951234567", None),
        ("495 123 45 67", "+74951234567", None),
        ("+7 (916) 123-45-67", "+79161234567", None),
        ("8-800-555-35-35", "+78005553535", None),
        ("+7 (495) 123-45-67 доб. 123", "+74951234567", None),  # extension dropped
        ("+375 29 123 45 67", "+375291234567", None),  # Belarus stays Belarus
        ("12345", None, "invalid"),
        ("телефон", None, "unparseable"),
        (None, None, "empty"),
    ],
)
def test_phone(raw, value, reason):
    assert tuple(normalize_phone(raw)) == (value, reason)


def test_plain_russian_numbers_read_as_phonenumbers_parses_them():
    """'+7' and ten digits skip phonenumbers' text parsing: the same verdict for every code range."""
    import random

    import phonenumbers

    from b24_1c_assets.domain.normalize import _parse_phone

    def parsed(text: str):
        number = phonenumbers.parse(text, "RU")
        if not phonenumbers.is_valid_number(number):
            return (None, "invalid")
        return (phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None)

    pick = random.Random(7)
    texts = [f"+7{code}{pick.randint(0, 9_999_999):07d}" for code in range(100, 1000) for _ in range(2)]
    assert [tuple(_parse_phone.__wrapped__(t, "RU")) for t in texts] == [parsed(t) for t in texts]


def test_phone_lists_are_sets():
    assert normalize_phones(["8 (495) 123-45-67", "+74951234567", "000"]) == (["+74951234567"], ["000"])


def test_onec_extract_normalised_with_rejects():
    onec = onec_frame(
        [
            {
                "ref_key": "A1",
                "description": "Ромашка",
                "full_name": "ООО «Ромашка»",
                "inn": "7707 083 893",
                "kpp": "770701001",
                "email": "Buh@Romashka.ru",
                "phone": "8 (495) 123-45-67",
            },
            {"ref_key": "a2", "description": "Лютик", "inn": "7707083894", "kpp": None, "phone": "abc"},
        ]
    )
    out, rejects = normalize_onec_counterparties(onec)
    first = out.iloc[0]
    assert (first["ref_key"], first["inn"], first["inn_valid"], first["name_key"], first["legal_form"]) == (
        "a1",
        "7707083893",
        True,
        "ромашка",
        "ООО",
    )
    assert (first["email"], first["phone"]) == ("buh@romashka.ru", "+74951234567")
    second = out.iloc[1]
    assert (second["inn_valid"], second["inn_reason"], second["kpp_reason"]) == (False, "bad_checksum", "empty")
    assert sorted(zip(rejects["record_id"], rejects["problem"])) == [
        ("a2", "inn_bad_checksum"),
        ("a2", "phone_unparseable"),
    ]


def test_crm_extract_keeps_good_rows_next_to_bad_ones():
    crm = crm_frame(
        [
            {
                "company_id": 1,
                "title": "ООО Ромашка",
                "inn": "7707083893",
                "emails": ["A@x.ru", "a@x.ru"],
                "phones": ["+74951234567", "84951234567"],
                "onec_ref_uf": " ABC ",
            },
            {"company_id": 2, "title": None, "inn": "12", "ogrn": "1027700132196", "emails": None, "phones": None},
        ]
    )
    out, rejects = normalize_crm_companies(crm)
    assert out.loc[0, "emails"] == ["a@x.ru"] and out.loc[0, "phones"] == ["+74951234567"]
    assert out.loc[0, "onec_ref_uf"] == "abc"
    assert out.loc[1, "emails"] == [] and out.loc[1, "name_key"] is None
    assert set(rejects["problem"]) == {"inn_bad_length", "ogrn_bad_checksum"}
