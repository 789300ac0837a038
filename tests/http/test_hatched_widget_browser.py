"""The embeddable widget in a real browser (Debian chromium through Playwright) against a
real server: it renders the buddy, coins and the marketplace, buys and equips through an
interactive session, and follows server-side changes live over SSE; a revocation ends it.

``make test`` installs chromium when it is missing, so this test never skips; screenshots
land in ``test-artifacts/widget/``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from questline.engine import Runtime
from questline.http import create_app
from questline.http.hatched import HATCHED_ACTORS, hatched_routes
from tests.http.hatched_support import (  # noqa: F401 - fixtures
    API,
    fast_operations_fixture,
    hatch_buddy,
    publish_preset,
    register,
)
from tests.http.live import live_server

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "widget"


@pytest.fixture(name="runtime")
async def runtime_fixture(make_runtime) -> Runtime:
    return await make_runtime("local", actor_classes=list(HATCHED_ACTORS))


@pytest.fixture(name="chromium")
def chromium_fixture() -> str:
    """No skip: a missing browser is a failure (``make test`` installs it first)."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make test` (it installs chromium)"
    return CHROMIUM


@pytest.fixture(name="browser")
async def browser_fixture(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_the_widget_renders_buys_equips_and_updates_live(runtime: Runtime, browser: Browser) -> None:
    app = create_app(runtime, extra_routes=hatched_routes(), manage_runtime=False)
    async with live_server(app) as url, httpx.AsyncClient(base_url=url + API, timeout=10) as http:
        customer = await register(http)
        await publish_preset(http, customer)
        buddy = await hatch_buddy(http, customer)
        buddy_id = buddy["buddy_id"]
        assert (await http.post(f"/buddies/{buddy_id}/coins", json={"amount": 100},
                                headers=customer.auth)).status_code == 200
        market = (await http.post("/marketplaces", json={"name": "Buddy Shop"}, headers=customer.auth)).json()
        hat = (await http.post(f"/marketplaces/{market['id']}/items",
                               json={"name": "Wizard Hat", "price": 30, "slot": "head"},
                               headers=customer.auth)).json()
        crown = (await http.post(f"/marketplaces/{market['id']}/items",
                                 json={"name": "Golden Crown", "price": 500, "slot": "head"},
                                 headers=customer.auth)).json()
        minted = (await http.post("/widget-sessions", json={"buddy_id": buddy_id,
                                                             "scopes": ["badges:read", "marketplace:purchase",
                                                                        "items:equip"]},
                                  headers=customer.auth)).json()

        page = await browser.new_page(viewport={"width": 800, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{url}{API}/widget/demo?token={minted['token']}")

        widget = page.locator(".ql-widget")
        await expect(widget).to_have_attribute("data-state", "ready")
        await expect(page.locator(".ql-name")).to_have_text(buddy["name"])
        await expect(page.locator(".ql-stage")).to_have_text("Stage 1")
        await expect(page.locator(".ql-coins")).to_have_attribute("data-coins", "100")
        await expect(page.locator(".ql-live")).to_have_text("live")
        # The buddy's SVG really loaded (natural size known only after a successful load).
        art = page.locator(".ql-buddy-art img")
        prefix = f"{url}{API}/widget/art.svg?token={minted['token']}&v="
        await expect(art).to_have_attribute("src", re.compile("^" + re.escape(prefix)))
        await page.wait_for_function(
            "() => { const i = document.querySelector('.questline-widget-host').shadowRoot"
            ".querySelector('.ql-buddy-art img'); return i.complete && i.naturalWidth > 0; }")
        hat_row = page.locator(f'.ql-item[data-item-id="{hat["item_id"]}"]')
        crown_row = page.locator(f'.ql-item[data-item-id="{crown["item_id"]}"]')
        await expect(hat_row.locator(".ql-item-name")).to_have_text("Wizard Hat")
        await expect(hat_row.locator(".ql-buy")).to_be_enabled()
        await expect(crown_row.locator(".ql-buy")).to_be_disabled()  # 500 coins: not affordable
        await expect(page.locator(".ql-badge")).to_have_count(3)  # the learning preset's badge catalog
        await shot(page, "1-loaded")

        # Buy: coins drop, the item is owned.
        await hat_row.locator(".ql-buy").click()
        await expect(page.locator(".ql-coins")).to_have_attribute("data-coins", "70")
        await expect(hat_row).to_have_attribute("data-owned", "true")
        await expect(hat_row.locator(".ql-owned-tag")).to_have_text("Owned")
        await expect(page.locator(".ql-message")).to_have_text("Bought Wizard Hat!")
        owned = (await http.get(f"/buddies/{buddy_id}/purchased-items", headers=customer.auth)).json()["data"]
        assert [i["item_id"] for i in owned] == [hat["item_id"]]
        await shot(page, "2-purchased")

        # Equip (an operation: "Processing..." then done), and the art follows.
        owned_row = page.locator(f'.ql-owned-item[data-item-id="{hat["item_id"]}"]')
        before = await art.get_attribute("src")
        await owned_row.locator(".ql-equip").click()
        await expect(owned_row).to_have_attribute("data-equipped", "true")
        await expect(owned_row.locator(".ql-equip")).to_have_text("Unequip")
        await expect(art).not_to_have_attribute("src", before or "")
        server = (await http.get(f"/buddies/{buddy_id}", headers=customer.auth)).json()
        assert server["equipped_items"] == [hat["item_id"]] and server["coins"] == 70
        await shot(page, "3-equipped")

        # A change made server-side reaches the open widget over SSE (no reload, no click).
        assert (await http.post(f"/buddies/{buddy_id}/coins", json={"amount": 480},
                                headers=customer.auth)).status_code == 200
        await expect(page.locator(".ql-coins")).to_have_attribute("data-coins", "550")
        await expect(crown_row.locator(".ql-buy")).to_be_enabled()  # now affordable
        event = await http.post("/events", json={"event_id": "evt_browser_1", "user_id": "user_1",
                                                 "type": "lesson_completed"}, headers=customer.auth)
        assert event.status_code == 200, event.text
        await expect(page.locator(".ql-coins")).to_have_attribute("data-coins", "610")
        await expect(page.locator('.ql-badge[data-badge-key="first_lesson"]')).not_to_have_class("ql-badge ql-locked")
        await shot(page, "4-live-update")

        # Revoking the session ends the widget at once.
        revoked = await http.delete(f"/widget-sessions/{minted['session_id']}", headers=customer.auth)
        assert revoked.status_code == 200
        await expect(widget).to_have_attribute("data-state", "ended")
        await expect(page.locator(".ql-message")).to_have_text("This widget session was ended.")
        await expect(crown_row.locator(".ql-buy")).to_be_disabled()
        await shot(page, "5-revoked")
        assert errors == []
