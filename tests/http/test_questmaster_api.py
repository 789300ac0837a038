"""QuestMaster agent routes, black-box over ASGI: auth, tasks, completion rules, history, limits."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from questline.actors.questmaster import session_hub
from questline.http.questmaster import mint_token
from questline.rules.questmaster import sign_token
from tests.http.questmaster_helpers import (  # noqa: F401 (fixtures)
    AGENT,
    NY,
    SECRET,
    Clock,
    app_for,
    auth,
    client_fixture,
    client_for,
    clock_fixture,
    create_params,
    runtime_fixture,
    settings,
)

UNAUTHORIZED = {"error": "Unauthorized. Invalid authentication token."}
RATE_LIMITED = {"error": "Rate limit exceeded. Too many requests. Please try again later."}




async def create(client: httpx.AsyncClient, clock: Clock, session: str = "user-1", **kw) -> dict:
    response = await client.post(
        f"{AGENT}/{session}",
        headers=auth(clock, session),
        json={"tool": "createTask", "params": create_params(**kw)},
    )
    assert response.status_code == 200, response.text
    return response.json()["task"]


async def delete(
    client: httpx.AsyncClient, clock: Clock, task_id: str, add_xp: bool, session: str = "user-1"
) -> httpx.Response:
    return await client.post(
        f"{AGENT}/{session}",
        headers=auth(clock, session),
        json={"tool": "deleteTask", "params": {"taskId": task_id, "addXP": add_xp}},
    )


async def get(client: httpx.AsyncClient, clock: Clock, session: str = "user-1", **params) -> dict:
    response = await client.get(f"{AGENT}/{session}", headers=auth(clock, session), params=params)
    assert response.status_code == 200, response.text
    return response.json()


# --------------------------------------------------------------------------- tasks


async def test_empty_log(client: httpx.AsyncClient, clock: Clock) -> None:
    response = await client.get(f"{AGENT}/user-1", headers=auth(clock, "user-1"))
    assert response.status_code == 200
    assert response.json() == {
        "tasks": [],
        "totalXP": 0,
        "currentStreak": 0,
        "longestStreak": 0,
        "lastCompletionDate": None,
    }
    assert response.headers["x-ratelimit-limit"] == "60"
    assert response.headers["x-ratelimit-remaining"] == "59"


async def test_create_then_list(client: httpx.AsyncClient, clock: Clock) -> None:
    task = await create(client, clock, xp=75)
    assert set(task) == {"id", "name", "description", "startTime", "endTime", "XP"}
    assert (task["name"], task["XP"]) == ("Slay the dragon", 75)
    assert (task["startTime"], task["endTime"]) == (
        "2026-01-15T14:00:00.000Z",
        "2026-01-15T18:00:00.000Z",
    )
    body = await get(client, clock)
    assert body["tasks"] == [task]
    assert (await get(client, clock, session="user-2"))["tasks"] == []  # sessions are isolated


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"taskStartTime": "half past never"}, "Task validation failed: Invalid start time format"),
        (
            {"taskEndTime": "2026-01-15T13:00:00.000Z"},
            "Task validation failed: End time must be after start time",
        ),
        ({"XP": 0}, "Task validation failed: XP must be a number between 1 and 10000"),
        ({"XP": 10_001}, "Task validation failed: XP must be a number between 1 and 10000"),
        ({"taskName": ""}, "Task validation failed: Task name is required"),
    ],
)
async def test_create_validation_400_changes_nothing(
    client: httpx.AsyncClient, clock: Clock, params: dict, error: str
) -> None:
    response = await client.post(
        f"{AGENT}/user-1",
        headers=auth(clock, "user-1"),
        json={"tool": "createTask", "params": {**create_params(), **params}},
    )
    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert response.headers["x-ratelimit-remaining"] == "59"
    assert (await get(client, clock))["tasks"] == []


async def test_update_task(client: httpx.AsyncClient, clock: Clock) -> None:
    task = await create(client, clock)
    response = await client.post(
        f"{AGENT}/user-1",
        headers=auth(clock, "user-1"),
        json={
            "tool": "updateTask",
            "params": {"taskId": task["id"], "endTime": "2026-01-15T20:00:00.000Z"},
        },
    )
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "task": {**task, "endTime": "2026-01-15T20:00:00.000Z"},
    }
    assert (await get(client, clock))["tasks"][0]["endTime"] == "2026-01-15T20:00:00.000Z"
    bad = await client.post(
        f"{AGENT}/user-1",
        headers=auth(clock, "user-1"),
        json={
            "tool": "updateTask",
            "params": {"taskId": task["id"], "endTime": "2026-01-15T10:00:00Z"},
        },
    )
    assert bad.status_code == 400
    assert bad.json() == {"error": "Task validation failed: End time must be after start time"}


@pytest.mark.parametrize(
    "doc",
    [
        {"tool": "updateTask", "params": {"taskId": "nope", "endTime": "2026-01-15T20:00:00.000Z"}},
        {"tool": "deleteTask", "params": {"taskId": "nope", "addXP": True}},
        {"tool": "deleteTask", "params": {"taskId": "nope", "addXP": False}},
    ],
)
async def test_unknown_task_is_404(client: httpx.AsyncClient, clock: Clock, doc: dict) -> None:
    response = await client.post(f"{AGENT}/user-1", headers=auth(clock, "user-1"), json=doc)
    assert response.status_code == 404
    assert response.json() == {"error": "Task not found"}


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"{not json", "Invalid JSON body"),
        (b"[1, 2]", "Invalid request: expected a JSON object with tool and params"),
        (b'{"params": {}}', "Invalid request: expected a JSON object with tool and params"),
        (b'{"tool": "launchRocket", "params": {}}', "Unknown tool: launchRocket"),
        (
            b'{"tool": "createTask", "params": "x"}',
            "Task validation failed: params must be an object",
        ),
        (b'{"tool": "deleteTask", "params": {}}', "Task validation failed: taskId is required"),
        (
            b'{"tool": "deleteTask", "params": {"taskId": "x", "addXP": "yes"}}',
            "Task validation failed: addXP must be true or false",
        ),
    ],
)
async def test_bad_tool_requests_are_400(
    client: httpx.AsyncClient, clock: Clock, content: bytes, error: str
) -> None:
    headers = {**auth(clock, "user-1"), "Content-Type": "application/json"}
    response = await client.post(f"{AGENT}/user-1", headers=headers, content=content)
    assert response.status_code == 400
    assert response.json() == {"error": error}


async def test_unsupported_content_type_and_method(client: httpx.AsyncClient, clock: Clock) -> None:
    headers = {**auth(clock, "user-1"), "Content-Type": "application/xml"}
    response = await client.post(f"{AGENT}/user-1", headers=headers, content=b"<quest/>")
    assert response.status_code == 400
    response = await client.put(f"{AGENT}/user-1", headers=auth(clock, "user-1"))
    assert response.status_code == 405
    assert response.json() == {"error": "Method not allowed"}


# --------------------------------------------------------------------------- completion rules


async def test_complete_moves_the_quest_to_history_with_a_narrative(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    task = await create(client, clock, xp=80)
    response = await delete(client, clock, task["id"], True)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "narrative", "xpEarned"}
    assert body["success"] is True and body["xpEarned"] == 80
    assert "slay the dragon" in body["narrative"].lower()
    state = await get(client, clock)
    assert state["tasks"] == []
    assert (state["totalXP"], state["currentStreak"], state["longestStreak"]) == (80, 1, 1)
    assert state["lastCompletionDate"] == "2026-01-15"
    history = await get(client, clock, history="true")
    (done,) = history["completedQuests"]
    assert done["id"] == task["id"] and done["XP"] == 80
    assert done["completionDate"] == done["completedAt"] == "2026-01-15T14:00:00.000Z"
    assert done["completionNarrative"] == body["narrative"]
    # The same quest cannot be completed twice.
    assert (await delete(client, clock, task["id"], True)).status_code == 404


async def test_abandon_costs_half_floored_at_zero_and_leaves_no_history(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    small = await create(client, clock, xp=30)
    assert (await delete(client, clock, small["id"], True)).json()["xpEarned"] == 30
    big = await create(client, clock, xp=100)
    response = await delete(client, clock, big["id"], False)
    assert response.status_code == 200
    assert response.json() == {"success": True}
    state = await get(client, clock)
    assert state["totalXP"] == 0  # 30 - 50, floored
    assert state["tasks"] == []
    history = await get(client, clock, history="true")
    assert [q["id"] for q in history["completedQuests"]] == [small["id"]]
    medium = await create(client, clock, xp=55)
    await delete(client, clock, (await create(client, clock, xp=100))["id"], True)
    await delete(client, clock, medium["id"], False)
    assert (await get(client, clock))["totalXP"] == 100 - 27


async def test_streak_in_the_users_zone_and_bonus_on_the_seventh_day(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    earned = []
    for day in range(1, 9):
        # 23:30 New York time: already the next day in UTC.
        clock.set_local(f"2026-03-{day:02d}T23:30")
        task = await create(client, clock, xp=50)
        earned.append((await delete(client, clock, task["id"], True)).json()["xpEarned"])
    assert earned == [50, 50, 50, 50, 50, 50, 55, 55]  # the 2026-03-08 DST change breaks nothing
    state = await get(client, clock)
    assert (state["currentStreak"], state["longestStreak"], state["lastCompletionDate"]) == (
        8,
        8,
        "2026-03-08",
    )
    assert state["totalXP"] == 6 * 50 + 2 * 55
    # Two days later (local) the streak has lapsed, the longest is kept.
    clock.set_local("2026-03-10T00:01")
    state = await get(client, clock)
    assert (state["currentStreak"], state["longestStreak"]) == (0, 8)
    task = await create(client, clock, xp=50)
    assert (await delete(client, clock, task["id"], True)).json()["xpEarned"] == 50
    assert (await get(client, clock))["currentStreak"] == 1


async def test_session_zone_is_remembered_for_requests_without_the_header(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    clock.set_local("2026-01-15T23:30")  # 04:30 UTC on the 16th
    task = await create(client, clock)
    await delete(client, clock, task["id"], True)
    plain = await client.get(f"{AGENT}/user-1", headers=auth(clock, "user-1", zone=None))
    assert plain.json()["lastCompletionDate"] == "2026-01-15"


async def test_history_statistics(client: httpx.AsyncClient, clock: Clock) -> None:
    clock.set_local("2026-01-01T12:00")
    for xp in (10, 20, 30):
        task = await create(client, clock, xp=xp)
        await delete(client, clock, task["id"], True)
        clock.advance(86_400_000 * 3)  # Jan 1, 4 and 7 local noon
    await create(client, clock, xp=40)
    abandoned = await create(client, clock, xp=40)
    await delete(client, clock, abandoned["id"], False)
    clock.set_local("2026-01-11T11:59")
    body = await get(client, clock, history="true")
    assert [q["XP"] for q in body["completedQuests"]] == [30, 20, 10]  # newest first
    assert body["statistics"] == {
        "totalCompleted": 3,
        "totalActive": 1,
        "totalQuests": 4,
        "completionRate": 75,
        "totalXP": 60 - 20,
        "avgXPPerQuest": 20,
        "recentCompletions": 2,  # Jan 7 and Jan 4 12:00 are within 7 days of Jan 11 11:59
    }


async def test_changes_are_published_to_the_session_hub(
    client: httpx.AsyncClient, clock: Clock, runtime
) -> None:
    task = await create(client, clock)
    await delete(client, clock, task["id"], True)
    await asyncio.sleep(0.05)  # tells leave after the turn commits
    replay = await runtime.call(session_hub("user-1"), "replay", 0)
    events = [
        (item["event"], item["data"]["reason"], len(item["data"]["tasks"]))
        for item in replay["items"]
    ]
    assert events == [("tasks", "created", 1), ("tasks", "completed", 0)]
    assert replay["items"][1]["data"]["totalXP"] == 50
    assert (await runtime.call(session_hub("user-2"), "replay", 0))["items"] == []


# --------------------------------------------------------------------------- auth


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "make_headers",
    [
        lambda clock: {},
        lambda clock: {"Authorization": "user-1:123:abc"},
        lambda clock: {"Authorization": "Basic dXNlcjpwYXNz"},
        lambda clock: bearer(""),
        lambda clock: bearer(mint_token(settings(clock), "user-2", clock())),  # another session
        lambda clock: bearer(sign_token(b"wrong-secret", "user-1", clock())),
        lambda clock: bearer(mint_token(settings(clock), "user-1", clock())[:-2] + "00"),
        lambda clock: bearer(mint_token(settings(clock), "user-1", clock() - 300_001)),
        lambda clock: bearer(mint_token(settings(clock), "user-1", clock() + 60_000)),
    ],
    ids=[
        "none",
        "no-scheme",
        "basic",
        "empty",
        "other-session",
        "wrong-secret",
        "tampered",
        "expired",
        "future",
    ],
)
async def test_bad_tokens_are_401_and_count_nothing(
    client: httpx.AsyncClient, clock: Clock, make_headers
) -> None:
    for request in (
        client.get(f"{AGENT}/user-1", headers=make_headers(clock)),
        client.post(
            f"{AGENT}/user-1",
            headers=make_headers(clock),
            json={"tool": "createTask", "params": create_params()},
        ),
        client.post(
            f"{AGENT}/user-1",
            headers={**make_headers(clock), "Content-Type": "text/plain"},
            content=b"hi",
        ),
    ):
        response = await request
        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED
        assert "x-ratelimit-remaining" not in response.headers
    ok = await client.get(f"{AGENT}/user-1", headers=auth(clock, "user-1"))
    assert ok.headers["x-ratelimit-remaining"] == "59"
    assert ok.json()["tasks"] == []


async def test_token_expires_after_exactly_five_minutes(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    headers = auth(clock, "user-1")
    clock.advance(5 * 60 * 1000)
    assert (await client.get(f"{AGENT}/user-1", headers=headers)).status_code == 200
    clock.advance(1)
    response = await client.get(f"{AGENT}/user-1", headers=headers)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


async def test_invalid_timezone_is_400(client: httpx.AsyncClient, clock: Clock) -> None:
    for zone in ("Mars/Olympus", "../etc/passwd", "EST+99"):
        headers = {**auth(clock, "user-1", zone=None), "x-timezone": zone}
        response = await client.get(f"{AGENT}/user-1", headers=headers)
        assert response.status_code == 400
        assert response.json() == {"error": f"Invalid timezone: {zone}"}
        assert "x-ratelimit-remaining" in response.headers
    headers = {
        **auth(clock, "user-1", zone=None),
        "x-timezone": "Mars/Olympus",
        "Content-Type": "text/plain",
    }
    response = await client.post(f"{AGENT}/user-1", headers=headers, content=b"list my quests")
    assert response.status_code == 400


# --------------------------------------------------------------------------- rate limits


async def test_task_operations_limited_to_60_per_minute(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    headers = auth(clock, "user-1")
    for i in range(60):
        response = await client.get(f"{AGENT}/user-1", headers=headers)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining"] == str(59 - i)
    response = await client.post(
        f"{AGENT}/user-1", headers=headers, json={"tool": "createTask", "params": create_params()}
    )
    assert response.status_code == 429
    assert response.json() == RATE_LIMITED
    assert response.headers["x-ratelimit-limit"] == "60"
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert response.headers["retry-after"] == "60"
    clock.advance(30_000)
    assert (await client.get(f"{AGENT}/user-1", headers=auth(clock, "user-1"))).headers[
        "retry-after"
    ] == "30"
    # Chat has its own window, and other sessions are unaffected.
    chat = await client.post(
        f"{AGENT}/user-1",
        headers={**auth(clock, "user-1"), "Content-Type": "text/plain"},
        content=b"list my quests",
    )
    assert chat.status_code == 200
    assert chat.headers["x-ratelimit-limit"] == "30"
    assert (await client.get(f"{AGENT}/user-2", headers=auth(clock, "user-2"))).status_code == 200
    # The window slides: a minute after the first requests they are forgotten.
    clock.advance(30_001)
    response = await client.get(f"{AGENT}/user-1", headers=auth(clock, "user-1"))
    assert response.status_code == 200
    assert response.json()["tasks"] == []  # the refused create changed nothing


async def test_chat_limited_to_30_per_minute(client: httpx.AsyncClient, clock: Clock) -> None:
    headers = {**auth(clock, "user-1"), "Content-Type": "text/plain"}
    for i in range(30):
        response = await client.post(f"{AGENT}/user-1", headers=headers, content=b"hello")
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining"] == str(29 - i)
    response = await client.post(f"{AGENT}/user-1", headers=headers, content=b"hello")
    assert response.status_code == 429
    assert response.json() == RATE_LIMITED
    assert int(response.headers["retry-after"]) == 60
    # Task operations still have their own budget.
    assert (await client.get(f"{AGENT}/user-1", headers=headers)).status_code == 200


async def test_secret_is_what_signs(client: httpx.AsyncClient, clock: Clock) -> None:
    token = sign_token(SECRET, "user-9", clock())
    assert (
        await client.get(f"{AGENT}/user-9", headers={**bearer(token), "x-timezone": NY})
    ).status_code == 200
