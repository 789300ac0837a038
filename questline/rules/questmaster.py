"""QuestMaster rules (seed 002): quests, XP, streaks, statistics and session tokens.

Pure: no I/O and no clock reads. Callers pass ``now_ms`` (Unix ms) and the
user's time zone (a ``ZoneInfo``), so the session actor can replay any history
deterministically and tests can walk across DST changes with a fake clock.

Streak days are *local calendar dates* in the user's zone, compared as dates:
never "24 hours since the last completion", which breaks on 23- and 25-hour DST
days and double-counts when a user travels. Several completions on one local
day count once.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

MIN_XP = 1
MAX_XP = 10_000
MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 2000
STREAK_BONUS_DAYS = 7
STREAK_BONUS_PERCENT = 10
ABANDON_PENALTY_PERCENT = 50
RECENT_WINDOW_MS = 7 * 24 * 60 * 60 * 1000
TOKEN_TTL_MS = 5 * 60 * 1000
# A token stamped slightly in the future (the minting host's clock runs ahead) is
# accepted; one stamped further ahead would otherwise live longer than 5 minutes.
TOKEN_MAX_SKEW_MS = 30 * 1000
MAX_SESSION_ID_LENGTH = 128
MAX_ZONE_LENGTH = 64

_SESSION_ID = re.compile(r"[A-Za-z0-9._~@:+=-]{1,128}")
_TIMESTAMP = re.compile(r"[0-9]{1,16}")
_HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}")


# --------------------------------------------------------------------------- errors


class TaskValidationError(ValueError):
    """Bad task input; ``message`` is the documented ``Task validation failed: ...`` text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def message(self) -> str:
        return f"Task validation failed: {self.reason}"


class InvalidTimeZone(ValueError):
    """The ``x-timezone`` value is not an IANA zone name this machine knows."""


# --------------------------------------------------------------------------- time


def resolve_zone(name: str | None) -> ZoneInfo:
    """The user's zone from an IANA name; ``None``/empty means UTC."""
    if name is None or name.strip() == "":
        return ZoneInfo("UTC")
    name = name.strip()
    if len(name) > MAX_ZONE_LENGTH or name.startswith("/") or ".." in name:
        raise InvalidTimeZone(name)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidTimeZone(name) from exc


def to_iso(ms: int) -> str:
    """Unix ms as ISO 8601 UTC with milliseconds, the way JavaScript's toISOString writes it."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def to_ms(moment: datetime) -> int:
    """An aware datetime as Unix ms (exact integer arithmetic, no float rounding)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def parse_iso(value: Any, zone: ZoneInfo) -> int | None:
    """An ISO 8601 timestamp as Unix ms, or None if it is not one.

    A time without an offset is read in the user's zone (not the server's):
    ``2026-01-15T14:00`` from a New York client means 2 pm in New York.
    """
    if not isinstance(value, str) or not 8 <= len(value.strip()) <= 40:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return to_ms(moment)


def local_date(ms: int, zone: ZoneInfo) -> date:
    """The calendar date in ``zone`` at instant ``ms``."""
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).astimezone(zone).date()


# --------------------------------------------------------------------------- state


class Task(msgspec.Struct, frozen=True):
    """An active quest (times in Unix ms; rendered as ISO 8601 on the wire)."""

    id: str
    name: str
    description: str
    start_ms: int
    end_ms: int
    xp: int
    created_ms: int = 0

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "startTime": to_iso(self.start_ms),
            "endTime": to_iso(self.end_ms),
            "XP": self.xp,
        }


class CompletedQuest(msgspec.Struct, frozen=True):
    """A quest in the history: the task as it was, when it was done, what it earned."""

    id: str
    name: str
    description: str
    start_ms: int
    end_ms: int
    xp: int
    completed_ms: int
    xp_earned: int
    narrative: str = ""

    def to_wire(self) -> dict[str, Any]:
        # The seed's example says completedAt, its interface completionDate: send both.
        done = to_iso(self.completed_ms)
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "startTime": to_iso(self.start_ms),
            "endTime": to_iso(self.end_ms),
            "completionDate": done,
            "completedAt": done,
            "XP": self.xp,
            "xpEarned": self.xp_earned,
            "completionNarrative": self.narrative,
        }


class Progress(msgspec.Struct, frozen=True):
    """XP and streak totals of one session (the history itself may be trimmed; these are not)."""

    total_xp: int = 0
    current_streak: int = 0
    longest_streak: int = 0
    last_completion_date: str | None = None  # ISO date, local to the zone of that completion
    total_completed: int = 0
    completed_xp: int = 0  # sum of XP earned by completions (bonus included)


# --------------------------------------------------------------------------- validation


def _text(params: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in params and params[key] is not None:
            return params[key]
    return None


def _valid_xp(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TaskValidationError("XP must be a number between 1 and 10000")
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise TaskValidationError("XP must be a whole number between 1 and 10000")
    xp = int(value)
    if not MIN_XP <= xp <= MAX_XP:
        raise TaskValidationError("XP must be a number between 1 and 10000")
    return xp


def _valid_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TaskValidationError("Task name is required")
    if len(value.strip()) > MAX_NAME_LENGTH:
        raise TaskValidationError(f"Task name must be at most {MAX_NAME_LENGTH} characters")
    return value.strip()


def _valid_description(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TaskValidationError("Task description is required")
    if len(value.strip()) > MAX_DESCRIPTION_LENGTH:
        raise TaskValidationError(
            f"Task description must be at most {MAX_DESCRIPTION_LENGTH} characters"
        )
    return value.strip()


def _valid_time(value: Any, zone: ZoneInfo, which: str) -> int:
    if value is None:
        raise TaskValidationError(f"Missing {which} time")
    ms = parse_iso(value, zone)
    if ms is None:
        raise TaskValidationError(f"Invalid {which} time format")
    return ms


def _check_order(start_ms: int, end_ms: int) -> None:
    if end_ms <= start_ms:
        raise TaskValidationError("End time must be after start time")


def validate_new_task(params: Any, zone: ZoneInfo, *, task_id: str, now_ms: int) -> Task:
    """``createTask`` params (``taskName``, ``taskDescription``, ``taskStartTime``,
    ``taskEndTime``, ``XP``; the plain ``name``/``description``/``startTime``/``endTime``
    are accepted too) as a Task, or TaskValidationError."""
    if not isinstance(params, Mapping):
        raise TaskValidationError("params must be an object")
    name = _valid_name(_text(params, ("taskName", "name")))
    description = _valid_description(_text(params, ("taskDescription", "description")))
    start = _valid_time(_text(params, ("taskStartTime", "startTime")), zone, "start")
    end = _valid_time(_text(params, ("taskEndTime", "endTime")), zone, "end")
    _check_order(start, end)
    xp = _valid_xp(_text(params, ("XP", "xp")))
    return Task(task_id, name, description, start, end, xp, now_ms)


def required_task_id(params: Any) -> str:
    """The ``taskId`` of update/delete params, or TaskValidationError."""
    if not isinstance(params, Mapping):
        raise TaskValidationError("params must be an object")
    task_id = params.get("taskId")
    if not isinstance(task_id, str) or not task_id.strip():
        raise TaskValidationError("taskId is required")
    return task_id.strip()


def apply_task_update(task: Task, params: Mapping[str, Any], zone: ZoneInfo) -> Task:
    """``updateTask`` params applied to ``task``: only the fields given change; the
    result is validated as a whole (a new end before the old start is refused)."""
    changes: dict[str, Any] = {}
    name = _text(params, ("name", "taskName"))
    if name is not None:
        changes["name"] = _valid_name(name)
    description = _text(params, ("description", "taskDescription"))
    if description is not None:
        changes["description"] = _valid_description(description)
    start = _text(params, ("startTime", "taskStartTime"))
    if start is not None:
        changes["start_ms"] = _valid_time(start, zone, "start")
    end = _text(params, ("endTime", "taskEndTime"))
    if end is not None:
        changes["end_ms"] = _valid_time(end, zone, "end")
    xp = _text(params, ("XP", "xp"))
    if xp is not None:
        changes["xp"] = _valid_xp(xp)
    updated = msgspec.structs.replace(task, **changes)
    _check_order(updated.start_ms, updated.end_ms)
    return updated


def add_xp_flag(params: Mapping[str, Any]) -> bool:
    """``deleteTask``'s ``addXP``: true completes, false (or absent) abandons."""
    value = params.get("addXP", False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise TaskValidationError("addXP must be true or false")
    return value


# --------------------------------------------------------------------------- streaks and XP


def record_streak_day(progress: Progress, day: date) -> Progress:
    """Count a completion on local calendar ``day`` toward the streak.

    The same day again changes nothing; the next day extends the streak; a later
    day after a gap starts a new streak of 1. A day *before* the last one (the
    user moved west across the date line) is already covered and changes nothing.
    """
    last = (
        date.fromisoformat(progress.last_completion_date) if progress.last_completion_date else None
    )
    if last is not None and day <= last:
        return progress
    if last is not None and day == last + timedelta(days=1):
        current = progress.current_streak + 1
    else:
        current = 1
    return msgspec.structs.replace(
        progress,
        current_streak=current,
        longest_streak=max(progress.longest_streak, current),
        last_completion_date=day.isoformat(),
    )


def streak_bonus(xp: int, streak_days: int) -> int:
    """+10 % (floored) once the streak, counting today's completion, reaches 7 days."""
    if streak_days >= STREAK_BONUS_DAYS:
        return xp * STREAK_BONUS_PERCENT // 100
    return 0


class Completion(msgspec.Struct, frozen=True):
    progress: Progress
    quest: CompletedQuest
    xp_earned: int
    bonus: int


def complete_task(
    progress: Progress, task: Task, now_ms: int, zone: ZoneInfo, narrative: str = ""
) -> Completion:
    """Complete ``task`` at ``now_ms``: streak day, base XP plus streak bonus, history entry."""
    after = record_streak_day(progress, local_date(now_ms, zone))
    bonus = streak_bonus(task.xp, after.current_streak)
    earned = task.xp + bonus
    after = msgspec.structs.replace(
        after,
        total_xp=after.total_xp + earned,
        total_completed=after.total_completed + 1,
        completed_xp=after.completed_xp + earned,
    )
    quest = CompletedQuest(
        id=task.id,
        name=task.name,
        description=task.description,
        start_ms=task.start_ms,
        end_ms=task.end_ms,
        xp=task.xp,
        completed_ms=now_ms,
        xp_earned=earned,
        narrative=narrative,
    )
    return Completion(progress=after, quest=quest, xp_earned=earned, bonus=bonus)


def abandon_penalty(xp: int) -> int:
    """Half the quest's XP (floored): what abandoning it costs."""
    return xp * ABANDON_PENALTY_PERCENT // 100


def abandon_task(progress: Progress, task: Task) -> Progress:
    """Abandon ``task``: lose half its XP, never going below 0; streaks are untouched."""
    return msgspec.structs.replace(
        progress, total_xp=max(0, progress.total_xp - abandon_penalty(task.xp))
    )


def displayed_streak(progress: Progress, now_ms: int, zone: ZoneInfo) -> int:
    """The streak as the user sees it now: alive while the last completion was today
    or yesterday (local), else 0 (the stored value is only overwritten on the next
    completion, which starts over at 1)."""
    if not progress.last_completion_date:
        return 0
    last = date.fromisoformat(progress.last_completion_date)
    today = local_date(now_ms, zone)
    return progress.current_streak if (today - last).days <= 1 else 0


# --------------------------------------------------------------------------- reads


def _number(value: float) -> int | float:
    """Whole numbers as ints on the wire (``50``, not ``50.0``)."""
    return int(value) if float(value).is_integer() else value


def statistics(
    progress: Progress, history: Iterable[CompletedQuest], active: int, now_ms: int
) -> dict[str, Any]:
    """The seed's Statistics: counts, completion rate (%), XP figures, last-7-days completions.

    ``totalQuests`` counts quests completed plus still active (abandoned quests
    leave no trace, as the seed says); ``avgXPPerQuest`` is XP earned per completed
    quest; ``recentCompletions`` counts completions in the 7 x 24 h before ``now_ms``.
    """
    completed = progress.total_completed
    total = completed + active
    rate = round(completed * 100 / total, 2) if total else 0
    avg = round(progress.completed_xp / completed, 2) if completed else 0
    recent = sum(1 for q in history if now_ms - RECENT_WINDOW_MS < q.completed_ms <= now_ms)
    return {
        "totalCompleted": completed,
        "totalActive": active,
        "totalQuests": total,
        "completionRate": _number(rate),
        "totalXP": progress.total_xp,
        "avgXPPerQuest": _number(avg),
        "recentCompletions": recent,
    }


def summary(
    progress: Progress, tasks: Iterable[Task], now_ms: int, zone: ZoneInfo
) -> dict[str, Any]:
    """The body of ``GET /agents/quest-master-agent/{sessionId}``."""
    return {
        "tasks": [task.to_wire() for task in tasks],
        "totalXP": progress.total_xp,
        "currentStreak": displayed_streak(progress, now_ms, zone),
        "longestStreak": progress.longest_streak,
        "lastCompletionDate": progress.last_completion_date,
    }


# --------------------------------------------------------------------------- tokens


def valid_session_id(session_id: str) -> bool:
    """Session ids are short URL-safe tokens (they appear in paths and log lines)."""
    return bool(_SESSION_ID.fullmatch(session_id))


def _hmac_hex(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_token(secret: bytes, session_id: str, timestamp_ms: int) -> str:
    """``{sessionId}:{timestamp}:{hex HMAC-SHA256 of "{sessionId}:{timestamp}"}``.

    The same construction the seed's frontend uses with its own secret, so a
    frontend holding ``QUESTLINE_QUESTMASTER_SECRET`` can mint tokens itself.
    """
    if not valid_session_id(session_id):
        raise ValueError(f"invalid session id {session_id!r}")
    message = f"{session_id}:{int(timestamp_ms)}"
    return f"{message}:{_hmac_hex(secret, message)}"


def verify_token(
    secret: bytes, token: str, now_ms: int, *, ttl_ms: int = TOKEN_TTL_MS
) -> str | None:
    """The session id a token proves, or None (malformed, forged, expired or from the future).

    A token is valid up to and including ``ttl_ms`` after its timestamp. The
    signature is compared in constant time over the whole hex string.
    """
    if not isinstance(token, str) or len(token) > 256 or not token.isascii():
        return None
    parts = token.rsplit(":", 2)
    if len(parts) != 3:
        return None
    session_id, stamp, signature = parts
    if not valid_session_id(session_id) or not _TIMESTAMP.fullmatch(stamp):
        return None
    expected = _hmac_hex(secret, f"{session_id}:{stamp}")
    # Compare before looking at the shape so a malformed signature costs the same.
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
        return None
    if not _HEX_SIGNATURE.fullmatch(signature):
        return None
    age = now_ms - int(stamp)
    if age > ttl_ms or age < -TOKEN_MAX_SKEW_MS:
        return None
    return session_id


def derived_key(secret: bytes, purpose: str) -> bytes:
    """A key for one purpose, so a value signed for one use never verifies for another."""
    return hmac.new(secret, f"questline/questmaster/{purpose}".encode(), hashlib.sha256).digest()
