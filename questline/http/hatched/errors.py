"""Hatched's error envelope on every path under ``/api/v1``, including 404/405/500.

Handlers never raise Starlette's ``HTTPException``; they raise :class:`HatchedError`
and :func:`endpoint` renders it. Routing errors (unknown path, wrong method) are
caught by :class:`EnvelopeRouter`, which sits inside the Mount so the app-wide
generic handlers never see Hatched traffic.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from questline.engine import ShardUnavailable
from questline.http.errors import retry_after_seconds, status_code_name
from questline.http.request_ids import get_request_id
from questline.rules.hatched_errors import HatchedError

log = logging.getLogger("questline.http.hatched")

_encoder = msgspec.json.Encoder()

Handler = Callable[[Request], Awaitable[Response]]


def envelope(
    scope: Scope, code: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The canonical error document (``requestId`` is the one camelCase field)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    error["requestId"] = get_request_id(scope)
    return {"error": error}


def error_response(
    scope: Scope,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        _encoder.encode(envelope(scope, code, message, details)),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def render_exception(scope: Scope, exc: Exception) -> Response:
    """Map any exception to the envelope; unknown ones become an opaque 500."""
    if isinstance(exc, HatchedError):
        headers = None
        if exc.status == 429 and exc.details and "retry_after_seconds" in exc.details:
            headers = {"Retry-After": str(exc.details["retry_after_seconds"])}
        return error_response(scope, exc.status, exc.code, exc.message, exc.details, headers)
    if isinstance(exc, ShardUnavailable):
        retry = retry_after_seconds(getattr(exc, "retry_after", 1))
        return error_response(
            scope,
            503,
            "service_unavailable",
            "The engine is temporarily unavailable; nothing was changed. Retry later.",
            headers={"Retry-After": str(retry)},
        )
    if isinstance(exc, HTTPException):
        status = exc.status_code
        if status == 404:
            message = f"Cannot {scope.get('method', 'GET')} {scope.get('path', '')}"
            return error_response(scope, 404, "not_found", message)
        if status == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            return error_response(
                scope,
                405,
                "method_not_allowed",
                f"Method {scope.get('method')} is not allowed on {scope.get('path')}.",
                {"allowed": [m.strip() for m in allowed.split(",") if m.strip()]},
                headers=dict(exc.headers or {}),
            )
        return error_response(scope, status, status_code_name(status), str(exc.detail))
    log.error(
        "unhandled %s on %s %s [request_id=%s]",
        type(exc).__name__,
        scope.get("method"),
        scope.get("path"),
        get_request_id(scope),
        exc_info=exc,
    )
    return error_response(scope, 500, "internal_error", "An internal error occurred.")


def endpoint(handler: Handler) -> Handler:
    """Wrap a handler so every failure leaves as the envelope (never the generic shape),
    and every answer to an authenticated caller carries its ``X-RateLimit-*`` headers."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            response = await handler(request)
        except Exception as exc:  # noqa: BLE001 - rendering every failure is the point
            response = render_exception(request.scope, exc)
        verdict = request.scope.get("state", {}).get("hatched_rate")
        if verdict is not None:
            response.headers.update(rate_headers(verdict))
        return response

    return wrapped


def rate_headers(verdict: dict[str, Any]) -> dict[str, str]:
    """``X-RateLimit-*`` from a :class:`~questline.actors.ratelimit.RateLimitActor` verdict.

    ``X-RateLimit-Reset`` is the number of seconds until the window is empty again.
    """
    return {"X-RateLimit-Limit": str(verdict["limit"]), "X-RateLimit-Remaining": str(verdict["remaining"]),
            "X-RateLimit-Reset": str(math.ceil(max(0, verdict["resetMs"]) / 1000))}


class EnvelopeRouter:
    """ASGI wrapper: routing failures (404/405) of the inner router in Hatched's envelope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started or scope["type"] != "http":
                raise
            await render_exception(scope, exc)(scope, receive, send)
