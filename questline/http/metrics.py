"""HTTP side of the metrics: counting requests (for the front door) and the ``/metrics`` route.

Only ``http.response.start`` is looked at, so SSE streams pass through untouched. Requests
are labelled by the *route template* that matched (``/api/v1/buddies/{id}``),
found from the route Starlette records in the scope, never by the raw path:
raw paths carry ids and would give every buddy its own time series.

Scraping is open unless ``QUESTLINE_METRICS_TOKEN`` is set; then the scraper
must send ``Authorization: Bearer <token>`` (Prometheus' ``authorization``
setting). The figures are operational (no tenant data), but a deployment that
exposes the port publicly can close them.
"""

from __future__ import annotations

import hmac
import os
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Message, Scope

from questline import metrics
from questline.http.errors import error_response

METRICS_TOKEN_ENV = "QUESTLINE_METRICS_TOKEN"
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_EVENT_STREAM = b"text/event-stream"


def _routes_of(app: Any) -> list[BaseRoute]:
    """The routes under an ASGI app, looking through wrappers (``EnvelopeRouter``, middleware)."""
    for _ in range(16):
        routes = getattr(app, "routes", None)
        if isinstance(routes, list):
            return routes
        app = getattr(app, "app", None)
        if app is None:
            break
    return []


def route_templates(app: Any) -> dict[int, str]:
    """``id(route) -> full template`` for every route reachable from ``app`` (mount prefixes included)."""
    out: dict[int, str] = {}

    def walk(routes: list[BaseRoute], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                out.setdefault(id(route), f"{prefix}{route.path}/{{path:path}}")
                walk(route.routes or _routes_of(route.app), prefix + route.path)
            else:
                path = getattr(route, "path", None)
                if isinstance(path, str):
                    out.setdefault(id(route), prefix + path)

    walk(_routes_of(app), "")
    return out


class RequestMetrics:
    """Count every HTTP request by method, route template and status; time the non-streaming ones.

    Used by the front door (:class:`questline.http.frontdoor.FrontDoorMiddleware`):
    :meth:`started` when a response starts (an SSE stream is counted as open from
    then), :meth:`finished` when the request is over.
    """

    def __init__(self) -> None:
        self._templates: dict[int, str] = {}
        self._mapped_app: Any = None
        # Labelled children cached: ``labels()`` takes a lock and builds a tuple on every call.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    def template(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        app = scope.get("app")
        if app is not None and app is not self._mapped_app:
            self._templates, self._mapped_app = route_templates(app), app
        found = self._templates.get(id(route))
        if found is None:
            # Not reachable from the app's table (or no app in scope): its own template is still no raw path.
            path = getattr(route, "path", None)
            found = path if isinstance(path, str) else UNMATCHED
        return found

    def started(self, scope: Scope, message: Message) -> str | None:
        """At ``http.response.start``: the route template if this response is an SSE stream."""
        for name, value in message.get("headers", ()):
            if name.lower() == b"content-type":
                if not value.startswith(_EVENT_STREAM):
                    return None
                route = self.template(scope)
                metrics.SSE_OPENED.labels(route).inc()
                metrics.SSE_OPEN.labels(route).inc()
                return route
        return None

    def finished(self, scope: Scope, status: int, stream_route: str | None, started: float) -> None:
        """Count the request; time it unless it was a stream (whose length is the client's)."""
        method = scope.get("method", "GET")
        method = method if method in _METHODS else "OTHER"
        if stream_route is not None:
            metrics.SSE_OPEN.labels(stream_route).dec()
        route = stream_route or self.template(scope)
        key = (method, route, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = metrics.HTTP_REQUESTS.labels(method, route, str(status))
        counter.inc()
        if stream_route is None:
            timer = self._timers.get((method, route))
            if timer is None:
                timer = self._timers[(method, route)] = metrics.HTTP_LATENCY.labels(method, route)
            timer.observe(time.perf_counter() - started)


def scrape_allowed(request: Request) -> bool:
    """True when no token is configured, or the request carries it."""
    token = os.environ.get(METRICS_TOKEN_ENV, "")
    if not token:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


async def scrape(request: Request) -> Response:
    """The exposition for this process plus the engine (rendered now, from live counters)."""
    body = await metrics.render(request.app.state.runtime)
    return Response(body, media_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})


async def metrics_endpoint(request: Request) -> Response:
    if not scrape_allowed(request):
        return error_response(401, "unauthorized", f"Send Authorization: Bearer <{METRICS_TOKEN_ENV}>.",
                              headers={"WWW-Authenticate": "Bearer"})
    return await scrape(request)


def metrics_routes() -> list[BaseRoute]:
    """``GET /metrics`` at the root (for the app factory's route list)."""
    return [Route("/metrics", metrics_endpoint, methods=["GET"], name="metrics")]
