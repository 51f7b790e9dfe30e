from datetime import UTC, datetime
from decimal import Decimal

import duckdb
import pandas as pd
import pytest

from b24_1c_assets import warehouse


def test_replace_keeps_kopecks_exact_and_nested_values_as_json(tmp_path):
    path = str(tmp_path / "w.duckdb")
    frame = warehouse.records_frame(
        [
            {"ID": "1", "SUM": Decimal("0.10"), "EMAIL": [{"VALUE": "a@b.ru"}]},
            {"ID": "2", "SUM": Decimal("12345678901.99"), "EMAIL": []},
        ]
    )
    with warehouse.connect(path) as conn:
        rows = warehouse.replace_table(conn, "s", "t", frame, column_types={"SUM": "DECIMAL(18,2)"})
        got = conn.execute("SELECT ID, SUM, EMAIL FROM s.t ORDER BY ID").fetchall()
    assert rows == 2
    assert got[0] == ("1", Decimal("0.10"), '[{"VALUE": "a@b.ru"}]')
    assert got[1][1] == Decimal("12345678901.99")


def test_replace_is_all_or_nothing(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with warehouse.connect(path) as conn:
        warehouse.replace_table(conn, "s", "t", pd.DataFrame({"a": ["1"]}))
        with pytest.raises(duckdb.ConversionException):
            warehouse.replace_table(conn, "s", "t", pd.DataFrame({"a": ["x"]}), column_types={"a": "INTEGER"})
        assert conn.execute("SELECT a FROM s.t").fetchall() == [("1",)]


def test_append_creates_then_appends(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with warehouse.connect(path) as conn:
        warehouse.append_table(conn, "q", "r", pd.DataFrame({"a": [1]}))
        warehouse.append_table(conn, "q", "r", pd.DataFrame({"a": [2]}))
        assert [r[0] for r in conn.execute("SELECT a FROM q.r ORDER BY a").fetchall()] == [1, 2]
        assert warehouse.read_table(conn, "q", "missing").empty


def test_unsafe_identifiers_are_refused(tmp_path):
    with warehouse.connect(str(tmp_path / "w.duckdb")) as conn:
        with pytest.raises(ValueError, match="identifier"):
            warehouse.replace_table(conn, "s", 't"; DROP TABLE x; --', pd.DataFrame({"a": [1]}))


def test_decimal_columns_become_exact_decimals_without_being_told(tmp_path):
    frame = pd.DataFrame({"amount": [Decimal("0.1"), Decimal("7.125"), None]})
    with warehouse.connect(str(tmp_path / "w.duckdb")) as conn:
        warehouse.replace_table(conn, "s", "t", frame)
        total, kind = conn.execute("SELECT sum(amount), typeof(any_value(amount)) FROM s.t").fetchone()
    assert total == Decimal("7.225") and kind.startswith("DECIMAL")


def test_replace_partition_rewrites_one_day_only(tmp_path):
    from datetime import date

    with warehouse.connect(str(tmp_path / "w.duckdb")) as conn:
        for day, value in ((date(2026, 11, 1), 1), (date(2026, 11, 2), 2), (date(2026, 11, 2), 3)):
            warehouse.replace_partition(
                conn, "r", "snap", pd.DataFrame({"day": [day, day], "v": [value, value]}), column="day", value=day
            )
        rows = conn.execute("SELECT day, v FROM r.snap ORDER BY day, v").fetchall()
    assert [r[1] for r in rows] == [1, 1, 3, 3]


def test_reading_back_keeps_decimals_exact(tmp_path):
    big = Decimal("98765432109876.55")
    with warehouse.connect(str(tmp_path / "w.duckdb")) as conn:
        warehouse.replace_table(conn, "s", "t", pd.DataFrame({"id": [1], "amount": [big]}))
        frame = warehouse.read_table(conn, "s", "t")
        filtered = warehouse.query(conn, "SELECT amount FROM s.t WHERE id = ?", [1])
    assert frame.loc[0, "amount"] == big and isinstance(frame.loc[0, "amount"], Decimal)
    assert filtered.loc[0, "amount"] == big


def test_an_empty_extract_empties_the_table_but_keeps_its_columns(tmp_path):
    with warehouse.connect(str(tmp_path / "w.duckdb")) as conn:
        warehouse.replace_table(conn, "s", "t", pd.DataFrame({"a": [1], "b": ["x"]}))
        assert warehouse.replace_table(conn, "s", "t", pd.DataFrame()) == 0
        assert conn.execute("SELECT count(*) FROM s.t").fetchall() == [(0,)]
        assert [d[0] for d in conn.execute("SELECT * FROM s.t").description] == ["a", "b"]


def _writer(path: str, table: str, rounds: int) -> int:
    for i in range(rounds):
        with warehouse.connect(path) as conn:
            warehouse.replace_table(conn, "s", table, pd.DataFrame({"i": list(range(i, i + 500))}))
    return rounds


def test_concurrent_writer_processes_wait_for_the_lock_instead_of_failing(tmp_path):
    import concurrent.futures
    import multiprocessing

    path = str(tmp_path / "shared.duckdb")
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(3, mp_context=context) as pool:
        done = list(pool.map(_writer, [path] * 3, ["a", "b", "c"], [15] * 3))
    assert done == [15, 15, 15]
    with warehouse.connect(path, read_only=True) as conn:
        assert [conn.execute(f"SELECT min(i) FROM s.{t}").fetchone()[0] for t in "abc"] == [14, 14, 14]


def _movements(*rows):
    return pd.DataFrame(
        [{"Recorder": r, "LineNumber": n, "Period": pd.Timestamp(p), "Сумма": Decimal(s)} for r, n, p, s in rows]
    )


def test_merge_replaces_by_key_drops_what_vanished_in_the_window_and_keeps_older_rows(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with warehouse.connect(path) as conn:
        warehouse.replace_table(
            conn,
            "onec",
            "m",
            _movements(
                ("old", 1, "2026-01-10", "100.00"),  # before the window: kept as it is
                ("reposted", 1, "2026-03-01", "50.00"),  # re-read with a new amount
                ("unposted", 1, "2026-03-02", "70.00"),  # in the window, not returned: its document was unposted
                ("backdated", 1, "2026-01-05", "10.00"),  # redated into the window: replaced, not doubled
            ),
        )
        counts = warehouse.merge_table(
            conn,
            "onec",
            "m",
            _movements(
                ("reposted", 1, "2026-03-01", "55.00"),
                ("backdated", 1, "2026-02-20", "10.00"),
                ("new", 1, "2026-03-03", "5.00"),
                ("new", 2, "2026-03-03", "6.00"),
            ),
            key=["Recorder", "LineNumber"],
            date_column="Period",
            since=datetime(2026, 2, 15),
        )
        got = conn.execute(
            'SELECT Recorder, LineNumber, Period, "Сумма" FROM onec.m ORDER BY Recorder, LineNumber'
        ).fetchall()
    assert counts == warehouse.MergeCounts(inserted=2, updated=2, deleted=1, rows=5)
    assert [(r, n, str(s)) for r, n, _, s in got] == [
        ("backdated", 1, "10.00"),
        ("new", 1, "5.00"),
        ("new", 2, "6.00"),
        ("old", 1, "100.00"),
        ("reposted", 1, "55.00"),
    ]
    assert [p for r, _, p, _ in got if r == "backdated"] == [datetime(2026, 2, 20)]


def test_merge_by_key_alone_upserts_removes_named_keys_and_adds_new_columns(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with warehouse.connect(path) as conn:
        warehouse.replace_table(
            conn, "onec", "c", pd.DataFrame({"Ref_Key": ["a", "b", "c"], "DataVersion": ["1", "1", "1"]})
        )
        counts = warehouse.merge_table(
            conn,
            "onec",
            "c",
            pd.DataFrame({"Ref_Key": ["b", "d"], "DataVersion": ["2", "1"], "ИНН": ["7707083893", None]}),
            key=["Ref_Key"],
            removed_keys=[("c",)],
        )
        got = conn.execute('SELECT Ref_Key, DataVersion, "ИНН" FROM onec.c ORDER BY Ref_Key').fetchall()
    assert counts == warehouse.MergeCounts(inserted=1, updated=1, deleted=1, rows=3)
    assert got == [("a", "1", None), ("b", "2", "7707083893"), ("d", "1", None)]


def test_merge_is_all_or_nothing_and_names_a_bad_window(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with warehouse.connect(path) as conn:
        warehouse.replace_table(conn, "s", "t", pd.DataFrame({"k": ["1"], "n": [1]}))
        with pytest.raises(duckdb.ConversionException):
            warehouse.merge_table(
                conn, "s", "t", pd.DataFrame({"k": ["1"], "n": ["x"]}), key=["k"], column_types={"n": "INTEGER"}
            )
        with pytest.raises(ValueError, match="date_column and since"):
            warehouse.merge_table(conn, "s", "t", pd.DataFrame({"k": ["2"]}), key=["k"], date_column="d")
        assert conn.execute("SELECT k, n FROM s.t").fetchall() == [("1", 1)]


def test_an_empty_re_read_of_a_window_empties_the_window_only(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with warehouse.connect(path) as conn:
        warehouse.replace_table(
            conn, "onec", "m", _movements(("old", 1, "2026-01-10", "1.00"), ("gone", 1, "2026-03-01", "2.00"))
        )
        counts = warehouse.merge_table(
            conn,
            "onec",
            "m",
            pd.DataFrame(),
            key=["Recorder", "LineNumber"],
            date_column="Period",
            since=datetime(2026, 2, 15),
        )
        assert conn.execute("SELECT Recorder FROM onec.m").fetchall() == [("old",)]
    assert counts == warehouse.MergeCounts(inserted=0, updated=0, deleted=1, rows=1)


def test_replace_rows_swaps_one_clients_history_and_nothing_else(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with warehouse.connect(path) as conn:
        warehouse.replace_table(conn, "onec", "m", pd.DataFrame({"cp": ["a", "a", "b"], "n": [1, 2, 3]}))
        warehouse.replace_rows(conn, "onec", "m", pd.DataFrame({"cp": ["a"], "n": [9]}), column="cp", values=["a"])
        assert conn.execute("SELECT cp, n FROM onec.m ORDER BY n").fetchall() == [("b", 3), ("a", 9)]


def test_merge_compares_instants_when_the_stamps_carry_an_offset(tmp_path):

    path = str(tmp_path / "w.duckdb")
    with warehouse.connect(path) as conn:
        warehouse.replace_table(
            conn,
            "b",
            "c",
            pd.DataFrame({"ID": ["1", "2"], "DATE_MODIFY": ["2026-12-03T12:00:00+03:00", "2026-12-03T14:00:00+03:00"]}),
        )  # 09:00 and 11:00 UTC
        counts = warehouse.merge_table(
            conn,
            "b",
            "c",
            pd.DataFrame({"ID": ["3"], "DATE_MODIFY": ["2026-12-03T15:00:00+03:00"]}),
            key=["ID"],
            date_column="DATE_MODIFY",
            since=datetime(2026, 12, 3, 10, 0, tzinfo=UTC),
        )
        assert [r[0] for r in conn.execute("SELECT ID FROM b.c ORDER BY ID").fetchall()] == ["1", "3"]
    assert counts.deleted == 1  # "2" was modified inside the window and is no longer listed: deleted


def test_merge_types_a_column_that_was_empty_when_the_table_was_made(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with warehouse.connect(path) as conn:
        warehouse.replace_table(conn, "b", "r", pd.DataFrame({"ID": ["1"], "XML_ID": [None]}))
        warehouse.merge_table(
            conn, "b", "r", pd.DataFrame({"ID": ["2"], "XML_ID": ["x-2"], "CODE": [None]}), key=["ID"]
        )
        assert conn.execute("SELECT ID, XML_ID, CODE FROM b.r ORDER BY ID").fetchall() == [
            ("1", None, None),
            ("2", "x-2", None),
        ]


def test_merge_into_a_table_made_from_an_empty_extract_fills_it(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with warehouse.connect(path) as conn:
        warehouse.replace_table(conn, "b", "i", pd.DataFrame({"_run_id": ["r1"]}).iloc[:0])
        warehouse.replace_table(conn, "b", "i", pd.DataFrame({"_run_id": ["r1"]}))
        counts = warehouse.merge_table(
            conn,
            "b",
            "i",
            pd.DataFrame({"id": [5], "updatedTime": ["2026-12-03"]}),
            key=["id"],
            date_column="updatedTime",
            since=datetime(2026, 12, 1),
        )
        assert conn.execute("SELECT id FROM b.i").fetchall() == [(5,)]
    assert counts.inserted == 1


def test_staged_chunks_land_with_each_column_in_its_widest_type(tmp_path):
    # chunk 1 has money with two places and an optional field every row left empty; chunk 2 three places,
    # the optional field filled, and a column chunk 1 did not have
    with warehouse.StagedRows() as staged, warehouse.connect(str(tmp_path / "w.duckdb")) as conn:
        staged.add(pd.DataFrame({"k": ["a", "b"], "sum": [Decimal("1.50"), Decimal("2.25")], "opt": [None, None]}))
        staged.add(pd.DataFrame({"k": ["c"], "sum": [Decimal("3.125")], "opt": ["x"], "late": ["y"]}))
        staged.add(pd.DataFrame())
        assert len(staged) == 3 and staged.columns == ["k", "sum", "opt", "late"]
        rows = warehouse.replace_table(conn, "s", "t", staged)
        got = conn.execute('SELECT k, "sum", opt, late FROM s.t ORDER BY k').fetchall()
        kinds = warehouse.stored_columns(conn, "s", "t")
    assert rows == 3
    assert got == [
        ("a", Decimal("1.500"), None, None),
        ("b", Decimal("2.250"), None, None),
        ("c", Decimal("3.125"), "x", "y"),
    ]
    assert kinds["sum"] == "DECIMAL(38,3)" and kinds["opt"] == "VARCHAR"


def test_staged_rows_merge_by_key_and_leave_out_excluded_keys(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with warehouse.connect(path) as conn:
        warehouse.replace_table(conn, "onec", "m", _movements(("kept", 1, "2026-01-10", "100.00")))
        with warehouse.StagedRows() as staged:
            staged.add(_movements(("new", 1, "2026-03-03", "5.00"), ("twice", 1, "2026-03-03", "1.00")))
            staged.add(_movements(("twice", 1, "2026-03-04", "2.00"), ("new", 2, "2026-03-05", "6.00")))
            assert sorted(staged.duplicated("Recorder")) == ["new", "twice"]  # a column's repeats, across chunks
            staged.exclude("Recorder", ["twice"])
            counts = warehouse.merge_table(
                conn,
                "onec",
                "m",
                staged,
                key=["Recorder", "LineNumber"],
                date_column="Period",
                since=datetime(2026, 3, 1),
            )
        got = conn.execute('SELECT Recorder, LineNumber, "Сумма" FROM onec.m ORDER BY 1, 2').fetchall()
    assert counts == warehouse.MergeCounts(inserted=2, updated=0, deleted=0, rows=3)
    assert [(r, n, str(s)) for r, n, s in got] == [("kept", 1, "100.00"), ("new", 1, "5.00"), ("new", 2, "6.00")]


def test_an_empty_stage_empties_the_table_but_keeps_its_columns(tmp_path):
    with warehouse.connect(str(tmp_path / "w.duckdb")) as conn, warehouse.StagedRows() as staged:
        warehouse.replace_table(conn, "s", "t", pd.DataFrame({"a": ["1"]}))
        assert warehouse.replace_table(conn, "s", "t", staged) == 0
        assert conn.execute("SELECT count(*) FROM s.t").fetchone() == (0,)
        assert list(warehouse.stored_columns(conn, "s", "t")) == ["a"]
