"""Generic JSON errors for the front door: ``{"error": "<code>", "message": "..."}``.

These cover what no surface owns (unknown routes, wrong methods, crashes, an
unavailable shard). Surfaces with their own error envelopes (Hatched's
``{error: {code, ...}}``) build on :func:`error_response` or install their own
handlers on their sub-application; nothing here is surface-specific.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from questline.engine import ShardUnavailable
from questline.http.request_ids import REQUEST_ID_HEADER, get_request_id

log = logging.getLogger("questline.http")

ExceptionHandlers = dict[Any, Any]


def status_code_name(status: int) -> str:
    """A stable snake_case error code for an HTTP status (404 -> ``not_found``)."""
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_").replace("'", "")
    except ValueError:
        return "error"


def error_body(code: str, message: str) -> dict[str, str]:
    """The generic error document, kept in one place so every generic error looks alike."""
    return {"error": code, "message": message}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A JSON error response in the generic shape."""
    return JSONResponse(error_body(code, message), status_code=status, headers=dict(headers or {}))


def retry_after_seconds(value: Any) -> int:
    """``Retry-After`` must be a whole number of seconds; never advertise less than 1."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 1
    if not math.isfinite(seconds):
        return 1
    return max(1, math.ceil(seconds))


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's HTTP errors (404 unknown route, 405 wrong method, ...) as JSON.

    Headers the exception carries (``Allow`` on a 405) are kept.
    """
    assert isinstance(exc, HTTPException)
    if exc.status_code in {204, 304}:  # these must not have a body
        return Response(status_code=exc.status_code, headers=exc.headers)
    status = exc.status_code
    if status == 404:
        message = f"No route for {request.url.path}."
    elif status == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"Method {request.method} is not allowed on {request.url.path}."
        if allowed:
            message += f" Allowed: {allowed}."
    else:
        message = str(exc.detail)
    return error_response(status, status_code_name(status), message, headers=exc.headers)


async def shard_unavailable_handler(request: Request, exc: Exception) -> Response:
    """A shard could not run or commit the turn: nothing was acknowledged, so retrying is safe."""
    assert isinstance(exc, ShardUnavailable)
    retry_after = retry_after_seconds(getattr(exc, "retry_after", 1))
    log.warning(
        "shard unavailable on %s %s [request_id=%s]: %s",
        request.method,
        request.url.path,
        get_request_id(request.scope),
        exc,
    )
    return error_response(
        503,
        "shard_unavailable",
        "The engine is temporarily unavailable; nothing was changed. Retry later.",
        headers={"Retry-After": str(retry_after)},
    )


async def unhandled_exception_handler(request: Request, exc: Exception) -> Response:
    """Last resort: a 500 that says nothing about the internals; the details go to the log.

    Starlette runs this outside user middleware, so the request-id header is
    added here (the request-id middleware has already stored the id in the scope).
    The log line carries the request id so a client's report can be matched to
    the traceback (Starlette then re-raises, and the server logs it once more).
    """
    request_id = get_request_id(request.scope)
    log.error(
        "unhandled %s on %s %s [request_id=%s]",
        type(exc).__name__,
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
    )
    headers = {REQUEST_ID_HEADER: request_id} if request_id else None
    return error_response(
        500, "internal_error", "An internal error occurred.", headers=headers
    )


def default_exception_handlers() -> ExceptionHandlers:
    """The handlers to pass to ``Starlette(exception_handlers=...)``; callers may extend the dict."""
    return {
        HTTPException: http_exception_handler,
        ShardUnavailable: shard_unavailable_handler,
        Exception: unhandled_exception_handler,
    }
