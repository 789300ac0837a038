"""Eggs and operations over HTTP: every allowed and forbidden transition, the documented
409 details, ensure=true, hatch driven by alarms to a real buddy with procedural art."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.http.hatched_support import (  # noqa: F401 - fixtures
    Customer,
    assert_error,
    client_fixture,
    customer_fixture,
    fast_operations_fixture,
    hatch_buddy,
    publish_preset,
    runtime_fixture,
    wait_operation,
)


async def new_egg(client: httpx.AsyncClient, customer: Customer, user_id: str = "u1", **query: str) -> httpx.Response:
    return await client.post("/eggs", params=query, json={"user_id": user_id, "metadata": {"age": 12}},
                             headers=customer.auth)


async def set_status(client: httpx.AsyncClient, customer: Customer, egg_id: str, status: str) -> httpx.Response:
    return await client.patch(f"/eggs/{egg_id}/status", json={"status": status}, headers=customer.auth)


async def test_no_published_config(client: httpx.AsyncClient, customer: Customer) -> None:
    error = assert_error(await new_egg(client, customer), 409, "no_published_config")
    assert error["details"]["publish_url"].endswith("/config-versions")


async def test_create_egg_shape(client: httpx.AsyncClient, customer: Customer) -> None:
    version_id = await publish_preset(client, customer)
    response = await new_egg(client, customer)
    assert response.status_code == 201
    egg = response.json()
    assert set(egg) == {"egg_id", "status", "visual_variant", "config_version_id", "user_id", "buddy_id",
                        "metadata", "created_at"}
    assert egg["status"] == "waiting" and egg["buddy_id"] is None and egg["config_version_id"] == version_id
    assert egg["metadata"] == {"age": 12} and 0 <= egg["visual_variant"] < 12
    assert (await client.get(f"/eggs/{egg['egg_id']}", headers=customer.auth)).json() == egg
    camel = await client.post("/eggs", json={"userId": "u1"}, headers=customer.auth)
    assert assert_error(camel, 400, "validation_error")["message"] == "property userId should not exist"


async def test_active_egg_limit_and_ensure(client: httpx.AsyncClient, customer: Customer) -> None:
    await publish_preset(client, customer)
    ids = [(await new_egg(client, customer)).json()["egg_id"] for _ in range(3)]
    error = assert_error(await new_egg(client, customer), 409, "active_egg_limit")
    assert error["details"]["max"] == 3
    assert sorted(e["egg_id"] for e in error["details"]["active"]) == sorted(ids)
    assert set(error["details"]["active"][0]) == {"egg_id", "status", "created_at"}
    ensured = await new_egg(client, customer, ensure="true")
    assert ensured.status_code == 200 and ensured.json()["egg_id"] in ids
    assert (await new_egg(client, customer, user_id="someone_else")).status_code == 201
    await set_status(client, customer, ids[0], "cancelled")
    assert (await new_egg(client, customer)).status_code == 201
    listed = (await client.get("/eggs", params={"user_id": "u1", "status": "cancelled"}, headers=customer.auth)).json()
    assert [e["egg_id"] for e in listed["data"]] == [ids[0]] and listed["meta"]["total"] == 1


ALLOWED = {("waiting", "ready"), ("waiting", "cancelled"), ("ready", "cancelled")}


@pytest.mark.parametrize("start", ["waiting", "ready", "cancelled", "hatched"])
@pytest.mark.parametrize("target", ["ready", "cancelled"])
async def test_status_transitions(client: httpx.AsyncClient, customer: Customer, start: str, target: str) -> None:
    await publish_preset(client, customer)
    egg_id = (await new_egg(client, customer)).json()["egg_id"]
    if start in ("ready", "hatched"):
        assert (await set_status(client, customer, egg_id, "ready")).status_code == 200
    if start == "cancelled":
        assert (await set_status(client, customer, egg_id, "cancelled")).status_code == 200
    if start == "hatched":
        op_id = (await client.post(f"/eggs/{egg_id}/hatch", headers=customer.auth)).json()["operation_id"]
        assert (await wait_operation(client, customer, op_id))["status"] == "completed"
    response = await set_status(client, customer, egg_id, target)
    if (start, target) in ALLOWED:
        assert response.status_code == 200 and response.json()["status"] == target
    else:
        error = assert_error(response, 409, "invalid_state_transition")
        assert error["details"] == {"from": start, "to": target}
        assert (await client.get(f"/eggs/{egg_id}", headers=customer.auth)).json()["status"] == start


async def test_status_body_only_allows_ready_or_cancelled(client: httpx.AsyncClient, customer: Customer) -> None:
    await publish_preset(client, customer)
    egg_id = (await new_egg(client, customer)).json()["egg_id"]
    assert_error(await set_status(client, customer, egg_id, "hatched"), 400, "validation_error")
    assert_error(await set_status(client, customer, "egg_nope", "ready"), 404, "egg_not_found")


async def test_hatch_only_from_ready(client: httpx.AsyncClient, customer: Customer) -> None:
    await publish_preset(client, customer)
    egg_id = (await new_egg(client, customer)).json()["egg_id"]
    error = assert_error(await client.post(f"/eggs/{egg_id}/hatch", headers=customer.auth), 409,
                         "invalid_state_transition")
    assert error["details"] == {"from": "waiting", "to": "hatching"}


async def test_hatch_runs_pending_processing_completed(client: httpx.AsyncClient, customer: Customer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HATCHED_OP_PENDING_MS", "150")
    monkeypatch.setenv("HATCHED_OP_PROCESSING_MS", "150")
    version_id = await publish_preset(client, customer)
    egg_id = (await new_egg(client, customer)).json()["egg_id"]
    await set_status(client, customer, egg_id, "ready")
    hatch = await client.post(f"/eggs/{egg_id}/hatch", headers=customer.auth)
    assert hatch.json() == {"accepted": True, "operation_id": hatch.json()["operation_id"], "status": "pending"}
    op_id = hatch.json()["operation_id"]
    assert (await client.get(f"/eggs/{egg_id}", headers=customer.auth)).json()["status"] == "hatching"
    seen = set()
    for _ in range(400):
        op = (await client.get(f"/operations/{op_id}", headers=customer.auth)).json()
        seen.add(op["status"])
        if op["status"] == "completed":
            break
        await asyncio.sleep(0.01)
    assert seen >= {"pending", "processing", "completed"}
    buddy_id = op["result"]["buddy_id"]
    egg = (await client.get(f"/eggs/{egg_id}", headers=customer.auth)).json()
    assert egg["status"] == "hatched" and egg["buddy_id"] == buddy_id
    buddy = (await client.get(f"/buddies/{buddy_id}", headers=customer.auth)).json()
    assert buddy["config_version_id"] == version_id and buddy["user_id"] == "u1" and buddy["status"] == "active"
    art = await client.get(op["result"]["image_url"].removeprefix("/api/v1"), headers=customer.auth)
    assert art.status_code == 200 and art.headers["content-type"].startswith("image/svg+xml")
    assert art.text.startswith("<svg") and art.text == (await client.get(f"/buddies/{buddy_id}/art.svg",
                                                                         headers=customer.auth)).text
    ops = (await client.get("/operations", params={"type": "hatch", "status": "completed"}, headers=customer.auth))
    assert [o["operation_id"] for o in ops.json()["data"]] == [op_id]
    assert_error(await client.post(f"/operations/{op_id}/cancel", headers=customer.auth), 409,
                 "invalid_state_transition")


async def test_cancel_pending_hatch_returns_egg_to_ready(client: httpx.AsyncClient, customer: Customer,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HATCHED_OP_PENDING_MS", "60000")
    await publish_preset(client, customer)
    egg_id = (await new_egg(client, customer)).json()["egg_id"]
    await set_status(client, customer, egg_id, "ready")
    op_id = (await client.post(f"/eggs/{egg_id}/hatch", headers=customer.auth)).json()["operation_id"]
    cancelled = await client.post(f"/operations/{op_id}/cancel", headers=customer.auth)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (await client.get(f"/eggs/{egg_id}", headers=customer.auth)).json()["status"] == "ready"
    error = assert_error(await client.post(f"/operations/{op_id}/cancel", headers=customer.auth), 409,
                         "invalid_state_transition")
    assert error["details"] == {"from": "cancelled", "to": "cancelled"}
    assert_error(await client.get("/operations/op_missing", headers=customer.auth), 404, "operation_not_found")


async def test_eggs_are_isolated_between_customers(client: httpx.AsyncClient, customer: Customer) -> None:
    from tests.http.hatched_support import register

    await publish_preset(client, customer)
    egg_id = (await new_egg(client, customer)).json()["egg_id"]
    other = await register(client)
    assert_error(await client.get(f"/eggs/{egg_id}", headers=other.auth), 404, "egg_not_found")
