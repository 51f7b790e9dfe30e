"""Company card links in the client master's tables name the portal, never the webhook's secret path."""

from b24_1c_assets.defs.client_master.assets import portal_origin


def test_card_links_keep_only_scheme_and_host(monkeypatch):
    monkeypatch.delenv("B24_PORTAL_URL", raising=False)
    monkeypatch.setenv("B24_WEBHOOK_URL", "https://acme.bitrix24.ru/rest/1/s3cr3tw3bh00k/")
    assert portal_origin() == "https://acme.bitrix24.ru"
    monkeypatch.setenv("B24_WEBHOOK_URL", "http://127.0.0.1:8123/rest/1/s3cr3t/")
    assert portal_origin() == "http://127.0.0.1:8123"
    monkeypatch.setenv("B24_PORTAL_URL", "https://crm.example.ru")
    assert portal_origin() == "https://crm.example.ru"
    monkeypatch.setenv("B24_PORTAL_URL", "")
    monkeypatch.setenv("B24_WEBHOOK_URL", "")
    assert portal_origin() is None
