"""The customer's own account: ``GET/PATCH /customers/me``, ``PATCH /customers/me/settings``;
``GET /auth/me`` answers the same document.

``DELETE /customers/me/users/:user_id/data`` is deliberately not routed (404): a
user's data spans buddies, eggs, ledgers, purchases, events and webhook
deliveries, and an erase that covered only part of it would claim more than it
did.

The profile carries what the plan allows and what has been used, so a customer
can see it before hitting a 402 or a 429: ``event_quota: {limit, used, remaining,
period, reset_at, history}`` (``limit`` null = unlimited) and ``rate_limit:
{limit, window_ms}`` (per API key / dashboard login).

Patches are strict snake_case Structs: an unknown or camelCase property is a 400
``validation_error`` and nothing is written. Settings merge key by key; sending
``null`` for a setting removes it.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from questline.actors.hatched_customer import customer_address
from questline.actors.hatched_quota import quota_address
from questline.http.hatched import settings
from questline.http.hatched.auth import authenticate, plan_of, require_write, runtime_of
from questline.http.hatched.conventions import json as json_response
from questline.http.hatched.conventions import read_body
from questline.http.hatched.errors import endpoint
from questline.rules.hatched import zone
from questline.rules.hatched_errors import HatchedError
from questline.rules.hatched_models import Strict

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
ThemeToken = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
Locale = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")]
Email = Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
Unset = msgspec.UnsetType
UNSET = msgspec.UNSET


class ProfilePatch(Strict, kw_only=True):
    name: Name | Unset = UNSET


class WidgetThemeConfig(Strict, kw_only=True):
    """The widget loader's theme attributes (``data-surface`` ... ``data-typography``)."""

    surface: ThemeToken | None = None
    geometry: ThemeToken | None = None
    motion_profile: ThemeToken | None = None
    reward_voice: ThemeToken | None = None
    iconography: ThemeToken | None = None
    typography: ThemeToken | None = None


class SettingsPatch(Strict, kw_only=True):
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None | Unset = UNSET
    locale: Locale | None | Unset = UNSET
    notification_email: Email | None | Unset = UNSET
    widget_size: Literal["compact", "standard", "large"] | None | Unset = UNSET
    widget_theme_config: WidgetThemeConfig | None | Unset = UNSET
    widget_custom_css: Annotated[str, msgspec.Meta(max_length=20_000)] | None | Unset = UNSET


def _invalid(message: str) -> HatchedError:
    return HatchedError(400, "validation_error", message, {"errors": [message]})


# A style sheet may restyle the widget, never pull in script or remote code.
_UNSAFE_CSS = re.compile(r"</|@import|expression\s*\(|javascript:|url\s*\(\s*['\"]?\s*(?!data:image/)",
                         re.IGNORECASE)


async def profile_document(request: Request, customer_id: str) -> dict[str, Any]:
    """Profile + event quota + rate limit, read in parallel (one turn each)."""
    plan = await plan_of(request, customer_id)
    runtime = runtime_of(request)
    profile, quota = await asyncio.gather(
        runtime.call(customer_address(customer_id), "profile"),
        runtime.call(quota_address(customer_id), "usage", settings.event_quota(plan)))
    rate = settings.rate_limit(profile["plan"])
    return {**profile, "event_quota": quota,
            "rate_limit": {"limit": rate or None, "window_ms": settings.rate_window_ms()}}


@endpoint
async def me(request: Request) -> Response:
    principal = await authenticate(request)
    document = await profile_document(request, principal.customer_id)
    return json_response({**document, "auth": {"via": principal.via, "key_id": principal.key_id,
                                               "permissions": list(principal.permissions)}})


@endpoint
async def patch_me(request: Request) -> Response:
    principal = await require_write(request)
    body = await read_body(request, ProfilePatch)
    fields = msgspec.to_builtins(body)
    await runtime_of(request).call(customer_address(principal.customer_id), "update_profile", fields, {})
    return json_response(await profile_document(request, principal.customer_id))


@endpoint
async def patch_settings(request: Request) -> Response:
    principal = await require_write(request)
    body = await read_body(request, SettingsPatch)
    if isinstance(body.timezone, str):
        try:
            zone(body.timezone)
        except ValueError as exc:
            raise _invalid(f"property timezone: unknown time zone {body.timezone}") from exc
    if isinstance(body.widget_custom_css, str) and _UNSAFE_CSS.search(body.widget_custom_css):
        raise _invalid("property widget_custom_css must not contain </, @import, expression(), javascript: "
                       "or non-data url()")
    patch = msgspec.to_builtins(body)
    await runtime_of(request).call(customer_address(principal.customer_id), "update_profile", {}, patch)
    return json_response(await profile_document(request, principal.customer_id))


def routes() -> list[BaseRoute]:
    return [
        Route("/auth/me", me, methods=["GET"]),
        Route("/customers/me", me, methods=["GET"]),
        Route("/customers/me", patch_me, methods=["PATCH"]),
        Route("/customers/me/settings", patch_settings, methods=["PATCH"]),
    ]
