"""A generic sliding-window rate limiter: one actor per window name.

The key names the thing being limited (``questkit.events:<jti>``,
``questmaster.chat:<session>``); the caller passes the limit and the window on
every hit, so one actor kind serves every surface. The window is a true sliding
log: the timestamps of the accepted requests of the last ``window_ms`` (at most
``limit`` of them), so a request is allowed exactly when fewer than ``limit``
were accepted in the preceding ``window_ms``. Refused requests are not recorded
(a client hammering while limited does not extend its own ban).

State stays bounded: at most ``limit`` timestamps, and an alarm clears them once
the window has passed, so a key that goes quiet (an expired token) leaves nothing.
"""

from __future__ import annotations

from typing import Any

from questline.engine import Actor, Address


def ratelimit_address(window: str) -> Address:
    return Address("ratelimit", window)


def slide(
    log: list[int], now: int, limit: int, window_ms: int, cost: int = 1
) -> tuple[dict[str, Any], list[int] | None]:
    """One hit on a sliding log: ``(verdict, new log)``; the new log is None when refused.

    The verdict is ``{allowed, limit, remaining, retryAfterMs, resetMs}``.
    ``retryAfterMs`` is 0 when allowed; otherwise the time until enough of the
    oldest requests leave the window for this one to fit. ``resetMs`` is when
    the window will be empty again (for ``X-RateLimit-Reset``-style headers).
    Pure, so any actor that owns a window (this one, or a user actor limiting
    its own tokens in the same turn as the work) counts the same way.
    """
    if limit < 1 or window_ms < 1 or cost < 1:
        raise ValueError("limit, window_ms and cost must be positive")
    stamps = [t for t in log if t > now - window_ms]
    if len(stamps) + cost <= limit:
        stamps.extend([now] * cost)
        verdict = {
            "allowed": True,
            "limit": limit,
            "remaining": limit - len(stamps),
            "retryAfterMs": 0,
            "resetMs": stamps[0] + window_ms - now,
        }
        return verdict, stamps
    if cost > limit:
        retry_after = window_ms
    else:
        # The request fits once the (len + cost - limit) oldest stamps have expired.
        oldest_needed = stamps[len(stamps) + cost - limit - 1]
        retry_after = max(1, oldest_needed + window_ms - now)
    verdict = {
        "allowed": False,
        "limit": limit,
        "remaining": max(0, limit - len(stamps)),
        "retryAfterMs": retry_after,
        "resetMs": (stamps[0] + window_ms - now) if stamps else 0,
    }
    return verdict, None


class RateLimitActor(Actor):
    kind = "ratelimit"

    def hit(self, limit: int, window_ms: int, cost: int = 1) -> dict[str, Any]:
        """Count one request if allowed: see :func:`slide` for the verdict's fields."""
        now = self.now()
        verdict, stamps = slide(self.storage.get("t", []), now, limit, window_ms, cost)
        if stamps is not None:
            self.storage.put("t", stamps)
            if self.get_alarm() is None:
                self.storage.put("w", window_ms)
                self.set_alarm(now + window_ms)
        return verdict

    def peek(self, limit: int, window_ms: int) -> dict[str, Any]:
        """How many requests remain, without counting one."""
        now = self.now()
        used = sum(1 for t in self.storage.get("t", []) if t > now - window_ms)
        return {"limit": limit, "remaining": max(0, limit - used)}

    def on_alarm(self) -> None:
        """Drop what left the window; forget the key entirely once nothing is left."""
        window_ms: int = self.storage.get("w", 0)
        now = self.now()
        stamps = [t for t in self.storage.get("t", []) if t > now - window_ms]
        if not stamps:
            self.storage.delete("t")
            self.storage.delete("w")
            return
        self.storage.put("t", stamps)
        self.set_alarm(max(stamps) + window_ms)
