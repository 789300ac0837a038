"""Server-Sent Events from a hub actor: generic across surfaces.

The connection watches the hub *before* the response headers go out (so the
client, which counts itself connected when it sees headers, misses nothing),
then replays what ``Last-Event-ID`` says it missed from the hub's buffer, then
streams live items, dropping any already replayed. If the hub's feed had a
gap (shard restart, lost subscriber) the stream re-reads the buffer from the
last id it sent; if even the buffer cannot cover the gap it sends an explicit
``reset`` event so the client re-reads state. A client that cannot keep up
(its bounded queue overflows, or a send blocks past ``SEND_TIMEOUT``) is
disconnected and resumes with ``Last-Event-ID``.

sse-starlette does the framing, heartbeat comments and send timeouts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.requests import Request

from questline.engine import Address, Runtime
from questline.engine.feeds import Watch

log = logging.getLogger("questline.http")

HEARTBEAT_SECONDS = 15
SEND_TIMEOUT = 10.0
RETRY_MS = 3000
WATCH_LIMIT = 1000

# How one hub item becomes the frame a surface's clients expect.
FrameFormatter = Callable[[dict[str, Any]], ServerSentEvent]

_json = msgspec.json.Encoder()


def default_frame(item: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(
        data=_json.encode(item["data"]).decode(), event=item["event"], id=str(item["seq"])
    )


def last_event_id(request: Request) -> int | None:
    """The resume point: ``Last-Event-ID`` header (EventSource) or ``lastEventId`` query parameter."""
    raw = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        return None  # not one of ours: treat as a fresh client
    return value if value >= 0 else None


class StreamStats:
    """Process-wide counters (exported by health/metrics)."""

    open = 0
    opened_total = 0
    overflowed_total = 0


async def hub_stream(
    request: Request,
    runtime: Runtime,
    hub: Address,
    *,
    frame: FrameFormatter = default_frame,
    headers: dict[str, str] | None = None,
    expires_at_ms: int | None = None,
) -> EventSourceResponse:
    """Open a live stream of ``hub`` for this request.

    ``expires_at_ms`` (the credential's expiry on ``runtime.config.clock``) ends the
    stream then, so a token cannot keep a stream alive past its life.
    """
    resume = last_event_id(request)
    watch = await runtime.watch(hub, limit=WATCH_LIMIT)
    try:
        first = await runtime.call(hub, "replay", resume)
    except BaseException:
        await watch.aclose()
        raise
    StreamStats.open += 1
    StreamStats.opened_total += 1

    def expired() -> bool:
        return expires_at_ms is not None and runtime.config.clock() >= expires_at_ms

    async def _next(w: Watch) -> dict[str, Any] | None:
        if expires_at_ms is None:
            return await w.get()
        remaining = (expires_at_ms - runtime.config.clock()) / 1000
        if remaining <= 0:
            return None
        try:
            return await asyncio.wait_for(w.get(), remaining)
        except TimeoutError:
            return None

    async def events() -> AsyncIterator[ServerSentEvent]:
        nonlocal watch
        sent = resume if resume is not None else first["seq"]
        try:
            yield ServerSentEvent(comment="connected", retry=RETRY_MS)
            replay = first
            while True:
                if replay["reset"]:
                    sent = replay["seq"]
                    yield ServerSentEvent(
                        data=_json.encode({"seq": sent}).decode(), event="reset", id=str(sent)
                    )
                for item in replay["items"]:
                    if item["seq"] > sent:
                        sent = item["seq"]
                        yield frame(item)
                while (item := await _next(watch)) is not None:
                    if item["seq"] > sent:
                        sent = item["seq"]
                        yield frame(item)
                if expired():
                    return
                if watch.overflowed:
                    StreamStats.overflowed_total += 1
                    return  # too slow: disconnect; the client resumes with Last-Event-ID
                if not watch.gap:
                    return  # closed (shutdown)
                # The feed lost items: watch again, then fill the hole from the hub's buffer.
                await watch.aclose()
                watch = await runtime.watch(hub, limit=WATCH_LIMIT)
                replay = await runtime.call(hub, "replay", sent)
        finally:
            StreamStats.open -= 1
            await watch.aclose()

    return EventSourceResponse(
        events(),
        ping=HEARTBEAT_SECONDS,
        send_timeout=SEND_TIMEOUT,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
    )
