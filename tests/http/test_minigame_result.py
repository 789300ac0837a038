"""POST /api/minigame/result: every documented error, in order, and refusals change nothing."""

from __future__ import annotations

import uuid

import pytest

from questline.rules import minigame as rules
from tests.http.minigame_support import Game, decode_token_payload, game_fixture  # noqa: F401


async def test_valid_submission_returns_a_result_token_and_the_modifier(game: Game) -> None:
    session = await game.start("b1")
    r = await game.submit(game.submission(session, 0.82, 14300))
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"result_token", "modifier", "score"}
    assert body["modifier"] == 1.274 and body["score"] == 0.82
    claims = decode_token_payload(body["result_token"])
    assert claims["sub"] == "c1" and claims["activity_ref_id"] == "b1" and claims["modifier"] == 1.274


@pytest.mark.parametrize(("score", "modifier"), [(0.0, 0.7), (1.0, 1.4), (0.5, 1.05)])
async def test_modifier_at_the_edges_over_http(game: Game, score: float, modifier: float) -> None:
    session = await game.start("r1", "craft_smithing")
    r = await game.submit(game.submission(session, score))
    assert r.status_code == 200 and r.json()["modifier"] == modifier


@pytest.mark.parametrize("duration", [8000, 45000])
async def test_duration_bounds_are_inclusive(game: Game, duration: int) -> None:
    session = await game.start("b1")
    assert (await game.submit(game.submission(session, 0.5, duration))).status_code == 200


async def _assert_refused_then_session_still_usable(
    game: Game, session: dict, body: dict, status: int, code: str
) -> None:
    r = await game.submit(body)
    assert r.status_code == status, r.text
    assert r.json() == {"error": code}
    # nothing changed: no result recorded, the session is still unused
    assert (await game.history()).json()["total"] == 0
    ok = await game.submit(game.submission(session, 0.5))
    assert ok.status_code == 200, ok.text


async def test_duration_too_short(game: Game) -> None:
    session = await game.start("b1")
    body = game.submission(session, 0.5, 7999)
    await _assert_refused_then_session_still_usable(game, session, body, 400, "duration_too_short")


async def test_duration_too_long(game: Game) -> None:
    session = await game.start("b1")
    body = game.submission(session, 0.5, 45001)
    await _assert_refused_then_session_still_usable(game, session, body, 400, "duration_too_long")


@pytest.mark.parametrize("score", [-0.01, 1.01, 5])
async def test_score_outside_zero_one_is_refused(game: Game, score: float) -> None:
    session = await game.start("b1")
    body = game.submission(session, score)
    await _assert_refused_then_session_still_usable(game, session, body, 400, "invalid_score")


@pytest.mark.parametrize(
    "tweak",
    ["other score", "other duration", "other seed", "garbage", "empty"],
)
async def test_invalid_event_hash(game: Game, tweak: str) -> None:
    session = await game.start("b1")
    duration = 9000
    wrong = {
        "other score": rules.event_hash(session["seed"], duration, 0.51),
        "other duration": rules.event_hash(session["seed"], duration + 1, 0.5),
        "other seed": rules.event_hash(session["seed"] ^ 1, duration, 0.5),
        "garbage": "!!notbase64!!",
        "empty": "",
    }[tweak]
    body = game.submission(session, 0.5, duration, event_hash=wrong)
    await _assert_refused_then_session_still_usable(game, session, body, 400, "invalid_event_hash")


async def test_invalid_signature(game: Game) -> None:
    session = await game.start("b1")
    token = session["token"]
    body, sig = token.split(".")
    forged_payload = decode_token_payload(token) | {"min_duration_ms": 1}
    forged = rules.sign_token(forged_payload, b"guessed-key" * 3)
    cases = [
        f"{forged.split('.')[0]}.{sig}",  # payload changed, old signature
        forged,  # signed with a wrong key
        f"{body}.{sig[:-3]}AAA",
        body,
        "",
        "a.b.c",
    ]
    for token_text in cases:
        r = await game.submit(game.submission(session, 0.5) | {"token": token_text})
        assert r.status_code == 400 and r.json() == {"error": "invalid_signature"}, token_text
    assert (await game.history()).json()["total"] == 0
    assert (await game.submit(game.submission(session, 0.5))).status_code == 200


async def test_session_token_of_another_tenant_has_an_invalid_signature(game: Game) -> None:
    session = await game.start("b1", character="c1", tenant="t2")
    r = await game.submit(game.submission(session, 0.5), character="c1", tenant="t1")
    assert r.status_code == 400 and r.json() == {"error": "invalid_signature"}


async def test_result_token_is_not_a_session_token(game: Game) -> None:
    session = await game.start("b1")
    result_token = (await game.submit(game.submission(session, 0.5))).json()["result_token"]
    r = await game.submit(game.submission(session, 0.5) | {"token": result_token})
    assert r.status_code == 400 and r.json() == {"error": "invalid_signature"}


async def test_session_not_found(game: Game) -> None:
    session = await game.start("b1")
    payload = decode_token_payload(session["token"]) | {"jti": str(uuid.uuid4())}
    never_issued = await game.sign_session(payload)
    r = await game.submit(game.submission(session, 0.5) | {"token": never_issued})
    assert r.status_code == 404 and r.json() == {"error": "session_not_found"}


async def test_session_expired(game: Game) -> None:
    session = await game.start("b1")
    game.clock.advance(300_000)  # exactly at exp: still valid
    probe = await game.start("r1", "craft_smithing")
    assert (await game.submit(game.submission(probe, 0.5))).status_code == 200
    game.clock.advance(1)
    r = await game.submit(game.submission(session, 0.5))
    assert r.status_code == 408 and r.json() == {"error": "session_expired"}


async def test_character_mismatch(game: Game) -> None:
    session = await game.start("b1", character="c1")
    r = await game.submit(game.submission(session, 0.5), character="c2")
    assert r.status_code == 403 and r.json() == {"error": "character_mismatch"}
    assert (await game.history("c2")).json()["total"] == 0
    assert (await game.submit(game.submission(session, 0.5), character="c1")).status_code == 200


async def test_session_already_used(game: Game) -> None:
    session = await game.start("b1")
    first = await game.submit(game.submission(session, 0.9))
    assert first.status_code == 200
    again = await game.submit(game.submission(session, 0.2))
    assert again.status_code == 409 and again.json() == {"error": "session_already_used"}
    history = (await game.history()).json()
    assert history["total"] == 1 and history["results"][0]["score"] == 0.9


async def test_errors_come_in_the_documented_order(game: Game) -> None:
    """signature > not found > expired > owner > used > duration > score > hash."""
    session = await game.start("b1", character="c1")
    bad_everything = {"score": 7.0, "duration_ms": 1, "event_hash": "x"}
    # used beats duration/score/hash, owner beats used, expired beats owner
    assert (await game.submit(game.submission(session, 0.5))).status_code == 200
    r = await game.submit(game.submission(session) | bad_everything)
    assert r.json() == {"error": "session_already_used"}
    r = await game.submit(game.submission(session) | bad_everything, character="c2")
    assert r.json() == {"error": "character_mismatch"}
    game.clock.advance(301_000)
    r = await game.submit(game.submission(session) | bad_everything, character="c2")
    assert r.json() == {"error": "session_expired"}
    # not found beats everything after it; signature beats not found
    never = await game.sign_session(decode_token_payload(session["token"]) | {"jti": "never"})
    r = await game.submit(game.submission(session) | bad_everything | {"token": never}, character="c2")
    assert r.json() == {"error": "session_not_found"}
    r = await game.submit(game.submission(session) | bad_everything | {"token": never + "x"}, character="c2")
    assert r.json() == {"error": "invalid_signature"}
    # duration beats score beats hash
    fresh = await game.start("r1", "craft_smithing")
    r = await game.submit(game.submission(fresh) | bad_everything)
    assert r.json() == {"error": "duration_too_short"}
    r = await game.submit(game.submission(fresh) | {"score": 7.0, "event_hash": "x"})
    assert r.json() == {"error": "invalid_score"}
    r = await game.submit(game.submission(fresh) | {"event_hash": "x"})
    assert r.json() == {"error": "invalid_event_hash"}


@pytest.mark.parametrize(
    "patch",
    [
        {"score": "high"},
        {"duration_ms": 1.5},
        {"duration_ms": None},
        {"event_hash": 5},
        {"token": None},
    ],
)
async def test_malformed_result_body_is_400(game: Game, patch: dict) -> None:
    session = await game.start("b1")
    r = await game.submit(game.submission(session, 0.5) | patch)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert (await game.submit(game.submission(session, 0.5))).status_code == 200
