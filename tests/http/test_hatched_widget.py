"""Widget sessions and the /widget/* API over HTTP: minting, scopes, revocation (also of an
open stream), expiry, isolation between customers and buddies, read-only embed tokens,
purchase/equip through the buddy's turns, the live stream and the served widget."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from questline.actors.hatched_widget import session_address
from questline.engine import Runtime
from questline.http import create_app
from questline.http.hatched import HATCHED_ACTORS, hatched_routes
from questline.rules.hatched_widget import token_hash
from tests.http.hatched_clock import ShiftedClock, clock_fixture  # noqa: F401 - fixture
from tests.http.hatched_support import (  # noqa: F401 - fixtures
    API,
    Customer,
    assert_error,
    client_for,
    fast_operations_fixture,
    hatch_buddy,
    publish_preset,
    register,
)
from tests.http.live import live_server


@pytest.fixture(name="runtime")
async def runtime_fixture(make_runtime: Any, clock: ShiftedClock) -> Runtime:
    return await make_runtime("local", actor_classes=list(HATCHED_ACTORS), clock=clock)


@pytest.fixture(name="client")
async def client_fixture(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(runtime) as c:
        yield c


class Shop:
    """A customer with a published config, a buddy, coins and a marketplace of three items."""

    def __init__(self, customer: Customer, buddy_id: str, market_id: str, items: dict[str, dict[str, Any]]):
        self.customer, self.buddy_id, self.market_id, self.items = customer, buddy_id, market_id, items


async def make_shop(client: httpx.AsyncClient, coins: int = 100, user_id: str = "user_1",
                    customer: Customer | None = None) -> Shop:
    customer = customer or await register(client)
    await publish_preset(client, customer)
    buddy_id = (await hatch_buddy(client, customer, user_id))["buddy_id"]
    if coins:
        r = await client.post(f"/buddies/{buddy_id}/coins", json={"amount": coins}, headers=customer.auth)
        assert r.status_code == 200, r.text
    r = await client.post("/marketplaces", json={"name": "Shop"}, headers=customer.auth)
    assert r.status_code == 201, r.text
    market_id = r.json()["id"]
    items = {}
    for name, price, slot, visibility in (("Hat", 30, "head", "visible"), ("Crown", 500, "head", "visible"),
                                          ("Secret", 1, "face", "hidden")):
        r = await client.post(f"/marketplaces/{market_id}/items",
                              json={"name": name, "price": price, "slot": slot, "visibility": visibility},
                              headers=customer.auth)
        assert r.status_code == 201, r.text
        items[name] = r.json()
    return Shop(customer, buddy_id, market_id, items)


async def session(client: httpx.AsyncClient, shop: Shop, scopes: list[str] | None = None,
                  buddy_id: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"buddy_id": buddy_id or shop.buddy_id, **extra}
    if scopes is not None:
        body["scopes"] = scopes
    r = await client.post("/widget-sessions", json=body, headers=shop.customer.auth)
    assert r.status_code == 201, r.text
    return r.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- minting ---------------------------------------------------------------------------------------
async def test_a_session_is_short_lived_scoped_and_stored_hashed(client: httpx.AsyncClient, runtime: Runtime,
                                                                  clock: ShiftedClock) -> None:
    shop = await make_shop(client)
    minted = await session(client, shop, ["marketplace:purchase", "items:equip"])
    assert minted["token"].startswith("wgt_sess_")
    assert minted["kind"] == "interactive" and minted["status"] == "issued"
    assert minted["expires_in"] == 15 * 60
    expires = datetime.fromisoformat(minted["expires_at"].replace("Z", "+00:00")).timestamp() * 1000
    assert abs(expires - (clock() + 15 * 60 * 1000)) < 5_000
    # Write scopes bring what they need to be usable; every session reads its own buddy.
    assert minted["scopes"] == ["buddy:read", "marketplace:read", "operations:read", "marketplace:purchase",
                                "items:equip"]
    assert minted["embed_snippet"] == (f'<script src="http://testserver{API}/widget/embed.js" '
                                       f'data-token="{minted["token"]}" async></script>')
    raw_id = minted["session_id"].removeprefix("wgs_")
    stored = await runtime.call(session_address(raw_id), "get", shop.customer.customer_id)
    assert stored["status"] == "issued"
    # The record holds the sha256, never the token.
    assert minted["token"] not in json.dumps(await runtime.call(session_address(raw_id), "authorize",
                                                                 token_hash(minted["token"]), None))

    assert (await client.get("/widget/buddy", headers=bearer(minted["token"]))).status_code == 200
    stored = await runtime.call(session_address(raw_id), "get", shop.customer.customer_id)
    assert stored["status"] == "active"  # issued -> active on first use

    default = await session(client, shop)
    assert default["scopes"] == ["buddy:read", "badges:read", "marketplace:read"]
    longer = await session(client, shop, ttl_seconds=3600)
    assert longer["expires_in"] == 3600


async def test_minting_is_validated_and_limited_to_the_customers_own_buddies(client: httpx.AsyncClient) -> None:
    shop = await make_shop(client, coins=0)
    auth = shop.customer.auth
    assert_error(await client.post("/widget-sessions", json={"buddy_id": shop.buddy_id, "scopes": ["admin:all"]},
                                   headers=auth), 400, "validation_error")
    error = assert_error(await client.post("/widget-sessions", json={"buddyId": shop.buddy_id}, headers=auth),
                         400, "validation_error")
    assert error["message"] == "property buddyId should not exist"
    for ttl in (59, 3601):
        assert_error(await client.post("/widget-sessions", json={"buddy_id": shop.buddy_id, "ttl_seconds": ttl},
                                       headers=auth), 400, "validation_error")
    assert_error(await client.post("/widget-sessions", json={"buddy_id": "bdy_nope"}, headers=auth),
                 404, "buddy_not_found")
    other = await register(client)
    assert_error(await client.post("/widget-sessions", json={"buddy_id": shop.buddy_id}, headers=other.auth),
                 404, "buddy_not_found")
    assert_error(await client.post("/widget-sessions", json={"buddy_id": shop.buddy_id}), 401, "unauthorized")
    pk = await client.post("/auth/publishable-keys", json={}, headers=shop.customer.jwt)
    assert_error(await client.post("/widget-sessions", json={"buddy_id": shop.buddy_id},
                                   headers=bearer(pk.json()["key"])), 403, "insufficient_permissions")
    # The dashboard may mint too.
    assert (await client.post("/widget-sessions", json={"buddy_id": shop.buddy_id},
                              headers=shop.customer.jwt)).status_code == 201


# -- scopes ------------------------------------------------------------------------------------------
async def test_scopes_refuse_what_they_do_not_grant(client: httpx.AsyncClient) -> None:
    shop = await make_shop(client)
    hat = shop.items["Hat"]["item_id"]
    reader = bearer((await session(client, shop, ["buddy:read"]))["token"])
    for path in ("/widget/buddy", "/widget/state", "/widget/tokens", "/widget/evolutions", "/widget/theme",
                 "/widget/streak/daily_learning"):
        r = await client.get(path, headers=reader)
        assert r.status_code == 200, (path, r.text)
    assert (await client.get("/widget/state", headers=reader)).json()["badges"] is None
    refused = [("GET", "/widget/badges", None, "badges:read"),
               ("GET", "/widget/marketplace", None, "marketplace:read"),
               ("POST", f"/widget/marketplace/items/{hat}/track-view", None, "marketplace:read"),
               ("GET", "/widget/operations/op_x", None, "operations:read"),
               ("POST", "/widget/purchase", {"item_id": hat}, "marketplace:purchase"),
               ("POST", "/widget/equip", {"equip": [hat]}, "items:equip")]
    for method, path, body, scope in refused:
        error = assert_error(await client.request(method, path, json=body, headers=reader), 403,
                             "insufficient_scope")
        assert error["details"] == {"required": scope, "granted": ["buddy:read"]}

    buyer = bearer((await session(client, shop, ["marketplace:purchase"]))["token"])
    assert (await client.get("/widget/marketplace", headers=buyer)).status_code == 200
    assert_error(await client.post("/widget/equip", json={"equip": [hat]}, headers=buyer), 403,
                 "insufficient_scope")
    assert_error(await client.get("/widget/badges", headers=buyer), 403, "insufficient_scope")
    # Nothing was bought or equipped by the refused requests.
    state = (await client.get(f"/buddies/{shop.buddy_id}", headers=shop.customer.auth)).json()
    assert state["coins"] == 100 and state["equipped_items"] == []


# -- purchase and equip ---------------------------------------------------------------------------------
async def test_an_interactive_session_buys_and_equips_through_the_buddys_turns(client: httpx.AsyncClient) -> None:
    shop = await make_shop(client)
    token = bearer((await session(client, shop, ["marketplace:purchase", "items:equip"]))["token"])
    hat, crown, secret = (shop.items[n]["item_id"] for n in ("Hat", "Crown", "Secret"))

    market = (await client.get("/widget/marketplace", headers=token)).json()
    assert market["marketplace"]["id"] == shop.market_id and market["coins"] == 100
    listed = {i["name"]: i for i in market["items"]}
    assert set(listed) == {"Hat", "Crown"}  # hidden items are not shown
    assert listed["Hat"]["eligibility"]["purchasable"] is True
    assert listed["Crown"]["eligibility"]["refusal"] == "insufficient_funds"
    assert listed["Hat"]["widget_image_url"] == f"{API}/widget/marketplace/items/{hat}/art.svg"

    bought = await client.post("/widget/purchase", json={"item_id": hat, "idempotency_key": "k1"}, headers=token)
    assert bought.status_code == 200, bought.text
    assert bought.json()["coins"] == 70 and bought.json()["item"]["item_id"] == hat
    replay = await client.post("/widget/purchase", json={"item_id": hat, "idempotency_key": "k1"}, headers=token)
    assert replay.json()["coins"] == 70 and replay.json()["idempotent_replay"] is True
    assert_error(await client.post("/widget/purchase", json={"item_id": crown}, headers=token), 422,
                 "insufficient_funds")
    assert_error(await client.post("/widget/purchase", json={"item_id": secret}, headers=token), 409,
                 "item_unavailable")
    assert_error(await client.post("/widget/purchase", json={"itemId": hat}, headers=token), 400,
                 "validation_error")

    started = await client.post("/widget/equip", json={"equip": [hat]}, headers=token)
    assert started.status_code == 202, started.text
    op_id = started.json()["operation_id"]
    for _ in range(500):
        op = (await client.get(f"/widget/operations/{op_id}", headers=token)).json()
        if op["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.01)
    assert op["status"] == "completed", op
    state = (await client.get("/widget/state", headers=token)).json()
    assert state["buddy"]["equipped_items"] == [hat] and state["buddy"]["coins"] == 70
    assert [i["item_id"] for i in state["items"]] == [hat] and state["items"][0]["equipped"] is True
    assert_error(await client.post("/widget/equip", json={}, headers=token), 400, "validation_error")

    # The server API sees exactly the same buddy.
    server = (await client.get(f"/buddies/{shop.buddy_id}", headers=shop.customer.auth)).json()
    assert server["coins"] == 70 and server["equipped_items"] == [hat]


# -- revocation and expiry --------------------------------------------------------------------------------
async def test_a_revoked_session_is_refused_at_once(client: httpx.AsyncClient) -> None:
    shop = await make_shop(client)
    minted = await session(client, shop, ["marketplace:purchase"])
    token = bearer(minted["token"])
    assert (await client.get("/widget/buddy", headers=token)).status_code == 200
    other = await register(client)
    assert_error(await client.delete(f"/widget-sessions/{minted['session_id']}", headers=other.auth), 404,
                 "widget_session_not_found")
    assert (await client.get("/widget/buddy", headers=token)).status_code == 200  # B's attempt changed nothing

    revoked = await client.delete(f"/widget-sessions/{minted['session_id']}", headers=shop.customer.auth)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["already_final"] is False
    for method, path in (("GET", "/widget/buddy"), ("GET", "/widget/marketplace"), ("POST", "/widget/purchase")):
        body = {"item_id": shop.items["Hat"]["item_id"]} if method == "POST" else None
        assert_error(await client.request(method, path, json=body, headers=token), 401, "widget_session_revoked")
    again = await client.delete(f"/widget-sessions/{minted['session_id']}", headers=shop.customer.auth)
    assert again.status_code == 200 and again.json()["already_final"] is True
    assert_error(await client.delete("/widget-sessions/not-a-session", headers=shop.customer.auth), 404,
                 "widget_session_not_found")
    assert_error(await client.delete(f"/widget-sessions/{minted['session_id']}"), 401, "unauthorized")
    coins = (await client.get(f"/buddies/{shop.buddy_id}", headers=shop.customer.auth)).json()["coins"]
    assert coins == 100


async def test_an_expired_session_is_refused(client: httpx.AsyncClient, clock: ShiftedClock) -> None:
    shop = await make_shop(client)
    minted = await session(client, shop)
    embed = (await client.post("/embed-tokens", json={"buddy_id": shop.buddy_id, "ttl_seconds": 3600},
                               headers=shop.customer.auth)).json()
    clock.advance(15 * 60 * 1000 - 5_000)
    assert (await client.get("/widget/buddy", headers=bearer(minted["token"]))).status_code == 200
    clock.advance(5_000)
    assert_error(await client.get("/widget/buddy", headers=bearer(minted["token"])), 401, "widget_session_expired")
    assert_error(await client.get("/widget/stream", params={"token": minted["token"]}), 401,
                 "widget_session_expired")
    assert (await client.get("/widget/buddy", headers=bearer(embed["token"]))).status_code == 200
    clock.advance(45 * 60 * 1000)
    assert_error(await client.get("/widget/buddy", headers=bearer(embed["token"])), 401, "widget_session_expired")
    # Revoking a finished session changes nothing.
    late = await client.delete(f"/widget-sessions/{minted['session_id']}", headers=shop.customer.auth)
    assert late.status_code == 200 and late.json()["status"] == "expired" and late.json()["already_final"] is True


# -- isolation ------------------------------------------------------------------------------------------------
async def test_a_widget_token_reaches_only_its_buddy_of_its_customer(client: httpx.AsyncClient) -> None:
    a = await make_shop(client)
    second = (await hatch_buddy(client, a.customer, "user_2"))["buddy_id"]
    b = await make_shop(client, coins=7, user_id="user_1")
    token_a = (await session(client, a, ["marketplace:purchase", "items:equip"]))["token"]
    token_b = (await session(client, b, ["items:equip"]))["token"]

    assert (await client.get("/widget/buddy", headers=bearer(token_a))).json()["buddy_id"] == a.buddy_id
    assert (await client.get("/widget/buddy", headers=bearer(token_b))).json()["buddy_id"] == b.buddy_id
    # A's equip operation is not visible to B's widget, nor to A's widget for another buddy.
    op = await client.post("/widget/equip", json={"equip": [a.items["Hat"]["item_id"]]}, headers=bearer(token_a))
    op_id = op.json()["operation_id"]
    assert_error(await client.get(f"/widget/operations/{op_id}", headers=bearer(token_b)), 404,
                 "operation_not_found")
    token_second = (await session(client, a, ["items:equip"], buddy_id=second))["token"]
    assert_error(await client.get(f"/widget/operations/{op_id}", headers=bearer(token_second)), 404,
                 "operation_not_found")
    assert (await client.get(f"/widget/operations/{op_id}", headers=bearer(token_a))).status_code == 200
    # B's widget cannot buy from A's catalog (the item does not exist for B's customer).
    assert_error(await client.post("/widget/purchase", json={"item_id": a.items["Hat"]["item_id"]},
                                   headers=bearer((await session(client, b, ["marketplace:purchase"]))["token"])),
                 404, "item_not_found")
    # A widget token is nobody on the server API, and a server key is nobody on the widget API.
    assert_error(await client.get(f"/buddies/{a.buddy_id}", headers=bearer(token_a)), 401, "invalid_token")
    assert_error(await client.get("/widget/buddy", headers=a.customer.auth), 401, "invalid_widget_token")
    # Forged tokens: right id, wrong secret; garbage.
    forged = token_a[:-6] + ("000000" if not token_a.endswith("000000") else "111111")
    assert_error(await client.get("/widget/buddy", headers=bearer(forged)), 401, "invalid_widget_token")
    assert_error(await client.get("/widget/buddy", headers=bearer("wgt_sess_nope")), 401, "invalid_widget_token")
    assert_error(await client.get("/widget/buddy"), 401, "unauthorized")
    assert (await client.get(f"/buddies/{b.buddy_id}", headers=b.customer.auth)).json()["coins"] == 7


# -- embed tokens --------------------------------------------------------------------------------------------
def _swap_claims(token: str, **changes: Any) -> str:
    payload, signature = token.removeprefix("wgt_embed_").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"wgt_embed_{forged}.{signature}"


async def test_an_embed_token_is_signed_long_lived_read_only_and_revocable(client: httpx.AsyncClient) -> None:
    shop = await make_shop(client)
    other = await make_shop(client)
    auth = shop.customer.auth
    assert_error(await client.post("/embed-tokens", json={"buddy_id": shop.buddy_id,
                                                          "scopes": ["marketplace:purchase"]}, headers=auth),
                 400, "validation_error")
    minted = await client.post("/embed-tokens", json={"buddy_id": shop.buddy_id}, headers=auth)
    assert minted.status_code == 201, minted.text
    embed = minted.json()
    assert embed["token"].startswith("wgt_embed_") and embed["kind"] == "embed"
    assert embed["expires_in"] == 30 * 86_400
    assert embed["scopes"] == ["buddy:read", "badges:read", "marketplace:read", "operations:read"]
    token = bearer(embed["token"])
    for path in ("/widget/buddy", "/widget/state", "/widget/badges", "/widget/marketplace"):
        assert (await client.get(path, headers=token)).status_code == 200, path
    hat = shop.items["Hat"]["item_id"]
    assert_error(await client.post("/widget/purchase", json={"item_id": hat}, headers=token), 403,
                 "insufficient_scope")
    assert_error(await client.post("/widget/equip", json={"equip": [hat]}, headers=token), 403,
                 "insufficient_scope")
    # The signature covers the claims: pointing it at another buddy or customer is a forgery.
    for changes in ({"bid": other.buddy_id}, {"cid": other.customer.customer_id}, {"sid": "0" * 16}):
        assert_error(await client.get("/widget/buddy", headers=bearer(_swap_claims(embed["token"], **changes))),
                     401, "invalid_widget_token")
    assert_error(await client.post("/embed-tokens", json={"buddy_id": shop.buddy_id, "ttl_seconds": 10},
                                   headers=auth), 400, "validation_error")

    assert (await client.delete(f"/widget-sessions/{embed['session_id']}", headers=auth)).status_code == 200
    assert_error(await client.get("/widget/buddy", headers=token), 401, "widget_session_revoked")


async def test_preview_tokens_for_the_dashboard(client: httpx.AsyncClient) -> None:
    customer = await register(client)
    assert_error(await client.get("/widget-sessions/preview", headers=customer.jwt), 409, "no_buddy_to_preview")
    shop = await make_shop(client, customer=customer)
    preview = await client.get("/widget-sessions/preview", headers=customer.jwt)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["buddy_id"] == shop.buddy_id
    assert body["read_only"]["kind"] == body["interactive"]["kind"] == "preview"
    assert body["read_only"]["expires_in"] == 600
    assert "marketplace:purchase" not in body["read_only"]["scopes"]
    assert "marketplace:purchase" in body["interactive"]["scopes"]
    read_only = bearer(body["read_only"]["token"])
    assert_error(await client.post("/widget/purchase", json={"item_id": shop.items["Hat"]["item_id"]},
                                   headers=read_only), 403, "insufficient_scope")
    assert (await client.get("/widget/state", headers=read_only)).status_code == 200
    assert_error(await client.get("/widget-sessions/preview", params={"buddy_id": "bdy_x"}, headers=customer.jwt),
                 404, "buddy_not_found")


# -- reads ----------------------------------------------------------------------------------------------------
async def test_widget_reads_badges_streaks_evolutions_tokens_theme(client: httpx.AsyncClient) -> None:
    shop = await make_shop(client, coins=0)
    auth = shop.customer.auth
    r = await client.post("/events", json={"event_id": "evt_w1", "user_id": "user_1", "type": "lesson_completed"},
                          headers=auth)
    assert r.status_code == 200, r.text
    token = bearer((await session(client, shop))["token"])

    badges = (await client.get("/widget/badges", headers=token)).json()
    by_key = {b["badge_key"]: b for b in badges["data"]}
    assert set(by_key) == {"first_lesson", "ten_lessons", "week_streak"}
    assert by_key["first_lesson"]["earned"] is True and by_key["first_lesson"]["awarded_at"]
    assert by_key["ten_lessons"]["earned"] is False and badges["earned"] == 1 and badges["total"] == 3

    streak = (await client.get("/widget/streak/daily_learning", headers=token)).json()
    assert (streak["current"], streak["longest"], streak["name"], streak["period"]) == (1, 1, "Daily learning",
                                                                                      "daily")
    assert_error(await client.get("/widget/streak/nope", headers=token), 404, "streak_not_found")
    evolutions = (await client.get("/widget/evolutions", headers=token)).json()
    assert evolutions["current_stage"] == 1 and evolutions["data"][0]["source"] == "hatch"
    assert evolutions["progress"]["buddy_id"] == shop.buddy_id
    wallet = (await client.get("/widget/tokens", headers=token)).json()
    assert wallet["balances"]["xp"] == 20
    buddy = (await client.get("/widget/buddy", headers=token)).json()
    assert buddy["coins"] == 60 and buddy["widget_image_url"] == f"{API}/widget/art.svg"

    theme = (await client.get("/widget/theme", headers=token)).json()
    assert theme["mode"] == "light" and theme["size"] == "standard" and theme["custom_css"] is None
    patched = await client.patch("/customers/me/settings", json={
        "widget_size": "compact", "widget_theme_config": {"surface": "dark", "geometry": "pill"},
        "widget_custom_css": ".ql-name { letter-spacing: 1px; }"}, headers=auth)
    assert patched.status_code == 200, patched.text
    theme = (await client.get("/widget/theme", headers=token)).json()
    assert (theme["mode"], theme["size"], theme["border_radius"]) == ("dark", "compact", 24)
    assert theme["theme_config"]["surface"] == "dark" and theme["custom_css"].startswith(".ql-name")

    art = await client.get("/widget/art.svg", params={"token": token["Authorization"][7:]})
    assert art.status_code == 200 and art.headers["content-type"].startswith("image/svg+xml")
    assert art.text.startswith("<svg")
    item = shop.items["Hat"]["item_id"]
    item_art = await client.get(f"/widget/marketplace/items/{item}/art.svg", headers=token)
    assert item_art.status_code == 200 and "<svg" in item_art.text
    assert_error(await client.get(f"/widget/marketplace/items/{shop.items['Secret']['item_id']}/art.svg",
                                  headers=token), 404, "item_not_found")
    viewed = await client.post(f"/widget/marketplace/items/{item}/track-view", headers=token)
    assert viewed.status_code == 202 and viewed.json()["views"] == 1
    viewed = await client.post(f"/widget/marketplace/items/{item}/track-view", headers=token)
    assert viewed.json()["views"] == 2
    assert_error(await client.post("/widget/marketplace/items/itm_nope/track-view", headers=token), 404,
                 "item_not_found")


async def test_what_questline_does_not_have_is_an_honest_501(client: httpx.AsyncClient) -> None:
    shop = await make_shop(client, coins=0)
    token = bearer((await session(client, shop))["token"])
    for method, path, code in (("GET", "/widget/path", "paths_not_supported"),
                               ("GET", "/widget/path/onboarding", "paths_not_supported"),
                               ("POST", "/widget/path/onboarding/sub-steps/s1/complete", "paths_not_supported"),
                               ("POST", "/widget/appearance/rerender", "rerender_not_supported"),
                               ("POST", "/widget/track", "browser_events_not_supported")):
        assert_error(await client.request(method, path, headers=token), 501, code)
        assert_error(await client.request(method, path), 401, "unauthorized")
    assert_error(await client.get("/widget/nope", headers=token), 404, "not_found")


async def test_the_widget_script_and_demo_page_are_served(client: httpx.AsyncClient) -> None:
    shop = await make_shop(client, coins=0)
    js = await client.get("/widget/embed.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "EventSource" in js.text and "/widget/purchase" in js.text
    css = await client.get("/widget/embed.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert_error(await client.get("/widget/demo"), 401, "unauthorized")
    assert_error(await client.get("/widget/demo", params={"token": "wgt_sess_x"}), 401, "invalid_widget_token")
    token = (await session(client, shop))["token"]
    page = await client.get("/widget/demo", params={"token": token})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'data-token="{token}"' in page.text and f'src="{API}/widget/embed.js"' in page.text
    # CORS: the widget runs on the customer's origin.
    pre = await client.options("/widget/purchase", headers={
        "Origin": "https://customer.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "*"


class Frames:
    """SSE frames of one streamed response, read incrementally (one line iterator for its life)."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.closed = False

    async def next(self, count: int = 1, seconds: float = 5.0) -> list[dict[str, str]]:
        frames: list[dict[str, str]] = []
        current: dict[str, str] = {}

        async def collect() -> None:
            async for line in self.lines:
                if line == "":
                    if "data" in current:
                        frames.append(dict(current))
                        if len(frames) >= count:
                            return
                    current.clear()
                elif not line.startswith(":"):
                    field, _, value = line.partition(":")
                    current[field] = value[1:] if value.startswith(" ") else value
            self.closed = True

        await asyncio.wait_for(collect(), seconds)
        return frames


# -- live stream ----------------------------------------------------------------------------------------------
async def test_the_stream_carries_buddy_changes_and_ends_when_the_session_is_revoked(runtime: Runtime) -> None:
    app = create_app(runtime, extra_routes=hatched_routes(), manage_runtime=False)
    async with live_server(app) as url, httpx.AsyncClient(base_url=url + API, timeout=10) as http:
        shop = await make_shop(http, coins=10)
        other = await make_shop(http, coins=10)
        minted = await session(http, shop)
        other_token = (await session(http, other))["token"]
        async with http.stream("GET", "/widget/stream", params={"token": minted["token"]}) as live, \
                http.stream("GET", "/widget/stream", params={"token": other_token}) as elsewhere:
            assert live.status_code == 200 and live.headers["content-type"].startswith("text/event-stream")
            r = await http.post(f"/buddies/{shop.buddy_id}/coins", json={"amount": 5}, headers=shop.customer.auth)
            assert r.status_code == 200
            feed, other_feed = Frames(live), Frames(elsewhere)
            frames = await feed.next()
            assert frames[0]["event"] == "buddy"
            update = json.loads(frames[0]["data"])
            assert update["buddy_id"] == shop.buddy_id and update["coins"] == 15
            with pytest.raises(TimeoutError):
                await other_feed.next(seconds=0.5)  # no update of A reaches B

            revoked = await http.delete(f"/widget-sessions/{minted['session_id']}", headers=shop.customer.auth)
            assert revoked.status_code == 200
            frames = await feed.next()
            assert frames[0]["event"] == "session_ended" and json.loads(frames[0]["data"]) == {"reason": "revoked"}
            assert await feed.next(seconds=5) == [] and feed.closed  # the server ended the stream
        refused = await http.get("/widget/stream", params={"token": minted["token"]})
        assert_error(refused, 401, "widget_session_revoked")


async def test_an_open_stream_ends_when_its_session_expires(runtime: Runtime, clock: ShiftedClock) -> None:
    app = create_app(runtime, extra_routes=hatched_routes(), manage_runtime=False)
    async with live_server(app) as url, httpx.AsyncClient(base_url=url + API, timeout=10) as http:
        shop = await make_shop(http, coins=10)
        minted = await session(http, shop)
        async with http.stream("GET", "/widget/stream", params={"token": minted["token"]}) as live:
            assert live.status_code == 200
            feed = Frames(live)
            clock.advance(15 * 60 * 1000)
            # Whichever comes first ends it: the session's expiry alarm (told to the stream) or
            # the stream's next wake-up (here: an update) finding the time up.
            r = await http.post(f"/buddies/{shop.buddy_id}/coins", json={"amount": 1}, headers=shop.customer.auth)
            assert r.status_code == 200
            frames = await feed.next(2)
            frames += [] if frames[-1]["event"] == "session_ended" else await feed.next()
            assert [f["event"] for f in frames[:-1]] in ([], ["buddy"])
            assert frames[-1]["event"] == "session_ended"
            assert json.loads(frames[-1]["data"]) == {"reason": "expired"}
            assert await feed.next(seconds=5) == [] and feed.closed
        assert_error(await http.get("/widget/stream", params={"token": minted["token"]}), 401,
                     "widget_session_expired")
