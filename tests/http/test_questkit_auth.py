"""POST /v1/auth/token, token verification (expired, forged, alg none), revocation, CORS."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from questline.actors.questkit_common import app_address
from questline.http.questkit import questkit_routes
from questline.http.questkit_auth import _signed_by, authenticate, questkit_endpoint
from tests.conftest import RUNTIMES
from tests.http.questkit_support import APP, QK, SECRET, START, make_qk_fixture, qk_fixture  # noqa: F401


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


async def test_token_claims_and_expiry(qk: QK):
    r = await qk.http.post("/v1/auth/token", json={"appId": APP, "appSecret": SECRET, "userId": "alice"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"token", "expiresAt"}
    assert jwt.get_unverified_header(body["token"])["alg"] == "HS256"
    claims = claims_of(body["token"])
    assert claims["sub"] == "alice" and claims["app"] == APP
    assert claims["iat"] == START // 1000
    assert claims["exp"] == claims["iat"] + 3600
    assert body["expiresAt"] == claims["exp"] * 1000
    other = claims_of(await qk.token("alice"))
    assert other["jti"] != claims["jti"]


@pytest.mark.parametrize(
    "body",
    [
        {"appId": APP, "appSecret": "wrong", "userId": "u1"},
        {"appId": "no-such-app", "appSecret": SECRET, "userId": "u1"},
        {"appId": "beta", "appSecret": SECRET, "userId": "u1"},  # another app's id with acme's secret
        {"appId": "bad/app", "appSecret": SECRET, "userId": "u1"},
    ],
)
async def test_wrong_credentials_are_401(qk: QK, body):
    r = await qk.http.post("/v1/auth/token", json=body)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_credentials"


@pytest.mark.parametrize(
    "body",
    [
        {"appId": APP, "appSecret": SECRET},
        {"appId": APP, "userId": "u1"},
        {"appId": APP, "appSecret": SECRET, "userId": ""},
        {"appId": APP, "appSecret": SECRET, "userId": 7},
        {"appId": APP, "appSecret": SECRET, "userId": "x" * 257},
        "not an object",
    ],
)
async def test_malformed_token_request_is_400(qk: QK, body):
    r = await qk.http.post("/v1/auth/token", json=body)
    assert r.status_code == 400
    assert r.json()["error"] == "validation_error"
    r = await qk.http.post("/v1/auth/token", content=b"{", headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["error"]) == (400, "validation_error")


async def test_expired_token_is_401_and_valid_until_then(qk: QK):
    token = await qk.token()
    qk.clock.advance(3600 * 1000 - 1)
    assert (await qk.get(token, "/v1/balance")).status_code == 200
    qk.clock.advance(1)  # now == exp: exp > now must hold strictly
    r = await qk.get(token, "/v1/balance")
    assert (r.status_code, r.json()["error"]) == (401, "unauthorized")


async def test_forged_tokens_are_401(qk: QK):
    real = claims_of(await qk.token())
    other_secret = jwt.encode(real, "some-other-secret-of-32-bytes-xx", algorithm="HS256")
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(real)}."
    none_signed = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(real)}.c2ln"
    tampered_parts = (await qk.token()).split(".")
    tampered = ".".join([tampered_parts[0], b64({**real, "sub": "mallory"}), tampered_parts[2]])
    for forged in (other_secret, unsigned, none_signed, tampered, "a.b.c", ""):
        r = await qk.http.get("/v1/balance", headers={"Authorization": f"Bearer {forged}"})
        assert (r.status_code, r.json()["error"]) == (401, "unauthorized"), forged


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_other_algorithms_and_missing_claims_are_401(qk: QK):
    # Even with the right key, only HS256 is accepted, and every claim is required.
    key = await qk.runtime.call(app_address(APP), "jwt_key")
    real = claims_of(await qk.token())
    hs512 = jwt.encode(real, key, algorithm="HS512")
    no_jti = jwt.encode({k: v for k, v in real.items() if k != "jti"}, key, algorithm="HS256")
    no_app = jwt.encode({k: v for k, v in real.items() if k != "app"}, key, algorithm="HS256")
    good = jwt.encode(real, key, algorithm="HS256")
    assert (await qk.get(good, "/v1/balance")).status_code == 200
    for token in (hs512, no_jti, no_app):
        r = await qk.get(token, "/v1/balance")
        assert (r.status_code, r.json()["error"]) == (401, "unauthorized")


async def test_token_of_another_app_cannot_reach_this_app(qk: QK):
    beta = await qk.token("u1", app="beta")
    r = await qk.event(beta, "app.opened")
    assert r.status_code == 200
    assert r.json()["missionsUpdated"] == ["open-once"]  # beta's catalog, beta's user
    acme = await qk.token("u1")
    assert await qk.progress(acme, "open-once") is None


@pytest.mark.parametrize("runtime_name", RUNTIMES)
async def test_revoked_token_is_401_at_once(make_qk, runtime_name):
    qk: QK = await make_qk(runtime_name)
    token = await qk.token()
    spare = await qk.token()
    assert (await qk.event(token, "app.opened")).status_code == 200
    r = await qk.http.post("/v1/auth/revoke", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert r.json() == {"revoked": True, "jti": claims_of(token)["jti"]}
    for response in (
        await qk.event(token, "app.opened"),
        await qk.get(token, "/v1/missions"),
        await qk.get(token, "/v1/missions/open-once"),
        await qk.get(token, "/v1/balance"),
        await qk.get(token, "/v1/balance/coins"),
        await qk.get(token, "/v1/campaigns"),
        await qk.get(token, "/v1/campaigns/spring"),
        await qk.get(token, "/v1/recommendations"),
        await qk.claim(token, "open-once"),
    ):
        assert (response.status_code, response.json()["error"]) == (401, "unauthorized")
    # Only that token: the user's other token still works.
    assert (await qk.get(spare, "/v1/balance")).status_code == 200
    assert (await qk.progress(spare, "open-once"))["currentCount"] == 1


async def test_admin_revocation_by_jti_with_the_app_secret(qk: QK):
    token = await qk.token("alice")
    jti = claims_of(token)["jti"]
    body = {"appId": APP, "appSecret": "wrong", "userId": "alice", "jti": jti}
    r = await qk.http.post("/v1/auth/revoke", json=body)
    assert (r.status_code, r.json()["error"]) == (401, "invalid_credentials")
    assert (await qk.get(token, "/v1/balance")).status_code == 200
    r = await qk.http.post("/v1/auth/revoke", json={**body, "appSecret": SECRET})
    assert r.status_code == 200 and r.json() == {"revoked": True, "jti": jti}
    assert (await qk.get(token, "/v1/balance")).status_code == 401
    r = await qk.http.post("/v1/auth/revoke", json={"appId": APP, "appSecret": SECRET})
    assert (r.status_code, r.json()["error"]) == (400, "validation_error")
    r = await qk.http.post("/v1/auth/revoke")
    assert (r.status_code, r.json()["error"]) == (401, "unauthorized")


async def test_revocations_are_forgotten_after_the_token_expires(qk: QK):
    token = await qk.token()
    await qk.http.post("/v1/auth/revoke", headers={"Authorization": f"Bearer {token}"})
    assert await qk.user_call("token_ok", claims_of(token)["jti"]) is False
    qk.clock.advance(3600 * 1000 + 1)
    # The token is dead anyway; its denylist entry no longer needs to be kept.
    assert (await qk.get(token, "/v1/balance")).status_code == 401
    assert await qk.user_call("token_ok", claims_of(token)["jti"]) is True


async def test_authenticate_checks_signature_expiry_and_revocation(make_qk):
    """``authenticate`` is what other routes (SSE) build on: exercise it through a route."""

    async def whoami(request: Request):
        principal = await authenticate(request, request.query_params.get("token"))
        return JSONResponse({"app": principal.app_id, "user": principal.user_id, "jti": principal.jti,
                             "exp": principal.exp})

    qk: QK = await make_qk("local", routes=questkit_routes(extra_routes=[Route("/whoami", questkit_endpoint(whoami))]))
    token = await qk.token("alice")
    r = await qk.get(token, "/v1/whoami")
    assert r.status_code == 200
    claims = claims_of(token)
    assert r.json() == {"app": APP, "user": "alice", "jti": claims["jti"], "exp": claims["exp"]}
    assert (await qk.http.get("/v1/whoami", params={"token": token})).status_code == 200
    assert (await qk.http.get("/v1/whoami")).status_code == 401
    await qk.http.post("/v1/auth/revoke", headers={"Authorization": f"Bearer {token}"})
    r = await qk.get(token, "/v1/whoami")
    assert (r.status_code, r.json()["error"]) == (401, "unauthorized")


async def test_cors_preflight_allows_authorization_from_any_origin(qk: QK):
    r = await qk.http.options(
        "/v1/events",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, idempotency-key, content-type",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "idempotency-key", "content-type"} <= allowed
    assert "POST" in r.headers["access-control-allow-methods"]
    token = await qk.token()
    r = await qk.http.get("/v1/balance", headers={"Authorization": f"Bearer {token}", "Origin": "https://x.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "x-idempotent-replay" in r.headers["access-control-expose-headers"].lower()


async def test_unknown_route_and_wrong_method_are_json_errors(qk: QK):
    r = await qk.http.get("/v1/nope")
    assert r.status_code == 404 and "error" in r.json()
    r = await qk.http.get("/v1/events")
    assert r.status_code == 405 and "error" in r.json()


def test_signature_check_agrees_with_pyjwt() -> None:
    """The HS256 check on the hot path accepts exactly what pyjwt accepts."""
    key, other = b"k" * 32, b"o" * 32
    claims = {"sub": "u", "app": APP, "iat": 1, "exp": 2, "jti": "j"}
    good = jwt.encode(claims, key, algorithm="HS256")
    head, body, sig = good.split(".")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    candidates = [
        good,
        jwt.encode(claims, other, algorithm="HS256"),  # foreign key
        f"{head}.{b64({**claims, 'sub': 'mallory'})}.{sig}",  # claims swapped under a valid signature
        f"{head}.{body}.{flipped}",  # tampered signature
        f"{head}.{body}.{sig}!",  # junk in the signature segment
        f"{head}.{body}.",  # no signature
        f"{head}.{body}",  # two segments
        f"{head}.{body}.{sig}=",  # padded signature
        f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{body}.{sig}",  # header re-encoded: signature no longer covers it
    ]
    for token in candidates:
        try:
            jwt.decode(token, key, algorithms=["HS256"], options={"verify_exp": False})
            expected = True
        except jwt.InvalidTokenError:
            expected = False
        assert _signed_by(token, key) is expected, token
    assert _signed_by(good, key) is True
