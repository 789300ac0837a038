"""Engine scenario: raw actor messages/s, no HTTP, for each runtime and durability.

Closed loop: ``concurrency`` callers each send one message and wait for its
(gated) reply before the next, for ``seconds``. Two workloads: one hot actor
(every message to the same key: pure turn throughput, group commit amortised
over one actor) and 10,000 actors round-robin (activation, placement and the
journal under a wide key space; a warm-up pass activates them first).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.histogram import Histogram
from questline.engine import Address, EngineConfig, Runtime, create_runtime


@dataclass
class EngineResult:
    runtime: str
    durability: str
    workload: str
    actors: int
    concurrency: int
    messages: int
    seconds: float
    msgs_per_s: float
    mean_batch: float | None  # messages per Ray call (Ray runtime only)
    mean_commit: float  # turns per journal commit (group commit size)
    histogram: dict[str, Any] | None = None  # per-call latency (us), benchmarks.histogram

    def row(self) -> dict[str, Any]:
        return asdict(self)


async def _drive(
    runtime: Runtime, keys: list[str], concurrency: int, seconds: float, latency: Histogram
) -> tuple[int, float]:
    sent = 0
    clock = time.perf_counter
    stop_at = clock() + seconds
    n_keys = len(keys)
    record = latency.record

    async def caller(offset: int) -> None:
        nonlocal sent
        i = offset
        while (start := clock()) < stop_at:
            await runtime.call(Address("engine.counter", keys[i % n_keys]), "add", 1)
            record(int((clock() - start) * 1_000_000 + 0.5))
            sent += 1
            i += concurrency

    started = clock()
    await asyncio.gather(*(caller(c) for c in range(concurrency)))
    return sent, clock() - started


async def run_engine(
    runtime_name: str,
    durability: str,
    *,
    shards: int = 2,
    concurrency: int = 256,
    seconds: float = 3.0,
    actors: int = 10_000,
    max_inflight_batches: int = 4,
    window: Callable[[str, str], None] | None = None,
) -> list[EngineResult]:
    """``window("start"|"stop", workload)`` is called around each measured workload
    (the harness samples CPU there, while Ray's processes are still alive)."""
    results: list[EngineResult] = []
    with tempfile.TemporaryDirectory(prefix="questline-bench-") as tmp:
        config = EngineConfig(
            data_dir=Path(tmp), shards=shards, durability=durability,
            max_inflight_batches=max_inflight_batches,
        )
        runtime = create_runtime(runtime_name, config)
        await runtime.start()
        try:
            wide = [f"user{i}" for i in range(actors)]
            # Warm-up: activate every actor once so the wide run measures steady state.
            await asyncio.gather(
                *(runtime.call(Address("engine.counter", k), "add", 0) for k in wide[:actors])
            )
            for workload, keys in (("1 hot actor", ["hot"]), (f"{actors:,} actors", wide)):
                before = _commit_stats(await runtime.health())
                batches_before = _batch_stats(runtime)
                latency = Histogram()
                if window is not None:
                    window("start", workload)
                sent, elapsed = await _drive(runtime, keys, concurrency, seconds, latency)
                if window is not None:
                    window("stop", workload)
                after = _commit_stats(await runtime.health())
                batches_after = _batch_stats(runtime)
                commits = max(1, after[0] - before[0])
                mean_batch = None
                if batches_after is not None and batches_before is not None:
                    b = batches_after[0] - batches_before[0]
                    mean_batch = (batches_after[1] - batches_before[1]) / b if b else None
                results.append(
                    EngineResult(
                        runtime=runtime_name,
                        durability=durability,
                        workload=workload,
                        actors=len(keys),
                        concurrency=concurrency,
                        messages=sent,
                        seconds=round(elapsed, 3),
                        msgs_per_s=round(sent / elapsed, 1),
                        mean_batch=round(mean_batch, 1) if mean_batch else None,
                        mean_commit=round((after[1] - before[1]) / commits, 1),
                        histogram=latency.to_dict(),
                    )
                )
        finally:
            await runtime.stop()
    return results


def _commit_stats(health: list[dict[str, Any]]) -> tuple[int, int]:
    return sum(h["commits"] for h in health), sum(h["committed_turns"] for h in health)


def _batch_stats(runtime: Runtime) -> tuple[int, int] | None:
    stats = getattr(runtime, "batch_stats", None)
    if stats is None:
        return None
    s = stats()
    return int(s.get("batches", 0)), int(s.get("messages", 0))
