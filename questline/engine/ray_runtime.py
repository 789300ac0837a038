"""RayRuntime: each shard is one Ray actor hosting many virtual actors.

One Ray actor per user would be one OS process per user; instead a shard
process hosts a ``ShardHost`` (the same code LocalRuntime runs in-process).
A Ray call costs ~1-2 ms here while a batch of hundreds costs about the
same, so the client coalesces messages per shard: whatever arrives while a
batch is in flight leaves in the next one (at most ``max_inflight_batches``
per shard in flight, at most ``max_batch`` messages each). Shards are
independent: a slow shard never delays calls to another.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import pickle
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError

from questline.engine.address import Address, place
from questline.engine.errors import ActorError, ShardUnavailable
from questline.engine.runtime import EngineConfig, Runtime
from questline.engine.stats import PROCESS_COUNTERS

log = logging.getLogger("questline.engine")

NAMESPACE = "questline"

Item = tuple[str, str, str, tuple]


def shard_actor_name(config: EngineConfig, shard: int) -> str:
    """Front doors of one deployment (same data dir) attach to the same shard actors."""
    digest = hashlib.blake2b(str(Path(config.data_dir).resolve()).encode(), digest_size=6).hexdigest()
    return f"questline-shard-{shard}-of-{config.shards}-{digest}"


def _portable(exc: Exception) -> Exception:
    """Exceptions cross the Ray hop by pickling; one that cannot is carried as ActorError."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return ActorError(f"{type(exc).__name__}: {exc}")


def _portable_value(ok: bool, value: Any) -> Any:
    if not ok:
        return _portable(value)
    try:
        pickle.dumps(value)
        return value
    except Exception as exc:
        return ActorError(f"reply cannot cross processes: {exc}")


class _ShardLink:
    """Client side of one shard: micro-batches messages into Ray calls and demultiplexes replies."""

    def __init__(self, shard: int, handle: Any, max_batch: int, max_inflight: int, max_queued: int) -> None:
        self.shard = shard
        self.max_queued = max_queued
        self.handle = handle
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        self.queue: list[tuple[Item, asyncio.Future]] = []
        self.inflight = 0
        self.scheduled = False
        self.batches_sent = 0
        self.messages_sent = 0
        self.rejected = 0

    def submit(self, item: Item) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if len(self.queue) >= self.max_queued:
            # Admission control: the shard is not keeping up; refuse now instead of queueing.
            self.rejected += 1
            fut.set_exception(ShardUnavailable(f"shard {self.shard} is overloaded", retry_after=1.0))
            return fut
        self.queue.append((item, fut))
        if not self.scheduled and self.inflight < self.max_inflight:
            # Flush on the next loop iteration: everything submitted in this one rides along.
            self.scheduled = True
            loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        self.scheduled = False
        while self.queue and self.inflight < self.max_inflight:
            batch = self.queue[: self.max_batch]
            del self.queue[: self.max_batch]
            self.inflight += 1
            asyncio.create_task(self._send(batch))

    async def _send(self, batch: list[tuple[Item, asyncio.Future]]) -> None:
        try:
            # One pickle of the whole batch: Ray then ships plain bytes instead of
            # serialising every item through its own per-object path.
            payload = pickle.dumps([item for item, _ in batch], protocol=pickle.HIGHEST_PROTOCOL)
            results = pickle.loads(await self.handle.run_batch.remote(payload))
        except (RayActorError, RayError) as exc:
            err = ShardUnavailable(f"shard {self.shard} unavailable: {type(exc).__name__}")
            results = [(False, err)] * len(batch)
        except Exception as exc:  # transport failure: nothing was acknowledged
            err = ShardUnavailable(f"shard {self.shard} call failed: {exc}")
            results = [(False, err)] * len(batch)
        finally:
            self.inflight -= 1
        self.batches_sent += 1
        self.messages_sent += len(batch)
        for (_, fut), (ok, value) in zip(batch, results, strict=True):
            if fut.done():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
        if self.queue and not self.scheduled:
            self._flush()


class ShardClients:
    """Batched access to every shard of a deployment, from a front door or from a shard."""

    def __init__(self, config: EngineConfig, handles: list[Any]) -> None:
        self.config = config
        self.links = [
            _ShardLink(i, h, config.max_batch, config.max_inflight_batches, config.max_queued_per_shard)
            for i, h in enumerate(handles)
        ]

    async def call(self, address: Address, method: str, *args: Any) -> Any:
        link = self.links[place(address, self.config.shards)]
        return await link.submit((address.kind, address.key, method, args))

    def batch_stats(self) -> dict[str, float]:
        batches = sum(link.batches_sent for link in self.links)
        messages = sum(link.messages_sent for link in self.links)
        return {"batches": batches, "messages": messages, "mean_batch": messages / batches if batches else 0.0}


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0, max_concurrency=10_000)
class ShardActor:
    """The Ray actor of one shard. Restarted by Ray after a crash; recovers from its SQLite file."""

    def __init__(self, shard: int, config: EngineConfig) -> None:
        self.shard = shard
        self.config = config
        self.host: Any = None
        self.peers: ShardClients | None = None
        self._opening: asyncio.Lock | None = None

    async def _ensure_open(self) -> None:
        if self.host is not None:
            return
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self.host is not None:
                return
            from questline.engine.gc_policy import tune_for_serving
            from questline.engine.local import build_shard

            host = build_shard(self.shard, self.config, self._route)
            host.peer_of = lambda address: host if place(address, self.config.shards) == self.shard else None
            await host.start()
            self.host = host
            tune_for_serving()  # this process hosts the shard's actors for its whole life

    async def _route(self, address: Address, method: str, args: tuple) -> Any:
        """Actor-to-actor messages: same shard stays local, others go through batched links."""
        if place(address, self.config.shards) == self.shard:
            return await self.host.submit(address, method, args)
        if self.peers is None:
            handles = [
                ray.get_actor(shard_actor_name(self.config, i), namespace=NAMESPACE)
                for i in range(self.config.shards)
            ]
            self.peers = ShardClients(self.config, handles)
        return await self.peers.call(address, method, *args)

    async def run_batch(self, payload: bytes) -> bytes:
        """Run a pickled batch of (kind, key, method, args); return the pickled (ok, value) list."""
        items: list[Item] = pickle.loads(payload)
        try:
            await self._ensure_open()
        except Exception as exc:
            err = ShardUnavailable(f"shard {self.shard} failed to open: {exc}")
            return pickle.dumps([(False, err)] * len(items))
        results = await self.host.run_batch(items)
        try:
            return pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # a reply or exception that cannot cross processes
            return pickle.dumps([(ok, _portable_value(ok, value)) for ok, value in results])

    async def feed_subscribe(self, sub_id: str, topics: list[str]) -> None:
        await self._ensure_open()
        self.host.feeds.subscribe(sub_id, topics)

    async def feed_unsubscribe(self, sub_id: str, topics: list[str]) -> None:
        await self._ensure_open()
        self.host.feeds.unsubscribe(sub_id, topics)

    async def feed_poll(self, sub_id: str, wait: float) -> bytes:
        await self._ensure_open()
        return pickle.dumps(await self.host.feeds.poll(sub_id, wait), protocol=pickle.HIGHEST_PROTOCOL)

    async def health(self) -> dict[str, Any]:
        await self._ensure_open()
        return {**self.host.health(), "pid": __import__("os").getpid()}

    async def stats(self) -> dict[str, Any]:
        """This shard's counters plus its process's (actor code running here counts there)."""
        # Imported here: Ray ships this class by value, so a module-level name would be a stale copy.
        from questline.engine.stats import PROCESS_COUNTERS as here

        await self._ensure_open()
        return {**self.host.metrics(), "up": True, "process": here.snapshot()}

    async def stop(self) -> None:
        if self.host is not None:
            await self.host.stop()
            self.host = None


class RayRuntime(Runtime):
    name = "ray"

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        self.handles: list[Any] = []
        self.clients: ShardClients | None = None
        self._owned: list[bool] = []
        self._started_ray = False

    async def start(self) -> None:
        if not ray.is_initialized():
            ray.init(
                # "local" always starts a fresh local Ray; pass --ray-address to join a cluster.
                address=self.config.ray_address or "local",
                namespace=NAMESPACE,
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=True,
            )
            self._started_ray = True
        detached = self.config.ray_address is not None
        for shard in range(self.config.shards):
            name = shard_actor_name(self.config, shard)
            try:
                handle = ray.get_actor(name, namespace=NAMESPACE)
                owned = False
            except ValueError:
                options: dict[str, Any] = {"name": name, "namespace": NAMESPACE, "get_if_exists": True}
                if detached:
                    options["lifetime"] = "detached"
                handle = ShardActor.options(**options).remote(shard, self.config)
                owned = True
            self.handles.append(handle)
            self._owned.append(owned)
        self.clients = ShardClients(self.config, self.handles)
        # Open every shard now (recovery happens here), so the first request is not the one that waits.
        await asyncio.gather(*(h.health.remote() for h in self.handles))

    async def stop(self) -> None:
        await self._close_feeds()
        for handle, owned in zip(self.handles, self._owned, strict=True):
            if owned:
                try:
                    await handle.stop.remote()
                except RayError:
                    log.warning("shard did not stop cleanly", exc_info=True)
                ray.kill(handle, no_restart=True)
        self.handles, self._owned, self.clients = [], [], None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    @property
    def cluster_address(self) -> str | None:
        """The GCS address other front doors pass as ``--ray-address``."""
        return ray.get_runtime_context().gcs_address if ray.is_initialized() else None

    async def call(self, address: Address, method: str, *args: Any) -> Any:
        if self.clients is None:
            raise ShardUnavailable("ray runtime is not started")
        return await self.clients.call(address, method, *args)

    async def health(self) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(h.health.remote() for h in self.handles)))

    def batch_stats(self) -> dict[str, float]:
        return self.clients.batch_stats() if self.clients else {}

    async def stats(self, time_limit: float = 2.0) -> dict[str, Any]:
        async def one(shard: int, handle: Any) -> dict[str, Any]:
            try:
                return await asyncio.wait_for(handle.stats.remote(), time_limit)
            except Exception as exc:  # a dead or slow shard is reported down, never raised
                return {"shard": shard, "up": False, "error": f"{type(exc).__name__}: {exc}"}

        shards = list(await asyncio.gather(*(one(i, h) for i, h in enumerate(self.handles))))
        processes = [PROCESS_COUNTERS.snapshot()]
        for entry in shards:
            process = entry.pop("process", None)
            if process is not None and all(p["pid"] != process["pid"] for p in processes):
                processes.append(process)
        links = self.clients.links if self.clients else []
        client = {"shards": [{"shard": link.shard, "batches_sent": link.batches_sent,
                              "messages_sent": link.messages_sent, "rejected": link.rejected,
                              "queued": len(link.queue), "inflight": link.inflight} for link in links]}
        return {"runtime": self.name, "shards": shards, "processes": processes, "client": client}

    async def _feed_subscribe(self, shard: int, sub_id: str, topics: list[str]) -> None:
        await self.handles[shard].feed_subscribe.remote(sub_id, topics)

    async def _feed_unsubscribe(self, shard: int, sub_id: str, topics: list[str]) -> None:
        await self.handles[shard].feed_unsubscribe.remote(sub_id, topics)

    async def _feed_poll(self, shard: int, sub_id: str, wait: float) -> list[Any] | None:
        return pickle.loads(await self.handles[shard].feed_poll.remote(sub_id, wait))
