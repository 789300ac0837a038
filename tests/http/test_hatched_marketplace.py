"""Marketplaces over HTTP: catalog CRUD, reorder, all-or-nothing import, item art, every
requirement operator, purchase atomicity under concurrency (both runtimes), idempotent
replays, unlocks and the equip_item operation (completed and failed)."""

from __future__ import annotations

import asyncio
import itertools
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
    publish_preset,
    register,
    runtime_fixture,
    wait_operation,
)

_events = itertools.count()


async def new_market(client: httpx.AsyncClient, customer: Customer, **fields: Any) -> dict[str, Any]:
    response = await client.post("/marketplaces", json={"name": "Shop", **fields}, headers=customer.auth)
    assert response.status_code == 201, response.text
    return response.json()


async def new_item(client: httpx.AsyncClient, customer: Customer, market_id: str, **fields: Any) -> dict[str, Any]:
    body = {"name": "Hat", "price": 10, **fields}
    response = await client.post(f"/marketplaces/{market_id}/items", json=body, headers=customer.auth)
    assert response.status_code == 201, response.text
    return response.json()


async def earn(client: httpx.AsyncClient, customer: Customer, buddy_id: str, amount: int) -> None:
    response = await client.post(f"/buddies/{buddy_id}/coins", json={"amount": amount}, headers=customer.auth)
    assert response.status_code == 200, response.text


async def buy(client: httpx.AsyncClient, customer: Customer, buddy_id: str, item_id: str,
              **extra: Any) -> httpx.Response:
    return await client.post(f"/buddies/{buddy_id}/purchase-item", json={"item_id": item_id, **extra},
                             headers=customer.auth)


async def buddy_state(client: httpx.AsyncClient, customer: Customer, buddy_id: str) -> dict[str, Any]:
    return (await client.get(f"/buddies/{buddy_id}", headers=customer.auth)).json()


async def ledger(client: httpx.AsyncClient, customer: Customer, buddy_id: str) -> list[dict[str, Any]]:
    page = await client.get(f"/economy/buddies/{buddy_id}/ledger", params={"limit": 100}, headers=customer.auth)
    assert page.status_code == 200, page.text
    return page.json()["data"]


async def owned(client: httpx.AsyncClient, customer: Customer, buddy_id: str) -> list[dict[str, Any]]:
    page = await client.get(f"/buddies/{buddy_id}/purchased-items", params={"limit": 100}, headers=customer.auth)
    assert page.status_code == 200, page.text
    return page.json()["data"]


async def lesson(client: httpx.AsyncClient, customer: Customer, user_id: str = "user_1") -> None:
    """One learning-preset lesson: +60 coins earned, badge first_lesson, knowledge 2, xp 20."""
    response = await client.post("/events", json={"event_id": f"evt_m{next(_events)}", "user_id": user_id,
                                                  "type": "lesson_completed"}, headers=customer.auth)
    assert response.status_code == 200, response.text


async def equip(client: httpx.AsyncClient, customer: Customer, buddy_id: str, **body: Any) -> dict[str, Any]:
    response = await client.patch(f"/buddies/{buddy_id}/equipped-items", json=body, headers=customer.auth)
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["accepted"] is True and started["status"] == "pending"
    return await wait_operation(client, customer, started["operation_id"])


# -- catalog -------------------------------------------------------------------------------------
async def test_marketplace_crud_pagination_and_auth(client: httpx.AsyncClient, customer: Customer) -> None:
    created = [await new_market(client, customer, name=f"Shop {n}") for n in range(3)]
    assert created[0]["active"] is True and created[0]["item_count"] == 0 and created[0]["currency"] == "coins"
    page = (await client.get("/marketplaces", params={"limit": 2, "page": 2}, headers=customer.auth)).json()
    assert page["meta"] == {"page": 2, "limit": 2, "total": 3}
    assert [m["id"] for m in page["data"]] == [created[2]["id"]]
    market_id = created[0]["id"]
    updated = await client.put(f"/marketplaces/{market_id}", json={"description": "Hats", "active": False},
                               headers=customer.auth)
    assert updated.status_code == 200
    assert updated.json()["name"] == "Shop 0" and updated.json()["description"] == "Hats"
    assert updated.json()["active"] is False
    got = (await client.get(f"/marketplaces/{market_id}", headers=customer.auth)).json()
    assert got == updated.json()

    error = assert_error(await client.post("/marketplaces", json={"name": "x", "isActive": True},
                                           headers=customer.auth), 400, "validation_error")
    assert error["message"] == "property isActive should not exist"
    assert_error(await client.put(f"/marketplaces/{market_id}", json={"name": ""}, headers=customer.auth),
                 400, "validation_error")
    assert_error(await client.get("/marketplaces/mkt_missing", headers=customer.auth), 404, "marketplace_not_found")
    assert_error(await client.get("/marketplaces"), 401, "unauthorized")
    other = await register(client)
    assert_error(await client.get(f"/marketplaces/{market_id}", headers=other.auth), 404, "marketplace_not_found")

    pk = await client.post("/auth/publishable-keys", json={"permissions": ["marketplace:read"]}, headers=customer.jwt)
    assert pk.status_code == 201, pk.text
    public = {"Authorization": f"Bearer {pk.json()['key']}"}
    assert (await client.get(f"/marketplaces/{market_id}/items", headers=public)).status_code == 200
    assert_error(await client.post("/marketplaces", json={"name": "x"}, headers=public), 403,
                 "insufficient_permissions")
    buddies_only = await client.post("/auth/publishable-keys", json={"permissions": ["buddies:read"]},
                                     headers=customer.jwt)
    assert_error(await client.get("/marketplaces", headers={"Authorization": f"Bearer {buddies_only.json()['key']}"}),
                 403, "insufficient_permissions")


async def test_items_crud_filters_reorder_and_validation(client: httpx.AsyncClient, customer: Customer) -> None:
    market_id = (await new_market(client, customer))["id"]
    hat = await new_item(client, customer, market_id, name="Hat", slot="head", sku="HAT-1", category="hats",
                         requirements=[{"type": "min_stage", "value": 2}])
    glasses = await new_item(client, customer, market_id, name="Glasses", slot="face", price=25)
    gem = await new_item(client, customer, market_id, name="Gem", price=0)
    assert hat["requirements"] == [{"type": "min_stage", "value": 2}] and hat["position"] == 0
    assert gem["slot"] is None and gem["visibility"] == "visible" and gem["category"] == "general"
    assert hat["image_url"].startswith(f"/api/v1/marketplaces/{market_id}/items/{hat['item_id']}/art.svg")

    listed = (await client.get(f"/marketplaces/{market_id}/items", headers=customer.auth)).json()
    assert [i["item_id"] for i in listed["data"]] == [hat["item_id"], glasses["item_id"], gem["item_id"]]
    assert listed["meta"] == {"page": 1, "limit": 20, "total": 3}
    heads = (await client.get(f"/marketplaces/{market_id}/items", params={"slot": "head"},
                              headers=customer.auth)).json()
    assert [i["item_id"] for i in heads["data"]] == [hat["item_id"]]
    assert_error(await client.get(f"/marketplaces/{market_id}/items", params={"slot": "tail"},
                                  headers=customer.auth), 400, "validation_error")

    wanted = [gem["item_id"], hat["item_id"], glasses["item_id"]]
    reordered = await client.post(f"/marketplaces/{market_id}/items/reorder", json={"item_ids": wanted},
                                  headers=customer.auth)
    assert reordered.status_code == 200 and [i["item_id"] for i in reordered.json()["data"]] == wanted
    listed = (await client.get(f"/marketplaces/{market_id}/items", headers=customer.auth)).json()
    assert [(i["item_id"], i["position"]) for i in listed["data"]] == [(w, n) for n, w in enumerate(wanted)]
    bad = assert_error(await client.post(f"/marketplaces/{market_id}/items/reorder",
                                         json={"item_ids": [gem["item_id"], gem["item_id"], "itm_x"]},
                                         headers=customer.auth), 422, "invalid_reorder")
    assert bad["details"] == {"missing": [hat["item_id"], glasses["item_id"]], "unknown": ["itm_x"],
                              "duplicates": [gem["item_id"]]}

    put = await client.put(f"/marketplaces/{market_id}/items/{hat['item_id']}",
                           json={"price": 12, "slot": None, "requirements": []}, headers=customer.auth)
    assert put.status_code == 200, put.text
    assert (put.json()["price"], put.json()["slot"], put.json()["requirements"], put.json()["name"]) == \
        (12, None, [], "Hat")
    got = (await client.get(f"/marketplaces/{market_id}/items/{hat['item_id']}", headers=customer.auth)).json()
    assert got == put.json()

    url = f"/marketplaces/{market_id}/items"
    for body, message in [
        ({"name": "x", "price": -1}, None),
        ({"name": "x", "price": 1, "slot": "tail"}, None),
        ({"name": "x", "price": 1, "requirements": [{"type": "is_vip", "value": 1}]}, None),
        ({"name": "x", "price": 1, "requirements": [{"type": "min_stage", "value": 6}]}, None),
        ({"name": "x", "price": 1, "requirements": [{"type": "skill_at_least", "value": 3}]}, None),
        ({"name": "x", "price": 1, "requirements": [{"type": "min_token_balance", "token_key": "gold",
                                                      "value": 3}]}, None),
        ({"name": "x", "price": 1, "visibility": "secret"}, None),
        ({"name": "x", "price": 1, "itemName": "y"}, "property itemName should not exist"),
        ({"price": 1}, "property name is required"),
    ]:
        error = assert_error(await client.post(url, json=body, headers=customer.auth), 400, "validation_error")
        if message:
            assert error["message"] == message
    dup = assert_error(await client.post(url, json={"name": "Other hat", "price": 1, "sku": "HAT-1"},
                                         headers=customer.auth), 409, "duplicate_sku")
    assert dup["details"]["items"][0]["errors"] == [f"sku HAT-1 is already used by item {hat['item_id']}"]
    assert_error(await client.put(f"{url}/{glasses['item_id']}", json={"sku": "HAT-1"}, headers=customer.auth),
                 409, "duplicate_sku")

    deleted = await client.delete(f"{url}/{glasses['item_id']}", headers=customer.auth)
    assert deleted.status_code == 200 and deleted.json() == {"item_id": glasses["item_id"], "deleted": True}
    assert_error(await client.get(f"{url}/{glasses['item_id']}", headers=customer.auth), 404, "item_not_found")
    assert_error(await client.delete(f"{url}/{glasses['item_id']}", headers=customer.auth), 404, "item_not_found")
    assert (await client.get(f"/marketplaces/{market_id}", headers=customer.auth)).json()["item_count"] == 2
    other_market = (await new_market(client, customer))["id"]
    assert_error(await client.get(f"/marketplaces/{other_market}/items/{hat['item_id']}", headers=customer.auth),
                 404, "item_not_found")
    assert_error(await client.post("/marketplaces/mkt_nope/items", json={"name": "x", "price": 1},
                                   headers=customer.auth), 404, "marketplace_not_found")


async def test_import_is_all_or_nothing(client: httpx.AsyncClient, customer: Customer) -> None:
    market_id = (await new_market(client, customer))["id"]
    await new_item(client, customer, market_id, name="Existing", sku="OLD")
    url = f"/marketplaces/{market_id}/items/import"

    broken = [{"name": "A", "price": 1}, {"name": "B", "price": -3}, {"name": "C", "price": 1, "colour": "red"}]
    error = assert_error(await client.post(url, json={"items": broken}, headers=customer.auth), 400,
                         "validation_error")
    assert [entry["index"] for entry in error["details"]["items"]] == [1, 2]
    assert error["details"]["items"][1]["errors"] == ["property colour should not exist"]
    assert error["details"]["errors"][1] == "items.2: property colour should not exist"

    clashing = [{"name": "A", "price": 1, "sku": "NEW"}, {"name": "B", "price": 1, "sku": "OLD"},
                {"name": "C", "price": 1, "sku": "NEW"}]
    error = assert_error(await client.post(url, json={"items": clashing}, headers=customer.auth), 409,
                         "duplicate_sku")
    assert [entry["index"] for entry in error["details"]["items"]] == [1, 2]
    listed = (await client.get(f"/marketplaces/{market_id}/items", headers=customer.auth)).json()
    assert [i["name"] for i in listed["data"]] == ["Existing"]  # nothing of either failed import

    assert_error(await client.post(url, json={"items": []}, headers=customer.auth), 400, "validation_error")
    good = [{"name": f"Item {n}", "price": n, "slot": "hand", "sku": f"S{n}"} for n in range(5)]
    imported = await client.post(url, json={"items": good}, headers=customer.auth)
    assert imported.status_code == 201, imported.text
    assert imported.json()["imported"] == 5
    assert [i["position"] for i in imported.json()["data"]] == [1, 2, 3, 4, 5]
    listed = (await client.get(f"/marketplaces/{market_id}/items", headers=customer.auth)).json()
    assert [i["name"] for i in listed["data"]] == ["Existing", *(f"Item {n}" for n in range(5))]


async def test_item_art_regenerate_and_honest_upload(client: httpx.AsyncClient, customer: Customer) -> None:
    market_id = (await new_market(client, customer))["id"]
    item = await new_item(client, customer, market_id, slot="head")
    base = f"/marketplaces/{market_id}/items/{item['item_id']}"
    first = await client.get(f"{base}/art.svg", headers=customer.auth)
    assert first.status_code == 200 and first.headers["content-type"].startswith("image/svg+xml")
    assert first.text.startswith("<svg") and "<title>Hat</title>" in first.text
    assert (await client.get(f"{base}/art.svg", headers=customer.auth)).text == first.text  # deterministic

    regenerated = await client.post(f"{base}/regenerate-image", headers=customer.auth)
    assert regenerated.status_code == 200
    assert regenerated.json()["image_url"] != item["image_url"]
    second = await client.get(f"{base}/art.svg", headers=customer.auth)
    assert second.text != first.text

    upload = assert_error(await client.post(f"{base}/upload-image", content=b"\x89PNG....",
                                            headers={**customer.auth, "content-type": "image/png"}),
                          501, "image_upload_not_supported")
    assert upload["details"]["alternative"].endswith(f"{item['item_id']}/regenerate-image")
    assert (await client.get(f"{base}/art.svg", headers=customer.auth)).text == second.text
    assert_error(await client.post(f"/marketplaces/{market_id}/items/itm_none/upload-image", headers=customer.auth),
                 404, "item_not_found")
    assert_error(await client.get(f"/marketplaces/{market_id}/items/itm_none/art.svg", headers=customer.auth),
                 404, "item_not_found")


# -- requirements ------------------------------------------------------------------------------------
REQUIREMENT_CASES = [
    # (requirement, met after one lesson event?)
    ({"type": "min_stage", "value": 1}, True),
    ({"type": "min_stage", "value": 2}, False),
    ({"type": "has_badge", "value": "first_lesson"}, True),
    ({"type": "has_badge", "value": "ten_lessons"}, False),
    ({"type": "skill_at_least", "skill_key": "knowledge", "value": 2}, True),
    ({"type": "skill_at_least", "skill_key": "knowledge", "value": 3}, False),
    ({"type": "min_coins_earned", "value": 60}, True),
    ({"type": "min_coins_earned", "value": 61}, False),
    ({"type": "min_token_balance", "token_key": "xp", "value": 20}, True),
    ({"type": "min_token_balance", "token_key": "xp", "value": 21}, False),
    ({"type": "gate_unlocked", "value": "bonus_lessons"}, False),
]


async def test_each_requirement_operator_allows_and_refuses(client: httpx.AsyncClient, customer: Customer) -> None:
    await publish_preset(client, customer)
    buddy_id = (await hatch_buddy(client, customer))["buddy_id"]
    await lesson(client, customer)
    market_id = (await new_market(client, customer))["id"]
    items = [await new_item(client, customer, market_id, name=f"R{n}", price=1, requirements=[req])
             for n, (req, _) in enumerate(REQUIREMENT_CASES)]

    listed = (await client.get(f"/marketplaces/{market_id}/items", params={"buddy_id": buddy_id, "limit": 50},
                               headers=customer.auth)).json()
    assert [i["eligibility"]["requirements_met"] for i in listed["data"]] == [ok for _, ok in REQUIREMENT_CASES]

    coins = (await buddy_state(client, customer, buddy_id))["coins"]
    for item, (req, ok) in zip(items, REQUIREMENT_CASES, strict=True):
        response = await buy(client, customer, buddy_id, item["item_id"])
        if ok:
            assert response.status_code == 200, (req, response.text)
            coins -= 1
            assert response.json()["coins"] == coins
        else:
            error = assert_error(response, 403, "requirements_not_met")
            assert [{k: v for k, v in u.items() if k != "reason"} for u in error["details"]["unmet"]] == [req]
    assert (await buddy_state(client, customer, buddy_id))["coins"] == coins
    bought = {i["item_id"] for i in await owned(client, customer, buddy_id)}
    assert bought == {item["item_id"] for item, (_, ok) in zip(items, REQUIREMENT_CASES, strict=True) if ok}


async def test_requirement_set_from_the_pinned_config(client: httpx.AsyncClient, customer: Customer) -> None:
    """``requirement_set`` reads the buddy's pinned config version; a set it lacks keeps the item locked."""
    applied = (await client.post("/customers/me/apply-preset", json={"preset_key": "learning"},
                                 headers=customer.auth)).json()
    content = applied["content"]
    content["marketplace_requirements"] = {"scholars": [{"type": "has_badge", "value": "first_lesson"}]}
    patched = await client.patch(f"/config-versions/{applied['id']}", json={"content": content},
                                 headers=customer.auth)
    assert patched.status_code == 200, patched.text
    assert (await client.post(f"/config-versions/{applied['id']}/publish", headers=customer.auth)).status_code == 200
    buddy_id = (await hatch_buddy(client, customer))["buddy_id"]
    market_id = (await new_market(client, customer))["id"]
    scholar = await new_item(client, customer, market_id, price=1, requirement_set="scholars")
    unknown = await new_item(client, customer, market_id, price=1, requirement_set="nobody")
    await earn(client, customer, buddy_id, 5)

    error = assert_error(await buy(client, customer, buddy_id, scholar["item_id"]), 403, "requirements_not_met")
    assert error["details"]["unmet"][0]["type"] == "has_badge"
    await lesson(client, customer)
    assert (await buy(client, customer, buddy_id, scholar["item_id"])).status_code == 200
    error = assert_error(await buy(client, customer, buddy_id, unknown["item_id"]), 403, "requirements_not_met")
    assert error["details"]["unmet"][0]["type"] == "requirement_set"


# -- purchase -------------------------------------------------------------------------------------
async def test_refused_purchases_write_nothing(client: httpx.AsyncClient, customer: Customer) -> None:
    await publish_preset(client, customer)
    buddy_id = (await hatch_buddy(client, customer))["buddy_id"]
    market = await new_market(client, customer)
    pricey = await new_item(client, customer, market["id"], name="Crown", price=50, slot="head")
    hidden = await new_item(client, customer, market["id"], name="Secret", price=1, visibility="hidden")
    await earn(client, customer, buddy_id, 30)
    before = await ledger(client, customer, buddy_id)

    error = assert_error(await buy(client, customer, buddy_id, pricey["item_id"]), 422, "insufficient_funds")
    assert error["details"] == {"balance": 30, "requested": 50, "item_id": pricey["item_id"]}
    assert_error(await buy(client, customer, buddy_id, hidden["item_id"]), 409, "item_unavailable")
    assert_error(await buy(client, customer, buddy_id, "itm_missing"), 404, "item_not_found")
    assert_error(await buy(client, customer, buddy_id, pricey["item_id"], marketplace_id="mkt_other"), 404,
                 "item_not_found")
    assert_error(await buy(client, customer, "bdy_missing", pricey["item_id"]), 404, "buddy_not_found")
    assert_error(await client.post(f"/buddies/{buddy_id}/purchase-item", json={"itemId": pricey["item_id"]},
                                   headers=customer.auth), 400, "validation_error")
    assert (await buddy_state(client, customer, buddy_id))["coins"] == 30
    assert await ledger(client, customer, buddy_id) == before
    assert await owned(client, customer, buddy_id) == []

    await earn(client, customer, buddy_id, 20)
    bought = await buy(client, customer, buddy_id, pricey["item_id"], marketplace_id=market["id"])
    assert bought.status_code == 200, bought.text
    body = bought.json()
    assert body["coins"] == 0 and body["item"]["acquired_via"] == "purchase" and body["item"]["price_paid"] == 50
    assert body["ledger_entry"]["type"] == "debit" and body["ledger_entry"]["amount"] == 50
    assert body["ledger_entry"]["balance_after"] == 0 and body["ledger_entry"]["source"] == "marketplace"
    assert_error(await buy(client, customer, buddy_id, pricey["item_id"]), 409, "item_already_owned")

    unlocked = await client.post(f"/buddies/{buddy_id}/unlock-item", json={"item_id": hidden["item_id"],
                                                                            "reason": "campaign"},
                                 headers=customer.auth)
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json()["item"]["acquired_via"] == "unlock" and unlocked.json()["coins"] == 0
    assert_error(await client.post(f"/buddies/{buddy_id}/unlock-item", json={"item_id": hidden["item_id"]},
                                   headers=customer.auth), 409, "item_already_owned")
    items = await owned(client, customer, buddy_id)
    assert [(i["item_id"], i["acquired_via"], i["equipped"]) for i in items] == [
        (hidden["item_id"], "unlock", False), (pricey["item_id"], "purchase", False)]
    # Owned items are snapshots: deleting from the catalog takes nothing away.
    await client.delete(f"/marketplaces/{market['id']}/items/{pricey['item_id']}", headers=customer.auth)
    assert len(await owned(client, customer, buddy_id)) == 2

    inactive = await new_item(client, customer, market["id"], name="Cheap", price=0)
    await client.put(f"/marketplaces/{market['id']}", json={"active": False}, headers=customer.auth)
    assert_error(await buy(client, customer, buddy_id, inactive["item_id"]), 409, "item_unavailable")
    await client.patch(f"/buddies/{buddy_id}/archive", headers=customer.auth)
    await client.put(f"/marketplaces/{market['id']}", json={"active": True}, headers=customer.auth)
    assert_error(await buy(client, customer, buddy_id, inactive["item_id"]), 409, "buddy_archived")


async def test_idempotent_purchase_replay(client: httpx.AsyncClient, customer: Customer) -> None:
    await publish_preset(client, customer)
    buddy_id = (await hatch_buddy(client, customer))["buddy_id"]
    market_id = (await new_market(client, customer))["id"]
    hat = await new_item(client, customer, market_id, price=10)
    cap = await new_item(client, customer, market_id, name="Cap", price=10)
    await earn(client, customer, buddy_id, 25)

    first = await buy(client, customer, buddy_id, hat["item_id"], idempotency_key="order-1")
    again = await buy(client, customer, buddy_id, hat["item_id"], idempotency_key="order-1")
    assert first.status_code == again.status_code == 200
    assert again.json()["idempotent_replay"] is True and "idempotent_replay" not in first.json()
    assert again.json()["ledger_entry"] == first.json()["ledger_entry"] and again.json()["coins"] == 15
    assert_error(await buy(client, customer, buddy_id, cap["item_id"], idempotency_key="order-1"), 409,
                 "idempotency_key_reused")
    headers = {**customer.auth, "Idempotency-Key": "order-2"}
    via_header = [await client.post(f"/buddies/{buddy_id}/purchase-item", json={"item_id": cap["item_id"]},
                                    headers=headers) for _ in range(2)]
    assert [r.status_code for r in via_header] == [200, 200] and via_header[1].json()["coins"] == 5
    assert (await buddy_state(client, customer, buddy_id))["coins"] == 5
    debits = [r for r in await ledger(client, customer, buddy_id) if r["type"] == "debit"]
    assert len(debits) == 2 and len(await owned(client, customer, buddy_id)) == 2


@pytest.mark.parametrize("runtime_name", RUNTIMES)
async def test_fifty_concurrent_purchases_grant_exactly_what_coins_cover(make_runtime: Callable[..., Any],
                                                                         runtime_name: str) -> None:
    """25 items, each bought twice at once, coins for 9: exactly 9 grants, each with its debit row."""
    runtime = await make_runtime(runtime_name, actor_classes=list(HATCHED_ACTORS))
    async with client_for(runtime) as client:
        customer = await register(client)
        await publish_preset(client, customer)
        buddy_id = (await hatch_buddy(client, customer))["buddy_id"]
        market_id = (await new_market(client, customer))["id"]
        imported = await client.post(f"/marketplaces/{market_id}/items/import",
                                     json={"items": [{"name": f"Item {n}", "price": 10} for n in range(25)]},
                                     headers=customer.auth)
        item_ids = [i["item_id"] for i in imported.json()["data"]]
        await earn(client, customer, buddy_id, 95)
        results = await asyncio.gather(*(buy(client, customer, buddy_id, item_id)
                                         for item_id in item_ids for _ in range(2)))
        ok = [r.json() for r in results if r.status_code == 200]
        refused = {r.json()["error"]["code"] for r in results if r.status_code != 200}
        assert len(ok) == 9 and refused <= {"insufficient_funds", "item_already_owned"}
        assert sorted(r["coins"] for r in ok) == list(range(5, 95, 10))
        assert len({r["item"]["item_id"] for r in ok}) == 9
        assert (await buddy_state(client, customer, buddy_id))["coins"] == 5
        rows = await ledger(client, customer, buddy_id)
        debits = [r for r in rows if r["type"] == "debit"]
        assert len(debits) == 9 and all(r["balance_after"] >= 0 for r in rows)
        granted = await owned(client, customer, buddy_id)
        assert {i["ledger_entry_id"] for i in granted} == {r["id"] for r in debits}


# -- equip ------------------------------------------------------------------------------------------
async def test_equip_operation_changes_equipped_items_and_art(client: httpx.AsyncClient, customer: Customer,
                                                              runtime: Runtime,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HATCHED_OP_PENDING_MS", "500")  # long enough to observe "pending" on a busy machine
    await publish_preset(client, customer)
    buddy_id = (await hatch_buddy(client, customer))["buddy_id"]
    market_id = (await new_market(client, customer))["id"]
    hat = await new_item(client, customer, market_id, name="Hat", price=1, slot="head")
    cap = await new_item(client, customer, market_id, name="Cap", price=1, slot="head")
    glasses = await new_item(client, customer, market_id, name="Glasses", price=1, slot="face")
    await earn(client, customer, buddy_id, 3)
    for item in (hat, cap, glasses):
        assert (await buy(client, customer, buddy_id, item["item_id"])).status_code == 200
    art_before = (await client.get(f"/buddies/{buddy_id}/art.svg", headers=customer.auth)).text

    response = await client.patch(f"/buddies/{buddy_id}/equipped-items",
                                  json={"equip": [hat["item_id"], glasses["item_id"]]}, headers=customer.auth)
    assert response.status_code == 202
    op_id = response.json()["operation_id"]
    pending = (await client.get(f"/operations/{op_id}", headers=customer.auth)).json()
    assert pending["type"] == "equip_item" and pending["status"] in ("pending", "processing")
    assert (await buddy_state(client, customer, buddy_id))["equipped_items"] == []  # nothing until it runs
    op = await wait_operation(client, customer, op_id)
    assert op["status"] == "completed", op
    assert op["result"]["equipped_items"] == [hat["item_id"], glasses["item_id"]]
    assert op["result"]["image_url"] == f"/api/v1/buddies/{buddy_id}/art.svg"
    assert (await buddy_state(client, customer, buddy_id))["equipped_items"] == [hat["item_id"], glasses["item_id"]]
    art_after = (await client.get(f"/buddies/{buddy_id}/art.svg", headers=customer.auth)).text
    assert art_after != art_before and f'data-item="{hat["item_id"]}"' in art_after
    worn = (await client.get(f"/buddies/{buddy_id}/equipped-items", headers=customer.auth)).json()
    assert [i["name"] for i in worn["items"]] == ["Hat", "Glasses"]
    # A re-run of the same operation (the customer actor retrying after a crash) answers the first result.
    rerun = await runtime.call(buddy_address(customer.customer_id, buddy_id), "run_equip_item", op_id,
                               {"equip": [cap["item_id"]], "unequip": []})
    assert rerun["result"] == op["result"]
    assert (await buddy_state(client, customer, buddy_id))["equipped_items"] == [hat["item_id"], glasses["item_id"]]
    monkeypatch.setenv("HATCHED_OP_PENDING_MS", "10")

    swapped = await equip(client, customer, buddy_id, equip=[cap["item_id"]], unequip=[glasses["item_id"]])
    assert swapped["status"] == "completed", swapped
    assert swapped["result"]["replaced"] == [hat["item_id"]]
    assert swapped["result"]["unequipped"] == [glasses["item_id"]]
    assert (await buddy_state(client, customer, buddy_id))["equipped_items"] == [cap["item_id"]]
    flags = {i["item_id"]: i["equipped"] for i in await owned(client, customer, buddy_id)}
    assert flags == {hat["item_id"]: False, cap["item_id"]: True, glasses["item_id"]: False}


async def test_equip_refusals_fail_the_operation_with_a_specific_code(client: httpx.AsyncClient,
                                                                      customer: Customer) -> None:
    await publish_preset(client, customer)
    buddy_id = (await hatch_buddy(client, customer))["buddy_id"]
    market_id = (await new_market(client, customer))["id"]
    hat = await new_item(client, customer, market_id, name="Hat", price=0, slot="head")
    crown = await new_item(client, customer, market_id, name="Crown", price=0, slot="head")
    gem = await new_item(client, customer, market_id, name="Gem", price=0)
    unowned = await new_item(client, customer, market_id, name="Cape", price=0, slot="back")
    for item in (hat, crown, gem):
        assert (await buy(client, customer, buddy_id, item["item_id"])).status_code == 200

    for body, code in [
        ({"equip": [unowned["item_id"]]}, "item_not_owned"),
        ({"equip": [gem["item_id"]]}, "item_not_equippable"),
        ({"equip": [hat["item_id"], crown["item_id"]]}, "slot_conflict"),
        ({"unequip": [hat["item_id"]]}, "item_not_equipped"),
        ({"equip": [hat["item_id"]], "unequip": [hat["item_id"]]}, "equip_conflict"),
    ]:
        op = await equip(client, customer, buddy_id, **body)
        assert op["status"] == "failed" and op["error"]["code"] == code, (body, op)
        assert op["result"] is None
    assert (await buddy_state(client, customer, buddy_id))["equipped_items"] == []

    assert_error(await client.patch(f"/buddies/{buddy_id}/equipped-items", json={}, headers=customer.auth),
                 400, "validation_error")
    assert_error(await client.patch(f"/buddies/{buddy_id}/equipped-items", json={"items": []},
                                    headers=customer.auth), 400, "validation_error")
    assert_error(await client.patch("/buddies/bdy_missing/equipped-items", json={"equip": [hat["item_id"]]},
                                    headers=customer.auth), 404, "buddy_not_found")
    ops = (await client.get("/operations", params={"type": "equip_item"}, headers=customer.auth)).json()
    assert ops["meta"]["total"] == 5  # refused requests started no operation


async def test_eligibility_listing_and_the_widget_storefront(client: httpx.AsyncClient, customer: Customer,
                                                            runtime: Runtime) -> None:
    """What the marketplace widget shows a buddy: visible items only, each with the purchase check's verdict."""
    await publish_preset(client, customer)
    buddy_id = (await hatch_buddy(client, customer))["buddy_id"]
    closed = await new_market(client, customer, name="Closed", active=False)
    market_id = (await new_market(client, customer))["id"]
    cheap = await new_item(client, customer, market_id, name="Cheap", price=5)
    dear = await new_item(client, customer, market_id, name="Dear", price=500)
    staged = await new_item(client, customer, market_id, name="Stage 3", price=1, visibility="requirements_met",
                            requirements=[{"type": "min_stage", "value": 3}])
    await new_item(client, customer, market_id, name="Secret", price=1, visibility="hidden")
    await earn(client, customer, buddy_id, 10)

    listed = (await client.get(f"/marketplaces/{market_id}/items", params={"buddy_id": buddy_id},
                               headers=customer.auth)).json()["data"]
    verdicts = {i["name"]: (i["eligibility"]["visible"], i["eligibility"]["purchasable"],
                            i["eligibility"]["refusal"]) for i in listed}
    assert verdicts == {"Cheap": (True, True, None), "Dear": (True, False, "insufficient_funds"),
                        "Stage 3": (False, False, "requirements_not_met"),
                        "Secret": (False, False, "item_unavailable")}
    assert all("marketplace_active" not in i for i in listed)
    assert_error(await client.get(f"/marketplaces/{market_id}/items", params={"buddy_id": "bdy_x"},
                                  headers=customer.auth), 404, "buddy_not_found")

    buddy = buddy_address(customer.customer_id, buddy_id)
    shop = await runtime.call(buddy, "storefront", None)  # the first *active* marketplace
    assert shop["marketplace"]["id"] == market_id and shop["coins"] == 10
    assert [i["item_id"] for i in shop["items"]] == [cheap["item_id"], dear["item_id"]]
    assert staged["item_id"] not in {i["item_id"] for i in shop["items"]}
    closed_shop = await runtime.call(buddy, "storefront", closed["id"])
    assert closed_shop["items"] == []
    await new_item(client, customer, closed["id"], name="Shelf", price=0)
    closed_shop = await runtime.call(buddy, "storefront", closed["id"])
    assert closed_shop["items"][0]["eligibility"]["refusal"] == "item_unavailable"
