"""The embeddable widget's API, ``/api/v1/widget/*``, and the widget itself.

Every route is authenticated by a widget token (interactive session or embed
token) and enforces one scope; the token fixes the customer and the buddy, so a
widget can reach nothing else. Purchases and equips call the very buddy turns the
server API uses (``actors/hatched_buddy_items.py``); nothing is reimplemented.

``GET /widget/stream`` is the buddy's live feed (SSE from the buddy's hub). The
token may come as ``?token=`` because EventSource cannot set headers; the stream
also watches the session, so a revocation ends it the moment it commits, and
expiry ends it on time.

``embed.js``/``embed.css`` are the widget (plain JS, no build step), public like
any script a page includes; ``/widget/demo?token=`` is a page embedding it.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
from collections.abc import AsyncIterator
from importlib import resources
from typing import Annotated, Any

import msgspec
from sse_starlette.sse import ServerSentEvent
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from questline.actors.hatched_buddy import buddy_address
from questline.actors.hatched_customer import customer_address
from questline.actors.hatched_market import market_address
from questline.actors.hatched_widget import buddy_hub, session_address, widget_stats_address
from questline.engine import Address, Runtime
from questline.engine.feeds import Watch
from questline.http.hatched.auth import runtime_of
from questline.http.hatched.conventions import idempotency_key, json, path_param, read_body
from questline.http.hatched.eggs import accepted, start_buddy_operation
from questline.http.hatched.errors import endpoint
from questline.http.hatched.widget_sessions import embed_signing_key
from questline.http.sse import hub_stream
from questline.rules.hatched_art import buddy_svg
from questline.rules.hatched_errors import HatchedError
from questline.rules.hatched_market import item_svg
from questline.rules.hatched_models import Strict
from questline.rules.hatched_widget import parse_token, theme_of, token_hash, verify_embed

API = "/api/v1"
Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
IdemKey = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
MAX_EQUIP = 20
_json = msgspec.json.Encoder()


class WidgetPrincipal(msgspec.Struct, frozen=True):
    session_id: str
    customer_id: str
    buddy_id: str
    kind: str
    scopes: list[str]
    expires_at: int

    @property
    def buddy(self) -> Address:
        return buddy_address(self.customer_id, self.buddy_id)


class PurchaseBody(Strict, kw_only=True):
    item_id: Ident
    marketplace_id: Ident | None = None
    idempotency_key: IdemKey | None = None


class EquipBody(Strict, kw_only=True):
    equip: Annotated[list[Ident], msgspec.Meta(max_length=MAX_EQUIP)] = []
    unequip: Annotated[list[Ident], msgspec.Meta(max_length=MAX_EQUIP)] = []


# -- authentication ----------------------------------------------------------------------------
def _token(request: Request, query: bool) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if query and request.query_params.get("token"):
        return request.query_params["token"]
    where = "an Authorization: Bearer header or a ?token= parameter" if query else "an Authorization: Bearer header"
    raise HatchedError(401, "unauthorized", f"Missing widget token; send it as {where}.")


async def _session_of(request: Request, token: str) -> tuple[str, str]:
    """``(session actor key, token hash)``; embed tokens are signature-checked first (no call for forgeries)."""
    form, raw_id, digest = parse_token(token)
    if form == "embed":
        raw_id = verify_embed(await embed_signing_key(request), token)["sid"]
        digest = token_hash(token)
    return raw_id, digest


async def widget_principal(request: Request, scope: str | None, query: bool = False) -> WidgetPrincipal:
    """The session behind the request's widget token, refused unless live and granted ``scope``."""
    raw_id, digest = await _session_of(request, _token(request, query))
    grant = await runtime_of(request).call(session_address(raw_id), "authorize", digest, scope)
    return msgspec.convert(grant, WidgetPrincipal)


def _art_url(item_id: str) -> str:
    return f"{API}/widget/marketplace/items/{item_id}/art.svg"


def _for_widget(buddy: dict[str, Any]) -> dict[str, Any]:
    """The canonical view, with the art URL the widget can load with its token."""
    return {**buddy, "widget_image_url": f"{API}/widget/art.svg"}


# -- reads -------------------------------------------------------------------------------------------
@endpoint
async def get_buddy(request: Request) -> Response:
    who = await widget_principal(request, "buddy:read")
    return json(_for_widget(await runtime_of(request).call(who.buddy, "get")))


async def _config_content(runtime: Runtime, customer_id: str, version_id: str) -> dict[str, Any]:
    """The buddy's pinned config version (badge and streak definitions live there)."""
    return (await runtime.call(customer_address(customer_id), "get_version", version_id))["content"]


@endpoint
async def get_state(request: Request) -> Response:
    """Everything the widget draws in one call; badges only when the token may read them."""
    who = await widget_principal(request, "buddy:read")
    runtime = runtime_of(request)
    buddy, evolution, wallet, items = await asyncio.gather(
        runtime.call(who.buddy, "get"), runtime.call(who.buddy, "evolution"),
        runtime.call(who.buddy, "token_wallet"), runtime.call(who.buddy, "purchased_items"))
    badges = await runtime.call(who.buddy, "list_badges") if "badges:read" in who.scopes else None
    return json({"buddy": _for_widget(buddy), "evolution": evolution, "tokens": wallet,
                 "items": [{**i, "widget_image_url": _art_url(i["item_id"])} for i in items],
                 "badges": badges,
                 "session": {"session_id": who.session_id, "kind": who.kind, "scopes": who.scopes,
                             "interactive": any(s in who.scopes for s in ("marketplace:purchase", "items:equip"))}})


@endpoint
async def get_badges(request: Request) -> Response:
    """The badge catalog of the buddy's pinned config, each marked earned or not."""
    who = await widget_principal(request, "badges:read")
    runtime = runtime_of(request)
    buddy = await runtime.call(who.buddy, "get")
    held, content = await asyncio.gather(runtime.call(who.buddy, "list_badges"),
                                         _config_content(runtime, who.customer_id, buddy["config_version_id"]))
    awarded = {b["badge_key"]: b for b in held}
    data = []
    for definition in content.get("badge_definitions", {}).values():
        award = awarded.pop(definition["key"], None)
        data.append({"badge_key": definition["key"], "name": definition["name"],
                     "description": definition.get("description", ""), "icon_url": definition.get("icon_url"),
                     "earned": award is not None, "awarded_at": award["awarded_at"] if award else None})
    data.extend({"badge_key": b["badge_key"], "name": b["name"], "description": b["description"],
                 "icon_url": b["icon_url"], "earned": True, "awarded_at": b["awarded_at"]} for b in awarded.values())
    return json({"buddy_id": who.buddy_id, "data": data, "earned": sum(b["earned"] for b in data),
                 "total": len(data)})


@endpoint
async def get_tokens(request: Request) -> Response:
    who = await widget_principal(request, "buddy:read")
    return json(await runtime_of(request).call(who.buddy, "token_wallet"))


@endpoint
async def get_evolutions(request: Request) -> Response:
    who = await widget_principal(request, "buddy:read")
    runtime = runtime_of(request)
    timeline, progress = await asyncio.gather(runtime.call(who.buddy, "evolutions"),
                                              runtime.call(who.buddy, "evolution"))
    return json({**timeline, "progress": progress})


@endpoint
async def get_streak(request: Request) -> Response:
    who = await widget_principal(request, "buddy:read")
    runtime = runtime_of(request)
    key = path_param(request, "key")
    metrics = await runtime.call(who.buddy, "progression_metrics")
    content = await _config_content(runtime, who.customer_id, metrics["config_version_id"])
    definition = next((d for d in content.get("streak_definitions", {}).values() if d["key"] == key), None)
    state = metrics["streaks"].get(key)
    if definition is None and state is None:
        raise HatchedError(404, "streak_not_found", f"Streak {key} is not defined for this buddy.")
    state = state or {"current": 0, "longest": 0, "last_period_start": None}
    return json({"buddy_id": who.buddy_id, "streak_key": key, "name": definition["name"] if definition else key,
                 "period": definition.get("period", "daily") if definition else state.get("period", "daily"),
                 "current": state["current"], "longest": state["longest"],
                 "last_period_start": state.get("last_period_start")})


@endpoint
async def get_theme(request: Request) -> Response:
    """Any live widget token may read its customer's theme (it is how the widget looks)."""
    who = await widget_principal(request, None)
    profile = await runtime_of(request).call(customer_address(who.customer_id), "profile")
    return json(theme_of(profile.get("settings") or {}))


@endpoint
async def get_marketplace(request: Request) -> Response:
    """The storefront turn: items visible to this buddy, each with the purchase check's verdict."""
    who = await widget_principal(request, "marketplace:read")
    shop = await runtime_of(request).call(who.buddy, "storefront", request.query_params.get("marketplace_id") or None)
    shop["items"] = [{**{k: v for k, v in item.items() if k != "marketplace_active"},
                      "widget_image_url": _art_url(item["item_id"])} for item in shop["items"]]
    return json(shop)


async def _visible_item(runtime: Runtime, who: WidgetPrincipal, item_id: str) -> dict[str, Any]:
    """A catalog item of this customer that a widget may show (hidden items do not exist for it)."""
    item = await runtime.call(market_address(who.customer_id), "item_snapshot", item_id, None)
    if item["visibility"] == "hidden":
        raise HatchedError(404, "item_not_found", f"Item {item_id} not found.")
    return item


@endpoint
async def track_view(request: Request) -> Response:
    who = await widget_principal(request, "marketplace:read")
    runtime = runtime_of(request)
    item = await _visible_item(runtime, who, path_param(request, "id"))
    counted = await runtime.call(widget_stats_address(who.customer_id), "track_view", item["item_id"], who.buddy_id)
    return json({"tracked": True, **counted}, 202)


@endpoint
async def get_operation(request: Request) -> Response:
    """Only operations on this session's buddy (any other id is simply not found)."""
    who = await widget_principal(request, "operations:read")
    op_id = path_param(request, "id")
    op = await runtime_of(request).call(customer_address(who.customer_id), "get_operation", op_id)
    if op["type"] == "hatch" or op["buddy_id"] != who.buddy_id:
        raise HatchedError(404, "operation_not_found", f"Operation {op_id} not found.")
    return json(op)


@endpoint
async def buddy_art(request: Request) -> Response:
    who = await widget_principal(request, "buddy:read", query=True)
    art = await runtime_of(request).call(who.buddy, "art_inputs")
    return Response(buddy_svg(art["traits"], art["stage"], art["equipped"]), media_type="image/svg+xml",
                    headers={"Cache-Control": "private, no-cache"})


@endpoint
async def item_art(request: Request) -> Response:
    who = await widget_principal(request, "marketplace:read", query=True)
    runtime = runtime_of(request)
    item = await _visible_item(runtime, who, path_param(request, "id"))
    art = await runtime.call(market_address(who.customer_id), "item_art", item["marketplace_id"], item["item_id"])
    return Response(item_svg(art["seed"], art["slot"], art["name"]), media_type="image/svg+xml",
                    headers={"Cache-Control": "private, max-age=300"})


# -- writes ----------------------------------------------------------------------------------------------
@endpoint
async def purchase(request: Request) -> Response:
    """The buddy's purchase turn: check, debit, ledger and grant in one turn."""
    who = await widget_principal(request, "marketplace:purchase")
    body = await read_body(request, PurchaseBody)
    result = await runtime_of(request).call(who.buddy, "purchase", body.item_id, body.marketplace_id,
                                            idempotency_key(request, body.idempotency_key))
    return json(result)


@endpoint
async def equip(request: Request) -> Response:
    """Starts an ``equip_item`` operation on this buddy (poll ``/widget/operations/{id}``)."""
    who = await widget_principal(request, "items:equip")
    body = await read_body(request, EquipBody)
    if not body.equip and not body.unequip:
        message = "property equip or unequip must list at least one item_id"
        raise HatchedError(400, "validation_error", message, {"errors": [message]})
    runtime = runtime_of(request)
    checked = await runtime.call(who.buddy, "check_equip", body.equip, body.unequip)
    op = await start_buddy_operation(request, who.customer_id, "equip_item", who.buddy_id,
                                     {"equip": checked["equip"], "unequip": checked["unequip"]})
    return accepted(op)


# -- what questline does not have: said plainly ---------------------------------------------------------
@endpoint
async def paths_unsupported(request: Request) -> Response:
    await widget_principal(request, "buddy:read")
    raise HatchedError(501, "paths_not_supported",
                       "Learning paths are not a feature of this server; the widget shows buddy, badges, "
                       "evolutions and the marketplace.")


@endpoint
async def rerender_unsupported(request: Request) -> Response:
    await widget_principal(request, "buddy:read")
    raise HatchedError(501, "rerender_not_supported",
                       "Buddy art is drawn from the buddy's current state on every request, so there is no "
                       "stage image to re-render.", {"image_url": f"{API}/widget/art.svg"})


@endpoint
async def track_unsupported(request: Request) -> Response:
    await widget_principal(request, "buddy:read")
    raise HatchedError(501, "browser_events_not_supported",
                       "Events are accepted from your server only (POST /api/v1/events with a secret key), "
                       "so a browser cannot mint rewards.")


# -- live stream -----------------------------------------------------------------------------------------
def _ended(reason: str) -> ServerSentEvent:
    return ServerSentEvent(data=_json.encode({"reason": reason}).decode(), event="session_ended")


async def _until_session_ends(frames: AsyncIterator[Any], runtime: Runtime, session: Address, digest: str,
                              watch: Watch, expires_at: int) -> AsyncIterator[Any]:
    """Pass the hub's frames through until the session's actor says it was revoked or expired.

    If the session's feed closes for another reason (a shard restart), the session
    is asked directly and, if still live, watched again.
    """
    it = frames.__aiter__()
    ended = asyncio.ensure_future(watch.get())
    step: asyncio.Future[Any] | None = None
    try:
        while True:
            step = asyncio.ensure_future(it.__anext__())
            await asyncio.wait({step, ended}, return_when=asyncio.FIRST_COMPLETED)
            if step.done():
                try:
                    frame = step.result()
                except StopAsyncIteration:
                    if runtime.config.clock() >= expires_at:  # hub_stream ends streams at expiry
                        yield _ended("expired")
                    return
                step = None
                yield frame
                continue
            step.cancel()
            await asyncio.gather(step, return_exceptions=True)  # reaped; a cancel of ours still raises
            step = None
            told = ended.result()
            if told is not None:
                yield _ended(told.get("event", "revoked"))
                return
            try:  # the feed closed without a word: ask the session itself
                await runtime.call(session, "authorize", digest, "buddy:read")
            except HatchedError as exc:
                yield _ended("revoked" if exc.code == "widget_session_revoked" else "expired")
                return
            await watch.aclose()
            watch = await runtime.watch(session)
            ended = asyncio.ensure_future(watch.get())
    finally:
        helpers = [task for task in (ended, step) if task is not None]
        for task in helpers:
            task.cancel()
        try:
            # gather retrieves every helper's outcome, even if this stream is being cancelled
            await asyncio.gather(*helpers, return_exceptions=True)
        finally:
            await watch.aclose()
            with contextlib.suppress(Exception):
                await it.aclose()  # type: ignore[attr-defined]


@endpoint
async def stream(request: Request) -> Response:
    """SSE ``buddy`` frames (the canonical buddy view) after every change; ends on revoke/expiry."""
    runtime = runtime_of(request)
    raw_id, digest = await _session_of(request, _token(request, query=True))
    session = session_address(raw_id)
    watch = await runtime.watch(session)  # before the check: a revocation right after it is not missed
    try:
        grant = await runtime.call(session, "authorize", digest, "buddy:read")
        who = msgspec.convert(grant, WidgetPrincipal)
        response = await hub_stream(request, runtime, buddy_hub(f"{who.customer_id}/{who.buddy_id}"),
                                    expires_at_ms=who.expires_at)
    except BaseException:
        await watch.aclose()
        raise
    response.body_iterator = _until_session_ends(response.body_iterator, runtime, session, digest, watch,
                                                 who.expires_at)
    return response


# -- the widget itself --------------------------------------------------------------------------------------
def _static(name: str) -> str:
    return resources.files("questline.http.hatched").joinpath("static", name).read_text(encoding="utf-8")


async def embed_js(request: Request) -> Response:
    """Public: a script tag cannot authenticate; the data-token attribute does, on every API call."""
    return Response(_static("widget.js"), media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"})


async def embed_css(request: Request) -> Response:
    return Response(_static("widget.css"), media_type="text/css; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"})


@endpoint
async def demo_page(request: Request) -> Response:
    """A page embedding the snippet for ``?token=`` (checked first: no page for a dead token)."""
    token = _token(request, query=True)
    who = await widget_principal(request, "buddy:read", query=True)
    page = _static("demo.html").replace("{{TOKEN}}", html.escape(token, quote=True)) \
        .replace("{{BUDDY_ID}}", html.escape(who.buddy_id)).replace("{{API}}", API)
    return Response(page, media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def routes() -> list[BaseRoute]:
    """One mount behind CORS: the widget runs on the customer's origin, tokens are the boundary."""
    cors = Middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID", "X-Request-Id"],
        expose_headers=["X-Request-Id", "Retry-After"],
        max_age=600,
    )
    return [Mount("/widget", middleware=[cors], routes=[
        Route("/buddy", get_buddy, methods=["GET"]),
        Route("/state", get_state, methods=["GET"]),
        Route("/badges", get_badges, methods=["GET"]),
        Route("/tokens", get_tokens, methods=["GET"]),
        Route("/evolutions", get_evolutions, methods=["GET"]),
        Route("/streak/{key}", get_streak, methods=["GET"]),
        Route("/theme", get_theme, methods=["GET"]),
        Route("/marketplace", get_marketplace, methods=["GET"]),
        Route("/marketplace/items/{id}/track-view", track_view, methods=["POST"]),
        Route("/marketplace/items/{id}/art.svg", item_art, methods=["GET"]),
        Route("/operations/{id}", get_operation, methods=["GET"]),
        Route("/art.svg", buddy_art, methods=["GET"]),
        Route("/purchase", purchase, methods=["POST"]),
        Route("/equip", equip, methods=["POST"]),
        Route("/stream", stream, methods=["GET"]),
        Route("/path", paths_unsupported, methods=["GET"]),
        Route("/path/{key}", paths_unsupported, methods=["GET"]),
        Route("/path/{key}/sub-steps/{sub_key}/complete", paths_unsupported, methods=["POST"]),
        Route("/appearance/rerender", rerender_unsupported, methods=["POST"]),
        Route("/track", track_unsupported, methods=["POST"]),
        Route("/embed.js", embed_js, methods=["GET"]),
        Route("/embed.css", embed_css, methods=["GET"]),
        Route("/demo", demo_page, methods=["GET"]),
    ])]
