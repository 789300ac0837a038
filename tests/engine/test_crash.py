"""Durability against a real process killed with SIGKILL (strict mode), both runtimes."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.durability import Ledger, audit, kill_group
from questline.engine import Address
from tests.conftest import RUNTIMES

ACTORS = 20
REPO = Path(__file__).resolve().parents[2]


def run_and_kill(runtime: str, data_dir: Path, min_acks: int, min_seconds: float) -> tuple[dict[str, int], list[str]]:
    """Run the crash worker until it has acknowledged enough writes, then SIGKILL its process group."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.engine.crash_worker", runtime, str(data_dir), str(ACTORS), "0.3"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    acked: dict[str, int] = {}
    armed: list[str] = []
    started = None
    count = 0
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    try:
        for line in proc.stdout:
            parts = line.split()
            if parts[0] == "armed":
                armed.append(parts[1])
            elif parts[0] == "ready":
                started = time.monotonic()
            elif parts[0] == "ack":
                acked[parts[1]] = int(parts[2])
                count += 1
                if count >= min_acks and started and time.monotonic() - started >= min_seconds:
                    break
            assert time.monotonic() < deadline, "crash worker too slow"
    finally:
        kill_group(proc)
    assert count >= min_acks
    return acked, armed


def files_on_disk(data: Path) -> tuple[int, int]:
    """(snapshot rows, journal rows) across the shard files, read before recovery touches them."""
    snapshots = journal = 0
    for shard_file in data.glob("shard-*.sqlite"):
        with sqlite3.connect(shard_file) as db:
            snapshots += db.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
            journal += db.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
    return snapshots, journal


@pytest.mark.parametrize("runtime_name", RUNTIMES)
async def test_acknowledged_writes_survive_sigkill(make_runtime, runtime_name, tmp_path):
    # A kill right after a snapshot commit (which truncates the journal) leaves no tail
    # to replay; durability is checked on every attempt, and the scenario repeats until
    # a kill has also exercised snapshot + journal-tail recovery.
    both_paths = False
    for attempt in range(3):
        data = tmp_path / f"crash{attempt}"
        acked, armed = await asyncio.to_thread(run_and_kill, runtime_name, data, 2000, 1.2)
        snapshots, journal = files_on_disk(data)
        assert snapshots > 0, "no snapshot was taken before the crash"
        await check_recovery(make_runtime, runtime_name, data, acked, armed)
        if journal > 0:
            both_paths = True
            break
    assert both_paths, "every kill landed right after a snapshot: the journal tail was never replayed"


async def check_recovery(make_runtime, runtime_name: str, data: Path, acked: dict[str, int], armed: list[str]) -> None:
    rt = await make_runtime(runtime_name, data_dir=data)
    # One sequential writer per key: at most the one in-flight write may have landed.
    ledgers = {key: Ledger(sent=last_ack + 1, acked=last_ack) for key, last_ack in acked.items()}
    applied = {key: await rt.call(Address("engine.counter", key), "get") for key in acked}
    result = audit(ledgers, applied)
    assert result.ok, result.violations

    # Alarms armed before the crash fire after it, exactly once in effect.
    deadline = time.monotonic() + 15
    for key in armed:
        while (fired := await rt.call(Address("engine.counter", key), "alarms_fired")) == 0:
            assert time.monotonic() < deadline, f"alarm of {key} never fired"
            await asyncio.sleep(0.1)
        assert fired == 1
    await rt.stop()
