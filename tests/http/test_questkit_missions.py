"""GET /v1/missions, GET /v1/missions/:id and POST /v1/missions/:id/claim."""

from __future__ import annotations

import asyncio

import pytest

from tests.http.questkit_support import QK, START, acme_missions, make_qk_fixture, qk_fixture  # noqa: F401


async def test_list_missions_shape_and_progress_map(qk: QK):
    token = await qk.token()
    r = await qk.get(token, "/v1/missions")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"missions", "progress"}
    assert [m["id"] for m in body["missions"]] == [m["id"] for m in acme_missions()]
    assert body["progress"] == {}
    first = body["missions"][0]
    assert first == {
        "id": "open-daily", "title": "Open Daily", "description": "Mission open-daily",
        "criteria": {"eventName": "app.opened", "count": 2, "window": "daily"},
        "reward": {"kind": "currency", "currency": "coins", "amount": 10},
    }
    spring = next(m for m in body["missions"] if m["id"] == "spring-1")
    assert spring["campaignId"] == "spring"
    assert spring["criteria"]["window"] == "lifetime"  # the default is spelled out

    await qk.event(token, "app.opened")
    body = (await qk.get(token, "/v1/missions")).json()
    assert set(body["progress"]) == {"open-daily", "open-weekly", "open-once"}
    assert body["progress"]["open-daily"] == {
        "userId": "u1", "missionId": "open-daily", "status": "active", "progress": 0.5,
        "currentCount": 1, "targetCount": 2, "updatedAt": START,
    }


async def test_status_filter_and_campaign_filter(qk: QK):
    token = await qk.token()
    await qk.event(token, "app.opened")
    completed = (await qk.get(token, "/v1/missions", status="completed")).json()
    assert [m["id"] for m in completed["missions"]] == ["open-once"]
    assert list(completed["progress"]) == ["open-once"]
    active = (await qk.get(token, "/v1/missions", status="active")).json()
    assert [m["id"] for m in active["missions"]] == ["open-daily", "open-weekly"]
    assert (await qk.get(token, "/v1/missions", status="claimed")).json()["missions"] == []
    spring = (await qk.get(token, "/v1/missions", campaignId="spring")).json()
    assert [m["id"] for m in spring["missions"]] == ["spring-1"]
    assert (await qk.get(token, "/v1/missions", campaignId="nope")).json()["missions"] == []


async def test_locked_status_for_missions_that_cannot_progress(qk: QK):
    token = await qk.token()
    await qk.event(token, "read")  # "expiring" completes at once (count 1)
    await qk.event(token, "shop")  # spring-1 1/2; future-1 and past-1 are outside their campaigns
    assert await qk.progress(token, "future-1") is None
    assert await qk.progress(token, "past-1") is None
    qk.clock.set(2_000_000_000_000)  # 2033: the spring campaign has ended
    token = await qk.token()
    assert (await qk.progress(token, "spring-1"))["status"] == "locked"
    assert (await qk.progress(token, "expiring"))["status"] == "completed"  # finished stays claimable
    locked = (await qk.get(token, "/v1/missions", status="locked")).json()
    assert [m["id"] for m in locked["missions"]] == ["spring-1"]


async def test_paging_with_limit_and_cursor(qk: QK):
    token = await qk.token()
    ids = [m["id"] for m in acme_missions()]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        body = (await qk.get(token, "/v1/missions", **params)).json()
        seen += [m["id"] for m in body["missions"]]
        pages += 1
        cursor = body.get("nextCursor")
        if cursor is None:
            break
    assert seen == ids
    assert pages == 3
    default = (await qk.get(token, "/v1/missions")).json()
    assert "nextCursor" not in default  # 14 missions < default page of 50


@pytest.mark.parametrize(
    "params", [{"status": "done"}, {"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"cursor": "no-such"}]
)
async def test_bad_list_parameters_are_400(qk: QK, params):
    token = await qk.token()
    r = await qk.get(token, "/v1/missions", **params)
    assert r.status_code == 400
    assert r.json()["error"] == "validation_error"


async def test_get_mission_and_404(qk: QK):
    token = await qk.token()
    r = await qk.get(token, "/v1/missions/open-once")
    assert r.status_code == 200
    expected = next(m for m in acme_missions() if m["id"] == "open-once")
    expected["criteria"]["window"] = "lifetime"  # the default is spelled out
    assert r.json() == {"mission": expected, "progress": None}
    r = await qk.get(token, "/v1/missions/nope")
    assert r.status_code == 404
    assert r.json()["error"] == "mission_not_found"
    r = await qk.claim(token, "nope")
    assert (r.status_code, r.json()["error"]) == (404, "mission_not_found")


async def test_claim_not_ready_without_progress_or_while_active(qk: QK):
    token = await qk.token()
    r = await qk.claim(token, "open-daily")
    assert (r.status_code, r.json()["error"]) == (409, "claim_not_ready")
    await qk.event(token, "app.opened")
    r = await qk.claim(token, "open-daily", key="early")
    assert (r.status_code, r.json()["error"]) == (409, "claim_not_ready")
    # A refused claim is not cached: the same key works once the mission completes.
    await qk.event(token, "app.opened")
    r = await qk.claim(token, "open-daily", key="early")
    assert r.status_code == 200 and "x-idempotent-replay" not in r.headers
    assert (await qk.get(token, "/v1/balance")).json()["balances"][0]["amount"] == 10


async def test_claim_response_and_updates_for_a_currency_reward(qk: QK):
    token = await qk.token()
    await qk.event(token, "app.opened")
    await qk.event(token, "app.opened")
    assert len(await qk.hub_updates(expect=7)) == 7
    r = await qk.claim(token, "open-daily", key="claim-1")
    assert r.status_code == 200
    body = r.json()
    assert body == {
        "progress": {"userId": "u1", "missionId": "open-daily", "status": "claimed", "progress": 1.0,
                     "currentCount": 2, "targetCount": 2, "updatedAt": START},
        "balance": {"userId": "u1", "currency": "coins", "amount": 10, "updatedAt": START},
        "reward": {"kind": "currency", "currency": "coins", "amount": 10},
    }
    replay = await qk.claim(token, "open-daily", key="claim-1")
    assert replay.headers["x-idempotent-replay"] == "hit"
    assert replay.json() == body
    updates = (await qk.hub_updates(expect=10))[7:]
    assert [u["type"] for u in updates] == ["mission.claimed", "reward.granted", "balance.changed"]
    assert updates[0]["data"] == body["progress"]
    assert updates[2]["data"] == body["balance"]
    ledger = await qk.user_call("ledger_entries")
    assert [(e["currency"], e["delta"], e["reason"]) for e in ledger] == [("coins", 10, "mission.claim")]


async def test_badge_and_item_rewards(qk: QK):
    token = await qk.token()
    await qk.event(token, "app.opened")
    await qk.event(token, "buy", {"amount": 500})
    badge = await qk.claim(token, "open-once")
    assert badge.status_code == 200
    assert badge.json()["balance"] is None
    assert badge.json()["reward"] == {"kind": "badge", "badgeId": "welcome"}
    item = await qk.claim(token, "f-gt")
    assert item.json()["reward"] == {"kind": "item", "itemId": "trophy", "quantity": 2}
    inventory = await qk.user_call("inventory")
    assert set(inventory["badges"]) == {"welcome"}
    assert inventory["items"] == {"trophy": 2}
    assert (await qk.get(token, "/v1/balance")).json() == {"balances": []}
    updates = await qk.hub_updates(expect=9)
    # badge claim: no balance.changed
    claim_types = [u["type"] for u in updates if u["type"] in ("mission.claimed", "reward.granted", "balance.changed")]
    assert claim_types == ["mission.claimed", "reward.granted", "mission.claimed", "reward.granted"]


async def test_concurrent_claims_with_different_keys_grant_once(qk: QK):
    token = await qk.token()
    await qk.event(token, "app.opened")
    await qk.event(token, "app.opened")
    results = await asyncio.gather(*(qk.claim(token, "open-daily", key=f"k{i}") for i in range(20)))
    codes = sorted(r.status_code for r in results)
    assert codes == [200] + [409] * 19
    assert (await qk.get(token, "/v1/balance/coins")).json()["balance"]["amount"] == 10


async def test_claim_accepts_empty_json_body_and_rejects_bad_key(qk: QK):
    token = await qk.token()
    await qk.event(token, "app.opened")
    r = await qk.http.post("/v1/missions/open-once/claim", content=b"",
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert r.status_code == 200
    r = await qk.claim(token, "open-once", key="x" * 256)
    assert (r.status_code, r.json()["error"]) == (400, "validation_error")


async def test_reads_are_always_of_the_tokens_own_user(qk: QK):
    alice = await qk.token("alice")
    bob = await qk.token("bob")
    await qk.event(alice, "app.opened", user="alice")
    assert (await qk.get(bob, "/v1/missions")).json()["progress"] == {}
    assert await qk.progress(bob, "open-once") is None
    r = await qk.claim(bob, "open-once")
    assert (r.status_code, r.json()["error"]) == (409, "claim_not_ready")
    # The other app's token reads its own app's catalog only.
    beta = await qk.token("alice", app="beta")
    beta_missions = (await qk.get(beta, "/v1/missions")).json()
    assert [m["id"] for m in beta_missions["missions"]] == ["open-once"]
    assert beta_missions["progress"] == {}
