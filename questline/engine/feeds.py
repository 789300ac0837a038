"""Feeds: actors ``emit`` items to the processes watching their address.

Shard side (``ShardFeeds``): each subscriber process registers the actor ids
it watches and long-polls one queue per shard. Emissions are released by the
output gate, like replies, so a watcher never sees an uncommitted item.

Process side (``FeedClient``): one poll loop per shard fans items out to the
local ``Watch`` objects of each actor id. A watch's queue is bounded; a watcher
that falls behind is closed with ``overflowed`` set, never allowed to block the
loop or other watchers. If a shard loses or drops a subscriber (restart,
overflow), every watch on that shard is closed with ``gap`` set, so callers
resynchronise instead of silently missing items.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from questline.engine.address import Address

log = logging.getLogger("questline.engine")

POLL_TIMEOUT = 10.0
SUBSCRIBER_LEASE = 60.0  # a subscriber that stops polling this long is dropped
SHARD_QUEUE_LIMIT = 100_000
WATCH_QUEUE_LIMIT = 1_000

Item = tuple[str, Any]  # (actor id, emitted item)


class Nudged:
    """What ``Watch.get`` returns when the reader was nudged (``Watch.nudge``) and no item waits."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NUDGED"


NUDGED = Nudged()


class _Subscriber:
    __slots__ = ("topics", "queue", "waiter", "last_poll", "overflowed")

    def __init__(self) -> None:
        self.topics: set[str] = set()
        self.queue: deque[Item] = deque()
        self.waiter: asyncio.Future | None = None
        self.last_poll = time.monotonic()
        self.overflowed = False


class ShardFeeds:
    """The subscriber registry and queues of one shard."""

    def __init__(self) -> None:
        self._subs: dict[str, _Subscriber] = {}
        self._by_topic: dict[str, set[str]] = {}

    def subscribe(self, sub_id: str, topics: list[str]) -> None:
        sub = self._subs.get(sub_id)
        if sub is None:
            sub = self._subs[sub_id] = _Subscriber()
        for topic in topics:
            sub.topics.add(topic)
            self._by_topic.setdefault(topic, set()).add(sub_id)

    def unsubscribe(self, sub_id: str, topics: list[str]) -> None:
        sub = self._subs.get(sub_id)
        if sub is None:
            return
        for topic in topics:
            sub.topics.discard(topic)
            ids = self._by_topic.get(topic)
            if ids is not None:
                ids.discard(sub_id)
                if not ids:
                    del self._by_topic[topic]

    def drop(self, sub_id: str) -> None:
        sub = self._subs.pop(sub_id, None)
        if sub is not None:
            self.unsubscribe_all(sub_id, sub)
            if sub.waiter is not None and not sub.waiter.done():
                sub.waiter.set_result(None)

    def unsubscribe_all(self, sub_id: str, sub: _Subscriber) -> None:
        for topic in list(sub.topics):
            ids = self._by_topic.get(topic)
            if ids is not None:
                ids.discard(sub_id)
                if not ids:
                    del self._by_topic[topic]
        sub.topics.clear()

    def publish(self, topic: str, item: Any) -> None:
        ids = self._by_topic.get(topic)
        if not ids:
            return
        for sub_id in ids:
            sub = self._subs[sub_id]
            if sub.overflowed:
                continue
            if len(sub.queue) >= SHARD_QUEUE_LIMIT:
                sub.overflowed = True
                sub.queue.clear()
            else:
                sub.queue.append((topic, item))
            if sub.waiter is not None and not sub.waiter.done():
                sub.waiter.set_result(None)

    async def poll(self, sub_id: str, wait: float) -> list[Item] | None:
        """Items for ``sub_id`` (long-polling up to ``wait`` s); None if the subscriber is unknown or overflowed."""
        self._expire()
        sub = self._subs.get(sub_id)
        if sub is None:
            return None
        sub.last_poll = time.monotonic()
        if not sub.queue and not sub.overflowed:
            sub.waiter = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sub.waiter, wait)
            sub.waiter = None
            sub.last_poll = time.monotonic()
        if sub.overflowed or self._subs.get(sub_id) is not sub:
            self.drop(sub_id)
            return None
        items = list(sub.queue)
        sub.queue.clear()
        return items

    def _expire(self) -> None:
        cutoff = time.monotonic() - SUBSCRIBER_LEASE
        for sub_id, sub in list(self._subs.items()):
            if sub.waiter is None and sub.last_poll < cutoff:
                self.drop(sub_id)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    @property
    def topics(self) -> int:
        return len(self._by_topic)


class Watch:
    """One local watcher of one actor's emissions (e.g. one SSE connection), read by one task.

    A bounded deque and one future to wake the reader: ``get`` costs no task per item
    (an ``asyncio.Queue`` raced against a close event needs two, plus ``asyncio.wait``,
    and every frame of every stream pays for them).
    """

    def __init__(self, client: FeedClient, address: Address, limit: int = WATCH_QUEUE_LIMIT) -> None:
        self.client = client
        self.address = address
        self.limit = limit
        self.queue: deque[Any] = deque()
        self.closed = asyncio.Event()
        self.overflowed = False  # this watcher fell behind its bound
        self.gap = False  # the shard lost items for this watcher
        self._nudged = False
        self._waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _push(self, item: Any) -> None:
        if self.closed.is_set():
            return
        if len(self.queue) >= self.limit:
            self.overflowed = True
            self.closed.set()
        else:
            self.queue.append(item)
        self._wake()

    def _close(self, gap: bool) -> None:
        self.gap = self.gap or gap
        self.closed.set()
        self._wake()

    def nudge(self) -> None:
        """Wake the reader without an item: its pending (or next) ``get`` returns ``NUDGED``
        unless an item is queued. Lets a reader act on time (a heartbeat, a deadline)
        without racing a timer against every ``get``."""
        self._nudged = True
        self._wake()

    async def get(self) -> Any | None:
        """The next item; None once the watch is closed (check ``overflowed`` / ``gap``);
        ``NUDGED`` after a ``nudge`` when nothing is queued.

        Items queued before the close are still returned first.
        """
        while True:
            if self.queue:
                return self.queue.popleft()
            if self.closed.is_set():
                return None
            if self._nudged:
                self._nudged = False
                return NUDGED
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def aclose(self) -> None:
        await self.client.unwatch(self)


ShardCall = Callable[..., Awaitable[Any]]


class FeedClient:
    """A process's watches over every shard, through one long-poll loop per shard."""

    def __init__(
        self,
        shards: int,
        shard_of: Callable[[Address], int],
        subscribe: Callable[[int, str, list[str]], Awaitable[None]],
        unsubscribe: Callable[[int, str, list[str]], Awaitable[None]],
        poll: Callable[[int, str, float], Awaitable[list[Item] | None]],
    ) -> None:
        self.sub_id = f"fd-{uuid.uuid4().hex}"
        self.shards = shards
        self.shard_of = shard_of
        self._subscribe = subscribe
        self._unsubscribe = unsubscribe
        self._poll = poll
        self._watches: dict[str, set[Watch]] = {}
        # Topics whose subscription is on its way to the shard: later watchers wait for it.
        self._subscribing: dict[str, asyncio.Future[None]] = {}
        self._loops: dict[int, asyncio.Task] = {}
        self._closed = False

    @property
    def watch_count(self) -> int:
        return sum(len(w) for w in self._watches.values())

    @property
    def topic_count(self) -> int:
        return len(self._watches)

    async def watch(self, address: Address, limit: int = WATCH_QUEUE_LIMIT) -> Watch:
        """Start receiving ``address``'s emissions; returns once the shard has registered it."""
        watch = Watch(self, address, limit)
        topic = address.id
        shard = self.shard_of(address)
        watchers = self._watches.setdefault(topic, set())
        first = not watchers
        watchers.add(watch)
        try:
            if first:
                registered = self._subscribing[topic] = asyncio.get_running_loop().create_future()
                try:
                    await self._subscribe(shard, self.sub_id, [topic])
                    registered.set_result(None)
                except BaseException as exc:
                    registered.set_exception(exc)
                    registered.exception()  # retrieved: later watchers re-raise it themselves
                    raise
                finally:
                    if self._subscribing.get(topic) is registered:
                        del self._subscribing[topic]
            elif (pending := self._subscribing.get(topic)) is not None:
                # Another watcher's subscription is still in flight: until the shard has it,
                # this watch could miss items (a remote shard, e.g. Ray).
                await asyncio.shield(pending)
        except BaseException:
            await self.unwatch(watch)
            raise
        if shard not in self._loops:
            self._loops[shard] = asyncio.create_task(self._poll_loop(shard), name=f"feed-poll-{shard}")
        return watch

    async def unwatch(self, watch: Watch) -> None:
        watch._close(gap=False)
        topic = watch.address.id
        watchers = self._watches.get(topic)
        if watchers is None or watch not in watchers:
            return
        watchers.discard(watch)
        if not watchers:
            del self._watches[topic]
            with contextlib.suppress(Exception):
                await self._unsubscribe(self.shard_of(watch.address), self.sub_id, [topic])

    async def _poll_loop(self, shard: int) -> None:
        backoff = 0.05
        while not self._closed:
            try:
                items = await self._poll(shard, self.sub_id, POLL_TIMEOUT)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("feed poll of shard %s failed", shard, exc_info=True)
                self._close_shard(shard)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                await self._resubscribe(shard)
                continue
            if items is None:
                # The shard does not know us (restarted, lease expired, overflowed): items may be lost.
                self._close_shard(shard)
                await self._resubscribe(shard)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.05
            for topic, item in items:
                for watch in list(self._watches.get(topic, ())):
                    watch._push(item)

    def _close_shard(self, shard: int) -> None:
        for watchers in list(self._watches.values()):
            if watchers and self.shard_of(next(iter(watchers)).address) == shard:
                for watch in list(watchers):
                    watch._close(gap=True)

    async def _resubscribe(self, shard: int) -> None:
        topics = [
            topic for topic, watchers in self._watches.items()
            if watchers and self.shard_of(next(iter(watchers)).address) == shard
        ]
        with contextlib.suppress(Exception):
            await self._subscribe(shard, self.sub_id, topics)

    async def close(self) -> None:
        self._closed = True
        for task in self._loops.values():
            task.cancel()
        await asyncio.gather(*self._loops.values(), return_exceptions=True)
        self._loops.clear()
        for watchers in self._watches.values():
            for watch in watchers:
                watch._close(gap=False)
        self._watches.clear()
