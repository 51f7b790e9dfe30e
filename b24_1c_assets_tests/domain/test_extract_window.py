from datetime import datetime

import pytest

from b24_1c_assets.domain.extract_window import ExtractPolicy, extract_window

NOW = datetime(2026, 12, 4, 2, 30)
POLICY = ExtractPolicy(overlap_days=45, full_every_days=7)


def test_a_table_never_read_is_read_in_full():
    window = extract_window(NOW, None, None, POLICY)
    assert window.full and window.since is None and window.reason == "first extract"


def test_after_a_recent_full_read_the_window_starts_45_days_before_the_last_success_at_midnight():
    window = extract_window(NOW, datetime(2026, 12, 3, 2, 41), datetime(2026, 12, 1, 2, 0), POLICY)
    assert not window.full
    assert window.since == datetime(2026, 10, 19)
    assert "45 days of overlap" in window.reason


def test_the_weekly_full_re_read_comes_round_and_can_be_forced():
    assert extract_window(NOW, datetime(2026, 12, 3), datetime(2026, 11, 27, 2, 30), POLICY).full
    assert not extract_window(NOW, datetime(2026, 12, 3), datetime(2026, 11, 27, 2, 31), POLICY).full
    forced = extract_window(NOW, datetime(2026, 12, 3), datetime(2026, 12, 3), POLICY, force_full=True)
    assert forced.full and forced.reason == "full re-read asked for"


@pytest.mark.parametrize("field", ["overlap_days", "full_every_days"])
def test_a_policy_that_would_never_overlap_or_never_re_read_is_refused(field):
    with pytest.raises(ValueError, match=field):
        ExtractPolicy(**{field: 0})


def test_a_crm_window_overlaps_by_minutes_not_days():
    window = extract_window(NOW, datetime(2026, 12, 3, 2, 41), datetime(2026, 12, 1), POLICY, source="bitrix24")
    assert window.since == datetime(2026, 12, 3, 1, 41) and "60 minutes" in window.reason
