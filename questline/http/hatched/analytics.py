"""Hatched analytics routes (``GET /analytics/*``), computed on request from stored data.

Every route takes ``from`` / ``to`` (ISO 8601 date or date-time, UTC when no
offset; a date-only ``to`` includes that whole day). Default: the last 30 days;
at most 366 days; ``from`` must be before ``to``. The figures are pure functions
of facts (:mod:`questline.rules.hatched_analytics`) gathered here:

* events: every events partition walked newest first by receipt, stopping once
  receipts are older than the range (an event cannot be stamped more than a few
  minutes after its receipt), so a recent range reads recent events only;
* buddies: the customer's buddy directory, then each buddy's ``analytics_facts``;
* webhooks: each config's delivery log (the last ``MAX_LOG`` per config are kept).

Secret keys and dashboard tokens only: publishable keys never see analytics.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from questline.actors.hatched_buddy import buddy_address
from questline.actors.hatched_customer import customer_address
from questline.actors.hatched_events import EVENT_PARTITIONS, events_address
from questline.actors.hatched_webhooks import webhook_address, webhooks_address
from questline.engine import Runtime
from questline.http.hatched.auth import require_write, runtime_of
from questline.http.hatched.conventions import json, query_enum, query_int
from questline.http.hatched.errors import endpoint
from questline.rules import hatched_analytics as figures
from questline.rules.hatched_analytics import (
    DAY_MS,
    BuddyFact,
    DateRange,
    DeliveryFact,
    EventFact,
)
from questline.rules.hatched_errors import HatchedError

DEFAULT_DAYS = 30
MAX_DAYS = 366
PAGE = 500
FAN_OUT = 64  # buddies asked at once
# An event's occurred_at is at most this far after its receipt (ingestion refuses more), with slack.
RECEIPT_SLACK_MS = 15 * 60 * 1000
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MAX_TYPES = 20


# -- the range ---------------------------------------------------------------------------------
def _invalid(code: str, message: str) -> HatchedError:
    return HatchedError(400, code, message, {"errors": [message]})


def _moment(raw: str, name: str, end_of_day: bool) -> int:
    try:
        if _DATE.fullmatch(raw):
            day = dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), dt.UTC)
            moment = day + dt.timedelta(days=1) if end_of_day else day
        else:
            moment = dt.datetime.fromisoformat(raw)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise _invalid("validation_error", f"query {name} must be an ISO 8601 date or date-time") from exc
    if not 2000 <= moment.astimezone(dt.UTC).year <= 2100:
        raise _invalid("validation_error", f"query {name} must be between the years 2000 and 2100")
    return int(moment.timestamp() * 1000)


def date_range(request: Request, now_ms: int) -> DateRange:
    q = request.query_params
    end = _moment(q["to"], "to", True) if q.get("to") else now_ms
    start = _moment(q["from"], "from", False) if q.get("from") else end - DEFAULT_DAYS * DAY_MS
    if start >= end:
        raise _invalid("invalid_date_range", "query from must be before to")
    if end - start > MAX_DAYS * DAY_MS:
        raise _invalid("invalid_date_range", f"the range may span at most {MAX_DAYS} days")
    return DateRange(start=start, end=end)


def _now_ms() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


def _ms(stamp: str) -> int:
    return round(dt.datetime.fromisoformat(stamp).timestamp() * 1000)


# -- facts -------------------------------------------------------------------------------------------
def _event_fact(event: dict[str, Any], occurred: int) -> EventFact:
    return EventFact(event_id=event["event_id"], user_id=event["user_id"], type=event["type"], occurred_at=occurred,
                     buddy_ids=[b["buddy_id"] for b in event["buddies"]],
                     has_effects=event["why_no_effects"] is None,
                     streaks=[s["status"] for s in event["effects"]["streaks"]])


async def _partition_events(runtime: Runtime, customer_id: str, partition: int, rng: DateRange) -> list[EventFact]:
    out: list[EventFact] = []
    before: list[Any] | None = None
    address = events_address(customer_id, partition)
    while True:
        rows = await runtime.call(address, "page", before, PAGE, {})
        for row in rows:
            if row["position"][0] < rng.start - RECEIPT_SLACK_MS:
                return out
            occurred = _ms(row["event"]["occurred_at"])
            if rng.contains(occurred):
                out.append(_event_fact(row["event"], occurred))
        if len(rows) < PAGE:
            return out
        before = rows[-1]["position"]


async def event_facts(runtime: Runtime, customer_id: str, rng: DateRange) -> list[EventFact]:
    parts = await asyncio.gather(*(_partition_events(runtime, customer_id, p, rng) for p in range(EVENT_PARTITIONS)))
    return [e for part in parts for e in part]


async def buddy_facts(runtime: Runtime, customer_id: str, rng: DateRange) -> list[BuddyFact]:
    directory = await runtime.call(customer_address(customer_id), "list_buddies", None, None, None)
    gate = asyncio.Semaphore(FAN_OUT)

    async def one(buddy_id: str) -> BuddyFact:
        async with gate:
            raw = await runtime.call(buddy_address(customer_id, buddy_id), "analytics_facts", rng.start, rng.end)
        return msgspec.convert(raw, BuddyFact)

    return list(await asyncio.gather(*(one(b["buddy_id"]) for b in directory)))


async def _config_deliveries(runtime: Runtime, customer_id: str, config_id: str, rng: DateRange) -> list[DeliveryFact]:
    out: list[DeliveryFact] = []
    before: int | None = None
    address = webhook_address(customer_id, config_id)
    while True:
        try:
            page = await runtime.call(address, "deliveries", before, 100, None)
        except HatchedError as exc:
            if exc.status == 404:  # deleted while we read
                return out
            raise
        for d in page["data"]:
            created = _ms(d["created_at"])
            if created < rng.start:
                return out
            if created < rng.end:
                out.append(DeliveryFact(config_id=config_id, event_type=d["event_type"], status=d["status"],
                                        attempts=d["attempt_count"], created_at=created,
                                        delivered_at=_ms(d["delivered_at"]) if d["delivered_at"] else None,
                                        last_status_code=d["last_status_code"]))
        if page["next"] is None:
            return out
        before = page["next"]


async def delivery_facts(runtime: Runtime, customer_id: str, rng: DateRange) -> list[DeliveryFact]:
    ids = await runtime.call(webhooks_address(customer_id), "ids")
    parts = await asyncio.gather(*(_config_deliveries(runtime, customer_id, c, rng) for c in ids))
    return [d for part in parts for d in part]


# -- routes ------------------------------------------------------------------------------------------
Figure = Callable[[Request, Runtime, str, DateRange], Awaitable[dict[str, Any]]]


def analytics(figure: Figure) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate, read the range, compute: every analytics route has this shape."""

    @endpoint
    async def handler(request: Request) -> Response:
        principal = await require_write(request)
        rng = date_range(request, _now_ms())
        return json(await figure(request, runtime_of(request), principal.customer_id, rng))

    handler.__name__ = handler.__qualname__ = figure.__name__
    handler.__doc__ = figure.__doc__
    return handler


async def overview(request: Request, runtime: Runtime, customer_id: str, rng: DateRange) -> dict[str, Any]:
    events, buddies = await asyncio.gather(event_facts(runtime, customer_id, rng),
                                           buddy_facts(runtime, customer_id, rng))
    return figures.overview(rng, events, buddies)


async def leaderboard(request: Request, runtime: Runtime, customer_id: str, rng: DateRange) -> dict[str, Any]:
    metric = query_enum(request, "metric", figures.LEADERBOARD_METRICS) or "coins_earned"
    limit = query_int(request, "limit", 10, 1, 100)
    events = await event_facts(runtime, customer_id, rng) if metric == "events" else []
    return figures.leaderboard(rng, events, await buddy_facts(runtime, customer_id, rng), metric, limit)


async def engagement(request: Request, runtime: Runtime, customer_id: str, rng: DateRange) -> dict[str, Any]:
    return figures.engagement(rng, await event_facts(runtime, customer_id, rng))


async def retention(request: Request, runtime: Runtime, customer_id: str, rng: DateRange) -> dict[str, Any]:
    now = _now_ms()
    # Activity after the range counts too: a cohort's day-30 may fall after ``to``.
    later = DateRange(start=rng.start, end=max(rng.end, min(rng.end + 31 * DAY_MS, now + RECEIPT_SLACK_MS)))
    events, buddies = await asyncio.gather(event_facts(runtime, customer_id, later),
                                           buddy_facts(runtime, customer_id, rng))
    return figures.retention(rng, events, buddies, now // DAY_MS)


async def streaks(request: Request, runtime: Runtime, customer_id: str, rng: DateRange) -> dict[str, Any]:
    events, buddies = await asyncio.gather(event_facts(runtime, customer_id, rng),
                                           buddy_facts(runtime, customer_id, rng))
    today = dt.datetime.now(dt.UTC).date().toordinal()
    return figures.streak_health(rng, events, buddies, today)


async def economy_summary(request: Request, runtime: Runtime, customer_id: str, rng: DateRange) -> dict[str, Any]:
    return figures.economy_summary(rng, await buddy_facts(runtime, customer_id, rng))


async def economy_health(request: Request, runtime: Runtime, customer_id: str, rng: DateRange) -> dict[str, Any]:
    return figures.economy_health(rng, await buddy_facts(runtime, customer_id, rng))


async def tokens(request: Request, runtime: Runtime, customer_id: str, rng: DateRange) -> dict[str, Any]:
    return figures.token_economy(rng, await buddy_facts(runtime, customer_id, rng))


async def event_counts(request: Request, runtime: Runtime, customer_id: str, rng: DateRange) -> dict[str, Any]:
    return figures.event_counts(rng, await event_facts(runtime, customer_id, rng))


async def popular_badges(request: Request, runtime: Runtime, customer_id: str, rng: DateRange) -> dict[str, Any]:
    limit = query_int(request, "limit", 10, 1, 100)
    return figures.popular_badges(rng, await buddy_facts(runtime, customer_id, rng), limit)


async def popular_items(request: Request, runtime: Runtime, customer_id: str, rng: DateRange) -> dict[str, Any]:
    limit = query_int(request, "limit", 10, 1, 100)
    return figures.popular_items(rng, await buddy_facts(runtime, customer_id, rng), limit)


async def marketplace_funnel(request: Request, runtime: Runtime, customer_id: str, rng: DateRange) -> dict[str, Any]:
    return figures.marketplace_funnel(rng, await buddy_facts(runtime, customer_id, rng))


async def evolution(request: Request, runtime: Runtime, customer_id: str, rng: DateRange) -> dict[str, Any]:
    return figures.evolution_timeline(rng, await buddy_facts(runtime, customer_id, rng))


async def webhooks(request: Request, runtime: Runtime, customer_id: str, rng: DateRange) -> dict[str, Any]:
    return figures.webhook_health(rng, await delivery_facts(runtime, customer_id, rng))


async def activity_summary(request: Request, runtime: Runtime, customer_id: str, rng: DateRange) -> dict[str, Any]:
    events, buddies = await asyncio.gather(event_facts(runtime, customer_id, rng),
                                           buddy_facts(runtime, customer_id, rng))
    return figures.activity_summary(rng, events, buddies)


async def custom_events(request: Request, runtime: Runtime, customer_id: str, rng: DateRange) -> dict[str, Any]:
    raw = request.query_params.get("types") or request.query_params.get("type") or ""
    types = [t.strip() for t in raw.split(",") if t.strip()] or None
    if types is not None and (len(types) > _MAX_TYPES or any(len(t) > 100 for t in types)):
        raise _invalid("validation_error", f"query types must list at most {_MAX_TYPES} event types of at most "
                       "100 characters")
    return figures.custom_event_trends(rng, await event_facts(runtime, customer_id, rng), types)


def routes() -> list[BaseRoute]:
    table: list[tuple[str, Figure]] = [
        ("/analytics", leaderboard),
        ("/analytics/overview", overview),
        ("/analytics/engagement", engagement),
        ("/analytics/retention", retention),
        ("/analytics/streaks", streaks),
        ("/analytics/economy-summary", economy_summary),
        ("/analytics/economy-health", economy_health),
        ("/analytics/tokens", tokens),
        ("/analytics/event-counts", event_counts),
        ("/analytics/popular-badges", popular_badges),
        ("/analytics/popular-items", popular_items),
        ("/analytics/marketplace-funnel", marketplace_funnel),
        ("/analytics/evolution", evolution),
        ("/analytics/webhooks", webhooks),
        ("/analytics/activity-summary", activity_summary),
        ("/analytics/custom-events", custom_events),
    ]
    return [Route(path, analytics(figure), methods=["GET"]) for path, figure in table]
