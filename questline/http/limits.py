"""Request body limits and body deadlines, as pure ASGI middleware, in each surface's error format.

:class:`BodyLimitMiddleware` reads a request's body *before* the app sees it:

* more than the limit (declared by ``Content-Length`` or counted while reading a
  chunked body) -> 413, without reading the rest;
* a body that does not arrive within ``body_timeout`` seconds (a slowloris-style
  client dribbling bytes) -> 408;

then replays the body to the app; later ``receive()`` calls go to the server, so
``http.disconnect`` still reaches streaming responses (SSE). The error bodies are
rendered by the surface that owns the path (:data:`SURFACE_ERRORS`, longest prefix
wins), so a Hatched client gets Hatched's envelope and a QuestMaster client gets
QuestMaster's. Pure ASGI because ``BaseHTTPMiddleware`` breaks SSE.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from questline.http.middleware import (
    REQUEST_ID_HEADER,
    get_request_id,
    new_request_id,
    sanitize_request_id,
)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
QUESTMASTER_MAX_BODY = 256 * 1024  # questline.http.questmaster.MAX_BODY_BYTES
DEFAULT_BODY_TIMEOUT_S = 30.0

# Where the middleware leaves the body it buffered, for handlers that want it without
# another pass through ``receive`` (``buffered_body``).
BUFFERED_BODY_KEY = "questline.body"

# status, code, message, request id -> JSON document
ErrorRenderer = Callable[[int, str, str, str], Any]


def questkit_error(status: int, code: str, message: str, request_id: str) -> Any:
    """QuestKit (seeds 000/001) and the front door's generic errors: ``{error, message}``."""
    return {"error": "validation_error" if code == "invalid_json" else code, "message": message}


def questmaster_error(status: int, code: str, message: str, request_id: str) -> Any:
    """QuestMaster (seed 002): ``{error: "<human message>"}``."""
    return {"error": message}


def minigame_error(status: int, code: str, message: str, request_id: str) -> Any:
    """Minigame (seed 003): ``{error: "<code>", message?}``."""
    return {"error": "invalid_request" if code == "invalid_json" else code, "message": message}


def hatched_error(status: int, code: str, message: str, request_id: str) -> Any:
    """Hatched (seed 004): ``{error: {code, message, requestId}}``."""
    return {"error": {"code": code, "message": message, "requestId": request_id}}


@dataclass(frozen=True)
class SurfaceErrors:
    """Who answers for paths under ``prefix`` (a whole path segment or more)."""

    prefix: str
    render: ErrorRenderer
    max_body_bytes: int | None = None  # None: the middleware's default


_MINIGAME_PREFIXES = (
    "/api/minigame", "/api/auth/token", "/api/characters", "/api/activities", "/api/board",
    "/api/crafting", "/api/gathering", "/api/trade", "/api/heal", "/api/scouting", "/api/animals",
)
_QUESTMASTER_PREFIXES = ("/agents/quest-master-agent", "/api/tasks", "/api/chat", "/api/questmaster")

SURFACE_ERRORS: tuple[SurfaceErrors, ...] = (
    SurfaceErrors("/v1", questkit_error),
    # A whole catalog upload is bigger than any other body (QuestKitSettings.max_catalog_bytes).
    SurfaceErrors("/v1/admin/catalog", questkit_error, max_body_bytes=4 * 1024 * 1024 + 64 * 1024),
    SurfaceErrors("/api/v1", hatched_error),
    *(SurfaceErrors(prefix, minigame_error) for prefix in _MINIGAME_PREFIXES),
    # QuestMaster's routes carry their own, smaller Starlette limit, which answers in
    # plain text when Content-Length is declared: refuse here first, in its format.
    *(SurfaceErrors(prefix, questmaster_error, max_body_bytes=QUESTMASTER_MAX_BODY) for prefix in _QUESTMASTER_PREFIXES),
)
_GENERIC = SurfaceErrors("", questkit_error)


def _first_segment(path: str) -> str:
    return path.split("/", 2)[1] if path.startswith("/") else ""


def _by_first_segment(table: Sequence[SurfaceErrors]) -> dict[str, tuple[SurfaceErrors, ...]]:
    index: dict[str, list[SurfaceErrors]] = {}
    for entry in table:
        index.setdefault(_first_segment(entry.prefix), []).append(entry)
    return {segment: tuple(entries) for segment, entries in index.items()}


_INDEXES: dict[int, tuple[Sequence[SurfaceErrors], dict[str, tuple[SurfaceErrors, ...]]]] = {}


def surface_for(path: str, table: Sequence[SurfaceErrors] = SURFACE_ERRORS) -> SurfaceErrors:
    """The entry with the longest prefix that matches ``path`` on a segment boundary.

    Only the entries sharing ``path``'s first segment can match, so they are
    looked up by it (this runs on every request).
    """
    cached = _INDEXES.get(id(table))
    if cached is None or cached[0] is not table:
        cached = (table, _by_first_segment(table))
        _INDEXES[id(table)] = cached
    best = _GENERIC
    for entry in cached[1].get(_first_segment(path), ()):
        p = entry.prefix
        if (path == p or path.startswith(p + "/")) and len(p) > len(best.prefix):
            best = entry
    return best


class _Refuse(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _Gone(Exception):
    """The client disconnected before its body was complete: nobody to answer."""


class BodyLimitMiddleware:
    """Refuse oversize (413) and too-slow (408) request bodies in the owning surface's format."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        body_timeout: float = DEFAULT_BODY_TIMEOUT_S,
        surfaces: Sequence[SurfaceErrors] = SURFACE_ERRORS,
    ) -> None:
        if max_body_bytes < 0 or not math.isfinite(body_timeout) or body_timeout <= 0:
            raise ValueError("max_body_bytes must be >= 0 and body_timeout > 0")
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.surfaces = tuple(surfaces)

    def limit_for(self, path: str) -> int:
        entry = surface_for(path, self.surfaces)
        return entry.max_body_bytes if entry.max_body_bytes is not None else self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if b"content-length" not in headers and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body (RFC 9112 6.3): nothing to bound or wait for
            return
        path: str = scope.get("path", "")
        limit = self.limit_for(path)
        try:
            declared = _content_length(headers.get(b"content-length"))
            if declared is not None and declared > limit:
                raise _Refuse(413, "payload_too_large", f"Request body exceeds {limit} bytes.")
            body, last = await self._read_body(receive, limit)
        except _Refuse as refuse:
            await self._refuse(scope, headers, send, refuse)
            return
        except _Gone:
            return
        if body and _is_json(headers.get(b"content-type")):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:  # RFC 8259 8.1: JSON exchanged between systems is UTF-8
                await self._refuse(scope, headers, send, _Refuse(400, "invalid_json", "Request body is not valid UTF-8."))
                return

        scope[BUFFERED_BODY_KEY] = body
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {**last, "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Receive, limit: int) -> tuple[bytes, Message]:
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        while True:
            remaining = deadline - loop.time()
            try:
                async with asyncio.timeout(max(remaining, 0)):
                    message = await receive()
            except TimeoutError:
                raise _Refuse(408, "request_timeout", "The request body did not arrive in time.") from None
            if message["type"] == "http.disconnect":
                raise _Gone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _Refuse(413, "payload_too_large", f"Request body exceeds {limit} bytes.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), message

    async def _refuse(self, scope: Scope, headers: Mapping[bytes, bytes], send: Send, refuse: _Refuse) -> None:
        raw_id = headers.get(REQUEST_ID_HEADER.lower().encode("latin-1"))
        request_id = (
            get_request_id(scope)
            or sanitize_request_id(raw_id.decode("latin-1") if raw_id is not None else None)
            or new_request_id()
        )
        scope.setdefault("state", {})["request_id"] = request_id
        entry = surface_for(scope.get("path", ""), self.surfaces)
        payload = json.dumps(entry.render(refuse.status, refuse.code, refuse.message, request_id)).encode()
        await send({
            "type": "http.response.start",
            "status": refuse.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                # The rest of the body is never read, so the connection cannot be reused.
                (b"connection", b"close"),
                (REQUEST_ID_HEADER.lower().encode("latin-1"), request_id.encode("latin-1")),
            ],
        })
        await send({"type": "http.response.body", "body": payload, "more_body": False})


def buffered_body(scope: Scope) -> bytes | None:
    """The whole request body if :class:`BodyLimitMiddleware` read it (None: read ``receive``)."""
    body = scope.get(BUFFERED_BODY_KEY)
    return body if isinstance(body, bytes) else None


async def request_body(request: Request) -> bytes:
    """The whole body: the copy the front door buffered, else read through ``receive``.

    What every surface's handlers read bodies with: no second pass through the
    stream machinery for a body the front door already holds.
    """
    body = buffered_body(request.scope)
    return body if body is not None else await request.body()


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope.get("headers", ())}


def _is_json(content_type: bytes | None) -> bool:
    media = (content_type or b"").split(b";")[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def _content_length(raw: bytes | None) -> int | None:
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw)
