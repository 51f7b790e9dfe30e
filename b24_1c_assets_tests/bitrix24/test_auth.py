"""Ways in and rights: https only (loopback excepted), the scopes asked before the first write, all missing ones
named at once; the webhook's URL never printed."""

from __future__ import annotations

import pytest

from b24_1c_assets.bitrix24 import ApplicationAuth, Bitrix24Client, MissingScopes, WebhookAuth
from b24_1c_assets.sync.bitrix24_writes import WriteCommand, apply_commands

from .conftest import WEBHOOK_CODE, add_companies


@pytest.mark.parametrize(
    "url, ok",
    [
        ("https://example.bitrix24.ru/rest/1/abc/", True),
        ("http://127.0.0.1:8080/rest/1/abc/", True),  # the sandbox on this machine
        ("http://localhost/rest/1/abc/", True),
        ("http://example.bitrix24.ru/rest/1/abc/", False),  # the code would travel in clear text
        ("http://10.0.0.5/rest/1/abc/", False),
    ],
)
def test_a_webhook_url_must_be_https_unless_loopback(url, ok):
    if ok:
        assert WebhookAuth(url).user_id == 1
    else:
        with pytest.raises(ValueError, match="https") as refused:
            WebhookAuth(url)
        assert "abc" not in str(refused.value)


def test_an_application_portal_and_oauth_server_must_be_https_too(tmp_path):
    with pytest.raises(ValueError, match="https"):
        ApplicationAuth("http://example.bitrix24.ru/", "local.x", "secret", tmp_path / "t.json")
    with pytest.raises(ValueError, match="https"):
        ApplicationAuth(
            "https://example.bitrix24.ru/",
            "local.x",
            "secret",
            tmp_path / "t.json",
            oauth_server="http://oauth.example",
        )
    assert "secret" not in repr(
        ApplicationAuth("https://example.bitrix24.ru/", "local.x", "secret", tmp_path / "t.json")
    )


def test_every_missing_scope_is_named_before_the_first_write(bx_portal):
    portal = bx_portal(webhook_scopes=("crm",))
    [company] = add_companies(portal, 1)
    client = Bitrix24Client(portal.webhook_url, rate=500, burst=500)
    with pytest.raises(MissingScopes) as missing:
        apply_commands(client, [WriteCommand("c", "crm.company.update", {"id": company, "fields": {"COMMENTS": "x"}})])
    assert "im, user, userfieldconfig" in str(missing.value) and "webhook's form" in str(missing.value)
    assert WEBHOOK_CODE not in str(missing.value)
    assert [e["method"] for e in portal.request_log] == ["scope"]  # asked, nothing written
    full = bx_portal()
    [company] = add_companies(full, 1)
    client = Bitrix24Client(full.webhook_url, rate=500, burst=500)
    for _ in range(2):
        assert apply_commands(client, [WriteCommand("c", "crm.company.update", {"id": company, "fields": {}})])
    assert [e["method"] for e in full.request_log].count("scope") == 1  # once per client (per run)


def test_the_webhook_user_is_read_from_the_url_and_the_code_is_not_shown():
    auth = WebhookAuth("https://portal.bitrix24.ru/rest/12/abc123secret/")
    assert auth.user_id == 12 and "abc123secret" not in repr(auth)
    assert WebhookAuth("http://127.0.0.1:5000/rest/1/c0de").user_id == 1
