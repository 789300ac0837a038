"""Plain counters the engine keeps for operators: cheap to update, cheap to ship.

Shards may live in other processes (Ray), so nothing here is a Prometheus
object: a shard keeps integers and small fixed-bucket histograms, and the
front door pulls snapshots (plain dicts, picklable) at scrape time and renders
them. Updating one is an integer add (histograms: one ``bisect`` per commit,
never per turn).

``PROCESS_COUNTERS`` is for code that runs inside actors (in whatever process
hosts them) and wants a labelled count reported without knowing where it runs:
each shard process ships its own snapshot with its shard stats.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

# Seconds: an fsynced SQLite commit is ~1-30 ms here; the tail matters most.
COMMIT_SECONDS_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                             1.0, 2.5)
# Journal entries (turns with writes) per group commit.
COMMIT_BATCH_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class FixedHistogram:
    """Counts per upper bound (non-cumulative; the last slot is +Inf) plus the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def snapshot(self) -> dict[str, Any]:
        """``buckets``: cumulative ``[upper bound, count]`` pairs ending with ``inf`` (Prometheus' shape)."""
        running = 0
        buckets: list[list[float]] = []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            buckets.append([bound, running])
        return {"buckets": buckets, "sum": self.total, "count": running}


class ProcessCounters:
    """Labelled counters of this process: ``incr("name", outcome="ok")``."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def incr(self, name: str, amount: float = 1, **labels: str) -> None:
        key = (name, tuple(sorted((k, str(v)) for k, v in labels.items())))
        self._values[key] = self._values.get(key, 0) + amount

    def snapshot(self) -> dict[str, Any]:
        """``{"pid", "counters": [[name, {label: value}, amount], ...]}`` (plain, picklable)."""
        return {"pid": os.getpid(),
                "counters": [[name, dict(labels), value] for (name, labels), value in self._values.items()]}


PROCESS_COUNTERS = ProcessCounters()
