"""Shared set-up for the Minigame HTTP tests: a small catalog, a settable clock, a client.

The tests drive the surface over HTTP only; the one exception is
:meth:`Game.sign_session`, which forges a correctly signed token for a jti that
was never issued (the only way to reach ``session_not_found`` before pruning).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from questline.actors.minigame import MINIGAME_ACTORS, install_minigame_catalog, tenant_address
from questline.engine import Runtime
from questline.http import create_app
from questline.http.minigame import minigame_routes
from questline.rules import minigame as rules

START_MS = 1_716_000_000_000

CATALOG: dict[str, Any] = {
    "tenants": [
        {
            "tenant_id": "t1",
            "secret": "s1-secret",
            "activities": [
                {"id": "b1", "kind": "board_order", "activity_type": "expedition_accept", "name": "Escort",
                 "rewards": {"xp": {"leadership": 40}, "currency": {"silver": 60}, "items": {"salt": 2}}},
                {"id": "b2", "kind": "board_order", "activity_type": "expedition_accept", "name": "Wolves",
                 "category": "combat", "rewards": {"xp": {"leadership": 100}, "currency": {"silver": 10}}},
                {"id": "b-old", "kind": "board_order", "activity_type": "expedition_accept", "name": "Old",
                 "expires_at": 1_700_000_000},
                {"id": "b-soon", "kind": "board_order", "activity_type": "expedition_accept", "name": "Soon",
                 "expires_at": START_MS // 1000 + 60},
                {"id": "e1", "kind": "expedition", "activity_type": "expedition_accept", "name": "Patrol",
                 "category": "exploration", "rewards": {"xp": {"leadership": 20}}},
                {"id": "e-gone", "kind": "expedition", "activity_type": "expedition_accept", "name": "Convoy",
                 "departs_at": 1_700_000_000},
                {"id": "r1", "kind": "recipe", "activity_type": "craft_smithing", "name": "Sword",
                 "rewards": {"xp": {"smithing": 30}, "items": {"iron_sword": 1}}},
                {"id": "g1", "kind": "gathering_node", "activity_type": "gather_mining", "name": "Vein",
                 "rewards": {"xp": {"mining": 200}, "items": {"iron_ore": 3}}},
                {"id": "o1", "kind": "trade_offer", "activity_type": "trade", "name": "Spice",
                 "rewards": {"xp": {"trading": 20}, "currency": {"silver": 120}}},
                {"id": "h1", "kind": "heal", "activity_type": "heal", "name": "Dressing",
                 "rewards": {"xp": {"healing": 20}, "currency": {"silver": 10}}},
                {"id": "s1", "kind": "scouting", "activity_type": "scout", "name": "Pass",
                 "rewards": {"xp": {"scouting": 25}, "items": {"report": 1}}},
                {"id": "a1", "kind": "animal", "activity_type": "tame", "name": "Colt",
                 "rewards": {"xp": {"taming": 50}}},
            ],
        },
        {
            "tenant_id": "t2",
            "secret": "s2-secret",
            "activities": [
                {"id": "b1", "kind": "board_order", "activity_type": "expedition_accept", "name": "Other",
                 "rewards": {"xp": {"leadership": 5}}},
            ],
        },
    ]
}

# route -> (path, body) for an activity of the catalog above
ROUTES: dict[str, tuple[str, str, str | None]] = {
    "b1": ("expedition_accept", "/api/board/b1/accept", None),
    "r1": ("craft_smithing", "/api/crafting/start", "r1"),
    "g1": ("gather_mining", "/api/gathering/start", "g1"),
    "o1": ("trade", "/api/trade/offer", "o1"),
    "h1": ("heal", "/api/heal/start", "h1"),
    "s1": ("scout", "/api/scouting/start", "s1"),
    "a1": ("tame", "/api/animals/interact", "a1"),
}


@dataclass
class Clock:
    """The engine clock, settable by tests (Unix ms)."""

    now: int = START_MS

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def decode_token_payload(token: str) -> dict[str, Any]:
    body = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


@dataclass
class Game:
    client: httpx.AsyncClient
    runtime: Runtime
    clock: Clock
    _tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    async def login(self, character: str = "c1", tenant: str = "t1") -> dict[str, str]:
        """Authorization headers for a character (minted once per test, scrypt is slow)."""
        key = (tenant, character)
        if key not in self._tokens:
            secret = {"t1": "s1-secret", "t2": "s2-secret"}[tenant]
            r = await self.client.post(
                "/api/auth/token",
                json={"tenant_id": tenant, "tenant_secret": secret, "character_id": character},
            )
            assert r.status_code == 200, r.text
            self._tokens[key] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self._tokens[key]}"}

    async def session(
        self, ref: str = "b1", activity_type: str = "expedition_accept", character: str = "c1", tenant: str = "t1"
    ) -> httpx.Response:
        return await self.client.post(
            "/api/minigame/session",
            json={"activity_type": activity_type, "activity_ref_id": ref},
            headers=await self.login(character, tenant),
        )

    async def start(self, ref: str = "b1", activity_type: str = "expedition_accept", character: str = "c1",
                    tenant: str = "t1") -> dict[str, Any]:
        r = await self.session(ref, activity_type, character, tenant)
        assert r.status_code == 200, r.text
        return r.json()

    def submission(self, session: dict[str, Any], score: float = 0.82, duration_ms: int | None = None,
                   event_hash: str | None = None) -> dict[str, Any]:
        duration = session["min_duration_ms"] + 1000 if duration_ms is None else duration_ms
        return {
            "token": session["token"],
            "score": score,
            "duration_ms": duration,
            "event_hash": event_hash if event_hash is not None else rules.event_hash(session["seed"], duration, score),
        }

    async def submit(self, body: dict[str, Any], character: str = "c1", tenant: str = "t1") -> httpx.Response:
        return await self.client.post("/api/minigame/result", json=body, headers=await self.login(character, tenant))

    async def play(self, ref: str = "b1", activity_type: str = "expedition_accept", score: float = 0.82,
                   character: str = "c1", tenant: str = "t1") -> str:
        """Session + valid result; returns the result token."""
        session = await self.start(ref, activity_type, character, tenant)
        r = await self.submit(self.submission(session, score), character, tenant)
        assert r.status_code == 200, r.text
        return r.json()["result_token"]

    async def settle(self, ref: str, result_token: str | None, character: str = "c1", tenant: str = "t1",
                     path: str | None = None, body: dict[str, Any] | None = None) -> httpx.Response:
        _, default_path, body_ref = ROUTES[ref] if ref in ROUTES else ("", f"/api/board/{ref}/accept", None)
        headers = await self.login(character, tenant)
        if result_token is not None:
            headers["Minigame-Result"] = result_token
        if body is None:
            body = {"activity_ref_id": body_ref} if body_ref is not None else {}
        return await self.client.post(path or default_path, json=body, headers=headers)

    async def profile(self, character: str = "c1", tenant: str = "t1") -> dict[str, Any]:
        r = await self.client.get("/api/characters/me", headers=await self.login(character, tenant))
        assert r.status_code == 200, r.text
        return r.json()

    async def history(self, character: str = "c1", tenant: str = "t1", **params: Any) -> httpx.Response:
        return await self.client.get(
            "/api/minigame/history", params=params, headers=await self.login(character, tenant)
        )

    async def sign_session(self, payload: dict[str, Any], tenant: str = "t1") -> str:
        """A correctly signed session token with arbitrary content (white-box helper)."""
        creds = await self.runtime.call(tenant_address(tenant), "credentials")
        return rules.sign_token(payload, rules.session_key(creds["signing_key"]))


async def open_game(runtime: Runtime, clock: Clock) -> AsyncIterator[Game]:
    await install_minigame_catalog(runtime, CATALOG)
    app = create_app(runtime, extra_routes=minigame_routes(), manage_runtime=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as client:
        yield Game(client, runtime, clock)


@pytest.fixture(name="game")
async def game_fixture(make_runtime: Callable[..., Any]) -> AsyncIterator[Game]:
    """A local runtime with an injected clock, the test catalog installed, and a client."""
    clock = Clock()
    runtime = await make_runtime("local", actor_classes=MINIGAME_ACTORS, clock=clock)
    async for g in open_game(runtime, clock):
        yield g


async def gather_responses(coros: list[Any]) -> list[httpx.Response]:
    return list(await asyncio.gather(*coros))
