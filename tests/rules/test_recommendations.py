"""Deterministic local recommendations."""

from __future__ import annotations

from questline.rules.missions import ProgressRecord
from questline.rules.recommendations import ALL_DONE_REASON, NO_ACTIVITY_REASON, recommend
from tests.rules.factories import DAY, MONDAY, campaign, mission

NOW = MONDAY + DAY // 2


def active(count: int, window_start: int = 0) -> ProgressRecord:
    return ProgressRecord("active", count, window_start, NOW - 1)


def test_no_activity_invites_the_user_to_act() -> None:
    missions = [mission("a"), mission("b")]
    assert recommend(missions, {}, [], NOW) == ([], NO_ACTIVITY_REASON)
    assert recommend(missions, {"a": None}, [], NOW) == ([], NO_ACTIVITY_REASON)
    assert "start" in NO_ACTIVITY_REASON


def test_closest_to_completion_first_with_id_tie_break() -> None:
    missions = [
        mission("d", count=10),
        mission("c", count=4),
        mission("b", count=2),
        mission("a", count=4, title="Buy boots"),
    ]
    records = {"d": active(9), "c": active(2), "b": active(1), "a": active(3)}
    ids, reason = recommend(missions, records, [], NOW, limit=10)
    assert ids == ["d", "a", "b", "c"]
    assert "Mission d" in reason and "9/10" in reason


def test_finished_expired_and_inactive_campaign_missions_are_skipped() -> None:
    missions = [
        mission("completed", count=2),
        mission("claimed", count=1),
        mission("expired", count=3, expires_at=NOW - 1),
        mission("ended", count=3, campaign_id="old"),
        mission("open", count=3),
    ]
    records = {
        "completed": ProgressRecord("completed", 2, 0, 1),
        "claimed": ProgressRecord("claimed", 1, 0, 1, claimed_window_start=0),
        "expired": active(2),
        "ended": active(2),
        "open": active(1),
    }
    old = campaign("old", ["ended"], start_at=0, end_at=NOW - 1)
    assert recommend(missions, records, [old], NOW)[0] == ["open"]


def test_then_unstarted_campaign_missions_ending_soonest_then_standalone() -> None:
    missions = [
        mission("started", count=2),
        mission("z-late", campaign_id="late"),
        mission("y-soon", campaign_id="soon"),
        mission("x-soon", campaign_id="soon"),
        mission("future", campaign_id="future"),
        mission("alone"),
    ]
    campaigns = [
        campaign("late", ["z-late"], end_at=NOW + 10 * DAY),
        campaign("soon", ["y-soon", "x-soon"], end_at=NOW + DAY),
        campaign("future", ["future"], start_at=NOW + 1),
    ]
    records = {"started": active(1)}
    ids, _ = recommend(missions, records, campaigns, NOW, limit=10)
    assert ids == ["started", "x-soon", "y-soon", "z-late", "alone"]
    assert recommend(missions, records, campaigns, NOW)[0] == ["started", "x-soon", "y-soon"]


def test_reason_names_a_campaign_when_nothing_is_started() -> None:
    missions = [mission("done", count=1), mission("new", campaign_id="spring", title="Walk")]
    records = {"done": ProgressRecord("claimed", 1, 0, 1, claimed_window_start=0)}
    spring = campaign("spring", ["new"], title="Spring")
    ids, reason = recommend(missions, records, [spring], NOW)
    assert ids == ["new"]
    assert "Spring" in reason and "Walk" in reason


def test_progress_from_a_past_window_counts_as_unstarted() -> None:
    missions = [mission("daily", count=2, window="daily"), mission("life", count=5)]
    records = {"daily": active(1, window_start=MONDAY - DAY), "life": active(1)}
    ids, _ = recommend(missions, records, [], NOW)
    assert ids == ["life", "daily"]


def test_all_caught_up() -> None:
    missions = [mission("a", count=1)]
    records = {"a": ProgressRecord("claimed", 1, 0, 1, claimed_window_start=0)}
    assert recommend(missions, records, [], NOW) == ([], ALL_DONE_REASON)


def test_deterministic() -> None:
    missions = [mission(i, count=3) for i in "qwertyuiop"]
    records = {i: active(1) for i in "poiuy"}
    first = recommend(missions, records, [], NOW)
    assert all(recommend(list(reversed(missions)), records, [], NOW) == first for _ in range(3))
    assert first[0] == ["i", "o", "p"]
