"""The durability audit shared by the crash tests and ``questline chaos``.

A writer that knows, per key, how many writes it *acknowledged* (the server
answered success), how many may or may not have landed (*maybe*: in flight when
the process died, or answered "unavailable" by a shard that died mid-turn) can
check what the server *applied* after recovery:

    acknowledged <= applied <= acknowledged + maybe

Below the range an acknowledged write was lost; above it the server invented
one. Definite refusals (a 4xx, a 503 from a failed commit) count in neither.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class Ledger:
    """What one key's writer knows about its own writes."""

    sent: int = 0  # requests written to the wire
    acked: int = 0  # answered success
    refused: int = 0  # answered a definite refusal (nothing applied)
    maybe: int = 0  # unanswered, or refused by a shard that may have run the turn

    def in_flight(self) -> int:
        """Sent but neither acknowledged, refused nor counted as maybe yet."""
        return self.sent - self.acked - self.refused - self.maybe


@dataclass
class Audit:
    """Totals over every key, and the keys that broke the rule."""

    keys: int = 0
    acked: int = 0
    applied: int = 0
    lost: int = 0
    invented: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def audit(ledgers: Mapping[str, Ledger], applied: Mapping[str, int]) -> Audit:
    """Check ``acked <= applied <= acked + maybe + in-flight`` for every key."""
    out = Audit()
    for key, ledger in ledgers.items():
        stored = applied.get(key, 0)
        ceiling = ledger.acked + ledger.maybe + ledger.in_flight()
        out.keys += 1
        out.acked += ledger.acked
        out.applied += stored
        if stored < ledger.acked:
            out.lost += ledger.acked - stored
            out.violations.append(f"{key}: acknowledged {ledger.acked}, applied {stored} (lost)")
        elif stored > ceiling:
            out.invented += stored - ceiling
            out.violations.append(f"{key}: at most {ceiling} could land, applied {stored} (invented)")
    return out


def kill_group(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """SIGKILL ``proc``'s process group (it was started with ``start_new_session``)
    and reap it: a crash with no chance to flush or snapshot."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
