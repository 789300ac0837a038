"""Hatched settings from the environment, each with a default a fresh checkout runs with."""

from __future__ import annotations

import os

# Plan tiers, cheapest first. A customer starts on "free".
PLANS = ("free", "starter", "growth", "pro", "enterprise")

# Requests per rate window per principal (one API key, or one dashboard customer).
# The window is short so the sliding log the limiter keeps stays small.
_RATE_LIMITS = {"free": 100, "starter": 200, "growth": 500, "pro": 1000, "enterprise": 2000}
# Newly accepted events per UTC calendar month per customer (0 = unlimited).
_EVENT_QUOTAS = {"free": 100_000, "starter": 1_000_000, "growth": 5_000_000, "pro": 25_000_000,
                 "enterprise": 0}
DAY_MS = 86_400_000


def _int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def max_active_eggs() -> int:
    return _int("HATCHED_MAX_ACTIVE_EGGS", 3)


def operation_delays_ms() -> tuple[int, int]:
    """(pending, processing) durations of an async operation: "Processing..." is a real state."""
    return _int("HATCHED_OP_PENDING_MS", 300), _int("HATCHED_OP_PROCESSING_MS", 700)


def publish_url() -> str:
    return os.environ.get("HATCHED_DASHBOARD_URL", "/dashboard") + "/config-versions"


def billing_url() -> str:
    return os.environ.get("HATCHED_DASHBOARD_URL", "/dashboard") + "/billing"


def _plan(plan: str) -> str:
    return plan if plan in PLANS else "free"


def rate_limit(plan: str) -> int:
    """Requests per window for one principal of ``plan`` (``HATCHED_RATE_LIMIT_<PLAN>``; 0 = off)."""
    plan = _plan(plan)
    return max(0, _int(f"HATCHED_RATE_LIMIT_{plan.upper()}", _RATE_LIMITS[plan]))


def rate_window_ms() -> int:
    """The sliding window of the rate limit (``HATCHED_RATE_WINDOW_MS``, default one second)."""
    return max(1, _int("HATCHED_RATE_WINDOW_MS", 1000))


def event_quota(plan: str) -> int:
    """Monthly event quota of ``plan`` (``HATCHED_EVENT_QUOTA_<PLAN>``; 0 = unlimited)."""
    plan = _plan(plan)
    return max(0, _int(f"HATCHED_EVENT_QUOTA_{plan.upper()}", _EVENT_QUOTAS[plan]))


def event_retention_ms() -> int:
    """How long the event log keeps an event in full (``HATCHED_EVENT_RETENTION_DAYS``, default 90)."""
    return max(1, _int("HATCHED_EVENT_RETENTION_DAYS", 90)) * DAY_MS


def event_dedupe_ms() -> int:
    """How long a resend of an event id stays a no-op (``HATCHED_EVENT_DEDUPE_DAYS``, default 400).

    Never shorter than the retention: while an event is listed its id dedupes; after
    pruning, a small tombstone (the original effects, no properties) answers resends
    until this horizon, after which the id is forgotten.
    """
    return max(_int("HATCHED_EVENT_DEDUPE_DAYS", 400) * DAY_MS, event_retention_ms())


def plan_cache_ms() -> int:
    """How long a front door trusts its cached copy of a customer's plan (``HATCHED_PLAN_CACHE_MS``)."""
    return max(0, _int("HATCHED_PLAN_CACHE_MS", 30_000))
