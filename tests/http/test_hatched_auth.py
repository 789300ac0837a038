"""Customers and keys over HTTP: register/login/me, secret and publishable keys,
revocation and rotation taking effect at once, hashed storage."""

from __future__ import annotations

import re

import httpx
import jwt

from questline.actors.hatched_auth import keyindex_address
from questline.engine import Runtime
from tests.http.hatched_support import (  # noqa: F401 - fixtures
    Customer,
    assert_error,
    client_fixture,
    customer_fixture,
    register,
    runtime_fixture,
)

SECRET = re.compile(r"hatch_(live|test)_[0-9a-f]{16}_[0-9a-f]{48}")


async def test_register_login_me(client: httpx.AsyncClient) -> None:
    reg = await client.post("/auth/register", json={"email": "Ada@Example.com", "password": "correct horse"})
    assert reg.status_code == 201
    body = reg.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert body["customer"]["email"] == "ada@example.com"
    assert body["customer"]["active_config_version_id"] is None
    login = await client.post("/auth/login", json={"email": "ada@example.com", "password": "correct horse"})
    assert login.status_code == 200
    token = login.json()["access_token"]
    me = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["customer_id"] == body["customer"]["customer_id"]
    assert me.json()["auth"]["via"] == "dashboard"


async def test_duplicate_email_and_bad_password(client: httpx.AsyncClient, customer: Customer) -> None:
    dup = await client.post("/auth/register", json={"email": customer.email.upper(), "password": "another one"})
    assert_error(dup, 409, "email_already_registered")
    bad = await client.post("/auth/login", json={"email": customer.email, "password": "wrong password"})
    assert_error(bad, 401, "invalid_credentials")
    unknown = await client.post("/auth/login", json={"email": "nobody@example.com", "password": "whatever1"})
    assert_error(unknown, 401, "invalid_credentials")
    short = await client.post("/auth/register", json={"email": "x@example.com", "password": "short"})
    assert_error(short, 400, "validation_error")


async def test_bad_tokens(client: httpx.AsyncClient, customer: Customer) -> None:
    assert_error(await client.get("/auth/me"), 401, "unauthorized")
    assert_error(await client.get("/auth/me", headers={"Authorization": "Basic abc"}), 401, "unauthorized")
    assert_error(await client.get("/auth/me", headers={"Authorization": "Bearer nonsense"}), 401, "invalid_token")
    forged = jwt.encode({"sub": customer.customer_id, "typ": "dashboard", "exp": 9999999999}, "a-guessed-secret-that-is-long-enough-0123", algorithm="HS256")
    assert_error(await client.get("/auth/me", headers={"Authorization": f"Bearer {forged}"}), 401, "invalid_token")
    assert_error(await client.get("/auth/me", headers={"Authorization": "Bearer hatch_live_xyz"}), 401, "invalid_api_key")
    tampered = customer.key[:-1] + ("0" if customer.key[-1] != "0" else "1")
    assert_error(await client.get("/auth/me", headers={"Authorization": f"Bearer {tampered}"}), 401, "invalid_api_key")


async def test_secret_key_shown_once_and_stored_hashed(
    client: httpx.AsyncClient, customer: Customer, runtime: Runtime
) -> None:
    assert SECRET.fullmatch(customer.key)
    me = await client.get("/auth/me", headers=customer.auth)
    assert me.status_code == 200 and me.json()["auth"]["via"] == "secret"
    listed = (await client.get("/auth/api-keys", headers=customer.jwt)).json()["data"]
    assert len(listed) == 1
    assert "key" not in listed[0] and customer.key not in str(listed)
    assert customer.key.startswith(listed[0]["prefix"].rstrip("."))
    record = await runtime.call(keyindex_address(listed[0]["id"]), "lookup")
    assert customer.key not in str(record) and len(record["hash"]) == 64


async def test_test_environment_key(client: httpx.AsyncClient, customer: Customer) -> None:
    response = await client.post("/auth/api-keys", json={"environment": "test"}, headers=customer.jwt)
    assert response.status_code == 201
    key = response.json()["key"]
    assert key.startswith("hatch_test_")
    assert (await client.get("/auth/me", headers={"Authorization": f"Bearer {key}"})).status_code == 200
    bad = await client.post("/auth/api-keys", json={"environment": "prod"}, headers=customer.jwt)
    assert_error(bad, 400, "validation_error")


async def test_revoke_takes_effect_immediately(client: httpx.AsyncClient, customer: Customer) -> None:
    key_id = (await client.get("/auth/api-keys", headers=customer.jwt)).json()["data"][0]["id"]
    revoked = await client.delete(f"/auth/api-keys/{key_id}", headers=customer.jwt)
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert_error(await client.get("/auth/me", headers=customer.auth), 401, "invalid_api_key")
    assert (await client.get("/auth/api-keys", headers=customer.jwt)).json()["data"] == []
    assert_error(await client.delete(f"/auth/api-keys/{key_id}", headers=customer.jwt), 404, "api_key_not_found")


async def test_rotate_revokes_every_secret_key(client: httpx.AsyncClient, customer: Customer) -> None:
    second = (await client.post("/auth/api-keys", json={}, headers=customer.jwt)).json()["key"]
    rotated = await client.post("/auth/api-keys/rotate", json={"name": "rotated"}, headers=customer.auth)
    assert rotated.status_code == 201
    new_key = rotated.json()["key"]
    assert len(rotated.json()["revoked_key_ids"]) == 2
    for old in (customer.key, second):
        assert_error(await client.get("/auth/me", headers={"Authorization": f"Bearer {old}"}), 401, "invalid_api_key")
    assert (await client.get("/auth/me", headers={"Authorization": f"Bearer {new_key}"})).status_code == 200
    names = [k["name"] for k in (await client.get("/auth/api-keys", headers=customer.jwt)).json()["data"]]
    assert names == ["rotated"]


async def test_publishable_key_reads_only_its_scopes(client: httpx.AsyncClient, customer: Customer) -> None:
    created = await client.post(
        "/auth/publishable-keys", json={"permissions": ["config:read"]}, headers=customer.auth
    )
    assert created.status_code == 201
    pk = created.json()["key"]
    assert pk.startswith("hatch_pk_") and created.json()["permissions"] == ["config:read"]
    headers = {"Authorization": f"Bearer {pk}"}
    assert (await client.get("/presets", headers=headers)).status_code == 200
    assert (await client.get("/coin-rules", headers=headers)).status_code == 200
    assert_error(await client.post("/coin-rules", json={"name": "x", "event_type": "e"}, headers=headers),
                 403, "insufficient_permissions")
    assert_error(await client.post("/auth/api-keys", json={}, headers=headers), 403, "insufficient_permissions")
    assert_error(await client.get("/auth/api-keys", headers=headers), 403, "insufficient_permissions")
    other = await client.post("/auth/publishable-keys", json={"permissions": ["marketplace:read"]}, headers=customer.auth)
    other_headers = {"Authorization": f"Bearer {other.json()['key']}"}
    error = assert_error(await client.get("/presets", headers=other_headers), 403, "insufficient_permissions")
    assert error["details"] == {"required": "config:read"}
    bad = await client.post("/auth/publishable-keys", json={"permissions": ["coins:write"]}, headers=customer.auth)
    assert_error(bad, 400, "validation_error")


async def test_customers_are_isolated(client: httpx.AsyncClient, customer: Customer) -> None:
    other = await register(client)
    mine = (await client.get("/auth/api-keys", headers=customer.jwt)).json()["data"][0]["id"]
    assert_error(await client.delete(f"/auth/api-keys/{mine}", headers=other.jwt), 404, "api_key_not_found")
    assert (await client.get("/auth/me", headers=customer.auth)).status_code == 200
