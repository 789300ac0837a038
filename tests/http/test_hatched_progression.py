"""Buddy progression over HTTP: skills (bounds, all-or-nothing), badges (manual award, 409 on
a second award), typed token wallets with earn/spend, idempotency and no overdraft, evolution
readiness and the evolve operation (not ready, in flight, failed on re-check, restart-proof,
idempotent per operation id), gates, metrics and per-user summaries."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from questline.actors.hatched_buddy import buddy_address
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
    register,
    runtime_fixture,
    wait_operation,
)

CONTENT: dict[str, Any] = {
    "skill_sets": {"sks_core": {"key": "core", "name": "Core", "skills": [
        {"key": "focus", "name": "Focus", "max_level": 10}, {"key": "grit", "name": "Grit"}]}},
    "skill_rules": {"skr_lesson": {"event_type": "lesson_completed", "skill_key": "grit", "amount": 1}},
    "coin_rules": {"cr_lesson": {"name": "Lesson", "event_type": "lesson_completed", "amount": 10}},
    "badge_definitions": {
        "bdg_first": {"key": "first_lesson", "name": "First Steps",
                      "criteria": {"type": "event_count", "event_type": "lesson_completed", "threshold": 1}},
        "bdg_hero": {"key": "hero", "name": "Hero", "description": "Given by support",
                     "criteria": {"type": "event_count", "event_type": "rescue", "threshold": 99}},
        "bdg_focused": {"key": "focused", "name": "Focused",
                        "criteria": {"type": "skill_level", "skill_key": "focus", "threshold": 5}},
        "bdg_grown": {"key": "grown", "name": "Grown up", "criteria": {"type": "evolution_stage", "threshold": 2}},
    },
    "evolution_rules": [
        {"stage": 1, "name": "Egg"},
        {"stage": 2, "name": "Sprout", "requirements": {"badges": ["hero"], "skill_levels": {"focus": 3}}},
        {"stage": 3, "name": "Bloom", "requirements": {"min_events": 1}},
    ],
    "token_config": {
        "gems": {"token_key": "gems", "name": "Gems", "kind": "primary", "max_balance": 50},
        "xp": {"token_key": "xp", "name": "XP", "kind": "progression",
               "earn_rules": [{"event_type": "lesson_completed", "amount": 5}]},
    },
    "streak_definitions": {"stk_daily": {"key": "daily", "name": "Daily", "event_type": "lesson_completed"}},
    "gates": {"bonus": {"name": "Bonus lessons", "token_key": "gems", "cost": 20}},
}


async def publish(client: httpx.AsyncClient, customer: Customer, content: dict[str, Any] = CONTENT) -> str:
    created = await client.post("/config-versions", json={"name": "progression", "content": content},
                                headers=customer.auth)
    assert created.status_code == 201, created.text
    version_id = created.json()["id"]
    published = await client.post(f"/config-versions/{version_id}/publish", headers=customer.auth)
    assert published.status_code == 200, published.text
    return version_id


@pytest.fixture(name="buddy")
async def buddy_fixture(client: httpx.AsyncClient, customer: Customer) -> dict[str, Any]:
    await publish(client, customer)
    return await hatch_buddy(client, customer, "alice")


async def get(client: httpx.AsyncClient, customer: Customer, path: str, status: int = 200) -> Any:
    response = await client.get(path, headers=customer.auth)
    assert response.status_code == status, response.text
    return response.json()


async def skills(client: httpx.AsyncClient, customer: Customer, buddy_id: str, *updates: tuple[str, str, int],
                 **extra: Any) -> httpx.Response:
    body = {"updates": [{"skill_key": k, "operation": op, "value": v} for k, op, v in updates], **extra}
    return await client.patch(f"/buddies/{buddy_id}/skills", json=body, headers=customer.auth)


async def tokens(client: httpx.AsyncClient, customer: Customer, buddy_id: str, action: str, amount: int,
                 token_key: str = "gems", **extra: Any) -> httpx.Response:
    body = {"token_key": token_key, "action": action, "amount": amount, **extra}
    return await client.post(f"/buddies/{buddy_id}/tokens", json=body, headers=customer.auth)


async def award(client: httpx.AsyncClient, customer: Customer, buddy_id: str, badge_key: str) -> httpx.Response:
    return await client.post(f"/buddies/{buddy_id}/badges", json={"badge_key": badge_key}, headers=customer.auth)


async def lesson(client: httpx.AsyncClient, customer: Customer, user_id: str, n: int,
                 occurred_at: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"event_id": f"evt_{user_id}_{n}", "user_id": user_id, "type": "lesson_completed"}
    if occurred_at:
        body["occurred_at"] = occurred_at
    response = await client.post("/events", json=body, headers=customer.auth)
    assert response.status_code == 200, response.text
    return response.json()


async def publishable(client: httpx.AsyncClient, customer: Customer, permissions: list[str]) -> dict[str, str]:
    created = await client.post("/auth/publishable-keys", json={"permissions": permissions}, headers=customer.jwt)
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['key']}"}


async def evolve(client: httpx.AsyncClient, customer: Customer, buddy_id: str) -> httpx.Response:
    return await client.post(f"/buddies/{buddy_id}/evolve", headers=customer.auth)


async def make_ready(client: httpx.AsyncClient, customer: Customer, buddy_id: str) -> None:
    """Stage 2 needs the manual-only badge ``hero`` and focus 3."""
    assert (await award(client, customer, buddy_id, "hero")).status_code == 201
    assert (await skills(client, customer, buddy_id, ("focus", "set", 3))).status_code == 200


# -- skills ----------------------------------------------------------------------------------
async def test_skills_increase_decrease_set(client: httpx.AsyncClient, customer: Customer,
                                            buddy: dict[str, Any]) -> None:
    buddy_id = buddy["buddy_id"]
    first = await skills(client, customer, buddy_id, ("focus", "increase", 4), ("grit", "set", 7), reason="support")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["skills"] == {"focus": 4, "grit": 7} and body["buddy_id"] == buddy_id
    assert body["changes"] == [
        {"skill_key": "focus", "operation": "increase", "before": 0, "after": 4, "delta": 4},
        {"skill_key": "grit", "operation": "set", "before": 0, "after": 7, "delta": 7}]
    assert body["badges_awarded"] == []
    second = (await skills(client, customer, buddy_id, ("grit", "decrease", 2), ("focus", "increase", 1))).json()
    assert second["skills"] == {"focus": 5, "grit": 5}
    assert second["badges_awarded"] == ["focused"]  # skill_level criterion met by the override
    assert (await get(client, customer, f"/buddies/{buddy_id}"))["skills"] == {"focus": 5, "grit": 5}
    badges = (await get(client, customer, f"/buddies/{buddy_id}/badges"))["data"]
    assert [(b["badge_key"], b["source"]) for b in badges] == [("focused", "skills")]
    zero = await skills(client, customer, buddy_id, ("grit", "set", 0))
    assert zero.status_code == 200 and zero.json()["skills"]["grit"] == 0


async def test_bad_skill_updates_write_nothing(client: httpx.AsyncClient, customer: Customer,
                                               buddy: dict[str, Any]) -> None:
    buddy_id = buddy["buddy_id"]
    assert (await skills(client, customer, buddy_id, ("focus", "set", 2))).status_code == 200
    error = assert_error(await skills(client, customer, buddy_id, ("focus", "increase", 1), ("charisma", "set", 3)),
                         422, "unknown_skill")
    assert error["details"] == {"unknown": ["charisma"], "allowed": ["focus", "grit"]}
    error = assert_error(await skills(client, customer, buddy_id, ("grit", "increase", 1), ("focus", "set", 11)),
                         422, "skill_out_of_bounds")
    assert error["details"]["errors"] == [{"skill_key": "focus", "level": 2, "requested": 11, "min": 0, "max": 10}]
    error = assert_error(await skills(client, customer, buddy_id, ("focus", "decrease", 3)), 422,
                         "skill_out_of_bounds")
    assert error["details"]["errors"][0]["requested"] == -1
    assert_error(await skills(client, customer, buddy_id, ("grit", "set", 101)), 422, "skill_out_of_bounds")
    assert_error(await skills(client, customer, buddy_id, ("focus", "increase", 0)), 400, "validation_error")
    assert_error(await skills(client, customer, buddy_id, ("focus", "set", 1), ("focus", "set", 2)),
                 400, "validation_error")
    assert_error(await skills(client, customer, buddy_id, ("focus", "set", -1)), 400, "validation_error")
    assert_error(await skills(client, customer, buddy_id, ("focus", "double", 1)), 400, "validation_error")
    assert_error(await skills(client, customer, buddy_id), 400, "validation_error")  # no updates
    error = assert_error(await skills(client, customer, buddy_id, ("focus", "set", 1), skillKey="x"),
                         400, "validation_error")
    assert error["message"] == "property skillKey should not exist"
    bad = await client.patch(f"/buddies/{buddy_id}/skills", content=b"{nope", headers=customer.auth)
    assert_error(bad, 400, "invalid_json")
    assert (await get(client, customer, f"/buddies/{buddy_id}"))["skills"] == {"focus": 2}


# -- badges ----------------------------------------------------------------------------------
async def test_badges_award_once_and_list(client: httpx.AsyncClient, customer: Customer,
                                          buddy: dict[str, Any]) -> None:
    buddy_id = buddy["buddy_id"]
    assert (await get(client, customer, f"/buddies/{buddy_id}/badges")) == {
        "data": [], "meta": {"page": 1, "limit": 20, "total": 0}}
    event = await lesson(client, customer, "alice", 1)
    assert event["effects"]["badges_awarded"] == ["first_lesson"]
    awarded = await client.post(f"/buddies/{buddy_id}/badges", json={"badge_key": "hero", "reason": "saved a cat"},
                                headers=customer.auth)
    assert awarded.status_code == 201, awarded.text
    body = awarded.json()
    assert body["badges"] == ["first_lesson", "hero"] and body["evolution_ready"] is False
    assert body["badge"]["name"] == "Hero" and body["badge"]["source"] == "manual"
    assert body["badge"]["reason"] == "saved a cat"
    error = assert_error(await award(client, customer, buddy_id, "hero"), 409, "badge_already_awarded")
    assert error["details"]["awarded_at"] == body["badge"]["awarded_at"]
    error = assert_error(await award(client, customer, buddy_id, "legend"), 422, "unknown_badge")
    assert error["details"]["allowed"] == ["first_lesson", "focused", "grown", "hero"]
    assert_error(await award(client, customer, buddy_id, "Bad Key"), 400, "validation_error")
    listed = (await get(client, customer, f"/buddies/{buddy_id}/badges"))["data"]
    assert [(b["badge_key"], b["name"], b["source"]) for b in listed] == [
        ("first_lesson", "First Steps", "event"), ("hero", "Hero", "manual")]
    assert all(b["awarded_at"].endswith("Z") for b in listed)
    assert listed[1]["description"] == "Given by support"
    assert (await get(client, customer, f"/buddies/{buddy_id}"))["badges"] == ["first_lesson", "hero"]


async def test_progression_auth(client: httpx.AsyncClient, customer: Customer, buddy: dict[str, Any]) -> None:
    buddy_id = buddy["buddy_id"]
    readers = await publishable(client, customer, ["buddies:read"])
    badge_readers = await publishable(client, customer, ["badges:read"])
    assert (await client.get(f"/buddies/{buddy_id}/tokens", headers=readers)).status_code == 200
    assert (await client.get(f"/buddies/{buddy_id}/evolution", headers=readers)).status_code == 200
    assert_error(await client.get(f"/buddies/{buddy_id}/badges", headers=readers), 403, "insufficient_permissions")
    assert (await client.get(f"/buddies/{buddy_id}/badges", headers=badge_readers)).status_code == 200
    assert_error(await client.get(f"/buddies/{buddy_id}/tokens", headers=badge_readers), 403,
                 "insufficient_permissions")
    for method, path, body in (("POST", "badges", {"badge_key": "hero"}),
                               ("POST", "tokens", {"token_key": "gems", "action": "earn", "amount": 1}),
                               ("POST", "evolve", None), ("POST", "gates/bonus/unlock", None),
                               ("PATCH", "skills", {"updates": [{"skill_key": "focus", "operation": "set",
                                                                 "value": 1}]})):
        assert_error(await client.request(method, f"/buddies/{buddy_id}/{path}", json=body, headers=readers),
                     403, "insufficient_permissions")
        assert_error(await client.request(method, f"/buddies/{buddy_id}/{path}", json=body), 401, "unauthorized")
    # Dashboard JWTs write too.
    assert (await client.post(f"/buddies/{buddy_id}/badges", json={"badge_key": "hero"},
                              headers=customer.jwt)).status_code == 201
    # Another customer cannot see or touch this buddy.
    other = await register(client)
    for path in ("badges", "tokens", "evolution", "evolutions", "unlocks", "progression-metrics"):
        assert_error(await client.get(f"/buddies/{buddy_id}/{path}", headers=other.auth), 404, "buddy_not_found")
    assert_error(await award(client, other, buddy_id, "hero"), 404, "buddy_not_found")
    assert_error(await evolve(client, other, buddy_id), 404, "buddy_not_found")


async def test_archived_buddy_refuses_progression_writes(client: httpx.AsyncClient, customer: Customer,
                                                         buddy: dict[str, Any]) -> None:
    buddy_id = buddy["buddy_id"]
    await tokens(client, customer, buddy_id, "earn", 30)
    await client.patch(f"/buddies/{buddy_id}/archive", headers=customer.auth)
    assert_error(await skills(client, customer, buddy_id, ("focus", "set", 1)), 409, "buddy_archived")
    assert_error(await award(client, customer, buddy_id, "hero"), 409, "buddy_archived")
    assert_error(await tokens(client, customer, buddy_id, "spend", 1), 409, "buddy_archived")
    assert_error(await client.post(f"/buddies/{buddy_id}/gates/bonus/unlock", headers=customer.auth),
                 409, "buddy_archived")
    after = await get(client, customer, f"/buddies/{buddy_id}")
    assert after["skills"] == {} and after["badges"] == [] and after["tokens"] == {"gems": 30}
    assert (await get(client, customer, f"/buddies/{buddy_id}/unlocks")) == {"data": []}
    assert (await get(client, customer, f"/buddies/{buddy_id}/progression-metrics"))["tokens"] == {"gems": 30}


# -- tokens ----------------------------------------------------------------------------------
async def test_token_wallet_earn_spend_and_ledger(client: httpx.AsyncClient, customer: Customer,
                                                  buddy: dict[str, Any]) -> None:
    buddy_id = buddy["buddy_id"]
    wallet = await get(client, customer, f"/buddies/{buddy_id}/tokens")
    assert wallet["primary"] == [{"token_key": "gems", "name": "Gems", "kind": "primary", "balance": 0,
                                  "max_balance": 50}]
    assert wallet["progression"] == [{"token_key": "xp", "name": "XP", "kind": "progression", "balance": 0,
                                      "max_balance": None}]
    assert wallet["unconfigured"] == [] and wallet["balances"] == {}
    earned = await tokens(client, customer, buddy_id, "earn", 30, reason="welcome gift")
    assert earned.status_code == 200, earned.text
    assert earned.json()["balance"] == 30 and earned.json()["ledger_entry"]["type"] == "credit"
    assert (await tokens(client, customer, buddy_id, "spend", 12)).json()["balance"] == 18
    error = assert_error(await tokens(client, customer, buddy_id, "spend", 19), 422, "insufficient_tokens")
    assert error["details"] == {"token_key": "gems", "balance": 18, "requested": 19}
    error = assert_error(await tokens(client, customer, buddy_id, "earn", 33), 422, "max_balance_exceeded")
    assert error["details"]["max_balance"] == 50
    assert_error(await tokens(client, customer, buddy_id, "earn", 5, token_key="energy"), 422, "unknown_token")
    assert_error(await tokens(client, customer, buddy_id, "spend", 1, token_key="xp"), 422, "insufficient_tokens")
    assert_error(await tokens(client, customer, buddy_id, "earn", 5, token_key="diamonds"), 400, "validation_error")
    assert_error(await tokens(client, customer, buddy_id, "earn", 0), 400, "validation_error")
    assert_error(await tokens(client, customer, buddy_id, "burn", 1), 400, "validation_error")
    assert_error(await tokens(client, customer, buddy_id, "earn", 1, tokenKey="gems"), 400, "validation_error")
    await lesson(client, customer, "alice", 1)  # the xp earn rule
    wallet = await get(client, customer, f"/buddies/{buddy_id}/tokens")
    assert wallet["balances"] == {"gems": 18, "xp": 5}
    assert wallet["progression"][0]["balance"] == 5 and wallet["primary"][0]["balance"] == 18
    ledger = (await get(client, customer, f"/economy/buddies/{buddy_id}/ledger?currency=gems"))["data"]
    assert [(r["type"], r["amount"], r["balance_after"], r["reason"]) for r in ledger] == [
        ("debit", 12, 18, "manual_spend"), ("credit", 30, 30, "welcome gift")]


async def test_token_idempotency(client: httpx.AsyncClient, customer: Customer, buddy: dict[str, Any]) -> None:
    buddy_id = buddy["buddy_id"]
    first = await tokens(client, customer, buddy_id, "earn", 10, idempotency_key="gift-1")
    again = await tokens(client, customer, buddy_id, "earn", 10, idempotency_key="gift-1")
    assert first.json()["balance"] == 10 and again.json()["balance"] == 10 and again.json()["idempotent_replay"]
    assert again.json()["ledger_entry"] == first.json()["ledger_entry"]
    headers = {**customer.auth, "Idempotency-Key": "spend-1"}
    body = {"token_key": "gems", "action": "spend", "amount": 4}
    spent = await client.post(f"/buddies/{buddy_id}/tokens", json=body, headers=headers)
    replay = await client.post(f"/buddies/{buddy_id}/tokens", json=body, headers=headers)
    assert spent.json()["balance"] == 6 and replay.json()["balance"] == 6
    assert_error(await tokens(client, customer, buddy_id, "earn", 11, idempotency_key="gift-1"),
                 409, "idempotency_key_reused")
    assert_error(await client.post(f"/buddies/{buddy_id}/tokens", json={**body, "idempotency_key": "a"},
                                   headers={**customer.auth, "Idempotency-Key": "b"}), 400, "validation_error")
    assert (await get(client, customer, f"/buddies/{buddy_id}"))["tokens"] == {"gems": 6}
    ledger = (await get(client, customer, f"/economy/buddies/{buddy_id}/ledger?currency=gems"))["data"]
    assert len(ledger) == 2


async def test_concurrent_token_spends_never_overdraw(client: httpx.AsyncClient, customer: Customer,
                                                      buddy: dict[str, Any]) -> None:
    buddy_id = buddy["buddy_id"]
    await tokens(client, customer, buddy_id, "earn", 50)
    results = await asyncio.gather(*(tokens(client, customer, buddy_id, "spend", 7) for _ in range(20)))
    codes = [r.status_code for r in results]
    assert codes.count(200) == 7 and codes.count(422) == 13
    assert sorted(r.json()["balance"] for r in results if r.status_code == 200) == list(range(1, 50, 7))
    assert (await get(client, customer, f"/buddies/{buddy_id}/tokens"))["balances"] == {"gems": 1}


# -- gates -----------------------------------------------------------------------------------
async def test_gate_unlock_spends_once(client: httpx.AsyncClient, customer: Customer, buddy: dict[str, Any]) -> None:
    buddy_id = buddy["buddy_id"]
    assert (await get(client, customer, f"/buddies/{buddy_id}/unlocks")) == {"data": []}
    poor = await client.post(f"/buddies/{buddy_id}/gates/bonus/unlock", headers=customer.auth)
    error = assert_error(poor, 422, "insufficient_tokens")
    assert error["details"] == {"gate_key": "bonus", "token_key": "gems", "balance": 0, "cost": 20}
    assert_error(await client.post(f"/buddies/{buddy_id}/gates/vip/unlock", headers=customer.auth),
                 404, "gate_not_found")
    await tokens(client, customer, buddy_id, "earn", 45)
    both = await asyncio.gather(*(client.post(f"/buddies/{buddy_id}/gates/bonus/unlock", headers=customer.auth)
                                  for _ in range(2)))
    assert [r.status_code for r in both] == [200, 200]
    fresh = [r.json() for r in both if not r.json()["already_unlocked"]]
    assert len(fresh) == 1  # concurrent unlocks charge once
    unlocked = fresh[0]
    assert unlocked["tokens"] == {"gems": 25} and unlocked["unlock"]["cost"] == 20
    assert unlocked["ledger_entry"]["reason"] == "gate_unlock:bonus" and unlocked["ledger_entry"]["amount"] == 20
    again = (await client.post(f"/buddies/{buddy_id}/gates/bonus/unlock", headers=customer.auth)).json()
    assert again["already_unlocked"] is True and again["tokens"] == {"gems": 25}
    assert again["unlock"] == unlocked["unlock"]
    listed = (await get(client, customer, f"/buddies/{buddy_id}/unlocks"))["data"]
    assert [(u["gate_key"], u["name"], u["token_key"], u["cost"]) for u in listed] == [
        ("bonus", "Bonus lessons", "gems", 20)]
    assert listed[0]["ledger_entry_id"] == unlocked["ledger_entry"]["id"]
    debits = [r for r in (await get(client, customer, f"/economy/buddies/{buddy_id}/ledger"))["data"]
              if r["type"] == "debit"]
    assert len(debits) == 1


# -- evolution -------------------------------------------------------------------------------
async def test_evolution_readiness_and_evolve(client: httpx.AsyncClient, customer: Customer,
                                              buddy: dict[str, Any]) -> None:
    buddy_id = buddy["buddy_id"]
    before = await get(client, customer, f"/buddies/{buddy_id}/evolution")
    assert before["ready"] is False and before["current_stage"] == 1 and before["current_stage_name"] == "Egg"
    assert before["next_stage"] == 2 and before["next_stage_name"] == "Sprout" and before["final_stage"] == 3
    assert before["missing"] == ["badge hero", "skill focus 0/3"] and before["progress_percent"] == 0
    error = assert_error(await evolve(client, customer, buddy_id), 409, "evolution_not_ready")
    assert error["details"] == {"current_stage": 1, "next_stage": 2, "missing": ["badge hero", "skill focus 0/3"]}
    assert (await get(client, customer, "/operations?type=evolve"))["meta"]["total"] == 0

    assert (await skills(client, customer, buddy_id, ("focus", "set", 3))).status_code == 200
    halfway = await get(client, customer, f"/buddies/{buddy_id}/evolution")
    assert halfway["progress_percent"] == 50 and halfway["requirements"] == [
        {"type": "badge", "key": "hero", "current": 0, "required": 1, "met": False},
        {"type": "skill", "key": "focus", "current": 3, "required": 3, "met": True}]
    assert (await award(client, customer, buddy_id, "hero")).json()["evolution_ready"] is True
    ready = await get(client, customer, f"/buddies/{buddy_id}/evolution")
    assert ready["ready"] is True and ready["missing"] == [] and ready["progress_percent"] == 100

    started = await evolve(client, customer, buddy_id)
    assert started.status_code == 202, started.text
    assert started.json()["accepted"] is True and started.json()["status"] == "pending"
    op_id = started.json()["operation_id"]
    panic = await evolve(client, customer, buddy_id)  # the same action again while in flight
    assert panic.status_code == 202 and panic.json()["operation_id"] == op_id and panic.json()["in_progress"]
    op = await wait_operation(client, customer, op_id)
    assert op["status"] == "completed" and op["type"] == "evolve" and op["buddy_id"] == buddy_id
    result = op["result"]
    assert result["buddy_id"] == buddy_id and result["evolution_stage"] == 2 and result["previous_stage"] == 1
    assert result["stage_name"] == "Sprout" and result["badges_awarded"] == ["grown"]
    assert result["image_url"] == f"/api/v1/buddies/{buddy_id}/art.svg"
    evolved = await get(client, customer, f"/buddies/{buddy_id}")
    assert evolved["evolution_stage"] == 2 and "grown" in evolved["badges"]
    art = await client.get(f"/buddies/{buddy_id}/art.svg", headers=customer.auth)
    assert "stage 2" in art.text

    timeline = await get(client, customer, f"/buddies/{buddy_id}/evolutions")
    assert timeline["current_stage"] == 2
    assert [(e["from_stage"], e["to_stage"], e["stage_name"], e["source"], e["operation_id"])
            for e in timeline["data"]] == [(None, 1, "Egg", "hatch", None), (1, 2, "Sprout", "evolve", op_id)]

    # Stage 3 needs one event; after it the buddy is at the final stage.
    assert_error(await evolve(client, customer, buddy_id), 409, "evolution_not_ready")
    await lesson(client, customer, "alice", 1)
    op = await wait_operation(client, customer, (await evolve(client, customer, buddy_id)).json()["operation_id"])
    assert op["status"] == "completed" and op["result"]["evolution_stage"] == 3
    final = await get(client, customer, f"/buddies/{buddy_id}/evolution")
    assert final["is_final_stage"] is True and final["next_stage"] is None and final["progress_percent"] == 100
    error = assert_error(await evolve(client, customer, buddy_id), 409, "evolution_not_ready")
    assert error["details"]["missing"] == ["already at the final stage"]
    assert len((await get(client, customer, f"/buddies/{buddy_id}/evolutions"))["data"]) == 3
    await client.patch(f"/buddies/{buddy_id}/archive", headers=customer.auth)
    assert_error(await evolve(client, customer, buddy_id), 409, "buddy_archived")


async def test_evolve_fails_when_no_longer_ready(client: httpx.AsyncClient, customer: Customer,
                                                 buddy: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Readiness is checked again when the operation runs: the op fails with that code."""
    buddy_id = buddy["buddy_id"]
    await make_ready(client, customer, buddy_id)
    monkeypatch.setenv("HATCHED_OP_PENDING_MS", "300")
    started = await evolve(client, customer, buddy_id)
    assert started.status_code == 202
    assert (await skills(client, customer, buddy_id, ("focus", "decrease", 1))).status_code == 200
    op = await wait_operation(client, customer, started.json()["operation_id"])
    assert op["status"] == "failed" and op["error"]["code"] == "evolution_not_ready"
    assert "skill focus 2/3" in op["error"]["message"]
    assert (await get(client, customer, f"/buddies/{buddy_id}"))["evolution_stage"] == 1
    assert len((await get(client, customer, f"/buddies/{buddy_id}/evolutions"))["data"]) == 1
    # A failed evolve does not block the next one.
    await skills(client, customer, buddy_id, ("focus", "set", 3))
    monkeypatch.setenv("HATCHED_OP_PENDING_MS", "10")
    retry = await evolve(client, customer, buddy_id)
    assert retry.json()["in_progress"] is False
    assert (await wait_operation(client, customer, retry.json()["operation_id"]))["status"] == "completed"


async def test_cancelled_evolve_changes_nothing(client: httpx.AsyncClient, customer: Customer,
                                                buddy: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    buddy_id = buddy["buddy_id"]
    await make_ready(client, customer, buddy_id)
    monkeypatch.setenv("HATCHED_OP_PENDING_MS", "5000")
    op_id = (await evolve(client, customer, buddy_id)).json()["operation_id"]
    cancelled = await client.post(f"/operations/{op_id}/cancel", headers=customer.auth)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (await get(client, customer, f"/buddies/{buddy_id}"))["evolution_stage"] == 1
    fresh = (await evolve(client, customer, buddy_id)).json()
    assert fresh["operation_id"] != op_id and fresh["in_progress"] is False


async def test_run_evolve_is_idempotent_per_operation(runtime: Runtime, client: httpx.AsyncClient,
                                                      customer: Customer, buddy: dict[str, Any]) -> None:
    """A re-run after a crash answers what it did; a stale second operation cannot evolve twice."""
    buddy_id = buddy["buddy_id"]
    await make_ready(client, customer, buddy_id)
    address = buddy_address(customer.customer_id, buddy_id)
    first = await runtime.call(address, "run_evolve", "op_a", {"from_stage": 1, "to_stage": 2})
    again = await runtime.call(address, "run_evolve", "op_a", {"from_stage": 1, "to_stage": 2})
    assert first == again and first["result"]["evolution_stage"] == 2
    await lesson(client, customer, "alice", 1)  # stage 3 is now reachable, but op_b was for stage 1
    with pytest.raises(Exception) as caught:
        await runtime.call(address, "run_evolve", "op_b", {"from_stage": 1, "to_stage": 2})
    assert getattr(caught.value, "code", None) == "evolution_stale"
    assert (await get(client, customer, f"/buddies/{buddy_id}"))["evolution_stage"] == 2
    assert len((await get(client, customer, f"/buddies/{buddy_id}/evolutions"))["data"]) == 2


async def test_evolve_survives_a_restart(make_runtime: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = await make_runtime("local", actor_classes=list(HATCHED_ACTORS))
    async with client_for(runtime) as client:
        customer = await register(client)
        await publish(client, customer)
        buddy_id = (await hatch_buddy(client, customer, "alice"))["buddy_id"]
        await make_ready(client, customer, buddy_id)
        monkeypatch.setenv("HATCHED_OP_PENDING_MS", "400")
        op_id = (await evolve(client, customer, buddy_id)).json()["operation_id"]
    await runtime.stop()
    restarted = await make_runtime("local", actor_classes=list(HATCHED_ACTORS))
    async with client_for(restarted) as client:
        op = await wait_operation(client, customer, op_id)
        assert op["status"] == "completed" and op["result"]["evolution_stage"] == 2
        assert (await get(client, customer, f"/buddies/{buddy_id}"))["evolution_stage"] == 2


@pytest.mark.parametrize("runtime_name", RUNTIMES)
async def test_progression_turns_on_both_runtimes(make_runtime: Callable[..., Any], runtime_name: str) -> None:
    """Across the Ray hop too: errors keep their codes, spends never overdraw, evolve completes."""
    runtime = await make_runtime(runtime_name, actor_classes=list(HATCHED_ACTORS))
    async with client_for(runtime) as client:
        customer = await register(client)
        await publish(client, customer)
        buddy_id = (await hatch_buddy(client, customer, "alice"))["buddy_id"]
        assert_error(await evolve(client, customer, buddy_id), 409, "evolution_not_ready")
        await make_ready(client, customer, buddy_id)
        op = await wait_operation(client, customer, (await evolve(client, customer, buddy_id)).json()["operation_id"])
        assert op["status"] == "completed" and op["result"]["evolution_stage"] == 2
        await tokens(client, customer, buddy_id, "earn", 40)
        spends = [tokens(client, customer, buddy_id, "spend", 9) for _ in range(6)]
        unlock = client.post(f"/buddies/{buddy_id}/gates/bonus/unlock", headers=customer.auth)
        results = await asyncio.gather(*spends, unlock)
        balance = (await get(client, customer, f"/buddies/{buddy_id}/tokens"))["balances"]["gems"]
        ledger = (await get(client, customer, f"/economy/buddies/{buddy_id}/ledger?currency=gems"))["data"]
        assert balance >= 0 and ledger[0]["balance_after"] == balance
        assert all(r.status_code == 200 or r.json()["error"]["code"] == "insufficient_tokens" for r in results)
        assert 40 - balance == sum(row["amount"] for row in ledger if row["type"] == "debit")


# -- metrics and summaries ---------------------------------------------------------------------
async def test_progression_metrics_and_legacy(client: httpx.AsyncClient, customer: Customer,
                                              buddy: dict[str, Any]) -> None:
    buddy_id = buddy["buddy_id"]
    empty = await get(client, customer, f"/buddies/{buddy_id}/progression-metrics")
    assert empty["events_total"] == 0 and empty["streaks"] == {} and empty["stage_name"] == "Egg"
    days = [dt.date(2026, 4, 6), dt.date(2026, 4, 7), dt.date(2026, 4, 9)]
    for n, day in enumerate(days):
        await lesson(client, customer, "alice", n, f"{day.isoformat()}T10:00:00Z")
    await tokens(client, customer, buddy_id, "earn", 25)
    await client.post(f"/buddies/{buddy_id}/gates/bonus/unlock", headers=customer.auth)
    metrics = await get(client, customer, f"/buddies/{buddy_id}/progression-metrics")
    assert metrics["buddy_id"] == buddy_id and metrics["user_id"] == "alice"
    assert metrics["events_total"] == 3 and metrics["event_counts"] == {"lesson_completed": 3}
    assert metrics["streaks"] == {"daily": {"current": 1, "longest": 2, "period": "daily",
                                            "last_period_start": "2026-04-09"}}
    assert metrics["longest_streak"] == 2
    assert metrics["coins"] == 30 and metrics["coins_earned"] == 30
    assert metrics["tokens"] == {"gems": 5, "xp": 15}
    assert metrics["badges"] == ["first_lesson"] and metrics["badges_count"] == 1
    assert metrics["skills"] == {"grit": 3} and metrics["skills_total"] == 3
    assert metrics["evolution_stage"] == 1 and metrics["evolution_ready"] is False and metrics["next_stage"] == 2
    assert metrics["gates_unlocked"] == ["bonus"] and metrics["evolutions_count"] == 0
    legacy = await client.get(f"/buddies/{buddy_id}/progression", headers=customer.auth)
    assert legacy.status_code == 200 and legacy.json() == metrics
    assert legacy.headers["deprecation"] == "true"
    assert f"/api/v1/buddies/{buddy_id}/progression-metrics" in legacy.headers["link"]


async def test_user_summaries(client: httpx.AsyncClient, customer: Customer) -> None:
    await publish(client, customer)
    first = (await hatch_buddy(client, customer, "alice"))["buddy_id"]
    second = (await hatch_buddy(client, customer, "alice"))["buddy_id"]
    await hatch_buddy(client, customer, "bob")
    await client.post(f"/buddies/{first}/coins", json={"amount": 40}, headers=customer.auth)
    await client.post(f"/buddies/{second}/coins", json={"amount": 2}, headers=customer.auth)
    await award(client, customer, first, "hero")
    await award(client, customer, second, "hero")
    await lesson(client, customer, "alice", 1)  # feeds both of alice's buddies
    await tokens(client, customer, second, "earn", 7)
    assert (await client.post("/eggs", json={"user_id": "alice"}, headers=customer.auth)).status_code == 201

    summary = await get(client, customer, "/buddies/users/alice/summary")
    assert summary["user_id"] == "alice" and summary["buddy_count"] == 2 and summary["active_buddy_count"] == 2
    assert summary["coins"] == 62 and summary["coins_earned"] == 62
    assert summary["badges_count"] == 4 and summary["unique_badges"] == ["first_lesson", "hero"]
    assert summary["tokens"] == {"gems": 7, "xp": 10} and summary["highest_stage"] == 1
    assert [b["buddy_id"] for b in summary["buddies"]] == [first, second]
    assert summary["buddies"][0]["coins"] == 50 and summary["buddies"][1]["tokens"] == {"gems": 7, "xp": 5}

    support = await get(client, customer, "/customers/me/users/alice/summary")
    assert {k: v for k, v in support.items() if k != "eggs"} == summary
    assert support["eggs"] == {"total": 3, "by_status": {"hatched": 2, "waiting": 1}}
    await client.patch(f"/buddies/{second}/archive", headers=customer.auth)
    assert (await get(client, customer, "/buddies/users/alice/summary"))["active_buddy_count"] == 1

    # A user Hatched has never seen (no egg, no buddy) is unknown, not an empty summary;
    # another customer's user of the same id is unknown to this one.
    assert_error(await client.get("/buddies/users/carol/summary", headers=customer.auth), 404, "user_not_found")
    assert_error(await client.get("/customers/me/users/carol/summary", headers=customer.auth), 404,
                 "user_not_found")
    other = await register(client)
    assert_error(await client.get("/buddies/users/alice/summary", headers=other.auth), 404, "user_not_found")
    readers = await publishable(client, customer, ["badges:read"])
    assert_error(await client.get("/buddies/users/alice/summary", headers=readers), 403, "insufficient_permissions")
    assert_error(await client.get("/customers/me/users/alice/summary"), 401, "unauthorized")
