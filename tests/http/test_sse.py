"""Generic hub streams over real HTTP: order, isolation, resume, reset, backpressure, churn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from questline.actors import hub
from questline.actors.hub import HubActor, hub_address
from questline.http import sse, ticker
from tests.conftest import RUNTIMES
from tests.http.live import live_server


def stream_app(runtime) -> Starlette:
    async def stream(request: Request):
        return await sse.hub_stream(request, runtime, hub_address(request.path_params["key"]))

    return Starlette(routes=[Route("/stream/{key}", stream)])


async def read_frames(response: httpx.Response, count: int, seconds: float = 5.0) -> list[dict]:
    """Parse SSE frames (skipping comments) until ``count`` frames arrived."""
    frames: list[dict] = []
    current: dict = {}

    async def collect() -> None:
        async for line in response.aiter_lines():
            if line == "":
                # Per the SSE spec only a block with data dispatches an event (a bare retry: does not).
                if "data" in current:
                    frames.append(dict(current))
                    if len(frames) >= count:
                        return
                current.clear()
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            current[field] = value[1:] if value.startswith(" ") else value

    await asyncio.wait_for(collect(), seconds)
    return frames


def upd(i: int) -> dict:
    return {"event": "update", "data": {"i": i}}


@pytest.mark.parametrize("runtime_name", RUNTIMES)
async def test_frames_in_order_to_every_stream_of_the_hub_and_no_other(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name, actor_classes=[HubActor])
    async with live_server(stream_app(rt)) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with client.stream("GET", "/stream/u1") as s1, client.stream("GET", "/stream/u1") as s2, \
                client.stream("GET", "/stream/u2") as other:
            assert s1.headers["content-type"].startswith("text/event-stream")
            await rt.call(hub_address("u1"), "publish", [upd(1), upd(2)])
            await rt.call(hub_address("u1"), "publish", [upd(3)])
            for s in (s1, s2):
                frames = await read_frames(s, 3)
                assert [(f["id"], f["event"], json.loads(f["data"])) for f in frames] == [
                    ("1", "update", {"i": 1}), ("2", "update", {"i": 2}), ("3", "update", {"i": 3})
                ]
            with pytest.raises(TimeoutError):
                await read_frames(other, 1, seconds=0.5)


async def test_resume_replays_exactly_the_missed_frames_then_goes_live(make_runtime):
    rt = await make_runtime("local", actor_classes=[HubActor])
    await rt.call(hub_address("u"), "publish", [upd(i) for i in range(1, 6)])
    async with live_server(stream_app(rt)) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with client.stream("GET", "/stream/u", headers={"Last-Event-ID": "3"}) as s:
            await rt.call(hub_address("u"), "publish", [upd(6)])
            frames = await read_frames(s, 3)
            assert [f["id"] for f in frames] == ["4", "5", "6"]


async def test_gap_older_than_buffer_gets_an_explicit_reset(make_runtime):
    rt = await make_runtime("local", actor_classes=[HubActor])
    await rt.call(hub_address("u"), "publish", [upd(i) for i in range(hub.BUFFER_SIZE + 5)])
    async with live_server(stream_app(rt)) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with client.stream("GET", "/stream/u", headers={"Last-Event-ID": "2"}) as s:
            (frame,) = await read_frames(s, 1)
            assert frame["event"] == "reset"
            assert json.loads(frame["data"]) == {"seq": hub.BUFFER_SIZE + 5}


async def test_stalled_reader_is_cut_off_without_delaying_others(make_runtime, monkeypatch):
    monkeypatch.setattr(sse, "SEND_TIMEOUT", 1.0)
    rt = await make_runtime("local", actor_classes=[HubActor])
    async with live_server(stream_app(rt)) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        host, port = url.removeprefix("http://").split(":")
        # A raw client that sends the request and then never reads.
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /stream/busy HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        await writer.drain()
        async with client.stream("GET", "/stream/busy") as healthy:
            await asyncio.sleep(0.2)
            blob = "x" * 20_000
            loop = asyncio.get_running_loop()
            started = loop.time()
            for i in range(0, 600, 20):
                await rt.call(hub_address("busy"), "publish", [{"event": "update", "data": {"i": j, "b": blob}}
                                                               for j in range(i, i + 20)])
            stalled_before = sse.StreamStats.stalled_total
            frames = await read_frames(healthy, 600, seconds=20)
            assert len(frames) == 600
            assert loop.time() - started < 10
        # The stalled stream is dropped: its watch goes away.
        for _ in range(100):
            if rt.feeds.watch_count == 0:
                break
            await asyncio.sleep(0.1)
        assert rt.feeds.watch_count == 0
        assert sse.StreamStats.stalled_total == stalled_before + 1  # cut off by its blocked send
        writer.close()


async def test_connect_disconnect_churn_leaves_nothing_behind(make_runtime):
    rt = await make_runtime("local", actor_classes=[HubActor])
    async with live_server(stream_app(rt)) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        for i in range(1000):
            async with client.stream("GET", f"/stream/c{i % 20}") as s:
                async for line in s.aiter_lines():
                    if line.startswith(": connected"):
                        break
        def stream_tasks() -> list[asyncio.Task]:
            return [t for t in asyncio.all_tasks() if t.get_name() == "sse-disconnect"]

        for _ in range(100):
            if rt.feeds.watch_count == 0 and sse.StreamStats.open == 0 and not stream_tasks():
                break
            await asyncio.sleep(0.05)
        assert rt.feeds.watch_count == 0
        assert rt.feeds.topic_count == 0
        assert sse.StreamStats.open == 0
        assert stream_tasks() == []  # each stream's disconnect listener went with it
        assert not ticker.ticker().ticking  # and nothing is left on the clock
        assert sum(h["feed_topics"] for h in await rt.health()) == 0


async def read_comment(lines: AsyncIterator[str], prefix: str, seconds: float = 5.0) -> str:
    """The next line starting with ``prefix`` (``lines``: one response's ``aiter_lines()``)."""
    async def find() -> str:
        async for line in lines:
            if line.startswith(prefix):
                return line
        raise AssertionError(f"stream ended before a {prefix!r} line")

    return await asyncio.wait_for(find(), seconds)


async def collect(lines: AsyncIterator[str]) -> list[str]:
    return [line async for line in lines]


async def test_an_idle_stream_gets_heartbeat_comments(make_runtime, monkeypatch):
    monkeypatch.setattr(sse, "HEARTBEAT_SECONDS", 0.3)
    monkeypatch.setattr(ticker, "TICK_SECONDS", 0.05)
    rt = await make_runtime("local", actor_classes=[HubActor])
    async with live_server(stream_app(rt)) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with client.stream("GET", "/stream/idle") as s:
            loop = asyncio.get_running_loop()
            lines = s.aiter_lines()
            await read_comment(lines, ": connected")
            started = loop.time()
            assert await read_comment(lines, ": ping") == ": ping"
            assert loop.time() - started >= 0.25  # not before the stream was idle that long
            await read_comment(lines, ": ping")  # and again
            await rt.call(hub_address("idle"), "publish", [upd(1)])
            assert await read_comment(lines, "id:") == "id: 1"  # frames still flow


async def test_a_stream_ends_when_its_credential_expires_even_if_idle(make_runtime, monkeypatch):
    monkeypatch.setattr(ticker, "TICK_SECONDS", 0.05)
    now = [1_000_000]
    rt = await make_runtime("local", actor_classes=[HubActor], clock=lambda: now[0])

    async def stream(request: Request):
        return await sse.hub_stream(request, rt, hub_address("u"), expires_at_ms=now[0] + 60_000)

    app = Starlette(routes=[Route("/stream", stream)])
    async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with client.stream("GET", "/stream") as s:
            lines = s.aiter_lines()
            await read_comment(lines, ": connected")
            await asyncio.sleep(0.2)
            assert rt.feeds.watch_count == 1  # still open before the expiry
            now[0] += 60_000
            rest = await asyncio.wait_for(collect(lines), 2)  # the server ends the response
            assert not any(line.startswith("data:") for line in rest)
            await rt.call(hub_address("u"), "publish", [upd(1)])
        assert rt.feeds.watch_count == 0


async def test_head_sends_the_stream_headers_and_opens_nothing(make_runtime):
    rt = await make_runtime("local", actor_classes=[HubActor])
    opened = sse.StreamStats.opened_total
    async with live_server(stream_app(rt)) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        r = await client.head("/stream/u")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert rt.feeds.watch_count == 0 and sse.StreamStats.opened_total == opened


async def test_server_shutdown_ends_open_streams_cleanly(make_runtime, monkeypatch):
    monkeypatch.setattr(ticker, "TICK_SECONDS", 0.05)
    rt = await make_runtime("local", actor_classes=[HubActor])
    async with live_server(stream_app(rt)) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with client.stream("GET", "/stream/u") as s:
            lines = s.aiter_lines()
            await read_comment(lines, ": connected")
            monkeypatch.setattr(sse.AppStatus, "should_exit", True)  # what uvicorn's exit signal sets
            await asyncio.wait_for(collect(lines), 2)  # a complete response: the final chunk came
        for _ in range(40):
            if rt.feeds.watch_count == 0:
                break
            await asyncio.sleep(0.05)
        assert rt.feeds.watch_count == 0


def test_a_live_item_is_encoded_once_for_every_stream():
    encoded: list[int] = []

    def frame(item):
        encoded.append(item["seq"])
        return sse.default_frame(item)

    cache = sse.FrameCache(size=2)
    one, two, three = ({"seq": n, "event": "update", "data": {"n": n}} for n in (1, 2, 3))
    first = cache.encode(one, frame)
    assert cache.encode(one, frame) is first and encoded == [1]  # a second stream: no new encoding
    assert first == b"id: 1\r\nevent: update\r\ndata: {\"n\":1}\r\n\r\n"
    assert cache.encode(dict(one), frame) == first and encoded == [1, 1]  # an equal copy is not the item
    cache.encode(two, frame)
    cache.encode(three, frame)
    cache.encode(one, frame)  # evicted (size 2): encoded again
    assert encoded == [1, 1, 2, 3, 1]
