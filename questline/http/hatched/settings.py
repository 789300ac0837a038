"""Hatched settings from the environment, each with a default a fresh checkout runs with."""

from __future__ import annotations

import os


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
