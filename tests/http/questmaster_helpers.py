"""Shared pieces of the QuestMaster HTTP tests: a settable clock, the app, token headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.applications import Starlette

from questline.engine import Runtime
from questline.http import create_app
from questline.http.questmaster import (
    QUESTMASTER_ACTORS,
    QuestMasterSettings,
    mint_token,
    questmaster_routes,
)
from questline.rules.questmaster import to_ms

SECRET = b"qm-test-secret"
AGENT = "/agents/quest-master-agent"
NY = "America/New_York"


class Clock:
    """The engine clock and the token clock of a test, moved by hand."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def set_local(self, text: str, zone: str = NY) -> None:
        self.now_ms = to_ms(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)))

    def advance(self, ms: int) -> None:
        self.now_ms += ms


def settings(clock: Clock, **overrides: object) -> QuestMasterSettings:
    return QuestMasterSettings(secret=SECRET, clock=clock, **overrides)  # type: ignore[arg-type]


def app_for(runtime: Runtime, qm_settings: QuestMasterSettings) -> Starlette:
    return create_app(runtime, extra_routes=questmaster_routes(qm_settings), manage_runtime=False)


def client_for(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def auth(clock: Clock, session_id: str, zone: str | None = NY) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {mint_token(settings(clock), session_id, clock())}"}
    if zone is not None:
        headers["x-timezone"] = zone
    return headers


def create_params(name: str = "Slay the dragon", xp: int = 50) -> dict[str, object]:
    return {
        "taskName": name,
        "taskDescription": "A dragon troubles the village.",
        "taskStartTime": "2026-01-15T14:00:00.000Z",
        "taskEndTime": "2026-01-15T18:00:00.000Z",
        "XP": xp,
    }


async def sse_data(response: httpx.Response, seconds: float = 10.0) -> list[str]:
    """The ``data`` of every SSE event in a finished (or finishing) response body."""
    events: list[str] = []
    current: list[str] = []

    async def collect() -> None:
        async for line in response.aiter_lines():
            if line == "":
                if current:
                    events.append("\n".join(current))
                    current.clear()
                continue
            if line.startswith("data:"):
                current.append(line[5:].removeprefix(" "))

    await asyncio.wait_for(collect(), seconds)
    if current:
        events.append("\n".join(current))
    return events


async def frames(
    response: httpx.Response, count: int, seconds: float = 10.0
) -> AsyncIterator[dict]:
    """Yield up to ``count`` SSE events (as field dicts) of a live stream."""
    current: dict[str, str] = {}
    seen = 0
    lines = response.aiter_lines()
    while seen < count:
        line = await asyncio.wait_for(lines.__anext__(), seconds)
        if line == "":
            if "data" in current:
                yield dict(current)
                seen += 1
            current.clear()
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        current[name] = value.removeprefix(" ")


# -- fixtures shared by the QuestMaster HTTP tests (import them by name) --------------
@pytest.fixture(name="clock")
def clock_fixture() -> Clock:
    c = Clock(0)
    c.set_local("2026-01-15T09:00")
    return c


@pytest.fixture(name="runtime")
async def runtime_fixture(make_runtime, clock: Clock):
    return await make_runtime("local", actor_classes=QUESTMASTER_ACTORS, clock=clock)


@pytest.fixture(name="client")
async def client_fixture(runtime, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app_for(runtime, settings(clock))) as c:
        yield c
