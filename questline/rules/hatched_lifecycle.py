"""Hatched's state machines as data, and the checks every transition goes through.

Eggs: waiting -> ready -> hatching -> hatched, waiting|ready -> cancelled.
Operations: pending -> processing -> completed|failed, pending -> cancelled.
Anything else is a 409 with ``{from, to}`` in the details.
"""

from __future__ import annotations

import hashlib

from questline.rules.hatched_errors import invalid_transition

EGG_TRANSITIONS: dict[str, frozenset[str]] = {
    "waiting": frozenset({"ready", "cancelled"}),
    "ready": frozenset({"hatching", "cancelled"}),
    "hatching": frozenset({"hatched"}),
    "hatched": frozenset(),
    "cancelled": frozenset(),
}
ACTIVE_EGG_STATES = frozenset({"waiting", "ready", "hatching"})
OPERATION_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"processing", "cancelled"}),
    "processing": frozenset({"completed", "failed"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}
OPERATION_TYPES = ("hatch", "evolve", "equip_item")


def check_egg(egg_id: str, current: str, target: str) -> None:
    if target not in EGG_TRANSITIONS.get(current, frozenset()):
        raise invalid_transition("egg", egg_id, current, target)


def check_operation(op_id: str, current: str, target: str) -> None:
    if target not in OPERATION_TRANSITIONS.get(current, frozenset()):
        raise invalid_transition("operation", op_id, current, target)


def visual_variant(egg_id: str) -> int:
    """A stable 0-11 shell pattern per egg (the widget picks the art from it)."""
    return hashlib.blake2b(egg_id.encode(), digest_size=2).digest()[0] % 12
