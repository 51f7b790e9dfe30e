import json
import threading

from b24_1c_assets.domain.change_capture import changes_from_events
from b24_1c_assets.sync.event_journal import EventJournal


def event(name, record_id):
    return {"EVENT_NAME": name, "EVENT_DATA": {"FIELDS": {"ID": record_id}}}


def test_appended_events_are_read_once_from_the_returned_offset(tmp_path):
    journal = EventJournal(tmp_path / "events.jsonl")
    journal.append([event("ONCRMDEALUPDATE", 1), event("ONCRMCOMPANYADD", 2)])
    first = journal.read_from(0)
    assert [e["seq"] for e in first.events] == [1, 2]
    assert changes_from_events(first.events) == {"deal": {1}, "company": {2}}
    journal.append([event("ONCRMDEALADD", 3)])
    second = journal.read_from(first.offset)
    assert [e["seq"] for e in second.events] == [3]
    assert journal.read_from(second.offset).events == []


def test_a_torn_last_line_is_left_for_the_next_read(tmp_path):
    path = tmp_path / "events.jsonl"
    journal = EventJournal(path)
    journal.append([event("ONCRMDEALUPDATE", 1)])
    with open(path, "ab") as fh:
        fh.write(b'{"seq": 2, "EVENT_NA')
    read = journal.read_from(0)
    assert [e["seq"] for e in read.events] == [1]
    assert read.offset == len(json.dumps(read.events[0], ensure_ascii=False).encode()) + 1


def test_concurrent_appends_lose_nothing_and_number_uniquely(tmp_path):
    journal = EventJournal(tmp_path / "events.jsonl")

    def worker(base):
        for i in range(50):
            journal.append([event("ONCRMDEALUPDATE", base + i)])

    threads = [threading.Thread(target=worker, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    read = journal.read_from(0, limit=10_000)
    assert len(read.events) == 200
    assert sorted(e["seq"] for e in read.events) == list(range(1, 201))


def test_limit_pages_through_the_journal(tmp_path):
    journal = EventJournal(tmp_path / "events.jsonl")
    journal.append([event("ONCRMDEALUPDATE", i) for i in range(5)])
    page = journal.read_from(0, limit=2)
    rest = journal.read_from(page.offset, limit=10)
    assert [e["EVENT_DATA"]["FIELDS"]["ID"] for e in page.events + rest.events] == [0, 1, 2, 3, 4]
