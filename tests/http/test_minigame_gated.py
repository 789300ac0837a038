"""Gated activity routes: the Minigame-Result token is checked, then the activity settles."""

from __future__ import annotations

import pytest

from questline.rules import minigame as rules
from tests.http.minigame_support import ROUTES, Game, decode_token_payload, game_fixture  # noqa: F401

REFUSED = {"error": "minigame_result_required"}


@pytest.mark.parametrize("ref", sorted(ROUTES))
async def test_each_route_settles_with_rewards_scaled_by_the_modifier(game: Game, ref: str) -> None:
    activity_type = ROUTES[ref][0]
    token = await game.play(ref, activity_type, score=1.0)  # modifier 1.4
    r = await game.settle(ref, token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["activity_type"] == activity_type and body["activity_ref_id"] == ref
    assert body["modifier_applied"] == 1.4
    profile = await game.profile()
    for skill, amount in body["rewards"]["xp"].items():
        assert profile["skills"][skill]["xp"] == amount
    assert profile["currency"] == body["rewards"]["currency"]
    assert profile["items"] == body["rewards"]["items"]


async def test_board_settlement_numbers(game: Game) -> None:
    token = await game.play("b1", score=0.82)  # 1.274
    r = await game.settle("b1", token)
    assert r.status_code == 200
    body = r.json()
    assert body["rewards"] == {"xp": {"leadership": 51}, "currency": {"silver": 76}, "items": {"salt": 3}}
    assert body["activity"]["status"] == "accepted"
    assert body["skills"] == {"leadership": {"xp": 51, "band": 1}}


async def test_low_score_shrinks_rewards(game: Game) -> None:
    token = await game.play("b1", score=0.0)  # 0.7
    body = (await game.settle("b1", token)).json()
    assert body["rewards"] == {"xp": {"leadership": 28}, "currency": {"silver": 42}, "items": {"salt": 1}}


async def test_accepted_board_order_cannot_be_accepted_again(game: Game) -> None:
    t1 = await game.play("b1", character="c1")
    t2 = await game.play("b1", character="c2")  # c2 played while the order was still open
    assert (await game.settle("b1", t1, character="c1")).status_code == 200
    r = await game.settle("b1", t2, character="c2")
    assert r.status_code == 409 and r.json() == {"error": "activity_unavailable"}
    assert (await game.profile("c2"))["skills"] == {}


async def test_repeatable_activity_settles_once_per_result(game: Game) -> None:
    for i in range(3):
        token = await game.play("r1", "craft_smithing", score=0.5)
        assert (await game.settle("r1", token)).status_code == 200
        assert (await game.settle("r1", token)).status_code == 403
        assert (await game.profile())["items"] == {"iron_sword": i + 1}


async def _snapshot(game: Game) -> tuple[dict, dict]:
    return await game.profile("c1"), await game.profile("c2")


async def _assert_refused(game: Game, r_status: int, r_json: dict, before: tuple[dict, dict]) -> None:
    assert r_status == 403
    assert r_json == REFUSED
    assert await _snapshot(game) == before


async def test_missing_and_garbage_headers(game: Game) -> None:
    before = await _snapshot(game)
    for ref in ROUTES:
        for header in (None, "", "garbage", "a.b", "a.b.c"):
            r = await game.settle(ref, header)
            await _assert_refused(game, r.status_code, r.json(), before)


async def test_forged_token_is_refused_and_changes_nothing(game: Game) -> None:
    token = await game.play("b1", score=0.0)
    before = await _snapshot(game)
    claims = decode_token_payload(token)
    body, sig = token.split(".")
    inflated = rules.sign_token(claims | {"modifier": 1.4}, b"guess" * 8).split(".")[0]
    for forged in (f"{inflated}.{sig}", rules.sign_token(claims, b"guess" * 8), f"{body}.{sig[:-2]}xx"):
        r = await game.settle("b1", forged)
        await _assert_refused(game, r.status_code, r.json(), before)
    # the genuine token still works, at its genuine modifier
    r = await game.settle("b1", token)
    assert r.status_code == 200 and r.json()["modifier_applied"] == 0.7


async def test_session_token_is_not_a_result_token(game: Game) -> None:
    session = await game.start("b1")
    before = await _snapshot(game)
    r = await game.settle("b1", session["token"])
    await _assert_refused(game, r.status_code, r.json(), before)


async def test_expired_result_token_is_refused(game: Game) -> None:
    token = await game.play("r1", "craft_smithing")
    before = await _snapshot(game)
    game.clock.advance(600_001)
    r = await game.settle("r1", token)
    await _assert_refused(game, r.status_code, r.json(), before)


async def test_result_token_valid_for_ten_minutes(game: Game) -> None:
    token = await game.play("r1", "craft_smithing")
    game.clock.advance(600_000)
    assert (await game.settle("r1", token)).status_code == 200


async def test_reused_result_token_is_refused(game: Game) -> None:
    token = await game.play("h1", "heal")
    assert (await game.settle("h1", token)).status_code == 200
    before = await _snapshot(game)
    r = await game.settle("h1", token)
    await _assert_refused(game, r.status_code, r.json(), before)


async def test_other_characters_token_is_refused(game: Game) -> None:
    token = await game.play("r1", "craft_smithing", character="c1")
    before = await _snapshot(game)
    r = await game.settle("r1", token, character="c2")
    await _assert_refused(game, r.status_code, r.json(), before)
    assert (await game.settle("r1", token, character="c1")).status_code == 200


async def test_other_tenants_token_is_refused(game: Game) -> None:
    token = await game.play("b1", character="c1", tenant="t2")
    before = await _snapshot(game)
    r = await game.settle("b1", token, character="c1", tenant="t1")
    await _assert_refused(game, r.status_code, r.json(), before)


async def test_other_activitys_token_is_refused(game: Game) -> None:
    token = await game.play("r1", "craft_smithing")
    before = await _snapshot(game)
    attempts = [
        # same route, another ref
        {"path": "/api/crafting/start", "body": {"activity_ref_id": "r2"}},
        # another route (type not allowed there), same ref
        {"path": "/api/gathering/start", "body": {"activity_ref_id": "r1"}},
        {"path": "/api/board/r1/accept", "body": {}},
        # same route and ref, but declaring another craft type
        {"path": "/api/crafting/start", "body": {"activity_ref_id": "r1", "activity_type": "craft_cooking"}},
    ]
    for attempt in attempts:
        r = await game.settle("r1", token, path=attempt["path"], body=attempt["body"])
        await _assert_refused(game, r.status_code, r.json(), before)
    board_token = await game.play("b1")
    r = await game.settle("b2", board_token)  # another board order
    await _assert_refused(game, r.status_code, r.json(), before)
    # both still settle where they belong
    assert (await game.settle("r1", token)).status_code == 200
    assert (await game.settle("b1", board_token)).status_code == 200


async def test_unsubmitted_session_cannot_settle(game: Game) -> None:
    await game.start("b1")
    before = await _snapshot(game)
    r = await game.settle("b1", None)
    await _assert_refused(game, r.status_code, r.json(), before)


async def test_activity_that_expired_after_the_minigame_is_not_found(game: Game) -> None:
    token = await game.play("b-soon")
    game.clock.advance(61_000)
    r = await game.settle("b-soon", token)
    assert r.status_code == 404 and r.json() == {"error": "activity_not_found"}


@pytest.mark.parametrize("body", [{}, {"activity_ref_id": 5}, {"activity_type": "craft_smithing"}])
async def test_malformed_gated_body_is_400(game: Game, body: dict) -> None:
    token = await game.play("r1", "craft_smithing")
    r = await game.settle("r1", token, body=body)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert (await game.settle("r1", token)).status_code == 200


async def test_board_accept_takes_an_empty_body(game: Game) -> None:
    token = await game.play("b1")
    headers = await game.login() | {"Minigame-Result": token}
    r = await game.client.post("/api/board/b1/accept", headers=headers)
    assert r.status_code == 200
