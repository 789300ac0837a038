"""UTC windows: daily midnight, ISO-week Monday, lifetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from questline.rules.windows import DAY_MS, WEEK_MS, same_window, window_end, window_start
from tests.rules.factories import MONDAY, ms


def test_daily_exact_midnight_starts_its_own_day() -> None:
    assert window_start("daily", MONDAY) == MONDAY


def test_daily_last_millisecond_belongs_to_the_previous_day() -> None:
    assert window_start("daily", MONDAY - 1) == MONDAY - DAY_MS


def test_daily_mid_day() -> None:
    assert window_start("daily", ms(2024, 5, 22, 13, 45, 7) + 123) == ms(2024, 5, 22)


def test_weekly_exact_monday_midnight_starts_its_own_week() -> None:
    assert window_start("weekly", MONDAY) == MONDAY


def test_weekly_sunday_last_millisecond_belongs_to_the_previous_week() -> None:
    assert window_start("weekly", MONDAY - 1) == MONDAY - WEEK_MS


@pytest.mark.parametrize("days_after_monday", range(7))
def test_weekly_every_weekday_maps_to_monday(days_after_monday: int) -> None:
    ts = MONDAY + days_after_monday * DAY_MS + 12 * 3_600_000
    assert window_start("weekly", ts) == MONDAY


def test_weekly_matches_iso_calendar_over_many_days() -> None:
    start = datetime(1969, 12, 1, 7, 30, tzinfo=UTC)
    for offset in range(0, 2000, 13):
        moment = start + timedelta(days=offset, hours=offset % 24)
        ts = int(moment.timestamp() * 1000)
        monday = (moment - timedelta(days=moment.isoweekday() - 1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        assert window_start("weekly", ts) == int(monday.timestamp() * 1000), moment


def test_weekly_around_the_epoch_thursday() -> None:
    # 1970-01-01 was a Thursday: its ISO week began Monday 1969-12-29.
    assert window_start("weekly", 0) == ms(1969, 12, 29)
    assert window_start("daily", -1) == -DAY_MS


def test_lifetime_is_always_zero() -> None:
    assert window_start("lifetime", MONDAY) == 0
    assert window_start("lifetime", 0) == 0
    assert window_end("lifetime", MONDAY) is None


def test_window_end_is_exclusive() -> None:
    assert window_end("daily", MONDAY) == MONDAY + DAY_MS
    assert window_end("daily", MONDAY + DAY_MS - 1) == MONDAY + DAY_MS
    assert window_end("weekly", MONDAY + 3 * DAY_MS) == MONDAY + WEEK_MS


def test_same_window() -> None:
    assert same_window("daily", MONDAY, MONDAY + DAY_MS - 1)
    assert not same_window("daily", MONDAY - 1, MONDAY)
    assert same_window("weekly", MONDAY, MONDAY + WEEK_MS - 1)
    assert not same_window("weekly", MONDAY + WEEK_MS - 1, MONDAY + WEEK_MS)
    assert same_window("lifetime", 0, MONDAY)


def test_unknown_window_is_rejected() -> None:
    with pytest.raises(ValueError, match="monthly"):
        window_start("monthly", MONDAY)  # type: ignore[arg-type]
