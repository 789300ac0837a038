"""``read``: QuestKit reads, ``GET /v1/missions`` and ``GET /v1/balance``, round-robin over the users.

Same users and tokens as ``events`` (minted once per server); run after it,
the users have progress and balances to read. Each workload is compared with
the baseline's ``GET`` workload (same request shape).
"""

from __future__ import annotations

from typing import Any

from benchmarks.client import Endpoint, encode_request
from benchmarks.harness import Harness, Scenario, Target
from benchmarks.scenarios import _questkit
from benchmarks.schema import Result

ROUTES = ("/v1/missions", "/v1/balance")


class ReadSource:
    """One pre-encoded GET per user of this worker, round-robin."""

    def __init__(self, params: dict[str, Any], *, endpoint: Endpoint, prefix: str, worker: int, workers: int) -> None:
        users = params["users"][worker::workers]
        if not users:
            raise ValueError("more load-generator processes than users")
        self.requests = [
            encode_request("GET", prefix + params["path"], endpoint.authority,
                           headers={"Authorization": f"Bearer {token}"})
            for _, token in users
        ]
        self.i = 0

    def next_request(self) -> bytes:
        self.i += 1
        return self.requests[self.i % len(self.requests)]


def run(h: Harness, target: Target) -> list[Result]:
    users = _questkit.tokens(h, target, h.settings.users)
    for path in ROUTES:
        _questkit.check_route(target, users[0][1], "GET", path)
    return [
        h.load_phase(
            scenario="read", workload=f"GET {path}, {len(users):,} users", target=target,
            source="benchmarks.scenarios.read:ReadSource", params={"users": users, "path": path},
            baseline_workload="GET", extra={"users": len(users)},
        )
        for path in ROUTES
    ]


SCENARIO = Scenario(
    name="read",
    description="QuestKit reads: GET /v1/missions and GET /v1/balance for 10,000 users",
    needs="server",
    run=run,
    order=30,
)
