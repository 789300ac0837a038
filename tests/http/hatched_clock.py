"""A movable engine clock for the Hatched limit/quota/retention tests.

It runs with the wall clock (operations, alarms and JWT expiry behave normally)
plus an offset the test moves forward to cross a rate window, a month or a
retention horizon without waiting.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from questline.engine import Runtime
from questline.http.hatched import HATCHED_ACTORS
from tests.http.hatched_support import client_for

DAY_MS = 86_400_000


class ShiftedClock:
    """Wall-clock Unix ms plus an offset moved only by :meth:`advance`."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> int:
        return int(time.time() * 1000) + self.offset

    def advance(self, ms: int) -> None:
        self.offset += ms


@pytest.fixture(name="clock")
def clock_fixture() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture(name="runtime")
async def runtime_fixture(make_runtime: Callable[..., Any], clock: ShiftedClock) -> Runtime:
    return await make_runtime("local", actor_classes=list(HATCHED_ACTORS), clock=clock)


@pytest.fixture(name="client")
async def client_fixture(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(runtime) as c:
        yield c
