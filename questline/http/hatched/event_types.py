"""The event type registry: ``GET/POST /event-types``, ``GET/PUT/DELETE /event-types/:id``.

Registered types carry what the event log has seen of them (``count``,
``last_seen_at``, from the same per-partition totals ``GET /events/types``
reads), and ``GET /events/types`` flags which seen types are registered, so the
two views cannot disagree. Registering is not required to send a type. (The
event log fan-out helpers live here so ``events`` can import them one way.)
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from questline.actors.hatched_event_types import event_types_address
from questline.actors.hatched_events import EVENT_PARTITIONS, events_address
from questline.http.hatched.auth import require_write, runtime_of
from questline.http.hatched.conventions import (
    json,
    page_params,
    paginate_page,
    path_param,
    read_body,
)
from questline.http.hatched.errors import endpoint
from questline.rules.hatched_models import EventType, Strict, iso_ms

Description = Annotated[str, msgspec.Meta(max_length=500)]


class EventTypeBody(Strict, kw_only=True):
    name: EventType
    description: Description | None = None


async def fan_out(request: Request, customer_id: str, method: str, *args: Any) -> list[Any]:
    """Ask every partition of the customer's event log, in parallel."""
    runtime = runtime_of(request)
    return list(await asyncio.gather(*(runtime.call(events_address(customer_id, p), method, *args)
                                       for p in range(EVENT_PARTITIONS))))


async def seen_types(request: Request, customer_id: str) -> dict[str, dict[str, int]]:
    """type -> ``{count, last_seen_at}`` over every partition of the customer's log."""
    totals: dict[str, dict[str, int]] = {}
    for part in await fan_out(request, customer_id, "types"):
        for name, entry in part.items():
            total = totals.setdefault(name, {"count": 0, "last_seen_at": 0})
            total["count"] += entry["count"]
            total["last_seen_at"] = max(total["last_seen_at"], entry["last_seen_at"])
    return totals


def _with_stats(entry: dict[str, Any], seen: dict[str, dict[str, int]]) -> dict[str, Any]:
    stats = seen.get(entry["name"])
    return {**entry, "count": stats["count"] if stats else 0,
            "last_seen_at": iso_ms(stats["last_seen_at"]) if stats else None}


@endpoint
async def list_event_types(request: Request) -> Response:
    """Registered types, oldest first, page-based ``{data, meta}``."""
    principal = await require_write(request)
    page, limit = page_params(request)
    registry, seen = await asyncio.gather(
        runtime_of(request).call(event_types_address(principal.customer_id), "list_types"),
        seen_types(request, principal.customer_id))
    return json(paginate_page([_with_stats(entry, seen) for entry in registry], page, limit))


@endpoint
async def create_event_type(request: Request) -> Response:
    principal = await require_write(request)
    body = await read_body(request, EventTypeBody)
    entry = await runtime_of(request).call(event_types_address(principal.customer_id), "create", body.name,
                                           body.description)
    return json(_with_stats(entry, await seen_types(request, principal.customer_id)), 201)


@endpoint
async def get_event_type(request: Request) -> Response:
    principal = await require_write(request)
    entry = await runtime_of(request).call(event_types_address(principal.customer_id), "get",
                                           path_param(request, "id"))
    return json(_with_stats(entry, await seen_types(request, principal.customer_id)))


@endpoint
async def put_event_type(request: Request) -> Response:
    """Replace name and description; a rename keeps the id (past events keep their old type)."""
    principal = await require_write(request)
    body = await read_body(request, EventTypeBody)
    entry = await runtime_of(request).call(event_types_address(principal.customer_id), "replace",
                                           path_param(request, "id"), body.name, body.description)
    return json(_with_stats(entry, await seen_types(request, principal.customer_id)))


@endpoint
async def delete_event_type(request: Request) -> Response:
    """Unregister; events of that type stay in the log and in ``GET /events/types``."""
    principal = await require_write(request)
    entry = await runtime_of(request).call(event_types_address(principal.customer_id), "delete",
                                           path_param(request, "id"))
    return json({**entry, "deleted": True})


def routes() -> list[BaseRoute]:
    return [
        Route("/event-types", list_event_types, methods=["GET"]),
        Route("/event-types", create_event_type, methods=["POST"]),
        Route("/event-types/{id}", get_event_type, methods=["GET"]),
        Route("/event-types/{id}", put_event_type, methods=["PUT"]),
        Route("/event-types/{id}", delete_event_type, methods=["DELETE"]),
    ]
