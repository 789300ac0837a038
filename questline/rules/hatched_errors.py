"""The one exception Hatched logic raises: a stable code, an HTTP status and details.

Defined in ``rules`` (no I/O) so pure logic, actors and the HTTP layer share it;
an actor turn that raises it changes nothing, and the front door turns it into
the documented envelope ``{"error": {"code", "message", "details"?, "requestId"}}``.
"""

from __future__ import annotations

from typing import Any


class HatchedError(Exception):
    """A client-visible failure: clients branch on ``code``, never on ``message``."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def __reduce__(self) -> tuple[Any, ...]:  # survives pickling across the Ray hop
        return (type(self), (self.status, self.code, self.message, self.details))


def not_found(what: str, ident: str) -> HatchedError:
    return HatchedError(404, f"{what}_not_found", f"{what.replace('_', ' ').capitalize()} {ident} not found.")


def invalid_transition(what: str, ident: str, current: str, target: str) -> HatchedError:
    """A state machine refused a transition (always 409, with both states in details)."""
    return HatchedError(
        409,
        "invalid_state_transition",
        f"{what.replace('_', ' ').capitalize()} {ident} cannot go from {current} to {target}.",
        {"from": current, "to": target},
    )
