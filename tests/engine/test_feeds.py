"""Watching actors' emissions across the (front door, shard) boundary, both runtimes."""

from __future__ import annotations

import asyncio

import pytest

from questline.engine import Address
from tests.conftest import RUNTIMES

pytestmark = pytest.mark.parametrize("runtime_name", RUNTIMES)


def speaker(key: str) -> Address:
    return Address("engine.broadcast", key)


async def next_item(watch, seconds: float = 5.0):
    return await asyncio.wait_for(watch.get(), seconds)


async def test_watchers_receive_in_order_and_only_their_actor(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name)
    a1 = await rt.watch(speaker("a"))
    a2 = await rt.watch(speaker("a"))
    b = await rt.watch(speaker("b"))
    for i in range(50):
        await rt.call(speaker("a"), "say", {"n": i})
    assert [await next_item(a1) for _ in range(50)] == [{"n": i} for i in range(50)]
    assert [await next_item(a2) for _ in range(50)] == [{"n": i} for i in range(50)]
    await rt.call(speaker("b"), "say", "for b")
    assert await next_item(b) == "for b"
    assert not b.queue and not a1.queue
    for w in (a1, a2, b):
        await w.aclose()


async def test_failed_turn_emits_nothing(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name)
    watch = await rt.watch(speaker("f"))
    with pytest.raises(ValueError):
        await rt.call(speaker("f"), "say_then_fail", "ghost")
    await rt.call(speaker("f"), "say", "real")
    assert await next_item(watch) == "real"
    await watch.aclose()


async def test_slow_watcher_is_cut_off_without_blocking_others(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name)
    stalled = await rt.watch(speaker("s"), limit=10)
    healthy = await rt.watch(speaker("s"))
    for i in range(30):
        await rt.call(speaker("s"), "say", i)
    assert [await next_item(healthy) for _ in range(30)] == list(range(30))
    await asyncio.wait_for(stalled.closed.wait(), 5)
    assert stalled.overflowed
    await stalled.aclose()
    await healthy.aclose()


async def test_watch_churn_leaves_no_subscriptions(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name)
    for i in range(1000):
        watch = await rt.watch(speaker(f"churn{i % 50}"))
        await watch.aclose()
    assert rt.feeds.watch_count == 0
    assert rt.feeds.topic_count == 0
    health = await rt.health()
    assert sum(h["feed_topics"] for h in health) == 0

