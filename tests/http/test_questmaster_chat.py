"""Dungeon Master chat over real HTTP (SSE framing), live quest-log streams, and races."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from questline.http.questmaster import (
    COOKIE_NAME,
    QUESTMASTER_ACTORS,
    mint_session_cookie,
    mint_token,
)
from tests.conftest import RUNTIMES
from tests.http.live import live_server
from tests.http.questmaster_helpers import (
    AGENT,
    NY,
    Clock,
    app_for,
    auth,
    create_params,
    frames,
    settings,
    sse_data,
)


@pytest.fixture
def clock() -> Clock:
    c = Clock(0)
    c.set_local("2026-01-15T09:00")  # a Thursday
    return c


async def chat(
    client: httpx.AsyncClient, clock: Clock, message: str, session: str = "user-1", zone: str = NY
):
    headers = {**auth(clock, session, zone=zone), "Content-Type": "text/plain"}
    async with client.stream(
        "POST", f"{AGENT}/{session}", headers=headers, content=message.encode()
    ) as response:
        return response, await sse_data(response)


async def test_chat_stream_framing_create_then_list(make_runtime, clock: Clock) -> None:
    rt = await make_runtime("local", actor_classes=QUESTMASTER_ACTORS, clock=clock)
    async with (
        live_server(app_for(rt, settings(clock))) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        response, events = await chat(
            client, clock, "Create a quest to finish my report by 5pm tomorrow, 80 XP"
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-ratelimit-limit"] == "30"
        assert response.headers["x-ratelimit-remaining"] == "29"
        assert events[-1] == "[DONE]"
        meta = json.loads(events[-2])
        assert meta["type"] == "metadata"
        (task,) = meta["tasks"]
        assert (task["name"], task["XP"]) == ("Finish my report", 80)
        assert task["endTime"] == "2026-01-16T22:00:00.000Z"  # 5 pm in New York
        assert task["startTime"] == "2026-01-15T14:00:00.000Z"  # now
        text = events[:-2]
        assert text and all(not chunk.startswith("{") for chunk in text)
        assert any("Finish my report" in chunk for chunk in text)

        state = await client.get(f"{AGENT}/user-1", headers=auth(clock, "user-1"))
        assert state.json()["tasks"] == [task]

        # Nothing changes: no metadata frame, still [DONE] last.
        response, events = await chat(client, clock, "What quests do I have?")
        assert events[-1] == "[DONE]"
        assert not any(chunk.startswith('{"type":"metadata"') for chunk in events)
        assert any("Finish my report" in chunk and "80 XP" in chunk for chunk in events)


async def test_chat_complete_extend_and_abandon(make_runtime, clock: Clock) -> None:
    rt = await make_runtime("local", actor_classes=QUESTMASTER_ACTORS, clock=clock)
    async with (
        live_server(app_for(rt, settings(clock))) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        await chat(client, clock, "Add a quest to water the plants by 6pm, 20 XP")
        await chat(client, clock, "Create a quest to write the quarterly report by friday, 100 XP")
        _, events = await chat(client, clock, "Extend the quarterly report quest by 2 hours")
        meta = json.loads(events[-2])
        assert meta["tasks"][0]["name"] == "Write the quarterly report"
        assert meta["tasks"][0]["endTime"] == "2026-01-17T06:59:00.000Z"  # Friday 23:59 + 2 h
        _, events = await chat(client, clock, "I finished watering the plants")
        assert json.loads(events[-2]) == {"type": "metadata", "tasks": []}
        assert any("20 XP" in chunk for chunk in events)
        _, events = await chat(client, clock, "Abandon the quarterly report")
        assert events[-1] == "[DONE]"
        assert any("costs you 20 XP" in chunk for chunk in events)  # half of 100, but only 20 to lose
        body = (await client.get(f"{AGENT}/user-1", headers=auth(clock, "user-1"))).json()
        assert body["tasks"] == []
        assert body["totalXP"] == 0  # 20 earned, 50 lost, floored


async def test_chat_failure_is_told_in_the_stream(make_runtime, clock: Clock) -> None:
    rt = await make_runtime("local", actor_classes=QUESTMASTER_ACTORS, clock=clock)
    async with (
        live_server(app_for(rt, settings(clock))) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        response, events = await chat(
            client, clock, "Create a quest to conquer the world, 50000 XP"
        )
        assert response.status_code == 200
        assert events[-1] == "[DONE]"
        assert any("XP must be a number between 1 and 10000" in chunk for chunk in events)
        assert not any(chunk.startswith('{"type"') for chunk in events)


@pytest.mark.parametrize(
    ("body", "zone", "error"),
    [
        (b"", NY, "Message must not be empty"),
        (b"   \n ", NY, "Message must not be empty"),
        (b"x" * 10_001, NY, "Message too long (at most 10000 characters)"),
        (b"\xff\xfe", NY, "Message must be UTF-8 text"),
        (b"hello", "Not/AZone", "Invalid timezone: Not/AZone"),
    ],
)
async def test_chat_bad_input_is_400(
    make_runtime, clock: Clock, body: bytes, zone: str, error: str
) -> None:
    rt = await make_runtime("local", actor_classes=QUESTMASTER_ACTORS, clock=clock)
    async with (
        live_server(app_for(rt, settings(clock))) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        headers = {**auth(clock, "user-1", zone=zone), "Content-Type": "text/plain; charset=utf-8"}
        response = await client.post(f"{AGENT}/user-1", headers=headers, content=body)
        assert response.status_code == 400
        assert response.json() == {"error": error}


async def test_proxy_chat_streams_for_the_cookie_session(make_runtime, clock: Clock) -> None:
    rt = await make_runtime("local", actor_classes=QUESTMASTER_ACTORS, clock=clock)
    qm = settings(clock)
    async with (
        live_server(app_for(rt, qm)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        client.cookies.set(COOKIE_NAME, mint_session_cookie(qm, "user-4"))
        headers = {"Content-Type": "text/plain", "x-timezone": NY}
        async with client.stream(
            "POST", "/api/chat", headers=headers, content=b"Create a quest to feed the cat"
        ) as r:
            assert r.status_code == 200
            events = await sse_data(r)
        assert events[-1] == "[DONE]"
        assert json.loads(events[-2])["tasks"][0]["name"] == "Feed the cat"
        tasks = (await client.get(f"{AGENT}/user-4", headers=auth(clock, "user-4"))).json()["tasks"]
        assert [t["name"] for t in tasks] == ["Feed the cat"]
        # {"message": ...} JSON is accepted by the proxy too.
        async with client.stream("POST", "/api/chat", json={"message": "list my quests"}) as r:
            assert (await sse_data(r))[-1] == "[DONE]"


async def test_second_tab_sees_quests_appear(make_runtime, clock: Clock) -> None:
    rt = await make_runtime("local", actor_classes=QUESTMASTER_ACTORS, clock=clock)
    qm = settings(clock)
    async with (
        live_server(app_for(rt, qm)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        token = mint_token(qm, "user-1", clock())
        cookie = {COOKIE_NAME: mint_session_cookie(qm, "user-1")}
        async with (
            client.stream("GET", f"{AGENT}/user-1/events", params={"token": token}) as tab,
            client.stream("GET", "/api/tasks/events", cookies=cookie) as proxy_tab,
            client.stream(
                "GET", f"{AGENT}/user-2/events", params={"token": mint_token(qm, "user-2")}
            ) as other,
        ):
            assert tab.status_code == proxy_tab.status_code == 200
            created = await client.post(
                f"{AGENT}/user-1",
                headers=auth(clock, "user-1"),
                json={"tool": "createTask", "params": create_params()},
            )
            task = created.json()["task"]
            await chat(client, clock, "Create a quest to sharpen my sword")
            for stream in (tab, proxy_tab):
                seen = [f async for f in frames(stream, 2)]
                assert [f["event"] for f in seen] == ["tasks", "tasks"]
                first, second = (json.loads(f["data"]) for f in seen)
                assert first["reason"] == "created" and first["tasks"] == [task]
                assert [t["name"] for t in second["tasks"]] == [
                    "Slay the dragon",
                    "Sharpen my sword",
                ]
            with pytest.raises(TimeoutError):
                async for _ in frames(other, 1, seconds=0.5):
                    pass
        bad = await client.get(f"{AGENT}/user-1/events", params={"token": mint_token(qm, "user-2")})
        assert bad.status_code == 401


@pytest.mark.parametrize("runtime_name", RUNTIMES)
async def test_concurrent_completes_grant_xp_once(
    make_runtime, clock: Clock, runtime_name: str
) -> None:
    rt = await make_runtime(runtime_name, actor_classes=QUESTMASTER_ACTORS, clock=clock)
    async with (
        live_server(app_for(rt, settings(clock))) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        headers = auth(clock, "racer")
        created = await client.post(
            f"{AGENT}/racer",
            headers=headers,
            json={"tool": "createTask", "params": create_params(xp=90)},
        )
        task_id = created.json()["task"]["id"]
        complete = {"tool": "deleteTask", "params": {"taskId": task_id, "addXP": True}}
        responses = await asyncio.gather(
            *(client.post(f"{AGENT}/racer", headers=headers, json=complete) for _ in range(10))
        )
        assert sorted(r.status_code for r in responses) == [200] + [404] * 9
        (winner,) = [r.json() for r in responses if r.status_code == 200]
        assert winner["xpEarned"] == 90
        state = (await client.get(f"{AGENT}/racer", headers=headers)).json()
        history = (
            await client.get(f"{AGENT}/racer", headers=headers, params={"history": "true"})
        ).json()
        assert state["totalXP"] == 90
        assert state["tasks"] == []
        assert [q["id"] for q in history["completedQuests"]] == [task_id]
        assert history["statistics"]["totalCompleted"] == 1
