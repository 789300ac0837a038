"""Periodic snapshots are spread over commits; every dirty actor is covered in the end."""

from __future__ import annotations

import asyncio

from questline.engine import Address
from questline.engine.shard import SNAPSHOTS_PER_COMMIT


async def test_periodic_snapshots_go_out_a_batch_per_commit(make_runtime):
    rt = await make_runtime("local", shards=1, snapshot_interval=3600)
    actors = SNAPSHOTS_PER_COMMIT * 2 + 10
    await asyncio.gather(*(rt.call(Address("engine.counter", f"c{i}"), "add", i) for i in range(actors)))
    host = rt.hosts[0]
    store = host.store
    assert await store.query("SELECT COUNT(*) FROM snapshots") == [(0,)]

    batches: list[int] = []
    real_commit = store.commit

    async def counting_commit(journal, snapshots, alarms, truncate_upto=None):
        batches.append(len(snapshots))
        await real_commit(journal, snapshots, alarms, truncate_upto)

    store.commit = counting_commit
    host._queue_snapshots()
    host._queue_snapshots()  # a second tick while the first is pending queues nobody twice
    assert len(host._snapshot_due) == actors
    for _ in range(500):
        if not host._snapshot_due and not host._writing:
            break
        await asyncio.sleep(0.01)
    await host._flush_once()

    assert sum(batches) == actors
    assert max(batches) == SNAPSHOTS_PER_COMMIT
    assert await store.query("SELECT COUNT(*) FROM snapshots") == [(actors,)]
    assert await store.query("SELECT COUNT(*) FROM journal") == [(0,)]  # each snapshot retired its rows
    values = await asyncio.gather(*(rt.call(Address("engine.counter", f"c{i}"), "get") for i in range(actors)))
    assert values == list(range(actors))
