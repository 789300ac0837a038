"""Hatched conventions over HTTP: the error envelope on every error path, request ids,
strict snake_case bodies with the documented unknown-property message, pagination."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request
from starlette.routing import Route

from questline.engine import Runtime
from questline.http.hatched.conventions import decode_body, paginate_cursor, validation_message
from questline.http.hatched.errors import endpoint
from questline.rules.hatched_errors import HatchedError
from questline.rules.hatched_models import SkillSet
from tests.http.hatched_support import (  # noqa: F401 - fixtures
    Customer,
    assert_error,
    client_fixture,
    customer_fixture,
    runtime_fixture,
)


async def test_unknown_route_and_wrong_method_use_the_envelope(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/no-such-thing"), 404, "not_found")
    error = assert_error(await client.delete("/auth/login"), 405, "method_not_allowed")
    assert "POST" in error["details"]["allowed"]


async def test_request_id_is_echoed_in_header_and_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth/me", headers={"X-Request-Id": "support-1234"})
    error = assert_error(response, 401, "unauthorized")
    assert error["requestId"] == "support-1234"


async def test_request_id_header_on_success(client: httpx.AsyncClient, customer: Customer) -> None:
    response = await client.get("/auth/me", headers=customer.auth)
    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_")


async def test_camel_case_property_is_rejected_with_documented_message(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register", json={"email": "a@example.com", "password": "long enough", "companyName": "x"}
    )
    error = assert_error(response, 400, "validation_error")
    assert error["message"] == "property companyName should not exist"
    assert error["details"]["errors"] == ["property companyName should not exist"]


async def test_nested_camel_case_is_rejected_and_nothing_changes(
    client: httpx.AsyncClient, customer: Customer
) -> None:
    body = {"key": "mind", "name": "Mind", "skills": [{"key": "focus", "name": "Focus", "maxLevel": 5}]}
    error = assert_error(await client.post("/skill-sets", json=body, headers=customer.auth), 400, "validation_error")
    assert error["message"] == "property skills.0.maxLevel should not exist"
    listed = await client.get("/skill-sets", headers=customer.auth)
    assert listed.json()["data"] == []


async def test_invalid_json_and_wrong_types(client: httpx.AsyncClient) -> None:
    bad = await client.post("/auth/login", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(bad, 400, "invalid_json")
    wrong = await client.post("/auth/login", json={"email": 5, "password": "x"})
    error = assert_error(wrong, 400, "validation_error")
    assert "email" in error["message"]
    missing = await client.post("/auth/login", json={"password": "x"})
    assert assert_error(missing, 400, "validation_error")["message"] == "property email is required"


async def test_unhandled_exception_is_an_opaque_500_envelope(runtime: Runtime) -> None:
    from questline.http import create_app
    from questline.http.hatched import hatched_routes

    @endpoint
    async def boom(request: Request) -> None:
        raise RuntimeError("secret detail")

    routes = hatched_routes()
    routes[0].app.app.routes.append(Route("/boom", boom))  # type: ignore[attr-defined]
    app = create_app(runtime, extra_routes=routes, manage_runtime=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/api/v1/boom")
    error = assert_error(response, 500, "internal_error")
    assert "secret" not in response.text
    assert error["message"] == "An internal error occurred."


async def test_bad_pagination_query_is_a_400(client: httpx.AsyncClient, customer: Customer) -> None:
    response = await client.get("/config-versions?limit=1000", headers=customer.auth)
    assert_error(response, 400, "validation_error")
    response = await client.get("/config-versions?page=zero", headers=customer.auth)
    assert_error(response, 400, "validation_error")


def test_validation_messages() -> None:
    assert validation_message("Object contains unknown field `userId`") == "property userId should not exist"
    assert validation_message("Expected `int`, got `str` - at `$.a[2].b`") == "property a.2.b: Expected `int`, got `str`"
    with pytest.raises(HatchedError) as info:
        decode_body(b'{"key": "Bad Key", "name": "x"}', SkillSet)
    assert info.value.status == 400 and "key" in info.value.message


def test_cursor_pagination_walks_every_item_once() -> None:
    items = [{"id": f"i{n:02d}", "at": n // 3} for n in range(25)]

    class FakeRequest:
        def __init__(self, query: dict[str, str]) -> None:
            self.query_params = query

    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = {"limit": "7"} | ({"cursor": cursor} if cursor else {})
        page = paginate_cursor(items, FakeRequest(query), lambda i: [i["at"], i["id"]])  # type: ignore[arg-type]
        seen += [i["id"] for i in page["data"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(i["id"] for i in items) and len(seen) == len(set(seen))
    bad = FakeRequest({"cursor": "!!!"})
    with pytest.raises(HatchedError):
        paginate_cursor(items, bad, lambda i: [i["at"], i["id"]])  # type: ignore[arg-type]
