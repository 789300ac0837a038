"""The one interface callers use, whichever runtime hosts the shards."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from questline.engine.actor import Actor
from questline.engine.address import Address, place
from questline.engine.feeds import WATCH_QUEUE_LIMIT, FeedClient, Watch
from questline.engine.shard import wall_clock_ms

RuntimeName = Literal["local", "ray"]


@dataclass
class EngineConfig:
    """Settings shared by both runtimes (all have defaults a fresh checkout can run with)."""

    actor_classes: list[type[Actor]] = field(default_factory=list)
    shards: int = 2
    data_dir: Path = Path("data")
    durability: Literal["strict", "relaxed"] = "strict"
    snapshot_interval: float = 5.0
    max_resident: int = 50_000  # per shard
    max_mailbox: int = 10_000  # queued messages per actor before refusing (admission control)
    max_queued_per_shard: int = 20_000  # Ray client: messages waiting for a batch slot per shard
    clock: Callable[[], int] = wall_clock_ms
    # Ray only
    ray_address: str | None = None
    max_batch: int = 512
    max_inflight_batches: int = 4

    def classes_by_kind(self) -> dict[str, type[Actor]]:
        from questline.engine.probe import PROBE_ACTORS

        classes = {cls.kind: cls for cls in (*PROBE_ACTORS, *self.actor_classes)}
        if "" in classes:
            raise ValueError("every actor class must set a non-empty `kind`")
        return classes

    def shard_path(self, shard: int) -> Path:
        return Path(self.data_dir) / f"shard-{shard:03d}-of-{self.shards:03d}.sqlite"


class Runtime(abc.ABC):
    """Routes messages to virtual actors; callers cannot tell which runtime they use."""

    name: RuntimeName

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._feeds: FeedClient | None = None

    # -- feeds (watching actors' emissions) -------------------------------------
    @property
    def feeds(self) -> FeedClient:
        if self._feeds is None:
            self._feeds = FeedClient(
                self.config.shards, self.shard_of, self._feed_subscribe, self._feed_unsubscribe, self._feed_poll
            )
        return self._feeds

    async def watch(self, address: Address, limit: int = WATCH_QUEUE_LIMIT) -> Watch:
        """Receive what ``address`` emits from now on (after this returns, nothing is missed)."""
        return await self.feeds.watch(address, limit)

    async def _close_feeds(self) -> None:
        if self._feeds is not None:
            await self._feeds.close()
            self._feeds = None

    @abc.abstractmethod
    async def _feed_subscribe(self, shard: int, sub_id: str, topics: list[str]) -> None: ...

    @abc.abstractmethod
    async def _feed_unsubscribe(self, shard: int, sub_id: str, topics: list[str]) -> None: ...

    @abc.abstractmethod
    async def _feed_poll(self, shard: int, sub_id: str, wait: float) -> list[Any] | None: ...

    @property
    def shards(self) -> int:
        return self.config.shards

    def shard_of(self, address: Address) -> int:
        return place(address, self.config.shards)

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def call(self, address: Address, method: str, *args: Any) -> Any:
        """Send a message and wait for the actor's reply (released after its commit)."""

    def tell(self, address: Address, method: str, *args: Any) -> None:
        """Send a one-way message; failures are logged, not raised."""
        import asyncio

        asyncio.get_running_loop().create_task(self._tell(address, method, args))

    async def _tell(self, address: Address, method: str, args: tuple) -> None:
        import logging

        try:
            await self.call(address, method, *args)
        except Exception:
            logging.getLogger("questline.engine").warning(
                "tell %s.%s failed", address.kind, method, exc_info=True
            )

    async def call_many(self, calls: Iterable[tuple[Address, str, tuple]]) -> list[Any]:
        import asyncio

        return await asyncio.gather(*(self.call(a, m, *args) for a, m, args in calls))

    @abc.abstractmethod
    async def health(self) -> list[dict[str, Any]]:
        """One status dict per shard; raises if a shard does not answer."""

    @abc.abstractmethod
    async def stats(self) -> dict[str, Any]:
        """Operator counters: ``{"runtime", "shards": [ShardHost.metrics() or {"shard", "up": False}],
        "processes": [PROCESS_COUNTERS snapshots, one per process], "client": {...}}``.

        Never raises for a shard that does not answer: it is reported as down.
        """


def create_runtime(name: RuntimeName, config: EngineConfig) -> Runtime:
    if name == "local":
        from questline.engine.local import LocalRuntime

        return LocalRuntime(config)
    if name == "ray":
        import sys

        if "ray" not in sys.modules:  # Ray reads its auth settings at import time
            from questline.engine.ray_auth import configure_ray_auth

            configure_ray_auth(config.data_dir)
        from questline.engine.ray_runtime import RayRuntime

        return RayRuntime(config)
    raise ValueError(f"unknown runtime {name!r} (expected 'local' or 'ray')")
