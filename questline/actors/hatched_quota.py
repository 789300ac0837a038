"""The monthly event quota of one Hatched customer.

One actor per customer counts the events newly accepted in the current UTC
calendar month. The events partitions ask it before applying an event, so a
deduplicated resend never reaches it and two concurrent events can never both
take the last unit: each ``consume`` is one turn. The month rolls over inside the
actor on the engine clock (the counter starts again at 0; the last months' totals
are kept for the dashboard), so the state survives restarts like any actor's.

The caller passes the plan's limit on every call (0 = unlimited: still counted,
never refused), so a plan change takes effect on the next event without a
message to this actor.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from questline.engine import Actor, Address

HISTORY_MONTHS = 12


def quota_address(customer_id: str) -> Address:
    return Address("hatched.quota", customer_id)


def month_of(now_ms: int) -> tuple[str, int]:
    """``("YYYY-MM", start of next month in Unix ms)`` for a UTC instant."""
    moment = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)
    nxt = dt.datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=dt.UTC)
    return f"{moment.year:04d}-{moment.month:02d}", int(nxt.timestamp() * 1000)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class QuotaActor(Actor):
    kind = "hatched.quota"

    def _current(self) -> tuple[str, int, int]:
        """``(period, used, reset_at)``, rolling the month over when the clock passed it."""
        period, reset_at = month_of(self.now())
        stored = self.storage.get("period")
        used: int = self.storage.get("used", 0)
        if stored != period:
            if stored is not None:
                history: dict[str, int] = self.storage.get("history", {})
                history[stored] = used
                self.storage.put("history", dict(sorted(history.items())[-HISTORY_MONTHS:]))
            used = 0
            self.storage.put("period", period)
            self.storage.put("used", 0)
        return period, used, reset_at

    @staticmethod
    def _view(limit: int, used: int, period: str, reset_at: int) -> dict[str, Any]:
        return {"limit": limit or None, "used": used, "remaining": max(0, limit - used) if limit else None,
                "period": period, "reset_at": _iso(reset_at)}

    def consume(self, count: int, limit: int) -> dict[str, Any]:
        """Take up to ``count`` units: ``{granted, limit, used, remaining, period, reset_at}``."""
        period, used, reset_at = self._current()
        granted = count if not limit else max(0, min(count, limit - used))
        if granted:
            used += granted
            self.storage.put("used", used)
        return {"granted": granted, **self._view(limit, used, period, reset_at)}

    def refund(self, count: int, period: str) -> None:
        """Give back units taken for an event that then failed (only within the same month)."""
        current, used, _ = self._current()
        if current == period and count > 0:
            self.storage.put("used", max(0, used - count))

    def usage(self, limit: int) -> dict[str, Any]:
        """What the dashboard shows; reading never counts."""
        period, used, reset_at = self._current()
        return {**self._view(limit, used, period, reset_at), "history": self.storage.get("history", {})}
