"""A stand-in QuestKit server for testing the harness's QuestKit scenarios before and
independently of questline's own: just the documented routes the scenarios use, strict
about what the contract requires (seeds 000/001, shared/reference/questkit.md).

    python -m uvicorn tests.benchmarks.fake_questkit:app --port 8098

Fault injection for testing the ``sse`` scenario's accounting (environment):
``FAKE_QUESTKIT_MISDELIVER=1`` sends every update to every stream (of every user);
``FAKE_QUESTKIT_DROP_EVERY=n`` drops every n-th frame.

Stricter than the real thing in one way: an event that progresses no mission (wrong
name, payload failing every filter) is refused with 400 ``no_mission_matched``, so
a harness that sends useless events is caught.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

APP_ID, APP_SECRET = "demo", "demo-secret"
MISSIONS: list[dict[str, Any]] = [
    {"id": "big-spender", "title": "Big spender", "description": "",
     "criteria": {"eventName": "purchase.completed", "count": 3, "filter": {"amount": {"gte": 50}}},
     "reward": {"kind": "currency", "currency": "coins", "amount": 100}},
    {"id": "boots", "title": "Boots", "description": "",
     "criteria": {"eventName": "purchase.completed", "count": 1,
                  "filter": {"product": {"eq": "boots"}, "qty": {"gt": 1}}},
     "reward": {"kind": "badge", "badgeId": "booted"}},
    {"id": "small", "title": "Small", "description": "",
     "criteria": {"eventName": "cart.updated", "count": 5, "window": "daily",
                  "filter": {"items": {"lt": 3}, "total": {"lte": 10}, "currency": {"in": ["EUR", "USD"]}}},
     "reward": {"kind": "item", "itemId": "bag", "quantity": 1}},
    {"id": "login", "title": "Login", "description": "",
     "criteria": {"eventName": "app.login", "count": 1, "window": "daily"},
     "reward": {"kind": "currency", "currency": "coins", "amount": 5}},
]
MISDELIVER = os.environ.get("FAKE_QUESTKIT_MISDELIVER") == "1"
DROP_EVERY = int(os.environ.get("FAKE_QUESTKIT_DROP_EVERY", "0"))
PROGRESS: dict[tuple[str, str], int] = {}  # (user, mission) -> count
SUBSCRIBERS: dict[str, set[asyncio.Queue[bytes]]] = {}
_SEQ = [0]
_OPS = {
    "eq": lambda v, x: v == x, "gte": lambda v, x: v >= x, "lte": lambda v, x: v <= x,
    "gt": lambda v, x: v > x, "lt": lambda v, x: v < x, "in": lambda v, x: v in x,
}


def error(status: int, code: str) -> JSONResponse:
    return JSONResponse({"error": code}, status_code=status)


def user_of(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth.removeprefix("Bearer tok-") if auth.startswith("Bearer tok-") else None


def matches(mission: dict[str, Any], event: dict[str, Any]) -> bool:
    criteria = mission["criteria"]
    if criteria["eventName"] != event["name"]:
        return False
    for key, clause in (criteria.get("filter") or {}).items():
        ((op, expected),) = clause.items()
        if key not in event["payload"]:
            return False
        try:
            if not _OPS[op](event["payload"][key], expected):
                return False
        except TypeError:
            return False
    return True


async def token(request: Request) -> Response:
    body = msgspec.json.decode(await request.body())
    if body.get("appId") != APP_ID or body.get("appSecret") != APP_SECRET:
        return error(401, "invalid_credentials")
    return JSONResponse({"token": f"tok-{body['userId']}", "expiresAt": int(time.time() * 1000) + 3_600_000})


async def events(request: Request) -> Response:
    user = user_of(request)
    if user is None:
        return error(401, "unauthorized")
    try:
        event = msgspec.json.decode(await request.body())
    except msgspec.DecodeError:
        return error(400, "invalid_event")
    if not isinstance(event, dict) or not isinstance(event.get("name"), str) or not isinstance(
        event.get("payload"), dict
    ) or not isinstance(event.get("timestamp"), int):
        return error(400, "invalid_event")
    if event.get("userId") != user:
        return error(403, "user_mismatch")
    if not request.headers.get("idempotency-key"):
        return error(400, "missing_idempotency_key")  # the SDK always sends one
    if abs(event["timestamp"] - time.time() * 1000) > 60_000:
        return error(400, "stale_timestamp")
    updated = [m["id"] for m in MISSIONS if matches(m, event)]
    if not updated:
        return error(400, "no_mission_matched")
    for mission_id in updated:
        count = PROGRESS[(user, mission_id)] = PROGRESS.get((user, mission_id), 0) + 1
        _SEQ[0] += 1
        update = {"type": "mission.progress", "data": {
            "userId": user, "missionId": mission_id, "status": "active", "progress": 0.0,
            "currentCount": count, "targetCount": 10**9, "updatedAt": int(time.time() * 1000)}}
        frame = f"id: {_SEQ[0]}\r\nevent: update\r\ndata: {msgspec.json.encode(update).decode()}\r\n\r\n"
        targets = [q for qs in SUBSCRIBERS.values() for q in qs] if MISDELIVER else SUBSCRIBERS.get(user, ())
        for queue in targets:
            _SEQ[0] += 1
            if DROP_EVERY and _SEQ[0] % DROP_EVERY == 0:
                continue
            queue.put_nowait(frame.encode())
    return JSONResponse({"accepted": True, "eventId": "evt_fake", "missionsUpdated": updated})


async def missions(request: Request) -> Response:
    if user_of(request) is None:
        return error(401, "unauthorized")
    return JSONResponse({"missions": MISSIONS, "progress": {}})


async def balance(request: Request) -> Response:
    user = user_of(request)
    if user is None:
        return error(401, "unauthorized")
    return JSONResponse({"balances": [{"userId": user, "currency": "coins", "amount": 0, "updatedAt": 0}]})


async def updates(request: Request) -> Response:
    user = user_of(request)
    if user is None:
        return error(401, "unauthorized")
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    SUBSCRIBERS.setdefault(user, set()).add(queue)  # subscribed before the headers go out

    async def frames() -> AsyncIterator[bytes]:
        try:
            yield b": connected\r\n\r\n"
            while True:
                yield await queue.get()
        finally:
            SUBSCRIBERS[user].discard(queue)

    return StreamingResponse(frames(), media_type="text/event-stream")


async def admin_catalog(request: Request) -> Response:
    if request.headers.get("authorization") != f"Bearer {APP_SECRET}":
        return error(401, "unauthorized")
    if request.method == "PUT":
        body = msgspec.json.decode(await request.body())
        MISSIONS[:] = body["missions"]
    return JSONResponse({"appId": APP_ID, "missions": MISSIONS, "campaigns": []})


async def readyz(request: Request) -> Response:
    return JSONResponse({"status": "ready", "runtime": "fake", "shards": [{}, {}]})


app = Starlette(routes=[
    Route("/readyz", readyz),
    Route("/v1/auth/token", token, methods=["POST"]),
    Route("/v1/events", events, methods=["POST"]),
    Route("/v1/missions", missions),
    Route("/v1/balance", balance),
    Route("/v1/sse/updates", updates),
    Route("/v1/admin/catalog", admin_catalog, methods=["GET", "PUT"]),
])
