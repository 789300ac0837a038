"""The baseline: a bare Starlette endpoint that returns a constant body.

Served by uvicorn with the same settings as ``python -m questline serve``
(``loop=auto``, ``http=auto``, no access log), in its own process, so every
scenario's numbers can be read as a fraction of "what this machine, this client
and this uvicorn can do with no application work at all".

Any method and path is answered (the body of a POST is read, like a real
handler must), so the baseline can replay the request shapes of the scenarios.

    python -m uvicorn benchmarks.baseline_app:app --port 8099 --no-access-log
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# About the size of a QuestKit ``POST /v1/events`` reply.
BODY = b'{"accepted":true,"eventId":"evt_00000000000000000000000000","missionsUpdated":["daily-login"]}'
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]


async def constant(request: Request) -> Response:
    if request.method != "GET":
        await request.body()
    return Response(BODY, media_type="application/json")


async def readyz(request: Request) -> Response:
    return Response(b'{"status":"ready"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/readyz", readyz, methods=["GET"]),
        Route("/{path:path}", constant, methods=METHODS),
    ]
)
