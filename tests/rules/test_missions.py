"""The per-user mission state machine, one rule of the reference at a time."""

from __future__ import annotations

import json

import msgspec
import pytest

from questline.rules.missions import (
    ClaimNotReady,
    ProgressRecord,
    apply_event,
    claim,
    evaluate_event,
    mission_campaigns,
    progress_view,
    to_updates,
)
from questline.rules.questkit_models import Campaign, FilterClause, Mission
from tests.rules.factories import DAY, MONDAY, campaign, event, mission

NOON = MONDAY + DAY // 2
WEEK = 7 * DAY


def run(m: Mission, timestamps: list[int], now: int) -> tuple[ProgressRecord | None, list[str]]:
    """Feed events one by one like the actor does; return the last record and all changes."""
    record: ProgressRecord | None = None
    changes: list[str] = []
    for ts in timestamps:
        new, changed = apply_event(m, record, event(ts), now)
        if new is not None:
            record = new
        changes.extend(changed)
    return record, changes


def status(
    m: Mission, record: ProgressRecord | None, user_id: str, now: int, c: Campaign | None = None
) -> str:
    view = progress_view(m, record, user_id, now, c)
    assert view is not None
    return view.status


# --------------------------------------------------------------------------- matching


def test_first_match_is_active_with_one_progress_change() -> None:
    record, changes = apply_event(mission(count=3), None, event(NOON), NOON + 5)
    assert record == ProgressRecord(
        status="active", current_count=1, window_start=0, updated_at=NOON + 5
    )
    assert changes == ["mission.progress"]


def test_other_event_name_does_not_count() -> None:
    assert apply_event(mission(), None, event(NOON, name="page.viewed"), NOON) == (None, [])


def test_filter_must_match_payload() -> None:
    m = mission(filter={"amount": FilterClause(gte=20)})
    assert apply_event(m, None, event(NOON, payload={"amount": 10}), NOON) == (None, [])
    assert apply_event(m, None, event(NOON, payload={}), NOON) == (None, [])
    record, _ = apply_event(m, None, event(NOON, payload={"amount": 20}), NOON)
    assert record is not None and record.current_count == 1


def test_reaching_target_completes_and_publishes_both_changes() -> None:
    record, changes = run(mission(count=2), [NOON, NOON + 1], NOON + 2)
    assert record is not None
    assert (record.status, record.current_count) == ("completed", 2)
    assert changes == ["mission.progress", "mission.progress", "mission.completed"]


def test_count_one_completes_on_first_event() -> None:
    record, changes = apply_event(mission(count=1), None, event(NOON), NOON)
    assert record is not None and record.status == "completed"
    assert changes == ["mission.progress", "mission.completed"]


def test_completed_mission_gets_nothing_more() -> None:
    m = mission(count=2)
    record, _ = run(m, [NOON, NOON], NOON)
    assert apply_event(m, record, event(NOON + 1), NOON + 1) == (None, [])


def test_count_is_clamped_at_target() -> None:
    # e.g. the target was lowered after progress was made
    stale = ProgressRecord(status="active", current_count=5, window_start=0, updated_at=1)
    record, changes = apply_event(mission(count=3), stale, event(NOON), NOON)
    assert record is not None
    assert (record.status, record.current_count) == ("completed", 3)
    assert changes == ["mission.progress", "mission.completed"]
    record, _ = run(mission(count=3), [NOON] * 10, NOON)
    assert record is not None and record.current_count == 3


# --------------------------------------------------------------------------- expiry and campaigns


def test_event_exactly_at_expires_at_counts() -> None:
    m = mission(expires_at=NOON)
    record, _ = apply_event(m, None, event(NOON), NOON + 10)
    assert record is not None and record.current_count == 1


def test_event_after_expires_at_does_not_count() -> None:
    m = mission(expires_at=NOON)
    assert apply_event(m, None, event(NOON + 1), NOON + 10) == (None, [])


def test_campaign_bounds_are_inclusive_and_use_event_time() -> None:
    c = campaign("c1", ["m1"], start_at=NOON, end_at=NOON + 100)
    m = mission(campaign_id="c1")
    assert apply_event(m, None, event(NOON - 1), NOON, c) == (None, [])
    assert apply_event(m, None, event(NOON + 101), NOON + 101, c) == (None, [])
    assert apply_event(m, None, event(NOON), NOON, c)[0] is not None
    assert apply_event(m, None, event(NOON + 100), NOON + 200, c)[0] is not None


# --------------------------------------------------------------------------- windows


def test_late_event_from_previous_day_is_dropped() -> None:
    m = mission(window="daily")
    assert apply_event(m, None, event(MONDAY - 1), MONDAY) == (None, [])
    assert apply_event(m, None, event(MONDAY), MONDAY)[0] is not None


def test_event_from_a_future_window_is_dropped() -> None:
    m = mission(window="daily")
    assert apply_event(m, None, event(MONDAY + DAY), MONDAY + DAY - 1) == (None, [])


def test_late_event_from_previous_week_is_dropped() -> None:
    m = mission(window="weekly")
    sunday_night = MONDAY - 1
    assert apply_event(m, None, event(sunday_night), MONDAY + 3 * DAY) == (None, [])
    # ... but any day of the current week counts
    assert apply_event(m, None, event(MONDAY), MONDAY + 6 * DAY)[0] is not None


def test_lifetime_accepts_any_past_event() -> None:
    record, _ = apply_event(mission(), None, event(0), MONDAY)
    assert record is not None


def test_progress_from_an_earlier_window_restarts_at_zero() -> None:
    m = mission(window="daily", count=3)
    yesterday, _ = run(m, [NOON - DAY, NOON - DAY], NOON - DAY)
    assert yesterday is not None and yesterday.current_count == 2
    record, changes = apply_event(m, yesterday, event(NOON), NOON)
    assert record is not None
    assert (record.status, record.current_count, record.window_start) == ("active", 1, MONDAY)
    assert changes == ["mission.progress"]


def test_weekly_rollover_on_monday_midnight() -> None:
    m = mission(window="weekly", count=2)
    last_week = ProgressRecord("completed", 2, MONDAY - WEEK, MONDAY - 10)
    record, _ = apply_event(m, last_week, event(MONDAY), MONDAY)
    assert record is not None
    assert (record.status, record.current_count, record.window_start) == ("active", 1, MONDAY)


def test_claimed_mission_is_dormant_until_the_next_window() -> None:
    m = mission(window="daily", count=1)
    done, _ = apply_event(m, None, event(NOON), NOON)
    claimed = claim(m, done, NOON + 1)
    assert apply_event(m, claimed, event(NOON + 2), NOON + 2) == (None, [])
    assert apply_event(m, claimed, event(MONDAY + DAY - 1), MONDAY + DAY - 1) == (None, [])
    again, changes = apply_event(m, claimed, event(MONDAY + DAY), MONDAY + DAY)
    assert again is not None
    assert (again.status, again.current_count, again.claimed_window_start) == ("completed", 1, None)
    assert changes == ["mission.progress", "mission.completed"]


def test_lifetime_claimed_mission_stays_dormant() -> None:
    m = mission(count=1)
    done, _ = apply_event(m, None, event(NOON), NOON)
    claimed = claim(m, done, NOON)
    assert apply_event(m, claimed, event(NOON + 100 * WEEK), NOON + 100 * WEEK) == (None, [])


def test_record_ahead_of_the_clock_is_never_moved_backwards() -> None:
    m = mission(window="daily", count=3)
    tomorrow = ProgressRecord("active", 2, MONDAY + DAY, MONDAY + DAY + 5)
    assert apply_event(m, tomorrow, event(NOON), NOON) == (None, [])


# --------------------------------------------------------------------------- claim


def test_claim_completed_mission() -> None:
    m = mission(window="daily", count=1)
    done, _ = apply_event(m, None, event(NOON), NOON)
    claimed = claim(m, done, NOON + 9)
    assert claimed == ProgressRecord(
        status="claimed",
        current_count=1,
        window_start=MONDAY,
        updated_at=NOON + 9,
        claimed_window_start=MONDAY,
    )


def test_claim_twice_raises() -> None:
    m = mission(count=1)
    done, _ = apply_event(m, None, event(NOON), NOON)
    claimed = claim(m, done, NOON)
    with pytest.raises(ClaimNotReady):
        claim(m, claimed, NOON + 1)


def test_claim_not_ready() -> None:
    m = mission(window="daily", count=2)
    with pytest.raises(ClaimNotReady):
        claim(m, None, NOON)
    active, _ = apply_event(m, None, event(NOON), NOON)
    with pytest.raises(ClaimNotReady):
        claim(m, active, NOON)


def test_completion_from_a_past_window_cannot_be_claimed() -> None:
    m = mission(window="daily", count=1)
    done, _ = apply_event(m, None, event(NOON), NOON)
    with pytest.raises(ClaimNotReady):
        claim(m, done, NOON + DAY)


# --------------------------------------------------------------------------- views


def test_never_touched_mission_has_no_progress() -> None:
    assert progress_view(mission(), None, "usr_1", NOON) is None


def test_view_reports_fraction_and_counts() -> None:
    m = mission(count=3)
    record, _ = apply_event(m, None, event(NOON), NOON + 7)
    view = progress_view(m, record, "usr_1", NOON + 8)
    assert view is not None
    assert json.loads(msgspec.json.encode(view)) == {
        "userId": "usr_1",
        "missionId": "m1",
        "status": "active",
        "progress": pytest.approx(1 / 3),
        "currentCount": 1,
        "targetCount": 3,
        "updatedAt": NOON + 7,
    }


def test_view_of_completed_and_claimed() -> None:
    m = mission(count=1)
    done, _ = apply_event(m, None, event(NOON), NOON)
    view = progress_view(m, done, "u", NOON)
    assert view is not None and (view.status, view.progress) == ("completed", 1.0)
    view = progress_view(m, claim(m, done, NOON), "u", NOON)
    assert view is not None and view.status == "claimed"


def test_view_of_a_past_window_reads_fresh() -> None:
    m = mission(window="daily", count=2)
    done, _ = run(m, [NOON - DAY, NOON - DAY], NOON - DAY)
    for record in (done, claim(m, done, NOON - DAY)):
        view = progress_view(m, record, "u", NOON)
        assert view is not None
        assert (view.status, view.current_count, view.progress) == ("active", 0, 0.0)
        assert view.updated_at == MONDAY


def test_view_is_locked_when_the_campaign_is_not_running() -> None:
    m = mission(count=2, campaign_id="c1")
    record, _ = apply_event(m, None, event(NOON), NOON)
    ended = campaign("c1", ["m1"], start_at=0, end_at=NOON + 1)
    assert status(m, record, "u", NOON + 1, ended) == "active"
    assert status(m, record, "u", NOON + 2, ended) == "locked"
    future = campaign("c1", ["m1"], start_at=NOON + 10, end_at=NOON + 20)
    assert status(m, record, "u", NOON, future) == "locked"


def test_view_is_locked_after_expiry_unless_finished() -> None:
    m = mission(count=2, expires_at=NOON)
    record, _ = apply_event(m, None, event(NOON), NOON)
    assert status(m, record, "u", NOON) == "active"
    assert status(m, record, "u", NOON + 1) == "locked"
    done, _ = apply_event(m, record, event(NOON), NOON)
    assert status(m, done, "u", NOON + 1) == "completed"


# --------------------------------------------------------------------------- whole-event evaluation


def test_evaluate_event_updates_only_missions_that_changed() -> None:
    missions = [
        mission("b-one", count=1),
        mission("a-three", count=3),
        mission("other", event_name="page.viewed"),
        mission("done", count=1),
    ]
    records = {"done": ProgressRecord("completed", 1, 0, 1)}
    outcome = evaluate_event(missions, records, event(NOON), NOON)
    assert outcome.missions_updated == ["b-one", "a-three"]
    assert outcome.changes == [
        ("b-one", "mission.progress"),
        ("b-one", "mission.completed"),
        ("a-three", "mission.progress"),
    ]
    assert outcome.records["b-one"].status == "completed"


def test_evaluate_event_respects_campaigns() -> None:
    missions = [mission("m1", campaign_id="c1"), mission("m2")]
    campaigns = mission_campaigns(missions, [campaign("c1", ["m1"], start_at=NOON + 1)])
    outcome = evaluate_event(missions, {}, event(NOON), NOON, campaigns)
    assert outcome.missions_updated == ["m2"]


def test_mission_campaigns_uses_campaign_id_or_mission_ids() -> None:
    missions = [mission("a", campaign_id="c1"), mission("b"), mission("c")]
    result = mission_campaigns(missions, [campaign("c1", ["a"]), campaign("c2", ["b"])])
    assert {k: v.id for k, v in result.items()} == {"a": "c1", "b": "c2"}


def test_to_updates_builds_sdk_payloads_in_order() -> None:
    m = mission(count=1)
    record, changes = apply_event(m, None, event(NOON), NOON)
    view = progress_view(m, record, "u", NOON)
    assert view is not None
    payloads = [json.loads(msgspec.json.encode(u)) for u in to_updates(changes, view)]
    assert [p["type"] for p in payloads] == ["mission.progress", "mission.completed"]
    assert payloads[1]["data"]["status"] == "completed"


def test_record_is_stored_with_camel_case_keys() -> None:
    record = ProgressRecord("claimed", 1, MONDAY, NOON, claimed_window_start=MONDAY)
    raw = msgspec.msgpack.encode(record)
    assert set(msgspec.msgpack.decode(raw)) == {
        "status",
        "currentCount",
        "windowStart",
        "updatedAt",
        "claimedWindowStart",
    }
    assert msgspec.msgpack.decode(raw, type=ProgressRecord) == record
    unclaimed = msgspec.msgpack.encode(ProgressRecord("active", 1, 0, 1))
    assert "claimedWindowStart" not in msgspec.msgpack.decode(unclaimed)
