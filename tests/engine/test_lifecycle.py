"""Restarts, snapshots, alarms and passivation on both runtimes."""

from __future__ import annotations

import asyncio
import time

import pytest

from questline.engine import Address
from tests.conftest import RUNTIMES

pytestmark = pytest.mark.parametrize("runtime_name", RUNTIMES)


def counter(key: str) -> Address:
    return Address("engine.counter", key)


async def test_state_survives_clean_restart(make_runtime, runtime_name, tmp_path):
    data = tmp_path / "restart"
    rt = await make_runtime(runtime_name, data_dir=data)
    await asyncio.gather(*(rt.call(counter(f"k{i}"), "add", i) for i in range(100)))
    await rt.stop()
    rt2 = await make_runtime(runtime_name, data_dir=data)
    values = await asyncio.gather(*(rt2.call(counter(f"k{i}"), "get") for i in range(100)))
    assert values == list(range(100))


async def test_alarm_fires_after_restart(make_runtime, runtime_name, tmp_path):
    data = tmp_path / "alarms"
    rt = await make_runtime(runtime_name, data_dir=data)
    due = int(time.time() * 1000) + 2000
    await rt.call(counter("alarmed"), "arm", due)
    await rt.call(counter("alarmed"), "get")
    await rt.stop()
    # The first process was gone before the alarm came due, so any firing happens after restart.
    assert int(time.time() * 1000) < due
    rt2 = await make_runtime(runtime_name, data_dir=data)
    deadline = time.monotonic() + 10
    while await rt2.call(counter("alarmed"), "alarms_fired") == 0:
        assert time.monotonic() < deadline, "alarm did not fire after restart"
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)
    assert await rt2.call(counter("alarmed"), "alarms_fired") == 1  # once, not again


async def test_passivation_caps_resident_actors_and_keeps_state(make_runtime, runtime_name):
    cap = 400
    rt = await make_runtime(runtime_name, shards=2, max_resident=cap)
    keys = [f"p{i}" for i in range(10_000)]
    peak = 0

    async def touch(chunk: list[str]) -> None:
        for key in chunk:
            await rt.call(counter(key), "add", 1)

    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        await asyncio.gather(*(touch(chunk[j::20]) for j in range(20)))
        peak = max(peak, max(h["resident"] for h in await rt.health()))
    assert peak <= cap
    assert sum(h["evictions"] for h in await rt.health()) >= 10_000 - 2 * cap
    # Evicted state comes back from storage.
    sample = keys[::97]
    assert await asyncio.gather(*(rt.call(counter(k), "get") for k in sample)) == [1] * len(sample)
    await asyncio.gather(*(rt.call(counter(k), "add", 1) for k in sample))
    assert await asyncio.gather(*(rt.call(counter(k), "get") for k in sample)) == [2] * len(sample)
