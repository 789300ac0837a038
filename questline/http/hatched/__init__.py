"""The Hatched surface (seed 004): ``/api/v1``, snake_case, strict, one error envelope.

``hatched_routes()`` is what ``questline/surfaces.py`` mounts; ``HATCHED_ACTORS``
are the actor kinds it needs. Everything under the mount answers in Hatched's
envelope, including unknown paths and wrong methods.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Router

from questline.actors.hatched_auth import AccountActor, KeyIndexActor, SystemActor
from questline.actors.hatched_buddy import BuddyActor
from questline.actors.hatched_customer import CustomerActor
from questline.actors.hatched_event_types import EventTypesActor
from questline.actors.hatched_events import EventsActor, UserActor
from questline.actors.hatched_market import MarketActor
from questline.actors.hatched_quota import QuotaActor
from questline.actors.hatched_webhooks import WebhookActor, WebhooksActor
from questline.actors.hatched_widget import WidgetSessionActor, WidgetStatsActor
from questline.actors.hub import HubActor
from questline.actors.ratelimit import RateLimitActor
from questline.engine import Actor
from questline.http.hatched import (
    analytics,
    buddies,
    config,
    customers,
    eggs,
    events,
    health,
    marketplaces,
    openapi,
    progression,
    webhooks,
    widget,
    widget_sessions,
)
from questline.http.hatched.errors import EnvelopeRouter

BASE_PATH = "/api/v1"

HATCHED_ACTORS: list[type[Actor]] = [
    AccountActor, KeyIndexActor, SystemActor, CustomerActor, BuddyActor, UserActor, EventsActor,
    MarketActor, WebhooksActor, WebhookActor, QuotaActor, EventTypesActor, RateLimitActor,
    WidgetSessionActor, WidgetStatsActor, HubActor,  # widget sessions; the hub carries live buddy updates
]


def hatched_routes() -> list[BaseRoute]:
    inner = Router(routes=[*customers.routes(), *config.routes(), *eggs.routes(), *buddies.routes(),
                          *events.routes(), *marketplaces.routes(), *webhooks.routes(), *health.routes(),
                          *progression.routes(), *analytics.routes(), *widget_sessions.routes(),
                          *widget.routes(), *openapi.routes()])
    return [Mount(BASE_PATH, app=EnvelopeRouter(inner))]
