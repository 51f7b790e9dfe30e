"""`POST /v1/bitrix24/events`: Bitrix24 outbound-webhook POSTs, verified and journaled durably."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import requests

from b24_1c_assets.domain.change_capture import changes_from_events
from b24_1c_assets.services.bitrix24_events import php_form
from b24_1c_assets.sync.event_journal import EventJournal
from b24_1c_assets_tests.services.conftest import EVENT_TOKEN

DOMAIN, MEMBER = "acme.bitrix24.ru", "a223c6b3710f85df22e9377d6c4f7553"


def portal_post(event: str, record_id, token: str = EVENT_TOKEN, **extra) -> str:
    """The body the portal's queue server sends (PHP http_build_query order and brackets)."""
    fields = [
        ("event", event),
        ("event_handler_id", "17"),
        ("data[FIELDS][ID]", str(record_id)),
        ("ts", "1732400000"),
        ("auth[domain]", DOMAIN),
        ("auth[client_endpoint]", f"https://{DOMAIN}/rest/"),
        ("auth[server_endpoint]", "https://oauth.bitrix.info/rest/"),
        ("auth[member_id]", MEMBER),
        ("auth[application_token]", token),
        *extra.items(),
    ]
    return urlencode(fields)


def send(service, body: str | bytes, session=requests):
    return session.post(
        service.url + "/v1/bitrix24/events",
        data=body,
        timeout=30,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def journal(service_config) -> list[dict]:
    return EventJournal(service_config.events_journal).read_from(0, 100_000).events


def test_event_is_journaled_in_the_offline_event_shape_without_any_token(service, service_config):
    answer = send(service, portal_post("ONCRMDEALUPDATE", 4711, **{"auth[access_token]": "s6p6eclrvim6da22"}))
    assert answer.status_code == 200 and answer.json() == {"result": "accepted", "seq": 1}
    dynamic = portal_post("ONCRMDYNAMICITEMUPDATE", 9, **{"data[FIELDS][ENTITY_TYPE_ID]": "31"})
    assert send(service, dynamic).json()["seq"] == 2
    [deal, invoice] = journal(service_config)
    assert {k: deal[k] for k in ("EVENT_NAME", "EVENT_DATA", "ts", "member_id", "domain")} == {
        "EVENT_NAME": "ONCRMDEALUPDATE",
        "EVENT_DATA": {"FIELDS": {"ID": 4711}},
        "ts": 1732400000,
        "member_id": MEMBER,
        "domain": DOMAIN,
    }
    assert invoice["EVENT_DATA"] == {"FIELDS": {"ID": 9, "ENTITY_TYPE_ID": "31"}}
    assert changes_from_events([deal]) == {"deal": {4711}}  # change capture reads it as an offline event
    stored = open(service_config.events_journal, encoding="utf-8").read()
    assert EVENT_TOKEN not in stored and "s6p6eclrvim6da22" not in stored and "auth" not in stored


def test_wrong_or_missing_application_token_is_403_and_nothing_is_kept(service, service_config, caplog):
    wrong = send(service, portal_post("ONCRMDEALUPDATE", 1, token="0" * 32))
    assert wrong.status_code == 403 and "application_token" in wrong.json()["error"]
    assert send(service, portal_post("ONCRMDEALUPDATE", 1, token="")).status_code == 403
    no_auth = urlencode([("event", "ONCRMDEALUPDATE"), ("data[FIELDS][ID]", "1")])
    assert send(service, no_auth).status_code == 403
    assert journal(service_config) == []
    assert not any(EVENT_TOKEN in r.getMessage() for r in caplog.records)


def test_malformed_events_are_400_naming_the_field(service, service_config):
    no_id = send(service, portal_post("ONCRMDEALUPDATE", ""))
    assert no_id.status_code == 400 and "data[FIELDS][ID]" in no_id.json()["error"]
    assert "not a number" in send(service, portal_post("ONCRMDEALUPDATE", "12abc")).json()["error"]
    bad_name = send(service, portal_post("ON CRM<script>", 5))
    assert bad_name.status_code == 400 and bad_name.json()["error"].startswith("event:")
    as_json = requests.post(service.url + "/v1/bitrix24/events", json={"event": "ONCRMDEALUPDATE"}, timeout=5)
    assert as_json.status_code == 415
    raw_bytes = send(service, b"event=ONCRMDEALUPDATE&data[FIELDS][ID]=5&x=" + "ё".encode("cp1251"))
    assert raw_bytes.status_code == 400
    too_many = "&".join(f"f{i}=1" for i in range(300))
    assert send(service, too_many).status_code == 400
    truncated = portal_post("ONCRMDEALUPDATE", 77)[:-40]  # cut inside auth: the token is incomplete
    assert send(service, truncated).status_code == 403
    assert journal(service_config) == []


def test_oversize_event_body_is_413(service, service_config):
    padding = {"data[FIELDS][NOTE]": "x" * (70 * 1024)}
    answer = send(service, portal_post("ONCRMDEALUPDATE", 1, **padding))
    assert answer.status_code == 413 and journal(service_config) == []


def test_burst_of_1000_events_none_lost_each_read_once(service, service_config):
    local = threading.local()

    def post(i: int) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        answer = send(service, portal_post("ONCRMCOMPANYUPDATE", i), session=local.session)
        assert answer.status_code == 200, answer.text
        return answer.json()["seq"]

    with ThreadPoolExecutor(32) as pool:
        seqs = list(pool.map(post, range(1, 1001)))
    assert sorted(seqs) == list(range(1, 1001))  # every request got its own place in the journal
    events = journal(service_config)
    assert sorted(e["EVENT_DATA"]["FIELDS"]["ID"] for e in events) == list(range(1, 1001))
    # read by offset in pages, as change capture does: each event exactly once
    store, offset, seen = EventJournal(service_config.events_journal), 0, []
    while True:
        page = store.read_from(offset, 97)
        if not page.events:
            break
        seen += [e["seq"] for e in page.events]
        offset = page.offset
    assert seen == list(range(1, 1001))
    assert changes_from_events(events) == {"company": set(range(1, 1001))}


def test_php_bracket_forms():
    assert php_form(b"event=X&data%5BFIELDS%5D%5BID%5D=5&a[]=1&a[]=2&auth[domain]=d") == {
        "event": "X",
        "data": {"FIELDS": {"ID": "5"}},
        "a": ["1", "2"],
        "auth": {"domain": "d"},
    }
    assert php_form(b"data[FIELDS][TITLE]=%D0%9E%D0%9E%D0%9E") == {"data": {"FIELDS": {"TITLE": "ООО"}}}
    assert json.dumps(php_form(b"data=flat&data[FIELDS][ID]=3")) == '{"data": {"FIELDS": {"ID": "3"}}}'
