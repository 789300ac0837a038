"""The actor contract, checked identically on both runtimes."""

from __future__ import annotations

import asyncio

import pytest

from questline.engine import Address, UnknownActorKind, UnknownMethod
from tests.conftest import RUNTIMES

pytestmark = pytest.mark.parametrize("runtime_name", RUNTIMES)


def counter(key: str) -> Address:
    return Address("engine.counter", key)


async def test_concurrent_increments_to_one_actor_are_exact(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name)
    replies = await asyncio.gather(*(rt.call(counter("hot"), "add", 1) for _ in range(2000)))
    assert await rt.call(counter("hot"), "get") == 2000
    # Turns are serialised: every intermediate value was seen exactly once.
    assert sorted(replies) == list(range(1, 2001))


async def test_many_actors_in_parallel_each_end_at_their_count(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name)
    calls = [rt.call(counter(f"a{i}"), "add", 1) for i in range(200) for _ in range(i % 7 + 1)]
    await asyncio.gather(*calls)
    values = await asyncio.gather(*(rt.call(counter(f"a{i}"), "get") for i in range(200)))
    assert values == [i % 7 + 1 for i in range(200)]


async def test_async_turns_do_not_interleave(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name)
    # slow_add reads, sleeps, then writes: interleaving would lose updates.
    await asyncio.gather(*(rt.call(counter("slow"), "slow_add", 1, 0.01) for _ in range(20)))
    assert await rt.call(counter("slow"), "get") == 20


async def test_failed_turn_leaves_state_untouched_and_actor_keeps_serving(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name)
    await rt.call(counter("f"), "add", 5)
    with pytest.raises(ValueError, match="deliberate"):
        await rt.call(counter("f"), "add_then_fail", 100)
    assert await rt.call(counter("f"), "get") == 5
    assert await rt.call(counter("f"), "add", 1) == 6


async def test_failure_amid_concurrent_traffic_loses_only_the_failed_turn(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name)
    calls = [rt.call(counter("mix"), "add_then_fail" if i % 10 == 0 else "add", 1) for i in range(300)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    failures = sum(isinstance(r, ValueError) for r in results)
    assert failures == 30
    assert await rt.call(counter("mix"), "get") == 270


async def test_unknown_kind_and_method_are_errors(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name)
    with pytest.raises(UnknownActorKind):
        await rt.call(Address("no.such.kind", "x"), "get")
    with pytest.raises(UnknownMethod):
        await rt.call(counter("x"), "no_such_method")
    with pytest.raises(UnknownMethod):
        await rt.call(counter("x"), "on_alarm")  # lifecycle hooks are not messages


async def test_slow_actor_does_not_block_other_actors(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name)
    slow = asyncio.ensure_future(rt.call(counter("sloth"), "slow_add", 1, 1.5))
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(rt.call(counter(f"quick{i}"), "add", 1) for i in range(50)))
    elapsed = loop.time() - started
    assert not slow.done()  # the others finished while the slow turn was still running
    assert elapsed < 1.4
    assert await slow == 1
