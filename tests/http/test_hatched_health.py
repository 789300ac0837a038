"""Hatched operations routes: health, liveness, readiness (the front door's own check,
in Hatched's shapes) and the metrics path, all reachable without credentials."""

from __future__ import annotations

import httpx
import pytest

from questline.engine import Runtime
from questline.http.metrics import METRICS_TOKEN_ENV
from tests.http.hatched_support import (  # noqa: F401 - fixtures
    assert_error,
    client_fixture,
    fast_operations_fixture,
    runtime_fixture,
)


async def test_live_ready_and_health_answer_without_credentials(client: httpx.AsyncClient,
                                                                runtime: Runtime) -> None:
    live = await client.get("/health/live")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready" and body["runtime"] == "local"
    assert [s["shard"] for s in body["shards"]] == list(range(runtime.shards))
    health = await client.get("/health")
    assert health.status_code == 200, health.text
    doc = health.json()
    assert doc["status"] == "ok" and isinstance(doc["version"], str) and doc["uptime_seconds"] >= 0
    assert doc["checks"] == {"engine": {"status": "up", "runtime": "local", "shards": runtime.shards}}


async def test_a_stopped_engine_is_not_ready_but_the_process_is_live(client: httpx.AsyncClient,
                                                                     runtime: Runtime) -> None:
    await runtime.stop()
    for path in ("/health/ready", "/health"):
        response = await client.get(path)
        error = assert_error(response, 503, "service_unavailable")
        assert response.headers["retry-after"] == "1"
        engine = error["details"]["checks"]["engine"]
        assert engine["status"] == "unavailable" and engine["errors"], engine
        assert "expected 2 shards, 0 reported" in error["message"]
    live = await client.get("/health/live")
    assert live.status_code == 200


async def test_wrong_methods_get_the_envelope(client: httpx.AsyncClient) -> None:
    for path in ("/health", "/health/live", "/health/ready", "/metrics"):
        error = assert_error(await client.post(path), 405, "method_not_allowed")
        assert "GET" in error["details"]["allowed"]


async def test_metrics_under_the_api_path(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    open_scrape = await client.get("/metrics")
    assert open_scrape.status_code == 200 and "questline_engine_turns_total" in open_scrape.text
    monkeypatch.setenv(METRICS_TOKEN_ENV, "tok")
    assert_error(await client.get("/metrics"), 401, "unauthorized")
    assert (await client.get("/metrics", headers={"Authorization": "Bearer tok"})).status_code == 200
