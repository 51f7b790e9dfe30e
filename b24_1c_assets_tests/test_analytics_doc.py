"""docs/analytics.md cannot go stale: its columns section is the code's, and its example queries run."""

import re
from pathlib import Path

import duckdb
import pytest

from b24_1c_assets.defs.analytics.assets import create_views
from b24_1c_assets.domain.analytics_sql import columns_reference, view_definitions

DOC = Path(__file__).resolve().parents[1] / "docs" / "analytics.md"
MARKER = "<!-- generated -->\n"
SQL_BLOCKS = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_columns_section_is_columns_reference():
    text = DOC.read_text(encoding="utf-8")
    assert text.count(MARKER) == 1
    assert text.split(MARKER, 1)[1] == columns_reference()


def test_every_view_is_documented_and_has_an_example():
    text = DOC.read_text(encoding="utf-8")
    examples = "\n".join(SQL_BLOCKS)
    for view in view_definitions():
        assert f"### `{view.qualified}`" in text, view.qualified
        if view.name not in ("push_latest_status",):  # a building block of dead_letters, not asked for alone
            assert view.qualified in examples, view.qualified


@pytest.mark.parametrize("sql", SQL_BLOCKS, ids=[f"example{i}" for i in range(len(SQL_BLOCKS))])
def test_example_query_runs_on_the_views(sql, tmp_path):
    # Views over a DuckDB file with no tables yet: every referenced view and column must exist anyway.
    with duckdb.connect(str(tmp_path / "a.duckdb")) as conn:
        create_views(conn)
        conn.execute(sql).fetchall()
