"""Shared fixtures: runtimes of both kinds over a temporary data dir.

Ray is started once per test session (it takes seconds); each test gets its
own shard actors because their names derive from the test's data dir.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import ray

from questline.engine import EngineConfig, Runtime, create_runtime

RUNTIMES = ["local", "ray"]


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray for the whole session (both CPUs; shard actors take none)."""
    if not ray.is_initialized():
        ray.init(
            address="local",  # never attach to some other cluster running on this machine
            num_cpus=2,
            namespace="questline",
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
    yield
    ray.shutdown()


@pytest.fixture
async def make_runtime(request, tmp_path: Path) -> AsyncIterator[Callable[..., Runtime]]:
    """Factory: ``await make_runtime("local", shards=2, ...)`` -> started runtime, stopped at teardown."""
    started: list[Runtime] = []

    async def factory(name: str, **overrides) -> Runtime:
        if name == "ray":
            request.getfixturevalue("ray_cluster")
        overrides.setdefault("data_dir", tmp_path / "data")
        runtime = create_runtime(name, EngineConfig(**overrides))
        await runtime.start()
        started.append(runtime)
        return runtime

    yield factory
    for runtime in reversed(started):
        await runtime.stop()
