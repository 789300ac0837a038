"""Mission windows in UTC: the daily, weekly (ISO, Monday first) and lifetime buckets.

QuestKit defines windows on the UTC calendar, so a window is identified by the
Unix-ms instant it starts at. Integer arithmetic on epoch milliseconds keeps this
exact and free of time-zone/DST surprises (UTC has neither); floor division
makes instants before 1970 land in the right bucket too.
"""

from __future__ import annotations

from typing import Literal

Window = Literal["daily", "weekly", "lifetime"]

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
# 1970-01-01 was a Thursday, so the ISO week containing the epoch began on Monday
# 1969-12-29, three days earlier. Shifting by that offset aligns weeks to Mondays.
_EPOCH_TO_MONDAY_MS = 3 * DAY_MS


def window_start(window: Window, ts_ms: int) -> int:
    """Start (Unix ms, inclusive) of the ``window`` that contains ``ts_ms``; lifetime is 0."""
    if window == "daily":
        return ts_ms - ts_ms % DAY_MS
    if window == "weekly":
        return (ts_ms + _EPOCH_TO_MONDAY_MS) // WEEK_MS * WEEK_MS - _EPOCH_TO_MONDAY_MS
    if window == "lifetime":
        return 0
    raise ValueError(f"unknown window {window!r}")


def window_end(window: Window, ts_ms: int) -> int | None:
    """End (Unix ms, exclusive) of the window containing ``ts_ms``; None for lifetime."""
    start = window_start(window, ts_ms)
    if window == "daily":
        return start + DAY_MS
    if window == "weekly":
        return start + WEEK_MS
    return None


def same_window(window: Window, a_ms: int, b_ms: int) -> bool:
    """Do two instants fall in the same window (always true for lifetime)?"""
    return window_start(window, a_ms) == window_start(window, b_ms)
