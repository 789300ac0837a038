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

sse-starlette does the framing (``ServerSentEvent``). The stream itself is
:class:`HubStreamResponse` rather than sse-starlette's ``EventSourceResponse``,
because the latter runs an anyio task group of four tasks per stream, a ping
task per stream, and a cancel scope plus a lock around every frame; with
thousands of streams that was a sixth of the server's CPU (benchmarks/README.md,
session 4). Here each stream is its own request task plus one task waiting for
the client to go away, and the event loop's ticker looks after every open
stream's time (:mod:`questline.http.ticker`): heartbeats, credential expiry,
stalled sends and shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
from sse_starlette.event import ensure_bytes
from sse_starlette.sse import AppStatus, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from questline.engine import Address, Runtime
from questline.engine.feeds import NUDGED
from questline.http.ticker import ticker

log = logging.getLogger("questline.http")

HEARTBEAT_SECONDS = 15.0
SEND_TIMEOUT = 10.0
RETRY_MS = 3000
WATCH_LIMIT = 1000
SEPARATOR = "\r\n"

# How one hub item becomes the frame a surface's clients expect.
FrameFormatter = Callable[[dict[str, Any]], ServerSentEvent]

_json = msgspec.json.Encoder()
HEARTBEAT = ServerSentEvent(comment="ping").encode()
_END = {"type": "http.response.body", "body": b"", "more_body": False}


def default_frame(item: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(
        data=_json.encode(item["data"]).decode(), event=item["event"], id=str(item["seq"])
    )


class FrameCache:
    """The encoded frames of the last items streamed in this process.

    A hub item reaches every open stream of its hub in this process as the same
    object (one feed delivery), so it is encoded once, not once per stream. Keyed by
    the item's identity and holding the item, so an id is never reused while cached.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[int, tuple[object, FrameFormatter, bytes]] = OrderedDict()

    def encode(self, item: dict[str, Any], frame: FrameFormatter) -> bytes:
        key = id(item)
        hit = self._entries.get(key)
        if hit is not None and hit[0] is item and hit[1] is frame:
            return hit[2]
        encoded = frame(item).encode()
        self._entries[key] = (item, frame, encoded)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return encoded


_frames = FrameCache()


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
    overflowed_total = 0  # cut off: the client's queue overflowed
    stalled_total = 0  # cut off: one send blocked past SEND_TIMEOUT


class _OpenStream:
    """The ticker's view of one open stream: when it last sent, whether a send is blocked."""

    __slots__ = ("task", "wake", "expired", "last_sent", "send_started", "ended", "cut")

    def __init__(self, task: asyncio.Task[Any], wake: Callable[[], None],
                 expired: Callable[[], bool] | None, now: float) -> None:
        self.task = task
        self.wake = wake
        self.expired = expired
        self.last_sent = now
        self.send_started: float | None = None
        self.ended = False  # the stream is closing by itself: never cancel it any more
        self.cut: str | None = None  # why the stream's task was cancelled by us

    def cut_off(self, why: str) -> None:
        if not self.ended and self.cut is None:
            self.cut = why
            self.task.cancel()

    def tick(self, now: float) -> None:
        if self.send_started is not None:
            if now - self.send_started >= SEND_TIMEOUT and self.cut is None and not self.ended:
                StreamStats.stalled_total += 1
                self.cut_off("stalled")  # the client stopped reading; it resumes with Last-Event-ID
        elif AppStatus.should_exit:
            self.cut_off("shutdown")  # uvicorn waits for open responses before it exits
        elif (self.expired is not None and self.expired()) or now - self.last_sent >= HEARTBEAT_SECONDS:
            self.wake()  # the stream's iterator ends (expired) or yields a heartbeat


class HubStreamResponse(Response):
    """A ``text/event-stream`` response sending ``body_iterator``'s frames as they come.

    ``wake`` interrupts the iterator's wait (it then yields ``HEARTBEAT`` or ends if
    ``expired()``); the ticker calls it when the stream was idle for
    ``HEARTBEAT_SECONDS`` or has expired. The stream ends when the iterator does,
    when the client disconnects, when one send blocks for ``SEND_TIMEOUT`` (a client
    that stopped reading), or when the server shuts down.
    """

    media_type = "text/event-stream"

    def __init__(self, body_iterator: AsyncIterator[Any], *, wake: Callable[[], None],
                 expired: Callable[[], bool] | None = None, headers: dict[str, str] | None = None) -> None:
        self.body_iterator = body_iterator
        self.wake = wake
        self.expired = expired
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "Connection": "keep-alive", "X-Accel-Buffering": "no",
                           **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        stream = _OpenStream(task, self.wake, self.expired, loop.time())
        clock = ticker()
        clock.add(stream)
        listener = loop.create_task(_until_disconnect(receive, stream), name="sse-disconnect")
        try:
            await send(start)
            async for frame in self.body_iterator:
                stream.send_started = loop.time()
                body = frame if type(frame) is bytes else ensure_bytes(frame, SEPARATOR)
                await send({"type": "http.response.body", "body": body, "more_body": True})
                stream.last_sent, stream.send_started = stream.send_started, None
            stream.ended = True
            await send(_END)
        except asyncio.CancelledError:
            if stream.cut is None:
                raise  # not ours: the server is cancelling this request
            task.uncancel()
            stream.ended = True
            if stream.cut == "shutdown":
                await send(_END)
            # "stalled": return with the response incomplete, so uvicorn closes the connection;
            # "disconnected": nobody is listening any more.
        finally:
            stream.ended = True
            clock.discard(stream)
            listener.cancel()
            await self._close_iterator()

    async def _close_iterator(self) -> None:
        aclose = getattr(self.body_iterator, "aclose", None)
        if aclose is not None:
            await aclose()


async def _until_disconnect(receive: Receive, stream: _OpenStream) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    stream.cut_off("disconnected")


async def _no_frames() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that yields nothing


def _no_wake() -> None:
    pass


async def hub_stream(
    request: Request,
    runtime: Runtime,
    hub: Address,
    *,
    frame: FrameFormatter = default_frame,
    headers: dict[str, str] | None = None,
    expires_at_ms: int | None = None,
) -> HubStreamResponse:
    """Open a live stream of ``hub`` for this request.

    ``expires_at_ms`` (the credential's expiry on ``runtime.config.clock``) ends the
    stream then, so a token cannot keep a stream alive past its life.
    """
    if request.method == "HEAD":  # the headers a GET would get, no watch and no frames behind them
        return HubStreamResponse(_no_frames(), wake=_no_wake, headers=headers)
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

    async def events() -> AsyncIterator[ServerSentEvent | bytes]:
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
                        yield frame(item)  # this stream's own copy: nothing to share
                while (item := await watch.get()) is not None:
                    if expires_at_ms is not None and expired():
                        return
                    if item is NUDGED:
                        yield HEARTBEAT
                    elif item["seq"] > sent:
                        sent = item["seq"]
                        yield _frames.encode(item, frame)
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

    return HubStreamResponse(
        events(), wake=lambda: watch.nudge(), expired=expired if expires_at_ms is not None else None,
        headers=headers,
    )
