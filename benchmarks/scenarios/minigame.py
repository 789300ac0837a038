"""``minigame``: the Minigame surface (seed 003) for ``--surface-users`` (200) characters.

Set-up (not measured): an access JWT per character from ``POST /api/auth/token``
(tenant ``--app-id``/``--app-secret``, the demo tenant by default; each costs the
server one scrypt check, ~60 ms, hence fewer characters than QuestKit users) and
the tenant's open, repeatable activities from ``GET /api/activities``.
Workloads, round-robin over the characters:

- ``play``: ``POST /api/minigame/session`` for an activity, then, as soon as it is
  answered, ``POST /api/minigame/result`` with that session's token, a valid
  duration and the seed-derived event hash (both requests counted), vs ``POST``;
- ``GET /api/characters/me`` (skills, currencies, items), vs ``GET``.

Sessions are limited to 20 per character per minute: 200 characters allow 4,000
sessions in a 1 + 5 s phase (~660/s); beyond that the 429s are errors (add
``--surface-users``).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec

from benchmarks.client import Endpoint
from benchmarks.harness import Harness, Scenario, ScenarioUnavailable, Target
from benchmarks.scenarios import _surfaces
from benchmarks.scenarios._surfaces import Api
from benchmarks.schema import Result

REPEATABLE = ("recipe", "gathering_node", "trade_offer", "heal", "scouting", "animal")
SCORE = 0.8


class _Session(msgspec.Struct):
    token: str = ""
    seed: int = 0
    min_duration_ms: int = 0
    passive: bool = False


_decode_session = msgspec.json.Decoder(_Session).decode


class PlaySource:
    """Sessions for the characters in turn; each answered session's result goes out next."""

    def __init__(self, params: dict[str, Any], *, endpoint: Endpoint, prefix: str, worker: int, workers: int) -> None:
        # the seed's derivation, as a client computes it
        from questline.rules.minigame import event_hash

        self.event_hash = event_hash
        self.characters: list[tuple[str, str]] = params["characters"][worker::workers]
        if not self.characters:
            raise ValueError("more load-generator processes than characters")
        self.activities: list[tuple[str, str]] = params["activities"]
        self.endpoint, self.prefix = endpoint, prefix
        self.results: deque[bytes] = deque()
        self.sessions: dict[int, str] = {}  # id(request) -> character token
        self.n = 0

    def next_request(self) -> bytes:
        if self.results:
            return self.results.popleft()
        n = self.n
        self.n = n + 1
        _, token = self.characters[n % len(self.characters)]
        activity_type, ref = self.activities[(n // len(self.characters)) % len(self.activities)]
        body = msgspec.json.encode({"activity_type": activity_type, "activity_ref_id": ref})
        data = _surfaces.post_json(self.endpoint, self.prefix + "/api/minigame/session", token, body)
        self.sessions[id(data)] = token
        return data

    def on_answer(self, request: bytes, status: int, body: bytes) -> None:
        token = self.sessions.pop(id(request), None)
        if token is None or status != 200:
            return
        try:
            session = _decode_session(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if session.passive:
            return
        duration = session.min_duration_ms + 500
        result = msgspec.json.encode({"token": session.token, "score": SCORE, "duration_ms": duration,
                                      "event_hash": self.event_hash(session.seed, duration, SCORE)})
        self.results.append(_surfaces.post_json(self.endpoint, self.prefix + "/api/minigame/result", token, result))


def run(h: Harness, target: Target) -> list[Result]:
    s = h.settings
    n = s.surface_users

    async def login(api: Api, i: int) -> tuple[str, str]:
        cid = f"bench-{h.run_tag}-{i:05d}"
        answer = await api.call("POST", "/api/auth/token",
                                {"tenant_id": s.app_id, "tenant_secret": s.app_secret, "character_id": cid},
                                expect=(200,))
        return cid, answer["access_token"]

    characters = _surfaces.concurrently(h, target, "Minigame", f"logging in {n:,} minigame characters", n, login)
    listed = _surfaces.one(h, target, "Minigame", lambda api: api.call("GET", "/api/activities",
                                                                       token=characters[0][1]))
    activities = [(a["activity_type"], a["id"]) for a in listed["activities"]
                  if a.get("kind") in REPEATABLE and a.get("status") == "open"]
    if not activities:
        raise ScenarioUnavailable(f"tenant {s.app_id!r} has no open repeatable activity ({', '.join(REPEATABLE)})")
    return [
        h.load_phase(
            scenario="minigame", workload=f"play: session + result, {n:,} characters", target=target,
            source="benchmarks.scenarios.minigame:PlaySource",
            params={"characters": characters, "activities": activities}, baseline_workload="POST",
            extra={"characters": n, "activities": len(activities)},
        ),
        h.load_phase(
            scenario="minigame", workload=f"GET /api/characters/me, {n:,} characters", target=target,
            source="benchmarks.scenarios._surfaces:GetSource",
            params={"requests": [("/api/characters/me", token) for _, token in characters]},
            baseline_workload="GET", extra={"characters": n},
        ),
    ]


SCENARIO = Scenario(
    name="minigame",
    description="Minigame: play (session + result) and GET /api/characters/me for 200 characters",
    needs="server",
    run=run,
    order=60,
)
