"""POST /api/minigame/session: the seed's Worker Logic, its errors, rate limit and passive mode."""

from __future__ import annotations

import pytest

from questline.rules import minigame as rules
from tests.http.minigame_support import START_MS, Game, decode_token_payload, game_fixture  # noqa: F401


async def test_session_has_the_documented_shape_and_a_signed_token(game: Game) -> None:
    r = await game.session("b1")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"token", "seed", "type", "min_duration_ms", "max_duration_ms", "skill_band"}
    assert (body["type"], body["min_duration_ms"], body["max_duration_ms"], body["skill_band"]) == (
        "rhythm", 8000, 45000, 1
    )
    assert -(2**31) <= body["seed"] < 2**31
    payload = decode_token_payload(body["token"])
    assert payload["sub"] == "c1" and payload["seed"] == body["seed"]
    assert payload["iat"] == START_MS // 1000 and payload["exp"] == payload["iat"] + 300
    assert payload["activity_type"] == "expedition_accept" and payload["activity_ref_id"] == "b1"
    assert len(payload["jti"]) == 36  # a uuid4


async def test_each_session_has_its_own_jti_and_seed(game: Game) -> None:
    sessions = [await game.start("r1", "craft_smithing") for _ in range(8)]
    jtis = {decode_token_payload(s["token"])["jti"] for s in sessions}
    seeds = {s["seed"] for s in sessions}
    assert len(jtis) == 8
    assert len(seeds) > 1


@pytest.mark.parametrize(
    ("ref", "activity_type", "minigame", "bounds"),
    [
        ("b2", "expedition_accept", "reaction", (5000, 30000)),  # combat expedition category
        ("e1", "expedition_accept", "pathfinding", (10000, 60000)),
        ("r1", "craft_smithing", "timing", (6000, 40000)),
        ("g1", "gather_mining", "rhythm", (5000, 30000)),
        ("o1", "trade", "haggle", (4000, 30000)),
        ("h1", "heal", "steady_hand", (6000, 40000)),
        ("s1", "scout", "search", (6000, 40000)),
        ("a1", "tame", "timing", (5000, 35000)),
    ],
)
async def test_minigame_type_and_bounds_come_from_the_type_table(
    game: Game, ref: str, activity_type: str, minigame: str, bounds: tuple[int, int]
) -> None:
    body = await game.start(ref, activity_type)
    assert body["type"] == minigame
    assert (body["min_duration_ms"], body["max_duration_ms"]) == bounds


@pytest.mark.parametrize(
    ("ref", "activity_type"),
    [
        ("nope", "expedition_accept"),  # never existed
        ("b-old", "expedition_accept"),  # expired
        ("r1", "expedition_accept"),  # exists, but not as this activity type
        ("b1", "craft_smithing"),
        ("b1", "dancing"),  # no such activity type
    ],
)
async def test_activity_not_found(game: Game, ref: str, activity_type: str) -> None:
    r = await game.session(ref, activity_type)
    assert r.status_code == 404
    assert r.json() == {"error": "activity_not_found"}


async def test_activity_expires_by_the_engine_clock(game: Game) -> None:
    assert (await game.session("b-soon")).status_code == 200
    game.clock.advance(61_000)
    r = await game.session("b-soon")
    assert r.status_code == 404 and r.json() == {"error": "activity_not_found"}


async def test_departed_expedition_is_unavailable(game: Game) -> None:
    r = await game.session("e-gone")
    assert r.status_code == 409 and r.json() == {"error": "activity_unavailable"}


async def test_accepted_board_order_is_unavailable_to_everyone(game: Game) -> None:
    token = await game.play("b1")
    assert (await game.settle("b1", token)).status_code == 200
    for character in ("c1", "c2"):
        r = await game.session("b1", character=character)
        assert r.status_code == 409 and r.json() == {"error": "activity_unavailable"}
    listed = (await game.client.get("/api/activities", headers=await game.login("c2"))).json()["activities"]
    assert {a["id"]: a["status"] for a in listed}["b1"] == "accepted"


async def test_expedition_template_is_joined_once_per_character(game: Game) -> None:
    token = await game.play("e1")
    assert (await game.settle("e1", token)).status_code == 200
    r = await game.session("e1")
    assert r.status_code == 409 and r.json() == {"error": "activity_unavailable"}
    assert (await game.session("e1", character="c2")).status_code == 200


async def test_skill_band_follows_the_characters_skill_xp(game: Game) -> None:
    assert (await game.start("g1", "gather_mining"))["skill_band"] == 1
    token = await game.play("g1", "gather_mining", score=1.0)  # 200 xp * 1.4 = 280
    assert (await game.settle("g1", token)).status_code == 200
    assert (await game.start("g1", "gather_mining"))["skill_band"] == 2
    token = await game.play("g1", "gather_mining", score=1.0)  # 560
    assert (await game.settle("g1", token)).status_code == 200
    assert (await game.start("g1", "gather_mining"))["skill_band"] == 3
    # another skill, another band; another character, its own band
    assert (await game.start("r1", "craft_smithing"))["skill_band"] == 1
    assert (await game.start("g1", "gather_mining", character="c2"))["skill_band"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"activity_type": "expedition_accept"},
        {"activity_type": 3, "activity_ref_id": "b1"},
        [],
    ],
)
async def test_malformed_session_body_is_400(game: Game, body: object) -> None:
    r = await game.client.post("/api/minigame/session", json=body, headers=await game.login())
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


async def test_rate_limit_is_twenty_per_character_per_minute(game: Game) -> None:
    for _ in range(20):
        assert (await game.session("r1", "craft_smithing")).status_code == 200
    r = await game.session("r1", "craft_smithing")
    assert r.status_code == 429
    assert r.json() == {"error": "rate_limited"}
    assert int(r.headers["Retry-After"]) >= 1
    # another character is not affected
    assert (await game.session("r1", "craft_smithing", character="c2")).status_code == 200
    # the window slides
    game.clock.advance(59_999)
    assert (await game.session("r1", "craft_smithing")).status_code == 429
    game.clock.advance(1)
    assert (await game.session("r1", "craft_smithing")).status_code == 200


async def test_rate_limited_request_issues_nothing(game: Game) -> None:
    for _ in range(20):
        await game.session("r1", "craft_smithing")
    headers = await game.login()
    await game.client.patch("/api/characters/me/passive-mode", json={"enabled": True}, headers=headers)
    r = await game.session("r1", "craft_smithing")
    assert r.status_code == 429
    assert (await game.history()).json()["total"] == 0  # no synthetic result was recorded


async def test_passive_mode_round_trip(game: Game) -> None:
    headers = await game.login()
    r = await game.client.patch("/api/characters/me/passive-mode", json={"enabled": True}, headers=headers)
    assert r.status_code == 200 and r.json() == {"passive_mode": True}
    assert (await game.profile())["passive_mode"] is True

    r = await game.session("r1", "craft_smithing")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"passive", "result_token", "modifier", "score"}
    assert body["passive"] is True and body["modifier"] == 1.0 and body["score"] == 0.5

    # the synthetic result settles the activity with modifier 1.0 (base rewards)
    r = await game.settle("r1", body["result_token"])
    assert r.status_code == 200
    assert r.json()["rewards"] == {"xp": {"smithing": 30}, "currency": {}, "items": {"iron_sword": 1}}
    assert r.json()["modifier_applied"] == 1.0
    history = (await game.history()).json()
    assert history["total"] == 1
    assert history["results"][0]["score"] == 0.5 and history["results"][0]["modifier_applied"] == 1.0

    r = await game.client.patch("/api/characters/me/passive-mode", json={"enabled": False}, headers=headers)
    assert r.json() == {"passive_mode": False}
    body = await game.start("r1", "craft_smithing")
    assert "token" in body and "passive" not in body
    # other characters were never passive
    assert "token" in await game.start("r1", "craft_smithing", character="c2")


async def test_passive_token_is_bound_to_its_activity(game: Game) -> None:
    headers = await game.login()
    await game.client.patch("/api/characters/me/passive-mode", json={"enabled": True}, headers=headers)
    token = (await game.session("r1", "craft_smithing")).json()["result_token"]
    r = await game.settle("g1", token)
    assert r.status_code == 403 and r.json() == {"error": "minigame_result_required"}
    assert (await game.settle("r1", token)).status_code == 200
    assert (await game.settle("r1", token)).status_code == 403


@pytest.mark.parametrize("body", [{}, {"enabled": "yes"}, {"enabled": 1}, {"enabled": None}])
async def test_passive_mode_body_must_be_a_boolean(game: Game, body: dict) -> None:
    r = await game.client.patch("/api/characters/me/passive-mode", json=body, headers=await game.login())
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert (await game.profile())["passive_mode"] is False


async def test_session_state_is_stored_per_jti(game: Game) -> None:
    """A session token submitted after issuance reaches the same stored session (seed step 13)."""
    session = await game.start("r1", "craft_smithing")
    jti = decode_token_payload(session["token"])["jti"]
    r = await game.submit(game.submission(session, 0.5))
    assert r.status_code == 200
    result = decode_token_payload(r.json()["result_token"])
    assert result["jti"] == jti
    assert result["exp"] - result["iat"] == rules.RESULT_TTL_S
