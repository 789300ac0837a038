"""One shard's SQLite file: the write-ahead journal, actor snapshots and alarms.

Every committed turn that wrote something is one journal row; the shard host
hands rows over in batches and each batch is one transaction (group commit).
Snapshots hold an actor's whole state as of a journal sequence number and are
checksummed; the journal is truncated behind them. Recovery folds the journal
tail into the snapshots, so an actor is always loaded from one row.

Threads. The file is used through :mod:`sqlite3` on one connection, one
operation at a time. A group commit binds and inserts its rows on the caller's
thread (CPU work that holds the GIL anyway) and hands only ``COMMIT`` (the
fsync) to the store's own thread: one thread hop per commit. Running every
statement on a worker thread (as ``aiosqlite`` does) made each row of a batch
re-acquire the GIL from a busy event loop, so a 30-row commit that costs ~2 ms
of CPU took ~40 ms of wall time and capped the shard at ~800 turns/s. Whatever
may wait (taking the write lock another process holds, reads, recovery, close)
runs on the store's thread, so the event loop never blocks on the disk or a lock.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar

import msgspec

Durability = Literal["strict", "relaxed"]

_state_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(dict[str, bytes])
_writes_decoder = msgspec.msgpack.Decoder(dict[str, bytes | None])

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq    INTEGER PRIMARY KEY,
    actor  TEXT NOT NULL,
    writes BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_by_actor ON journal (actor, seq);
CREATE TABLE IF NOT EXISTS snapshots (
    actor TEXT PRIMARY KEY,
    seq   INTEGER NOT NULL,
    state BLOB NOT NULL,
    crc   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alarms (
    actor TEXT PRIMARY KEY,
    at    INTEGER NOT NULL
) WITHOUT ROWID;
"""


_LOAD_CHUNK = 500  # actors per IN (...) query, well under SQLite's variable limit
_BUSY_RETRY_S = 0.005  # how often the store's thread retries a write lock another process holds

T = TypeVar("T")


class StorageFault(Exception):
    """The shard's database could not be read or written."""


class CorruptSnapshot(StorageFault):
    """A snapshot row failed its checksum: never serve state that may be wrong."""


class JournalEntry(NamedTuple):
    seq: int
    actor: str
    writes: dict[str, bytes | None]


class Snapshot(NamedTuple):
    actor: str
    seq: int
    state: dict[str, bytes]


def encode_state(state: dict[str, bytes]) -> bytes:
    return _state_encoder.encode(state)


def apply_writes(state: dict[str, bytes], writes: dict[str, bytes | None]) -> None:
    for key, raw in writes.items():
        if raw is None:
            state.pop(key, None)
        else:
            state[key] = raw


class ShardStore:
    """Async access to one shard file: one connection, one operation at a time, one thread."""

    def __init__(
        self,
        path: Path,
        durability: Durability = "strict",
        lock_timeout: float = 30.0,
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self.durability = durability
        self.lock_timeout = lock_timeout
        self.busy_timeout = busy_timeout  # waiting for SQLite's write lock held by another process
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._turn: asyncio.Lock | None = None

    async def _acquire_owner_lock(self) -> None:
        """One shard file, one owner process: wait until a previous owner (even a killed one) is gone."""
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise StorageFault(f"{self.path}: held by another process (lock {self.path}.lock)") from None
                await asyncio.sleep(0.1)
        self._lock_fd = fd

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageFault(f"{self.path}: store is not open")
        return self._conn

    async def _off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the store's thread (for anything that may wait on the disk or a lock)."""
        if self._thread is None:
            raise StorageFault(f"{self.path}: store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def _exclusive(self) -> asyncio.Lock:
        if self._turn is None:
            raise StorageFault(f"{self.path}: store is not open")
        return self._turn

    async def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Every row of one read-only statement (tests and tools inspect the file with it)."""
        async with self._exclusive():
            return await self._off_loop(lambda: self.conn.execute(sql, params).fetchall())

    async def open(self) -> int:
        """Open (creating if needed), recover, and return the highest sequence number seen."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await self._acquire_owner_lock()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"sqlite-{self.path.stem}")
        self._turn = asyncio.Lock()
        try:
            self._conn = await self._off_loop(self._connect)
            return await self._recover()
        except sqlite3.Error as exc:
            await self.close()
            raise StorageFault(f"{self.path}: {exc}") from exc
        except BaseException:
            await self.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        sync = "FULL" if self.durability == "strict" else "NORMAL"
        # busy_timeout=0: a lock held by another process must never block the event loop;
        # the store's thread waits for it instead (see _begin).
        conn.executescript(f"PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA busy_timeout=0;")
        conn.executescript(_SCHEMA)
        return conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        thread, self._thread = self._thread, None
        if thread is not None:
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(thread, conn.close)
            thread.shutdown(wait=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    async def _recover(self) -> int:
        """Fold the journal tail into snapshots so every actor loads from one row."""
        rows = await self._off_loop(
            lambda: self.conn.execute("SELECT seq, actor, writes FROM journal ORDER BY seq").fetchall()
        )
        (max_seq,) = await self._off_loop(
            lambda: self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM snapshots").fetchone()
        )
        if not rows:
            return int(max_seq)
        folded: dict[str, Snapshot] = {}
        for seq, actor, raw_writes in rows:
            snap = folded.get(actor)
            if snap is None:
                snap = await self._off_loop(self._load_snapshot_only, actor)
            if seq > snap.seq:
                apply_writes(snap.state, _writes_decoder.decode(raw_writes))
                snap = Snapshot(actor, seq, snap.state)
            folded[actor] = snap
        last = rows[-1][0]
        await self.commit([], list(folded.values()), {}, truncate_upto=last)
        return max(int(max_seq), int(last))

    async def load(self, actor: str) -> Snapshot | None:
        """The actor's durable state (snapshot + its journal tail), or None if never written."""
        result = (await self.load_many([actor]))[actor]
        if isinstance(result, StorageFault):
            raise result
        return result

    async def load_many(self, actors: list[str]) -> dict[str, Snapshot | StorageFault | None]:
        """Load many actors with two queries per chunk (activations are batched like commits).

        Each actor maps to its state, None (never written) or the fault of its own row
        (a corrupt snapshot fails that actor only).
        """
        async with self._exclusive():
            return await self._off_loop(self._load_many, actors)

    def _load_many(self, actors: list[str]) -> dict[str, Snapshot | StorageFault | None]:
        out: dict[str, Snapshot | StorageFault | None] = {}
        for i in range(0, len(actors), _LOAD_CHUNK):
            chunk = actors[i : i + _LOAD_CHUNK]
            marks = ",".join("?" * len(chunk))
            try:
                snap_rows = self.conn.execute(
                    f"SELECT actor, seq, state, crc FROM snapshots WHERE actor IN ({marks})", chunk
                ).fetchall()
                journal_rows = self.conn.execute(
                    f"SELECT actor, seq, writes FROM journal WHERE actor IN ({marks}) ORDER BY seq", chunk
                ).fetchall()
            except sqlite3.Error as exc:
                fault = StorageFault(f"{self.path}: {exc}")
                out.update((actor, fault) for actor in chunk)
                continue
            snaps: dict[str, Snapshot | StorageFault] = {}
            for actor, seq, blob, crc in snap_rows:
                try:
                    snaps[actor] = self._decode_snapshot(actor, seq, blob, crc)
                except CorruptSnapshot as exc:
                    snaps[actor] = exc
            for actor, seq, raw_writes in journal_rows:
                snap = snaps.get(actor)
                if isinstance(snap, StorageFault):
                    continue
                if snap is None:
                    snap = snaps[actor] = Snapshot(actor, 0, {})
                if seq > snap.seq:
                    apply_writes(snap.state, _writes_decoder.decode(raw_writes))
                    snaps[actor] = Snapshot(actor, seq, snap.state)
            for actor in chunk:
                out[actor] = snaps.get(actor)
        return out

    def _decode_snapshot(self, actor: str, seq: int, blob: bytes, crc: int) -> Snapshot:
        if zlib.crc32(blob) != crc:
            raise CorruptSnapshot(
                f"{self.path}: snapshot of {actor!r} fails its checksum; refusing to load it"
            )
        return Snapshot(actor, seq, _state_decoder.decode(blob))

    def _load_snapshot_only(self, actor: str) -> Snapshot:
        """The actor's snapshot row (seq 0 and empty state when it has none), checksum verified."""
        row = self.conn.execute("SELECT seq, state, crc FROM snapshots WHERE actor = ?", (actor,)).fetchone()
        if row is None:
            return Snapshot(actor, 0, {})
        return self._decode_snapshot(actor, *row)

    async def actor_ids(self) -> set[str]:
        """Every actor with durable state in this file (snapshot or journal rows)."""
        rows = await self.query("SELECT actor FROM snapshots UNION SELECT actor FROM journal")
        return {row[0] for row in rows}

    async def load_alarms(self) -> list[tuple[str, int]]:
        return [(a, int(t)) for a, t in await self.query("SELECT actor, at FROM alarms")]

    async def commit(
        self,
        journal: list[JournalEntry],
        snapshots: list[Snapshot],
        alarms: dict[str, int | None],
        truncate_upto: int | None = None,
    ) -> None:
        """Write one group-commit batch as a single transaction.

        Each snapshot retires its own actor's journal rows up to its seq, and only
        those: the journal of an actor without a new snapshot is its only durable
        copy (e.g. one dropped from memory by a failed commit and not yet back).
        ``truncate_upto`` retires every row up to it; only recovery, which folded
        every journaled actor into the snapshots it passes, may use it.

        The write lock is taken and the rows inserted on the caller's thread (no
        waiting: the lock is ours unless another process holds it, and then the
        store's thread waits for it); ``COMMIT`` runs on the store's thread.
        """
        covered = {s.actor: s.seq for s in snapshots}
        journal = [
            e for e in journal
            if e.seq > covered.get(e.actor, 0) and (truncate_upto is None or e.seq > truncate_upto)
        ]
        async with self._exclusive():
            conn = self.conn
            try:
                await self._begin(conn)
                try:
                    self._write_batch(conn, journal, snapshots, alarms, truncate_upto)
                    await self._off_loop(conn.execute, "COMMIT")
                except BaseException:
                    # On the store's thread: a COMMIT still running there must finish first.
                    await asyncio.shield(self._off_loop(_rollback, conn))
                    raise
            except sqlite3.Error as exc:
                raise StorageFault(f"{self.path}: {exc}") from exc

    async def _begin(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE`` at once, or, while another process holds the lock, on the store's thread."""
        if not _try_begin(conn):
            await self._off_loop(self._begin_waiting, conn)

    def _begin_waiting(self, conn: sqlite3.Connection) -> None:
        deadline = time.monotonic() + self.busy_timeout
        while not _try_begin(conn):
            if time.monotonic() >= deadline:
                raise sqlite3.OperationalError(f"database is locked (waited {self.busy_timeout:g} s)")
            time.sleep(_BUSY_RETRY_S)

    @staticmethod
    def _write_batch(
        conn: sqlite3.Connection,
        journal: list[JournalEntry],
        snapshots: list[Snapshot],
        alarms: dict[str, int | None],
        truncate_upto: int | None,
    ) -> None:
        if journal:
            conn.executemany(
                "INSERT INTO journal (seq, actor, writes) VALUES (?, ?, ?)",
                [(e.seq, e.actor, _state_encoder.encode(e.writes)) for e in journal],
            )
        if snapshots:
            rows = []
            for s in snapshots:
                blob = encode_state(s.state)
                rows.append((s.actor, s.seq, blob, zlib.crc32(blob)))
            conn.executemany(
                "INSERT INTO snapshots (actor, seq, state, crc) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(actor) DO UPDATE SET seq=excluded.seq, "
                "state=excluded.state, crc=excluded.crc WHERE excluded.seq >= snapshots.seq",
                rows,
            )
            conn.executemany(
                "DELETE FROM journal WHERE actor = ? AND seq <= ?", [(s.actor, s.seq) for s in snapshots]
            )
        if alarms:
            conn.executemany(
                "DELETE FROM alarms WHERE actor = ?",
                [(a,) for a, at in alarms.items() if at is None],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO alarms (actor, at) VALUES (?, ?)",
                [(a, at) for a, at in alarms.items() if at is not None],
            )
        if truncate_upto is not None:
            conn.execute("DELETE FROM journal WHERE seq <= ?", (truncate_upto,))


def _try_begin(conn: sqlite3.Connection) -> bool:
    """Take the write lock; False (nothing begun) while another connection holds it."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return False
        raise
    return True


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
