"""Engine-level actor kinds: probes for readiness checks, engine tests and benchmarks.

They know nothing of gamification; they exercise the contract (state, turns,
alarms, failures) so the engine can be checked and measured on its own.
"""

from __future__ import annotations

import asyncio

from questline.engine.actor import Actor
from questline.engine.address import Address


class CounterActor(Actor):
    """A durable counter: the smallest actor that reads and writes state every turn."""

    kind = "engine.counter"

    def add(self, amount: int = 1) -> int:
        value = self.storage.get("n", 0) + amount
        self.storage.put("n", value)
        return value

    def get(self) -> int:
        return self.storage.get("n", 0)

    def add_then_fail(self, amount: int) -> None:
        """Writes, then raises: the write must not survive the failed turn."""
        self.storage.put("n", self.storage.get("n", 0) + amount)
        raise ValueError("deliberate failure after a write")

    async def slow_add(self, amount: int, seconds: float) -> int:
        """Holds the actor's turn for a while (turn-isolation and head-of-line tests)."""
        value = self.storage.get("n", 0)
        await asyncio.sleep(seconds)
        self.storage.put("n", value + amount)
        return value + amount

    def relay(self, target: str, method: str, amounts: list[int]) -> int:
        """Tell counter ``target`` ``method(amount)`` for each amount, in order (messaging tests)."""
        for amount in amounts:
            self.tell(Address(self.kind, target), method, amount)
        return self.add(len(amounts))

    def arm(self, at_ms: int) -> None:
        self.set_alarm(at_ms)

    def on_alarm(self) -> None:
        self.storage.put("alarms", self.storage.get("alarms", 0) + 1)

    def alarms_fired(self) -> int:
        return self.storage.get("alarms", 0)


class PingActor(Actor):
    """Answers without touching storage: used by /readyz to prove a shard runs turns."""

    kind = "engine.ping"

    def ping(self) -> str:
        return "pong"


class BroadcastActor(Actor):
    """Emits what it is told to its watchers (feed tests and benchmarks)."""

    kind = "engine.broadcast"

    def say(self, item: object) -> int:
        count = self.storage.get("said", 0) + 1
        self.storage.put("said", count)
        self.emit(item)
        return count

    def say_then_fail(self, item: object) -> None:
        """An emission from a failed turn must never reach a watcher."""
        self.emit(item)
        raise ValueError("deliberate failure after an emit")


PROBE_ACTORS: tuple[type[Actor], ...] = (CounterActor, PingActor, BroadcastActor)
