"""GET /api/minigame/history: newest first, limit (max 50) and offset, total."""

from __future__ import annotations

import pytest

from questline.actors import minigame as minigame_actors
from tests.http.minigame_support import START_MS, Game, game_fixture  # noqa: F401


async def _play_many(game: Game, count: int) -> list[float]:
    scores = []
    for i in range(count):
        score = round(i / 100, 2)
        game.clock.advance(1000)
        await game.play("r1", "craft_smithing", score=score)
        scores.append(score)
        if (i + 1) % 20 == 0:
            game.clock.advance(60_000)  # stay under the session rate limit
    return scores


async def test_history_pages_newest_first_with_total(game: Game) -> None:
    scores = await _play_many(game, 55)
    newest_first = list(reversed(scores))

    page = (await game.history(limit=20, offset=0)).json()
    assert page["total"] == 55
    assert [r["score"] for r in page["results"]] == newest_first[:20]
    first = page["results"][0]
    assert set(first) == {"jti", "minigame_type", "activity_type", "score", "modifier_applied", "submitted_at"}
    assert first["minigame_type"] == "timing" and first["activity_type"] == "craft_smithing"
    assert page["results"][0]["submitted_at"] > page["results"][-1]["submitted_at"]

    page2 = (await game.history(limit=20, offset=20)).json()
    assert [r["score"] for r in page2["results"]] == newest_first[20:40]
    tail = (await game.history(limit=20, offset=40)).json()
    assert [r["score"] for r in tail["results"]] == newest_first[40:]
    assert tail["total"] == 55
    beyond = (await game.history(limit=20, offset=55)).json()
    assert beyond == {"results": [], "total": 55}

    capped = (await game.history(limit=500)).json()
    assert len(capped["results"]) == 50
    default = (await game.history()).json()
    assert len(default["results"]) == 20
    jtis = {r["jti"] for p in (page, page2, tail) for r in p["results"]}
    assert len(jtis) == 55


async def test_history_is_per_character_and_records_only_accepted_results(game: Game) -> None:
    session = await game.start("b1")
    await game.submit(game.submission(session, 0.5, 1))  # refused: too short
    assert (await game.history()).json() == {"results": [], "total": 0}
    await game.play("r1", "craft_smithing", score=0.25)
    assert (await game.history()).json()["total"] == 1
    assert (await game.history("c2")).json() == {"results": [], "total": 0}
    entry = (await game.history()).json()["results"][0]
    assert entry["modifier_applied"] == 0.875 and entry["submitted_at"] == START_MS // 1000


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": -1}, {"limit": "x"}, {"offset": -1}, {"offset": "1.5"}])
async def test_bad_paging_parameters_are_400(game: Game, params: dict) -> None:
    r = await game.history(**params)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


async def test_history_keeps_the_newest_results(game: Game, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(minigame_actors, "HISTORY_RETAIN", 5)
    scores = await _play_many(game, 8)
    page = (await game.history(limit=50)).json()
    assert page["total"] == 5
    assert [r["score"] for r in page["results"]] == list(reversed(scores))[:5]
