"""Runtime.stats(): the counters a metrics scrape renders, on both runtimes.

Shards keep plain counters and commit histograms; with Ray they live in other
processes, so these checks go through ``stats()`` exactly as a scrape does.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from questline.engine import Actor, Address, ShardUnavailable
from questline.engine.stats import FixedHistogram, ProcessCounters
from tests.conftest import RUNTIMES


def _counted_actor() -> type[Actor]:
    """Defined in a function so Ray ships the class by value (the worker cannot import tests)."""

    class Counted(Actor):
        kind = "test.counted"

        def hit(self, outcome: str) -> int:
            # Imported at call time: the singleton of whichever process runs this turn.
            from questline.engine.stats import PROCESS_COUNTERS

            PROCESS_COUNTERS.incr("test_hits_total", outcome=outcome)
            n = self.storage.get("n", 0) + 1
            self.storage.put("n", n)
            return n

    return Counted


def _shard_sum(stats: dict[str, Any], name: str) -> int:
    return sum(s["counters"][name] for s in stats["shards"])


def _process_total(stats: dict[str, Any], name: str, **labels: str) -> float:
    return sum(value for p in stats["processes"] for n, lab, value in p["counters"] if n == name and lab == labels)


@pytest.mark.parametrize("runtime_name", RUNTIMES)
async def test_turns_commits_and_histograms_add_up(make_runtime, runtime_name: str) -> None:
    rt = await make_runtime(runtime_name, shards=2)
    before = await rt.stats()
    assert before["runtime"] == runtime_name
    assert [s["shard"] for s in before["shards"]] == [0, 1] and all(s["up"] for s in before["shards"])
    keys = [Address("engine.counter", f"k{i}") for i in range(20)]
    await asyncio.gather(*(rt.call(k, "add", 1) for k in keys for _ in range(3)))
    after = await rt.stats()
    assert _shard_sum(after, "turns") - _shard_sum(before, "turns") >= 60
    assert _shard_sum(after, "activations") - _shard_sum(before, "activations") == 20
    assert _shard_sum(after, "committed_turns") - _shard_sum(before, "committed_turns") == 60
    for shard in after["shards"]:
        seconds = shard["histograms"]["commit_seconds"]
        batch = shard["histograms"]["commit_batch_turns"]
        # One observation of each per commit; the batch sizes sum to the turns committed.
        assert seconds["count"] == batch["count"] == shard["counters"]["commits"]
        assert batch["sum"] == shard["counters"]["committed_turns"]
        assert seconds["buckets"][-1] == [float("inf"), seconds["count"]]
        counts = [count for _, count in seconds["buckets"]]
        assert counts == sorted(counts)  # cumulative
        assert shard["gauges"]["resident"] >= 1
    assert sum(s["gauges"]["resident"] for s in after["shards"]) >= 20


@pytest.mark.parametrize("runtime_name", RUNTIMES)
async def test_mailbox_rejections_are_counted(make_runtime, runtime_name: str) -> None:
    rt = await make_runtime(runtime_name, max_mailbox=5)
    slow = Address("engine.counter", "flooded")
    first = asyncio.ensure_future(rt.call(slow, "slow_add", 1, 0.5))
    await asyncio.sleep(0.2)
    flood = await asyncio.gather(*(rt.call(slow, "add", 1) for _ in range(40)), return_exceptions=True)
    refused = sum(isinstance(r, ShardUnavailable) for r in flood)
    await first
    assert refused >= 30
    stats = await rt.stats()
    assert _shard_sum(stats, "rejected") == refused


@pytest.mark.parametrize("runtime_name", RUNTIMES)
async def test_counts_made_inside_actors_reach_the_caller(make_runtime, runtime_name: str) -> None:
    """Actor code counts in whatever process hosts it; stats() brings those counts back."""
    rt = await make_runtime(runtime_name, shards=2, actor_classes=[_counted_actor()])
    before = _process_total(await rt.stats(), "test_hits_total", outcome="ok")
    for i in range(6):
        await rt.call(Address("test.counted", f"c{i}"), "hit", "ok")
    await rt.call(Address("test.counted", "c0"), "hit", "failed")
    stats = await rt.stats()
    assert _process_total(stats, "test_hits_total", outcome="ok") - before == 6
    assert _process_total(stats, "test_hits_total", outcome="failed") >= 1
    pids = [p["pid"] for p in stats["processes"]]
    assert len(pids) == len(set(pids))  # one snapshot per process, however many shards it hosts
    if runtime_name == "ray":
        assert len(pids) >= 2  # the caller's process plus the shard processes
        assert {s["shard"] for s in stats["client"]["shards"]} == {0, 1}
        assert sum(s["messages_sent"] for s in stats["client"]["shards"]) >= 7


async def test_a_shard_that_does_not_answer_is_reported_down(make_runtime, ray_cluster) -> None:
    import ray

    rt = await make_runtime("ray", shards=2)
    ray.kill(rt.handles[1], no_restart=True)
    # ray.kill returns before the worker is gone: wait until the actor really is dead.
    for _ in range(200):
        try:
            await rt.handles[1].health.remote()
        except ray.exceptions.RayActorError:
            break
        await asyncio.sleep(0.05)
    stats = await rt.stats(time_limit=5.0)
    assert stats["shards"][0]["up"] is True
    assert stats["shards"][1]["up"] is False and stats["shards"][1]["shard"] == 1 and stats["shards"][1]["error"]


def test_fixed_histogram_buckets_are_cumulative_with_bounds_inclusive() -> None:
    h = FixedHistogram([1, 5])
    for value in (0, 1, 2, 5, 9):
        h.observe(value)
    assert h.snapshot() == {"buckets": [[1, 2], [5, 4], [float("inf"), 5]], "sum": 17, "count": 5}


def test_process_counters_key_on_name_and_labels() -> None:
    c = ProcessCounters()
    c.incr("a_total", outcome="ok")
    c.incr("a_total", 2, outcome="ok")
    c.incr("a_total", outcome="failed")
    c.incr("b_total")
    assert sorted(map(tuple, [(n, tuple(sorted(lab.items())), v) for n, lab, v in c.snapshot()["counters"]])) == [
        ("a_total", (("outcome", "failed"),), 1), ("a_total", (("outcome", "ok"),), 3), ("b_total", (), 1)]
