"""Hatched's operations routes: ``/health``, ``/health/live``, ``/health/ready``, ``/metrics``.

Probes cannot carry API keys, so these answer without credentials (``/metrics``
closes with ``QUESTLINE_METRICS_TOKEN``, see :mod:`questline.http.metrics`).
Readiness is the front door's own check (:func:`questline.http.app.check_ready`:
every shard answers and runs a turn), reported in Hatched's shapes: the body on
success, the error envelope with the failing checks on failure.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from questline import __version__
from questline.http.app import DEFAULT_READY_TIMEOUT, check_ready, ping_addresses
from questline.http.hatched.auth import runtime_of
from questline.http.hatched.conventions import json
from questline.http.hatched.errors import endpoint, error_response
from questline.http.metrics import METRICS_TOKEN_ENV, scrape, scrape_allowed

_STARTED = time.time()


async def _readiness(request: Request) -> tuple[bool, dict[str, Any]]:
    state = request.app.state
    runtime = runtime_of(request)
    addresses = getattr(state, "ping_addresses", None) or ping_addresses(runtime)
    return await check_ready(runtime, addresses, getattr(state, "ready_timeout", DEFAULT_READY_TIMEOUT))


def _unavailable(request: Request, body: dict[str, Any]) -> Response:
    return error_response(request.scope, 503, "service_unavailable", "The engine is not ready: "
                          + "; ".join(body["errors"]), {"checks": {"engine": body}}, headers={"Retry-After": "1"})


@endpoint
async def health(request: Request) -> Response:
    """Overall health: the process (version, uptime) and the engine's readiness."""
    ok, body = await _readiness(request)
    if not ok:
        return _unavailable(request, body)
    return json({"status": "ok", "version": __version__, "uptime_seconds": int(time.time() - _STARTED),
                 "checks": {"engine": {"status": "up", "runtime": body["runtime"], "shards": len(body["shards"])}}})


@endpoint
async def live(request: Request) -> Response:
    """Liveness: this process serves HTTP. Never touches the engine (a slow shard must not get it restarted)."""
    return json({"status": "ok"})


@endpoint
async def ready(request: Request) -> Response:
    """Readiness: every shard answers and runs a turn; otherwise 503 in the envelope."""
    ok, body = await _readiness(request)
    if not ok:
        return _unavailable(request, body)
    return json(body)


@endpoint
async def prometheus(request: Request) -> Response:
    if not scrape_allowed(request):
        return error_response(request.scope, 401, "unauthorized",
                              f"Send Authorization: Bearer <{METRICS_TOKEN_ENV}> to read metrics.",
                              headers={"WWW-Authenticate": "Bearer"})
    return await scrape(request)


def routes() -> list[BaseRoute]:
    return [
        Route("/health", health, methods=["GET"]),
        Route("/health/live", live, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
