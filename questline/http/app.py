"""The Starlette front door: one app per process, routing requests to the engine.

Surfaces (QuestKit, QuestMaster, Minigame, Hatched) arrive as ``extra_routes``;
this module owns only what every deployment needs: the runtime's lifecycle,
liveness/readiness probes, request ids and the generic error handlers.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from questline.engine import Address, Runtime
from questline.http.errors import default_exception_handlers
from questline.http.frontdoor import FrontDoorMiddleware
from questline.http.limits import DEFAULT_BODY_TIMEOUT_S, DEFAULT_MAX_BODY_BYTES
from questline.http.metrics import metrics_routes

log = logging.getLogger("questline.http")

PING_KIND = "engine.ping"
DEFAULT_READY_TIMEOUT = 2.0
_SERVER_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def keep_signal_handlers() -> Iterator[None]:
    """Undo signal handlers a runtime installs while starting.

    ``ray.init()`` replaces the main thread's SIGTERM handler with ``sys.exit``,
    which would skip the server's graceful shutdown (and with it ``runtime.stop()``,
    the final snapshot and the clean close of every shard). The server owns the
    process's signals, so whatever it had installed is put back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in _SERVER_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None and signal.getsignal(sig) is not handler:
                log.debug("restoring the server's %s handler after runtime start", sig.name)
                signal.signal(sig, handler)


def ping_addresses(runtime: Runtime) -> list[Address]:
    """One ``engine.ping`` address per shard, index ``i`` placed on shard ``i``.

    Placement is a hash, so keys are tried in order until every shard has one;
    the result is deterministic and small (about ``N ln N`` tries).
    """
    found: dict[int, Address] = {}
    for n in itertools.count():
        address = Address(PING_KIND, f"ready-{n}")
        found.setdefault(runtime.shard_of(address), address)
        if len(found) == runtime.shards:
            return [found[i] for i in range(runtime.shards)]
    raise AssertionError("unreachable")  # itertools.count() never ends


async def check_ready(
    runtime: Runtime, addresses: list[Address], time_limit: float
) -> tuple[bool, dict[str, Any]]:
    """Ask every shard for its health and make each run one turn.

    ``health()`` alone only proves a shard object exists; the ping proves its
    mailbox runs turns (and, for Ray, that the Ray hop works).
    """
    body: dict[str, Any] = {"runtime": runtime.name, "shards": []}
    errors: list[str] = []
    try:
        async with asyncio.timeout(time_limit):
            health = await runtime.health()
            body["shards"] = health
            if len(health) != runtime.shards:
                errors.append(f"expected {runtime.shards} shards, {len(health)} reported")
            for entry in health:
                if isinstance(entry, dict) and entry.get("running") is False:
                    errors.append(f"shard {entry.get('shard', '?')} is not running")
            if not errors:
                replies = await asyncio.gather(
                    *(runtime.call(address, "ping") for address in addresses),
                    return_exceptions=True,
                )
                for shard, reply in enumerate(replies):
                    if isinstance(reply, BaseException):
                        errors.append(f"shard {shard}: ping failed ({type(reply).__name__}: {reply})")
                    elif reply != "pong":
                        errors.append(f"shard {shard}: unexpected ping reply {reply!r}")
    except TimeoutError:
        errors.append(f"no answer within {time_limit:g} s")
    except Exception as exc:  # a failing runtime must yield 503, not 500
        errors.append(f"health check failed ({type(exc).__name__}: {exc})")
    if errors:
        return False, {"status": "unavailable", **body, "errors": errors}
    return True, {"status": "ready", **body}


async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process serves HTTP. Never touches the runtime, so a slow shard
    does not get the process restarted."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Readiness: every shard answers and runs a turn; otherwise 503 (take me out of rotation)."""
    state = request.app.state
    ok, body = await check_ready(state.runtime, state.ping_addresses, state.ready_timeout)
    return JSONResponse(body, status_code=200 if ok else 503)


def create_app(
    runtime: Runtime,
    *,
    extra_routes: list[BaseRoute] | None = None,
    manage_runtime: bool = True,
    ready_timeout: float = DEFAULT_READY_TIMEOUT,
    on_startup: list[Callable[[Runtime], Awaitable[None]]] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    body_timeout: float = DEFAULT_BODY_TIMEOUT_S,
) -> Starlette:
    """Build the front door around ``runtime``.

    With ``manage_runtime`` (the default) the app's lifespan starts the runtime
    and stops it on shutdown; pass ``False`` when the caller owns the runtime's
    lifecycle (tests driving the app without a lifespan, several apps on one runtime).
    ``on_startup`` hooks run after the runtime started (e.g. installing catalogs).
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_runtime:
            with keep_signal_handlers():
                await runtime.start()
        for hook in on_startup or []:
            await hook(runtime)
        try:
            yield
        finally:
            if manage_runtime:
                await runtime.stop()

    # Starlette tries routes in order: the surfaces' (busiest first) before the probes.
    routes: list[BaseRoute] = [
        *(extra_routes or []),
        Route("/healthz", healthz, methods=["GET"], name="healthz"),
        Route("/readyz", readyz, methods=["GET"], name="readyz"),
        *metrics_routes(),
    ]
    app = Starlette(
        routes=routes,
        # Metrics, request ids, admission (a quick 503 past the bound) and body limits (413/408),
        # in each surface's error format.
        middleware=[Middleware(FrontDoorMiddleware, max_body_bytes=max_body_bytes, body_timeout=body_timeout)],
        exception_handlers=default_exception_handlers(),
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.ping_addresses = ping_addresses(runtime)
    app.state.ready_timeout = ready_timeout
    return app
