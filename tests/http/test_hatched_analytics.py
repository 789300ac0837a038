"""Analytics over HTTP: a known fixture built through the API gives exact figures; ranges
are validated (4xx envelope) and scope what is counted; only server credentials may read."""

from __future__ import annotations

import datetime as dt
from typing import Any

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
)

TODAY = dt.datetime.now(dt.UTC).date()
RANGE = {"from": (TODAY - dt.timedelta(days=1)).isoformat(), "to": TODAY.isoformat()}


@pytest.fixture(name="world")
async def world_fixture(client: httpx.AsyncClient, customer: Customer) -> dict[str, Any]:
    """Learning preset; buddies for u1 and u2; a lesson each (60 coins, 20 xp, first_lesson),
    an event no rule matches, and 10 coins spent by u1's buddy."""
    await publish_preset(client, customer, "learning")
    b1 = await hatch_buddy(client, customer, "u1")
    b2 = await hatch_buddy(client, customer, "u2")
    for event_id, user_id, kind in (("e1", "u1", "lesson_completed"), ("e2", "u2", "lesson_completed"),
                                    ("e3", "u1", "app_opened")):
        r = await client.post("/events", json={"event_id": event_id, "user_id": user_id, "type": kind},
                              headers=customer.auth)
        assert r.status_code == 200, r.text
    spent = await client.post(f"/buddies/{b1['buddy_id']}/coins/spend", json={"amount": 10}, headers=customer.auth)
    assert spent.status_code == 200, spent.text
    return {"b1": b1["buddy_id"], "b2": b2["buddy_id"]}


async def get(client: httpx.AsyncClient, customer: Customer, path: str, **params: Any) -> dict[str, Any]:
    r = await client.get(f"/analytics{path}", params={**RANGE, **params}, headers=customer.auth)
    assert r.status_code == 200, r.text
    return r.json()


async def test_known_fixture_gives_exact_figures(client: httpx.AsyncClient, customer: Customer,
                                                 world: dict[str, Any]) -> None:
    overview = await get(client, customer, "/overview")
    assert overview["range"] == {"from": f"{RANGE['from']}T00:00:00.000Z",
                                 "to": f"{(TODAY + dt.timedelta(days=1)).isoformat()}T00:00:00.000Z"}
    assert overview["buddies"] == {"total": 2, "active": 2, "archived": 0, "hatched_in_range": 2}
    assert overview["users"] == {"with_buddies": 2, "active_in_range": 2}
    assert overview["events"] == {"total": 3, "with_effects": 2, "types": 2}
    assert overview["economy"] == {"coins_earned": 120, "coins_spent": 10, "coins_in_circulation": 110}
    assert (overview["badges_awarded"], overview["evolutions"], overview["items_acquired"]) == (2, 0, 0)

    counts = await get(client, customer, "/event-counts")
    assert counts["total"] == 3 and counts["data"] == [
        {"type": "lesson_completed", "count": 2, "users": 2, "with_effects": 2},
        {"type": "app_opened", "count": 1, "users": 1, "with_effects": 0}]

    board = await get(client, customer, "", metric="coins")
    assert [(r["rank"], r["buddy_id"], r["value"]) for r in board["data"]] == [(1, world["b2"], 60),
                                                                               (2, world["b1"], 50)]
    earned = await get(client, customer, "")
    assert earned["metric"] == "coins_earned" and [(r["rank"], r["value"]) for r in earned["data"]] == [(1, 60),
                                                                                                      (1, 60)]

    economy = await get(client, customer, "/economy-summary")
    assert economy["coins"] == {"earned": 120, "spent": 10, "net": 110, "in_circulation": 110, "lifetime_earned": 120}
    assert economy["by_source"] == [{"source": "event", "earned": 120, "spent": 0},
                                    {"source": "manual", "earned": 0, "spent": 10}]
    tokens = await get(client, customer, "/tokens")
    assert tokens["tokens"] == [{"token_key": "xp", "earned": 40, "spent": 0, "net": 40, "in_circulation": 40,
                                 "holders": 2, "avg_balance_per_holder": 20.0}]
    health = await get(client, customer, "/economy-health")
    assert health["status"] == "inflationary" and health["spend_to_earn_ratio"] == round(10 / 120, 4)

    badges = await get(client, customer, "/popular-badges")
    assert badges["data"] == [{"badge_key": "first_lesson", "awarded_in_range": 2, "holders": 2, "holder_share": 1.0}]

    engagement = await get(client, customer, "/engagement")
    assert (engagement["active_users"], engagement["events"]) == (2, 3)
    assert [d["date"] for d in engagement["daily"]] == [RANGE["from"], RANGE["to"]]
    assert engagement["daily"][1] == {"date": RANGE["to"], "active_users": 2, "events": 3}

    activity = await get(client, customer, "/activity-summary")
    assert activity["totals"] == {"events": 3, "coins_earned": 120, "coins_spent": 10, "badges_awarded": 2,
                                  "evolutions": 0, "buddies_hatched": 2, "active_users": 2}

    trends = await get(client, customer, "/custom-events", types="app_opened")
    assert [(s["type"], s["total"], [d["count"] for d in s["daily"]]) for s in trends["data"]] == [
        ("app_opened", 1, [0, 1])]

    retention = await get(client, customer, "/retention")
    assert retention["cohorts"] == [{"cohort_date": RANGE["to"], "users": 2, "day_1": None, "day_7": None,
                                     "day_30": None}]

    streaks = await get(client, customer, "/streaks")
    assert [(s["streak_key"], s["buddies"], s["ongoing"], s["max_current"]) for s in streaks["streaks"]] == [
        ("daily_learning", 2, 2, 1)]
    assert streaks["events_in_range"]["started"] == 2

    funnel = await get(client, customer, "/marketplace-funnel")
    assert [s["buddies"] for s in funnel["stages"]] == [2, 0, 0] and funnel["purchases"] == 0
    assert (await get(client, customer, "/popular-items"))["data"] == []
    evolution = await get(client, customer, "/evolution")
    assert evolution["evolutions"] == 0 and evolution["stage_distribution"] == [{"stage": 1, "buddies": 2}]
    webhooks = await get(client, customer, "/webhooks")
    assert (webhooks["deliveries"], webhooks["success_rate"], webhooks["by_config"]) == (0, None, [])


async def test_the_range_scopes_the_figures(client: httpx.AsyncClient, customer: Customer,
                                            world: dict[str, Any]) -> None:
    last_year = {"from": (TODAY - dt.timedelta(days=400)).isoformat(),
                 "to": (TODAY - dt.timedelta(days=300)).isoformat()}
    overview = await get(client, customer, "/overview", **last_year)
    assert overview["events"]["total"] == 0 and overview["economy"]["coins_earned"] == 0
    assert overview["buddies"]["total"] == 2 and overview["buddies"]["hatched_in_range"] == 0
    now = dt.datetime.now(dt.UTC)
    recent = await get(client, customer, "/event-counts", **{
        "from": (now - dt.timedelta(hours=1)).isoformat(), "to": (now + dt.timedelta(minutes=1)).isoformat()})
    assert recent["total"] == 3


@pytest.mark.parametrize(("params", "code"), [
    ({"from": "yesterday"}, "validation_error"),
    ({"to": "2026-13-01"}, "validation_error"),
    ({"from": "1900-01-01", "to": "1900-02-01"}, "validation_error"),
    ({"from": "2026-04-10", "to": "2026-04-01"}, "invalid_date_range"),
    ({"from": "2026-04-01T10:00:00Z", "to": "2026-04-01T10:00:00Z"}, "invalid_date_range"),
    ({"from": "2024-01-01", "to": "2026-01-01"}, "invalid_date_range"),
])
async def test_bad_ranges_are_400s_in_the_envelope(client: httpx.AsyncClient, customer: Customer,
                                                   params: dict[str, str], code: str) -> None:
    for path in ("/analytics/overview", "/analytics", "/analytics/webhooks"):
        assert_error(await client.get(path, params=params, headers=customer.auth), 400, code)


async def test_bad_options_are_400s(client: httpx.AsyncClient, customer: Customer) -> None:
    assert_error(await client.get("/analytics", params={"metric": "karma"}, headers=customer.auth),
                 400, "validation_error")
    assert_error(await client.get("/analytics/popular-items", params={"limit": "0"}, headers=customer.auth),
                 400, "validation_error")
    assert_error(await client.get("/analytics/custom-events", params={"types": ",".join(f"t{i}" for i in range(21))},
                                  headers=customer.auth), 400, "validation_error")


async def test_only_server_credentials_read_analytics(client: httpx.AsyncClient, customer: Customer) -> None:
    assert_error(await client.get("/analytics/overview"), 401, "unauthorized")
    issued = await client.post("/auth/publishable-keys", json={"name": "widget"}, headers=customer.jwt)
    assert issued.status_code == 201, issued.text
    pk = {"Authorization": f"Bearer {issued.json()['key']}"}
    assert_error(await client.get("/analytics/overview", headers=pk), 403, "insufficient_permissions")
    assert (await client.get("/analytics/overview", headers=customer.jwt)).status_code == 200


async def test_customers_see_only_their_own_data(client: httpx.AsyncClient, customer: Customer,
                                                 world: dict[str, Any]) -> None:
    from tests.http.hatched_support import register

    other = await register(client)
    overview = (await client.get("/analytics/overview", params=RANGE, headers=other.auth)).json()
    assert overview["buddies"]["total"] == 0 and overview["events"]["total"] == 0
