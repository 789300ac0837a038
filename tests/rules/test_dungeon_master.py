"""The local Dungeon Master: intents, natural-language times in the user's zone, prose."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from questline.rules import dungeon_master as dm
from questline.rules.dungeon_master import (
    LocalDungeonMaster,
    SessionView,
    ToolCall,
    ToolOutcome,
)
from questline.rules.questmaster import CompletedQuest, Progress, Task, to_iso, to_ms

NY = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
# Thursday 2026-01-15, 09:00 in New York (14:00 UTC).
NOW = to_ms(datetime(2026, 1, 15, 9, 0, tzinfo=NY))
MASTER = LocalDungeonMaster()

REPORT = Task("task-a", "Finish my report", "A report.", NOW, NOW + 3_600_000, 80)
PLANTS = Task("task-b", "Water the plants", "Plants.", NOW, NOW + 7_200_000, 20)


def view(*tasks: Task, recent: list[CompletedQuest] | None = None) -> SessionView:
    return SessionView(list(tasks), recent or [], Progress())


def respond(message: str, *tasks: Task, now: int = NOW, zone: ZoneInfo = NY) -> dm.DMReply:
    return MASTER.respond(message, view(*tasks), now, zone)


# --------------------------------------------------------------------------- create


@pytest.mark.parametrize(
    ("message", "name", "end", "xp"),
    [
        (
            "Create a quest to finish my report by 5pm tomorrow, 80 XP",
            "Finish my report",
            "2026-01-16T22:00:00.000Z",
            80,
        ),
        ("Add a task: call mom tomorrow at 6pm", "Call mom", "2026-01-16T23:00:00.000Z", 50),
        ("Create a quest to call mom tomorrow at 6pm", "Call mom", "2026-01-16T23:00:00.000Z", 50),
        ("New quest: water the plants by noon", "Water the plants", "2026-01-15T17:00:00.000Z", 50),
        (
            "create a quest to clean the garage by friday, worth 120 xp",
            "Clean the garage",
            "2026-01-17T04:59:00.000Z",
            120,
        ),
        ("Remind me to pay rent in 3 days", "Pay rent", "2026-01-18T14:00:00.000Z", 50),
        (
            "Make a quest to prepare slides by 8am",
            "Prepare slides",
            "2026-01-16T13:00:00.000Z",
            50,
        ),  # 8 am passed
        (
            "Create a quest to review PRs by end of day, 30 XP",
            "Review PRs",
            "2026-01-16T04:59:00.000Z",
            30,
        ),
        (
            "create a new mission called Dragon hunt by January 20 at 3pm",
            "Dragon hunt",
            "2026-01-20T20:00:00.000Z",
            50,
        ),
        (
            "Create a quest to finish my report",
            "Finish my report",
            "2026-01-16T14:00:00.000Z",
            50,
        ),  # a day
        (
            "Please create a task to email Bob in 2 hours, 15xp",
            "Email Bob",
            "2026-01-15T16:00:00.000Z",
            15,
        ),
        ("Add quest: buy milk by 18:30, XP: 5", "Buy milk", "2026-01-15T23:30:00.000Z", 5),
        (
            "create a quest to call May about the march",
            "Call May about the march",
            "2026-01-16T14:00:00.000Z",
            50,
        ),
        (
            "Create a quest to read 5 chapters by sunday",
            "Read 5 chapters",
            "2026-01-19T04:59:00.000Z",
            50,
        ),
        (
            "Create a quest to plan the party by next monday at 10am",
            "Plan the party",
            "2026-01-19T15:00:00.000Z",
            50,
        ),
    ],
)
def test_create_phrasings(message: str, name: str, end: str, xp: int) -> None:
    reply = respond(message)
    (call,) = reply.tool_calls
    assert call.tool == "createTask"
    assert call.params["taskName"] == name
    assert call.params["taskEndTime"] == end
    assert call.params["taskStartTime"] == to_iso(NOW)
    assert call.params["XP"] == xp
    assert call.params["taskDescription"]
    assert reply.chunks and reply.chunks[0]


def test_create_with_a_start_time() -> None:
    (call,) = respond("Create a quest to study chemistry from 2pm until 4pm tomorrow").tool_calls
    assert call.params["taskName"] == "Study chemistry"
    assert call.params["taskStartTime"] == "2026-01-15T19:00:00.000Z"
    assert call.params["taskEndTime"] == "2026-01-16T21:00:00.000Z"


def test_times_resolve_in_the_users_zone() -> None:
    # 09:00 New York is 23:00 in Tokyo: "tomorrow" there is Jan 16 local.
    (call,) = respond("Create a quest to finish my report by 5pm tomorrow", zone=TOKYO).tool_calls
    assert call.params["taskEndTime"] == "2026-01-16T08:00:00.000Z"


def test_times_across_the_dst_change() -> None:
    # Saturday 2026-03-07 noon in New York; Sunday the clocks spring forward.
    now = to_ms(datetime(2026, 3, 7, 12, 0, tzinfo=NY))
    (call,) = respond("Create a quest to finish my report by 5pm tomorrow", now=now).tool_calls
    assert call.params["taskEndTime"] == "2026-03-08T21:00:00.000Z"  # 17:00 EDT, not EST
    (call,) = respond("Create a quest to rest", now=now).tool_calls  # default: same time tomorrow
    assert call.params["taskEndTime"] == "2026-03-08T16:00:00.000Z"  # 12:00 EDT: 23 h later


def test_out_of_range_xp_is_proposed_and_left_to_validation() -> None:
    (call,) = respond("Create a quest to conquer the world, 50000 XP").tool_calls
    assert call.params["XP"] == 50_000
    assert call.params["taskName"] == "Conquer the world"


def test_nameless_quest_is_refused_in_voice() -> None:
    reply = respond("Create a quest")
    assert reply.tool_calls == []
    assert "name" in reply.chunks[0]


# --------------------------------------------------------------------------- other intents


@pytest.mark.parametrize(
    "message",
    [
        "list my quests",
        "What quests do I have?",
        "show me my tasks",
        "quests?",
        "Which missions are open",
    ],
)
def test_list_intents(message: str) -> None:
    assert respond(message, REPORT).tool_calls == [ToolCall("viewTasks")]


@pytest.mark.parametrize(
    ("message", "task_id"),
    [
        ("I finished my report", "task-a"),
        ("Complete the report quest", "task-a"),
        ("mark finish my report as done", "task-a"),
        ("done with the report!", "task-a"),
        ("I watered the plants, quest complete", "task-b"),
        ("complete quest 2", "task-b"),
        ("finished the first quest", "task-a"),
    ],
)
def test_complete_intents(message: str, task_id: str) -> None:
    (call,) = respond(message, REPORT, PLANTS).tool_calls
    assert call == ToolCall("deleteTask", {"taskId": task_id, "addXP": True})


@pytest.mark.parametrize(
    ("message", "task_id"),
    [
        ("abandon the report", "task-a"),
        ("I give up on watering the plants", "task-b"),
        ("cancel my report quest", "task-a"),
        ("delete the last quest", "task-b"),
    ],
)
def test_abandon_intents(message: str, task_id: str) -> None:
    (call,) = respond(message, REPORT, PLANTS).tool_calls
    assert call == ToolCall("deleteTask", {"taskId": task_id, "addXP": False})


@pytest.mark.parametrize(
    ("message", "task", "end"),
    [
        ("extend my report by 2 hours", REPORT, REPORT.end_ms + 7_200_000),
        ("push back the plants quest by 30 minutes", PLANTS, PLANTS.end_ms + 1_800_000),
        ("postpone my report by a day", REPORT, REPORT.end_ms + 86_400_000),
        (
            "extend the report deadline to tomorrow noon",
            REPORT,
            to_ms(datetime(2026, 1, 16, 12, tzinfo=NY)),
        ),
        (
            "move watering the plants to friday at 6pm",
            PLANTS,
            to_ms(datetime(2026, 1, 16, 18, tzinfo=NY)),
        ),
        (
            "Reschedule the report until January 22",
            REPORT,
            to_ms(datetime(2026, 1, 22, 23, 59, tzinfo=NY)),
        ),
    ],
)
def test_extend_intents(message: str, task: Task, end: int) -> None:
    (call,) = respond(message, REPORT, PLANTS).tool_calls
    assert call.tool == "updateTask"
    assert call.params["taskId"] == task.id
    assert call.params["endTime"] == to_iso(end)


def test_extending_a_generated_description_retells_the_deadline() -> None:
    ours = Task("t", "Finish my report", MASTER.describe("Finish my report", NOW, NY), 0, NOW, 10)
    (call,) = respond("extend my report by 1 hour", ours).tool_calls
    assert call.params["description"] == MASTER.describe("Finish my report", NOW + 3_600_000, NY)
    (call,) = respond("extend my report by 1 hour", REPORT).tool_calls
    assert "description" not in call.params  # the user's own text is left alone


def test_extend_without_an_amount_asks() -> None:
    reply = respond("extend my report", REPORT)
    assert reply.tool_calls == [] and "how far" in reply.chunks[0]


@pytest.mark.parametrize("message", ["complete the dragon hunt", "abandon the spaceship"])
def test_unknown_quest_is_asked_about(message: str) -> None:
    reply = respond(message, REPORT, PLANTS)
    assert reply.tool_calls == []
    assert "Finish my report" in reply.chunks[0] and "Water the plants" in reply.chunks[0]


def test_ambiguous_quest_is_asked_about() -> None:
    twin = Task("task-c", "Finish my essay", "An essay.", NOW, NOW + 1, 10)
    reply = respond("I finished it", REPORT, twin)
    assert reply.tool_calls == []
    assert "Which one" in reply.chunks[0]


def test_it_means_the_only_quest() -> None:
    (call,) = respond("I finished it", REPORT).tool_calls
    assert call.params == {"taskId": "task-a", "addXP": True}


def test_empty_log_and_small_talk() -> None:
    assert respond("complete my report").tool_calls == []
    assert "empty" in respond("complete my report").chunks[0]
    hello = respond("hello there")
    assert hello.tool_calls == []
    assert "Create a quest" in hello.chunks[0]  # the greeting teaches what it understands


# --------------------------------------------------------------------------- time helpers


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("5pm tomorrow", datetime(2026, 1, 16, 17, 0)),
        ("tomorrow at 5pm", datetime(2026, 1, 16, 17, 0)),
        ("friday", datetime(2026, 1, 16, 23, 59)),
        ("tonight", datetime(2026, 1, 15, 20, 0)),
        ("noon", datetime(2026, 1, 15, 12, 0)),
        ("8am", datetime(2026, 1, 16, 8, 0)),
        ("in 90 minutes", datetime(2026, 1, 15, 10, 30)),
        ("end of day", datetime(2026, 1, 15, 23, 59)),
        ("2026-02-01", datetime(2026, 2, 1, 23, 59)),
        ("February 1 at 9:15am", datetime(2026, 2, 1, 9, 15)),
    ],
)
def test_parse_when(phrase: str, expected: datetime) -> None:
    assert dm.parse_when(phrase, NOW, NY) == to_ms(expected.replace(tzinfo=NY))


@pytest.mark.parametrize("phrase", ["", "my report", "the dragon", "5", "second chapter"])
def test_parse_when_ignores_non_times(phrase: str) -> None:
    assert dm.parse_when(phrase, NOW, NY) is None


def test_extend_by_days_keeps_the_wall_clock_across_dst() -> None:
    before = to_ms(datetime(2026, 3, 7, 17, 0, tzinfo=NY))
    after = dm.extend_by(before, "day", 1, NY)
    assert after == to_ms(datetime(2026, 3, 8, 17, 0, tzinfo=NY))
    assert after - before == 23 * 3_600_000
    assert dm.extend_by(before, "hour", 24, NY) - before == 24 * 3_600_000
    assert dm.extend_by(before, "week", 1, NY) == to_ms(datetime(2026, 3, 14, 17, 0, tzinfo=NY))


def test_find_task() -> None:
    assert dm.find_task("the report", [REPORT, PLANTS]) is REPORT
    assert dm.find_task("task-b", [REPORT, PLANTS]) is PLANTS
    assert dm.find_task("quest 2", [REPORT, PLANTS]) is PLANTS
    assert dm.find_task("quest 9", [REPORT, PLANTS]) is None
    assert dm.find_task("the dragon", [REPORT, PLANTS]) is None
    assert dm.find_task("anything", []) is None


# --------------------------------------------------------------------------- prose


def story(task: Task, previous: list[CompletedQuest], chapter: int, streak: int = 1) -> str:
    return MASTER.narrate(
        task, previous, chapter=chapter, streak=streak, xp_earned=task.xp, now_ms=NOW, zone=NY
    )


def completed(task: Task, narrative: str) -> CompletedQuest:
    return CompletedQuest(
        task.id, task.name, task.description, 0, 1, task.xp, NOW, task.xp, narrative
    )


def test_narratives_build_on_the_previous_stories() -> None:
    first = story(REPORT, [], 1)
    assert "chapter 1" in first and "finish their report" in first
    epithet = next(e for e in dm.EPITHETS if e in first)
    second = story(PLANTS, [completed(REPORT, first)], 2, streak=2)
    assert '"Finish my report"' in second  # recalls the previous deed
    assert epithet in second  # the same hero
    assert "chapter 2" in second and "2 days running" in second
    dragon = Task("task-d", "Slay the dragon", "d", 0, 1, 100)
    third = story(dragon, [completed(REPORT, first), completed(PLANTS, second)], 3)
    assert '"Water the plants"' in third and epithet in third
    assert (
        story(dragon, [completed(REPORT, first), completed(PLANTS, second)], 3) == third
    )  # deterministic


def test_reports() -> None:
    failed = MASTER.report(
        ToolOutcome(ToolCall("createTask"), ok=False, error="Task validation failed: x"), NOW, NY
    )
    assert "Task validation failed: x" in failed[0]
    listed = MASTER.report(
        ToolOutcome(ToolCall("viewTasks"), ok=True, tasks=[REPORT, PLANTS]), NOW, NY
    )
    assert listed[0] == "You carry 2 active quests:"
    assert listed[1].startswith(
        "1. Finish my report (80 XP), due by 10:00 AM on Thursday, January 15"
    )
    empty = MASTER.report(ToolOutcome(ToolCall("viewTasks"), ok=True, tasks=[]), NOW, NY)
    assert "empty" in empty[0]
    done = MASTER.report(
        ToolOutcome(
            ToolCall("deleteTask", {"taskId": "a", "addXP": True}),
            ok=True,
            task=REPORT,
            xp_earned=88,
            bonus=8,
            narrative="A tale.",
        ),
        NOW,
        NY,
    )
    assert done == ["A tale.", "You earn 88 XP (8 of it your streak bonus)."]


def test_description_speaks_to_the_adventurer() -> None:
    text = MASTER.describe("Finish my report", to_ms(datetime(2026, 1, 16, 17, tzinfo=NY)), NY)
    assert "finish your report" in text
    assert "5:00 PM on Friday, January 16" in text
