"""The actor runtime: Durable-Object-style virtual actors on local shards or Ray.

Nothing in here knows about gamification: it hosts actors addressed by
``(kind, key)``, runs their turns one at a time, journals their writes and
releases replies only once those writes are durable.
"""

from questline.engine.actor import Actor, ActorContext
from questline.engine.address import Address, place
from questline.engine.errors import ActorError, ShardUnavailable, UnknownActorKind, UnknownMethod
from questline.engine.runtime import EngineConfig, Runtime, create_runtime

__all__ = [
    "Actor",
    "ActorContext",
    "ActorError",
    "Address",
    "EngineConfig",
    "Runtime",
    "ShardUnavailable",
    "UnknownActorKind",
    "UnknownMethod",
    "create_runtime",
    "place",
]
