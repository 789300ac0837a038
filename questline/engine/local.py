"""LocalRuntime: every shard lives in this process, on this event loop."""

from __future__ import annotations

import asyncio
from typing import Any

from questline.engine.address import Address
from questline.engine.errors import ShardUnavailable
from questline.engine.runtime import EngineConfig, Runtime
from questline.engine.shard import ShardHost
from questline.engine.stats import PROCESS_COUNTERS
from questline.storage.shard_store import ShardStore


def build_shard(shard: int, config: EngineConfig, router) -> ShardHost:
    """A shard host configured from ``config`` (shared by both runtimes)."""
    return ShardHost(
        shard,
        ShardStore(config.shard_path(shard), config.durability),
        config.classes_by_kind(),
        router,
        durability=config.durability,
        snapshot_interval=config.snapshot_interval,
        max_resident=config.max_resident,
        max_mailbox=config.max_mailbox,
        clock=config.clock,
    )


class LocalRuntime(Runtime):
    name = "local"

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        self.hosts: list[ShardHost] = []

    async def start(self) -> None:
        self.hosts = [build_shard(i, self.config, self._route) for i in range(self.config.shards)]
        for host in self.hosts:
            host.peer_of = self._host_of
        for host in self.hosts:
            await host.start()

    async def stop(self) -> None:
        await self._close_feeds()
        for host in self.hosts:
            await host.stop()
        self.hosts = []

    def _host_of(self, address: Address) -> ShardHost | None:
        return self.hosts[self.shard_of(address)] if self.hosts else None

    async def _route(self, address: Address, method: str, args: tuple) -> Any:
        return await self.call(address, method, *args)

    async def call(self, address: Address, method: str, *args: Any) -> Any:
        if not self.hosts:
            raise ShardUnavailable("local runtime is not started")
        fut = self.hosts[self.shard_of(address)].submit(address, method, args)
        if fut.done():
            # Awaiting a resolved future does not yield: a caller looping on inline turns
            # would starve the writer, alarms and every other task. Give them a turn.
            await asyncio.sleep(0)
        return await fut

    async def health(self) -> list[dict[str, Any]]:
        return [host.health() for host in self.hosts]

    async def stats(self) -> dict[str, Any]:
        return {"runtime": self.name, "shards": [{**host.metrics(), "up": True} for host in self.hosts],
                "processes": [PROCESS_COUNTERS.snapshot()], "client": {}}

    async def _feed_subscribe(self, shard: int, sub_id: str, topics: list[str]) -> None:
        self.hosts[shard].feeds.subscribe(sub_id, topics)

    async def _feed_unsubscribe(self, shard: int, sub_id: str, topics: list[str]) -> None:
        self.hosts[shard].feeds.unsubscribe(sub_id, topics)

    async def _feed_poll(self, shard: int, sub_id: str, wait: float) -> list[Any] | None:
        return await self.hosts[shard].feeds.poll(sub_id, wait)
