"""Catalog installation: the demo catalog end to end, re-installs, secrets, pruning."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

import pytest

from questline.actors.minigame import (
    DEMO_CATALOG,
    MINIGAME_ACTORS,
    SESSION_RETAIN_MS,
    install_demo_minigame,
    install_minigame_catalog,
)
from questline.rules import minigame as rules
from questline.rules.minigame_catalog import CatalogError
from tests.http.minigame_support import CATALOG, Clock, Game, game_fixture, open_game  # noqa: F401

ROUTE_PATHS = {
    "crafting": "/api/crafting/start",
    "gathering": "/api/gathering/start",
    "trade": "/api/trade/offer",
    "heal": "/api/heal/start",
    "scouting": "/api/scouting/start",
    "animals": "/api/animals/interact",
}


def route_for(activity_type: str, ref: str) -> tuple[str, dict[str, Any]]:
    for name, types in rules.ROUTE_ACTIVITY_TYPES.items():
        if activity_type in types:
            if name == "board":
                return f"/api/board/{ref}/accept", {}
            return ROUTE_PATHS[name], {"activity_ref_id": ref, "activity_type": activity_type}
    raise AssertionError(activity_type)


async def test_demo_tenant_is_not_installed_outside_demo_mode(
    make_runtime: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundled tenant's secret has a public default: only --demo may install it."""
    monkeypatch.delenv("QUESTLINE_DEMO", raising=False)
    monkeypatch.delenv("QUESTLINE_MINIGAME_CATALOG", raising=False)
    clock = Clock()
    runtime = await make_runtime("local", actor_classes=MINIGAME_ACTORS, clock=clock)
    await install_demo_minigame(runtime)
    async for game in open_game(runtime, clock):
        r = await game.client.post(
            "/api/auth/token", json={"tenant_id": "demo", "tenant_secret": "demo-secret", "character_id": "hero"}
        )
        assert r.status_code == 401


async def test_every_open_demo_activity_plays_and_settles(
    make_runtime: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUESTLINE_DEMO_APP_SECRET", "from-the-env")
    monkeypatch.setenv("QUESTLINE_DEMO", "1")
    monkeypatch.delenv("QUESTLINE_MINIGAME_CATALOG", raising=False)
    clock = Clock()
    runtime = await make_runtime("local", actor_classes=MINIGAME_ACTORS, clock=clock)
    await install_demo_minigame(runtime)
    async for game in open_game(runtime, clock):
        refused = await game.client.post(
            "/api/auth/token", json={"tenant_id": "demo", "tenant_secret": "demo-secret", "character_id": "hero"}
        )
        assert refused.status_code == 401  # the environment's secret replaced the default
        r = await game.client.post(
            "/api/auth/token", json={"tenant_id": "demo", "tenant_secret": "from-the-env", "character_id": "hero"}
        )
        headers = {"Authorization": "Bearer " + r.json()["access_token"]}
        listed = (await game.client.get("/api/activities", headers=headers)).json()["activities"]
        kinds = {a["kind"] for a in listed}
        assert kinds == {"board_order", "expedition", "recipe", "gathering_node", "trade_offer", "heal",
                         "scouting", "animal"}
        assert {a["status"] for a in listed} == {"open", "expired", "departed"}
        covered: set[str] = set()
        for n, activity in enumerate(a for a in listed if a["status"] == "open"):
            if n and n % 20 == 0:
                clock.advance(60_000)  # the session rate limit
            s = await game.client.post(
                "/api/minigame/session",
                json={"activity_type": activity["activity_type"], "activity_ref_id": activity["id"]},
                headers=headers,
            )
            assert s.status_code == 200, (activity["id"], s.text)
            session = s.json()
            assert session["type"] == activity["minigame_type"]
            body = game.submission(session, 0.5)
            result = await game.client.post("/api/minigame/result", json=body, headers=headers)
            assert result.status_code == 200, result.text
            path, payload = route_for(activity["activity_type"], activity["id"])
            settled = await game.client.post(
                path, json=payload, headers=headers | {"Minigame-Result": result.json()["result_token"]}
            )
            assert settled.status_code == 200, (activity["id"], settled.text)
            rewards = settled.json()["rewards"]
            assert any(rewards[section] for section in ("xp", "currency", "items")), activity["id"]
            covered.add(activity["activity_type"])
        every_type = set().union(*rules.ROUTE_ACTIVITY_TYPES.values())
        assert covered == every_type  # the demo has an activity of every activity type
        profile = (await game.client.get("/api/characters/me", headers=headers)).json()
        assert profile["currency"]["silver"] > 0 and profile["items"]


async def test_reinstall_keeps_availability_and_tokens(game: Game) -> None:
    headers = await game.login()
    token = await game.play("b1")
    pending = await game.play("r1", "craft_smithing")
    assert (await game.settle("b1", token)).status_code == 200
    await install_minigame_catalog(game.runtime, CATALOG)
    # the board order stays accepted, tokens signed before the re-install still verify
    assert (await game.session("b1")).status_code == 409
    assert (await game.client.get("/api/characters/me", headers=headers)).status_code == 200
    assert (await game.settle("r1", pending)).status_code == 200


async def test_reinstall_with_a_new_secret_and_fewer_activities(game: Game) -> None:
    await game.login()  # the process has seen the tenant before the rotation
    changed = copy.deepcopy(CATALOG)
    changed["tenants"][0]["secret"] = "rotated"
    changed["tenants"][0]["activities"] = [a for a in changed["tenants"][0]["activities"] if a["id"] != "r1"]
    await install_minigame_catalog(game.runtime, changed)
    r = await game.client.post(
        "/api/auth/token", json={"tenant_id": "t1", "tenant_secret": "rotated", "character_id": "c1"}
    )
    assert r.status_code == 200
    old = await game.client.post(
        "/api/auth/token", json={"tenant_id": "t1", "tenant_secret": "s1-secret", "character_id": "c1"}
    )
    assert old.status_code == 401 and old.json() == {"error": "unauthorized"}
    headers = {"Authorization": "Bearer " + r.json()["access_token"]}
    r = await game.client.post(
        "/api/minigame/session", json={"activity_type": "craft_smithing", "activity_ref_id": "r1"}, headers=headers
    )
    assert r.status_code == 404 and r.json() == {"error": "activity_not_found"}


async def test_a_bad_catalog_installs_nothing(make_runtime: Callable[..., Any]) -> None:
    runtime = await make_runtime("local", actor_classes=MINIGAME_ACTORS)
    broken = copy.deepcopy(CATALOG)
    broken["tenants"][1]["activities"][0]["activity_type"] = "craft_cooking"  # a board order cannot be that
    with pytest.raises(CatalogError):
        await install_minigame_catalog(runtime, broken)
    from questline.actors.minigame import tenant_address

    assert await runtime.call(tenant_address("t1"), "credentials") is None


async def test_demo_catalog_file_parses() -> None:
    assert DEMO_CATALOG.exists()


async def test_expired_sessions_are_pruned_then_not_found(game: Game) -> None:
    session = await game.start("b1")
    game.clock.advance(300_000 + SESSION_RETAIN_MS + 1)
    game._tokens.clear()  # the access JWT expired meanwhile
    body = game.submission(session, 0.5)
    for _ in range(60):  # the alarm loop wakes at least once a second
        r = await game.submit(body)
        if r.json() == {"error": "session_not_found"}:
            break
        assert r.json() == {"error": "session_expired"}
        await asyncio.sleep(0.1)
    assert r.status_code == 404 and r.json() == {"error": "session_not_found"}
