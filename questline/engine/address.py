"""Actor addresses and their placement on shards (rendezvous hashing)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import NamedTuple


class Address(NamedTuple):
    """The identity of a virtual actor: the same address always reaches the same instance."""

    kind: str
    key: str

    @property
    def id(self) -> str:
        """A flat string form, used as the storage key of the actor."""
        return f"{self.kind}:{self.key}"

    @classmethod
    def parse(cls, actor_id: str) -> Address:
        kind, _, key = actor_id.partition(":")
        return cls(kind, key)


def _score(actor_id: bytes, shard: int) -> int:
    digest = hashlib.blake2b(actor_id + shard.to_bytes(4, "little"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def place(address: Address, shards: int) -> int:
    """Rendezvous (highest-random-weight) hashing: the shard that owns ``address``.

    Adding a shard moves only the keys the new shard wins, about 1/N of them.
    """
    if shards <= 1:
        return 0
    return _place_id(f"{address.kind}:{address.key}", shards)


@lru_cache(maxsize=262_144)
def _place_id(actor_id: str, shards: int) -> int:
    raw = actor_id.encode()
    best, best_score = 0, -1
    for shard in range(shards):
        score = _score(raw, shard)
        if score > best_score:
            best, best_score = shard, score
    return best
