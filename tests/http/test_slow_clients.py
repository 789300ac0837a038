"""Slow clients (issue 11): slowloris-style headers and bodies cannot starve the server.

A real uvicorn server on 127.0.0.1 (every surface, the body-limit middleware with
a short body deadline). While 200 connections dribble header or body bytes, normal
requests keep being answered promptly; a body that never completes gets the
surface's 408 once its deadline passes. Loops are bounded; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import httpx

from tests.http.all_surfaces import World, reconfigure_front_door, world_fixture  # noqa: F401
from tests.http.live import live_server

SLOW = 200


async def _open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port)


async def test_slow_headers_and_bodies_do_not_starve_normal_requests(world: World) -> None:
    reconfigure_front_door(world.app, body_timeout=1.0)
    async with live_server(world.app) as base:
        url = urlsplit(base)
        host, port = url.hostname or "127.0.0.1", url.port or 80
        conns = [await _open(host, port) for _ in range(SLOW)]
        try:
            for i, (_, w) in enumerate(conns):  # half stall in the headers, half in the body
                if i % 2:
                    w.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                else:
                    w.write(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                            b"Content-Length: 100000\r\n\r\n{")
            async with httpx.AsyncClient(base_url=base, timeout=5) as client:
                worst = 0.0
                for _ in range(4):  # dribble a byte per connection, then check normal service
                    for _, w in conns:
                        w.write(b"a")
                    start = time.perf_counter()
                    r = await client.get("/healthz")
                    assert r.status_code == 200
                    r = await client.get("/v1/missions", headers=world.bearer(world.qk_token))
                    assert r.status_code == 200, r.text
                    worst = max(worst, time.perf_counter() - start)
                    await asyncio.sleep(0.3)
                assert worst < 2.0, worst
            # The stalled bodies hit their deadline: 408 in QuestKit's format, connection closed.
            reader = conns[0][0]
            head = await asyncio.wait_for(reader.read(4096), 5)
            assert head.startswith(b"HTTP/1.1 408"), head
            assert b'"error": "request_timeout"' in head or b'"error":"request_timeout"' in head, head
        finally:
            for _, w in conns:
                w.close()
