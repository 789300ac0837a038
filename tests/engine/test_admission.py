"""Admission control: past its bounds the engine refuses at once instead of queueing forever."""

from __future__ import annotations

import asyncio

import pytest

from questline.engine import Address, ShardUnavailable
from tests.conftest import RUNTIMES


@pytest.mark.parametrize("runtime_name", RUNTIMES)
async def test_flooded_actor_refuses_quickly_and_recovers(make_runtime, runtime_name):
    rt = await make_runtime(runtime_name, max_mailbox=50)
    slow = Address("engine.counter", "flooded")
    first = asyncio.ensure_future(rt.call(slow, "slow_add", 1, 1.0))
    await asyncio.sleep(0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    flood = await asyncio.gather(*(rt.call(slow, "add", 1) for _ in range(200)), return_exceptions=True)
    refused = [r for r in flood if isinstance(r, ShardUnavailable)]
    accepted = [r for r in flood if isinstance(r, int)]
    assert len(refused) >= 200 - 50
    assert refused[0].retry_after >= 1
    assert len(accepted) + len(refused) == 200
    await first
    assert loop.time() - started < 10
    # Exactly the accepted messages were applied, and the actor serves normally again.
    assert await rt.call(slow, "get") == 1 + len(accepted)
    assert await rt.call(slow, "add", 1) == 2 + len(accepted)
    assert sum(h["rejected"] for h in await rt.health()) >= 150
