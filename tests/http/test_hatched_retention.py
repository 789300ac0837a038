"""Event log retention over HTTP: partition alarms prune events older than the
retention from ``GET /events`` and ``GET /events/:id``; a resend of a pruned event
stays a no-op (original effects, no second reward, no quota) until the dedupe
horizon, after which the id is forgotten; pruning survives a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from questline.actors.hatched_events import event_address
from questline.engine import Runtime
from questline.http.hatched import HATCHED_ACTORS
from tests.http.hatched_clock import (  # noqa: F401 - fixtures
    DAY_MS,
    ShiftedClock,
    client_fixture,
    clock_fixture,
    runtime_fixture,
)
from tests.http.hatched_support import (  # noqa: F401 - fixtures
    Customer,
    assert_error,
    client_for,
    customer_fixture,
    fast_operations_fixture,
    hatch_buddy,
    publish_preset,
    register,
)

_n = iter(range(1_000_000))


def ev() -> dict[str, Any]:
    return {"event_id": f"evt_r{next(_n)}", "user_id": "user_1", "type": "lesson_completed"}


async def eventually(check: Callable[[], Awaitable[bool]], limit_s: float = 10.0) -> None:
    """Alarms fire from the shard's alarm loop (it looks at least once a second)."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


async def listed(client: httpx.AsyncClient, customer: Customer) -> set[str]:
    page = await client.get("/events", params={"limit": 100}, headers=customer.auth)
    assert page.status_code == 200, page.text
    return {e["event_id"] for e in page.json()["data"]}


@pytest.fixture(name="short_retention", autouse=True)
def short_retention_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HATCHED_EVENT_RETENTION_DAYS", "1")
    monkeypatch.setenv("HATCHED_EVENT_DEDUPE_DAYS", "3")


async def test_pruned_events_leave_the_log_and_resends_stay_no_ops_until_the_dedupe_horizon(
    client: httpx.AsyncClient, customer: Customer, clock: ShiftedClock, runtime: Runtime
) -> None:
    await publish_preset(client, customer)
    buddy = await hatch_buddy(client, customer)
    old = [ev() for _ in range(3)]
    originals = []
    for body in old:
        answer = await client.post("/events", json=body, headers=customer.auth)
        assert answer.status_code == 200, answer.text
        originals.append(answer.json())
    assert originals[0]["effects"]["coins"] > 0
    clock.advance(DAY_MS // 2)
    recent = ev()
    assert (await client.post("/events", json=recent, headers=customer.auth)).status_code == 200
    assert await listed(client, customer) == {*(b["event_id"] for b in old), recent["event_id"]}

    clock.advance(DAY_MS // 2 + 60_000)  # the first three are now past the one-day retention

    async def only_recent_listed() -> bool:
        return await listed(client, customer) == {recent["event_id"]}

    await eventually(only_recent_listed)
    assert_error(await client.get(f"/events/{old[0]['event_id']}", headers=customer.auth), 404, "event_not_found")
    assert (await client.get(f"/events/{recent['event_id']}", headers=customer.auth)).status_code == 200

    coins = (await client.get(f"/buddies/{buddy['buddy_id']}", headers=customer.auth)).json()["coins"]
    used = (await client.get("/customers/me", headers=customer.auth)).json()["event_quota"]["used"]
    resend = await client.post("/events", json=old[0], headers=customer.auth)
    assert resend.status_code == 200, resend.text
    again = resend.json()
    assert again["duplicate"] is True and again["pruned"] is True
    assert again["effects"] == originals[0]["effects"] and again["received_at"] == originals[0]["received_at"]
    assert again["properties"] is None  # the tombstone keeps the outcome, not the payload
    assert (await client.get(f"/buddies/{buddy['buddy_id']}", headers=customer.auth)).json()["coins"] == coins
    assert (await client.get("/customers/me", headers=customer.auth)).json()["event_quota"]["used"] == used
    types = (await client.get("/events/types", headers=customer.auth)).json()["data"]
    assert [(t["type"], t["count"]) for t in types] == [("lesson_completed", 4)]  # totals are all-time

    clock.advance(3 * DAY_MS)  # past the dedupe horizon of every event sent
    address = event_address(customer.customer_id, old[0]["event_id"])

    async def forgotten() -> bool:
        state = await runtime.call(address, "retention")
        return state["retained"] == 0 and state["tombstones"] == 0

    async def nothing_listed() -> bool:  # every partition prunes on its own alarm
        return await listed(client, customer) == set()

    await eventually(forgotten)
    await eventually(nothing_listed)
    fresh = await client.post("/events", json=old[0], headers=customer.auth)
    assert fresh.status_code == 200 and fresh.json()["duplicate"] is False  # documented: the id was forgotten


async def test_pruning_is_driven_by_durable_alarms_across_a_restart(
    make_runtime: Callable[..., Any], clock: ShiftedClock
) -> None:
    first = await make_runtime("local", actor_classes=list(HATCHED_ACTORS), clock=clock)
    async with client_for(first) as client:
        customer = await register(client)
        bodies = [ev() for _ in range(4)]
        for body in bodies:
            assert (await client.post("/events", json=body, headers=customer.auth)).status_code == 200
        assert len(await listed(client, customer)) == 4
    await first.stop()

    clock.advance(2 * DAY_MS)
    second = await make_runtime("local", actor_classes=list(HATCHED_ACTORS), clock=clock)
    addresses = {event_address(customer.customer_id, b["event_id"]) for b in bodies}

    async def pruned_without_any_request() -> bool:  # reading the state does not prune; only alarms do
        states = [await second.call(a, "retention") for a in addresses]
        return all(s["retained"] == 0 and s["tombstones"] >= 1 for s in states)

    await eventually(pruned_without_any_request)
    async with client_for(second) as client:
        assert await listed(client, customer) == set()
        resend = await client.post("/events", json=bodies[0], headers=customer.auth)
        assert resend.json()["duplicate"] is True and resend.json()["pruned"] is True
