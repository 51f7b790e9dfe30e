"""`POST /v1/onec/exports`: 1C pushes an export; it is checked and staged exactly like an exchange-folder file."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

import dagster as dg
import duckdb
import requests

from b24_1c_assets.defs.onec.exchange_assets import exchange_files
from b24_1c_assets.defs.onec.sensors import exchange_folder_sensor
from b24_1c_assets.lib.resources import OneCResource, WarehouseResource
from b24_1c_assets.onec.exchange import ExchangeFolder
from b24_1c_assets.sandbox.exchange_files import write_exchange_files
from b24_1c_assets_tests.services.conftest import EXPORT_TOKEN

AUTH = ("1c-exchange", EXPORT_TOKEN)  # HTTP Basic: 1C's HTTPСоединение sends user and password
PAYMENT = {
    "Ref_Key": "11111111-2222-3333-4444-555555555555",
    "Number": "0001",
    "Date": "2026-02-27T12:00:00",
    "Posted": True,
    "Вид": "ПоступлениеНаСчет",
    "Контрагент_Key": "21111111-2222-3333-4444-555555555555",
    "СуммаДокумента": 1500.10,
}


def _payments(records, **header) -> bytes:
    doc = {
        "format": "b24-1c-exchange",
        "file_type": "payments",
        "schema_version": 1,
        "exported_at": "2026-03-01T10:00:00",
        "record_count": len(records),
        "records": records,
        **header,
    }
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def _post(service, body: bytes, **kw):
    kw.setdefault("auth", AUTH)
    return requests.post(service.url + "/v1/onec/exports", data=body, timeout=30, **kw)


def _waiting(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _exports(world, tmp_path, **kw) -> dict[str, bytes]:
    out = tmp_path / "made"
    return {p.name: p.read_bytes() for p in write_exchange_files(world, out, **kw)}


def test_export_is_staged_and_the_folder_sensor_launches_its_load(world, service, tmp_path):
    body = _exports(world, tmp_path)["counterparties.json"]
    answer = _post(service, body)
    assert answer.status_code == 202, answer.text
    staged = answer.json()
    assert staged["status"] == "staged" and staged["file_type"] == "counterparties" and staged["bad_rows"] == 0
    assert staged["records"] == sum(len(p.onec_spellings) for p in world.parties)
    exchange = tmp_path / "exchange"
    [file] = _waiting(exchange)
    assert file.name == staged["id"] + ".json" and file.read_bytes() == body  # the bytes 1C sent, as a file
    status = requests.get(f"{service.url}/v1/onec/exports/{staged['id']}", auth=AUTH, timeout=5).json()
    assert status == {"id": staged["id"], "status": "staged"}

    past = time.time() - 60  # the sensor leaves files younger than a few seconds alone (maybe still written)
    os.utime(file, (past, past))
    onec = OneCResource(odata_url="", exchange_dir=str(exchange))
    with dg.build_sensor_context(resources={"onec": onec}) as context:
        result = exchange_folder_sensor(context)
    [run] = result.run_requests
    assert run.run_key == f"{file.name}:{staged['sha256']}"

    warehouse = WarehouseResource(database=str(tmp_path / "w.duckdb"))
    assert dg.materialize([exchange_files], resources={"onec": onec, "warehouse": warehouse}).success
    with duckdb.connect(warehouse.database, read_only=True) as conn:
        assert conn.execute("SELECT status, records FROM onec_exchange.files").fetchall() == [
            ("loaded", staged["records"])
        ]
    assert (
        requests.get(f"{service.url}/v1/onec/exports/{staged['id']}", auth=AUTH, timeout=5).json()["status"] == "loaded"
    )
    replay = _post(service, body)  # the same export again, after its load: the manifest knows it
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    assert replay.json()["id"] == staged["id"] and replay.json()["earlier"] == "loaded"


def test_windows_1251_commerceml_without_declaration_gzipped(world, service, tmp_path):
    made = _exports(world, tmp_path, encoding="windows-1251", xml_declaration=False)
    body = made["import.xml"]
    assert not body.startswith(b"<?xml") and "Номенклатура".encode("cp1251") in body
    answer = _post(service, gzip.compress(body), headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["file_type"] == "catalog" and answer.json()["records"] == len(world.items)
    [file] = _waiting(tmp_path / "exchange")
    assert file.suffix == ".xml" and file.read_bytes() == body  # stored decompressed, encoding untouched
    folder = ExchangeFolder(tmp_path / "exchange", min_age_seconds=0)
    with folder.claim(folder.pending()[0]) as batch:
        assert {r["Description"] for r in batch.records} == {i.name for i in world.items}  # Cyrillic intact
    cp1251_json = _exports(world, tmp_path, encoding="windows-1251")["counterparties.json"]
    assert _post(service, cp1251_json, headers={"Authorization": f"Bearer {EXPORT_TOKEN}"}).status_code == 202


def test_replayed_export_is_a_duplicate_and_not_staged_twice(service, tmp_path):
    body = _payments([PAYMENT])
    first = _post(service, body).json()
    replay = _post(service, gzip.compress(body), headers={"Content-Encoding": "gzip"})  # same content, zipped
    assert replay.status_code == 200
    assert replay.json()["status"] == "duplicate" and replay.json()["id"] == first["id"]
    assert replay.json()["earlier"] == "waiting to load"
    assert [p.name for p in _waiting(tmp_path / "exchange")] == [first["id"] + ".json"]
    kept = tmp_path / "exchange" / replay.json()["kept_as"]
    assert kept.read_bytes() == body
    assert first["sha256"] in Path(str(kept) + ".reason.txt").read_text("utf-8")


def test_bad_bodies_are_refused_naming_the_problem_and_kept_in_rejected(service, tmp_path):
    good = _payments([PAYMENT])
    cases = [
        (good[: len(good) // 2], 400, "truncated"),  # cut off mid-transfer
        (b"\x00\x01binary junk", 400, "neither JSON nor XML"),
        ("<КоммерческаяИнформация><Каталог>".encode(), 400, "XML"),
        (_payments([PAYMENT], record_count=2), 422, "incomplete export"),
        (_payments([PAYMENT], schema_version=9), 422, "schema_version"),
        (_payments([PAYMENT], file_type="orders"), 422, "file_type"),
    ]
    for body, status, words in cases:
        answer = _post(service, body)
        assert answer.status_code == status, (words, answer.text)
        refused = answer.json()
        assert words in refused["error"] and refused["kept_as"].startswith("rejected/")
        kept = tmp_path / "exchange" / refused["kept_as"]
        assert kept.read_bytes() == body
        assert words in Path(str(kept) + ".reason.txt").read_text("utf-8")
    corrupt_gzip = gzip.compress(good)[:-12]
    answer = _post(service, corrupt_gzip, headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 400 and "gzip" in answer.json()["error"]
    assert _post(service, good, headers={"Content-Encoding": "br"}).status_code == 400
    assert _waiting(tmp_path / "exchange") == []  # nothing half-staged


def test_bad_rows_of_a_good_export_are_named_in_the_answer(service):
    bad = {**PAYMENT, "Ref_Key": "31111111-2222-3333-4444-555555555555", "СуммаДокумента": "много"}
    answer = _post(service, _payments([PAYMENT, bad]))
    assert answer.status_code == 202
    assert answer.json()["records"] == 1 and answer.json()["bad_rows"] == 1
    assert "СуммаДокумента" in answer.json()["bad_row_reasons"][0]


def test_token_by_basic_or_bearer_only(service, tmp_path):
    body = _payments([PAYMENT])
    missing = requests.post(service.url + "/v1/onec/exports", data=body, timeout=5)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Basic")
    assert _post(service, body, auth=("1c-exchange", "wrong")).status_code == 401
    assert _post(service, body, auth=None, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert (
        requests.post(
            service.url + "/v1/onec/exports", params={"token": EXPORT_TOKEN}, data=body, timeout=5
        ).status_code
        == 401
    )  # 1C can send headers: no token in URLs here
    assert _waiting(tmp_path / "exchange") == [] and not list((tmp_path / "exchange" / "rejected").iterdir())


def test_oversize_export_is_refused_before_it_is_read(service, tmp_path):
    cap = 2 * 1024 * 1024  # the fixture's limit
    big = b"{" + b" " * cap + b"}"
    answer = _post(service, big)
    assert answer.status_code == 413 and "over" in answer.json()["error"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(5):
            yield b" " * (cap // 4)

    assert _post(service, chunks()).status_code == 413
    bomb = gzip.compress(b" " * (cap * 4))  # small on the wire, over the cap once inflated
    answer = _post(service, bomb, headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 400 and "decompressed" in answer.json()["error"]
    assert _waiting(tmp_path / "exchange") == []
