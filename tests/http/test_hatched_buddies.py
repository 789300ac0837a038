"""Buddies over HTTP: canonical state, rename, one-way archive, coins with idempotency
and no overdraft under concurrency (both runtimes), the ledger, restarts mid-operation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from questline.http.hatched import HATCHED_ACTORS
from tests.conftest import RUNTIMES
from tests.http.hatched_support import (  # noqa: F401 - fixtures
    Customer,
    assert_error,
    client_fixture,
    client_for,
    customer_fixture,
    fast_operations_fixture,
    hatch_buddy,
    publish_preset,
    register,
    runtime_fixture,
    wait_operation,
)


async def earn(client: httpx.AsyncClient, customer: Customer, buddy_id: str, amount: int, **extra: Any) -> httpx.Response:
    return await client.post(f"/buddies/{buddy_id}/coins", json={"amount": amount, **extra}, headers=customer.auth)


async def spend(client: httpx.AsyncClient, customer: Customer, buddy_id: str, amount: int, **extra: Any) -> httpx.Response:
    return await client.post(f"/buddies/{buddy_id}/coins/spend", json={"amount": amount, **extra},
                             headers=customer.auth)


async def test_rename_list_and_one_way_archive(client: httpx.AsyncClient, customer: Customer) -> None:
    await publish_preset(client, customer)
    first = await hatch_buddy(client, customer, "alice")
    second = await hatch_buddy(client, customer, "alice")  # multi-buddy per user
    await hatch_buddy(client, customer, "bob")
    renamed = await client.patch(f"/buddies/{first['buddy_id']}", json={"name": "Pip"}, headers=customer.auth)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Pip"
    listed = (await client.get("/buddies", params={"user_id": "alice"}, headers=customer.auth)).json()
    assert listed["meta"]["total"] == 2
    assert {b["buddy_id"] for b in listed["data"]} == {first["buddy_id"], second["buddy_id"]}
    page = (await client.get("/buddies", params={"limit": 2, "page": 2}, headers=customer.auth)).json()
    assert page["meta"] == {"page": 2, "limit": 2, "total": 3} and len(page["data"]) == 1

    archived = await client.patch(f"/buddies/{first['buddy_id']}/archive", headers=customer.auth)
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    error = assert_error(await client.patch(f"/buddies/{first['buddy_id']}/archive", headers=customer.auth),
                         409, "invalid_state_transition")
    assert error["details"] == {"from": "archived", "to": "archived"}
    assert_error(await earn(client, customer, first["buddy_id"], 5), 409, "buddy_archived")
    assert_error(await client.patch(f"/buddies/{first['buddy_id']}", json={"name": "x"}, headers=customer.auth),
                 409, "buddy_archived")
    active = (await client.get("/buddies", params={"status": "active"}, headers=customer.auth)).json()
    assert first["buddy_id"] not in {b["buddy_id"] for b in active["data"]}
    assert_error(await client.get("/buddies/bdy_missing", headers=customer.auth), 404, "buddy_not_found")
    other = await register(client)
    assert_error(await client.get(f"/buddies/{second['buddy_id']}", headers=other.auth), 404, "buddy_not_found")


async def test_earn_spend_insufficient_and_ledger(client: httpx.AsyncClient, customer: Customer) -> None:
    await publish_preset(client, customer)
    buddy_id = (await hatch_buddy(client, customer))["buddy_id"]
    assert (await earn(client, customer, buddy_id, 30, reason="welcome")).json()["coins"] == 30
    assert (await spend(client, customer, buddy_id, 12)).json()["coins"] == 18
    error = assert_error(await spend(client, customer, buddy_id, 19), 422, "insufficient_funds")
    assert error["details"] == {"balance": 18, "requested": 19}
    assert (await client.get(f"/buddies/{buddy_id}", headers=customer.auth)).json()["coins"] == 18
    assert_error(await spend(client, customer, buddy_id, 0), 400, "validation_error")
    assert_error(await spend(client, customer, buddy_id, -5), 400, "validation_error")

    for _ in range(3):
        await earn(client, customer, buddy_id, 1)
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(f"/economy/buddies/{buddy_id}/ledger", params=params, headers=customer.auth)).json()
        rows += page["data"]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert [(r["type"], r["amount"], r["balance_after"]) for r in rows] == [
        ("credit", 1, 21), ("credit", 1, 20), ("credit", 1, 19), ("debit", 12, 18), ("credit", 30, 30)]
    assert rows[-1]["reason"] == "welcome" and rows[-1]["currency"] == "coins"
    assert_error(await client.get(f"/economy/buddies/{buddy_id}/ledger", params={"cursor": "zzz"},
                                  headers=customer.auth), 400, "invalid_cursor")


async def test_idempotency_keys(client: httpx.AsyncClient, customer: Customer) -> None:
    await publish_preset(client, customer)
    buddy_id = (await hatch_buddy(client, customer))["buddy_id"]
    first = await earn(client, customer, buddy_id, 10, idempotency_key="grant-1")
    again = await earn(client, customer, buddy_id, 10, idempotency_key="grant-1")
    assert first.json()["coins"] == 10 and again.json()["coins"] == 10 and again.json()["idempotent_replay"]
    assert again.json()["ledger_entry"] == first.json()["ledger_entry"]
    header = await client.post(f"/buddies/{buddy_id}/coins/spend", json={"amount": 4},
                               headers={**customer.auth, "Idempotency-Key": "spend-1"})
    replay = await client.post(f"/buddies/{buddy_id}/coins/spend", json={"amount": 4},
                               headers={**customer.auth, "Idempotency-Key": "spend-1"})
    assert header.json()["coins"] == 6 and replay.json()["coins"] == 6
    assert_error(await earn(client, customer, buddy_id, 11, idempotency_key="grant-1"), 409, "idempotency_key_reused")
    assert (await client.get(f"/buddies/{buddy_id}", headers=customer.auth)).json()["coins"] == 6


@pytest.mark.parametrize("runtime_name", RUNTIMES)
async def test_fifty_concurrent_spends_never_overdraw(make_runtime: Callable[..., Any], runtime_name: str) -> None:
    runtime = await make_runtime(runtime_name, actor_classes=list(HATCHED_ACTORS))
    async with client_for(runtime) as client:
        customer = await register(client)
        await publish_preset(client, customer)
        buddy_id = (await hatch_buddy(client, customer))["buddy_id"]
        await earn(client, customer, buddy_id, 100)
        results = await asyncio.gather(*(spend(client, customer, buddy_id, 7) for _ in range(50)))
        codes = [r.status_code for r in results]
        assert codes.count(200) == 14 and codes.count(422) == 36
        assert all(r.json()["error"]["code"] == "insufficient_funds" for r in results if r.status_code == 422)
        balances = sorted(r.json()["coins"] for r in results if r.status_code == 200)
        assert balances == list(range(2, 100, 7))
        assert (await client.get(f"/buddies/{buddy_id}", headers=customer.auth)).json()["coins"] == 2
        ledger = (await client.get(f"/economy/buddies/{buddy_id}/ledger", params={"limit": 100},
                                   headers=customer.auth)).json()["data"]
        assert len(ledger) == 15 and all(r["balance_after"] >= 0 for r in ledger)


async def test_hatch_survives_a_restart(make_runtime: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The operation is driven by the customer actor's alarm, which is durable."""
    monkeypatch.setenv("HATCHED_OP_PENDING_MS", "400")
    runtime = await make_runtime("local", actor_classes=list(HATCHED_ACTORS))
    async with client_for(runtime) as client:
        customer = await register(client)
        await publish_preset(client, customer)
        egg_id = (await client.post("/eggs", json={"user_id": "u"}, headers=customer.auth)).json()["egg_id"]
        await client.patch(f"/eggs/{egg_id}/status", json={"status": "ready"}, headers=customer.auth)
        op_id = (await client.post(f"/eggs/{egg_id}/hatch", headers=customer.auth)).json()["operation_id"]
    await runtime.stop()
    restarted = await make_runtime("local", actor_classes=list(HATCHED_ACTORS))
    async with client_for(restarted) as client:
        op = await wait_operation(client, customer, op_id)
        assert op["status"] == "completed"
        buddy = await client.get(f"/buddies/{op['result']['buddy_id']}", headers=customer.auth)
        assert buddy.status_code == 200


async def test_publish_impact_migrate_round_trip(client: httpx.AsyncClient, customer: Customer) -> None:
    v1 = await publish_preset(client, customer, "learning")
    buddy = await hatch_buddy(client, customer, "alice")
    v2 = await publish_preset(client, customer, "fitness")
    # Pinned: publishing v2 does not move the existing buddy.
    assert (await client.get(f"/buddies/{buddy['buddy_id']}", headers=customer.auth)).json()["config_version_id"] == v1
    newcomer = await hatch_buddy(client, customer, "bob")
    assert newcomer["config_version_id"] == v2
    impact = (await client.get(f"/config-versions/{v2}/impact", headers=customer.auth)).json()
    assert impact["existing_buddies"] == {"total": 2, "on_this_version": 1, "on_other_versions": 1}
    assert impact["migration_available"] is True
    assert_error(await client.post(f"/config-versions/{v1}/migrate-buddies", json={}, headers=customer.auth),
                 409, "config_version_not_published")
    migrated = await client.post(f"/config-versions/{v2}/migrate-buddies", json={}, headers=customer.auth)
    assert migrated.status_code == 200 and migrated.json()["buddy_ids"] == [buddy["buddy_id"]]
    assert (await client.get(f"/buddies/{buddy['buddy_id']}", headers=customer.auth)).json()["config_version_id"] == v2
    after = (await client.get(f"/config-versions/{v2}/impact", headers=customer.auth)).json()
    assert after["existing_buddies"]["on_other_versions"] == 0 and after["migration_available"] is False
    again = await client.post(f"/config-versions/{v2}/migrate-buddies", json={}, headers=customer.auth)
    assert again.json()["migrated"] == 0
    listed = (await client.get("/buddies", params={"config_version_id": v2}, headers=customer.auth)).json()
    assert listed["meta"]["total"] == 2
