"""Activation: actors that never wrote start without a storage read; the rest load what is on disk."""

from __future__ import annotations

import asyncio

from questline.engine import Address


async def test_new_actors_skip_the_read_and_stored_ones_load(make_runtime, tmp_path):
    data = tmp_path / "activation"
    rt = await make_runtime("local", data_dir=data, shards=1)
    store = rt.hosts[0].store
    reads: list[list[str]] = []
    real_load_many = store.load_many

    async def counting_load_many(actors):
        reads.append(list(actors))
        return await real_load_many(actors)

    store.load_many = counting_load_many
    keys = [Address("engine.counter", f"n{i}") for i in range(50)]
    assert await asyncio.gather(*(rt.call(k, "add", 1) for k in keys)) == [1] * 50
    assert reads == []  # none of them had anything on disk
    await rt.stop()

    rt2 = await make_runtime("local", data_dir=data, shards=1)
    store2 = rt2.hosts[0].store
    loaded: list[str] = []
    real2 = store2.load_many

    async def counting2(actors):
        loaded.extend(actors)
        return await real2(actors)

    store2.load_many = counting2
    assert await asyncio.gather(*(rt2.call(k, "get") for k in keys)) == [1] * 50
    assert sorted(loaded) == sorted(k.id for k in keys)  # written before: read from the shard file
    assert await rt2.call(Address("engine.counter", "fresh"), "get") == 0
    assert "engine.counter/fresh" not in loaded and Address("engine.counter", "fresh").id not in loaded
