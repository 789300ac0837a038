"""Request body limits and body deadlines, in each surface's error format.

The front door (:class:`questline.http.frontdoor.FrontDoorMiddleware`) reads a
request's body with :class:`BodyLimits` *before* the app sees it:

* more than the limit (declared by ``Content-Length`` or counted while reading a
  chunked body) -> 413, without reading the rest;
* a body that does not arrive within ``body_timeout`` seconds (a slowloris-style
  client dribbling bytes) -> 408, checked by the loop's ticker (:mod:`questline.http.ticker`),
  so to within a second;

then replays the body to the app; later ``receive()`` calls go to the server, so
``http.disconnect`` still reaches streaming responses (SSE). The error bodies are
rendered by the surface that owns the path (:data:`SURFACE_ERRORS`, longest prefix
wins), so a Hatched client gets Hatched's envelope and a QuestMaster client gets
QuestMaster's (:func:`send_refusal`, also used for admission's 503).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from questline.http.request_ids import REQUEST_ID_KEY
from questline.http.ticker import ticker

_json = msgspec.json.Encoder()

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
QUESTMASTER_MAX_BODY = 256 * 1024  # questline.http.questmaster.MAX_BODY_BYTES
DEFAULT_BODY_TIMEOUT_S = 30.0
LIMIT_CACHE_SIZE = 4096

# Where the front door leaves the body it buffered, for handlers that want it without
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


class Refusal(Exception):
    """A request the front door answers itself, in the owning surface's error format."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ClientGone(Exception):
    """The client disconnected before its body was complete: nobody to answer."""


async def send_refusal(
    send: Send, path: str, refusal: Refusal, request_id: str,
    surfaces: Sequence[SurfaceErrors] = SURFACE_ERRORS, headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Answer ``refusal`` in the error format of the surface owning ``path``."""
    entry = surface_for(path, surfaces)
    payload = _json.encode(entry.render(refusal.status, refusal.code, refusal.message, request_id))
    await send({
        "type": "http.response.start",
        "status": refusal.status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            *headers,
            (REQUEST_ID_KEY, request_id.encode("latin-1")),
        ],
    })
    await send({"type": "http.response.body", "body": payload, "more_body": False})


# The rest of a refused body is never read, so the connection cannot be reused.
CLOSE_CONNECTION = ((b"connection", b"close"),)


class _BodyDeadline:
    """Cancels the task reading a body once ``at`` (loop time) has passed, to within a tick."""

    __slots__ = ("task", "at", "passed")

    def __init__(self, task: asyncio.Task[Any], at: float) -> None:
        self.task, self.at, self.passed = task, at, False

    def tick(self, now: float) -> None:
        if now >= self.at and not self.passed:
            self.passed = True
            self.task.cancel()


class BodyLimits:
    """Bounded (413), timely (408) and, for JSON, UTF-8 (400) request bodies."""

    def __init__(
        self,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        body_timeout: float = DEFAULT_BODY_TIMEOUT_S,
        surfaces: Sequence[SurfaceErrors] = SURFACE_ERRORS,
    ) -> None:
        if max_body_bytes < 0 or not math.isfinite(body_timeout) or body_timeout <= 0:
            raise ValueError("max_body_bytes must be >= 0 and body_timeout > 0")
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.surfaces = tuple(surfaces)
        self._limits: dict[str, int] = {}  # path -> limit, for the paths seen lately

    def limit_for(self, path: str) -> int:
        limit = self._limits.get(path)
        if limit is None:
            entry = surface_for(path, self.surfaces)
            limit = entry.max_body_bytes if entry.max_body_bytes is not None else self.max_body_bytes
            if len(self._limits) >= LIMIT_CACHE_SIZE:
                self._limits.clear()  # paths carry ids: bounded, and the busy ones come back at once
            self._limits[path] = limit
        return limit

    async def read(self, path: str, headers: Mapping[bytes, bytes], receive: Receive) -> tuple[bytes, Message]:
        """The whole body and its last message; :class:`Refusal` or :class:`ClientGone` otherwise."""
        limit = self.limit_for(path)
        declared = _content_length(headers.get(b"content-length"))
        if declared is not None and declared > limit:
            raise Refusal(413, "payload_too_large", f"Request body exceeds {limit} bytes.")
        chunks: list[bytes] = []
        size = 0
        task = asyncio.current_task()
        assert task is not None
        deadline = _BodyDeadline(task, asyncio.get_running_loop().time() + self.body_timeout)
        clock = ticker()
        clock.add(deadline)
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise Refusal(413, "payload_too_large", f"Request body exceeds {limit} bytes.")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    break
        except asyncio.CancelledError:
            if not deadline.passed:
                raise
            task.uncancel()
            raise Refusal(408, "request_timeout", "The request body did not arrive in time.") from None
        finally:
            clock.discard(deadline)
        if body and _is_json(headers.get(b"content-type")):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:  # RFC 8259 8.1: JSON exchanged between systems is UTF-8
                raise Refusal(400, "invalid_json", "Request body is not valid UTF-8.") from None
        return body, message


def buffered_body(scope: Scope) -> bytes | None:
    """The whole request body if the front door read it (None: read ``receive``)."""
    body = scope.get(BUFFERED_BODY_KEY)
    return body if isinstance(body, bytes) else None


async def request_body(request: Request) -> bytes:
    """The whole body: the copy the front door buffered, else read through ``receive``.

    What every surface's handlers read bodies with: no second pass through the
    stream machinery for a body the front door already holds.
    """
    body = buffered_body(request.scope)
    return body if body is not None else await request.body()


def _is_json(content_type: bytes | None) -> bool:
    media = (content_type or b"").split(b";")[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def _content_length(raw: bytes | None) -> int | None:
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw)
