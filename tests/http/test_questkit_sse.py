"""GET /v1/sse/updates over real HTTP streaming (live uvicorn): frames, isolation, resume, auth."""

from __future__ import annotations

import json

import httpx
import pytest

from questline.http.app import create_app
from questline.http.questkit import questkit_routes
from questline.http.questkit_stream import questkit_stream_routes
from tests.conftest import RUNTIMES
from tests.http.live import live_server
from tests.http.questkit_support import QK, make_qk_fixture  # noqa: F401
from tests.http.test_sse import read_frames


def streaming_app(qk: QK):
    routes = questkit_routes(extra_routes=questkit_stream_routes())
    return create_app(qk.runtime, extra_routes=routes, manage_runtime=False)


def kinds(frames: list[dict]) -> list[tuple[str, str]]:
    out = []
    for f in frames:
        update = json.loads(f["data"])
        out.append((update["type"], update["data"].get("missionId", update["data"].get("currency", ""))))
    return out


@pytest.mark.parametrize("runtime_name", RUNTIMES)
async def test_event_and_claim_frames_reach_every_stream_of_the_user_only(make_qk, runtime_name):
    qk = await make_qk(runtime_name)
    t1, t2 = await qk.token("u1"), await qk.token("u2")
    async with live_server(streaming_app(qk)) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        auth1 = {"Authorization": f"Bearer {t1}", "Accept": "text/event-stream"}
        async with http.stream("GET", "/v1/sse/updates", headers=auth1) as a, \
                http.stream("GET", "/v1/sse/updates", headers=auth1) as b, \
                http.stream("GET", "/v1/sse/updates", headers={"Authorization": f"Bearer {t2}"}) as other:
            assert a.status_code == 200 and a.headers["content-type"].startswith("text/event-stream")
            assert (await qk.event(t1, "buy", {"product": "boots"})).status_code == 200
            assert (await qk.claim(t1, "f-eq")).status_code == 200
            expected = [
                ("mission.progress", "f-eq"), ("mission.completed", "f-eq"),
                ("mission.claimed", "f-eq"), ("reward.granted", "f-eq"), ("balance.changed", "coins"),
            ]
            for stream in (a, b):
                frames = await read_frames(stream, 5)
                assert all(f["event"] == "update" for f in frames)
                assert [int(f["id"]) for f in frames] == [1, 2, 3, 4, 5]
                assert kinds(frames) == expected
            with pytest.raises(TimeoutError):
                await read_frames(other, 1, seconds=0.5)


async def test_resume_with_last_event_id_replays_exactly_the_missed_frames(make_qk):
    qk = await make_qk("local")
    token = await qk.token("u1")
    await qk.event(token, "read")  # frames 1, 2
    await qk.claim(token, "expiring")  # frames 3, 4, 5
    async with live_server(streaming_app(qk)) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        headers = {"Authorization": f"Bearer {token}", "Last-Event-ID": "2"}
        async with http.stream("GET", "/v1/sse/updates", headers=headers) as s:
            frames = await read_frames(s, 3)
            assert [f["id"] for f in frames] == ["3", "4", "5"]


async def test_query_token_for_eventsource_and_refused_credentials(make_qk):
    qk = await make_qk("local")
    token = await qk.token("u1")
    async with live_server(streaming_app(qk)) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        async with http.stream("GET", f"/v1/sse/updates?token={token}") as s:
            assert s.status_code == 200
            await qk.event(token, "read")
            assert len(await read_frames(s, 2)) == 2
        for headers, params in (({}, {}), ({"Authorization": "Bearer nope"}, {}), ({}, {"token": "x.y.z"})):
            r = await http.get("/v1/sse/updates", headers=headers, params=params)
            assert r.status_code == 401 and r.json()["error"] == "unauthorized"
        revoked = await qk.token("u1")
        r = await qk.http.post("/v1/auth/revoke", headers={"Authorization": f"Bearer {revoked}"})
        assert r.status_code == 200, r.text
        r = await http.get("/v1/sse/updates", headers={"Authorization": f"Bearer {revoked}"})
        assert r.status_code == 401
        qk.clock.advance(3_600_000)  # past the 1 h expiry
        r = await http.get("/v1/sse/updates", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401
