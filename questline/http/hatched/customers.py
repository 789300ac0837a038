"""Customers and auth routes: register, login, API keys (secret and publishable); the
``/auth/me`` and ``/customers/me`` routes live in :mod:`questline.http.hatched.customers_me`."""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from questline.actors.hatched_auth import account_address
from questline.actors.hatched_customer import customer_address
from questline.http.hatched import customers_me
from questline.http.hatched.auth import (
    DEFAULT_PUBLISHABLE_PERMISSIONS,
    PUBLISHABLE_PERMISSIONS,
    hash_password,
    issue_jwt,
    key_hash,
    key_prefix,
    mint_key,
    require_write,
    runtime_of,
    verify_password,
)
from questline.http.hatched.conventions import json, path_param, read_body
from questline.http.hatched.errors import endpoint
from questline.rules.hatched_errors import HatchedError
from questline.rules.hatched_models import Strict

Email = Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=200)]
KeyName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Permission = Literal["buddies:read", "badges:read", "marketplace:read", "config:read", "operations:read"]
assert set(Permission.__args__) == set(PUBLISHABLE_PERMISSIONS)  # type: ignore[attr-defined]


class RegisterBody(Strict, kw_only=True):
    email: Email
    password: Password
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=120)] | None = None


class LoginBody(Strict, kw_only=True):
    email: Email
    password: Annotated[str, msgspec.Meta(max_length=200)]


class ApiKeyBody(Strict, kw_only=True):
    name: KeyName = "Secret key"
    environment: Literal["live", "test"] = "live"


class PublishableKeyBody(Strict, kw_only=True):
    name: KeyName = "Publishable key"
    permissions: list[Permission] = msgspec.field(default_factory=lambda: list(DEFAULT_PUBLISHABLE_PERMISSIONS))


@endpoint
async def register(request: Request) -> Response:
    body = await read_body(request, RegisterBody)
    runtime = runtime_of(request)
    email = body.email.strip().lower()
    customer_id = "cus_" + secrets.token_hex(8)
    await runtime.call(account_address(email), "register", customer_id, await hash_password(body.password))
    profile = await runtime.call(customer_address(customer_id), "init", {"email": email, "name": body.name or email})
    return json({**await issue_jwt(request, customer_id, email), "customer": profile}, 201)


@endpoint
async def login(request: Request) -> Response:
    body = await read_body(request, LoginBody)
    runtime = runtime_of(request)
    email = body.email.strip().lower()
    account = await runtime.call(account_address(email), "get")
    if account is None or not await verify_password(body.password, account["password"]):
        raise HatchedError(401, "invalid_credentials", "Email or password is incorrect.")
    profile = await runtime.call(customer_address(account["customer_id"]), "profile")
    return json({**await issue_jwt(request, account["customer_id"], email), "customer": profile})


def _secret_key(environment: str, name: str) -> tuple[str, dict, dict]:
    key_id, key = mint_key("live" if environment == "live" else "test")
    meta = {"id": key_id, "name": name, "type": "secret", "environment": environment,
            "prefix": key_prefix(key), "permissions": ["*"]}
    return key, meta, {"hash": key_hash(key), "type": "secret", "environment": environment, "permissions": ["*"]}


@endpoint
async def create_api_key(request: Request) -> Response:
    principal = await require_write(request)
    body = await read_body(request, ApiKeyBody)
    key, meta, index = _secret_key(body.environment, body.name)
    index["customer_id"] = principal.customer_id
    view = await runtime_of(request).call(customer_address(principal.customer_id), "add_key", meta, index)
    return json({**view, "key": key}, 201)


@endpoint
async def list_api_keys(request: Request) -> Response:
    principal = await require_write(request)
    keys = await runtime_of(request).call(customer_address(principal.customer_id), "list_keys")
    return json({"data": keys})


@endpoint
async def revoke_api_key(request: Request) -> Response:
    principal = await require_write(request)
    view = await runtime_of(request).call(customer_address(principal.customer_id), "revoke_key", path_param(request, "id"))
    return json({**view, "revoked": True})


@endpoint
async def rotate_api_keys(request: Request) -> Response:
    principal = await require_write(request)
    body = await read_body(request, ApiKeyBody)
    key, meta, index = _secret_key(body.environment, body.name)
    index["customer_id"] = principal.customer_id
    view = await runtime_of(request).call(customer_address(principal.customer_id), "rotate_keys", meta, index)
    return json({**view, "key": key}, 201)


@endpoint
async def create_publishable_key(request: Request) -> Response:
    principal = await require_write(request)
    body = await read_body(request, PublishableKeyBody)
    key_id, key = mint_key("pk")
    permissions = sorted(set(body.permissions))
    meta = {"id": key_id, "name": body.name, "type": "publishable", "environment": "live",
            "prefix": key_prefix(key), "permissions": permissions}
    index = {"hash": key_hash(key), "type": "publishable", "customer_id": principal.customer_id,
             "permissions": permissions}
    view = await runtime_of(request).call(customer_address(principal.customer_id), "add_key", meta, index)
    return json({**view, "key": key}, 201)


def routes() -> list[BaseRoute]:
    return [
        Route("/auth/register", register, methods=["POST"]),
        Route("/auth/login", login, methods=["POST"]),
        Route("/auth/api-keys", list_api_keys, methods=["GET"]),
        Route("/auth/api-keys", create_api_key, methods=["POST"]),
        Route("/auth/api-keys/rotate", rotate_api_keys, methods=["POST"]),
        Route("/auth/api-keys/{id}", revoke_api_key, methods=["DELETE"]),
        Route("/auth/publishable-keys", create_publishable_key, methods=["POST"]),
        *customers_me.routes(),
    ]
