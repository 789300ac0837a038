"""Durable storage: one SQLite file per shard (journal, snapshots, alarms)."""

from questline.storage.shard_store import CorruptSnapshot, JournalEntry, ShardStore, StorageFault

__all__ = ["CorruptSnapshot", "JournalEntry", "ShardStore", "StorageFault"]
