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
import os
from collections.abc import Mapping

from starlette.types import Scope

DEFAULT_MAX_INFLIGHT = 128
DEFAULT_MAX_WAIT_S = 0.25
LIFO_AFTER_S = 0.05  # a waiter this old means a standing queue: serve the newest first
EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})


def _env_number(name: str, default: float, environ: Mapping[str, str]) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    value = float(raw)
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


class AdmissionGate:
    """At most ``max_inflight`` requests admitted at once; one more waits ``max_wait`` s at most.

    The front door (:class:`questline.http.frontdoor.FrontDoorMiddleware`) asks
    :meth:`gates` whether a request counts, :meth:`acquire` before handing it on and
    :meth:`release` once its response starts.
    """

    def __init__(
        self,
        *,
        max_inflight: int | None = None,
        max_wait: float | None = None,
        max_queue: int | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.max_inflight = int(max_inflight or _env_number("QUESTLINE_MAX_INFLIGHT", DEFAULT_MAX_INFLIGHT, env))
        self.max_wait = float(max_wait or _env_number("QUESTLINE_ADMISSION_WAIT", DEFAULT_MAX_WAIT_S, env))
        self.max_queue = max_queue if max_queue is not None else self.max_inflight
        self.overload_inflight = max(1, self.max_inflight // 4)
        self.inflight = 0
        self.waiters: collections.deque[tuple[asyncio.Future[None], float]] = collections.deque()
        self.refused = 0
        self.admitted = 0

    @staticmethod
    def gates(scope: Scope, accept: bytes | None) -> bool:
        """Whether this request needs a slot: not probes, not stream opens (``accept`` header)."""
        if scope.get("path") in EXEMPT_PATHS:
            return False
        return not (scope.get("method") == "GET" and accept is not None and b"text/event-stream" in accept)

    def try_acquire(self) -> bool:
        """A slot now, if one is free and nobody waits for one (no coroutine: the common case)."""
        if self.inflight < self.max_inflight and not self.waiters:
            self.inflight += 1
            self.admitted += 1
            return True
        return False

    async def acquire(self) -> bool:
        """A slot (True), or False once the wait ran out or the queue is full (refuse the request)."""
        if self.try_acquire():
            return True
        if len(self.waiters) >= self.max_queue:
            self.refused += 1
            return False
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        waiter = (fut, loop.time())
        self.waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.max_wait)
        except TimeoutError:
            if not fut.done():
                self.waiters.remove(waiter)
                self.refused += 1
                return False
            # granted just as the wait ran out: keep the slot
        except BaseException:
            if fut.done():
                self.release()
            else:
                self.waiters.remove(waiter)
            raise
        self.admitted += 1
        return True

    def release(self) -> None:
        """Pass the slot to a waiter, or free it.

        First come, first served while the queue is a burst draining. Once the oldest
        waiter has waited ``LIFO_AFTER_S`` the queue is a standing overload, and two
        things change until it clears: the newest waiter gets the slot (adaptive LIFO:
        FIFO would hand every slot to a request that already waited almost
        ``max_wait``, so every accepted request would be slow), and at most
        ``overload_inflight`` requests run at once, so each accepted one shares the CPU
        with fewer others (and the oldest waiters run out their wait into a quick
        503). A closed-loop client with fewer connections than ``max_inflight`` never
        builds a standing queue, so this costs it no throughput.
        """
        waiters = self.waiters
        if waiters:
            standing = asyncio.get_running_loop().time() - waiters[0][1] >= LIFO_AFTER_S
            if not standing or self.inflight <= self.overload_inflight:
                while waiters:
                    fut, _ = waiters.pop() if standing else waiters.popleft()
                    if not fut.done():
                        fut.set_result(None)  # the slot passes straight to this waiter
                        return
        self.inflight -= 1


OVERLOADED_MESSAGE = "The server is at capacity; nothing was changed. Retry later."
