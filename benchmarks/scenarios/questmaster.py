"""``questmaster``: the QuestMaster agent routes (seed 002) for ``--users`` sessions.

Set-up (not measured): a 5-minute agent token per session from ``POST
/api/questmaster/tokens``, authorised by the server secret
(``$QUESTLINE_QUESTMASTER_SECRET``, else the built-in demo secret a
``QUESTLINE_DEMO=1`` server uses). Workloads, round-robin over the sessions:

- ``POST /agents/quest-master-agent/{id}`` ``{"tool": "createTask", ...}`` (a
  quest in the session's actor, rate-limit actor hit first), vs baseline ``POST``;
- ``GET /agents/quest-master-agent/{id}`` (the session's quests, XP and streaks), vs ``GET``.

Both count against QuestMaster's 60 task operations/min per session: at 10,000
sessions that allows ~10,000 requests/s; a 429 is an error (spread over more ``--users``).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import msgspec

from benchmarks.client import Endpoint
from benchmarks.harness import Harness, Scenario, Target
from benchmarks.scenarios import _surfaces
from benchmarks.scenarios._surfaces import Api
from benchmarks.schema import Result

AGENT = "/agents/quest-master-agent/"
SECRET_ENV = "QUESTLINE_QUESTMASTER_SECRET"
DEMO_SECRET = "questline-demo-secret-do-not-use-in-production"  # questline.http.questmaster.DEMO_SECRET


class CreateTaskSource:
    """``createTask`` for the next session of this worker, each with its own quest name."""

    def __init__(self, params: dict[str, Any], *, endpoint: Endpoint, prefix: str, worker: int, workers: int) -> None:
        self.sessions = params["sessions"][worker::workers]
        if not self.sessions:
            raise ValueError("more load-generator processes than sessions")
        self.endpoint, self.prefix = endpoint, prefix
        self.times = params["start"], params["end"]
        self.n = 0

    def next_request(self) -> bytes:
        n = self.n
        self.n = n + 1
        sid, token = self.sessions[n % len(self.sessions)]
        body = msgspec.json.encode({"tool": "createTask", "params": {
            "taskName": f"Bench quest {n}", "taskDescription": "A quest posted by questline bench.",
            "taskStartTime": self.times[0], "taskEndTime": self.times[1], "XP": 50}})
        return _surfaces.post_json(self.endpoint, f"{self.prefix}{AGENT}{sid}", token, body)


def run(h: Harness, target: Target) -> list[Result]:
    secret = os.environ.get(SECRET_ENV, "").strip() or DEMO_SECRET
    n = h.settings.users

    async def mint(api: Api, i: int) -> tuple[str, str]:
        sid = f"bench-{h.run_tag}-{i:05d}"
        answer = await api.call("POST", "/api/questmaster/tokens", {"sessionId": sid}, token=secret)
        return sid, answer["token"]

    sessions = _surfaces.concurrently(h, target, "QuestMaster", f"minting {n:,} QuestMaster session tokens",
                                      n, mint)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start, end = ((now + dt.timedelta(hours=h_)).strftime("%Y-%m-%dT%H:%M:%S.000Z") for h_ in (1, 3))
    return [
        h.load_phase(
            scenario="questmaster", workload=f"POST createTask, {n:,} sessions", target=target,
            source="benchmarks.scenarios.questmaster:CreateTaskSource",
            params={"sessions": sessions, "start": start, "end": end}, baseline_workload="POST",
            extra={"sessions": n},
        ),
        h.load_phase(
            scenario="questmaster", workload=f"GET tasks, {n:,} sessions", target=target,
            source="benchmarks.scenarios._surfaces:GetSource",
            params={"requests": [(AGENT + sid, token) for sid, token in sessions]}, baseline_workload="GET",
            extra={"sessions": n},
        ),
    ]


SCENARIO = Scenario(
    name="questmaster",
    description="QuestMaster agent: POST createTask and GET tasks for 10,000 sessions",
    needs="server",
    run=run,
    order=50,
)
