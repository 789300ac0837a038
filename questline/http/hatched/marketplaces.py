"""Marketplaces, items, purchase, unlock and equip: ``/marketplaces/*`` and the buddy item routes.

Handlers only authenticate, decode and route: the catalog actor owns the catalog,
the buddy's turns own purchase (check + debit + ledger + grant, one turn) and
equip (an ``equip_item`` operation run by the customer actor). Item images are
procedural SVGs served here; uploads are refused honestly (501), not faked.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from questline.actors.hatched_buddy import buddy_address
from questline.actors.hatched_market import market_address
from questline.http.hatched.auth import require_read, require_write, runtime_of
from questline.http.hatched.conventions import (
    idempotency_key,
    json,
    page_params,
    paginate_page,
    path_param,
    query_enum,
    read_body,
    validation_message,
)
from questline.http.hatched.eggs import accepted, start_buddy_operation
from questline.http.hatched.errors import endpoint
from questline.rules.hatched_errors import HatchedError
from questline.rules.hatched_market import (
    SLOTS,
    VISIBILITIES,
    ItemBody,
    ItemUpdate,
    MarketplaceBody,
    MarketplaceUpdate,
    item_svg,
    set_fields,
)
from questline.rules.hatched_models import Strict

Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
IdemKey = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Reason = Annotated[str, msgspec.Meta(max_length=200)]
MAX_IMPORT = 500
MAX_EQUIP = 20


class ImportBody(Strict, kw_only=True):
    items: Annotated[list[msgspec.Raw], msgspec.Meta(min_length=1, max_length=MAX_IMPORT)]


class ReorderBody(Strict, kw_only=True):
    item_ids: Annotated[list[Ident], msgspec.Meta(min_length=1, max_length=1000)]


class PurchaseBody(Strict, kw_only=True):
    item_id: Ident
    marketplace_id: Ident | None = None
    idempotency_key: IdemKey | None = None


class UnlockBody(Strict, kw_only=True):
    item_id: Ident
    marketplace_id: Ident | None = None
    reason: Reason = "manual_unlock"
    idempotency_key: IdemKey | None = None


class EquipBody(Strict, kw_only=True):
    """Items to put on and take off; equipping into a taken slot replaces what is there."""

    equip: Annotated[list[Ident], msgspec.Meta(max_length=MAX_EQUIP)] = []
    unequip: Annotated[list[Ident], msgspec.Meta(max_length=MAX_EQUIP)] = []


def _invalid(message: str, details: dict[str, Any] | None = None) -> HatchedError:
    return HatchedError(400, "validation_error", message, details or {"errors": [message]})


async def _catalog(request: Request, write: bool) -> tuple[Any, Any]:
    principal = await (require_write(request) if write else require_read(request, "marketplace:read"))
    return runtime_of(request), market_address(principal.customer_id)


# -- marketplaces ----------------------------------------------------------------------------
@endpoint
async def list_marketplaces(request: Request) -> Response:
    runtime, catalog = await _catalog(request, write=False)
    page, limit = page_params(request)
    return json(paginate_page(await runtime.call(catalog, "list_marketplaces"), page, limit))


@endpoint
async def create_marketplace(request: Request) -> Response:
    runtime, catalog = await _catalog(request, write=True)
    body = await read_body(request, MarketplaceBody)
    return json(await runtime.call(catalog, "create_marketplace", msgspec.to_builtins(body)), 201)


@endpoint
async def get_marketplace(request: Request) -> Response:
    runtime, catalog = await _catalog(request, write=False)
    return json(await runtime.call(catalog, "get_marketplace", path_param(request, "id")))


@endpoint
async def update_marketplace(request: Request) -> Response:
    runtime, catalog = await _catalog(request, write=True)
    body = await read_body(request, MarketplaceUpdate)
    return json(await runtime.call(catalog, "update_marketplace", path_param(request, "id"), set_fields(body)))


# -- items -------------------------------------------------------------------------------------
@endpoint
async def list_items(request: Request) -> Response:
    """Page-based, in the marketplace's order; ``?buddy_id=`` adds that buddy's eligibility per item."""
    runtime, catalog = await _catalog(request, write=False)
    slot = query_enum(request, "slot", SLOTS)
    visibility = query_enum(request, "visibility", VISIBILITIES)
    category = request.query_params.get("category") or None
    page, limit = page_params(request)
    shop = await runtime.call(catalog, "storefront", path_param(request, "id"))
    items = [i for i in shop["items"] if (slot is None or i["slot"] == slot)
             and (category is None or i["category"] == category) and (visibility is None or i["visibility"] == visibility)]
    result = paginate_page(items, page, limit)
    buddy_id = request.query_params.get("buddy_id")
    if buddy_id and result["data"]:
        buddy = buddy_address(catalog.key, buddy_id)  # the catalog is keyed by customer id
        eligibility = await runtime.call(buddy, "item_eligibility", result["data"])
        result["data"] = [{**item, "eligibility": e} for item, e in zip(result["data"], eligibility, strict=True)]
    result["data"] = [{k: v for k, v in item.items() if k != "marketplace_active"} for item in result["data"]]
    return json(result)


@endpoint
async def create_item(request: Request) -> Response:
    runtime, catalog = await _catalog(request, write=True)
    body = await read_body(request, ItemBody)
    return json(await runtime.call(catalog, "create_item", path_param(request, "id"), msgspec.to_builtins(body)), 201)


def _decode_items(raws: list[msgspec.Raw]) -> list[dict[str, Any]]:
    """Every item validated before anything is written; all per-item errors reported at once."""
    items: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for index, raw in enumerate(raws):
        try:
            items.append(msgspec.to_builtins(msgspec.json.decode(raw, type=ItemBody)))
        except msgspec.ValidationError as exc:
            errors.append({"index": index, "errors": [validation_message(str(exc))]})
    if errors:
        flat = [f"items.{e['index']}: {message}" for e in errors for message in e["errors"]]
        raise _invalid(f"{len(errors)} of {len(raws)} items are invalid; nothing was imported.",
                       {"errors": flat, "items": errors})
    return items


@endpoint
async def import_items(request: Request) -> Response:
    """All or nothing: shape errors are found here, sku clashes in the catalog's single turn."""
    runtime, catalog = await _catalog(request, write=True)
    body = await read_body(request, ImportBody)
    items = _decode_items(body.items)
    created = await runtime.call(catalog, "import_items", path_param(request, "id"), items)
    return json({"data": created, "imported": len(created)}, 201)


@endpoint
async def reorder_items(request: Request) -> Response:
    runtime, catalog = await _catalog(request, write=True)
    body = await read_body(request, ReorderBody)
    items = await runtime.call(catalog, "reorder_items", path_param(request, "id"), body.item_ids)
    return json({"data": items})


@endpoint
async def get_item(request: Request) -> Response:
    runtime, catalog = await _catalog(request, write=False)
    return json(await runtime.call(catalog, "get_item", path_param(request, "id"), path_param(request, "item_id")))


@endpoint
async def update_item(request: Request) -> Response:
    runtime, catalog = await _catalog(request, write=True)
    body = await read_body(request, ItemUpdate)
    return json(await runtime.call(catalog, "update_item", path_param(request, "id"), path_param(request, "item_id"),
                                   set_fields(body)))


@endpoint
async def delete_item(request: Request) -> Response:
    runtime, catalog = await _catalog(request, write=True)
    return json(await runtime.call(catalog, "delete_item", path_param(request, "id"),
                                   path_param(request, "item_id")))


@endpoint
async def item_art(request: Request) -> Response:
    runtime, catalog = await _catalog(request, write=False)
    art = await runtime.call(catalog, "item_art", path_param(request, "id"), path_param(request, "item_id"))
    return Response(item_svg(art["seed"], art["slot"], art["name"]), media_type="image/svg+xml",
                    headers={"Cache-Control": "private, max-age=300"})


@endpoint
async def regenerate_image(request: Request) -> Response:
    """Procedural art re-derived from a new seed; done at once, so the item comes back updated."""
    runtime, catalog = await _catalog(request, write=True)
    return json(await runtime.call(catalog, "regenerate_image", path_param(request, "id"),
                                   path_param(request, "item_id")))


@endpoint
async def upload_image(request: Request) -> Response:
    """questline stores no uploaded files: say so (after auth and the item check), never pretend."""
    runtime, catalog = await _catalog(request, write=True)
    item = await runtime.call(catalog, "get_item", path_param(request, "id"), path_param(request, "item_id"))
    raise HatchedError(501, "image_upload_not_supported",
                       "This server does not store uploaded images; items use generated art. "
                       "Use regenerate-image for new art.",
                       {"item_id": item["item_id"], "image_url": item["image_url"],
                        "alternative": f"/api/v1/marketplaces/{item['marketplace_id']}/items/{item['item_id']}"
                                       "/regenerate-image"})


# -- buddy side --------------------------------------------------------------------------------
async def _buddy(request: Request, write: bool, permission: str = "marketplace:read") -> tuple[Any, Any]:
    principal = await (require_write(request) if write else require_read(request, permission))
    return runtime_of(request), buddy_address(principal.customer_id, path_param(request, "id"))


@endpoint
async def purchase_item(request: Request) -> Response:
    runtime, buddy = await _buddy(request, write=True)
    body = await read_body(request, PurchaseBody)
    return json(await runtime.call(buddy, "purchase", body.item_id, body.marketplace_id,
                                   idempotency_key(request, body.idempotency_key)))


@endpoint
async def unlock_item(request: Request) -> Response:
    runtime, buddy = await _buddy(request, write=True)
    body = await read_body(request, UnlockBody)
    return json(await runtime.call(buddy, "unlock_item", body.item_id, body.marketplace_id, body.reason,
                                   idempotency_key(request, body.idempotency_key)))


@endpoint
async def purchased_items(request: Request) -> Response:
    runtime, buddy = await _buddy(request, write=False)
    page, limit = page_params(request)
    return json(paginate_page(await runtime.call(buddy, "purchased_items"), page, limit))


@endpoint
async def get_equipped(request: Request) -> Response:
    runtime, buddy = await _buddy(request, write=False, permission="buddies:read")
    return json(await runtime.call(buddy, "equipped"))


@endpoint
async def patch_equipped(request: Request) -> Response:
    """Starts an ``equip_item`` operation; ownership and slots are checked when it runs."""
    principal = await require_write(request)
    body = await read_body(request, EquipBody)
    if not body.equip and not body.unequip:
        raise _invalid("property equip or unequip must list at least one item_id")
    runtime = runtime_of(request)
    buddy_id = path_param(request, "id")
    checked = await runtime.call(buddy_address(principal.customer_id, buddy_id), "check_equip",
                                 body.equip, body.unequip)
    op = await start_buddy_operation(request, principal.customer_id, "equip_item", buddy_id,
                                     {"equip": checked["equip"], "unequip": checked["unequip"]})
    return accepted(op)


def routes() -> list[BaseRoute]:
    return [
        Route("/marketplaces", list_marketplaces, methods=["GET"]),
        Route("/marketplaces", create_marketplace, methods=["POST"]),
        Route("/marketplaces/{id}", get_marketplace, methods=["GET"]),
        Route("/marketplaces/{id}", update_marketplace, methods=["PUT"]),
        Route("/marketplaces/{id}/items", list_items, methods=["GET"]),
        Route("/marketplaces/{id}/items", create_item, methods=["POST"]),
        Route("/marketplaces/{id}/items/import", import_items, methods=["POST"]),
        Route("/marketplaces/{id}/items/reorder", reorder_items, methods=["POST"]),
        Route("/marketplaces/{id}/items/{item_id}", get_item, methods=["GET"]),
        Route("/marketplaces/{id}/items/{item_id}", update_item, methods=["PUT"]),
        Route("/marketplaces/{id}/items/{item_id}", delete_item, methods=["DELETE"]),
        Route("/marketplaces/{id}/items/{item_id}/art.svg", item_art, methods=["GET"]),
        Route("/marketplaces/{id}/items/{item_id}/regenerate-image", regenerate_image, methods=["POST"]),
        Route("/marketplaces/{id}/items/{item_id}/upload-image", upload_image, methods=["POST"]),
        Route("/buddies/{id}/purchase-item", purchase_item, methods=["POST"]),
        Route("/buddies/{id}/unlock-item", unlock_item, methods=["POST"]),
        Route("/buddies/{id}/purchased-items", purchased_items, methods=["GET"]),
        Route("/buddies/{id}/equipped-items", get_equipped, methods=["GET"]),
        Route("/buddies/{id}/equipped-items", patch_equipped, methods=["PATCH"]),
    ]
