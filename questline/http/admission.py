"""Front-door admission control: a bounded number of requests in flight per process.

Without it an open-loop overload (clients that do not slow down when answers
do) is accepted in full: every request joins an actor's mailbox, latency grows
with the backlog and memory with it. With it at most ``max_inflight`` requests
are being handled at once; one more waits at most ``max_wait`` seconds (in a
queue of at most ``max_queue``) for a slot, and otherwise gets an immediate
503 with ``Retry-After`` in its surface's error format. Nothing it refuses has
reached a surface, so nothing was changed and retrying is safe.

A request holds its slot until its response starts. Opening a Server-Sent
Events stream (``GET`` with ``Accept: text/event-stream``) is not counted at
all: reconnect bursts must not be shed, and the number of open streams is
bounded by the slow-client limits, not here. Liveness and readiness probes are
never refused.

Settings come from the environment (``QUESTLINE_MAX_INFLIGHT``,
``QUESTLINE_ADMISSION_WAIT``) so operators can tune them without a new flag.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from questline.http.limits import SURFACE_ERRORS, SurfaceErrors, surface_for
from questline.http.middleware import (
    REQUEST_ID_HEADER,
    get_request_id,
    new_request_id,
    sanitize_request_id,
)

DEFAULT_MAX_INFLIGHT = 128
DEFAULT_MAX_WAIT_S = 0.25
EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})


def _env_number(name: str, default: float, environ: Mapping[str, str]) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    value = float(raw)
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


def _opens_a_stream(scope: Scope) -> bool:
    """A ``GET`` asking for ``text/event-stream``: opening a stream is one short read of
    the hub, and reconnecting clients arrive in bursts (a deploy, a network blip) that
    must not be shed as if they were writes; open streams are bounded by the
    slow-client limits instead."""
    if scope.get("method") != "GET":
        return False
    for name, value in scope.get("headers") or ():
        if name == b"accept":
            return b"text/event-stream" in value
    return False


class AdmissionMiddleware:
    """Admit at most ``max_inflight`` concurrent requests; refuse quickly past a short wait."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_inflight: int | None = None,
        max_wait: float | None = None,
        max_queue: int | None = None,
        surfaces: tuple[SurfaceErrors, ...] = SURFACE_ERRORS,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.app = app
        self.max_inflight = int(max_inflight or _env_number("QUESTLINE_MAX_INFLIGHT", DEFAULT_MAX_INFLIGHT, env))
        self.max_wait = float(max_wait or _env_number("QUESTLINE_ADMISSION_WAIT", DEFAULT_MAX_WAIT_S, env))
        self.max_queue = max_queue if max_queue is not None else self.max_inflight
        self.surfaces = surfaces
        self.inflight = 0
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.refused = 0
        self.admitted = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in EXEMPT_PATHS or _opens_a_stream(scope):
            await self.app(scope, receive, send)
            return
        if not await self._acquire():
            self.refused += 1
            await self._refuse(scope, send)
            return
        self.admitted += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._release()

        async def send_and_release(message: Message) -> None:
            if message["type"] == "http.response.start":
                release()  # the work is done; a stream must not hold a slot while it lasts
            await send(message)

        try:
            await self.app(scope, receive, send_and_release)
        finally:
            release()

    async def _acquire(self) -> bool:
        if self.inflight < self.max_inflight and not self.waiters:
            self.inflight += 1
            return True
        if len(self.waiters) >= self.max_queue:
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.max_wait)
        except TimeoutError:
            if fut.done():  # granted just as the wait ran out: keep the slot
                return True
            self.waiters.remove(fut)
            return False
        except BaseException:
            if fut.done():
                self._release()
            else:
                self.waiters.remove(fut)
            raise
        return True

    def _release(self) -> None:
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes straight to the oldest waiter
                return
        self.inflight -= 1

    async def _refuse(self, scope: Scope, send: Send) -> None:
        raw = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER.lower().encode("latin-1"))
        request_id = (
            get_request_id(scope)
            or sanitize_request_id(raw.decode("latin-1") if raw is not None else None)
            or new_request_id()
        )
        entry = surface_for(scope.get("path", ""), self.surfaces)
        message = "The server is at capacity; nothing was changed. Retry later."
        payload = json.dumps(entry.render(503, "overloaded", message, request_id)).encode()
        await send({
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"retry-after", b"1"),
                (REQUEST_ID_HEADER.lower().encode("latin-1"), request_id.encode("latin-1")),
            ],
        })
        await send({"type": "http.response.body", "body": payload})
