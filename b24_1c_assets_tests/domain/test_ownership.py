"""Field ownership settings and the write plans the sync flows use."""

from __future__ import annotations

from decimal import Decimal

import pytest

from b24_1c_assets.domain.ownership import (
    FieldOwnership,
    UnknownFieldError,
    default_ownership,
    plan_field_writes,
)


def test_packaged_settings_cover_the_issue_fields():
    own = default_ownership()
    for field in ("name", "full_name", "inn", "kpp", "ogrn", "contracts", "debt"):
        assert own.rule(field).owner in ("1c", "shared")
    for field in ("inn", "kpp", "ogrn", "full_name", "contracts", "debt"):
        assert own.rule(field).owner == "1c"
    for field in ("assigned_by_id", "deal_stage", "deal_fields"):
        assert own.rule(field).owner == "crm"
    for field in ("email", "phone", "address"):
        assert (own.rule(field).owner, own.rule(field).rule) == ("shared", "fill_if_empty")


def test_1c_owned_field_overwrites_crm_edit_but_never_1c():
    crm_now = {"inn": "7707083890", "kpp": "770701001"}
    from_1c = {"inn": "7707083893", "kpp": "770701001"}
    assert plan_field_writes("crm", crm_now, from_1c) == {"inn": "7707083893"}
    assert plan_field_writes("1c", from_1c, crm_now) == {}


def test_owner_empty_does_not_wipe_the_other_side():
    assert plan_field_writes("crm", {"ogrn": "1027700132195"}, {"ogrn": None}) == {}


def test_crm_owned_fields_are_never_written():
    assert plan_field_writes("crm", {"assigned_by_id": 5}, {"assigned_by_id": 9}) == {}
    assert plan_field_writes("1c", {"assigned_by_id": None}, {"assigned_by_id": 9}) == {}
    assert plan_field_writes("crm", {"deal_stage": "NEW"}, {"deal_stage": "WON"}) == {}


def test_shared_fields_written_only_where_empty_in_both_directions():
    assert plan_field_writes("crm", {"email": "  "}, {"email": "buh@x.ru"}) == {"email": "buh@x.ru"}
    assert plan_field_writes("crm", {"email": "sales@x.ru"}, {"email": "buh@x.ru"}) == {}
    assert plan_field_writes("1c", {"phone": None}, {"phone": "+74951234567"}) == {"phone": "+74951234567"}
    assert plan_field_writes("1c", {"address": "Москва"}, {"address": "Казань"}) == {}


def test_push_only_computed_fields_follow_1c_even_to_zero_or_none():
    assert plan_field_writes("crm", {"debt": Decimal("10.00")}, {"debt": Decimal("0.00")}) == {"debt": Decimal("0.00")}
    assert plan_field_writes("crm", {"credit_hold": True}, {"credit_hold": None}) == {"credit_hold": None}
    assert plan_field_writes("crm", {"debt": Decimal("5.00")}, {"debt": Decimal("5.00")}) == {}
    assert plan_field_writes("1c", {"debt": None}, {"debt": Decimal("7.00")}) == {}


def test_union_adds_missing_values_and_deletes_nothing():
    own = default_ownership()
    changes = own.plan_field_changes("crm", {"phones": ["+74951234567"]}, {"phones": ["+74951234567", "+79161234567"]})
    assert [(c.field, c.new, c.rule) for c in changes] == [("phones", ["+74951234567", "+79161234567"], "union")]
    assert own.plan_field_writes("crm", {"emails": ["a@x.ru", "b@x.ru"]}, {"emails": ["a@x.ru"]}) == {}


def test_resolve_gives_both_directions():
    own = default_ownership()
    plan = own.resolve("email", onec_value=None, crm_value="buh@x.ru")
    assert set(plan) == {"1c"} and plan["1c"].new == "buh@x.ru"
    plan = own.resolve("inn", onec_value="7707083893", crm_value="7707083890")
    assert set(plan) == {"crm"} and plan["crm"].old == "7707083890"


def test_unknown_field_and_bad_target_are_errors():
    with pytest.raises(UnknownFieldError, match="'favourite_colour'"):
        plan_field_writes("crm", {}, {"favourite_colour": "red"})
    with pytest.raises(ValueError, match="target system"):
        plan_field_writes("bitrix", {}, {"inn": "7707083893"})


def test_settings_file_errors_name_the_field():
    with pytest.raises(ValueError, match="field 'inn' has owner 'erp'"):
        FieldOwnership.from_toml('[fields.inn]\nowner = "erp"\nrule = "owner_wins"\n')
    with pytest.raises(ValueError, match="field 'email' has rule 'merge'"):
        FieldOwnership.from_toml('[fields.email]\nowner = "shared"\nrule = "merge"\n')
    with pytest.raises(ValueError, match="needs a single owner"):
        FieldOwnership.from_toml('[fields.email]\nowner = "shared"\nrule = "owner_wins"\n')


def test_owned_by_lists_fields():
    assert "inn" in default_ownership().owned_by("1c")
    assert "assigned_by_id" in default_ownership().owned_by("crm")
