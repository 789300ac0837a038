"""Access JWTs: minted per tenant and character, verified on every Minigame route."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from tests.http.minigame_support import START_MS, Game, game_fixture  # noqa: F401

ROUTES = [
    ("POST", "/api/minigame/session", {"activity_type": "expedition_accept", "activity_ref_id": "b1"}),
    ("POST", "/api/minigame/result", {"token": "x.y", "score": 0.5, "duration_ms": 9000, "event_hash": "x"}),
    ("GET", "/api/minigame/history", None),
    ("PATCH", "/api/characters/me/passive-mode", {"enabled": True}),
    ("GET", "/api/characters/me", None),
    ("GET", "/api/activities", None),
    ("POST", "/api/board/b1/accept", {}),
    ("POST", "/api/crafting/start", {"activity_ref_id": "r1"}),
    ("POST", "/api/gathering/start", {"activity_ref_id": "g1"}),
    ("POST", "/api/trade/offer", {"activity_ref_id": "o1"}),
    ("POST", "/api/heal/start", {"activity_ref_id": "h1"}),
    ("POST", "/api/scouting/start", {"activity_ref_id": "s1"}),
    ("POST", "/api/animals/interact", {"activity_ref_id": "a1"}),
]


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_token_is_a_tenant_scoped_hs256_jwt(game: Game) -> None:
    r = await game.client.post(
        "/api/auth/token", json={"tenant_id": "t1", "tenant_secret": "s1-secret", "character_id": "c1"}
    )
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"access_token", "expires_at"}
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "c1" and claims["tid"] == "t1"
    assert body["expires_at"] == claims["exp"] == START_MS // 1000 + 3600


@pytest.mark.parametrize(
    "body",
    [
        {"tenant_id": "t1", "tenant_secret": "wrong", "character_id": "c1"},
        {"tenant_id": "t1", "tenant_secret": "s2-secret", "character_id": "c1"},  # another tenant's secret
        {"tenant_id": "nope", "tenant_secret": "s1-secret", "character_id": "c1"},
    ],
)
async def test_wrong_credentials_are_unauthorized(game: Game, body: dict) -> None:
    r = await game.client.post("/api/auth/token", json=body)
    assert r.status_code == 401
    assert r.json() == {"error": "unauthorized"}


@pytest.mark.parametrize(
    "body",
    [
        {"tenant_id": "t1", "tenant_secret": "s1-secret"},
        {"tenant_id": "t1", "tenant_secret": "s1-secret", "character_id": "bad/id"},
        {"tenant_id": "t1", "tenant_secret": "s1-secret", "character_id": ""},
        {"tenant_id": "t1", "tenant_secret": 5, "character_id": "c1"},
    ],
)
async def test_malformed_token_requests_are_400(game: Game, body: dict) -> None:
    r = await game.client.post("/api/auth/token", json=body)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


async def _bad_authorizations(game: Game) -> dict[str, dict[str, str]]:
    good = (await game.login("c1"))["Authorization"].split(" ", 1)[1]
    header, payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    return {
        "missing": {},
        "not bearer": {"Authorization": f"Basic {good}"},
        "empty bearer": {"Authorization": "Bearer "},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
        "alg none": {"Authorization": "Bearer " + _b64({"alg": "none", "typ": "JWT"}) + "." + payload + "."},
        "alg HS512": {"Authorization": "Bearer " + jwt.encode(claims, "k" * 64, algorithm="HS512")},
        "guessed key": {"Authorization": "Bearer " + jwt.encode(claims, "s1-secret" * 4, algorithm="HS256")},
        "tampered sub": {
            "Authorization": "Bearer " + header + "." + _b64({**claims, "sub": "c2"}) + "." + signature
        },
        "unknown tenant": {
            "Authorization": "Bearer " + header + "." + _b64({**claims, "tid": "zz"}) + "." + signature
        },
    }


async def test_every_route_refuses_bad_jwts(game: Game) -> None:
    bad = await _bad_authorizations(game)
    for method, path, body in ROUTES:
        for name, headers in bad.items():
            r = await game.client.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (method, path, name, r.text)
            assert r.json() == {"error": "unauthorized"}, (path, name)


async def test_expired_jwt_is_refused_by_the_engine_clock(game: Game) -> None:
    headers = await game.login("c1")
    assert (await game.client.get("/api/characters/me", headers=headers)).status_code == 200
    game.clock.advance(3600 * 1000)
    assert (await game.client.get("/api/characters/me", headers=headers)).status_code == 200
    game.clock.advance(1)
    r = await game.client.get("/api/characters/me", headers=headers)
    assert r.status_code == 401 and r.json() == {"error": "unauthorized"}


async def test_jwt_of_one_tenant_does_not_open_another(game: Game) -> None:
    """t2's character c1 is a different character from t1's c1."""
    await game.play("b1", character="c1", tenant="t1")
    p1 = await game.profile("c1", "t1")
    p2 = await game.profile("c1", "t2")
    assert p1["skills"] == {} and p2["skills"] == {}
    r = await game.history("c1", "t2")
    assert r.json() == {"results": [], "total": 0}


async def test_character_in_body_must_match_the_jwt(game: Game) -> None:
    headers = await game.login("c1")
    r = await game.client.post(
        "/api/minigame/session",
        json={"activity_type": "expedition_accept", "activity_ref_id": "b1", "character_id": "c2"},
        headers=headers,
    )
    assert r.status_code == 403 and r.json() == {"error": "character_mismatch"}
    r = await game.client.post(
        "/api/minigame/session",
        json={"activity_type": "expedition_accept", "activity_ref_id": "b1", "character_id": "c1"},
        headers=headers,
    )
    assert r.status_code == 200
    token = await game.play("r1", "craft_smithing")
    r = await game.settle("r1", token, body={"activity_ref_id": "r1", "character_id": "c2"})
    assert r.status_code == 403 and r.json() == {"error": "character_mismatch"}
    assert (await game.settle("r1", token)).status_code == 200  # the mismatch consumed nothing
