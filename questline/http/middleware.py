"""Request ids, as pure ASGI middleware.

Pure ASGI (not ``BaseHTTPMiddleware``) because the latter buffers and re-wraps
the response stream, which breaks SSE and cancels background work on
disconnect. This only rewrites the ``http.response.start`` message.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-Id"
_HEADER_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


_ID_PREFIX = "req_" + os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """``req_`` + 32 hex: 64 random bits per process, then a counter.

    Unique, not secret (it is a correlation id, echoed to the caller), and free of a
    syscall per request, unlike ``uuid4``.
    """
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def sanitize_request_id(raw: str | None) -> str | None:
    """The caller's id if it is a short, header- and log-safe token; otherwise ``None``.

    A hostile id (newlines, quotes, megabytes) must never reach logs or headers.
    """
    if raw is not None and _SANE_ID.fullmatch(raw):
        return raw
    return None


def get_request_id(scope: MutableMapping[str, Any]) -> str | None:
    """The id assigned to this request by :class:`RequestIdMiddleware`, if it ran."""
    state = scope.get("state")
    if isinstance(state, MutableMapping):
        value = state.get("request_id")
        return value if isinstance(value, str) else None
    return None


class RequestIdMiddleware:
    """Give every request an id (the caller's ``X-Request-Id`` if sane) and echo it back.

    The id is stored in ``scope["state"]["request_id"]`` (``request.state.request_id``
    in Starlette handlers) so error bodies and logs can quote it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        incoming: str | None = None
        for name, value in scope.get("headers", ()):
            if name == _HEADER_KEY:
                incoming = value.decode("latin-1")
                break
        request_id = sanitize_request_id(incoming) or new_request_id()
        # Servers give each request its own copy of the lifespan state; create it if absent.
        scope.setdefault("state", {})["request_id"] = request_id

        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        header = (_HEADER_KEY, request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _HEADER_KEY]
                headers.append(header)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)
