"""The live-update hub of one stream key (a user of a tenant, a session, ...).

Generic across surfaces: it sequences opaque updates ``{event, data}``, keeps
the last ``BUFFER_SIZE`` of them (and none older than ``BUFFER_MS``) so a
client resuming with ``Last-Event-ID`` gets exactly what it missed, and emits
each one to the front-door processes watching this hub. A resume from before
the buffer is answered with ``reset`` so the client re-reads state instead of
silently missing updates.
"""

from __future__ import annotations

from typing import Any

from questline.engine import Actor, Address

BUFFER_SIZE = 256
BUFFER_MS = 10 * 60 * 1000


def hub_address(stream: str) -> Address:
    return Address("hub", stream)


def _entry_key(seq: int) -> str:
    return f"e:{seq:016d}"


class HubActor(Actor):
    kind = "hub"

    def publish(self, updates: list[dict[str, Any]], retain: int | None = None) -> int:
        """Append updates (each ``{"event": str, "data": ...}``) in order; returns the last sequence id.

        ``retain`` lowers the buffer bound for this stream (at most ``BUFFER_SIZE``): a
        stream of whole states (each update supersedes the last) needs only the few
        newest for a quick resume, and a resume from before them gets ``reset``.
        """
        bound = BUFFER_SIZE if retain is None else max(1, min(retain, BUFFER_SIZE))
        seq: int = self.storage.get("seq", 0)
        first: int = self.storage.get("first", 1)
        now = self.now()
        for update in updates:
            seq += 1
            item = {"seq": seq, "at": now, "event": str(update["event"]), "data": update.get("data")}
            self.storage.put(_entry_key(seq), item)
            self.emit(item)
        # Trim to the bound: by count, then by age.
        while first <= seq and (seq - first + 1 > bound):
            self.storage.delete(_entry_key(first))
            first += 1
        while first <= seq:
            oldest = self.storage.get(_entry_key(first))
            if oldest is None or now - oldest["at"] <= BUFFER_MS:
                break
            self.storage.delete(_entry_key(first))
            first += 1
        self.storage.put("seq", seq)
        self.storage.put("first", first)
        return seq

    def replay(self, after: int | None) -> dict[str, Any]:
        """What a client that last saw ``after`` missed: ``{seq, items, reset}``.

        ``after=None`` (a fresh client) replays nothing. ``reset`` is true when the
        gap reaches back past the buffer, or ``after`` is ahead of this hub.
        """
        seq: int = self.storage.get("seq", 0)
        first: int = self.storage.get("first", 1)
        if after is None or after == seq:
            return {"seq": seq, "items": [], "reset": False}
        if after > seq or after < first - 1:
            return {"seq": seq, "items": [], "reset": True}
        now = self.now()
        items = []
        for s in range(after + 1, seq + 1):
            item = self.storage.get(_entry_key(s))
            if item is None or now - item["at"] > BUFFER_MS:
                return {"seq": seq, "items": [], "reset": True}
            items.append(item)
        return {"seq": seq, "items": items, "reset": False}

    def head(self) -> int:
        return self.storage.get("seq", 0)
