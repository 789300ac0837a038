"""Config versions over HTTP: draft -> published -> archived (and nothing else), one
published at a time, immutable snapshots, clone, impact, section CRUD and presets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.http.hatched_support import (  # noqa: F401 - fixtures
    Customer,
    assert_error,
    client_fixture,
    customer_fixture,
    runtime_fixture,
)

COIN_RULE = {"name": "Lesson", "event_type": "lesson_completed", "amount": 10}


async def create_draft(client: httpx.AsyncClient, customer: Customer, **body: Any) -> dict[str, Any]:
    response = await client.post("/config-versions", json=body, headers=customer.auth)
    assert response.status_code == 201, response.text
    return response.json()


async def publish(client: httpx.AsyncClient, customer: Customer, version_id: str) -> httpx.Response:
    return await client.post(f"/config-versions/{version_id}/publish", headers=customer.auth)


async def test_draft_publish_archive_lifecycle(client: httpx.AsyncClient, customer: Customer) -> None:
    first = await create_draft(client, customer, name="v1")
    assert first["status"] == "draft" and first["version"] == 1
    published = await publish(client, customer, first["id"])
    assert published.status_code == 200 and published.json()["status"] == "published"
    me = (await client.get("/auth/me", headers=customer.auth)).json()
    assert me["active_config_version_id"] == first["id"]

    second = await create_draft(client, customer, name="v2")
    assert second["version"] == 2 and second["cloned_from"] == first["id"]
    assert (await publish(client, customer, second["id"])).json()["status"] == "published"
    old = (await client.get(f"/config-versions/{first['id']}", headers=customer.auth)).json()
    assert old["status"] == "archived" and old["archived_at"] is not None
    published_list = (await client.get("/config-versions?status=published", headers=customer.auth)).json()
    assert [v["id"] for v in published_list["data"]] == [second["id"]]
    assert published_list["meta"] == {"page": 1, "limit": 20, "total": 1}


@pytest.mark.parametrize("state", ["published", "archived"])
async def test_forbidden_transitions_are_409(client: httpx.AsyncClient, customer: Customer, state: str) -> None:
    first = await create_draft(client, customer)
    await publish(client, customer, first["id"])
    if state == "archived":
        second = await create_draft(client, customer)
        await publish(client, customer, second["id"])
    error = assert_error(await publish(client, customer, first["id"]), 409, "invalid_state_transition")
    assert error["details"] == {"from": state, "to": "published"}
    edit = await client.patch(f"/config-versions/{first['id']}", json={"name": "x"}, headers=customer.auth)
    assert_error(edit, 409, "config_version_immutable")


async def test_published_version_is_an_immutable_snapshot(client: httpx.AsyncClient, customer: Customer) -> None:
    draft = await create_draft(client, customer)
    created = await client.post("/coin-rules", json=COIN_RULE, headers=customer.auth)
    assert created.status_code == 201
    await publish(client, customer, draft["id"])
    # Editing a section now makes a new draft; the published version does not change.
    changed = await client.put(f"/coin-rules/{created.json()['id']}", json={**COIN_RULE, "amount": 99},
                               headers=customer.auth)
    assert changed.status_code == 200
    live = (await client.get(f"/config-versions/{draft['id']}", headers=customer.auth)).json()
    assert live["content"]["coin_rules"][created.json()["id"]]["amount"] == 10
    drafts = (await client.get("/config-versions?status=draft", headers=customer.auth)).json()["data"]
    assert len(drafts) == 1 and drafts[0]["content"]["coin_rules"][created.json()["id"]]["amount"] == 99


async def test_one_draft_at_a_time_and_clone(client: httpx.AsyncClient, customer: Customer) -> None:
    draft = await create_draft(client, customer)
    error = assert_error(await client.post("/config-versions", json={}, headers=customer.auth), 409, "draft_exists")
    assert error["details"] == {"draft_id": draft["id"]}
    await publish(client, customer, draft["id"])
    clone = await client.post(f"/config-versions/{draft['id']}/clone", json={"name": "experiment"}, headers=customer.auth)
    assert clone.status_code == 201
    assert clone.json()["status"] == "draft" and clone.json()["cloned_from"] == draft["id"]
    assert clone.json()["name"] == "experiment"
    assert_error(await client.get("/config-versions/cfg_missing", headers=customer.auth), 404, "config_version_not_found")


async def test_publish_validates_cross_references(client: httpx.AsyncClient, customer: Customer) -> None:
    draft = await create_draft(client, customer)
    bad_rule = {"event_type": "lesson_completed", "skill_key": "nonexistent", "amount": 1}
    assert (await client.post("/skill-rules", json=bad_rule, headers=customer.auth)).status_code == 201
    error = assert_error(await publish(client, customer, draft["id"]), 422, "config_invalid")
    assert any("nonexistent" in e for e in error["details"]["errors"])
    version = (await client.get(f"/config-versions/{draft['id']}", headers=customer.auth)).json()
    assert version["status"] == "draft"


async def test_evolution_is_capped_at_five_stages(client: httpx.AsyncClient, customer: Customer) -> None:
    draft = await create_draft(client, customer)
    stages = [{"stage": i, "name": f"S{i}"} for i in range(1, 7)]
    response = await client.patch(f"/config-versions/{draft['id']}", json={"content": {"evolution_rules": stages}},
                                  headers=customer.auth)
    assert_error(response, 400, "validation_error")
    ok = await client.patch(f"/config-versions/{draft['id']}", json={"content": {"evolution_rules": stages[:5]}},
                            headers=customer.auth)
    assert ok.status_code == 200 and len(ok.json()["content"]["evolution_rules"]) == 5


async def test_rule_types_come_from_fixed_enums(client: httpx.AsyncClient, customer: Customer) -> None:
    bad = await client.post("/coin-rules", json={**COIN_RULE, "rule_type": "if_then_else"}, headers=customer.auth)
    assert_error(bad, 400, "validation_error")
    bad_token = await client.post("/token-config", json={"token_key": "dogecoin", "name": "x"}, headers=customer.auth)
    assert_error(bad_token, 400, "validation_error")


@pytest.mark.parametrize(
    ("path", "body", "update", "has_get"),
    [
        ("/skill-sets", {"key": "mind", "name": "Mind", "skills": [{"key": "focus", "name": "Focus"}]},
         {"key": "mind", "name": "Mind 2"}, True),
        ("/skill-rules", {"event_type": "e", "skill_key": "focus", "amount": 2}, {"event_type": "e", "skill_key": "focus"}, False),
        ("/coin-rules", COIN_RULE, {**COIN_RULE, "amount": 5}, False),
        ("/badge-definitions", {"key": "b1", "name": "B", "criteria": {"type": "coins_earned", "threshold": 10}},
         {"key": "b1", "name": "B2", "criteria": {"type": "coins_earned", "threshold": 20}}, True),
        ("/streak-definitions", {"key": "daily", "name": "Daily", "event_type": "e"},
         {"key": "daily", "name": "Daily", "event_type": "e", "period": "weekly"}, True),
    ],
)
async def test_section_crud(
    client: httpx.AsyncClient, customer: Customer, path: str, body: dict, update: dict, has_get: bool
) -> None:
    created = await client.post(path, json=body, headers=customer.auth)
    assert created.status_code == 201, created.text
    item_id = created.json()["id"]
    listed = (await client.get(path, headers=customer.auth)).json()["data"]
    assert [i["id"] for i in listed] == [item_id]
    updated = await client.put(f"{path}/{item_id}", json=update, headers=customer.auth)
    assert updated.status_code == 200 and updated.json()["id"] == item_id
    if has_get:
        got = (await client.get(f"{path}/{item_id}", headers=customer.auth)).json()
        assert got == updated.json()
    deleted = await client.delete(f"{path}/{item_id}", headers=customer.auth)
    assert deleted.status_code == 200
    assert (await client.get(path, headers=customer.auth)).json()["data"] == []
    assert_error(await client.delete(f"{path}/{item_id}", headers=customer.auth), 404, deleted_code(path))


def deleted_code(path: str) -> str:
    return {"/skill-sets": "skill_set_not_found", "/skill-rules": "skill_rule_not_found",
            "/coin-rules": "coin_rule_not_found", "/badge-definitions": "badge_definition_not_found",
            "/streak-definitions": "streak_definition_not_found"}[path]


async def test_keyed_sections_reject_duplicate_keys(client: httpx.AsyncClient, customer: Customer) -> None:
    badge = {"key": "b1", "name": "B", "criteria": {"type": "coins_earned"}}
    assert (await client.post("/badge-definitions", json=badge, headers=customer.auth)).status_code == 201
    assert_error(await client.post("/badge-definitions", json=badge, headers=customer.auth), 409, "duplicate_key")


async def test_token_config_and_gates_upsert(client: httpx.AsyncClient, customer: Customer) -> None:
    token = {"token_key": "gems", "name": "Gems", "kind": "primary"}
    assert (await client.post("/token-config", json=token, headers=customer.auth)).status_code == 201
    again = await client.post("/token-config", json={**token, "name": "Shiny gems"}, headers=customer.auth)
    assert again.status_code == 200
    tokens = (await client.get("/token-config", headers=customer.auth)).json()
    assert [t["name"] for t in tokens["data"]] == ["Shiny gems"]
    gate = {"name": "Bonus", "token_key": "gems", "cost": 3}
    assert (await client.put("/gates/bonus", json=gate, headers=customer.auth)).status_code == 201
    gates = (await client.get("/gates", headers=customer.auth)).json()["data"]
    assert gates == [{"gate_key": "bonus", "name": "Bonus", "description": "", "token_key": "gems", "cost": 3}]
    assert_error(await client.put("/gates/Bad Key", json=gate, headers=customer.auth), 400, "validation_error")
    assert (await client.delete("/gates/bonus", headers=customer.auth)).status_code == 200
    assert_error(await client.delete("/gates/bonus", headers=customer.auth), 404, "gate_not_found")


async def test_presets_are_complete_and_publishable(client: httpx.AsyncClient, customer: Customer) -> None:
    presets = (await client.get("/presets", headers=customer.auth)).json()["data"]
    assert len(presets) >= 3
    for preset in presets:
        full = (await client.get(f"/presets/{preset['key']}", headers=customer.auth)).json()
        content = full["content"]
        for section in ("skill_sets", "coin_rules", "badge_definitions", "evolution_rules", "token_config",
                        "streak_definitions"):
            assert content[section], (preset["key"], section)
    assert_error(await client.get("/presets/nope", headers=customer.auth), 404, "preset_not_found")
    applied = await client.post("/customers/me/apply-preset", json={"preset_key": "fitness"}, headers=customer.auth)
    assert applied.status_code == 200 and applied.json()["status"] == "draft"
    assert (await publish(client, customer, applied.json()["id"])).status_code == 200
    rules = (await client.get("/coin-rules", headers=customer.auth)).json()["data"]
    assert {r["event_type"] for r in rules} >= {"workout_logged", "run_logged"}
    bad = await client.post("/customers/me/apply-preset", json={"presetKey": "fitness"}, headers=customer.auth)
    assert assert_error(bad, 400, "validation_error")["message"] == "property presetKey should not exist"


async def test_impact_compares_draft_with_published(client: httpx.AsyncClient, customer: Customer) -> None:
    applied = (await client.post("/customers/me/apply-preset", json={"preset_key": "learning"},
                                 headers=customer.auth)).json()
    first_impact = (await client.get(f"/config-versions/{applied['id']}/impact", headers=customer.auth)).json()
    assert first_impact["affects_new_buddies"] is True and first_impact["compared_to"] is None
    await publish(client, customer, applied["id"])
    rule_id = next(r["id"] for r in (await client.get("/coin-rules", headers=customer.auth)).json()["data"])
    await client.put(f"/coin-rules/{rule_id}", json={**COIN_RULE, "amount": 77}, headers=customer.auth)
    await client.post("/coin-rules", json={**COIN_RULE, "name": "new", "event_type": "quiz_started"}, headers=customer.auth)
    draft = (await client.get("/config-versions?status=draft", headers=customer.auth)).json()["data"][0]
    impact = (await client.get(f"/config-versions/{draft['id']}/impact", headers=customer.auth)).json()
    assert impact["compared_to"] == applied["id"]
    assert impact["changes"]["coin_rules"]["changed"] == [rule_id]
    assert len(impact["changes"]["coin_rules"]["added"]) == 1
    assert impact["affects_new_buddies"] is True and impact["affects_existing_buddies"] is False
    assert any("does not retroactively affect existing buddies" in line for line in impact["summary"])
    same = (await client.get(f"/config-versions/{applied['id']}/impact", headers=customer.auth)).json()
    assert same["changes"] == {} and same["affects_new_buddies"] is False
