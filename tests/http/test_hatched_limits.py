"""Per-key rate limits and the monthly event quota over HTTP.

Rate limits: ``X-RateLimit-*`` on every authenticated answer (success and error,
never on an unauthenticated one), 429 ``rate_limited`` with ``Retry-After`` past
the limit, recovery once the window slides, one window per API key / dashboard
login. Quota: 402 ``event_quota_exceeded`` past the plan's monthly quota, batch
items failing one by one, resends free, exact under concurrency, refunds for
events that fail, and a new month starting from zero.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

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
    customer_fixture,
    fast_operations_fixture,
    register,
)

_n = iter(range(1_000_000))


def ev(**extra: Any) -> dict[str, Any]:
    return {"event_id": f"evt_{next(_n)}", "user_id": "user_1", "type": "lesson_completed", **extra}


def rate(response: httpx.Response) -> tuple[int, int, int]:
    h = response.headers
    return int(h["x-ratelimit-limit"]), int(h["x-ratelimit-remaining"]), int(h["x-ratelimit-reset"])


async def new_key(client: httpx.AsyncClient, customer: Customer, path: str = "/auth/api-keys") -> dict[str, str]:
    made = await client.post(path, json={}, headers=customer.jwt)
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['key']}"}


# -- rate limits ------------------------------------------------------------------------------
async def test_headers_on_success_and_on_every_error_path(client: httpx.AsyncClient, customer: Customer) -> None:
    ok = await client.get("/auth/me", headers=customer.auth)
    assert ok.status_code == 200
    limit, remaining, reset = rate(ok)
    assert limit == 100 and remaining == 99 and reset == 1  # free plan: 100 per 1 s window
    invalid = await client.post("/events", json={"userId": "u"}, headers=customer.auth)
    assert_error(invalid, 400, "validation_error")
    assert rate(invalid)[1] == 98
    missing = await client.get("/events/nope", headers=customer.auth)
    assert_error(missing, 404, "event_not_found")
    assert rate(missing)[1] == 97
    publishable = await new_key(client, customer, "/auth/publishable-keys")
    forbidden = await client.post("/events", json=ev(), headers=publishable)
    assert_error(forbidden, 403, "insufficient_permissions")
    assert rate(forbidden)[:2] == (100, 99)  # the publishable key has its own window
    for anonymous in (await client.get("/auth/me"),
                      await client.get("/auth/me", headers={"Authorization": "Bearer hatch_live_nope"})):
        assert_error(anonymous, 401, anonymous.json()["error"]["code"])
        assert "x-ratelimit-limit" not in anonymous.headers  # nobody to count it against


async def test_429_past_the_limit_then_recovery_after_the_window(
    client: httpx.AsyncClient, customer: Customer, clock: ShiftedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HATCHED_RATE_LIMIT_FREE", "3")
    monkeypatch.setenv("HATCHED_RATE_WINDOW_MS", "60000")
    seen = [rate(await client.get("/auth/me", headers=customer.auth)) for _ in range(3)]
    assert [r[:2] for r in seen] == [(3, 2), (3, 1), (3, 0)]
    assert all(1 <= r[2] <= 60 for r in seen)
    for _ in range(5):  # refused requests are not recorded: hammering does not extend the ban
        refused = await client.post("/events", json=ev(), headers=customer.auth)
        error = assert_error(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert error["details"]["retry_after_seconds"] == int(refused.headers["retry-after"])
        assert rate(refused)[:2] == (3, 0)
    # nothing refused was ingested
    clock.advance(60_001)
    again = await client.get("/events", headers=customer.auth)
    assert again.status_code == 200 and again.json()["data"] == []
    assert rate(again)[:2] == (3, 2)


async def test_each_key_has_its_own_window(
    client: httpx.AsyncClient, customer: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_key = await new_key(client, customer)
    other_customer = await register(client)
    monkeypatch.setenv("HATCHED_RATE_LIMIT_FREE", "4")
    monkeypatch.setenv("HATCHED_RATE_WINDOW_MS", "60000")
    for _ in range(4):
        assert (await client.get("/auth/me", headers=customer.auth)).status_code == 200
    assert_error(await client.get("/auth/me", headers=customer.auth), 429, "rate_limited")
    # key A's exhaustion limits neither the same customer's key B, nor its dashboard login
    # (which created two keys within this window), nor another customer
    for headers, remaining in ((other_key, 3), (customer.jwt, 1), (other_customer.auth, 3)):
        answer = await client.get("/auth/me", headers=headers)
        assert answer.status_code == 200, answer.text
        assert rate(answer)[:2] == (4, remaining)
    assert_error(await client.get("/auth/me", headers=customer.auth), 429, "rate_limited")


async def test_zero_means_unlimited_and_sends_no_headers(
    client: httpx.AsyncClient, customer: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HATCHED_RATE_LIMIT_FREE", "0")
    answer = await client.get("/auth/me", headers=customer.auth)
    assert answer.status_code == 200 and "x-ratelimit-limit" not in answer.headers
    assert answer.json()["rate_limit"]["limit"] is None


# -- event quota -----------------------------------------------------------------------------
async def usage(client: httpx.AsyncClient, customer: Customer) -> dict[str, Any]:
    return (await client.get("/customers/me", headers=customer.auth)).json()["event_quota"]


async def test_402_at_the_quota_and_resends_are_free(
    client: httpx.AsyncClient, customer: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HATCHED_EVENT_QUOTA_FREE", "3")
    sent = [ev() for _ in range(3)]
    for body in sent:
        assert (await client.post("/events", json=body, headers=customer.auth)).status_code == 200
    resend = await client.post("/events", json=sent[0], headers=customer.auth)
    assert resend.status_code == 200 and resend.json()["duplicate"] is True
    over = ev()
    refused = await client.post("/events", json=over, headers=customer.auth)
    error = assert_error(refused, 402, "event_quota_exceeded")
    details = error["details"]
    assert details["limit"] == 3 and details["used"] == 3
    assert details["reset_at"].endswith("-01T00:00:00Z") and details["upgrade_url"].endswith("/billing")
    assert rate(refused)[0] == 100  # billing errors carry the rate headers too
    assert_error(await client.get(f"/events/{over['event_id']}", headers=customer.auth), 404, "event_not_found")
    quota = await usage(client, customer)
    assert (quota["limit"], quota["used"], quota["remaining"]) == (3, 3, 0)
    assert quota["period"] == details["period"]
    # still free once refused: the resend of an accepted event
    assert (await client.post("/events", json=sent[1], headers=customer.auth)).json()["duplicate"] is True


async def test_batch_items_past_the_quota_fail_individually(
    client: httpx.AsyncClient, customer: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HATCHED_EVENT_QUOTA_FREE", "5")
    first, second = ev(), ev()
    for body in (first, second):
        assert (await client.post("/events", json=body, headers=customer.auth)).status_code == 200
    fresh = [ev() for _ in range(5)]
    batch = [first, *fresh, {"event_id": "bad", "userId": "u"}, second]
    answer = await client.post("/events/batch", json={"events": batch}, headers=customer.auth)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["summary"] == {"total": 8, "accepted": 3, "duplicates": 2, "rejected": 3}
    items = body["data"]
    assert items[0]["status"] == items[7]["status"] == "duplicate"
    assert items[6]["error"]["code"] == "validation_error"
    over = [i for i in items[1:6] if i["status"] == "rejected"]
    assert len(over) == 2 and all(i["error"]["code"] == "event_quota_exceeded" for i in over)
    assert all(i["error"]["details"]["used"] == 5 for i in over)
    for item in items[1:6]:  # accepted ones are in the log, refused ones are not
        found = await client.get(f"/events/{item['event_id']}", headers=customer.auth)
        assert found.status_code == (200 if item["status"] == "accepted" else 404)
    assert (await usage(client, customer))["used"] == 5


async def test_quota_is_exact_under_concurrency(
    client: httpx.AsyncClient, customer: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HATCHED_EVENT_QUOTA_FREE", "10")
    same = ev()
    bodies = [ev() for _ in range(25)] + [same] * 15
    answers = await asyncio.gather(*(client.post("/events", json=b, headers=customer.auth) for b in bodies))
    codes = [a.status_code for a in answers]
    assert codes.count(200) + codes.count(402) == len(bodies)
    new_accepted = {a.json()["event_id"] for a in answers if a.status_code == 200}
    assert len(new_accepted) == 10  # the repeated id counted once, whatever order things ran in
    assert (await usage(client, customer))["used"] == 10
    listed = (await client.get("/events", params={"limit": 100}, headers=customer.auth)).json()["data"]
    assert {e["event_id"] for e in listed} == new_accepted


async def test_a_failed_event_gives_its_unit_back_and_a_new_month_starts_at_zero(
    client: httpx.AsyncClient, customer: Customer, clock: ShiftedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HATCHED_EVENT_QUOTA_FREE", "2")
    unknown_buddy = await client.post("/events", json=ev(buddy_id="bdy_nope"), headers=customer.auth)
    assert_error(unknown_buddy, 404, "buddy_not_found")
    assert (await usage(client, customer))["used"] == 0
    for _ in range(2):
        assert (await client.post("/events", json=ev(), headers=customer.auth)).status_code == 200
    assert_error(await client.post("/events", json=ev(), headers=customer.auth), 402, "event_quota_exceeded")
    before = await usage(client, customer)
    clock.advance(32 * DAY_MS)
    assert (await client.post("/events", json=ev(), headers=customer.auth)).status_code == 200
    after = await usage(client, customer)
    assert after["period"] != before["period"] and after["used"] == 1
    assert after["history"] == {before["period"]: 2}


async def test_unlimited_plan_quota_still_counts(
    client: httpx.AsyncClient, customer: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HATCHED_EVENT_QUOTA_FREE", "0")
    for _ in range(3):
        assert (await client.post("/events", json=ev(), headers=customer.auth)).status_code == 200
    quota = await usage(client, customer)
    assert (quota["limit"], quota["used"], quota["remaining"]) == (None, 3, None)
