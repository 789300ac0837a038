"""Front-door admission control: a bounded number of requests in flight, a quick 503 past it."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from questline.http import admission
from questline.http.admission import AdmissionGate
from questline.http.frontdoor import FrontDoorMiddleware


def app_with(gate: asyncio.Event) -> Starlette:
    async def slow(request: Request) -> JSONResponse:
        await gate.wait()
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/v1/events", slow, methods=["POST"]), Route("/v1/sse/updates", slow),
                            Route("/healthz", slow)])
    app.add_middleware(FrontDoorMiddleware, max_inflight=1, max_wait=0.05)
    return app


async def test_past_the_bound_requests_get_a_quick_503_and_streams_and_probes_pass() -> None:
    gate = asyncio.Event()
    transport = httpx.ASGITransport(app=app_with(gate))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        first = asyncio.create_task(client.post("/v1/events"))
        await asyncio.sleep(0.05)  # holds the only slot
        refused = await client.post("/v1/events")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"] == "overloaded"  # QuestKit's format for /v1
        # Stream opens and probes are not counted: they wait for the gate, not for a slot.
        stream = asyncio.create_task(client.get("/v1/sse/updates", headers={"Accept": "text/event-stream"}))
        probe = asyncio.create_task(client.get("/healthz"))
        await asyncio.sleep(0.1)
        assert not stream.done() and not probe.done()
        gate.set()
        assert (await first).status_code == 200
        assert (await stream).status_code == 200 and (await probe).status_code == 200
        assert (await client.post("/v1/events")).status_code == 200  # the slot came back


async def waiting(gate: AdmissionGate, n: int) -> list[asyncio.Task[bool]]:
    """``n`` requests queued for a slot, in arrival order."""
    tasks = []
    for _ in range(n):
        tasks.append(asyncio.create_task(gate.acquire()))
        await asyncio.sleep(0)  # queued in this order
    return tasks


async def test_a_short_burst_is_served_first_come_first_served() -> None:
    gate = AdmissionGate(max_inflight=1, max_wait=5, max_queue=4)
    assert await gate.acquire()
    first, second = await waiting(gate, 2)
    gate.release()  # the queue is young: not an overload
    assert await asyncio.wait_for(first, 1) and not second.done()
    gate.release()
    assert await asyncio.wait_for(second, 1)
    gate.release()
    assert gate.inflight == 0


async def test_a_standing_queue_serves_the_newest_waiter_and_runs_fewer_at_once(monkeypatch) -> None:
    monkeypatch.setattr(admission, "LIFO_AFTER_S", 0.05)
    gate = AdmissionGate(max_inflight=8, max_wait=5)
    assert gate.overload_inflight == 2
    for _ in range(8):
        assert await gate.acquire()
    old = await waiting(gate, 2)
    await asyncio.sleep(0.08)  # the oldest waiter is now older than LIFO_AFTER_S: overload
    new = await waiting(gate, 2)
    for _ in range(6):  # 8 running -> 2: slots are given up, not passed on
        gate.release()
    await asyncio.sleep(0)
    assert gate.inflight == 2 and not any(t.done() for t in old + new)
    gate.release()  # at the reduced bound: the newest waiter gets the slot
    assert await asyncio.wait_for(new[1], 1) and not new[0].done() and not any(t.done() for t in old)
    gate.release()
    assert await asyncio.wait_for(new[0], 1) and not any(t.done() for t in old)
    for task in old:
        task.cancel()
    await asyncio.gather(*old, return_exceptions=True)
    assert not gate.waiters


async def test_a_waiter_past_max_wait_is_refused() -> None:
    gate = AdmissionGate(max_inflight=1, max_wait=0.05)
    assert await gate.acquire()
    (late,) = await waiting(gate, 1)
    assert await asyncio.wait_for(late, 1) is False
    assert gate.refused == 1 and not gate.waiters
