"""Injected commit failures: the shard answers ShardUnavailable and acknowledges nothing."""

from __future__ import annotations

import asyncio

import pytest

from questline.engine import Address, ShardUnavailable
from questline.storage import StorageFault


async def test_failed_commit_acknowledges_nothing_and_shard_recovers(make_runtime):
    rt = await make_runtime("local", shards=1)
    key = Address("engine.counter", "c")
    await rt.call(key, "add", 10)
    store = rt.hosts[0].store
    real_commit = store.commit

    async def failing_commit(*args, **kwargs):
        raise StorageFault("injected: disk full")

    store.commit = failing_commit
    results = await asyncio.gather(*(rt.call(key, "add", 1) for _ in range(20)), return_exceptions=True)
    assert all(isinstance(r, ShardUnavailable) for r in results)

    store.commit = real_commit
    # In-memory state built on the failed batch was dropped: the durable value is served.
    assert await rt.call(key, "get") == 10
    assert await rt.call(key, "add", 1) == 11


async def test_relaxed_mode_replies_before_commit_but_still_persists(make_runtime, tmp_path):
    data = tmp_path / "relaxed"
    rt = await make_runtime("local", data_dir=data, durability="relaxed")
    await asyncio.gather(*(rt.call(Address("engine.counter", f"r{i}"), "add", i) for i in range(50)))
    await rt.stop()
    rt2 = await make_runtime("local", data_dir=data, durability="relaxed")
    values = await asyncio.gather(*(rt2.call(Address("engine.counter", f"r{i}"), "get") for i in range(50)))
    assert values == list(range(50))


@pytest.mark.parametrize("runtime_name", ["local", "ray"])
async def test_corrupted_snapshot_is_never_served(make_runtime, runtime_name, tmp_path):
    import sqlite3

    data = tmp_path / "corrupt"
    rt = await make_runtime(runtime_name, data_dir=data, shards=1)
    await rt.call(Address("engine.counter", "x"), "add", 7)
    await rt.stop()
    shard_file = next(data.glob("shard-*.sqlite"))
    with sqlite3.connect(shard_file) as db:
        db.execute("UPDATE snapshots SET crc = crc + 1")
    rt2 = await make_runtime(runtime_name, data_dir=data, shards=1)
    with pytest.raises(ShardUnavailable, match="checksum"):
        await rt2.call(Address("engine.counter", "x"), "get")


async def test_journal_is_never_truncated_behind_an_actor_a_failed_commit_dropped(make_runtime, tmp_path):
    """After a failed commit drops every resident actor, a later snapshot must not truncate
    the journal rows of actors that were not reactivated (their only durable copy)."""
    data = tmp_path / "truncate"
    rt = await make_runtime("local", data_dir=data, shards=1)
    quiet, busy = Address("engine.counter", "quiet"), Address("engine.counter", "busy")
    for _ in range(5):
        await rt.call(quiet, "add", 1)  # acknowledged: journaled and committed, not yet snapshotted
    host = rt.hosts[0]
    store = host.store
    real_commit = store.commit

    async def failing_commit(*args, **kwargs):
        raise StorageFault("injected: disk full")

    store.commit = failing_commit
    with pytest.raises(ShardUnavailable):
        await rt.call(busy, "add", 1)
    store.commit = real_commit
    assert await rt.call(busy, "add", 1) == 1  # only "busy" is resident again
    host._take_snapshot()
    await host._flush_once()
    await rt.stop()
    rt2 = await make_runtime("local", data_dir=data, shards=1)
    assert await rt2.call(quiet, "get") == 5
