"""benchmarks/request_cost.py drives the real app in-process: accepted and refused requests."""

from __future__ import annotations

import pytest

from benchmarks.request_cost import measure


@pytest.fixture(autouse=True)
def demo_surfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUESTLINE_DEMO", "1")


async def test_every_event_is_accepted_and_its_cpu_measured() -> None:
    answered, cpu = await measure(count=40, users=4, refused=False)
    assert answered == 40 and cpu > 0


async def test_the_refused_path_gets_503s_only() -> None:
    answered, cpu = await measure(count=20, users=2, refused=True)
    assert answered == 20 and cpu > 0
