"""Prometheus metrics: after real traffic the counters moved, requests are labelled by
route template (never the raw path), SSE streams are counted while open, engine
figures come from the shards (both runtimes), and the exposition parses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Mount, Route

from questline import metrics
from questline.engine import Runtime
from questline.http import create_app
from questline.http.frontdoor import FrontDoorMiddleware
from questline.http.hatched import HATCHED_ACTORS, hatched_routes
from questline.http.metrics import (
    METRICS_TOKEN_ENV,
    route_templates,
)
from tests.conftest import RUNTIMES
from tests.http.hatched_support import (  # noqa: F401 - fixtures
    API,
    fast_operations_fixture,
    hatch_buddy,
    publish_preset,
    register,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def app_for(runtime: Runtime) -> Any:
    """The front door as served: the app factory mounts ``/metrics`` and the middleware itself."""
    return create_app(runtime, extra_routes=hatched_routes(), manage_runtime=False)


def client_of(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def scrape(client: httpx.AsyncClient, path: str = "/metrics") -> tuple[str, Samples]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    samples: Samples = {}
    for family in text_string_to_metric_families(text):  # raises on anything malformed
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every series of ``name`` whose labels include ``labels``."""
    return sum(v for (n, lab), v in samples.items() if n == name and set(labels.items()) <= set(lab))


@pytest.fixture(name="runtime")
async def runtime_fixture(make_runtime) -> Runtime:
    return await make_runtime("local", actor_classes=list(HATCHED_ACTORS))


async def test_requests_are_counted_by_route_template_not_raw_path(runtime: Runtime) -> None:
    async with client_of(app_for(runtime)) as client:
        _, before = await scrape(client)
        customer = await register(client_for_api(client))
        for n in range(3):
            r = await client.get(f"{API}/buddies/bdy_missing{n}", headers=customer.auth)
            assert r.status_code == 404
        assert (await client.get("/no/such/thing/42")).status_code == 404
        assert (await client.delete(f"{API}/health")).status_code == 405
        text, after = await scrape(client)
    route = f"{API}/buddies/{{id}}"
    name = "questline_http_requests_total"
    assert value(after, name, method="GET", route=route, status="404") - \
        value(before, name, method="GET", route=route, status="404") == 3
    assert value(after, name, method="POST", route=f"{API}/auth/register", status="201") - \
        value(before, name, method="POST", route=f"{API}/auth/register", status="201") == 1
    assert value(after, name, method="GET", route="unmatched", status="404") - \
        value(before, name, method="GET", route="unmatched", status="404") == 1
    assert value(after, name, method="DELETE", route=f"{API}/health", status="405") - \
        value(before, name, method="DELETE", route=f"{API}/health", status="405") == 1
    # The scrape before this one was counted too, under its template.
    assert value(after, name, method="GET", route="/metrics", status="200") >= 1
    latency = "questline_http_request_duration_seconds_count"
    assert value(after, latency, method="GET", route=route) - value(before, latency, method="GET", route=route) == 3
    for raw in ("bdy_missing", "/no/such/thing", customer.customer_id):
        assert raw not in text


def client_for_api(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The Hatched helpers speak paths relative to ``/api/v1``: the same client, rebased."""
    return httpx.AsyncClient(transport=client._transport, base_url=f"http://testserver{API}")


@pytest.mark.parametrize("runtime_name", RUNTIMES)
async def test_engine_figures_come_from_the_shards(make_runtime, runtime_name: str) -> None:
    runtime = await make_runtime(runtime_name, actor_classes=list(HATCHED_ACTORS))
    async with client_of(app_for(runtime)) as client:
        _, before = await scrape(client)
        api = client_for_api(client)
        customer = await register(api)
        await publish_preset(api, customer)
        buddy = await hatch_buddy(api, customer, "user_1")
        for n in range(4):
            r = await api.post("/events", json={"event_id": f"e{n}", "user_id": "user_1", "type": "lesson_completed"},
                               headers=customer.auth)
            assert r.status_code == 200, r.text
        _, after = await scrape(client, f"{API}/metrics")  # the Hatched path serves the same exposition
    assert buddy["buddy_id"]
    shards = {str(s) for s in range(runtime.shards)}
    assert {lab[0][1] for (n, lab) in after if n == "questline_engine_shard_up"} == shards
    assert total(after, "questline_engine_shard_up") == runtime.shards
    assert value(after, "questline_engine_stats_ok") == 1
    # Every event is at least one turn of its partition and one of the buddy.
    assert total(after, "questline_engine_turns_total") - total(before, "questline_engine_turns_total") >= 8
    assert total(after, "questline_engine_activations_total") > total(before, "questline_engine_activations_total")
    commits = total(after, "questline_engine_journal_commits_total")
    assert commits > 0
    assert total(after, "questline_engine_journal_commit_duration_seconds_count") == commits
    assert total(after, "questline_engine_journal_commit_batch_turns_sum") == \
        total(after, "questline_engine_journal_committed_turns_total")
    assert total(after, "questline_engine_journal_commit_duration_seconds_bucket", le="+Inf") == commits
    assert total(after, "questline_engine_admission_rejections_total") == 0
    assert ("questline_engine_admission_rejections_total", (("shard", "0"), ("where", "mailbox"))) in after
    if runtime_name == "ray":
        assert ("questline_engine_admission_rejections_total", (("shard", "0"), ("where", "client_queue"))) in after
    assert total(after, "questline_engine_resident_actors") >= 3


async def test_sse_streams_are_counted_while_open() -> None:
    seen: list[float] = []

    async def stream(request: Request) -> StreamingResponse:
        async def frames() -> AsyncIterator[bytes]:
            seen.append(metrics.REGISTRY.get_sample_value("questline_sse_connections_open",
                                                          {"route": "/live/{room}"}) or 0)
            yield b"data: hello\n\n"

        return StreamingResponse(frames(), media_type="text/event-stream")

    app = FrontDoorMiddleware(Starlette(routes=[Mount("/live", routes=[Route("/{room}", stream)])]))
    opened_before = metrics.REGISTRY.get_sample_value("questline_sse_connections_total",
                                                      {"route": "/live/{room}"}) or 0
    async with client_of(app) as client:
        responses = await asyncio.gather(*(client.get(f"/live/room{n}") for n in range(2)))
    assert all(r.status_code == 200 and r.text == "data: hello\n\n" for r in responses)
    assert seen and max(seen) >= 1
    assert metrics.REGISTRY.get_sample_value("questline_sse_connections_open", {"route": "/live/{room}"}) == 0
    assert metrics.REGISTRY.get_sample_value("questline_sse_connections_total",
                                             {"route": "/live/{room}"}) == opened_before + 2
    # Streams are counted as requests but kept out of the latency histogram (their length is the client's).
    assert metrics.REGISTRY.get_sample_value("questline_http_request_duration_seconds_count",
                                             {"method": "GET", "route": "/live/{room}"}) is None


async def test_webhook_outcomes_are_exposed_and_bounded(runtime: Runtime) -> None:
    async with client_of(app_for(runtime)) as client:
        _, before = await scrape(client)
        metrics.record_webhook_delivery("delivered")
        metrics.record_webhook_delivery("delivered")
        metrics.record_webhook_delivery("failed")
        _, after = await scrape(client)
    name = "questline_webhook_deliveries_total"
    assert value(after, name, outcome="delivered") - value(before, name, outcome="delivered") == 2
    assert value(after, name, outcome="failed") - value(before, name, outcome="failed") == 1
    with pytest.raises(ValueError):
        metrics.record_webhook_delivery("https://customer.example/hook")


async def test_a_token_closes_the_scrape(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(METRICS_TOKEN_ENV, "s3cret-scrape")
    async with client_of(app_for(runtime)) as client:
        refused = await client.get("/metrics")
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
        hatched = await client.get(f"{API}/metrics", headers={"Authorization": "Bearer wrong"})
        assert hatched.status_code == 401 and hatched.json()["error"]["code"] == "unauthorized"
        ok = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        assert ok.status_code == 200 and "questline_http_requests_total" in ok.text


async def test_scrape_answers_when_the_engine_does_not(make_runtime, ray_cluster) -> None:
    import ray

    runtime = await make_runtime("ray", shards=2)
    ray.kill(runtime.handles[1], no_restart=True)
    async with client_of(app_for(runtime)) as client:
        _, samples = await scrape(client)
    assert value(samples, "questline_engine_shard_up", shard="0") == 1
    assert value(samples, "questline_engine_shard_up", shard="1") == 0
    assert value(samples, "questline_engine_stats_ok") == 1


def test_route_templates_include_mount_prefixes() -> None:
    inner = Route("/items/{item_id}", lambda r: None)
    outer = Route("/plain", lambda r: None)
    mount = Mount("/shop/{shop}", routes=[inner])
    app = Starlette(routes=[outer, mount])
    templates = route_templates(app)
    assert templates[id(inner)] == "/shop/{shop}/items/{item_id}"
    assert templates[id(outer)] == "/plain"
    assert templates[id(mount)] == "/shop/{shop}/{path:path}"


def test_hatched_routes_are_reachable_through_the_envelope_router() -> None:
    templates = set(route_templates(Starlette(routes=hatched_routes())).values())
    assert f"{API}/buddies/{{id}}" in templates and f"{API}/health/ready" in templates

