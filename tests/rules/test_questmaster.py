"""QuestMaster rules: validation, streaks across zones and DST, XP, statistics, tokens."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from questline.rules import questmaster as qm
from questline.rules.questmaster import (
    CompletedQuest,
    Progress,
    Task,
    TaskValidationError,
)

NY = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
UTC_ZONE = ZoneInfo("UTC")
SECRET = b"test-secret"


def ms(text: str, zone: ZoneInfo = UTC_ZONE) -> int:
    """Unix ms of a local wall time ``YYYY-MM-DDTHH:MM`` in ``zone``."""
    return qm.to_ms(datetime.fromisoformat(text).replace(tzinfo=zone))


def task(xp: int = 50, task_id: str = "t1") -> Task:
    return Task(
        task_id, "Slay the dragon", "A dragon.", ms("2026-01-15T14:00"), ms("2026-01-15T18:00"), xp
    )


def valid_params(**overrides: object) -> dict[str, object]:
    params: dict[str, object] = {
        "taskName": "Quest Name",
        "taskDescription": "Epic description",
        "taskStartTime": "2026-01-15T14:00:00.000Z",
        "taskEndTime": "2026-01-15T18:00:00.000Z",
        "XP": 50,
    }
    params.update(overrides)
    return params


# --------------------------------------------------------------------------- time helpers


def test_iso_output_matches_javascript_to_iso_string() -> None:
    assert qm.to_iso(ms("2026-01-15T14:00")) == "2026-01-15T14:00:00.000Z"
    assert qm.to_iso(1_768_485_600_123) == "2026-01-15T14:00:00.123Z"
    assert qm.to_iso(0) == "1970-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-15T14:00:00.000Z", "2026-01-15T14:00:00.000Z"),
        ("2026-01-15T14:00:00Z", "2026-01-15T14:00:00.000Z"),
        ("2026-01-15T09:00:00-05:00", "2026-01-15T14:00:00.000Z"),
        ("2026-01-15T14:00:00.5+00:00", "2026-01-15T14:00:00.500Z"),
        # No offset: the user's zone (New York in January is UTC-5).
        ("2026-01-15T09:00:00", "2026-01-15T14:00:00.000Z"),
        ("2026-07-15T09:00", "2026-07-15T13:00:00.000Z"),
    ],
)
def test_parse_iso(text: str, expected: str) -> None:
    parsed = qm.parse_iso(text, NY)
    assert parsed is not None and qm.to_iso(parsed) == expected


@pytest.mark.parametrize(
    "bad", ["tomorrow", "", "2026-13-01T00:00:00Z", "15/01/2026", 1768485600000, None, "x" * 50]
)
def test_parse_iso_rejects(bad: object) -> None:
    assert qm.parse_iso(bad, NY) is None


@pytest.mark.parametrize(
    "name", ["America/New_York", "Asia/Kolkata", "UTC", "Europe/London", " Asia/Tokyo "]
)
def test_resolve_zone_accepts_iana_names(name: str) -> None:
    assert qm.resolve_zone(name).key == name.strip()


@pytest.mark.parametrize(
    "name",
    ["Mars/Olympus", "../../etc/passwd", "/etc/localtime", "America/", "x" * 100, "New York"],
)
def test_resolve_zone_rejects_unknown_names(name: str) -> None:
    with pytest.raises(qm.InvalidTimeZone):
        qm.resolve_zone(name)


def test_resolve_zone_defaults_to_utc() -> None:
    assert qm.resolve_zone(None).key == "UTC"
    assert qm.resolve_zone("").key == "UTC"


# --------------------------------------------------------------------------- validation


def test_valid_task_is_built() -> None:
    built = qm.validate_new_task(valid_params(), NY, task_id="id-1", now_ms=7)
    assert built.to_wire() == {
        "id": "id-1",
        "name": "Quest Name",
        "description": "Epic description",
        "startTime": "2026-01-15T14:00:00.000Z",
        "endTime": "2026-01-15T18:00:00.000Z",
        "XP": 50,
    }
    assert built.created_ms == 7


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"taskStartTime": "not a time"}, "Task validation failed: Invalid start time format"),
        ({"taskEndTime": "soon"}, "Task validation failed: Invalid end time format"),
        ({"taskStartTime": None}, "Task validation failed: Missing start time"),
        (
            {"taskEndTime": "2026-01-15T14:00:00.000Z"},
            "Task validation failed: End time must be after start time",
        ),
        (
            {"taskEndTime": "2026-01-15T13:00:00.000Z"},
            "Task validation failed: End time must be after start time",
        ),
        ({"XP": 0}, "Task validation failed: XP must be a number between 1 and 10000"),
        ({"XP": 10_001}, "Task validation failed: XP must be a number between 1 and 10000"),
        ({"XP": -5}, "Task validation failed: XP must be a number between 1 and 10000"),
        ({"XP": "50"}, "Task validation failed: XP must be a number between 1 and 10000"),
        ({"XP": True}, "Task validation failed: XP must be a number between 1 and 10000"),
        ({"XP": None}, "Task validation failed: XP must be a number between 1 and 10000"),
        ({"XP": 12.5}, "Task validation failed: XP must be a whole number between 1 and 10000"),
        ({"taskName": "  "}, "Task validation failed: Task name is required"),
        (
            {"taskName": "x" * 201},
            "Task validation failed: Task name must be at most 200 characters",
        ),
        ({"taskDescription": ""}, "Task validation failed: Task description is required"),
    ],
)
def test_validation_messages(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(TaskValidationError) as caught:
        qm.validate_new_task(valid_params(**overrides), NY, task_id="x", now_ms=0)
    assert caught.value.message == message


@pytest.mark.parametrize("xp", [1, 10_000, 50.0])
def test_xp_bounds_are_inclusive(xp: float) -> None:
    assert qm.validate_new_task(valid_params(XP=xp), NY, task_id="x", now_ms=0).xp == int(xp)


def test_update_changes_only_given_fields_and_revalidates() -> None:
    original = task()
    later = qm.apply_task_update(
        original, {"taskId": "t1", "endTime": "2026-01-15T20:00:00.000Z"}, NY
    )
    assert qm.to_iso(later.end_ms) == "2026-01-15T20:00:00.000Z"
    assert (later.name, later.start_ms, later.xp) == (original.name, original.start_ms, original.xp)
    with pytest.raises(TaskValidationError) as caught:
        qm.apply_task_update(original, {"endTime": "2026-01-15T10:00:00.000Z"}, NY)
    assert caught.value.message == "Task validation failed: End time must be after start time"
    with pytest.raises(TaskValidationError):
        qm.apply_task_update(original, {"XP": 20_000}, NY)


def test_task_id_and_add_xp_flags() -> None:
    assert qm.required_task_id({"taskId": " abc "}) == "abc"
    for bad in ({}, {"taskId": ""}, {"taskId": 5}, None):
        with pytest.raises(TaskValidationError):
            qm.required_task_id(bad)
    assert qm.add_xp_flag({"addXP": True}) is True
    assert qm.add_xp_flag({"addXP": False}) is False
    assert qm.add_xp_flag({}) is False
    with pytest.raises(TaskValidationError):
        qm.add_xp_flag({"addXP": "yes"})


# --------------------------------------------------------------------------- streaks


def complete_at(
    progress: Progress, *moments: int, zone: ZoneInfo = UTC_ZONE, xp: int = 50
) -> Progress:
    for moment in moments:
        progress = qm.complete_task(progress, task(xp), moment, zone).progress
    return progress


def test_consecutive_days_extend_and_same_day_counts_once() -> None:
    p = complete_at(
        Progress(), ms("2026-01-10T09:00"), ms("2026-01-10T21:00"), ms("2026-01-10T23:59")
    )
    assert (p.current_streak, p.longest_streak, p.last_completion_date) == (1, 1, "2026-01-10")
    p = complete_at(p, ms("2026-01-11T00:01"), ms("2026-01-12T12:00"))
    assert (p.current_streak, p.longest_streak, p.last_completion_date) == (3, 3, "2026-01-12")
    assert p.total_completed == 5  # every completion counts as a quest, not as a streak day


def test_missed_day_restarts_the_streak_and_keeps_the_longest() -> None:
    p = complete_at(Progress(), *(ms(f"2026-01-{d:02d}T10:00") for d in (1, 2, 3, 4)))
    assert p.current_streak == 4
    p = complete_at(p, ms("2026-01-06T10:00"))  # the 5th was missed
    assert (p.current_streak, p.longest_streak) == (1, 4)
    p = complete_at(p, ms("2026-01-07T10:00"))
    assert (p.current_streak, p.longest_streak) == (2, 4)


def test_days_are_counted_in_the_users_zone() -> None:
    # 04:30 UTC and 20:00 UTC on Jan 15: one UTC day, but in New York the first
    # is 23:30 on Jan 14 and the second 15:00 on Jan 15: two consecutive days.
    first, second = ms("2026-01-15T04:30"), ms("2026-01-15T20:00")
    assert complete_at(Progress(), first, second, zone=UTC_ZONE).current_streak == 1
    in_ny = complete_at(Progress(), first, second, zone=NY)
    assert (in_ny.current_streak, in_ny.last_completion_date) == (2, "2026-01-15")
    # Tokyo (UTC+9): 13:30 and 05:00 next day: also two days.
    assert complete_at(Progress(), first, second, zone=TOKYO).current_streak == 2


def test_spring_forward_day_has_23_hours_but_is_one_day() -> None:
    # 2026-03-08 is the US spring-forward day (23 hours long in New York).
    # 23:50 on the 7th to 00:10 on the 9th is only 23 h 20 min later, yet the 8th was missed.
    p = complete_at(Progress(), ms("2026-03-07T23:50", NY), ms("2026-03-09T00:10", NY), zone=NY)
    assert p.current_streak == 1
    # 00:10 and 23:50 on the 8th are one day (22 h 40 min apart, no roll-over).
    p = complete_at(Progress(), ms("2026-03-08T00:10", NY), ms("2026-03-08T23:50", NY), zone=NY)
    assert (p.current_streak, p.last_completion_date) == (1, "2026-03-08")


def test_fall_back_day_has_25_hours_and_does_not_break_the_streak() -> None:
    # 2026-11-01 is the US fall-back day (25 hours). 00:30 on Oct 31 to 23:30 on
    # Nov 1 is 48 h + 1 h: more than two 24-hour days, but the dates are consecutive.
    p = complete_at(Progress(), ms("2026-10-31T00:30", NY), ms("2026-11-01T23:30", NY), zone=NY)
    assert p.current_streak == 2
    # Both 01:30s of Nov 1 (EDT, then EST an hour later) are the same day.
    first_130 = qm.to_ms(datetime(2026, 11, 1, 1, 30, tzinfo=NY))
    second_130 = qm.to_ms(datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NY))
    assert second_130 - first_130 == 3_600_000
    p = complete_at(Progress(), first_130, second_130, zone=NY)
    assert (p.current_streak, p.last_completion_date) == (1, "2026-11-01")


def test_moving_west_never_counts_a_day_twice() -> None:
    # Completed at 00:30 on Jan 16 in Tokyo, then the user moves to New York where
    # it is still Jan 15: that date is already behind the streak, nothing changes.
    p = complete_at(Progress(), ms("2026-01-16T00:30", TOKYO), zone=TOKYO)
    later = qm.complete_task(p, task(), ms("2026-01-15T12:00", NY), NY).progress
    assert (later.current_streak, later.last_completion_date) == (1, "2026-01-16")
    assert later.total_completed == 2


def test_displayed_streak_expires_after_a_missed_local_day() -> None:
    p = complete_at(Progress(), ms("2026-01-10T10:00", NY), ms("2026-01-11T10:00", NY), zone=NY)
    assert qm.displayed_streak(p, ms("2026-01-11T23:59", NY), NY) == 2
    assert qm.displayed_streak(p, ms("2026-01-12T23:59", NY), NY) == 2  # yesterday still counts
    assert qm.displayed_streak(p, ms("2026-01-13T00:00", NY), NY) == 0
    assert qm.displayed_streak(Progress(), ms("2026-01-13T00:00"), NY) == 0


# --------------------------------------------------------------------------- XP


def test_streak_bonus_starts_at_exactly_seven_days() -> None:
    p = Progress()
    earned = []
    for day in range(1, 9):
        done = qm.complete_task(p, task(55), ms(f"2026-02-{day:02d}T12:00", NY), NY)
        p = done.progress
        earned.append((p.current_streak, done.xp_earned, done.bonus))
    assert earned[5] == (6, 55, 0)
    assert earned[6] == (7, 60, 5)  # 10 % of 55, floored
    assert earned[7] == (8, 60, 5)
    assert p.total_xp == 6 * 55 + 2 * 60
    assert p.completed_xp == p.total_xp


def test_seed_example_fifty_xp_with_bonus_is_fifty_five() -> None:
    assert qm.streak_bonus(50, 7) == 5
    assert qm.streak_bonus(50, 6) == 0
    assert qm.streak_bonus(9, 30) == 0  # 0.9 floors to 0


def test_completion_builds_the_history_entry() -> None:
    done = qm.complete_task(Progress(), task(40), ms("2026-01-15T17:00"), UTC_ZONE, "Told.")
    assert done.quest.to_wire() == {
        "id": "t1",
        "name": "Slay the dragon",
        "description": "A dragon.",
        "startTime": "2026-01-15T14:00:00.000Z",
        "endTime": "2026-01-15T18:00:00.000Z",
        "completionDate": "2026-01-15T17:00:00.000Z",
        "completedAt": "2026-01-15T17:00:00.000Z",
        "XP": 40,
        "xpEarned": 40,
        "completionNarrative": "Told.",
    }


@pytest.mark.parametrize(
    ("total", "xp", "after"),
    [
        (100, 50, 75),
        (100, 55, 73),
        (10, 50, 0),
        (25, 50, 0),
        (0, 10_000, 0),
        (26, 50, 1),
        (7, 1, 7),
    ],
)
def test_abandon_costs_half_the_xp_floored_at_zero(total: int, xp: int, after: int) -> None:
    p = qm.abandon_task(Progress(total_xp=total, current_streak=3, longest_streak=5), task(xp))
    assert p.total_xp == after
    assert (p.current_streak, p.longest_streak) == (3, 5)


# --------------------------------------------------------------------------- statistics


def quest(i: int, completed_ms: int, earned: int = 50) -> CompletedQuest:
    return CompletedQuest(f"q{i}", f"Quest {i}", "d", 0, 1, earned, completed_ms, earned)


def test_statistics_on_a_known_history() -> None:
    now = ms("2026-01-20T12:00")
    history = [quest(i, ms(f"2026-01-{i + 1:02d}T12:00")) for i in range(10)]  # Jan 1 .. Jan 10
    history += [quest(10, ms("2026-01-13T12:00")), quest(11, ms("2026-01-13T12:00") + 1)]
    history += [quest(12, ms("2026-01-19T12:00"), earned=150)]
    p = Progress(total_xp=700, total_completed=13, completed_xp=12 * 50 + 150)
    stats = qm.statistics(p, history, active=2, now_ms=now)
    assert stats == {
        "totalCompleted": 13,
        "totalActive": 2,
        "totalQuests": 15,
        "completionRate": 86.67,
        "totalXP": 700,
        "avgXPPerQuest": 57.69,  # 750 / 13
        # Exactly 7 days before now is outside the window; 1 ms later is inside.
        "recentCompletions": 2,
    }


def test_statistics_seed_example_and_empty_log() -> None:
    p = Progress(total_xp=500, total_completed=10, completed_xp=500)
    stats = qm.statistics(p, [], active=5, now_ms=0)
    assert (stats["completionRate"], stats["avgXPPerQuest"], stats["totalQuests"]) == (
        66.67,
        50,
        15,
    )
    assert isinstance(stats["avgXPPerQuest"], int)
    assert qm.statistics(Progress(), [], active=0, now_ms=0) == {
        "totalCompleted": 0,
        "totalActive": 0,
        "totalQuests": 0,
        "completionRate": 0,
        "totalXP": 0,
        "avgXPPerQuest": 0,
        "recentCompletions": 0,
    }


def test_summary_shape() -> None:
    p = Progress(
        total_xp=150, current_streak=5, longest_streak=10, last_completion_date="2026-01-15"
    )
    body = qm.summary(p, [task()], ms("2026-01-16T10:00"), UTC_ZONE)
    assert body == {
        "tasks": [task().to_wire()],
        "totalXP": 150,
        "currentStreak": 5,
        "longestStreak": 10,
        "lastCompletionDate": "2026-01-15",
    }


# --------------------------------------------------------------------------- tokens


def test_token_format_is_the_seeds() -> None:
    token = qm.sign_token(SECRET, "user-123", 1_768_485_600_000)
    session, stamp, signature = token.split(":")
    expected = hmac.new(SECRET, b"user-123:1768485600000", hashlib.sha256).hexdigest()
    assert (session, stamp, signature) == ("user-123", "1768485600000", expected)


def test_token_valid_until_exactly_five_minutes() -> None:
    issued = 1_768_485_600_000
    token = qm.sign_token(SECRET, "user-123", issued)
    assert qm.verify_token(SECRET, token, issued) == "user-123"
    assert qm.verify_token(SECRET, token, issued + 5 * 60 * 1000) == "user-123"
    assert qm.verify_token(SECRET, token, issued + 5 * 60 * 1000 + 1) is None
    # A little clock skew (token from the near future) is tolerated, more is not.
    assert qm.verify_token(SECRET, token, issued - 30_000) == "user-123"
    assert qm.verify_token(SECRET, token, issued - 30_001) is None


def test_session_ids_with_colons_survive() -> None:
    token = qm.sign_token(SECRET, "google:1234", 1000)
    assert qm.verify_token(SECRET, token, 1000) == "google:1234"


def flip(text: str, index: int) -> str:
    char = text[index]
    return text[:index] + ("0" if char != "0" else "1") + text[index + 1 :]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace("user-123", "user-124"),  # another session, same signature
        lambda t: t.replace(":1768485600000:", ":1768485600001:"),  # a fresher timestamp
        lambda t: flip(t, len(t) - 1),  # one hex digit of the signature
        lambda t: t[:-1],  # shortened signature
        lambda t: t + "0",  # lengthened signature
        lambda t: t.upper(),  # case changes the session id and the hex
        lambda t: t.rsplit(":", 1)[0],  # no signature
        lambda t: (
            t.rsplit(":", 1)[0]
            + ":"
            + hmac.new(b"other", t.rsplit(":", 1)[0].encode(), hashlib.sha256).hexdigest()
        ),
        lambda t: "",
        lambda t: "user-123:1768485600000",
        lambda t: "user-123: 1768485600000:" + t.rsplit(":", 1)[1],
        lambda t: t.replace("1768485600000", "+1768485600000"),
        lambda t: t + "é",
    ],
)
def test_tampered_tokens_are_refused(tamper) -> None:
    token = qm.sign_token(SECRET, "user-123", 1_768_485_600_000)
    assert qm.verify_token(SECRET, token, 1_768_485_600_000) == "user-123"
    assert qm.verify_token(SECRET, tamper(token), 1_768_485_600_000) is None


def test_other_secret_or_purpose_key_is_refused() -> None:
    token = qm.sign_token(SECRET, "user-123", 1000)
    assert qm.verify_token(b"other-secret", token, 1000) is None
    cookie_key = qm.derived_key(SECRET, "proxy-session")
    assert cookie_key != SECRET
    assert qm.verify_token(cookie_key, token, 1000) is None
    assert qm.verify_token(SECRET, qm.sign_token(cookie_key, "user-123", 1000), 1000) is None


def test_sign_refuses_unsafe_session_ids() -> None:
    for bad in ("", "a b", "x" * 129, "semi;colon", "new\nline", "slash/es"):
        with pytest.raises(ValueError):
            qm.sign_token(SECRET, bad, 1000)


def test_local_date_helper() -> None:
    assert qm.local_date(ms("2026-01-15T04:30"), NY) == date(2026, 1, 14)
    assert qm.local_date(ms("2026-01-15T04:30"), UTC_ZONE) == date(2026, 1, 15)
