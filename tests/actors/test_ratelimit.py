"""The generic sliding-window rate-limit actor."""

from __future__ import annotations

import asyncio

import pytest

from questline.actors.ratelimit import RateLimitActor, ratelimit_address
from tests.conftest import RUNTIMES


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


async def test_sliding_window_allows_exactly_limit_per_window(make_runtime):
    clock = Clock()
    rt = await make_runtime("local", actor_classes=[RateLimitActor], clock=clock)
    addr = ratelimit_address("t:1")
    results = []
    for i in range(5):
        clock.now = 1_000_000 + i * 100
        results.append(await rt.call(addr, "hit", 3, 1000))
    assert [r["allowed"] for r in results] == [True, True, True, False, False]
    assert [r["remaining"] for r in results[:3]] == [2, 1, 0]
    # The 4th came at +300: the oldest (at +0) leaves the window at +1000.
    assert results[3]["retryAfterMs"] == 700
    assert results[4]["retryAfterMs"] == 600
    clock.now = 1_000_000 + 1000
    assert (await rt.call(addr, "hit", 3, 1000))["allowed"] is True
    assert (await rt.call(addr, "hit", 3, 1000))["allowed"] is False  # +100 and +200 still inside
    assert (await rt.call(addr, "peek", 3, 1000))["remaining"] == 0
    # Keys are independent windows.
    assert (await rt.call(ratelimit_address("t:2"), "hit", 3, 1000))["allowed"] is True


async def test_refused_requests_do_not_extend_the_ban_and_cost_counts(make_runtime):
    clock = Clock()
    rt = await make_runtime("local", actor_classes=[RateLimitActor], clock=clock)
    addr = ratelimit_address("cost")
    assert (await rt.call(addr, "hit", 10, 1000, 8))["remaining"] == 2
    refused = await rt.call(addr, "hit", 10, 1000, 3)
    assert refused["allowed"] is False and refused["retryAfterMs"] == 1000
    clock.now += 999
    assert (await rt.call(addr, "hit", 10, 1000, 3))["allowed"] is False
    clock.now += 1
    assert (await rt.call(addr, "hit", 10, 1000, 3))["allowed"] is True
    with pytest.raises(ValueError):
        await rt.call(addr, "hit", 0, 1000)


async def test_alarm_clears_a_quiet_window(make_runtime):
    clock = Clock()
    rt = await make_runtime("local", actor_classes=[RateLimitActor], clock=clock)
    addr = ratelimit_address("quiet")
    await rt.call(addr, "hit", 5, 1000)
    clock.now += 1001
    for _ in range(100):  # the alarm loop re-reads the clock at least once a second
        host = rt.hosts[rt.shard_of(addr)]
        act = host._acts.get(addr.id)
        if act is not None and act.storage is not None and "t" not in act.storage.committed:
            break
        await asyncio.sleep(0.05)
    assert "t" not in act.storage.committed and "w" not in act.storage.committed
    assert (await rt.call(addr, "peek", 5, 1000))["remaining"] == 5


@pytest.mark.parametrize("runtime_name", RUNTIMES)
async def test_concurrent_hits_never_exceed_the_limit(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name, actor_classes=[RateLimitActor])
    addr = ratelimit_address("burst")
    results = await asyncio.gather(*(rt.call(addr, "hit", 10, 60_000) for _ in range(40)))
    assert sum(r["allowed"] for r in results) == 10
