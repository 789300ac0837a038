"""The front-door side of feeds on its own, with a shard whose calls we control."""

from __future__ import annotations

import asyncio

import pytest

from questline.engine import Address
from questline.engine.feeds import NUDGED, FeedClient

TOPIC = Address("engine.broadcast", "a")


def client_with(subscribe) -> FeedClient:
    async def unsubscribe(shard, sub_id, topics):
        pass

    async def poll(shard, sub_id, wait):
        await asyncio.sleep(wait)
        return []

    return FeedClient(1, lambda address: 0, subscribe, unsubscribe, poll)


async def test_a_second_watcher_waits_for_the_subscription_in_flight():
    """The shard registers a topic once per process; a watcher that joins while that call
    is in flight (a remote shard) returns only once the shard has it."""
    released = asyncio.Event()
    registered: list[list[str]] = []

    async def subscribe(shard, sub_id, topics):
        await released.wait()
        registered.append(topics)

    client = client_with(subscribe)
    first = asyncio.create_task(client.watch(TOPIC))
    second = asyncio.create_task(client.watch(TOPIC))
    await asyncio.sleep(0.05)
    assert not first.done() and not second.done()
    released.set()
    await asyncio.wait_for(asyncio.gather(first, second), 2)
    assert registered == [[TOPIC.id]]
    assert client.watch_count == 2
    await client.close()


async def test_a_failed_subscription_fails_every_watcher_waiting_on_it():
    released = asyncio.Event()

    async def subscribe(shard, sub_id, topics):
        await released.wait()
        raise ConnectionError("shard unreachable")

    client = client_with(subscribe)
    first = asyncio.create_task(client.watch(TOPIC))
    second = asyncio.create_task(client.watch(TOPIC))
    await asyncio.sleep(0.05)
    released.set()
    for task in (first, second):
        with pytest.raises(ConnectionError):
            await task
    assert client.watch_count == 0 and client.topic_count == 0
    await client.close()


async def _noop_subscribe(shard, sub_id, topics):
    pass


async def test_a_waiting_reader_wakes_for_an_item_and_for_the_close():
    client = client_with(_noop_subscribe)
    watch = await client.watch(TOPIC, limit=3)
    reader = asyncio.create_task(watch.get())
    await asyncio.sleep(0.01)
    assert not reader.done()
    watch._push("one")
    assert await asyncio.wait_for(reader, 1) == "one"
    reader = asyncio.create_task(watch.get())
    await asyncio.sleep(0.01)
    await watch.aclose()  # closing wakes a reader that waits: it gets None, not a hang
    assert await asyncio.wait_for(reader, 1) is None
    assert not watch.gap and not watch.overflowed
    await client.close()


async def test_an_overflowed_watch_hands_out_what_it_kept_then_ends():
    client = client_with(_noop_subscribe)
    watch = await client.watch(TOPIC, limit=3)
    for n in range(5):
        watch._push(n)
    assert watch.overflowed and watch.closed.is_set()
    assert [await watch.get() for _ in range(4)] == [0, 1, 2, None]
    await client.close()


async def test_a_nudge_wakes_the_reader_once_and_never_overtakes_an_item():
    async def subscribe(shard, sub_id, topics):
        pass

    client = client_with(subscribe)
    watch = await client.watch(TOPIC)
    pending = asyncio.create_task(watch.get())
    await asyncio.sleep(0.01)
    assert not pending.done()
    watch.nudge()
    assert await asyncio.wait_for(pending, 1) is NUDGED
    watch._push({"n": 1})
    watch.nudge()
    assert await watch.get() == {"n": 1}  # a queued item comes first
    assert await watch.get() is NUDGED  # then the nudge, once
    later = asyncio.create_task(watch.get())
    await asyncio.sleep(0.01)
    assert not later.done()
    await watch.aclose()
    assert await asyncio.wait_for(later, 1) is None  # closed
    await client.close()
