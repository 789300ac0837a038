"""Event ingestion and the event log: ``POST /events``, ``POST /events/batch``,
``GET /events``, ``GET /events/:id``, ``GET /events/types``, ``GET /events/active-users``.

Each event goes to the one events partition actor its id hashes to (which
dedupes it and asks the user's buddies to apply it); reads spanning all events
fan out over the partitions and merge.

Batch shape (partial failures never fail the whole request): the body is
``{"events": [...]}`` (1..100 items); the answer is 200 with
``{"data": [{"index", "event_id", "status": "accepted"|"duplicate"|"rejected",
"result"?, "error"?}], "summary": {"total", "accepted", "duplicates", "rejected"}}``
where ``result`` is exactly what ``POST /events`` returns for that item,
``error`` is the envelope's ``{code, message, details?}`` and ``event_id`` is null
when the item could not be read. An id repeated inside one batch is answered as
the resend it is. A body that is not such an object is a 400 and nothing is
ingested; a rejected item is not recorded, so it can be fixed and resent.

Metering: each newly accepted event takes one unit of the plan's monthly quota
(a deduplicated resend takes none); past it, ``POST /events`` is a 402
``event_quota_exceeded`` and in a batch exactly the items that found the quota
exhausted are rejected with that code while the others are accepted (which items
those are, when a batch straddles the limit, follows arrival at the quota actor,
not the index). Events are kept ``HATCHED_EVENT_RETENTION_DAYS`` (default 90) in
the log; see :mod:`questline.actors.hatched_events` for retention and dedupe.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
from typing import Annotated, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from questline.actors.hatched_event_types import event_types_address
from questline.actors.hatched_events import event_address
from questline.engine import ShardUnavailable
from questline.http.hatched import event_types as registry
from questline.http.hatched import settings
from questline.http.hatched.auth import plan_of, require_write, runtime_of
from questline.http.hatched.conventions import (
    decode_body,
    decode_cursor,
    encode_cursor,
    json,
    page_params,
    paginate_page,
    path_param,
    query_enum,
    query_int,
    read_body,
)
from questline.http.hatched.errors import endpoint
from questline.http.hatched.event_types import fan_out, seen_types
from questline.http.request_ids import get_request_id
from questline.rules.hatched import zone
from questline.rules.hatched_errors import HatchedError
from questline.rules.hatched_models import EventType, Strict, iso_ms

Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Zone = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
MAX_BATCH = 100
# An event may be stamped a little ahead of our clock (client skew), not hours ahead.
MAX_FUTURE_MS = 5 * 60 * 1000


class EventBody(Strict, kw_only=True):
    """The contract's event, plus optional ``buddy_id`` (feed one buddy instead of all
    of the user's) and ``timezone`` (IANA; the zone streak days and daily caps count in)."""

    event_id: Ident
    user_id: Ident
    type: EventType
    occurred_at: dt.datetime | None = None
    properties: dict[str, Any] = {}
    buddy_id: Ident | None = None
    timezone: Zone = "UTC"


class BatchBody(Strict, kw_only=True):
    events: Annotated[list[msgspec.Raw], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


def _invalid(message: str) -> HatchedError:
    return HatchedError(400, "validation_error", message, {"errors": [message]})


def _payload(body: EventBody, now_ms: int) -> dict[str, Any]:
    """Checks beyond the Struct's (zone exists, not from the future) and the actor payload."""
    try:
        zone(body.timezone)
    except ValueError as exc:
        raise _invalid(f"property timezone: unknown time zone {body.timezone}") from exc
    if body.occurred_at is None:
        occurred = now_ms
    else:
        moment = body.occurred_at if body.occurred_at.tzinfo else body.occurred_at.replace(tzinfo=dt.UTC)
        occurred = int(moment.timestamp() * 1000)
    if occurred > now_ms + MAX_FUTURE_MS:
        raise _invalid("property occurred_at must not be in the future")
    return {"event_id": body.event_id, "user_id": body.user_id, "type": body.type, "occurred_at": occurred,
            "properties": body.properties, "buddy_id": body.buddy_id, "timezone": body.timezone}


def _now_ms() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


async def _meter(request: Request, customer_id: str) -> dict[str, Any]:
    """The settings that ride along with every event: the plan's quota and the log's horizons."""
    plan = getattr(request.state, "hatched_plan", None) or await plan_of(request, customer_id)
    return {"request_id": get_request_id(request.scope), "quota_limit": settings.event_quota(plan),
            "retention_ms": settings.event_retention_ms(), "dedupe_ms": settings.event_dedupe_ms()}


def _billing(exc: HatchedError) -> HatchedError:
    """A 402 from the events actor, with where to upgrade (a front-door setting)."""
    if exc.code == "event_quota_exceeded":
        exc.details = {**(exc.details or {}), "upgrade_url": settings.billing_url()}
    return exc


@endpoint
async def ingest(request: Request) -> Response:
    principal = await require_write(request)
    body = await read_body(request, EventBody)
    payload = {**_payload(body, _now_ms()), **await _meter(request, principal.customer_id)}
    try:
        result = await runtime_of(request).call(event_address(principal.customer_id, body.event_id), "ingest",
                                                payload)
    except HatchedError as exc:
        raise _billing(exc) from None
    return json(result)


def _item_error(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, HatchedError):
        exc = _billing(exc)
        error: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.details is not None:
            error["details"] = exc.details
        return error
    if isinstance(exc, ShardUnavailable):
        return {"code": "service_unavailable", "message": "The engine is temporarily unavailable; this event was "
                "not ingested. Retry it."}
    return {"code": "internal_error", "message": "An internal error occurred; this event was not ingested."}


@endpoint
async def ingest_batch(request: Request) -> Response:
    principal = await require_write(request)
    batch = await read_body(request, BatchBody)
    runtime = runtime_of(request)
    now = _now_ms()
    meter = await _meter(request, principal.customer_id)
    items: list[dict[str, Any]] = []
    first_index: dict[str, int] = {}
    pending: dict[int, Any] = {}
    for index, raw in enumerate(batch.events):
        item: dict[str, Any] = {"index": index, "event_id": None, "status": "rejected"}
        items.append(item)
        try:
            body = decode_body(bytes(raw), EventBody)
            item["event_id"] = body.event_id
            payload = {**_payload(body, now), **meter}
        except HatchedError as exc:
            item["error"] = _item_error(exc)
            continue
        if body.event_id in first_index:
            continue  # answered from the first occurrence below, as the resend it is
        first_index[body.event_id] = index
        pending[index] = runtime.call(event_address(principal.customer_id, body.event_id), "ingest", payload)
    outcomes = await asyncio.gather(*pending.values(), return_exceptions=True)
    for index, outcome in zip(pending, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome
            items[index]["error"] = _item_error(outcome)
        else:
            items[index].update(status="duplicate" if outcome["duplicate"] else "accepted", result=outcome)
    for item in items:
        first = first_index.get(item["event_id"] or "")
        if first is not None and first != item["index"] and "error" not in item:
            original = items[first]
            if "result" in original:
                item.update(status="duplicate", result={**original["result"], "duplicate": True})
            else:
                item["error"] = original["error"]
    summary = {"total": len(items), "accepted": sum(i["status"] == "accepted" for i in items),
               "duplicates": sum(i["status"] == "duplicate" for i in items),
               "rejected": sum(i["status"] == "rejected" for i in items)}
    return json({"data": items, "summary": summary})


@endpoint
async def list_events(request: Request) -> Response:
    """Cursor-paginated ``{data, nextCursor}``, newest received first, merged over partitions."""
    principal = await require_write(request)
    limit = query_int(request, "limit", 20, 1, 100)
    raw = request.query_params.get("cursor")
    before = None
    if raw:
        before = decode_cursor(raw)
        if len(before) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in before):
            raise HatchedError(400, "invalid_cursor", "The cursor is malformed or expired.")
    q = request.query_params
    effects = query_enum(request, "has_effects", ("true", "false"))
    filters = {"user_id": q.get("user_id") or None, "type": q.get("type") or None,
               "buddy_id": q.get("buddy_id") or None,
               "has_effects": None if effects is None else effects == "true"}
    pages = await fan_out(request, principal.customer_id, "page", before, limit + 1, filters)
    merged = heapq.merge(*pages, key=lambda row: row["position"], reverse=True)
    rows = [row for _, row in zip(range(limit + 1), merged, strict=False)]
    next_cursor = encode_cursor(rows[limit - 1]["position"]) if len(rows) > limit else None
    return json({"data": [row["event"] for row in rows[:limit]], "nextCursor": next_cursor})


@endpoint
async def get_event(request: Request) -> Response:
    principal = await require_write(request)
    event_id = path_param(request, "id")
    return json(await runtime_of(request).call(event_address(principal.customer_id, event_id), "get", event_id))


@endpoint
async def event_types(request: Request) -> Response:
    """Distinct event types seen, most frequent first: ``{data, meta}``; each row says
    whether (and as which ``event_type_id``) the type is in the ``/event-types`` registry."""
    principal = await require_write(request)
    page, limit = page_params(request)
    totals, registry = await asyncio.gather(
        seen_types(request, principal.customer_id),
        runtime_of(request).call(event_types_address(principal.customer_id), "list_types"))
    registered = {entry["name"]: entry["id"] for entry in registry}
    rows = [{"type": name, "count": t["count"], "last_seen_at": iso_ms(t["last_seen_at"]),
             "registered": name in registered, "event_type_id": registered.get(name)}
            for name, t in sorted(totals.items(), key=lambda kv: (-kv[1]["count"], kv[0]))]
    return json(paginate_page(rows, page, limit))


@endpoint
async def active_users(request: Request) -> Response:
    """Most active users over the last ``days`` (1..90, default 7) by events that occurred then."""
    principal = await require_write(request)
    days = query_int(request, "days", 7, 1, 90)
    page, limit = page_params(request)
    since = _now_ms() - days * 86_400_000
    totals: dict[str, list[int]] = {}
    for part in await fan_out(request, principal.customer_id, "activity", since):
        for user_id, (count, last) in part.items():
            entry = totals.setdefault(user_id, [0, 0])
            entry[0] += count
            entry[1] = max(entry[1], last)
    rows = [{"user_id": user_id, "event_count": count, "last_event_at": iso_ms(last)}
            for user_id, (count, last) in sorted(totals.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))]
    return json({**paginate_page(rows, page, limit), "window_days": days})


def routes() -> list[BaseRoute]:
    return [
        Route("/events", ingest, methods=["POST"]),
        Route("/events", list_events, methods=["GET"]),
        Route("/events/batch", ingest_batch, methods=["POST"]),
        Route("/events/types", event_types, methods=["GET"]),
        Route("/events/active-users", active_users, methods=["GET"]),
        Route("/events/{id}", get_event, methods=["GET"]),
        *registry.routes(),
    ]
