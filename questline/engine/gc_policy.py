"""Garbage-collector settings for server processes (front doors and shard hosts).

A server process holds tens of thousands of long-lived actor activations and
allocates a few hundred short-lived objects per request. With CPython's default
thresholds (700, 10, 10) the young generation is collected every few requests
and full collections walk every resident actor: measured on the events
benchmark (10,000 users, local runtime), 16 % of the process's time went to the
collector and its full passes stalled every request for 100+ ms.

``tune_for_serving`` freezes what exists once the server has started (code,
catalogs, routes: never garbage) and collects the young generation every
``GEN0_THRESHOLD`` allocations instead of 700, which cut the collector's share
to ~2 % with pauses of a few milliseconds. Full collections keep CPython's own
rule (only when the long-lived objects grew by a quarter), so reference cycles
are still reclaimed. Called by the entry points only, never on import: tests
and embedding applications keep their own settings.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 10_000
GEN1_THRESHOLD = 20
GEN2_THRESHOLD = 10


def tune_for_serving() -> None:
    """Freeze the objects alive now and raise the young-generation threshold (idempotent)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)
