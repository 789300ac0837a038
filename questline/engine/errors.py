"""Errors the engine raises to callers, identical in both runtimes."""

from __future__ import annotations


class EngineError(Exception):
    """Base of engine-level failures (as opposed to errors raised by actor code)."""


class UnknownActorKind(EngineError):
    """No actor class is registered under this kind."""


class UnknownMethod(EngineError):
    """The actor has no public method of that name."""


class ShardUnavailable(EngineError):
    """The shard could not run or commit the turn; nothing was acknowledged. Retry later."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self):  # keep retry_after across pickling (Ray)
        return (type(self), (str(self), self.retry_after))


class ActorError(EngineError):
    """An actor raised an exception that could not be carried to the caller as itself."""
