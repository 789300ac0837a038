"""Eggs and operations: create (``?ensure=true``), status transitions, hatch, polling, cancel."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from questline.actors.hatched_customer import customer_address
from questline.http.hatched import settings
from questline.http.hatched.auth import require_read, require_write, runtime_of
from questline.http.hatched.conventions import (
    json,
    page_params,
    paginate_page,
    path_param,
    query_bool,
    query_enum,
    read_body,
)
from questline.http.hatched.errors import endpoint
from questline.http.request_ids import get_request_id
from questline.rules.hatched_lifecycle import (
    EGG_TRANSITIONS,
    OPERATION_TRANSITIONS,
    OPERATION_TYPES,
)
from questline.rules.hatched_models import Strict

UserId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class CreateEggBody(Strict, kw_only=True):
    user_id: UserId
    metadata: dict[str, Any] = {}


class EggStatusBody(Strict, kw_only=True):
    status: Literal["ready", "cancelled"]


async def _customer(request: Request, write: bool, permission: str = "buddies:read") -> tuple[Any, Any]:
    principal = await (require_write(request) if write else require_read(request, permission))
    return runtime_of(request), customer_address(principal.customer_id)


@endpoint
async def create_egg(request: Request) -> Response:
    runtime, customer = await _customer(request, write=True)
    body = await read_body(request, CreateEggBody)
    result = await runtime.call(customer, "create_egg", body.user_id, body.metadata, query_bool(request, "ensure"),
                                settings.max_active_eggs(), settings.publish_url())
    return json(result["egg"], 201 if result["created"] else 200)


@endpoint
async def list_eggs(request: Request) -> Response:
    runtime, customer = await _customer(request, write=False)
    status = query_enum(request, "status", tuple(EGG_TRANSITIONS))
    page, limit = page_params(request)
    eggs = await runtime.call(customer, "list_eggs", request.query_params.get("user_id") or None, status)
    return json(paginate_page(eggs, page, limit))


@endpoint
async def get_egg(request: Request) -> Response:
    runtime, customer = await _customer(request, write=False)
    return json(await runtime.call(customer, "get_egg", path_param(request, "id")))


@endpoint
async def set_egg_status(request: Request) -> Response:
    runtime, customer = await _customer(request, write=True)
    body = await read_body(request, EggStatusBody)
    return json(await runtime.call(customer, "set_egg_status", path_param(request, "id"), body.status))


@endpoint
async def hatch_egg(request: Request) -> Response:
    runtime, customer = await _customer(request, write=True)
    pending_ms, processing_ms = settings.operation_delays_ms()
    op = await runtime.call(customer, "hatch_egg", path_param(request, "id"), pending_ms, processing_ms,
                            get_request_id(request.scope))
    return accepted(op)


async def start_buddy_operation(request: Request, customer_id: str, op_type: str, buddy_id: str,
                                payload: dict[str, Any]) -> dict[str, Any]:
    """Start an evolve / equip_item operation on a buddy (the buddy's ``run_<type>`` turn runs it)
    with the configured delays, remembering the request that started it for its webhooks."""
    pending_ms, processing_ms = settings.operation_delays_ms()
    return await runtime_of(request).call(customer_address(customer_id), "start_buddy_operation", op_type,
                                          buddy_id, payload, pending_ms, processing_ms,
                                          get_request_id(request.scope))


def accepted(op: dict[str, Any], **extra: Any) -> Response:
    """202 ``{accepted, operation_id, status}``: poll ``GET /operations/{id}``."""
    return json({"accepted": True, "operation_id": op["operation_id"], "status": op["status"], **extra}, 202)


@endpoint
async def get_operation(request: Request) -> Response:
    runtime, customer = await _customer(request, write=False, permission="operations:read")
    return json(await runtime.call(customer, "get_operation", path_param(request, "id")))


@endpoint
async def list_operations(request: Request) -> Response:
    runtime, customer = await _customer(request, write=False, permission="operations:read")
    op_type = query_enum(request, "type", OPERATION_TYPES)
    status = query_enum(request, "status", tuple(OPERATION_TRANSITIONS))
    page, limit = page_params(request)
    return json(paginate_page(await runtime.call(customer, "list_operations", op_type, status), page, limit))


@endpoint
async def cancel_operation(request: Request) -> Response:
    runtime, customer = await _customer(request, write=True)
    return json(await runtime.call(customer, "cancel_operation", path_param(request, "id")))


def routes() -> list[BaseRoute]:
    return [
        Route("/eggs", list_eggs, methods=["GET"]),
        Route("/eggs", create_egg, methods=["POST"]),
        Route("/eggs/{id}", get_egg, methods=["GET"]),
        Route("/eggs/{id}/status", set_egg_status, methods=["PATCH"]),
        Route("/eggs/{id}/hatch", hatch_egg, methods=["POST"]),
        Route("/operations", list_operations, methods=["GET"]),
        Route("/operations/{id}", get_operation, methods=["GET"]),
        Route("/operations/{id}/cancel", cancel_operation, methods=["POST"]),
    ]
