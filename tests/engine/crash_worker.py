"""A real engine process for crash tests: writes counters and prints each acknowledgement.

Usage: python -m tests.engine.crash_worker RUNTIME DATA_DIR ACTORS SNAPSHOT_INTERVAL

Each actor is driven by one sequential writer, so at any time at most one
``add`` per actor is in flight: after a crash the stored value must be the
last acknowledged value or one more, never less (lost) nor more (invented).
It first arms one alarm per 10 actors, 2 s ahead, and prints ``armed`` lines.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from questline.engine import Address, EngineConfig, create_runtime


async def main(runtime: str, data_dir: str, actors: int, snapshot_interval: float) -> None:
    rt = create_runtime(
        runtime,
        EngineConfig(data_dir=Path(data_dir), shards=2, snapshot_interval=snapshot_interval),
    )
    await rt.start()
    due = int(time.time() * 1000) + 2000
    for i in range(0, actors, 10):
        await rt.call(Address("engine.counter", f"c{i}"), "arm", due)
        print(f"armed c{i} {due}", flush=True)
    print("ready", flush=True)

    async def writer(key: str) -> None:
        while True:
            value = await rt.call(Address("engine.counter", key), "add", 1)
            sys.stdout.write(f"ack {key} {value}\n")
            sys.stdout.flush()

    await asyncio.gather(*(writer(f"c{i}") for i in range(actors)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
