"""One app serving every surface, with credentials for each, for the cross-surface tests.

The app is what ``python -m questline serve`` builds (every surface's routes on one
runtime); ``create_app`` installs :class:`~questline.http.frontdoor.FrontDoorMiddleware`. The clock is shared
by the engine and QuestMaster's tokens and only moves when a test moves it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route, Router

from questline.actors.minigame import MINIGAME_ACTORS, install_minigame_catalog
from questline.actors.questkit import QUESTKIT_ACTORS
from questline.engine import Runtime
from questline.http import create_app
from questline.http.frontdoor import FrontDoorMiddleware
from questline.http.hatched import HATCHED_ACTORS, hatched_routes
from questline.http.minigame import minigame_routes
from questline.http.questkit import questkit_routes
from questline.http.questkit_stream import questkit_stream_routes
from questline.http.questmaster import (
    QUESTMASTER_ACTORS,
    QuestMasterSettings,
    mint_token,
    questmaster_routes,
)
from questline.questkit_catalog import install_catalogs
from questline.surfaces import actor_classes
from tests.http import minigame_support, questkit_support

QK_START = questkit_support.START
QM_SECRET = b"qm-all-surfaces-secret"
HATCHED_PASSWORD = "correct horse battery"


class Clock:
    """The engine's and QuestMaster's clock (Unix ms), moved only by the test."""

    def __init__(self, now: int = QK_START) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


@dataclass
class World:
    """The app, a client and a signed-in principal of every surface."""

    app: Starlette
    client: httpx.AsyncClient
    runtime: Runtime
    clock: Clock
    qm: QuestMasterSettings
    qk_token: str = ""
    mg_token: str = ""
    hatched_jwt: str = ""
    hatched_key: str = ""
    hatched_customer: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def qm_token(self, session: str = "qm-s1") -> str:
        return mint_token(self.qm, session, self.clock())

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def all_routes(qm: QuestMasterSettings) -> list[BaseRoute]:
    return [
        *questkit_routes(extra_routes=questkit_stream_routes()),
        *questmaster_routes(qm),
        *minigame_routes(),
        *hatched_routes(),
    ]


def route_table(routes: list[BaseRoute]) -> list[tuple[str, str]]:
    """Every ``(method, path template)`` the routes serve, Mounts and Hatched's envelope router expanded."""
    out: list[tuple[str, str]] = []

    def walk(prefix: str, items: list[BaseRoute]) -> None:
        for route in items:
            if isinstance(route, Mount):
                inner = route.app
                while not isinstance(inner, Router) and hasattr(inner, "app"):
                    inner = inner.app
                walk(prefix + route.path, list(getattr(inner, "routes", None) or route.routes))
            elif isinstance(route, Route):
                for method in sorted(route.methods or ()):
                    if method not in ("HEAD", "OPTIONS"):
                        out.append((method, prefix + route.path))

    walk("", routes)
    return out


_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def fill(path: str, value: str = "nope", **named: str) -> str:
    """A concrete path: each ``{param}`` becomes ``named[param]`` or ``value``."""
    return _PARAM.sub(lambda m: named.get(m.group(1), value), path)


def surface_of(path: str) -> str:
    if path.startswith("/api/v1/"):
        return "hatched"
    if path.startswith("/v1/"):
        return "questkit"
    if path.startswith(("/agents/", "/api/tasks", "/api/chat", "/api/questmaster")):
        return "questmaster"
    return "minigame"


def assert_error_format(surface: str, response: httpx.Response) -> None:
    """The response body is an error in ``surface``'s documented format."""
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"not JSON: {response.status_code} {response.headers} {response.text[:200]!r}") from None
    assert isinstance(body, dict), body
    if surface == "questkit":
        assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str), body
    elif surface == "questmaster":
        assert set(body) == {"error"} and isinstance(body["error"], str), body
    elif surface == "minigame":
        assert isinstance(body.get("error"), str) and set(body) <= {"error", "message"}, body
    else:
        assert set(body) == {"error"}, body
        error = body["error"]
        assert isinstance(error.get("code"), str) and isinstance(error.get("message"), str), body
        assert set(error) <= {"code", "message", "details", "requestId"}, body
        assert error["requestId"] == response.headers.get("x-request-id"), body


def credentials(world: World, method: str, path: str) -> dict[str, str]:
    """Valid credentials for a route, so hostile input reaches the surface's validation."""
    if path.startswith("/api/v1/auth/"):
        return world.bearer(world.hatched_jwt)
    if path.startswith("/api/v1/"):
        return world.bearer(world.hatched_key)
    if path.startswith("/v1/admin/"):
        return world.bearer(questkit_support.SECRET)
    if path.startswith("/v1/"):
        return world.bearer(world.qk_token)
    if path.startswith("/api/questmaster/tokens"):
        return world.bearer(QM_SECRET.decode())
    if surface_of(path) == "questmaster":
        return world.bearer(world.qm_token())
    return world.bearer(world.mg_token)


async def build_world(make_runtime: Callable[..., Any], tmp_path: Path) -> AsyncIterator[World]:
    clock = Clock()
    qm = QuestMasterSettings(secret=QM_SECRET, clock=clock, task_limit=10**6, chat_limit=10**6)
    routes = all_routes(qm)
    kinds = actor_classes_of([QUESTKIT_ACTORS, QUESTMASTER_ACTORS, MINIGAME_ACTORS, HATCHED_ACTORS])
    runtime = await make_runtime("local", actor_classes=kinds, clock=clock)
    await install_catalogs(runtime, questkit_support.catalog_file(tmp_path))
    await install_minigame_catalog(runtime, minigame_support.CATALOG)
    app = create_app(runtime, extra_routes=routes, manage_runtime=False)
    transport = httpx.ASGITransport(app=app)
    # Like the QuestMaster limits above: these tests hit every route at one fixed engine
    # instant, so Hatched's per-key window would never slide (0 = no rate limit).
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HATCHED_RATE_LIMIT_FREE", "0")
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as client:
            world = World(app, client, runtime, clock, qm)
            await sign_in(world)
            yield world


def reconfigure_front_door(app: Starlette, **options: Any) -> None:
    """Rebuild ``app``'s front door with other options (e.g. a smaller body limit)."""
    (front,) = [m for m in app.user_middleware if m.cls is FrontDoorMiddleware]
    app.user_middleware = [Middleware(FrontDoorMiddleware, **{**front.kwargs, **options})]
    app.middleware_stack = None  # built again on the next request


def actor_classes_of(groups: list[list[Any]]) -> list[Any]:
    from questline.actors.hub import HubActor
    from questline.surfaces import Surface

    return actor_classes([Surface("live", actors=[HubActor]), *(Surface(str(i), actors=list(g)) for i, g in
                                                                 enumerate(groups))])


async def sign_in(world: World) -> None:
    c = world.client
    r = await c.post("/v1/auth/token", json={"appId": questkit_support.APP, "appSecret": questkit_support.SECRET,
                                             "userId": "u1"})
    assert r.status_code == 200, r.text
    world.qk_token = r.json()["token"]
    r = await c.post("/api/auth/token", json={"tenant_id": "t1", "tenant_secret": "s1-secret",
                                              "character_id": "c1"})
    assert r.status_code == 200, r.text
    world.mg_token = r.json()["access_token"]
    r = await c.post("/api/v1/auth/register", json={"email": "owner@example.com", "password": HATCHED_PASSWORD,
                                                   "name": "Acme"})
    assert r.status_code == 201, r.text
    world.hatched_jwt = r.json()["access_token"]
    world.hatched_customer = r.json()["customer"]["customer_id"]
    r = await c.post("/api/v1/auth/api-keys", json={"name": "server"}, headers=world.bearer(world.hatched_jwt))
    assert r.status_code == 201, r.text
    world.hatched_key = r.json()["key"]


@pytest.fixture(name="world")
async def world_fixture(make_runtime: Callable[..., Any], tmp_path: Path) -> AsyncIterator[World]:
    async for world in build_world(make_runtime, tmp_path):
        yield world
