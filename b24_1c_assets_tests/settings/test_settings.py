"""Typed settings: every shipped file loads, a key left out takes its default, a bad value fails at load naming
the file, the key and the reason, and B24_1C_SETTINGS_DIR points at a customer's copies."""

from decimal import Decimal

import pytest

from b24_1c_assets import settings
from b24_1c_assets.domain.credit_policy import CreditPolicy
from b24_1c_assets.domain.ownership import FieldOwnership
from b24_1c_assets.domain.push_plan import GuardLimits
from b24_1c_assets.settings import SettingsError


@pytest.fixture
def custom(tmp_path, monkeypatch):
    """A customer's settings folder; write(name, text) puts one file in it."""
    folder = tmp_path / "settings"
    folder.mkdir()
    monkeypatch.setenv("B24_1C_SETTINGS_DIR", str(folder))

    def write(name: str, text: str):
        (folder / f"{name}.toml").write_text(text, encoding="utf-8")
        return folder / f"{name}.toml"

    return write


def test_every_shipped_file_loads(monkeypatch):
    monkeypatch.delenv("B24_1C_SETTINGS_DIR", raising=False)
    for name, read in settings.ALL.items():
        assert read() is read(), f"{name} is read once"  # cached: the same object back
    assert isinstance(settings.credit_policy(), CreditPolicy)
    assert isinstance(settings.field_ownership(), FieldOwnership)
    assert settings.client_master().our_originator_id == "1c-unf"
    assert settings.onec_writes().dry_run == settings.DryRunDefaults(onec=True, bitrix24=False)
    assert settings.deal_orders().orders.stages["0"] == ("PREPAYMENT_INVOICE", "EXECUTING")
    assert settings.notifications().finance_digest.department_ids == (2,)


def test_push_guard_limits_per_flow(monkeypatch):
    monkeypatch.delenv("B24_1C_SETTINGS_DIR", raising=False)
    guard = settings.push_guard()
    receivables = guard.limits("company_receivables")
    assert isinstance(receivables, GuardLimits) and receivables.max_change_share == 0.25
    assert "UF_CRM_DEBT_AGING" in receivables.drift_fields
    # keys a flow's table leaves out take GuardLimits' own defaults
    assert guard.limits("deal_holds").max_new_holds == GuardLimits().max_new_holds
    with pytest.raises(SettingsError, match=r"push_guard\.toml: \[no_such_flow\]: no guard limits"):
        guard.limits("no_such_flow")


def test_nested_guard_tables_name_a_flows_parts(custom):
    custom("push_guard", "[company_sync.to_crm]\nmax_changes = 7\n[company_sync.to_1c]\n")
    guard = settings.push_guard()
    assert guard.limits("company_sync.to_crm").max_changes == 7
    assert guard.limits("company_sync.to_1c") == GuardLimits()


def test_keys_left_out_take_the_defaults(custom):
    for name in ("client_master", "deal_orders", "notifications", "onec_writes"):
        custom(name, "")
    assert settings.client_master() == settings.ClientMaster()
    assert settings.onec_writes().max_creates_per_run == 20
    assert settings.onec_writes().dry_run.onec is True and settings.onec_writes().dry_run.bitrix24 is False
    assert settings.notifications().finance_digest.top == 10
    assert settings.deal_orders().catalog.price_type == "Розничная"
    assert settings.deal_orders().invoices.unpaid_stage == "N"


def test_the_override_dir_wins_per_file(custom):
    custom("onec_writes", "max_creates_per_run = 2\n[dry_run]\nonec = false\n")
    assert settings.onec_writes().max_creates_per_run == 2 and settings.onec_writes().dry_run.onec is False
    # a file the folder does not have is the shipped one
    assert settings.client_master().our_originator_id == "1c-unf"


def test_an_edited_file_is_read_again(custom):
    path = custom("notifications", "[finance_digest]\ntop = 3\n")
    assert settings.notifications().finance_digest.top == 3
    path.write_text("[finance_digest]\ntop = 25\n", encoding="utf-8")
    settings.clear_cache()  # the mtime may not move within the filesystem's resolution
    assert settings.notifications().finance_digest.top == 25


@pytest.mark.parametrize(
    "name, text, key, reason",
    [
        ("onec_writes", "max_creates_per_run = 20\nmax_create_per_run = 5\n", "max_create_per_run", "unknown key"),
        ("onec_writes", "dry_run = true\n", "dry_run", "expected a table"),
        ("onec_writes", "max_creates_per_run = -1\n", "max_creates_per_run", "below the minimum"),
        ("onec_writes", 'max_creates_per_run = "20"\n', "max_creates_per_run", "expected a whole number"),
        ("onec_writes", '[dry_run]\nonec = "no"\n', "dry_run.onec", "expected true or false"),
        ("client_master", 'originator_ids = "1c-unf"\n', "originator_ids", "expected a list"),
        ("notifications", '[finance_digest]\nuser_ids = ["1"]\n', r"finance_digest.user_ids\[0\]", "whole number"),
        ("deal_orders", '[orders.deal_fields]\nnumbr = "X"\n', "orders.deal_fields.numbr", "unknown key"),
        ("push_guard", "[orders]\nmax_change_share = 1.5\n", "orders.max_change_share", "above the maximum"),
        ("push_guard", "[orders]\nmax_changes = 5.5\n", "orders.max_changes", "expected a whole number"),
        ("push_guard", "[orders]\nmax_changs = 5\n", "orders.max_changs", "unknown key"),
        ("credit_policy", "[warning]\nlimit_share = 80\n", "warning.limit_share", "above the maximum"),
        ("credit_policy", "[hold]\noverdue_dayz = 30\n", "hold.overdue_dayz", "unknown key"),
        (
            "credit_policy",
            '[[exemptions]]\ninn = "7707083893"\nuntil = "soon"\n',
            r"exemptions\[0\].until",
            "expected a date",
        ),
        ("field_ownership", '[fields.inn]\nowner = "erp"\nrule = "owner_wins"\n', "fields.inn.owner", "not one of"),
        ("field_ownership", '[fields.inn]\nowner = "1c"\n', "fields.inn.rule", "missing"),
    ],
)
def test_a_bad_setting_fails_at_load_naming_file_key_and_reason(custom, name, text, key, reason):
    custom(name, text)
    with pytest.raises(SettingsError, match=rf"{name}\.toml: {key}: .*{reason}"):
        settings.ALL[name]()


def test_credit_policy_is_the_domain_type(custom):
    custom("credit_policy", "[limits]\ndefault = 1000\n[limits.segments]\nkey = 5000\n")
    policy = settings.credit_policy()
    assert policy.default_limit == Decimal("1000") and policy.segment_limits == {"key": Decimal("5000")}


def test_field_ownership_from_the_override_dir(custom):
    custom("field_ownership", '[fields.inn]\nowner = "crm"\nrule = "owner_wins"\n')
    assert settings.field_ownership().owned_by("crm") == ["inn"]
