"""Races on both runtimes: one token submitted or settled 20 times at once wins exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from questline.actors.minigame import MINIGAME_ACTORS
from tests.conftest import RUNTIMES
from tests.http.minigame_support import Clock, Game, open_game

N = 20


@pytest.fixture(params=RUNTIMES)
async def any_game(request: pytest.FixtureRequest, make_runtime: Callable[..., Any]) -> AsyncIterator[Game]:
    """A Game on the local runtime and on Ray (Ray shards use the wall clock)."""
    clock = Clock()
    overrides: dict[str, Any] = {"actor_classes": MINIGAME_ACTORS}
    if request.param == "local":
        overrides["clock"] = clock
    runtime = await make_runtime(request.param, **overrides)
    async for g in open_game(runtime, clock):
        yield g


async def test_twenty_concurrent_submissions_of_one_token_yield_one_200(any_game: Game) -> None:
    game = any_game
    session = await game.start("b1")
    await game.login("c1")
    bodies = [game.submission(session, score=i / N) for i in range(N)]
    responses = await asyncio.gather(*(game.submit(b) for b in bodies))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: N - 1}, statuses
    assert all(r.json() == {"error": "session_already_used"} for r in responses if r.status_code == 409)
    winner = next(r for r in responses if r.status_code == 200).json()
    history = (await game.history()).json()
    assert history["total"] == 1
    assert history["results"][0]["score"] == winner["score"]


async def test_twenty_concurrent_settlements_of_one_result_settle_once(any_game: Game) -> None:
    game = any_game
    token = await game.play("r1", "craft_smithing", score=1.0)
    responses = await asyncio.gather(*(game.settle("r1", token) for _ in range(N)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 403: N - 1}, statuses
    profile = await game.profile()
    assert profile["items"] == {"iron_sword": 1}
    assert profile["skills"]["smithing"]["xp"] == 42


async def test_characters_racing_for_one_board_order(any_game: Game) -> None:
    game = any_game
    characters = [f"racer{i}" for i in range(8)]
    tokens = {c: await game.play("b1", character=c) for c in characters}
    responses = await asyncio.gather(*(game.settle("b1", tokens[c], character=c) for c in characters))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: len(characters) - 1}, statuses
    winners = [c for c, r in zip(characters, responses, strict=True) if r.status_code == 200]
    for c in characters:
        profile = await game.profile(c)
        assert bool(profile["skills"]) == (c in winners)
