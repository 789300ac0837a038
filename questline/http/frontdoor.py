"""The front door's middleware: metrics, admission, request ids and body limits in one layer.

Every request, in this order:

1. counted and timed (:class:`~questline.http.metrics.RequestMetrics`), refusals included;
2. given a request id (:mod:`questline.http.request_ids`), echoed in ``X-Request-Id``;
3. admitted, or refused with a quick 503 (:class:`~questline.http.admission.AdmissionGate`);
4. its body read whole before the app sees it: 413 / 408 / 400 past the limits
   (:class:`~questline.http.limits.BodyLimits`), then replayed to the app and left at
   ``scope["questline.body"]``.

Each concern keeps its own module; this class only runs them in one pass. Four
separate middlewares cost four layers per request and three send wrappers per
response message -- every SSE frame -- about 15 % of an in-process ``POST
/v1/events`` (benchmarks/README.md, session 4). Pure ASGI, because Starlette's
``BaseHTTPMiddleware`` buffers responses and breaks SSE.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from questline.http.admission import OVERLOADED_MESSAGE, AdmissionGate
from questline.http.limits import (
    BUFFERED_BODY_KEY,
    CLOSE_CONNECTION,
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_MAX_BODY_BYTES,
    SURFACE_ERRORS,
    BodyLimits,
    ClientGone,
    Refusal,
    SurfaceErrors,
    send_refusal,
)
from questline.http.metrics import RequestMetrics
from questline.http.request_ids import REQUEST_ID_KEY, new_request_id, sanitize_request_id

_RETRY_LATER = ((b"retry-after", b"1"),)
_OVERLOADED = Refusal(503, "overloaded", OVERLOADED_MESSAGE)


def _request_id(raw: bytes | None) -> str:
    return sanitize_request_id(raw.decode("latin-1") if raw is not None else None) or new_request_id()


class FrontDoorMiddleware:
    """What every request passes through before a surface sees it (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        body_timeout: float = DEFAULT_BODY_TIMEOUT_S,
        max_inflight: int | None = None,
        max_wait: float | None = None,
        max_queue: int | None = None,
        surfaces: Sequence[SurfaceErrors] = SURFACE_ERRORS,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self.surfaces = tuple(surfaces)
        self.metrics = RequestMetrics()
        self.admission = AdmissionGate(max_inflight=max_inflight, max_wait=max_wait, max_queue=max_queue,
                                       environ=environ)
        self.bodies = BodyLimits(max_body_bytes, body_timeout, self.surfaces)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                headers = dict(scope.get("headers", ()))
                scope.setdefault("state", {})["request_id"] = _request_id(headers.get(REQUEST_ID_KEY))
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers", ()))  # ASGI header names are lower-case
        request_id = _request_id(headers.get(REQUEST_ID_KEY))
        # Servers give each request its own copy of the lifespan state; create it if absent.
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (REQUEST_ID_KEY, request_id.encode("latin-1"))
        status = 500
        stream_route: str | None = None
        holding = False  # an admission slot, until the response starts
        path: str = scope.get("path", "")

        async def front_send(message: Message) -> None:
            nonlocal status, stream_route, holding
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *(h for h in message.get("headers", ()) if h[0].lower() != REQUEST_ID_KEY), id_header
                ]
                if holding:
                    holding = False
                    self.admission.release()  # the work is done; a stream must not hold a slot while it lasts
                stream_route = self.metrics.started(scope, message)
            await send(message)

        try:
            if self.admission.gates(scope, headers.get(b"accept")):
                if not self.admission.try_acquire() and not await self.admission.acquire():
                    # Straight to the server: a refusal must stay cheap when most answers are refusals.
                    status = 503
                    await send_refusal(send, path, _OVERLOADED, request_id, self.surfaces, _RETRY_LATER)
                    return
                holding = True
            if b"content-length" in headers or b"transfer-encoding" in headers:
                try:
                    body, last = await self.bodies.read(path, headers, receive)
                except Refusal as refusal:
                    status = refusal.status
                    await send_refusal(send, path, refusal, request_id, self.surfaces, CLOSE_CONNECTION)
                    return
                except ClientGone:
                    return
                scope[BUFFERED_BODY_KEY] = body
                receive = _replaying(body, last, receive)
            # else no body (RFC 9112 6.3): nothing to bound or wait for
            await self.app(scope, receive, front_send)
        finally:
            if holding:
                self.admission.release()
            self.metrics.finished(scope, status, stream_route, started)


def _replaying(body: bytes, last: Message, receive: Receive) -> Receive:
    """``receive`` that first hands the app the whole body, then goes to the server
    (so ``http.disconnect`` still reaches streaming responses)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {**last, "body": body, "more_body": False}
        return await receive()

    return replay
