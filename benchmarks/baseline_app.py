"""The baseline: a bare Starlette endpoint that returns a constant body.

Served by uvicorn with the same settings as ``python -m questline serve``
(``loop=auto``, ``http=auto``, no access log), in its own process, so every
scenario's numbers can be read as a fraction of "what this machine, this client
and this uvicorn can do with no application work at all".

Any method and path is answered (the body of a POST is read, like a real
handler must), so the baseline can replay the request shapes of the scenarios.

    python -m benchmarks.baseline_app --port 8099 [--workers N]
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


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.baseline_app --port P [--workers N]``: served like ``questline serve``.

    With ``--workers N`` the same way as ``serve --workers N`` (questline/workers.py): N
    processes, each listening on its own ``SO_REUSEPORT`` socket, so the baseline and the
    server under test spread connections over their workers alike."""
    import argparse
    import signal
    import subprocess
    import sys

    import uvicorn

    from questline.workers import reuseport_socket

    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if args.workers <= 1:
        config = uvicorn.Config(app, host=args.host, port=args.port, loop="auto", http="auto", lifespan="on",
                                access_log=False, log_level="warning", timeout_keep_alive=5)
        uvicorn.Server(config).run(sockets=[reuseport_socket(args.host, args.port)])
        return 0
    placeholder = reuseport_socket(args.host, args.port)  # reserves the port; never listens
    port = placeholder.getsockname()[1]
    children = [
        subprocess.Popen([sys.executable, "-m", "benchmarks.baseline_app", "--host", args.host, "--port", str(port)])
        for _ in range(args.workers)
    ]

    def stop(signum: int, frame: object) -> None:
        for child in children:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    codes = [child.wait() for child in children]
    placeholder.close()
    return max(codes)


if __name__ == "__main__":
    raise SystemExit(main())
