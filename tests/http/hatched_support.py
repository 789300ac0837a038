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


@pytest.fixture(name="fast_operations", autouse=True)
def fast_operations_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """Operations spend a few ms in pending/processing instead of a human-visible second."""
    monkeypatch.setenv("HATCHED_OP_PENDING_MS", "10")
    monkeypatch.setenv("HATCHED_OP_PROCESSING_MS", "10")


async def publish_preset(client: httpx.AsyncClient, customer: Customer, preset: str = "learning") -> str:
    applied = await client.post("/customers/me/apply-preset", json={"preset_key": preset}, headers=customer.auth)
    assert applied.status_code == 200, applied.text
    version_id = applied.json()["id"]
    published = await client.post(f"/config-versions/{version_id}/publish", headers=customer.auth)
    assert published.status_code == 200, published.text
    return version_id


async def wait_operation(client: httpx.AsyncClient, customer: Customer, op_id: str, limit_s: float = 10.0) -> dict:
    """Poll like a client would until the operation is final."""
    import asyncio

    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        op = (await client.get(f"/operations/{op_id}", headers=customer.auth)).json()
        if op["status"] in ("completed", "failed", "cancelled"):
            return op
        assert asyncio.get_running_loop().time() < deadline, op
        await asyncio.sleep(0.01)


async def hatch_buddy(client: httpx.AsyncClient, customer: Customer, user_id: str = "user_1") -> dict:
    egg = await client.post("/eggs", json={"user_id": user_id}, headers=customer.auth)
    assert egg.status_code == 201, egg.text
    egg_id = egg.json()["egg_id"]
    ready = await client.patch(f"/eggs/{egg_id}/status", json={"status": "ready"}, headers=customer.auth)
    assert ready.status_code == 200, ready.text
    hatch = await client.post(f"/eggs/{egg_id}/hatch", headers=customer.auth)
    assert hatch.status_code == 202, hatch.text
    op = await wait_operation(client, customer, hatch.json()["operation_id"])
    assert op["status"] == "completed", op
    buddy = await client.get(f"/buddies/{op['result']['buddy_id']}", headers=customer.auth)
    assert buddy.status_code == 200
    return buddy.json()
