"""POST /v1/events: evaluation, idempotency (replays and concurrent duplicates), rate limit, errors."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import RUNTIMES
from tests.http.questkit_support import DAY, QK, START, make_qk_fixture, qk_fixture  # noqa: F401


def progress_update(data: dict) -> tuple[str, str, str, int]:
    return (data["type"], data["data"]["missionId"], data["data"]["status"], data["data"]["currentCount"])


@pytest.mark.parametrize("runtime_name", RUNTIMES)
async def test_event_claim_and_idempotency_flow(make_qk, runtime_name):
    """The main flow on both runtimes: event -> progress -> claim -> balance, replays apply once."""
    qk: QK = await make_qk(runtime_name)
    token = await qk.token("alice")

    r = await qk.event(token, "app.opened", user="alice", key="k-1")
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["accepted"] is True and first["eventId"].startswith("evt_")
    assert first["missionsUpdated"] == ["open-daily", "open-weekly", "open-once"]
    assert "x-idempotent-replay" not in r.headers

    again = await qk.event(token, "app.opened", user="alice", key="k-1")
    assert again.status_code == 200
    assert again.json() == first
    assert again.headers["x-idempotent-replay"] == "hit"

    # 20 concurrent copies of a new key: exactly one applies.
    results = await asyncio.gather(*(qk.event(token, "app.opened", user="alice", key="k-2") for _ in range(20)))
    assert {res.status_code for res in results} == {200}
    bodies = {res.json()["eventId"] for res in results}
    assert len(bodies) == 1
    assert sum("x-idempotent-replay" not in res.headers for res in results) == 1

    daily = await qk.progress(token, "open-daily")
    assert (daily["status"], daily["currentCount"], daily["targetCount"]) == ("completed", 2, 2)
    weekly = await qk.progress(token, "open-weekly")
    assert (weekly["status"], weekly["currentCount"], weekly["progress"]) == ("active", 2, pytest.approx(2 / 3))

    claims = await asyncio.gather(*(qk.claim(token, "open-daily", key="c-1") for _ in range(20)))
    assert {c.status_code for c in claims} == {200}
    assert len({c.text for c in claims}) == 1
    claim = claims[0].json()
    assert claim["reward"] == {"kind": "currency", "currency": "coins", "amount": 10}
    assert claim["progress"]["status"] == "claimed"
    assert claim["balance"]["amount"] == 10 and claim["balance"]["currency"] == "coins"

    # A claim with another key, or none, is refused: the reward was granted once.
    second = await qk.claim(token, "open-daily", key="c-2")
    assert second.status_code == 409 and second.json()["error"] == "claim_not_ready"
    balance = await qk.get(token, "/v1/balance/coins")
    assert balance.json()["balance"]["amount"] == 10

    updates = await qk.hub_updates("alice", expect=9)
    assert len(updates) == 10
    assert [progress_update(u) for u in updates[:5]] == [
        ("mission.progress", "open-daily", "active", 1),
        ("mission.progress", "open-weekly", "active", 1),
        ("mission.progress", "open-once", "completed", 1),
        ("mission.completed", "open-once", "completed", 1),
        ("mission.progress", "open-daily", "completed", 2),
    ]
    types = [u["type"] for u in updates]
    assert types == [
        "mission.progress", "mission.progress", "mission.progress", "mission.completed",  # event 1
        "mission.progress", "mission.completed", "mission.progress",  # event 2 (daily done, weekly 2/3)
        "mission.claimed", "reward.granted", "balance.changed",  # the claim
    ]
    assert updates[8]["data"] == {"userId": "alice", "reward": claim["reward"], "missionId": "open-daily"}
    assert updates[9]["data"] == claim["balance"]


async def test_header_key_wins_over_body_key(qk: QK):
    token = await qk.token()
    first = await qk.event(token, "app.opened", key="header-key", body_key="body-key")
    replay = await qk.event(token, "app.opened", key="header-key", body_key="other-body-key")
    assert replay.headers["x-idempotent-replay"] == "hit"
    assert replay.json() == first.json()
    # The body key was not used: sending it alone is a new event.
    fresh = await qk.event(token, "app.opened", body_key="body-key")
    assert "x-idempotent-replay" not in fresh.headers
    assert fresh.json()["eventId"] != first.json()["eventId"]
    body_replay = await qk.event(token, "app.opened", body_key="body-key")
    assert body_replay.headers["x-idempotent-replay"] == "hit"


async def test_replay_publishes_nothing(qk: QK):
    token = await qk.token()
    await qk.event(token, "app.opened", key="once")
    before = await qk.hub_updates(expect=4)
    assert len(before) == 4
    for _ in range(3):
        assert (await qk.event(token, "app.opened", key="once")).headers["x-idempotent-replay"] == "hit"
    assert len(await qk.hub_updates()) == 4


async def test_idempotency_records_expire_after_24h_and_are_swept(qk: QK):
    token = await qk.token()
    first = await qk.event(token, "read", key="day-key")
    qk.clock.advance(DAY - 1)
    token = await qk.token()  # the first one expired after 1 h
    assert (await qk.event(token, "read", key="day-key")).headers.get("x-idempotent-replay") == "hit"
    qk.clock.advance(2)
    later = await qk.event(token, "read", key="day-key")
    assert "x-idempotent-replay" not in later.headers
    assert later.json()["eventId"] != first.json()["eventId"]
    assert await qk.user_call("idempotency_records") == 1  # the old record was replaced
    # The sweep alarm drops expired records so the state stays bounded.
    qk.clock.advance(2 * DAY)
    for _ in range(100):
        if await qk.user_call("idempotency_records") == 0:
            break
        await asyncio.sleep(0.05)
    assert await qk.user_call("idempotency_records") == 0


@pytest.mark.parametrize(
    "body",
    [
        {"name": "app.opened", "payload": {}, "timestamp": START},  # no userId
        {"userId": "u1", "payload": {}, "timestamp": START},  # no name
        {"userId": "u1", "name": "app.opened", "timestamp": START},  # no payload
        {"userId": "u1", "name": "app.opened", "payload": {}},  # no timestamp
        {"userId": "u1", "name": "app.opened", "payload": [1], "timestamp": START},
        {"userId": "u1", "name": "app.opened", "payload": {}, "timestamp": "yesterday"},
        {"userId": "u1", "name": "", "payload": {}, "timestamp": START},
        {"userId": "u1", "name": "app.opened", "payload": {}, "timestamp": START, "idempotencyKey": 5},
        [],
    ],
)
async def test_invalid_event_is_400_and_changes_nothing(qk: QK, body):
    token = await qk.token()
    r = await qk.http.post("/v1/events", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_event"
    assert isinstance(r.json()["message"], str)
    assert await qk.progress(token, "open-once") is None


async def test_malformed_json_and_bad_idempotency_key(qk: QK):
    token = await qk.token()
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    r = await qk.http.post("/v1/events", content=b'{"userId": "u1",', headers=auth)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_event")
    r = await qk.event(token, "app.opened", key="x" * 300)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_event")
    r = await qk.http.post("/v1/events", content=b"x" * 70_000, headers=auth)
    assert (r.status_code, r.json()["error"]) == (413, "payload_too_large")
    assert await qk.progress(token, "open-once") is None


async def test_user_mismatch_is_403_and_changes_nothing(qk: QK):
    alice = await qk.token("alice")
    bob = await qk.token("bob")
    r = await qk.event(alice, "app.opened", user="bob")
    assert r.status_code == 403
    assert r.json()["error"] == "user_mismatch"
    assert await qk.progress(bob, "open-once") is None
    assert await qk.progress(alice, "open-once") is None
    assert await qk.hub_updates("bob") == []


async def test_missing_or_bad_token_is_401(qk: QK):
    body = {"userId": "u1", "name": "app.opened", "payload": {}, "timestamp": START}
    r = await qk.http.post("/v1/events", json=body)
    assert (r.status_code, r.json()["error"]) == (401, "unauthorized")
    r = await qk.http.post("/v1/events", json=body, headers={"Authorization": "Bearer nope"})
    assert (r.status_code, r.json()["error"]) == (401, "unauthorized")
    r = await qk.http.post("/v1/events", json=body, headers={"Authorization": "Basic dTE6cHc="})
    assert (r.status_code, r.json()["error"]) == (401, "unauthorized")


async def test_rate_limit_101st_event_in_a_minute_is_429_with_retry_after(qk: QK):
    token = await qk.token()
    t0 = qk.now()
    for i in range(100):
        qk.clock.set(t0 + i * 480)  # 100 events spread over 47.52 s
        r = await qk.event(token, "noop")
        assert r.status_code == 200, (i, r.text)
    qk.clock.set(t0 + 48_000)
    r = await qk.event(token, "app.opened")
    assert r.status_code == 429
    assert r.json() == {"error": "rate_limited", "retryAfterMs": 12_000}
    assert r.headers["retry-after"] == "12"
    assert await qk.progress(token, "open-once") is None  # the refused event changed nothing

    qk.clock.set(t0 + 48_500)  # 11.5 s left: Retry-After rounds up
    r = await qk.event(token, "app.opened")
    assert (r.status_code, r.headers["retry-after"], r.json()["retryAfterMs"]) == (429, "12", 11_500)

    # Another token has its own window.
    other = await qk.token()
    assert (await qk.event(other, "noop")).status_code == 200

    qk.clock.set(t0 + 60_000)  # the first event left the window: one slot is free
    assert (await qk.event(token, "app.opened")).status_code == 200
    r = await qk.event(token, "app.opened")
    assert r.status_code == 429
    assert r.json()["retryAfterMs"] == 480


async def test_late_and_future_events_are_dropped(qk: QK):
    token = await qk.token()
    r = await qk.event(token, "app.opened", ts=START - DAY)
    # Lifetime missions take any past event; the daily/weekly ones drop yesterday's.
    assert r.json()["missionsUpdated"] == ["open-weekly", "open-once"]
    r = await qk.event(token, "app.opened", ts=START - 3 * DAY)  # last week (Sunday)
    assert r.json()["missionsUpdated"] == []  # last week: dropped; lifetime already complete
    r = await qk.event(token, "app.opened", ts=START + DAY)  # tomorrow: same week, not same day
    assert r.json()["missionsUpdated"] == ["open-weekly"]


async def test_daily_window_rolls_over_and_claimed_is_dormant_until_then(qk: QK):
    token = await qk.token()
    await qk.event(token, "app.opened")
    await qk.event(token, "app.opened")
    assert (await qk.claim(token, "open-daily")).status_code == 200
    r = await qk.event(token, "app.opened")
    assert "open-daily" not in r.json()["missionsUpdated"]  # claimed: dormant today
    assert (await qk.progress(token, "open-daily"))["status"] == "claimed"

    qk.clock.set(START - START % DAY + DAY)  # midnight UTC
    token = await qk.token()
    fresh = await qk.progress(token, "open-daily")
    assert (fresh["status"], fresh["currentCount"], fresh["updatedAt"]) == ("active", 0, qk.now())
    r = await qk.event(token, "app.opened")
    assert "open-daily" in r.json()["missionsUpdated"]
    view = await qk.progress(token, "open-daily")
    assert (view["status"], view["currentCount"]) == ("active", 1)
    # The lifetime mission does not roll over.
    assert (await qk.progress(token, "open-once"))["status"] == "completed"


async def test_weekly_window_rolls_over_on_monday(qk: QK):
    token = await qk.token()
    for _ in range(3):
        await qk.event(token, "app.opened")
    assert (await qk.progress(token, "open-weekly"))["status"] == "completed"
    # Wednesday noon -> Sunday 23:59:59.999 is still the same ISO week.
    sunday_end = START - START % DAY + 5 * DAY - 1
    qk.clock.set(sunday_end)
    token = await qk.token()
    assert (await qk.progress(token, "open-weekly"))["status"] == "completed"
    qk.clock.set(sunday_end + 1)  # Monday 00:00 UTC
    token = await qk.token()
    view = await qk.progress(token, "open-weekly")
    assert (view["status"], view["currentCount"]) == ("active", 0)
    # An unclaimed completion from last week is gone: nothing to claim.
    assert (await qk.claim(token, "open-weekly")).status_code == 409


async def test_each_filter_operator(qk: QK):
    token = await qk.token()

    async def updated(payload: dict) -> list[str]:
        r = await qk.event(token, "buy", payload)
        assert r.status_code == 200, r.text
        return r.json()["missionsUpdated"]

    assert await updated({"product": "shoes", "amount": 20, "tier": "bronze"}) == []
    assert await updated({"amount": 0.5}) == ["f-lte", "f-lt"]
    assert await updated({"amount": 5}) == []  # f-lte completed already; 5 is not < 1
    assert await updated({"amount": 100}) == ["f-gte"]  # not > 100
    assert await updated({"amount": 100.5, "tier": "gold"}) == ["f-gt", "f-in"]
    assert await updated({"product": "boots", "amount": 50}) == ["f-eq", "f-and"]
    assert await updated({"amount": "999"}) == []  # numbers only


async def test_expired_mission_does_not_count(qk: QK):
    token = await qk.token()
    qk.clock.set(START + DAY + 1)
    token = await qk.token()
    r = await qk.event(token, "read")
    assert r.json()["missionsUpdated"] == []
    assert await qk.progress(token, "expiring") is None
    qk.clock.set(START + DAY)  # exactly at expiresAt still counts
    token = await qk.token()
    assert (await qk.event(token, "read")).json()["missionsUpdated"] == ["expiring"]
