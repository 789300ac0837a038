"""Front-door admission control: a bounded number of requests in flight, a quick 503 past it."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

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
