"""Shared setup of the QuestKit HTTP tests: a test catalog, a movable clock and a client.

Every test talks to the real app (``create_app`` + ``questkit_routes``) over
``httpx.ASGITransport``; the runtime comes from ``make_runtime`` and the catalog
is installed through ``install_catalogs``, as the server does at startup.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from questline.actors.questkit import QUESTKIT_ACTORS
from questline.actors.questkit_common import hub_of, user_address
from questline.engine import Runtime
from questline.http.app import create_app
from questline.http.questkit import questkit_routes
from questline.questkit_catalog import install_catalogs

DAY = 86_400_000
# Wednesday 2026-03-04 12:00:00 UTC: inside the "spring" campaign, mid-week, mid-day.
START = 1_772_625_600_000
Y2024 = 1_704_067_200_000
Y2025 = 1_735_689_600_000
Y2030 = 1_893_456_000_000
Y2031 = 1_924_992_000_000
Y2032 = 1_956_528_000_000

APP = "acme"
SECRET = "acme-secret"
WEBHOOK_SECRET = "whsec_test_secret"
OTHER_APP = "beta"
OTHER_SECRET = "beta-secret"


def coins(amount: int) -> dict[str, Any]:
    return {"kind": "currency", "currency": "coins", "amount": amount}


def mission(mid: str, event: str, count: int = 1, *, window: str | None = None,
            filter: dict | None = None, reward: dict | None = None, **extra: Any) -> dict[str, Any]:
    criteria: dict[str, Any] = {"eventName": event, "count": count}
    if window:
        criteria["window"] = window
    if filter:
        criteria["filter"] = filter
    return {"id": mid, "title": mid.replace("-", " ").title(), "description": f"Mission {mid}",
            "criteria": criteria, "reward": reward or coins(1), **extra}


def acme_missions() -> list[dict[str, Any]]:
    return [
        mission("open-daily", "app.opened", 2, window="daily", reward=coins(10)),
        mission("open-weekly", "app.opened", 3, window="weekly",
                reward={"kind": "currency", "currency": "gems", "amount": 2}),
        mission("open-once", "app.opened", 1, reward={"kind": "badge", "badgeId": "welcome"}),
        mission("f-eq", "buy", filter={"product": {"eq": "boots"}}),
        mission("f-gte", "buy", filter={"amount": {"gte": 50}}),
        mission("f-lte", "buy", filter={"amount": {"lte": 5}}),
        mission("f-gt", "buy", filter={"amount": {"gt": 100}},
                reward={"kind": "item", "itemId": "trophy", "quantity": 2}),
        mission("f-lt", "buy", filter={"amount": {"lt": 1}}),
        mission("f-in", "buy", filter={"tier": {"in": ["gold", "silver"]}}),
        mission("f-and", "buy", filter={"product": {"eq": "boots"}, "amount": {"gte": 50}}),
        mission("expiring", "read", 1, expiresAt=START + DAY, reward=coins(3)),
        mission("spring-1", "shop", 2, reward=coins(50), campaignId="spring"),
        mission("future-1", "shop", 1, campaignId="future"),
        mission("past-1", "shop", 1, campaignId="past"),
    ]


def acme_campaigns() -> list[dict[str, Any]]:
    return [
        {"id": "spring", "title": "Spring", "description": "Running", "startAt": Y2025,
         "endAt": Y2030, "missionIds": ["spring-1"], "theme": {"primaryColor": "#00ff00"}},
        {"id": "future", "title": "Future", "description": "Not started", "startAt": Y2031,
         "endAt": Y2032, "missionIds": ["future-1"]},
        {"id": "past", "title": "Past", "description": "Ended", "startAt": Y2024,
         "endAt": Y2025, "missionIds": ["past-1"]},
    ]


def catalog_file(tmp_path: Path, acme_missions_override: list[dict] | None = None,
                 acme_secret: str = SECRET) -> Path:
    doc = {"apps": [
        {"appId": APP, "appSecret": acme_secret, "webhookSecret": WEBHOOK_SECRET,
         "missions": acme_missions() if acme_missions_override is None else acme_missions_override,
         "campaigns": acme_campaigns() if acme_missions_override is None else []},
        {"appId": OTHER_APP, "appSecret": OTHER_SECRET,
         "missions": [mission("open-once", "app.opened", 1, reward={"kind": "badge", "badgeId": "welcome"})]},
    ]}
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(doc))
    return path


class FakeClock:
    """The engine clock of a test: starts at START, moves only when told to."""

    def __init__(self, now: int = START) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms

    def set(self, ms: int) -> None:
        self.now = ms


class QK:
    """One test's server: the runtime, its HTTP client and helpers for the common calls."""

    def __init__(self, runtime: Runtime, client: httpx.AsyncClient, clock: FakeClock | None) -> None:
        self.runtime = runtime
        self.http = client
        self.clock = clock

    def now(self) -> int:
        return self.runtime.config.clock()

    async def token(self, user: str = "u1", app: str = APP, secret: str | None = None) -> str:
        secret = secret if secret is not None else (SECRET if app == APP else OTHER_SECRET)
        r = await self.http.post("/v1/auth/token", json={"appId": app, "appSecret": secret, "userId": user})
        assert r.status_code == 200, r.text
        return r.json()["token"]

    async def event(self, token: str, name: str, payload: dict | None = None, *, user: str = "u1",
                    ts: int | None = None, key: str | None = None, body_key: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"userId": user, "name": name, "payload": payload or {},
                                "timestamp": self.now() if ts is None else ts}
        if body_key is not None:
            body["idempotencyKey"] = body_key
        headers = {"Authorization": f"Bearer {token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.http.post("/v1/events", json=body, headers=headers)

    async def get(self, token: str, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})

    async def claim(self, token: str, mission_id: str, key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.http.post(f"/v1/missions/{mission_id}/claim", headers=headers)

    async def progress(self, token: str, mission_id: str) -> dict[str, Any] | None:
        r = await self.get(token, f"/v1/missions/{mission_id}")
        assert r.status_code == 200, r.text
        return r.json()["progress"]

    async def hub_updates(self, user: str = "u1", *, expect: int | None = None, app: str = APP,
                          settle: float = 0.2, wait_s: float = 10.0) -> list[dict[str, Any]]:
        """The SDKUpdates the user's hub holds, in order (waits for ``expect`` of them, then settles)."""
        address = hub_of(app, user)
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            items = (await self.runtime.call(address, "replay", 0))["items"]
            if expect is None or len(items) >= expect or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(settle)  # anything extra (a wrong duplicate) has time to land
        items = (await self.runtime.call(address, "replay", 0))["items"]
        assert all(item["event"] == "update" for item in items)
        return [item["data"] for item in items]

    async def user_call(self, method: str, *args: Any, user: str = "u1", app: str = APP) -> Any:
        return await self.runtime.call(user_address(app, user), method, *args)


def sign(body: bytes, t: int, secret: str = WEBHOOK_SECRET) -> str:
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


MakeQK = Callable[..., Awaitable[QK]]


@pytest.fixture(name="make_qk")
async def make_qk_fixture(make_runtime, tmp_path: Path) -> AsyncIterator[MakeQK]:
    """Factory: ``await make_qk("local")`` -> a QK with the test catalog installed.

    The local runtime gets a FakeClock (shared by actors and the front door);
    Ray shards run in other processes, so Ray tests use the wall clock.
    """
    clients: list[httpx.AsyncClient] = []

    async def factory(runtime_name: str = "local", *, routes=None, fake_clock: bool | None = None) -> QK:
        use_fake = runtime_name == "local" if fake_clock is None else fake_clock
        clock = FakeClock() if use_fake else None
        overrides: dict[str, Any] = {"actor_classes": QUESTKIT_ACTORS}
        if clock is not None:
            overrides["clock"] = clock
        runtime = await make_runtime(runtime_name, **overrides)
        await install_catalogs(runtime, catalog_file(tmp_path))
        app = create_app(runtime, extra_routes=routes if routes is not None else questkit_routes(),
                         manage_runtime=False)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://qk.test",
                                   timeout=30)
        clients.append(client)
        return QK(runtime, client, clock)

    yield factory
    for client in clients:
        await client.aclose()


@pytest.fixture(name="qk")
async def qk_fixture(make_qk: MakeQK) -> QK:
    """LocalRuntime, FakeClock at START, test catalog installed."""
    return await make_qk("local")
