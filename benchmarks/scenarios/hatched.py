"""``hatched``: the Hatched API (seed 004, ``/api/v1``) for ``--surface-users`` (200) users.

Set-up (not measured), as a customer's backend does it: register a customer
(``POST /auth/register``), create a secret key (``POST /auth/api-keys``), apply and
publish the ``learning`` preset, then hatch one buddy per user (``POST /eggs``,
``PATCH /eggs/:id/status`` ready, ``POST /eggs/:id/hatch``, poll ``GET
/operations/:id`` until completed: about a second each, run 32 at a time).
Workloads, round-robin over the users, with the secret key:

- ``POST /events``: ``lesson_completed`` / ``quiz_passed`` (score 90) for the next
  user, every event id distinct across users, workers and runs (dedupe never
  short-cuts one), vs baseline ``POST``;
- ``GET /buddies/:id`` of the next user's buddy, vs ``GET``.

Hatched rate limits answer 429, counted as errors like any other failure; for a
server this run starts, raise its limit with ``--server-env`` (the variables in
questline/http/hatched/settings.py) rather than measuring the limiter.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from benchmarks.client import Endpoint
from benchmarks.harness import Harness, Scenario, ScenarioUnavailable, Target
from benchmarks.scenarios import _surfaces
from benchmarks.scenarios._surfaces import Api
from benchmarks.schema import Result

API = "/api/v1"
PRESET = "learning"
EVENTS: list[tuple[bytes, bytes]] = [
    (b"lesson_completed", b'{"lesson_id":"bench"}'),
    (b"quiz_passed", b'{"score":90}'),
]
HATCH_TIMEOUT_S = 60.0


class EventSource:
    """``POST /api/v1/events`` for the next user of this worker, a fresh ``event_id`` each."""

    def __init__(self, params: dict[str, Any], *, endpoint: Endpoint, prefix: str, worker: int, workers: int) -> None:
        self.users = [msgspec.json.encode(u) for u in params["users"][worker::workers]]
        if not self.users:
            raise ValueError("more load-generator processes than users")
        self.key: str = params["key"]
        self.endpoint, self.path = endpoint, f"{prefix}{API}/events"
        self.id_prefix = f'"evt-{params["tag"]}-{worker}-'.encode()
        self.n = 0

    def next_request(self) -> bytes:
        n = self.n
        self.n = n + 1
        kind, props = EVENTS[(n // len(self.users)) % len(EVENTS)]
        body = b"".join((b'{"event_id":', self.id_prefix, str(n).encode(), b'","user_id":',
                         self.users[n % len(self.users)], b',"type":"', kind, b'","properties":', props, b"}"))
        return _surfaces.post_json(self.endpoint, self.path, self.key, body)


async def _customer(api: Api, tag: str) -> str:
    """A customer with a published preset; returns its secret key."""
    registered = await api.call("POST", API + "/auth/register", {
        "email": f"bench-{tag}@questline-bench.example", "password": f"bench-{tag}-password",
        "name": "questline bench"}, expect=(201,))
    jwt = registered["access_token"]
    key = (await api.call("POST", API + "/auth/api-keys", {"name": "questline bench"}, token=jwt,
                          expect=(201,)))["key"]
    applied = await api.call("POST", API + "/customers/me/apply-preset", {"preset_key": PRESET}, token=key)
    await api.call("POST", f"{API}/config-versions/{applied['id']}/publish", token=key)
    return str(key)


async def _hatch(api: Api, key: str, user: str) -> str:
    egg = await api.call("POST", API + "/eggs", {"user_id": user}, token=key, expect=(201,))
    await api.call("PATCH", f"{API}/eggs/{egg['egg_id']}/status", {"status": "ready"}, token=key)
    op = await api.call("POST", f"{API}/eggs/{egg['egg_id']}/hatch", token=key, expect=(202,))
    deadline = asyncio.get_running_loop().time() + HATCH_TIMEOUT_S
    while True:
        state = await api.call("GET", f"{API}/operations/{op['operation_id']}", token=key)
        if state["status"] == "completed":
            return str(state["result"]["buddy_id"])
        if state["status"] in ("failed", "cancelled") or asyncio.get_running_loop().time() > deadline:
            raise ScenarioUnavailable(f"set-up: hatching a buddy for {user} ended {state['status']}: {state}")
        await asyncio.sleep(0.1)


def run(h: Harness, target: Target) -> list[Result]:
    n = h.settings.surface_users
    key = _surfaces.one(h, target, "Hatched", lambda api: _customer(api, h.run_tag))
    users = [f"bench-{h.run_tag}-{i:05d}" for i in range(n)]
    buddies = _surfaces.concurrently(h, target, "Hatched", f"hatching {n:,} Hatched buddies", n,
                                     lambda api, i: _hatch(api, key, users[i]))
    return [
        h.load_phase(
            scenario="hatched", workload=f"POST /api/v1/events, {n:,} users", target=target,
            source="benchmarks.scenarios.hatched:EventSource",
            params={"users": users, "key": key, "tag": h.run_tag}, unit="events/s", baseline_workload="POST",
            extra={"users": n, "preset": PRESET},
        ),
        h.load_phase(
            scenario="hatched", workload=f"GET /api/v1/buddies/:id, {n:,} buddies", target=target,
            source="benchmarks.scenarios._surfaces:GetSource",
            params={"requests": [(f"{API}/buddies/{b}", key) for b in buddies]}, baseline_workload="GET",
            extra={"buddies": n},
        ),
    ]


SCENARIO = Scenario(
    name="hatched",
    description="Hatched: POST /api/v1/events and GET /api/v1/buddies/:id for 200 users with hatched buddies",
    needs="server",
    run=run,
    order=70,
)
