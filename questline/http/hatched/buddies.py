"""Buddies and their economy: canonical state, rename, archive, art, coins, ledger."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from questline.actors.hatched_buddy import buddy_address
from questline.actors.hatched_customer import customer_address
from questline.http.hatched.auth import require_read, require_write, runtime_of
from questline.http.hatched.conventions import (
    decode_cursor,
    encode_cursor,
    idempotency_key,
    json,
    page_params,
    paginate_page,
    path_param,
    query_enum,
    query_int,
    read_body,
)
from questline.http.hatched.errors import endpoint
from questline.rules.hatched_art import buddy_svg
from questline.rules.hatched_errors import HatchedError
from questline.rules.hatched_models import TOKEN_KEYS, Name, Strict

Amount = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
Reason = Annotated[str, msgspec.Meta(max_length=200)]
IdemKey = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class RenameBody(Strict, kw_only=True):
    name: Name


class CoinsBody(Strict, kw_only=True):
    amount: Amount
    reason: Reason = ""
    idempotency_key: IdemKey | None = None


async def _buddy(request: Request, write: bool) -> tuple[Any, Any, str]:
    principal = await (require_write(request) if write else require_read(request, "buddies:read"))
    return runtime_of(request), principal.customer_id, path_param(request, "id")


@endpoint
async def list_buddies(request: Request) -> Response:
    principal = await require_read(request, "buddies:read")
    status = query_enum(request, "status", ("active", "archived"))
    page, limit = page_params(request)
    q = request.query_params
    buddies = await runtime_of(request).call(customer_address(principal.customer_id), "list_buddies",
                                             q.get("user_id") or None, status, q.get("config_version_id") or None)
    buddies.sort(key=lambda b: (b["created_at"], b["buddy_id"]), reverse=True)
    return json(paginate_page(buddies, page, limit))


@endpoint
async def get_buddy(request: Request) -> Response:
    runtime, customer_id, buddy_id = await _buddy(request, write=False)
    return json(await runtime.call(buddy_address(customer_id, buddy_id), "get"))


@endpoint
async def rename_buddy(request: Request) -> Response:
    runtime, customer_id, buddy_id = await _buddy(request, write=True)
    body = await read_body(request, RenameBody)
    view = await runtime.call(buddy_address(customer_id, buddy_id), "rename", body.name)
    await runtime.call(customer_address(customer_id), "note_buddy", view)
    return json(view)


@endpoint
async def archive_buddy(request: Request) -> Response:
    runtime, customer_id, buddy_id = await _buddy(request, write=True)
    view = await runtime.call(buddy_address(customer_id, buddy_id), "archive")
    await runtime.call(customer_address(customer_id), "note_buddy", view)
    return json(view)


@endpoint
async def buddy_art(request: Request) -> Response:
    runtime, customer_id, buddy_id = await _buddy(request, write=False)
    art = await runtime.call(buddy_address(customer_id, buddy_id), "art_inputs")
    svg = buddy_svg(art["traits"], art["stage"], art["equipped"])
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=60"})


@endpoint
async def earn_coins(request: Request) -> Response:
    runtime, customer_id, buddy_id = await _buddy(request, write=True)
    body = await read_body(request, CoinsBody)
    result = await runtime.call(buddy_address(customer_id, buddy_id), "change_coins", body.amount,
                                body.reason or "manual_earn", "manual", idempotency_key(request, body.idempotency_key))
    return json(result)


@endpoint
async def spend_coins(request: Request) -> Response:
    runtime, customer_id, buddy_id = await _buddy(request, write=True)
    body = await read_body(request, CoinsBody)
    result = await runtime.call(buddy_address(customer_id, buddy_id), "change_coins", -body.amount,
                                body.reason or "manual_spend", "manual", idempotency_key(request, body.idempotency_key))
    return json(result)


@endpoint
async def ledger(request: Request) -> Response:
    """Cursor-paginated ``{data, nextCursor}``, newest first."""
    principal = await require_write(request)
    buddy_id = path_param(request, "buddyId")
    limit = query_int(request, "limit", 20, 1, 100)
    currency = query_enum(request, "currency", ("coins", *TOKEN_KEYS))
    raw = request.query_params.get("cursor")
    before = None
    if raw:
        position = decode_cursor(raw)
        if len(position) != 1 or not isinstance(position[0], int):
            raise HatchedError(400, "invalid_cursor", "The cursor is malformed or expired.")
        before = position[0]
    page = await runtime_of(request).call(buddy_address(principal.customer_id, buddy_id), "ledger",
                                          before, limit, currency)
    next_cursor = encode_cursor([page["next_before"]]) if page["next_before"] else None
    return json({"data": [{k: v for k, v in row.items() if k != "seq"} for row in page["rows"]],
                 "nextCursor": next_cursor})


def routes() -> list[BaseRoute]:
    return [
        Route("/buddies", list_buddies, methods=["GET"]),
        Route("/buddies/{id}", get_buddy, methods=["GET"]),
        Route("/buddies/{id}", rename_buddy, methods=["PATCH"]),
        Route("/buddies/{id}/archive", archive_buddy, methods=["PATCH"]),
        Route("/buddies/{id}/art.svg", buddy_art, methods=["GET"]),
        Route("/buddies/{id}/coins", earn_coins, methods=["POST"]),
        Route("/buddies/{id}/coins/spend", spend_coins, methods=["POST"]),
        Route("/economy/buddies/{buddyId}/ledger", ledger, methods=["GET"]),
    ]


