"""Events over HTTP: dedupe returns the original effects, batch partial failures, the
effects of each rule type, buddies pinned to their config version until migrated,
the event log (list/detail with "why none", types, active users) and the error
envelope with X-Request-Id on every error path of these routes."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from questline.actors.hatched_buddy import buddy_address
from questline.actors.hatched_events import EVENT_PARTITIONS, event_partition
from questline.engine import Runtime
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
)

_n = iter(range(1_000_000))


def today(hour: int = 10) -> str:
    """An ``occurred_at`` on today's UTC date (active-users windows are relative to now)."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(hour=min(hour, now.hour), minute=0, second=0, microsecond=0).isoformat().replace("+00:00", "Z")


def ev(type: str = "lesson_completed", user_id: str = "user_1", **extra: Any) -> dict[str, Any]:
    return {"event_id": f"evt_{next(_n)}", "user_id": user_id, "type": type, **extra}


async def post(client: httpx.AsyncClient, customer: Customer, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/events", json=body, headers=customer.auth)


async def send(client: httpx.AsyncClient, customer: Customer, body: dict[str, Any]) -> dict[str, Any]:
    response = await post(client, customer, body)
    assert response.status_code == 200, response.text
    return response.json()


async def buddy(client: httpx.AsyncClient, customer: Customer, buddy_id: str) -> dict[str, Any]:
    return (await client.get(f"/buddies/{buddy_id}", headers=customer.auth)).json()


@pytest.fixture(name="learning")
async def learning_fixture(client: httpx.AsyncClient, customer: Customer) -> dict[str, Any]:
    """A customer on the learning preset with one hatched buddy for user_1."""
    await publish_preset(client, customer, "learning")
    return await hatch_buddy(client, customer, "user_1")


# -- dedupe ---------------------------------------------------------------------------------
async def test_resend_is_a_no_op_returning_the_original_effects(
        client: httpx.AsyncClient, customer: Customer, learning: dict[str, Any]) -> None:
    body = ev(properties={"lesson_id": "l1"}, occurred_at="2026-04-08T10:30:00Z")
    first = await send(client, customer, body)
    assert first["accepted"] is True and first["duplicate"] is False and first["event_id"] == body["event_id"]
    effects = first["effects"]
    assert effects["coins"] == 60 and effects["badges_awarded"] == ["first_lesson"]
    assert effects["evolution_ready"] is False and effects["tokens"][0]["token_key"] == "xp"
    again = await send(client, customer, body)
    assert again["duplicate"] is True and again["effects"] == effects
    changed = await send(client, customer, {**body, "type": "quiz_passed", "properties": {"score": 100}})
    assert changed["duplicate"] is True and changed["type"] == "lesson_completed"  # the original, untouched
    state = await buddy(client, customer, learning["buddy_id"])
    assert state["coins"] == 60 and state["tokens"] == {"xp": 20}
    ledger = (await client.get(f"/economy/buddies/{learning['buddy_id']}/ledger", headers=customer.auth)).json()
    assert sorted((r["currency"], r["amount"], r["ref"]) for r in ledger["data"]) == sorted(
        [("coins", 10, body["event_id"]), ("coins", 50, body["event_id"]), ("xp", 20, body["event_id"])])


async def test_concurrent_resends_reward_once(client: httpx.AsyncClient, customer: Customer,
                                              learning: dict[str, Any]) -> None:
    body = ev()
    responses = await asyncio.gather(*(post(client, customer, body) for _ in range(20)))
    assert all(r.status_code == 200 for r in responses)
    assert sum(not r.json()["duplicate"] for r in responses) == 1
    assert {r.json()["effects"]["coins"] for r in responses} == {60}
    assert (await buddy(client, customer, learning["buddy_id"]))["coins"] == 60


@pytest.mark.parametrize("runtime_name", RUNTIMES)
async def test_dedupe_and_batch_on_both_runtimes(make_runtime: Callable[..., Any], runtime_name: str) -> None:
    """Ingestion crosses actors (events -> user -> buddies), which on Ray means shard hops."""
    runtime = await make_runtime(runtime_name, actor_classes=list(HATCHED_ACTORS))
    async with client_for(runtime) as client:
        customer = await register(client)
        await publish_preset(client, customer, "learning")
        bdy = await hatch_buddy(client, customer, "user_1")
        body = ev()
        responses = await asyncio.gather(*(post(client, customer, body) for _ in range(10)))
        assert sorted(r.json()["duplicate"] for r in responses) == [False] + [True] * 9
        batch = await client.post("/events/batch", json={"events": [ev(), body, {"event_id": "x"}]},
                                  headers=customer.auth)
        assert [i["status"] for i in batch.json()["data"]] == ["accepted", "duplicate", "rejected"]
        assert (await buddy(client, customer, bdy["buddy_id"]))["coins"] == 70


async def test_buddy_applies_an_event_id_once_even_if_asked_again(
        client: httpx.AsyncClient, customer: Customer, learning: dict[str, Any], runtime: Runtime) -> None:
    """If the events actor fails after the buddy's turn, its retry must not reward twice."""
    address = buddy_address(customer.customer_id, learning["buddy_id"])
    payload = {"event_id": "evt_retry", "type": "lesson_completed", "occurred_at": 1_775_600_000_000,
               "timezone": "UTC", "properties": {}}
    first = await runtime.call(address, "apply_event", payload)
    again = await runtime.call(address, "apply_event", payload)
    assert again == first and first["effects"]["coins"] == 60
    assert (await buddy(client, customer, learning["buddy_id"]))["coins"] == 60
    ledger = (await client.get(f"/economy/buddies/{learning['buddy_id']}/ledger", headers=customer.auth)).json()
    assert len([r for r in ledger["data"] if r["currency"] == "coins"]) == 2


async def test_event_ids_are_per_customer(client: httpx.AsyncClient, customer: Customer,
                                          learning: dict[str, Any]) -> None:
    other = await register(client)
    await publish_preset(client, other, "learning")
    await hatch_buddy(client, other, "user_1")
    body = ev()
    assert (await send(client, customer, body))["duplicate"] is False
    assert (await send(client, other, body))["duplicate"] is False


# -- effects of each rule type --------------------------------------------------------------------
async def test_coin_rule_types_and_daily_cap(client: httpx.AsyncClient, customer: Customer,
                                             learning: dict[str, Any]) -> None:
    at = "2026-04-08T10:00:00Z"
    coins = [(await send(client, customer, ev(occurred_at=at)))["effects"]["coins"] for _ in range(10)]
    # fixed 10 (+50 first_time once), daily_cap 100 for the fixed rule
    assert coins == [60, 10, 10, 10, 10, 10, 10, 10, 10, 10]
    capped = await send(client, customer, ev(occurred_at=at))
    assert capped["effects"]["coins"] == 0
    assert "daily_cap_reached" in {r["code"] for r in capped["buddies"][0]["skipped"]}
    assert (await send(client, customer, ev(occurred_at="2026-04-09T10:00:00Z")))["effects"]["coins"] == 10
    high = await send(client, customer, ev("quiz_passed", properties={"score": 92}))
    assert high["effects"]["coins"] == 15  # threshold
    low = await send(client, customer, ev("quiz_passed", properties={"score": 50}))
    assert low["effects"]["coins"] == 0
    assert {r["code"] for r in low["buddies"][0]["skipped"]} >= {"below_threshold"}


async def test_per_property_skills_tokens_streaks_badges_through_http(
        client: httpx.AsyncClient, customer: Customer) -> None:
    await publish_preset(client, customer, "fitness")
    bdy = await hatch_buddy(client, customer, "runner")
    run = await send(client, customer, ev("run_logged", "runner", properties={"km": 4.5}))
    assert run["effects"]["coins"] == 22  # 5 per km, floored
    assert [(s["skill_key"], s["delta"]) for s in run["effects"]["skills"]] == [("endurance", 3)]
    assert [(t["token_key"], t["amount"]) for t in run["effects"]["tokens"]] == [("xp", 10)]
    days = ["2026-04-01", "2026-04-02", "2026-04-03", "2026-04-04", "2026-04-05"]
    results = [await send(client, customer, ev("workout_logged", "runner", occurred_at=f"{d}T08:00:00Z"))
               for d in days]
    assert [r["effects"]["streaks"][0]["current"] for r in results] == [1, 2, 3, 4, 5]
    assert results[0]["effects"]["badges_awarded"] == ["first_workout"]
    assert results[4]["effects"]["badges_awarded"] == ["consistent"]  # streak reward badge at length 5
    assert results[4]["effects"]["coins"] == 15 + 30
    state = await buddy(client, customer, bdy["buddy_id"])
    assert state["skills"] == {"endurance": 3, "strength": 10}
    assert state["tokens"] == {"xp": 10, "energy": 10}
    assert set(state["badges"]) == {"first_workout", "consistent"}


async def test_streak_days_count_in_the_events_timezone(client: httpx.AsyncClient, customer: Customer,
                                                       learning: dict[str, Any]) -> None:
    # 20:00 and 23:00 in New York are one local day but two UTC days.
    first = await send(client, customer, ev(occurred_at="2026-04-08T20:00:00-04:00", timezone="America/New_York"))
    second = await send(client, customer, ev(occurred_at="2026-04-08T23:00:00-04:00", timezone="America/New_York"))
    assert first["effects"]["streaks"][0]["status"] == "started"
    assert second["effects"]["streaks"] == []
    assert "already_counted" in {r["code"] for r in second["buddies"][0]["skipped"]}


async def test_evolution_ready_and_multi_buddy_fan_out(client: httpx.AsyncClient, customer: Customer,
                                                      learning: dict[str, Any]) -> None:
    second = await hatch_buddy(client, customer, "user_1")
    result = await send(client, customer, ev(occurred_at="2026-04-01T10:00:00Z"))
    assert {b["buddy_id"] for b in result["buddies"]} == {learning["buddy_id"], second["buddy_id"]}
    assert result["effects"]["coins"] == 120  # both buddies
    only = await send(client, customer, ev(buddy_id=second["buddy_id"], occurred_at="2026-04-02T10:00:00Z"))
    assert [b["buddy_id"] for b in only["buddies"]] == [second["buddy_id"]]
    # Stage 2 of the learning preset: 100 coins earned, 5 events, the first_lesson badge.
    for day in range(3, 7):
        result = await send(client, customer, ev(buddy_id=second["buddy_id"], occurred_at=f"2026-04-0{day}T10:00:00Z"))
    assert result["effects"]["evolution_ready"] is True
    assert result["buddies"][0]["evolution"]["next_stage"] == 2
    assert (await send(client, customer, ev(buddy_id=learning["buddy_id"])))["effects"]["evolution_ready"] is False


# -- pinned config --------------------------------------------------------------------------------------
async def test_buddy_keeps_its_config_version_until_migrated(client: httpx.AsyncClient, customer: Customer,
                                                            learning: dict[str, Any]) -> None:
    v1 = learning["config_version_id"]
    await send(client, customer, ev())  # spend the first-time bonus
    rules = (await client.get("/coin-rules", headers=customer.auth)).json()
    rule = next(r for r in rules["data"] if r["id"] == "cr_lesson")
    update = {k: v for k, v in rule.items() if k != "id"} | {"amount": 25, "daily_cap": None}
    assert (await client.put("/coin-rules/cr_lesson", json=update, headers=customer.auth)).status_code == 200
    draft = (await client.get("/config-versions?status=draft", headers=customer.auth)).json()["data"][0]
    assert (await client.post(f"/config-versions/{draft['id']}/publish", headers=customer.auth)).status_code == 200
    newer = await hatch_buddy(client, customer, "user_2")
    assert newer["config_version_id"] == draft["id"]
    pinned = await send(client, customer, ev())
    assert pinned["effects"]["coins"] == 10 and pinned["buddies"][0]["config_version_id"] == v1
    assert (await send(client, customer, ev(user_id="user_2")))["effects"]["coins"] == 25 + 50
    migrated = await client.post(f"/config-versions/{draft['id']}/migrate-buddies", json={}, headers=customer.auth)
    assert migrated.status_code == 200, migrated.text
    after = await send(client, customer, ev())
    assert after["effects"]["coins"] == 25 and after["buddies"][0]["config_version_id"] == draft["id"]


# -- batch ------------------------------------------------------------------------------------------------
async def test_batch_partial_failures(client: httpx.AsyncClient, customer: Customer,
                                      learning: dict[str, Any]) -> None:
    seen = ev()
    await send(client, customer, seen)
    fresh = ev()
    events = [
        fresh,
        seen,  # resent
        {**ev(), "userId": "x"},  # camelCase
        {"event_id": "evt_no_user", "type": "lesson_completed"},
        ev(timezone="Mars/Olympus"),
        ev(occurred_at="2999-01-01T00:00:00Z"),
        ev(buddy_id="bdy_not_theirs"),
        fresh,  # repeated inside the batch
        ev(user_id="nobody"),
    ]
    response = await client.post("/events/batch", json={"events": events}, headers=customer.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [i["status"] for i in body["data"]] == [
        "accepted", "duplicate", "rejected", "rejected", "rejected", "rejected", "rejected", "duplicate", "accepted"]
    assert body["summary"] == {"total": 9, "accepted": 2, "duplicates": 2, "rejected": 5}
    data = body["data"]
    assert [i["index"] for i in data] == list(range(9))
    assert data[0]["result"]["effects"]["coins"] == 10
    assert data[7]["result"]["effects"] == data[0]["result"]["effects"] and data[7]["result"]["duplicate"]
    assert data[2]["error"]["code"] == "validation_error" and data[2]["error"]["message"] == (
        "property userId should not exist")
    assert data[3]["error"]["message"] == "property user_id is required" and data[3]["event_id"] is None
    assert data[4]["error"]["code"] == "validation_error" and "timezone" in data[4]["error"]["message"]
    assert "future" in data[5]["error"]["message"]
    assert data[6]["error"]["code"] == "buddy_not_found"
    assert data[8]["result"]["why_no_effects"][0]["code"] == "no_buddy"
    # rejected items were not recorded; accepted ones were
    assert_error(await client.get(f"/events/{events[4]['event_id']}", headers=customer.auth), 404,
                 "event_not_found")
    assert (await client.get(f"/events/{fresh['event_id']}", headers=customer.auth)).status_code == 200
    assert (await buddy(client, customer, learning["buddy_id"]))["coins"] == 70


@pytest.mark.parametrize(
    ("body", "code"),
    [({"events": []}, "validation_error"), ({"events": [ev()] * 101}, "validation_error"),
     ({"items": []}, "validation_error"), ({"events": "nope"}, "validation_error")],
)
async def test_batch_shape_errors_ingest_nothing(client: httpx.AsyncClient, customer: Customer,
                                                 body: dict[str, Any], code: str) -> None:
    assert_error(await client.post("/events/batch", json=body, headers=customer.auth), 400, code)
    assert (await client.get("/events", headers=customer.auth)).json()["data"] == []


# -- event log ---------------------------------------------------------------------------------------------
async def test_event_detail_explains_why_no_reward(client: httpx.AsyncClient, customer: Customer,
                                                   learning: dict[str, Any]) -> None:
    unknown = await send(client, customer, ev("page_viewed"))
    detail = (await client.get(f"/events/{unknown['event_id']}", headers=customer.auth)).json()
    assert detail["effects"]["coins"] == 0 and detail["why_no_effects"][0]["code"] == "no_matching_rule"
    assert "page_viewed" in detail["why_no_effects"][0]["message"]
    no_buddy = await send(client, customer, ev(user_id="stranger"))
    assert no_buddy["why_no_effects"][0]["code"] == "no_buddy"
    rewarded = await send(client, customer, ev())
    detail = (await client.get(f"/events/{rewarded['event_id']}", headers=customer.auth)).json()
    assert detail["why_no_effects"] is None and detail["effects"]["coins"] == 60
    await client.patch(f"/buddies/{learning['buddy_id']}/archive", headers=customer.auth)
    archived = await send(client, customer, ev())
    assert archived["why_no_effects"][0]["code"] == "buddy_archived"


async def test_list_paginates_across_partitions_and_filters(client: httpx.AsyncClient, customer: Customer,
                                                            learning: dict[str, Any]) -> None:
    sent = [await send(client, customer, ev(user_id="user_1" if i % 2 else "user_9")) for i in range(25)]
    assert len({event_partition(e["event_id"]) for e in sent}) > 1 and EVENT_PARTITIONS > 1
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/events", params=params, headers=customer.auth)).json()
        seen += [e["event_id"] for e in page["data"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [e["event_id"] for e in reversed(sent)]
    mine = (await client.get("/events", params={"user_id": "user_9", "limit": 100}, headers=customer.auth)).json()
    assert len(mine["data"]) == 13 and {e["user_id"] for e in mine["data"]} == {"user_9"}
    quiet = (await client.get("/events", params={"has_effects": "false"}, headers=customer.auth)).json()
    assert {e["user_id"] for e in quiet["data"]} == {"user_9"}  # no buddy, no effects
    by_buddy = (await client.get("/events", params={"buddy_id": learning["buddy_id"], "limit": 100},
                                 headers=customer.auth)).json()
    assert len(by_buddy["data"]) == 12


async def test_types_and_active_users(client: httpx.AsyncClient, customer: Customer,
                                      learning: dict[str, Any]) -> None:
    for user, kind, n in [("ann", "lesson_completed", 3), ("bob", "quiz_passed", 1), ("cy", "lesson_completed", 2)]:
        for _ in range(n):
            await send(client, customer, ev(kind, user, occurred_at=today()))
    await send(client, customer, ev("lesson_completed", "old", occurred_at="2020-01-01T00:00:00Z"))
    types = (await client.get("/events/types", headers=customer.auth)).json()
    assert [(t["type"], t["count"]) for t in types["data"]] == [("lesson_completed", 6), ("quiz_passed", 1)]
    assert types["meta"] == {"page": 1, "limit": 20, "total": 2}
    active = (await client.get("/events/active-users", params={"days": 7}, headers=customer.auth)).json()
    assert [(u["user_id"], u["event_count"]) for u in active["data"]] == [("ann", 3), ("cy", 2), ("bob", 1)]
    assert active["meta"]["total"] == 3 and active["window_days"] == 7


# -- errors ------------------------------------------------------------------------------------------------
async def test_error_envelope_and_request_id_on_every_error_path(client: httpx.AsyncClient,
                                                                 customer: Customer) -> None:
    pk = await client.post("/auth/publishable-keys", json={"permissions": ["buddies:read"]}, headers=customer.jwt)
    assert pk.status_code == 201, pk.text
    public = {"Authorization": f"Bearer {pk.json()['key']}"}
    cases: list[tuple[httpx.Response, int, str]] = [
        (await client.post("/events", json=ev()), 401, "unauthorized"),
        (await client.post("/events", json=ev(), headers={"Authorization": "Bearer hatch_live_nope"}), 401,
         "invalid_api_key"),
        (await client.post("/events", json=ev(), headers=public), 403, "insufficient_permissions"),
        (await client.post("/events", json={**ev(), "eventId": "x"}, headers=customer.auth), 400,
         "validation_error"),
        (await client.post("/events", content=b"{nope", headers=customer.auth), 400, "invalid_json"),
        (await client.post("/events", json=ev(occurred_at="yesterday"), headers=customer.auth), 400,
         "validation_error"),
        (await client.post("/events", json=ev(properties=[1]), headers=customer.auth), 400, "validation_error"),
        (await client.post("/events", json=ev(buddy_id="bdy_x"), headers=customer.auth), 404, "buddy_not_found"),
        (await client.post("/events/batch", json={"events": [ev()]}), 401, "unauthorized"),
        (await client.post("/events/batch", content=b'{"events": [', headers=customer.auth), 400, "invalid_json"),
        (await client.get("/events", headers=public), 403, "insufficient_permissions"),
        (await client.get("/events", params={"cursor": "%%%"}, headers=customer.auth), 400, "invalid_cursor"),
        (await client.get("/events", params={"cursor": "WzFd"}, headers=customer.auth), 400, "invalid_cursor"),
        (await client.get("/events", params={"limit": 0}, headers=customer.auth), 400, "validation_error"),
        (await client.get("/events", params={"has_effects": "maybe"}, headers=customer.auth), 400,
         "validation_error"),
        (await client.get("/events/evt_missing", headers=customer.auth), 404, "event_not_found"),
        (await client.get("/events/evt_missing"), 401, "unauthorized"),
        (await client.get("/events/types"), 401, "unauthorized"),
        (await client.get("/events/types", params={"page": 0}, headers=customer.auth), 400, "validation_error"),
        (await client.get("/events/active-users", params={"days": 91}, headers=customer.auth), 400,
         "validation_error"),
        (await client.get("/events/active-users"), 401, "unauthorized"),
        (await client.delete("/events", headers=customer.auth), 405, "method_not_allowed"),
        (await client.put("/events/batch", headers=customer.auth), 405, "method_not_allowed"),
    ]
    for response, status, code in cases:
        assert_error(response, status, code)
    bad = await client.post("/events", json={**ev(), "userId": "x"}, headers=customer.auth)
    assert assert_error(bad, 400, "validation_error")["message"] == "property userId should not exist"
    assert (await client.get("/events", headers=customer.auth)).json() == {"data": [], "nextCursor": None}
