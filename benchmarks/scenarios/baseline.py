"""``baseline``: the bare Starlette constant-body endpoint (benchmarks/baseline_app.py).

Measured first in every run, on the same uvicorn settings, client, connection
count and mode as the other scenarios, with requests of the same shape and
size as theirs (same paths, headers, body), so each scenario's throughput and
latency can be given as a ratio to it. The ratio is what holds on a noisy
machine; the absolute numbers are this machine's, at this moment.
"""

from __future__ import annotations

from typing import Any

from benchmarks.client import Endpoint, encode_request
from benchmarks.harness import Harness, Scenario, Target
from benchmarks.schema import Result

# A token of the size a QuestKit JWT has, so the requests weigh the same.
FAKE_TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + "x" * 140 + "." + "y" * 43
EVENT_BODY = (
    '{"userId":"bench-000000-00000","name":"purchase.completed",'
    '"payload":{"product":"boots","amount":49.99},"timestamp":1716100000000}'
)

WORKLOADS: dict[str, dict[str, Any]] = {
    # the shape of a QuestKit read (GET /v1/missions)
    "GET": {"method": "GET", "path": "/v1/missions", "headers": {"Authorization": f"Bearer {FAKE_TOKEN}"}},
    # the shape of a QuestKit event (POST /v1/events)
    "POST": {
        "method": "POST",
        "path": "/v1/events",
        "headers": {
            "Authorization": f"Bearer {FAKE_TOKEN}",
            "Content-Type": "application/json",
            "Idempotency-Key": "bench-000000-0-000000000",
        },
        "body": EVENT_BODY,
    },
}


class ConstantSource:
    """The same pre-encoded request every time."""

    def __init__(self, params: dict[str, Any], *, endpoint: Endpoint, prefix: str, worker: int, workers: int) -> None:
        body = params.get("body")
        self.data = encode_request(
            params["method"], prefix + params["path"], endpoint.authority,
            headers=params.get("headers"), body=body.encode() if body is not None else None,
        )

    def next_request(self) -> bytes:
        return self.data


def run(h: Harness, target: Target) -> list[Result]:
    results = []
    for workload, params in WORKLOADS.items():
        result = h.load_phase(
            scenario="baseline", workload=workload, target=target,
            source="benchmarks.scenarios.baseline:ConstantSource", params=params,
        )
        h.baseline[workload] = result
        results.append(result)
    return results


SCENARIO = Scenario(
    name="baseline",
    description="bare Starlette constant-body endpoint on the same uvicorn settings (the reference)",
    needs="baseline",
    run=run,
    order=0,
)
