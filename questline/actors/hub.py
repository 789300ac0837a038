"""Live-update streams: the sequenced, bounded buffer of updates behind an SSE stream.

Generic across surfaces: an :class:`UpdateLog` sequences opaque updates
``{event, data}``, keeps the last ``BUFFER_SIZE`` of them (and none older than
``BUFFER_MS``) in its owner's storage so a client resuming with
``Last-Event-ID`` gets exactly what it missed, and emits each one to the
front-door processes watching the owner. A resume from before the buffer is
answered with ``reset`` so the client re-reads state instead of silently
missing updates.

Two ways to own one. The :class:`HubActor` is a stream of its own, fed by
``publish`` messages (QuestMaster sessions, Hatched buddies). An actor that is
the only source of a stream keeps the log itself (the QuestKit user): its
updates are then sequenced in the same turn, and made durable by the same
commit, as the change they describe, with no second actor turn and no second
commit between an event and its frame.
"""

from __future__ import annotations

from typing import Any

from questline.engine import Actor, Address

BUFFER_SIZE = 256
BUFFER_MS = 10 * 60 * 1000


def hub_address(stream: str) -> Address:
    return Address("hub", stream)


class UpdateLog:
    """One stream's buffer in ``owner``'s storage, under keys starting with ``prefix``."""

    __slots__ = ("owner", "_seq_key", "_first_key", "_entry_prefix")

    def __init__(self, owner: Actor, prefix: str = "") -> None:
        self.owner = owner
        self._seq_key = f"{prefix}seq"
        self._first_key = f"{prefix}first"
        self._entry_prefix = f"{prefix}e:"

    def _entry_key(self, seq: int) -> str:
        return f"{self._entry_prefix}{seq:016d}"

    def publish(self, updates: list[dict[str, Any]], retain: int | None = None) -> int:
        """Append updates (each ``{"event": str, "data": ...}``) in order; returns the last sequence id.

        ``retain`` lowers the buffer bound for this stream (at most ``BUFFER_SIZE``): a
        stream of whole states (each update supersedes the last) needs only the few
        newest for a quick resume, and a resume from before them gets ``reset``.
        """
        storage = self.owner.storage
        bound = BUFFER_SIZE if retain is None else max(1, min(retain, BUFFER_SIZE))
        seq: int = storage.get(self._seq_key, 0)
        first: int = storage.get(self._first_key, 1)
        now = self.owner.now()
        for update in updates:
            seq += 1
            item = {"seq": seq, "at": now, "event": str(update["event"]), "data": update.get("data")}
            storage.put(self._entry_key(seq), item)
            self.owner.emit(item)
        # Trim to the bound: by count, then by age.
        while first <= seq and (seq - first + 1 > bound):
            storage.delete(self._entry_key(first))
            first += 1
        while first <= seq:
            oldest = storage.get(self._entry_key(first))
            if oldest is None or now - oldest["at"] <= BUFFER_MS:
                break
            storage.delete(self._entry_key(first))
            first += 1
        storage.put(self._seq_key, seq)
        storage.put(self._first_key, first)
        return seq

    def replay(self, after: int | None) -> dict[str, Any]:
        """What a client that last saw ``after`` missed: ``{seq, items, reset}``.

        ``after=None`` (a fresh client) replays nothing. ``reset`` is true when the
        gap reaches back past the buffer, or ``after`` is ahead of this stream.
        """
        storage = self.owner.storage
        seq: int = storage.get(self._seq_key, 0)
        first: int = storage.get(self._first_key, 1)
        if after is None or after == seq:
            return {"seq": seq, "items": [], "reset": False}
        if after > seq or after < first - 1:
            return {"seq": seq, "items": [], "reset": True}
        now = self.owner.now()
        items = []
        for s in range(after + 1, seq + 1):
            item = storage.get(self._entry_key(s))
            if item is None or now - item["at"] > BUFFER_MS:
                return {"seq": seq, "items": [], "reset": True}
            items.append(item)
        return {"seq": seq, "items": items, "reset": False}

    def head(self) -> int:
        return self.owner.storage.get(self._seq_key, 0)


class HubActor(Actor):
    """A stream of its own: updates arrive as ``publish`` messages from other actors."""

    kind = "hub"

    @property
    def _log(self) -> UpdateLog:
        return UpdateLog(self)

    def publish(self, updates: list[dict[str, Any]], retain: int | None = None) -> int:
        """See :meth:`UpdateLog.publish`."""
        return self._log.publish(updates, retain)

    def replay(self, after: int | None) -> dict[str, Any]:
        """See :meth:`UpdateLog.replay`."""
        return self._log.replay(after)

    def head(self) -> int:
        return self._log.head()
