"""The hub actor: sequencing, bounded replay and reset, on both runtimes."""

from __future__ import annotations

import pytest

from questline.actors import hub
from questline.actors.hub import HubActor, hub_address
from tests.conftest import RUNTIMES

pytestmark = pytest.mark.parametrize("runtime_name", RUNTIMES)


def upd(i: int) -> dict:
    return {"event": "update", "data": {"i": i}}


async def test_publish_sequences_and_replays_exactly_the_gap(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name, actor_classes=[HubActor])
    addr = hub_address("t/u1")
    assert await rt.call(addr, "publish", [upd(1), upd(2)]) == 2
    assert await rt.call(addr, "publish", [upd(3)]) == 3
    missed = await rt.call(addr, "replay", 1)
    assert missed["reset"] is False
    assert [(m["seq"], m["data"]["i"]) for m in missed["items"]] == [(2, 2), (3, 3)]
    assert (await rt.call(addr, "replay", 3))["items"] == []
    assert (await rt.call(addr, "replay", None))["items"] == []
    assert (await rt.call(addr, "replay", 99))["reset"] is True  # ahead of the hub


async def test_gap_older_than_buffer_is_a_reset(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name, actor_classes=[HubActor])
    addr = hub_address("t/u2")
    total = hub.BUFFER_SIZE + 10
    await rt.call(addr, "publish", [upd(i) for i in range(total)])
    assert (await rt.call(addr, "replay", 5))["reset"] is True
    tail = await rt.call(addr, "replay", total - 3)
    assert [m["seq"] for m in tail["items"]] == [total - 2, total - 1, total]


async def test_a_state_stream_retains_only_its_newest_updates(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name, actor_classes=[HubActor])
    addr = hub_address("t/state")
    for i in range(1, 11):
        await rt.call(addr, "publish", [upd(i)], 4)
    assert [m["seq"] for m in (await rt.call(addr, "replay", 6))["items"]] == [7, 8, 9, 10]
    assert (await rt.call(addr, "replay", 5))["reset"] is True  # seq 6 is no longer kept
    assert await rt.call(addr, "publish", [upd(11)], 10_000) == 11  # never above BUFFER_SIZE


async def test_watchers_get_published_items_with_their_sequence(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name, actor_classes=[HubActor])
    addr = hub_address("t/u3")
    watch = await rt.watch(addr)
    await rt.call(addr, "publish", [upd(1), upd(2)])
    first, second = await watch.get(), await watch.get()
    assert (first["seq"], second["seq"]) == (1, 2)
    assert second["data"] == {"i": 2}
    await watch.aclose()
