"""The shard host: many virtual actors in one event loop, over one SQLite file.

Turn-based execution: each activation has a mailbox drained by one task, so an
actor runs one message at a time to completion, while different actors
interleave at their ``await`` points.

Output gate: a finished turn's writes are applied in memory (the next turn sees
them) and appended to the pending journal; its reply, and the messages it
``tell``s, are released only once the journal batch holding every write up to
that point is committed. The writer commits whatever accumulated while the
previous commit ran, so one fsync covers every turn of a burst (group commit).
``relaxed`` durability releases replies at once and commits on a short timer.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any

from questline.engine.actor import (
    ALARM_KEY,
    Actor,
    ActorContext,
    Storage,
    decode_value,
    public_methods,
)
from questline.engine.address import Address
from questline.engine.errors import ShardUnavailable, UnknownActorKind, UnknownMethod
from questline.engine.feeds import ShardFeeds
from questline.engine.stats import COMMIT_BATCH_BUCKETS, COMMIT_SECONDS_BUCKETS, FixedHistogram
from questline.storage.shard_store import JournalEntry, ShardStore, Snapshot, StorageFault

log = logging.getLogger("questline.engine")

Router = Callable[[Address, str, tuple[Any, ...]], Awaitable[Any]]
# The host of an address when it lives in this process (None: reach it through the router).
PeerLookup = Callable[[Address], "ShardHost | None"]

_ALARM_MESSAGE = "__alarm__"
_EMIT = "__emit__"  # marks an outbox entry holding this turn's emitted items
_ALARM_RETRY_MS = 1000
_YIELD_EVERY = 64
# Periodic snapshots are spread over commits, this many per commit: snapshotting every
# dirty actor at once would stall the loop (encoding thousands of states) every interval.
SNAPSHOTS_PER_COMMIT = 128


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def _log_failed_tell(address: Address, method: str, fut: asyncio.Future) -> None:
    exc = None if fut.cancelled() else fut.exception()
    if exc is not None:
        log.warning("tell %s.%s to %s failed", address.kind, method, address.key, exc_info=exc)


class _Activation:
    """One resident actor: its instance, storage, mailbox and bookkeeping."""

    __slots__ = ("address", "actor_id", "cls", "storage", "actor", "mailbox", "running",
                 "alive", "dirty", "snapshot_due", "last_seq")

    def __init__(self, address: Address, cls: type[Actor]) -> None:
        self.address = address
        self.actor_id = address.id
        self.cls = cls
        self.storage: Storage | None = None
        self.actor: Actor | None = None
        self.mailbox: deque[tuple[str, tuple[Any, ...], asyncio.Future | None]] = deque()
        self.running = False
        self.alive = True
        self.dirty = False  # committed writes not yet covered by a snapshot
        self.snapshot_due = False  # queued for the next periodic snapshot
        self.last_seq = 0


class ShardHost:
    """Hosts the actors placed on one shard and owns that shard's store."""

    def __init__(
        self,
        shard_id: int,
        store: ShardStore,
        actor_classes: dict[str, type[Actor]],
        router: Router,
        *,
        durability: str = "strict",
        snapshot_interval: float = 5.0,
        max_resident: int = 50_000,
        max_mailbox: int = 10_000,
        relaxed_flush_interval: float = 0.02,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.shard_id = shard_id
        self.store = store
        self.classes = actor_classes
        self._methods = {kind: public_methods(cls) for kind, cls in actor_classes.items()}
        # Plain (non-async) methods can run inline when their actor is idle.
        self._sync_methods = {
            kind: frozenset(m for m in methods if not inspect.iscoroutinefunction(getattr(actor_classes[kind], m)))
            for kind, methods in self._methods.items()
        }
        self.router = router
        # Set by the runtime: tells to actors hosted in this process are submitted directly
        # (no task, no coroutine per message); the others go through ``router``.
        self.peer_of: PeerLookup | None = None
        self.strict = durability == "strict"
        self.snapshot_interval = snapshot_interval
        self.max_resident = max_resident
        self.max_mailbox = max_mailbox
        self.relaxed_flush_interval = relaxed_flush_interval
        self.clock = clock

        self._acts: OrderedDict[str, _Activation] = OrderedDict()
        self._seq = 0
        self._committed_seq = 0
        self._journal: list[JournalEntry] = []
        self._snapshots: dict[str, Snapshot] = {}
        # Actors whose periodic snapshot is due, taken SNAPSHOTS_PER_COMMIT at a time by the writer.
        self._snapshot_due: deque[_Activation] = deque()
        self._alarm_writes: dict[str, int | None] = {}
        # Snapshots handed to the writer but not yet committed: loads must see them.
        self._snap_inflight: dict[str, Snapshot] = {}
        # A superset of the actors with durable state (read at start, grown by every turn
        # that writes): an actor outside it has nothing on disk, so it activates without a read.
        self._stored: set[str] = set()
        # Replies (and outgoing tells) waiting for the journal to reach a sequence number.
        self._gate: deque[tuple[int, asyncio.Future | None, bool, Any, list]] = deque()

        self.feeds = ShardFeeds()
        self._loads: dict[str, asyncio.Future] = {}
        self._loader_running = False
        self._alarms: dict[str, int] = {}
        self._alarm_heap: list[tuple[int, str]] = []
        self._alarm_wake = asyncio.Event()
        self._work = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._running = False
        self._writing = False
        self.stats = {"turns": 0, "commits": 0, "committed_turns": 0, "activations": 0,
                      "evictions": 0, "alarms_fired": 0, "storage_faults": 0, "rejected": 0}
        # Per group commit (never per turn): how long the fsync took and how many turns it covered.
        self.commit_seconds = FixedHistogram(COMMIT_SECONDS_BUCKETS)
        self.commit_batch = FixedHistogram(COMMIT_BATCH_BUCKETS)

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        self._seq = self._committed_seq = await self.store.open()
        self._stored = await self.store.actor_ids()
        for actor_id, at in await self.store.load_alarms():
            self._alarms[actor_id] = at
            heapq.heappush(self._alarm_heap, (at, actor_id))
        self._running = True
        self._tasks = [
            asyncio.create_task(self._writer(), name=f"shard{self.shard_id}-writer"),
            asyncio.create_task(self._alarm_loop(), name=f"shard{self.shard_id}-alarms"),
            asyncio.create_task(self._snapshot_loop(), name=f"shard{self.shard_id}-snapshots"),
        ]

    async def stop(self) -> None:
        """Drain, snapshot every dirty actor, commit, and close the file."""
        if not self._running:
            return
        # Shutdown only: poll until in-flight turns finish (no per-turn event on the hot path).
        for act in list(self._acts.values()):
            while act.running or act.mailbox:  # noqa: ASYNC110
                await asyncio.sleep(0.001)
        self._running = False
        writer, *others = self._tasks
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        self._take_snapshot()
        # Let the writer commit everything, including the final snapshot, then stop it.
        while self._journal or self._snapshots or self._alarm_writes or self._gate or self._writing:
            if writer.done():
                break
            await asyncio.sleep(0.002)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        await self.store.close()

    @property
    def resident(self) -> int:
        return len(self._acts)

    def health(self) -> dict[str, Any]:
        return {
            "shard": self.shard_id,
            "running": self._running,
            "resident": len(self._acts),
            "seq": self._seq,
            "committed_seq": self._committed_seq,
            "pending_alarms": len(self._alarms),
            "feed_subscribers": self.feeds.subscribers,
            "feed_topics": self.feeds.topics,
            **self.stats,
        }

    def metrics(self) -> dict[str, Any]:
        """Counters, gauges and commit histograms as plain data (shipped across processes)."""
        return {
            "shard": self.shard_id,
            "counters": dict(self.stats),
            "gauges": {"resident": len(self._acts), "pending_alarms": len(self._alarms),
                       "feed_subscribers": self.feeds.subscribers,
                       "journal_backlog": self._seq - self._committed_seq},
            "histograms": {"commit_seconds": self.commit_seconds.snapshot(),
                           "commit_batch_turns": self.commit_batch.snapshot()},
        }

    # -- messaging -------------------------------------------------------------
    def submit(self, address: Address, method: str, args: tuple[Any, ...]) -> asyncio.Future:
        """Queue a message for an actor; the future resolves with the (gated) reply."""
        fut = asyncio.get_running_loop().create_future()
        try:
            act = self._activation(address)
            if method not in self._methods[address.kind]:
                raise UnknownMethod(f"{address.kind} has no method {method!r}")
            if not self._running:
                raise ShardUnavailable(f"shard {self.shard_id} is not running")
        except Exception as exc:
            fut.set_exception(exc)
            return fut
        if act.actor is None and not act.running and not act.mailbox:
            self._activate_fresh(act)
        if (not act.running and act.actor is not None and not act.mailbox
                and method in self._sync_methods[address.kind]):
            self._turn_inline(act, method, args, fut)
        elif len(act.mailbox) >= self.max_mailbox:
            # Admission control: refuse at once rather than queue without bound.
            self.stats["rejected"] += 1
            fut.set_exception(ShardUnavailable(f"{address.kind} {address.key!r} is overloaded", retry_after=1.0))
        else:
            self._enqueue(act, method, args, fut)
        return fut

    async def call(self, address: Address, method: str, *args: Any) -> Any:
        return await self.submit(address, method, args)

    async def run_batch(self, items: list[tuple[str, str, str, tuple]]) -> list[tuple[bool, Any]]:
        """Run many messages (kind, key, method, args); one (ok, value) per item, in order."""
        futs = [self.submit(Address(kind, key), method, args) for kind, key, method, args in items]
        out: list[tuple[bool, Any]] = []
        for fut in futs:
            try:
                out.append((True, await fut))
            except Exception as exc:  # carried back to the caller, re-raised there
                out.append((False, exc))
        return out

    def _activation(self, address: Address) -> _Activation:
        actor_id = address.id
        act = self._acts.get(actor_id)
        if act is not None:
            self._acts.move_to_end(actor_id)
            return act
        cls = self.classes.get(address.kind)
        if cls is None:
            raise UnknownActorKind(f"no actor kind {address.kind!r}")
        act = _Activation(address, cls)
        self._acts[actor_id] = act
        self._evict_idle()
        return act

    def _enqueue(self, act: _Activation, method: str, args: tuple, fut: asyncio.Future | None) -> None:
        act.mailbox.append((method, args, fut))
        if not act.running:
            act.running = True
            asyncio.create_task(self._drain(act))

    # -- turns -----------------------------------------------------------------
    async def _drain(self, act: _Activation) -> None:
        try:
            if act.actor is None:
                try:
                    await self._activate(act)
                except Exception as exc:
                    self._fail_mailbox(act, exc)
                    return
            done = 0
            while act.mailbox and act.alive:
                method, args, fut = act.mailbox.popleft()
                await self._turn(act, method, args, fut)
                done += 1
                if done % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            if not act.alive:
                self._fail_mailbox(act, ShardUnavailable(f"shard {self.shard_id} was reset"))
        finally:
            act.running = False

    def _fail_mailbox(self, act: _Activation, exc: Exception) -> None:
        while act.mailbox:
            _, _, fut = act.mailbox.popleft()
            if fut is not None and not fut.done():
                fut.set_exception(exc)
        if self._acts.get(act.actor_id) is act and act.actor is None:
            del self._acts[act.actor_id]

    async def _activate(self, act: _Activation) -> None:
        snap = self._snap_inflight.get(act.actor_id)
        if snap is None:
            loaded = await self._load(act.actor_id)
            if isinstance(loaded, StorageFault):
                raise ShardUnavailable(str(loaded)) from loaded
            snap = loaded
        committed = dict(snap.state) if snap is not None else {}
        act.last_seq = snap.seq if snap is not None else 0
        act.storage = Storage(committed)
        await self._instantiate(act)
        self.stats["activations"] += 1

    def _activate_fresh(self, act: _Activation) -> None:
        """Activate on the spot an actor that has never written (no read, no task).

        Only when nothing can be on disk for it and ``on_activate`` does not await;
        otherwise the mailbox task activates it as usual.
        """
        if act.actor_id in self._stored or act.actor_id in self._snap_inflight:
            return
        if inspect.iscoroutinefunction(act.cls.on_activate):
            return
        act.last_seq = 0
        act.storage = Storage({})
        try:
            self._new_instance(act)
        except Exception:
            act.actor = act.storage = None  # the mailbox task activates it and reports the failure
            return
        self._finish_turn(act, None, True, None)
        self.stats["activations"] += 1

    def _load(self, actor_id: str) -> asyncio.Future:
        """Queue a state load; every load queued while a batch is being read goes in the next batch."""
        fut = self._loads.get(actor_id)
        if fut is None:
            fut = self._loads[actor_id] = asyncio.get_running_loop().create_future()
            if not self._loader_running:
                self._loader_running = True
                asyncio.create_task(self._load_batches())
        return fut

    async def _load_batches(self) -> None:
        try:
            while self._loads:
                batch, self._loads = self._loads, {}
                try:
                    results = await self.store.load_many(list(batch))
                except Exception as exc:  # the whole read failed: every waiter gets the fault
                    fault = exc if isinstance(exc, StorageFault) else StorageFault(str(exc))
                    results = dict.fromkeys(batch, fault)
                for actor_id, fut in batch.items():
                    if not fut.done():
                        fut.set_result(results.get(actor_id))
        finally:
            self._loader_running = False

    async def _instantiate(self, act: _Activation) -> None:
        """Build the actor object from committed state and run ``on_activate`` as a turn."""
        result = self._new_instance(act)
        if inspect.isawaitable(result):
            await result
        self._finish_turn(act, None, True, None)

    def _new_instance(self, act: _Activation) -> Any:
        """A fresh actor object over ``act.storage``; returns what its ``on_activate`` returned."""
        assert act.storage is not None
        ctx = ActorContext(act.address, act.storage, self.clock, self._call_out)
        act.actor = act.cls(ctx)
        return act.actor.on_activate()

    def _turn_inline(self, act: _Activation, method: str, args: tuple, fut: asyncio.Future) -> None:
        """Fast path: a plain method on an idle actor runs to completion right here.

        It cannot interleave with another turn of this actor (nothing awaits), so
        the turn-based contract holds without a mailbox task.
        """
        actor = act.actor
        assert actor is not None and act.storage is not None
        actor.ctx.outbox = []
        actor.ctx.emits = []
        self.stats["turns"] += 1
        try:
            result = getattr(actor, method)(*args)
        except Exception as exc:
            act.storage.discard_writes()
            actor.ctx.emits = []
            # Rebuilding may await on_activate: do it in the mailbox task, before anything else.
            act.actor = None
            act.running = True
            asyncio.create_task(self._reactivate_then_drain(act, fut, exc))
            return
        self._finish_turn(act, fut, True, result)

    async def _reactivate_then_drain(self, act: _Activation, fut: asyncio.Future, exc: Exception) -> None:
        try:
            await self._instantiate(act)
        except Exception:
            log.exception("re-activation of %s failed", act.actor_id)
            act.alive = False
            self._acts.pop(act.actor_id, None)
        self._release(fut, False, exc, [])
        act.running = False
        if act.mailbox:
            act.running = True
            await self._drain(act)

    async def _turn(self, act: _Activation, method: str, args: tuple, fut: asyncio.Future | None) -> None:
        actor = act.actor
        assert actor is not None and act.storage is not None
        actor.ctx.outbox = []
        actor.ctx.emits = []
        self.stats["turns"] += 1
        try:
            if method == _ALARM_MESSAGE:
                due = act.storage.get(ALARM_KEY)
                if due is None or due > self.clock():
                    return  # cancelled or moved since it was queued
                act.storage.delete(ALARM_KEY)
                self.stats["alarms_fired"] += 1
                result = actor.on_alarm()
            else:
                result = getattr(actor, method)(*args)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            act.storage.discard_writes()
            actor.ctx.emits = []
            if method == _ALARM_MESSAGE:
                self._schedule_alarm(act.actor_id, self.clock() + _ALARM_RETRY_MS, persist=False)
            # Rebuild the instance so attribute caches cannot keep half-done work.
            try:
                await self._instantiate(act)
            except Exception:
                log.exception("re-activation of %s failed", act.actor_id)
                act.alive = False
                self._acts.pop(act.actor_id, None)
            self._release(fut, False, exc, [])
            return
        self._finish_turn(act, fut, True, result)

    def _finish_turn(self, act: _Activation, fut: asyncio.Future | None, ok: bool, value: Any) -> None:
        assert act.storage is not None and act.actor is not None
        ctx = act.actor.ctx
        outbox: list = ctx.outbox
        if ctx.emits:
            outbox.append((act.address, _EMIT, tuple(ctx.emits)))
            ctx.emits = []
        ctx.outbox = []
        if not act.alive:
            self._release(fut, False, ShardUnavailable(f"shard {self.shard_id} was reset"), [])
            return
        writes = act.storage.take_writes()
        if writes:
            self._stored.add(act.actor_id)
            self._seq += 1
            act.last_seq = self._seq
            act.dirty = True
            self._journal.append(JournalEntry(self._seq, act.actor_id, writes))
            if ALARM_KEY in writes:
                raw = writes[ALARM_KEY]
                at = None if raw is None else int(decode_value(raw))
                self._alarm_writes[act.actor_id] = at
                if at is None:
                    self._alarms.pop(act.actor_id, None)
                else:
                    self._schedule_alarm(act.actor_id, at, persist=False)
            self._work.set()
        self._release(fut, ok, value, outbox)

    def _release(self, fut: asyncio.Future | None, ok: bool, value: Any, outbox: list) -> None:
        """Deliver a reply now if nothing it may depend on is still uncommitted."""
        if not self.strict or (self._committed_seq >= self._seq and not self._gate):
            self._deliver(fut, ok, value, outbox)
        else:
            self._gate.append((self._seq, fut, ok, value, outbox))

    def _deliver(self, fut: asyncio.Future | None, ok: bool, value: Any, outbox: list) -> None:
        if fut is not None and not fut.done():
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
        for address, method, args in outbox:
            if method is _EMIT:
                for item in args:
                    self.feeds.publish(address.id, item)
                continue
            peer = self.peer_of(address) if self.peer_of is not None else None
            if peer is None:
                asyncio.create_task(self._send_out(address, method, args))
                continue
            sent = peer.submit(address, method, args)
            if sent.done():
                _log_failed_tell(address, method, sent)
            else:
                sent.add_done_callback(lambda f, a=address, m=method: _log_failed_tell(a, m, f))

    async def _send_out(self, address: Address, method: str, args: tuple) -> None:
        try:
            await self._call_out(address, method, *args)
        except Exception:
            log.warning("tell %s.%s to %s failed", address.kind, method, address.key, exc_info=True)

    async def _call_out(self, address: Address, method: str, *args: Any) -> Any:
        return await self.router(address, method, args)

    # -- group commit ----------------------------------------------------------
    async def _writer(self) -> None:
        while True:
            await self._work.wait()
            self._work.clear()
            if not self.strict:
                await asyncio.sleep(self.relaxed_flush_interval)
            try:
                await self._flush_once()
            except StorageFault as exc:
                self._storage_failed(exc)

    async def _flush_once(self) -> None:
        self._take_due_snapshots(SNAPSHOTS_PER_COMMIT)
        if not (self._journal or self._snapshots or self._alarm_writes):
            return
        journal, self._journal = self._journal, []
        snapshots, self._snapshots = self._snapshots, {}
        alarms, self._alarm_writes = self._alarm_writes, {}
        upto = self._seq
        self._snap_inflight.update(snapshots)
        self._writing = True
        started = time.perf_counter()
        try:
            await self.store.commit(journal, list(snapshots.values()), alarms)
        finally:
            self._writing = False
            for actor_id, snap in snapshots.items():
                if self._snap_inflight.get(actor_id) is snap:
                    del self._snap_inflight[actor_id]
        self.stats["commits"] += 1
        self.stats["committed_turns"] += len(journal)
        self.commit_seconds.observe(time.perf_counter() - started)
        self.commit_batch.observe(len(journal))
        self._committed_seq = max(self._committed_seq, upto)
        gate = self._gate
        while gate and gate[0][0] <= self._committed_seq:
            _, fut, ok, value, outbox = gate.popleft()
            self._deliver(fut, ok, value, outbox)

    def _storage_failed(self, exc: StorageFault) -> None:
        """A commit failed: acknowledge nothing it covered and drop in-memory state.

        Every actor is reloaded from what is durably on disk on its next message.
        """
        log.error("shard %s: commit failed: %s", self.shard_id, exc)
        self.stats["storage_faults"] += 1
        err = ShardUnavailable(f"shard {self.shard_id}: storage unavailable ({exc})")
        while self._gate:
            _, fut, _, _, _ = self._gate.popleft()
            if fut is not None and not fut.done():
                fut.set_exception(err)
        self._journal.clear()
        self._snapshots.clear()
        self._snapshot_due.clear()
        self._alarm_writes.clear()
        for act in self._acts.values():
            act.alive = False
        self._acts.clear()
        self._committed_seq = self._seq

    # -- snapshots and passivation --------------------------------------------
    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self.snapshot_interval)
            self._queue_snapshots()

    def _queue_snapshots(self) -> None:
        """Mark every dirty resident actor due; the writer snapshots them a batch per commit."""
        for act in self._acts.values():
            if act.dirty and not act.snapshot_due:
                act.snapshot_due = True
                self._snapshot_due.append(act)
        if self._snapshot_due:
            self._work.set()

    def _take_due_snapshots(self, budget: int) -> None:
        """Snapshot up to ``budget`` due actors now (each retires that actor's journal rows).

        Runs between turns, so each state is consistent with the journal up to its
        ``last_seq``. Actors evicted meanwhile were snapshotted on eviction.
        """
        due = self._snapshot_due
        while due and budget > 0:
            act = due.popleft()
            act.snapshot_due = False
            if act.dirty and act.storage is not None and self._acts.get(act.actor_id) is act:
                self._snapshots[act.actor_id] = Snapshot(act.actor_id, act.last_seq, dict(act.storage.committed))
                act.dirty = False
                budget -= 1
        if due:
            self._work.set()

    def _take_snapshot(self) -> None:
        """Snapshot every dirty resident actor now, in the next commit (shutdown)."""
        self._queue_snapshots()
        self._take_due_snapshots(len(self._snapshot_due))
        self._work.set()

    def _evict_idle(self) -> None:
        """Passivation: keep at most ``max_resident`` actors, evicting the least recently used idle ones."""
        excess = len(self._acts) - self.max_resident
        if excess <= 0:
            return
        for actor_id in list(self._acts)[: excess * 4 + 8]:
            if excess <= 0:
                break
            act = self._acts[actor_id]
            if act.running or act.mailbox or act.actor is None:
                continue
            if act.dirty and act.storage is not None:
                snap = Snapshot(actor_id, act.last_seq, dict(act.storage.committed))
                self._snapshots[actor_id] = snap
                self._snap_inflight[actor_id] = snap
                self._work.set()
            del self._acts[actor_id]
            self.stats["evictions"] += 1
            excess -= 1

    # -- alarms ----------------------------------------------------------------
    def _schedule_alarm(self, actor_id: str, at: int, persist: bool) -> None:
        self._alarms[actor_id] = at
        heapq.heappush(self._alarm_heap, (at, actor_id))
        if persist:
            self._alarm_writes[actor_id] = at
        self._alarm_wake.set()

    async def _alarm_loop(self) -> None:
        while True:
            now = self.clock()
            while self._alarm_heap and self._alarm_heap[0][0] <= now:
                at, actor_id = heapq.heappop(self._alarm_heap)
                if self._alarms.get(actor_id) != at:
                    continue  # superseded
                self._alarms.pop(actor_id, None)
                address = Address.parse(actor_id)
                if address.kind not in self.classes:
                    continue
                try:
                    act = self._activation(address)
                except Exception:
                    log.exception("alarm for %s could not be delivered", actor_id)
                    continue
                self._enqueue(act, _ALARM_MESSAGE, (), None)
            self._alarm_wake.clear()
            delay = 1.0
            if self._alarm_heap:
                delay = min(delay, max(0.0, (self._alarm_heap[0][0] - self.clock()) / 1000))
            try:
                await asyncio.wait_for(self._alarm_wake.wait(), timeout=max(delay, 0.005))
            except TimeoutError:
                pass
