"""Front door skeleton, black-box over ASGI: probes, request ids, generic JSON errors."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from questline.engine import Address, EngineConfig, ShardUnavailable
from questline.engine.local import LocalRuntime
from questline.http import create_app
from questline.http.app import ping_addresses

GENERATED_ID = re.compile(r"req_[0-9a-f]{32}")


# -- routes a surface might add, used to exercise the generic handlers ------------
async def boom(request: Request) -> Response:
    raise RuntimeError("secret internal detail")


async def shard_down(request: Request) -> Response:
    raise ShardUnavailable("shard 1: disk gone", retry_after=float(request.query_params["after"]))


async def echo_request_id(request: Request) -> Response:
    return JSONResponse({"request_id": request.state.request_id})


async def stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"chunk{i}\n".encode()

    return StreamingResponse(chunks(), media_type="text/plain")


EXTRA_ROUTES: list[BaseRoute] = [
    Route("/boom", boom),
    Route("/shard-down", shard_down),
    Route("/echo-id", echo_request_id),
    Route("/stream", stream),
]


# -- runtimes that fail in specific ways -----------------------------------------
class HealthRaises(LocalRuntime):
    async def health(self) -> list[dict[str, Any]]:
        raise ShardUnavailable("shard 1 does not answer")


class ShardOneDown(LocalRuntime):
    async def call(self, address: Address, method: str, *args: Any) -> Any:
        if self.shard_of(address) == 1:
            raise ShardUnavailable("shard 1 is down")
        return await super().call(address, method, *args)


class PingHangs(LocalRuntime):
    async def call(self, address: Address, method: str, *args: Any) -> Any:
        await asyncio.sleep(3600)


class ReportsStopped(LocalRuntime):
    async def health(self) -> list[dict[str, Any]]:
        health = await super().health()
        health[1] = {**health[1], "running": False}
        return health


class Untouchable(LocalRuntime):
    async def health(self) -> list[dict[str, Any]]:
        raise AssertionError("liveness must not touch the runtime")

    async def call(self, address: Address, method: str, *args: Any) -> Any:
        raise AssertionError("liveness must not touch the runtime")


class GrabsSigterm(LocalRuntime):
    """Does what ray.init() does to the main thread's SIGTERM handler."""

    async def start(self) -> None:
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
        await super().start()


# -- fixtures ----------------------------------------------------------------------
def config(tmp_path: Path, shards: int = 2) -> EngineConfig:
    return EngineConfig(data_dir=tmp_path / "data", shards=shards)


def client_for(app: Starlette, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def started() -> AsyncIterator[list[LocalRuntime]]:
    """Runtimes started by a test, stopped at teardown (ASGITransport runs no lifespan)."""
    runtimes: list[LocalRuntime] = []
    yield runtimes
    for runtime in runtimes:
        await runtime.stop()


async def start(started: list[LocalRuntime], runtime: LocalRuntime) -> LocalRuntime:
    await runtime.start()
    started.append(runtime)
    return runtime


@pytest.fixture
async def runtime(tmp_path: Path, started: list[LocalRuntime]) -> LocalRuntime:
    return await start(started, LocalRuntime(config(tmp_path)))


@pytest.fixture
async def client(runtime: LocalRuntime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime, extra_routes=EXTRA_ROUTES, manage_runtime=False)
    async with client_for(app) as c:
        yield c


@pytest.fixture
def restore_sigterm() -> Iterator[None]:
    saved = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, saved)


# -- liveness and readiness ----------------------------------------------------------
async def test_healthz_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_healthz_does_not_touch_the_runtime(tmp_path: Path, started: list[LocalRuntime]) -> None:
    runtime = await start(started, Untouchable(config(tmp_path)))
    async with client_for(create_app(runtime, manage_runtime=False)) as c:
        response = await c.get("/healthz")
    assert response.status_code == 200


async def test_readyz_reports_every_shard_and_pings_each(
    client: httpx.AsyncClient, runtime: LocalRuntime
) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["runtime"] == "local"
    assert [entry["shard"] for entry in body["shards"]] == [0, 1]
    assert all(entry["running"] for entry in body["shards"])
    # Each shard ran the ping turn (health was read before the pings, so read it again).
    assert all(entry["turns"] >= 1 for entry in await runtime.health())


def test_ping_addresses_cover_every_shard(tmp_path: Path) -> None:
    for shards in (1, 2, 5, 16):
        runtime = LocalRuntime(config(tmp_path, shards))
        addresses = ping_addresses(runtime)
        assert [runtime.shard_of(a) for a in addresses] == list(range(shards))
        assert all(a.kind == "engine.ping" for a in addresses)


async def test_readyz_503_when_runtime_stopped(client: httpx.AsyncClient, runtime: LocalRuntime) -> None:
    await runtime.stop()
    response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["runtime"] == "local"
    assert body["errors"]


@pytest.mark.parametrize(
    ("runtime_class", "expected_error"),
    [
        (HealthRaises, "ShardUnavailable: shard 1 does not answer"),
        (ShardOneDown, "shard 1: ping failed"),
        (ReportsStopped, "shard 1 is not running"),
    ],
)
async def test_readyz_503_when_a_shard_fails(
    tmp_path: Path, started: list[LocalRuntime], runtime_class: type[LocalRuntime], expected_error: str
) -> None:
    runtime = await start(started, runtime_class(config(tmp_path)))
    async with client_for(create_app(runtime, manage_runtime=False)) as c:
        response = await c.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert any(expected_error in error for error in body["errors"]), body


async def test_readyz_503_when_a_shard_does_not_answer_in_time(
    tmp_path: Path, started: list[LocalRuntime]
) -> None:
    runtime = await start(started, PingHangs(config(tmp_path)))
    app = create_app(runtime, manage_runtime=False, ready_timeout=0.2)
    async with client_for(app) as c:
        response = await asyncio.wait_for(c.get("/readyz"), timeout=5)
    assert response.status_code == 503
    assert response.json()["errors"] == ["no answer within 0.2 s"]


# -- lifespan ------------------------------------------------------------------------
async def test_lifespan_starts_and_stops_the_runtime(tmp_path: Path) -> None:
    runtime = LocalRuntime(config(tmp_path))
    app = create_app(runtime)
    assert app.state.runtime is runtime
    async with app.router.lifespan_context(app):
        health = await runtime.health()
        assert [entry["running"] for entry in health] == [True, True]
    assert await runtime.health() == []  # stopped: no shard hosts left


async def test_lifespan_leaves_an_external_runtime_alone(
    tmp_path: Path, runtime: LocalRuntime
) -> None:
    app = create_app(runtime, manage_runtime=False)
    async with app.router.lifespan_context(app):
        pass
    assert len(await runtime.health()) == 2  # still running after the app shut down


async def test_lifespan_keeps_the_servers_signal_handlers(
    tmp_path: Path, restore_sigterm: None
) -> None:
    def server_handler(signum: int, frame: object) -> None:
        """Stands in for uvicorn's graceful-shutdown handler."""

    signal.signal(signal.SIGTERM, server_handler)
    runtime = GrabsSigterm(config(tmp_path))
    app = create_app(runtime)
    async with app.router.lifespan_context(app):
        assert signal.getsignal(signal.SIGTERM) is server_handler


# -- generic errors --------------------------------------------------------------------
async def test_unknown_route_is_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "not_found", "message": "No route for /no/such/route."}


async def test_wrong_method_is_json_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.post("/healthz")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]
    body = response.json()
    assert body["error"] == "method_not_allowed"
    assert "POST" in body["message"]


async def test_unhandled_exception_is_json_500_without_internals(
    runtime: LocalRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(runtime, extra_routes=EXTRA_ROUTES, manage_runtime=False)
    # Starlette re-raises after sending the 500 (so servers can log it); the client must not.
    async with client_for(app, raise_app_exceptions=False) as c:
        with caplog.at_level(logging.ERROR, logger="questline.http"):
            response = await c.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "message": "An internal error occurred."}
    assert "secret" not in response.text and "Traceback" not in response.text
    request_id = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(request_id)
    # Logged server-side, with the traceback and the id the client saw.
    records = [r for r in caplog.records if r.name == "questline.http" and request_id in r.getMessage()]
    assert records and records[0].exc_info is not None


@pytest.mark.parametrize(("after", "header"), [("2.5", "3"), ("0.1", "1"), ("0", "1"), ("7", "7")])
async def test_shard_unavailable_is_503_with_retry_after(
    client: httpx.AsyncClient, after: str, header: str
) -> None:
    response = await client.get("/shard-down", params={"after": after})
    assert response.status_code == 503
    assert response.headers["retry-after"] == header
    body = response.json()
    assert body["error"] == "shard_unavailable"
    assert "disk gone" not in body["message"]  # internals stay in the log
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])


# -- request ids -------------------------------------------------------------------------
async def test_request_id_generated_on_every_response(client: httpx.AsyncClient) -> None:
    responses = [await client.get(path) for path in ("/healthz", "/readyz", "/nope", "/healthz")]
    ids = [r.headers["x-request-id"] for r in responses]
    assert all(GENERATED_ID.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("incoming", ["abc-123.X_y", "a" * 128, "0"])
async def test_sane_request_id_is_echoed_and_visible_to_handlers(
    client: httpx.AsyncClient, incoming: str
) -> None:
    response = await client.get("/echo-id", headers={"X-Request-Id": incoming})
    assert response.headers["x-request-id"] == incoming
    assert response.json() == {"request_id": incoming}


@pytest.mark.parametrize(
    "hostile",
    ["a" * 129, "has space", "semi;colon", 'quote"d', "<script>", "path/../x", "", "tab\tin"],
)
async def test_hostile_request_id_is_replaced(client: httpx.AsyncClient, hostile: str) -> None:
    response = await client.get("/echo-id", headers={"X-Request-Id": hostile})
    request_id = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(request_id)
    assert response.json() == {"request_id": request_id}


async def test_request_id_on_streaming_response(client: httpx.AsyncClient) -> None:
    response = await client.get("/stream", headers={"X-Request-Id": "stream-1"})
    assert response.headers["x-request-id"] == "stream-1"
    assert response.text == "chunk0\nchunk1\nchunk2\n"
