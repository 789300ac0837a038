"""Shared fixtures of the Hatched HTTP tests: an app on a local runtime and a customer."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from questline.engine import Runtime
from questline.http import create_app
from questline.http.hatched import HATCHED_ACTORS, hatched_routes

API = "/api/v1"
REQUEST_ID = re.compile(r"req_[0-9a-f]{32}")
_emails = itertools.count()


def client_for(runtime: Runtime) -> httpx.AsyncClient:
    app = create_app(runtime, extra_routes=hatched_routes(), manage_runtime=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver" + API)


@pytest.fixture(name="runtime")
async def runtime_fixture(make_runtime: Callable[..., Any]) -> Runtime:
    return await make_runtime("local", actor_classes=list(HATCHED_ACTORS))


@pytest.fixture(name="client")
async def client_fixture(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(runtime) as c:
        yield c


@dataclass
class Customer:
    customer_id: str
    email: str
    token: str  # dashboard JWT
    key: str  # secret key

    @property
    def jwt(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def register(client: httpx.AsyncClient, email: str | None = None) -> Customer:
    email = email or f"owner{next(_emails)}@example.com"
    response = await client.post("/auth/register", json={"email": email, "password": "correct horse", "name": "Acme"})
    assert response.status_code == 201, response.text
    body = response.json()
    token = body["access_token"]
    key = await client.post("/auth/api-keys", json={"name": "server"}, headers={"Authorization": f"Bearer {token}"})
    assert key.status_code == 201, key.text
    return Customer(body["customer"]["customer_id"], email, token, key.json()["key"])


@pytest.fixture(name="customer")
async def customer_fixture(client: httpx.AsyncClient) -> Customer:
    return await register(client)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The envelope, the stable code and the request id (body and header agree)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert REQUEST_ID.fullmatch(error["requestId"]) or error["requestId"] == response.headers.get("x-request-id")
    assert response.headers["x-request-id"] == error["requestId"]
    return error
