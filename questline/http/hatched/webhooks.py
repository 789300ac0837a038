"""Webhook configs and their delivery log: ``/webhook-configs`` (see docs/hatched-webhooks.md).

Secrets are generated here, shown once (on create and on rotate) and handed to
the actors only sealed (:mod:`questline.secrets_box`), so no plaintext signing
secret is ever journaled. Every route needs a secret key or a dashboard token.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from typing import Annotated, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from questline import secrets_box
from questline.actors.hatched_webhooks import webhook_address, webhooks_address
from questline.http.hatched.auth import require_write, runtime_of
from questline.http.hatched.conventions import (
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
from questline.http.request_ids import get_request_id
from questline.rules.hatched_errors import HatchedError, not_found
from questline.rules.hatched_models import Strict
from questline.rules.hatched_webhooks import WebhookEventType, events_problem, url_problem

Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
Events = Annotated[list[WebhookEventType], msgspec.Meta(min_length=1, max_length=20)]
Description = Annotated[str, msgspec.Meta(max_length=500)]
OverlapSeconds = Annotated[int, msgspec.Meta(ge=0, le=7 * 86_400)]

_CONFIG_ID = re.compile(r"whc_[0-9a-f]{16}")
_DELIVERY_ID = re.compile(r"whd_[0-9a-f]{16}")
DELIVERY_STATUSES = ("pending", "delivered", "failed")


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def max_configs() -> int:
    return _env_int("HATCHED_WEBHOOK_MAX_CONFIGS", 20)


def default_overlap_seconds() -> int:
    """How long a rotated-out secret keeps signing alongside the new one (default 24 h)."""
    return max(0, _env_int("HATCHED_WEBHOOK_SECRET_OVERLAP_S", 86_400))


class CreateBody(Strict, kw_only=True):
    url: Url
    events: Events
    enabled: bool = True
    description: Description | None = None


class UpdateBody(Strict, kw_only=True):
    url: Url | msgspec.UnsetType = msgspec.UNSET
    events: Events | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    description: Description | None | msgspec.UnsetType = msgspec.UNSET


class RotateBody(Strict, kw_only=True):
    overlap_seconds: OverlapSeconds | None = None


def _invalid(message: str) -> HatchedError:
    return HatchedError(400, "validation_error", message, {"errors": [message]})


def _check(url: str | None, events: list[str] | None) -> None:
    problem = (url_problem(url) if url is not None else None) or (events_problem(events) if events else None)
    if problem:
        raise _invalid(problem)


def _config_id(request: Request) -> str:
    """A well-formed id or a 404 (an id that could not exist never reaches the engine)."""
    config_id = path_param(request, "id")
    if not _CONFIG_ID.fullmatch(config_id):
        raise not_found("webhook_config", config_id)
    return config_id


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


async def _seal(secret: str) -> str:
    """Sealed off the event loop (the first use may create the key file)."""
    return await asyncio.to_thread(secrets_box.seal, secret)


@endpoint
async def list_configs(request: Request) -> Response:
    principal = await require_write(request)
    page, limit = page_params(request)
    runtime = runtime_of(request)
    ids: list[str] = await runtime.call(webhooks_address(principal.customer_id), "ids")
    window = ids[(page - 1) * limit: page * limit]
    views = await asyncio.gather(*(runtime.call(webhook_address(principal.customer_id, i), "get") for i in window))
    return json({**paginate_page(ids, page, limit), "data": list(views)})


@endpoint
async def create_config(request: Request) -> Response:
    principal = await require_write(request)
    body = await read_body(request, CreateBody)
    _check(body.url, list(body.events))
    secret = new_secret()
    config_id = "whc_" + secrets.token_hex(8)
    record = {"url": body.url, "events": list(body.events), "enabled": body.enabled,
              "description": body.description, "sealed_secret": await _seal(secret)}
    view = await runtime_of(request).call(webhooks_address(principal.customer_id), "create", config_id, record,
                                          max_configs())
    return json({**view, "secret": secret}, status=201)


@endpoint
async def get_config(request: Request) -> Response:
    principal = await require_write(request)
    config_id = _config_id(request)
    return json(await runtime_of(request).call(webhook_address(principal.customer_id, config_id), "get"))


@endpoint
async def update_config(request: Request) -> Response:
    principal = await require_write(request)
    config_id = _config_id(request)
    body = await read_body(request, UpdateBody)
    changes = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not msgspec.UNSET}
    _check(changes.get("url"), changes.get("events"))
    view = await runtime_of(request).call(webhooks_address(principal.customer_id), "update", config_id, changes)
    return json(view)


@endpoint
async def delete_config(request: Request) -> Response:
    principal = await require_write(request)
    config_id = _config_id(request)
    return json(await runtime_of(request).call(webhooks_address(principal.customer_id), "delete", config_id))


@endpoint
async def rotate_secret(request: Request) -> Response:
    """New secret, shown once; the old one keeps signing for ``overlap_seconds`` (default 24 h)."""
    principal = await require_write(request)
    config_id = _config_id(request)
    body = await read_body(request, RotateBody)
    overlap = default_overlap_seconds() if body.overlap_seconds is None else body.overlap_seconds
    secret = new_secret()
    view = await runtime_of(request).call(webhook_address(principal.customer_id, config_id), "rotate",
                                          await _seal(secret), overlap * 1000)
    return json({**view, "secret": secret})


@endpoint
async def list_deliveries(request: Request) -> Response:
    """Cursor-paginated ``{data, nextCursor}``, newest first; ``status`` filters."""
    principal = await require_write(request)
    config_id = _config_id(request)
    limit = query_int(request, "limit", 20, 1, 100)
    status = query_enum(request, "status", DELIVERY_STATUSES)
    before = None
    raw = request.query_params.get("cursor")
    if raw:
        position = decode_cursor(raw)
        if len(position) != 1 or not isinstance(position[0], int) or isinstance(position[0], bool):
            raise HatchedError(400, "invalid_cursor", "The cursor is malformed or expired.")
        before = position[0]
    page: dict[str, Any] = await runtime_of(request).call(webhook_address(principal.customer_id, config_id),
                                                          "deliveries", before, limit, status)
    next_cursor = encode_cursor([page["next"]]) if page["next"] is not None else None
    return json({"data": page["data"], "nextCursor": next_cursor})


@endpoint
async def redeliver(request: Request) -> Response:
    """Send a logged delivery's payload again now, as a new delivery (retried if it fails)."""
    principal = await require_write(request)
    config_id = _config_id(request)
    delivery_id = path_param(request, "deliveryId")
    if not _DELIVERY_ID.fullmatch(delivery_id):
        raise not_found("webhook_delivery", delivery_id)
    return json(await runtime_of(request).call(webhook_address(principal.customer_id, config_id), "redeliver",
                                               delivery_id))


@endpoint
async def send_test(request: Request) -> Response:
    """A ``webhook.test`` delivery, attempted now; the answer says how the receiver replied."""
    principal = await require_write(request)
    config_id = _config_id(request)
    return json(await runtime_of(request).call(webhook_address(principal.customer_id, config_id), "send_test",
                                               get_request_id(request.scope)))


def routes() -> list[BaseRoute]:
    return [
        Route("/webhook-configs", list_configs, methods=["GET"]),
        Route("/webhook-configs", create_config, methods=["POST"]),
        Route("/webhook-configs/{id}", get_config, methods=["GET"]),
        Route("/webhook-configs/{id}", update_config, methods=["PUT"]),
        Route("/webhook-configs/{id}", delete_config, methods=["DELETE"]),
        Route("/webhook-configs/{id}/deliveries", list_deliveries, methods=["GET"]),
        Route("/webhook-configs/{id}/deliveries/{deliveryId}/redeliver", redeliver, methods=["POST"]),
        Route("/webhook-configs/{id}/rotate-secret", rotate_secret, methods=["POST"]),
        Route("/webhook-configs/{id}/test", send_test, methods=["POST"]),
    ]
