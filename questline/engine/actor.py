"""The actor contract: one key, one owner, one turn at a time.

An actor's durable state lives in its ``storage`` (a small key-value map).
Writes made during a turn are buffered and become visible to later turns only
when the turn returns; a turn that raises leaves the state exactly as it was
(its buffer is dropped and the instance is rebuilt from committed state, so
attribute caches cannot leak half-done work either).

Messages to other actors sent with ``tell`` leave only after the turn's
writes are durable (the output gate), like replies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import msgspec

from questline.engine.address import Address

ALARM_KEY = "__alarm__"

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()

_MISSING = object()


def encode_value(value: Any) -> bytes:
    return _encoder.encode(value)


def decode_value(raw: bytes, type: Any = None) -> Any:
    if type is None:
        return _decoder.decode(raw)
    return msgspec.msgpack.decode(raw, type=type)


class Storage:
    """Transactional key-value storage of one actor.

    ``committed`` holds encoded values (bytes) so a turn can never mutate committed
    state in place; ``get`` decodes a fresh copy, ``put`` encodes at once (which also
    rejects values that could not be journaled).
    """

    __slots__ = ("committed", "_writes")

    def __init__(self, committed: dict[str, bytes] | None = None) -> None:
        self.committed: dict[str, bytes] = committed if committed is not None else {}
        self._writes: dict[str, tuple[Any, bytes | None]] = {}

    def get(self, key: str, default: Any = None, type: Any = None) -> Any:
        pending = self._writes.get(key, _MISSING)
        if pending is not _MISSING:
            value, raw = pending
            if raw is None:
                return default
            # Decode again: the caller may mutate what it gets, the buffer must not change.
            return decode_value(raw, type)
        raw = self.committed.get(key)
        if raw is None:
            return default
        return decode_value(raw, type)

    def put(self, key: str, value: Any) -> None:
        self._writes[key] = (value, encode_value(value))

    def delete(self, key: str) -> None:
        self._writes[key] = (None, None)

    def keys(self, prefix: str = "") -> list[str]:
        """Keys currently present (committed plus this turn's writes), sorted."""
        present = {k for k in self.committed if k.startswith(prefix)}
        for k, (_, raw) in self._writes.items():
            if k.startswith(prefix):
                if raw is None:
                    present.discard(k)
                else:
                    present.add(k)
        return sorted(present)

    # -- used by the shard host -------------------------------------------------
    def take_writes(self) -> dict[str, bytes | None]:
        """Apply the turn's buffer to committed state and return it as journal writes."""
        writes = {k: raw for k, (_, raw) in self._writes.items()}
        self._writes = {}
        for k, raw in writes.items():
            if raw is None:
                self.committed.pop(k, None)
            else:
                self.committed[k] = raw
        return writes

    def discard_writes(self) -> None:
        self._writes = {}


class ActorContext:
    """What the host gives an actor: its address, storage, clock and messaging."""

    __slots__ = ("address", "storage", "clock", "outbox", "emits", "_call")

    def __init__(
        self,
        address: Address,
        storage: Storage,
        clock: Callable[[], int],
        call: Callable[..., Any],
    ) -> None:
        self.address = address
        self.storage = storage
        self.clock = clock
        self.outbox: list[tuple[Address, str, tuple[Any, ...]]] = []
        self.emits: list[Any] = []
        self._call = call


class Actor:
    """Base class of every actor kind. Subclasses set ``kind`` and define public methods.

    Public methods (not starting with ``_``, not defined on this base) are the
    messages the actor accepts; they may be plain or ``async``. Keep durable
    state in ``self.storage``; instance attributes are caches only.
    """

    kind: ClassVar[str] = ""

    def __init__(self, ctx: ActorContext) -> None:
        self.ctx = ctx

    # -- identity and state ----------------------------------------------------
    @property
    def address(self) -> Address:
        return self.ctx.address

    @property
    def key(self) -> str:
        return self.ctx.address.key

    @property
    def storage(self) -> Storage:
        return self.ctx.storage

    def now(self) -> int:
        """The engine clock in Unix milliseconds (injectable in tests)."""
        return self.ctx.clock()

    # -- lifecycle hooks -------------------------------------------------------
    def on_activate(self) -> Any:
        """Called when the actor is loaded into memory, before its first message."""

    def on_alarm(self) -> Any:
        """Called, as a turn, when an alarm set with ``set_alarm`` comes due."""

    # -- alarms ----------------------------------------------------------------
    def set_alarm(self, at_ms: int) -> None:
        """Schedule ``on_alarm`` at ``at_ms`` (one alarm per actor; survives restarts)."""
        self.storage.put(ALARM_KEY, int(at_ms))

    def delete_alarm(self) -> None:
        self.storage.delete(ALARM_KEY)

    def get_alarm(self) -> int | None:
        return self.storage.get(ALARM_KEY)

    # -- messaging -------------------------------------------------------------
    def tell(self, address: Address, method: str, *args: Any) -> None:
        """Send a one-way message, released after this turn commits (never on failure)."""
        self.ctx.outbox.append((address, method, args))

    def emit(self, item: Any) -> None:
        """Send ``item`` to every process watching this actor, after this turn commits."""
        self.ctx.emits.append(item)

    async def call(self, address: Address, method: str, *args: Any) -> Any:
        """Ask another actor and wait for its reply (blocks this actor's mailbox meanwhile)."""
        return await self.ctx._call(address, method, *args)


_BASE_NAMES = frozenset(dir(Actor))


def public_methods(cls: type[Actor]) -> frozenset[str]:
    """The message names an actor class accepts."""
    return frozenset(
        name
        for name in dir(cls)
        if not name.startswith("_") and name not in _BASE_NAMES and callable(getattr(cls, name))
    )
