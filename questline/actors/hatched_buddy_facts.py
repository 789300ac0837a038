"""Buddy turn for analytics: one buddy's state and dated history, as plain facts.

A mixin of ``BuddyActor``. It only reads, and it reads what the other mixins
own (``badge_awards``, ``evolutions``, ``items``, ``progress``) without
changing it; the shape it answers is :class:`questline.rules.hatched_analytics.BuddyFact`.
Ledger rows are returned only for the requested range, walking back from the
newest row and stopping at the first one older than the range (rows are
appended in time order), so a recent range costs the recent rows only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from questline.actors.hatched_buddy_host import BuddyHost


def _ms(stamp: str | None) -> int | None:
    """``2026-04-08T10:30:00.250Z`` -> Unix ms (the ledger and award records store ISO text)."""
    if not stamp:
        return None
    return round(dt.datetime.fromisoformat(stamp).timestamp() * 1000)


class FactsTurns(BuddyHost):
    """The read-only ``analytics_facts`` turn of a buddy."""

    def analytics_facts(self, start_ms: int, end_ms: int) -> dict[str, Any]:
        buddy = self._buddy()
        ledger: list[dict[str, Any]] = []
        seq = self.storage.get("ledger_seq", 0)
        while seq >= 1:
            row = self.storage.get(f"ledger:{seq:010d}")
            seq -= 1
            if row is None:
                continue
            at = _ms(row["created_at"])
            assert at is not None
            if at < start_ms:
                break
            if at < end_ms:
                ledger.append({"currency": row["currency"], "delta": row["amount"] if row["type"] == "credit"
                               else -row["amount"], "source": row["source"], "at": at})
        awards: dict[str, Any] = self.storage.get("badge_awards", {})
        badges = [{"key": key, "at": _ms((awards.get(key) or {}).get("awarded_at"))} for key in buddy["badges"]]
        evolutions = [{"from_stage": e["from_stage"], "to_stage": e["to_stage"], "at": _ms(e["evolved_at"])}
                      for e in self.storage.get("evolutions", [])]
        worn = set(buddy["equipped_items"])
        items = [{"item_id": r["item_id"], "name": r["name"], "via": r["acquired_via"], "price": r["price_paid"],
                  "at": r["acquired_at"], "equipped": r["item_id"] in worn}
                 for r in self.storage.get("items", {}).values()]
        progress: dict[str, Any] = self.storage.get("progress", {})
        periods = {s["key"]: s.get("period", "daily")
                   for s in buddy.get("config", {}).get("streak_definitions", {}).values()}
        streaks = [{"key": key, "period": periods.get(key, "daily"), "current": s.get("current", 0),
                    "longest": s.get("longest", 0), "last_period": s.get("last_period")}
                   for key, s in progress.get("streaks", {}).items()]
        return {"buddy_id": buddy["buddy_id"], "user_id": buddy["user_id"], "name": buddy["name"],
                "status": buddy["status"], "created_at": buddy["created_at"],
                "evolution_stage": buddy["evolution_stage"], "coins": buddy["coins"],
                "coins_earned": buddy["coins_earned"], "tokens": dict(buddy["tokens"]),
                "events_total": progress.get("events_total", 0), "badges": badges, "ledger": ledger,
                "evolutions": evolutions, "items": items, "streaks": streaks}
