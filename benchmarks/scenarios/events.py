"""``events``: QuestKit ingest, ``POST /v1/events`` for 10,000 users (``--users``).

Tokens are minted up front (``POST /v1/auth/token``, not measured). Each
request is a valid event for the next user in turn, with a fresh
``Idempotency-Key`` header as QuestKit's SDK sends with every event, the
current time as ``timestamp``, and a name and payload taken from the app's
catalog (``GET /v1/missions``: every mission's ``criteria.eventName`` with a
payload that passes its filter), so events really progress missions.
Compared with the baseline's ``POST`` workload (same request shape and size).
"""

from __future__ import annotations

from typing import Any

from benchmarks.client import Endpoint
from benchmarks.harness import Harness, Scenario, Target
from benchmarks.questkit_wire import EventEncoder
from benchmarks.scenarios import _questkit
from benchmarks.schema import Result


class EventSource:
    """Valid events, round-robin over this worker's share of the users; each user
    cycles through the templates."""

    def __init__(self, params: dict[str, Any], *, endpoint: Endpoint, prefix: str, worker: int, workers: int) -> None:
        users = params["users"][worker::workers]
        if not users:
            raise ValueError("more load-generator processes than users")
        self.encoder = EventEncoder(
            users, params["events"], endpoint=endpoint, prefix=prefix, key_prefix=f"{params['tag']}-{worker}-"
        )
        self.n = len(users)
        self.i = 0

    def next_request(self) -> bytes:
        i = self.i
        self.i = i + 1
        u = i % self.n
        return self.encoder.encode(u, u + i // self.n)


def run(h: Harness, target: Target) -> list[Result]:
    users = _questkit.tokens(h, target, h.settings.users)
    _questkit.check_route(target, users[0][1], "POST", "/v1/events", b"{}")
    templates, warnings = _questkit.event_templates(h, target, users[0][1])
    result = h.load_phase(
        scenario="events", workload=f"POST /v1/events, {len(users):,} users", target=target,
        source="benchmarks.scenarios.events:EventSource",
        params={"users": users, "events": templates, "tag": h.run_tag},
        unit="events/s", baseline_workload="POST",
        extra={"users": len(users), "event_templates": templates},
    )
    result.warnings[:0] = warnings
    return [result]


SCENARIO = Scenario(
    name="events",
    description="QuestKit ingest: POST /v1/events for 10,000 users (catalog-matching events)",
    needs="server",
    run=run,
    order=20,
)
