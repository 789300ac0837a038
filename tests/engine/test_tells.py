"""One-way messages between actors: each delivered once, on either shard; failures logged."""

from __future__ import annotations

import asyncio
import logging

import pytest

from questline.engine import Address


async def _eventually(check, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


@pytest.mark.parametrize("runtime_name", ["local", "ray"])
async def test_tells_reach_actors_on_either_shard_exactly_once(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name, shards=2)
    sender = Address("engine.counter", "sender")
    # A target on the other shard and one on the sender's own shard.
    targets = {rt.shard_of(Address("engine.counter", f"t{i}")): f"t{i}" for i in range(16)}
    assert len(targets) == 2
    for target in targets.values():
        await rt.call(sender, "relay", target, "add", [1, 2, 3, 4])
        await _eventually(lambda t=target: _equals(rt, t, 10))
    await asyncio.gather(*(rt.call(sender, "relay", "many", "add", [n]) for n in range(1, 51)))
    await _eventually(lambda: _equals(rt, "many", sum(range(1, 51))))
    await asyncio.sleep(0.1)
    assert await _equals(rt, "many", sum(range(1, 51)))  # none delivered twice


async def _equals(rt, key: str, value: int) -> bool:
    return await rt.call(Address("engine.counter", key), "get") == value


async def test_a_failing_tell_is_logged_and_changes_nothing(make_runtime, caplog):
    rt = await make_runtime("local", shards=2)
    sender = Address("engine.counter", "sender")
    with caplog.at_level(logging.WARNING, logger="questline.engine"):
        assert await rt.call(sender, "relay", "victim", "add_then_fail", [5]) == 1
        await _eventually(lambda: _logged(caplog))
    assert await rt.call(Address("engine.counter", "victim"), "get") == 0
    assert await rt.call(sender, "get") == 1


async def _logged(caplog) -> bool:
    return any("tell engine.counter.add_then_fail" in r.getMessage() for r in caplog.records)
