"""One clock task per event loop for the front door's deadlines.

Open SSE streams (heartbeats, expiry, stalled sends) and request bodies (the
slow-client deadline) need time checked, not a timer each: ``asyncio.timeout``
costs ~6 us per use (a timer handle, its heap entry and cancellation
bookkeeping), a noticeable share of a small request, and thousands of idle
streams would each hold a timer. Instead everything that needs the clock
registers here, and one task calls ``tick(now)`` on each, every
``TICK_SECONDS`` -- so deadlines hold to within a tick. The task runs only
while something is registered.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol

TICK_SECONDS = 1.0


class Ticking(Protocol):
    def tick(self, now: float) -> None:
        """Called about every ``TICK_SECONDS`` with the loop's time while registered."""


class Ticker:
    """The clock task of one event loop and what it ticks."""

    def __init__(self) -> None:
        self.ticking: set[Ticking] = set()
        self.task: asyncio.Task[None] | None = None

    def add(self, item: Ticking) -> None:
        self.ticking.add(item)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name="questline-ticker")

    def discard(self, item: Ticking) -> None:
        self.ticking.discard(item)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.ticking:
            await asyncio.sleep(TICK_SECONDS)
            now = loop.time()
            for item in list(self.ticking):
                item.tick(now)


_tickers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Ticker] = weakref.WeakKeyDictionary()


_last: tuple[asyncio.AbstractEventLoop | None, Ticker | None] = (None, None)


def ticker() -> Ticker:
    """The running loop's ticker (every request asks: the last loop's is kept at hand)."""
    global _last
    loop = asyncio.get_running_loop()
    last_loop, last = _last
    if loop is last_loop and last is not None:
        return last
    found = _tickers.get(loop)
    if found is None:
        found = _tickers[loop] = Ticker()
    _last = (loop, found)
    return found
