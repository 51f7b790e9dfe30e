"""Exchange folder: encodings, whole-file rejection, duplicate drops, bad rows kept with a reason."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from b24_1c_assets.onec.errors import ExchangeFileRejected
from b24_1c_assets.onec.exchange import ExchangeFolder, decode_bytes, parse_exchange_bytes
from b24_1c_assets.sandbox.exchange_files import write_exchange_files

SAMPLE = "ООО «Ромашка» — Ёлкин"


def _folder(tmp_path: Path) -> ExchangeFolder:
    return ExchangeFolder(tmp_path, min_age_seconds=0)


def _load_all(folder: ExchangeFolder) -> dict[str, object]:
    out = {}
    for file in folder.pending():
        with folder.claim(file) as batch:
            out[file.name] = batch
    return out


@pytest.mark.parametrize(
    "data",
    [
        SAMPLE.encode("utf-8"),
        b"\xef\xbb\xbf" + SAMPLE.encode("utf-8"),
        SAMPLE.encode("cp1251"),
        b"\xff\xfe" + SAMPLE.encode("utf-16-le"),
    ],
)
def test_decode_utf8_bom_cp1251(data):
    assert decode_bytes(data) == SAMPLE


@pytest.mark.parametrize(
    "encoding,bom,declaration",
    [("utf-8", False, True), ("utf-8", True, True), ("cp1251", False, True), ("cp1251", False, False)],
)
def test_every_encoding_reads_the_same(world, tmp_path, encoding, bom, declaration):
    write_exchange_files(world, tmp_path, encoding=encoding, bom=bom, xml_declaration=declaration)
    batches = _load_all(_folder(tmp_path))
    assert set(batches) == {
        "counterparties.json",
        "invoices.json",
        "payments.json",
        "receivables.json",
        "import.xml",
        "offers.xml",
    }
    cps = batches["counterparties.json"]
    assert not cps.bad_rows and len(cps.records) == sum(len(p.onec_spellings) for p in world.parties)
    titles = {r["Description"] for r in cps.records}
    assert world.parties[0].onec_spellings[0].title in titles  # Cyrillic survived the encoding
    items = batches["import.xml"].records
    assert {i["Description"] for i in items} == {i.name for i in world.items}
    prices = batches["offers.xml"].records
    assert all(isinstance(p["Цена"], Decimal) for p in prices) and len(prices) == 2 * len(world.items)
    assert sorted((tmp_path / "processed").iterdir())


def _json_file(path: Path, records, **header):
    doc = {
        "format": "b24-1c-exchange",
        "file_type": "payments",
        "schema_version": 1,
        "exported_at": "2026-03-01T10:00:00",
        "record_count": len(records),
        "records": records,
        **header,
    }
    path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")


PAYMENT = {
    "Ref_Key": "11111111-2222-3333-4444-555555555555",
    "Number": "0001",
    "Date": "2026-02-27T12:00:00",
    "Posted": True,
    "Вид": "ПоступлениеНаСчет",
    "Контрагент_Key": "21111111-2222-3333-4444-555555555555",
    "СуммаДокумента": 1500.10,
}


def test_truncated_json_is_rejected_whole_with_reason(tmp_path):
    _json_file(tmp_path / "payments.json", [PAYMENT])
    data = (tmp_path / "payments.json").read_bytes()
    (tmp_path / "payments.json").write_bytes(data[: len(data) // 2])
    folder = _folder(tmp_path)
    [file] = folder.pending()
    loaded = []
    with pytest.raises(ExchangeFileRejected, match="truncated JSON"):
        with folder.claim(file) as batch:
            loaded.append(batch)
    assert loaded == []
    assert (tmp_path / "rejected" / "payments.json").exists()
    assert "truncated JSON" in (tmp_path / "rejected" / "payments.json.reason.txt").read_text("utf-8")
    assert folder.pending() == [] and not (tmp_path / "processed" / "payments.json").exists()


def test_truncated_xml_is_rejected(world, tmp_path):
    write_exchange_files(world, tmp_path / "src")
    data = (tmp_path / "src" / "import.xml").read_bytes()
    (tmp_path / "import.xml").write_bytes(data[: len(data) - 200])
    folder = _folder(tmp_path)
    [file] = folder.pending()
    with pytest.raises(ExchangeFileRejected):
        with folder.claim(file):
            pass
    assert "XML" in (tmp_path / "rejected" / "import.xml.reason.txt").read_text("utf-8")


def test_record_count_mismatch_means_incomplete_export(tmp_path):
    _json_file(tmp_path / "payments.json", [PAYMENT], record_count=2)
    folder = _folder(tmp_path)
    with pytest.raises(ExchangeFileRejected, match="incomplete export"):
        with folder.claim(folder.pending()[0]):
            pass


def test_same_file_dropped_twice_is_loaded_once(tmp_path):
    _json_file(tmp_path / "payments.json", [PAYMENT])
    content = (tmp_path / "payments.json").read_bytes()
    folder = _folder(tmp_path)
    assert len(_load_all(folder)) == 1
    (tmp_path / "payments-again.json").write_bytes(content)  # same bytes, other name
    (tmp_path / "payments.json").write_bytes(content)  # same bytes, same name
    assert _load_all(folder) == {}
    duplicates = sorted(p.name for p in (tmp_path / "duplicates").iterdir())
    assert "payments-again.json" in duplicates and len([d for d in duplicates if not d.endswith(".txt")]) == 2
    assert len(folder.loaded_hashes()) == 1


def test_bad_rows_are_kept_with_reason_good_rows_load(tmp_path):
    bad_amount = {**PAYMENT, "Ref_Key": "31111111-2222-3333-4444-555555555555", "СуммаДокумента": "много"}
    bad_guid = {**PAYMENT, "Ref_Key": "not-a-guid"}
    _json_file(tmp_path / "payments.json", [PAYMENT, bad_amount, bad_guid, dict(PAYMENT)])
    folder = _folder(tmp_path)
    with folder.claim(folder.pending()[0]) as batch:
        assert [r["Ref_Key"] for r in batch.records] == [PAYMENT["Ref_Key"]]
        assert batch.records[0]["СуммаДокумента"] == Decimal("1500.10")
        reasons = {b["index"]: b["reason"] for b in batch.bad_rows}
    assert set(reasons) == {1, 2, 3}
    assert "СуммаДокумента" in reasons[1] and "Ref_Key" in reasons[2] and "duplicate" in reasons[3]
    assert (tmp_path / "processed" / "payments.json").exists()


def test_failed_load_moves_file_to_rejected_with_callers_reason(tmp_path):
    _json_file(tmp_path / "payments.json", [PAYMENT])
    folder = _folder(tmp_path)
    with pytest.raises(RuntimeError):
        with folder.claim(folder.pending()[0]):
            raise RuntimeError("warehouse is read-only")
    assert "warehouse is read-only" in (tmp_path / "rejected" / "payments.json.reason.txt").read_text("utf-8")
    assert folder.loaded_hashes() == set()


def test_files_still_being_written_are_not_listed(tmp_path):
    _json_file(tmp_path / "payments.json", [PAYMENT])
    (tmp_path / "invoices.json.tmp").write_text("{", "utf-8")
    assert ExchangeFolder(tmp_path, min_age_seconds=3600).pending() == []
    assert [f.name for f in _folder(tmp_path).pending()] == ["payments.json"]


def test_unknown_schema_version_is_rejected(tmp_path):
    _json_file(tmp_path / "payments.json", [PAYMENT], schema_version=99)
    folder = _folder(tmp_path)
    with pytest.raises(ExchangeFileRejected, match="schema_version"):
        with folder.claim(folder.pending()[0]):
            pass


def test_utf8_cut_inside_its_last_character_is_named_truncated_not_decoded_as_cp1251():
    data = json.dumps({"records": [{"Description": "ООО Ромашка"}]}, ensure_ascii=False).encode("utf-8")
    cut = data[: data.index("Ромашка".encode()) + 3]  # ends on the first byte of a two-byte letter
    assert decode_bytes(cut).endswith("Р")  # the whole letters, not cp1251 mojibake
    with pytest.raises(ExchangeFileRejected, match="truncated JSON"):
        parse_exchange_bytes("counterparties.json", cut, ZoneInfo("Europe/Moscow"))
