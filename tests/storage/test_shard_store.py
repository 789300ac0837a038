"""The shard file on its own: commit, recovery fold, checksums, ownership."""

from __future__ import annotations

import sqlite3

import pytest

from questline.storage import CorruptSnapshot, JournalEntry, ShardStore, StorageFault
from questline.storage.shard_store import Snapshot


async def test_recovery_folds_journal_tail_into_snapshot(tmp_path):
    path = tmp_path / "s.sqlite"
    store = ShardStore(path)
    await store.open()
    await store.commit([], [Snapshot("k:a", 2, {"x": b"\x01"})], {})
    await store.commit(
        [
            JournalEntry(1, "k:a", {"x": b"\x09"}),  # older than the snapshot: ignored
            JournalEntry(3, "k:a", {"y": b"\x02"}),
            JournalEntry(4, "k:a", {"x": None}),
            JournalEntry(5, "k:b", {"z": b"\x03"}),
        ],
        [],
        {"k:a": 123},
    )
    await store.close()

    reopened = ShardStore(path)
    assert await reopened.open() == 5
    a = await reopened.load("k:a")
    b = await reopened.load("k:b")
    assert a == Snapshot("k:a", 4, {"y": b"\x02"})
    assert b == Snapshot("k:b", 5, {"z": b"\x03"})
    assert await reopened.load_alarms() == [("k:a", 123)]
    assert await reopened.query("SELECT COUNT(*) FROM journal") == [(0,)]
    await reopened.close()


async def test_corrupted_snapshot_is_detected_and_named(tmp_path):
    path = tmp_path / "s.sqlite"
    store = ShardStore(path)
    await store.open()
    await store.commit([], [Snapshot("k:a", 1, {"x": b"\x01\x02\x03"})], {})
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE snapshots SET state = ? WHERE actor = 'k:a'", (b"\x81\xa1x\xc4\x03\x01\x02\x04",))
    store = ShardStore(path)
    await store.open()
    with pytest.raises(CorruptSnapshot, match=str(path)):
        await store.load("k:a")
    await store.close()


async def test_a_second_owner_is_refused_while_the_first_holds_the_file(tmp_path):
    path = tmp_path / "s.sqlite"
    first = ShardStore(path)
    await first.open()
    second = ShardStore(path, lock_timeout=0.3)
    with pytest.raises(StorageFault, match="held by another process"):
        await second.open()
    await first.close()
    await second.open()  # free once the owner is gone
    await second.close()


async def test_failed_commit_writes_nothing(tmp_path):
    path = tmp_path / "s.sqlite"
    store = ShardStore(path)
    await store.open()
    # A duplicate sequence number makes the insert fail mid-transaction.
    await store.commit([JournalEntry(1, "k:a", {"x": b"\x01"})], [], {})
    with pytest.raises(StorageFault):
        await store.commit(
            [JournalEntry(2, "k:b", {"x": b"\x01"}), JournalEntry(1, "k:c", {"x": b"\x01"})], [], {"k:b": 5}
        )
    assert await store.query("SELECT actor FROM journal ORDER BY seq") == [("k:a",)]
    assert await store.load_alarms() == []
    await store.close()


async def test_load_many_returns_each_actor_its_own_state_or_fault(tmp_path):
    path = tmp_path / "s.sqlite"
    store = ShardStore(path)
    await store.open()
    await store.commit([], [Snapshot("k:snap", 3, {"x": b"\x01"}), Snapshot("k:bad", 1, {"x": b"\x02"})], {})
    await store.commit(
        [JournalEntry(4, "k:snap", {"y": b"\x05"}), JournalEntry(5, "k:journal-only", {"z": b"\x06"})], [], {}
    )
    with sqlite3.connect(path) as db:
        db.execute("UPDATE snapshots SET crc = crc + 1 WHERE actor = 'k:bad'")
    many = await store.load_many(["k:snap", "k:journal-only", "k:never", "k:bad"])
    assert many["k:snap"] == Snapshot("k:snap", 4, {"x": b"\x01", "y": b"\x05"})
    assert many["k:journal-only"] == Snapshot("k:journal-only", 5, {"z": b"\x06"})
    assert many["k:never"] is None
    assert isinstance(many["k:bad"], CorruptSnapshot)
    # One at a time gives the same answers.
    assert await store.load("k:snap") == many["k:snap"]
    with pytest.raises(CorruptSnapshot):
        await store.load("k:bad")
    await store.close()


async def test_a_lock_held_by_another_process_waits_off_the_event_loop(tmp_path):
    """Another process holding SQLite's write lock delays the commit, never the event loop."""
    import asyncio
    import time

    path = tmp_path / "s.sqlite"
    store = ShardStore(path)
    await store.open()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    commit = asyncio.create_task(store.commit([JournalEntry(1, "k:a", {"x": b"\x01"})], [], {}))
    ticks = 0
    started = time.monotonic()
    while time.monotonic() - started < 0.3:  # the loop keeps running while the commit waits
        await asyncio.sleep(0.01)
        ticks += 1
    assert not commit.done()
    assert ticks >= 10
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(commit, 5)
    assert await store.query("SELECT actor FROM journal") == [("k:a",)]
    await store.close()


async def test_a_lock_held_past_the_busy_timeout_is_a_storage_fault(tmp_path):
    path = tmp_path / "s.sqlite"
    store = ShardStore(path, busy_timeout=0.2)
    await store.open()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(StorageFault, match="locked"):
        await store.commit([JournalEntry(1, "k:a", {"x": b"\x01"})], [], {})
    other.execute("ROLLBACK")
    other.close()
    await store.commit([JournalEntry(1, "k:a", {"x": b"\x01"})], [], {})  # usable again
    assert await store.query("SELECT COUNT(*) FROM journal") == [(1,)]
    await store.close()
