"""The auth matrix (issue 11): every authenticated route of every surface refuses
missing, forged, expired, revoked and someone else's credentials, in its own format.

Routes come from the live route table, so a new route is covered (or must be
declared public) the day it is added.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from tests.http import questkit_support
from tests.http.all_surfaces import (
    World,
    all_routes,
    assert_error_format,
    fill,
    route_table,
    surface_of,
    world_fixture,  # noqa: F401  (fixture)
)

# What the seeds let anyone call: token endpoints (which check the secret in the
# body), sign-up/login, the signature-checked inbound webhook and the API documents.
PUBLIC = {
    ("POST", "/v1/auth/token"),
    ("POST", "/v1/webhook/incoming"),
    ("GET", "/v1/openapi.json"),
    ("GET", "/api/questmaster/openapi.json"),
    ("GET", "/api/minigame/openapi.json"),
    ("POST", "/api/auth/token"),
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    # Probes and the Prometheus scrape carry no API key (QUESTLINE_METRICS_TOKEN can close /metrics).
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/health/live"),
    ("GET", "/api/v1/health/ready"),
    ("GET", "/api/v1/metrics"),
    ("GET", "/api/v1/openapi.json"),
    # The embeddable widget's script and style sheet (a <script src> carries no token; its API calls do).
    ("GET", "/api/v1/widget/embed.js"),
    ("GET", "/api/v1/widget/embed.css"),
}


ADMIN_BODY = {"appId": questkit_support.APP, "missions": [questkit_support.mission("m1", "app.opened")]}


BODIES = {
    ("PUT", "/v1/admin/catalog"): ADMIN_BODY,
    ("POST", "/v1/events"): {"userId": "u1", "name": "app.opened", "payload": {}, "timestamp": 1},
}


def url_of(path: str) -> str:
    query = "?appId=acme" if path.endswith(("/webhook/incoming", "/admin/catalog")) else ""
    return fill(path, "nope", sessionId="qm-s1") + query


async def served(world: World) -> list[tuple[str, str]]:
    """Every (method, path) that is not a 405 (QuestMaster routes take every method)."""
    out = []
    for method, path in route_table(all_routes(world.qm)):
        r = await world.client.request(method, url_of(path))
        if r.status_code != 405:
            out.append((method, path))
    return out


def _b64(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def _unb64(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def forgeries(token: str) -> dict[str, str]:
    """Ways to forge a token from a valid one (JWT attacks when it is a JWT)."""
    out = {"garbage": "not-a-token", "empty signature": token.rsplit(".", 1)[0] + "." if "." in token else token[:-8]}
    last = token[-1]
    out["tampered signature"] = token[:-2] + ("A" if token[-2] != "A" else "B") + last
    parts = token.split(".")
    if len(parts) == 3:
        header, claims = _unb64(parts[0]), _unb64(parts[1])
        elevated = {**claims, "sub": "someone-else"}
        out["alg none"] = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(elevated)}."
        out["alg None"] = f"{_b64({'alg': 'None', 'typ': 'JWT'})}.{_b64(claims)}."
        signing = f"{_b64(header)}.{_b64(elevated)}"
        sig = base64.urlsafe_b64encode(hmac.new(b"wrong-key", signing.encode(), hashlib.sha256).digest())
        out["wrong key"] = signing + "." + sig.rstrip(b"=").decode()
        # HS/RS confusion: an RS256 header whose "signature" is an HMAC (here with the
        # token's own signature as the key, standing in for a public key).
        rs = f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(claims)}"
        rs_sig = base64.urlsafe_b64encode(hmac.new(parts[2].encode(), rs.encode(), hashlib.sha256).digest())
        out["RS256 header, HMAC signature"] = rs + "." + rs_sig.rstrip(b"=").decode()
        out["claims swapped"] = f"{parts[0]}.{_b64(elevated)}.{parts[2]}"
    return out


def valid_token(world: World, path: str) -> str:
    if path.startswith("/api/v1/auth/"):
        return world.hatched_jwt
    if path.startswith("/api/v1/"):
        return world.hatched_key
    if path.startswith("/v1/admin/"):
        return questkit_support.SECRET
    if path.startswith("/v1/"):
        return world.qk_token
    if path.startswith("/api/questmaster/"):
        return world.qm.secret.decode()
    if surface_of(path) == "questmaster":
        return world.qm_token()
    return world.mg_token


async def refused(world: World, method: str, path: str, token: str | None, what: str,
                  url: str | None = None) -> None:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    # Some checks need the request's subject first (the app of an admin call, the user
    # of an event, whose actor holds the revocations): give those well-formed bodies.
    doc = BODIES.get((method, path))
    body = json.dumps(doc).encode() if doc is not None else None
    r = await world.client.request(method, url or url_of(path), headers=headers, content=body)
    assert r.status_code == 401, f"{what}: {method} {path} -> {r.status_code} {r.text[:200]}"
    assert_error_format(surface_of(path), r)


async def test_only_the_seeds_public_routes_answer_without_credentials(world: World) -> None:
    public = set()
    for method, path in await served(world):
        r = await world.client.request(method, url_of(path))
        if r.status_code == 401:
            assert_error_format(surface_of(path), r)
        else:
            public.add((method, path))
    assert public == PUBLIC


async def test_forged_credentials_are_refused_everywhere(world: World) -> None:
    for method, path in await served(world):
        if (method, path) in PUBLIC:
            continue
        for what, forged in forgeries(valid_token(world, path)).items():
            await refused(world, method, path, forged, what)


async def test_other_surfaces_credentials_are_refused(world: World) -> None:
    """A valid credential of one surface is nobody on another."""
    tokens = {"questkit": world.qk_token, "minigame": world.mg_token, "questmaster": world.qm_token(),
              "hatched": world.hatched_key}
    for method, path in await served(world):
        if (method, path) in PUBLIC or path.startswith("/v1/admin/") or path.startswith("/api/questmaster/"):
            continue
        for surface, token in tokens.items():
            if surface != surface_of(path) and not (surface == "hatched" and path.startswith("/api/v1/auth/")):
                await refused(world, method, path, token, f"{surface} token")


async def test_expired_tokens_are_refused(world: World) -> None:
    """A year later every token (not the long-lived secrets and API keys) has expired."""
    routes = [(m, p) for m, p in await served(world) if (m, p) not in PUBLIC]
    tokens = {p: valid_token(world, p) for _, p in routes}
    world.clock.advance(366 * 86_400_000)
    for method, path in routes:
        if path.startswith(("/v1/admin/", "/api/questmaster/", "/api/v1/")):
            continue  # app secret, server secret, API keys: no expiry (Hatched JWT: wall clock)
        await refused(world, method, path, tokens[path], "expired")


async def test_revoked_credentials_are_refused(world: World) -> None:
    c = world.client
    r = await c.post("/v1/auth/revoke", headers=world.bearer(world.qk_token))
    assert r.status_code == 200, r.text
    keys = (await c.get("/api/v1/auth/api-keys", headers=world.bearer(world.hatched_jwt))).json()
    key_ids = [k["id"] for k in keys.get("data", keys) if isinstance(k, dict) and "id" in k]
    assert key_ids, keys
    for key_id in key_ids:
        r = await c.delete(f"/api/v1/auth/api-keys/{key_id}", headers=world.bearer(world.hatched_jwt))
        assert r.status_code in (200, 204), r.text
    for method, path in await served(world):
        if (method, path) in PUBLIC or not (path.startswith("/v1/") or path.startswith("/api/v1/")):
            continue
        if path.startswith(("/v1/admin/", "/api/v1/auth/")) or path == "/v1/auth/revoke":
            continue  # app secret / dashboard JWT: not revoked here; revoking twice is idempotent
        await refused(world, method, path, valid_token(world, path), "revoked")


async def test_other_tenants_and_users_cannot_reach_each_others_data(world: World) -> None:
    c = world.client
    # QuestKit: a user token speaks for its user only; another app's token sees its own catalog.
    r = await c.post("/v1/events", json={"userId": "u2", "name": "app.opened", "payload": {}, "timestamp": 1},
                     headers=world.bearer(world.qk_token))
    assert r.status_code == 403 and r.json()["error"] == "user_mismatch", r.text
    beta = await c.post("/v1/auth/token", json={"appId": "beta", "appSecret": questkit_support.OTHER_SECRET,
                                                "userId": "u1"})
    r = await c.get("/v1/missions/f-eq", headers=world.bearer(beta.json()["token"]))
    assert r.status_code == 404, r.text
    r = await c.get("/v1/admin/catalog?appId=acme", headers=world.bearer(questkit_support.OTHER_SECRET))
    assert r.status_code in (401, 404) or "beta" in r.text and "acme" not in r.text, r.text
    # QuestMaster: session B's token on session A's path.
    r = await c.get("/agents/quest-master-agent/qm-s1", headers=world.bearer(world.qm_token("qm-s2")))
    assert r.status_code == 401, r.text
    # Hatched: customer B's key never sees customer A's egg.
    egg = await c.post("/api/v1/eggs", json={"user_id": "user_1"}, headers=world.bearer(world.hatched_key))
    assert egg.status_code in (201, 400, 409, 422), egg.text
    other = await c.post("/api/v1/auth/register", json={"email": "b@example.com", "password": "pw-b-123456",
                                                       "name": "B"})
    other_key = await c.post("/api/v1/auth/api-keys", json={"name": "b"},
                             headers=world.bearer(other.json()["access_token"]))
    if egg.status_code == 201:
        egg_id = egg.json()["egg_id"]
        r = await c.get(f"/api/v1/eggs/{egg_id}", headers=world.bearer(other_key.json()["key"]))
        assert r.status_code == 404, r.text
    r = await c.get("/api/v1/eggs", headers=world.bearer(other_key.json()["key"]))
    assert r.status_code == 200 and "user_1" not in r.text, r.text

