"""What one ``POST /v1/events`` costs the server, without HTTP or a load client.

Drives the whole ASGI app (``create_app`` with the demo surfaces on a local
runtime, strict durability, 2 shards, as ``make run`` builds it) in-process: 64
concurrent requests at a time, each a valid event with a fresh idempotency key
for one of ``--users`` users whose tokens were minted through the app first.
Reports CPU microseconds per request (process time, the store's commit thread
included). ``--refused`` measures the admission 503 path instead (every request
refused).

Wall time on a shared VM drifts by a third from one minute to the next, which
buries a 5 % change. Under ``--callgrind`` the script runs itself twice under
valgrind (``--count`` and ``--count`` + 1,000 requests) and prints the
difference per request in *instructions*, which does not drift: the A/B
measure behind the front-door changes of session 4 (benchmarks/README.md).

    python -m benchmarks.request_cost --count 5000
    python -m benchmarks.request_cost --callgrind          # needs valgrind; ~2 min
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

CONCURRENCY = 64
EXTRA_FOR_CALLGRIND = 1000
Asgi = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]],
                Awaitable[None]]


async def request(app: Asgi, method: str, path: str, headers: list[tuple[bytes, bytes]],
                  body: bytes = b"") -> tuple[int, bytes]:
    """One request through the ASGI app: (status, body)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8080), "state": {}}
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError("unreachable")

    status = 0
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def measure(count: int, users: int, refused: bool) -> tuple[int, float]:
    """(requests answered as expected, CPU seconds they took); the demo surfaces need
    ``QUESTLINE_DEMO=1`` in the environment (``main`` sets it)."""
    from questline import surfaces
    from questline.engine import EngineConfig, create_runtime
    from questline.engine.gc_policy import tune_for_serving
    from questline.http import create_app

    served = surfaces.load_surfaces()
    data_dir = tempfile.mkdtemp(prefix="questline-request-cost-")
    try:
        config = EngineConfig(actor_classes=surfaces.actor_classes(served), shards=2, data_dir=data_dir,
                              durability="strict")
        runtime = create_runtime("local", config)
        app = create_app(runtime, extra_routes=surfaces.routes(served), on_startup=surfaces.startup_hooks(served))
        to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await to_app.put({"type": "lifespan.startup"})
        lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                           to_app.get, from_app.put))
        started = await from_app.get()
        if started["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the app did not start: {started}")
        tune_for_serving()
        secret = os.environ.get("QUESTLINE_DEMO_APP_SECRET", "demo-secret").encode()
        tokens = []
        for u in range(users):
            body = b'{"appId":"demo","appSecret":"' + secret + b'","userId":"user-' + str(u).encode() + b'"}'
            status, reply = await request(app, "POST", "/v1/auth/token", [(b"content-type", b"application/json")], body)
            if status != 200:
                raise RuntimeError(f"POST /v1/auth/token answered {status}: {reply[:200]!r}")
            tokens.append(b"Bearer " + msgspec.json.decode(reply)["token"].encode())
        if refused:
            gate = front_door(app).admission
            gate.inflight, gate.max_queue = gate.max_inflight, 0  # every slot taken, no queue: all refused
        expected = 503 if refused else 200
        numbers = itertools.count()
        answered = 0

        async def producer() -> None:
            nonlocal answered
            while (n := next(numbers)) < count:
                u = n % users
                name = b"purchase.completed" if n % 2 else b"app.opened"
                body = (b'{"userId":"user-' + str(u).encode() + b'","name":"' + name
                        + b'","payload":{"amount":12},"timestamp":' + str(int(time.time() * 1000)).encode() + b"}")
                headers = [(b"host", b"bench"), (b"authorization", tokens[u]), (b"content-type", b"application/json"),
                           (b"idempotency-key", b"k" + str(n).encode()), (b"content-length", str(len(body)).encode())]
                status, reply = await request(app, "POST", "/v1/events", headers, body)
                if status != expected:
                    raise RuntimeError(f"POST /v1/events answered {status}: {reply[:200]!r}")
                answered += 1

        cpu0 = time.process_time()
        await asyncio.gather(*(producer() for _ in range(CONCURRENCY)))
        cpu = time.process_time() - cpu0
        await to_app.put({"type": "lifespan.shutdown"})
        await from_app.get()
        await lifespan
        return answered, cpu
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def front_door(app: Any) -> Any:
    """The app's FrontDoorMiddleware instance (the middleware stack is built on the first request)."""
    from questline.http.frontdoor import FrontDoorMiddleware

    layer = app.middleware_stack
    while layer is not None and not isinstance(layer, FrontDoorMiddleware):
        layer = getattr(layer, "app", None)
    if layer is None:
        raise RuntimeError("no FrontDoorMiddleware in the app's middleware stack")
    return layer


def instructions(argv: list[str]) -> int:
    """Instructions executed by ``python -m benchmarks.request_cost argv`` under callgrind."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-m", "benchmarks.request_cost", *argv],
        capture_output=True, text=True, check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.request_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="requests to send (default 5000; 200 with --callgrind)")
    parser.add_argument("--users", type=int, default=None, help="users (tokens) to spread them over (default 2000; 200)")
    parser.add_argument("--refused", action="store_true", help="measure the admission 503 path instead")
    parser.add_argument("--callgrind", action="store_true", help="instructions per request under valgrind")
    args = parser.parse_args(argv)
    os.environ.setdefault("QUESTLINE_DEMO", "1")
    what = "refused (503) POST /v1/events" if args.refused else "POST /v1/events"
    if args.callgrind:
        if shutil.which("valgrind") is None:
            print("request_cost: --callgrind needs valgrind on PATH", file=sys.stderr)
            return 2
        count = args.count if "--count" in (argv or sys.argv) else 200
        users = str(args.users or 200)
        common = ["--users", users, *(["--refused"] if args.refused else [])]
        small = instructions(["--count", str(count), *common])
        large = instructions(["--count", str(count + EXTRA_FOR_CALLGRIND), *common])
        per_request = (large - small) / EXTRA_FOR_CALLGRIND
        print(f"{what}: {per_request:,.0f} instructions per request "
              f"(callgrind: {count:,} requests {small:,}, {count + EXTRA_FOR_CALLGRIND:,} requests {large:,})")
        return 0
    answered, cpu = asyncio.run(measure(args.count, args.users or 2000, args.refused))
    print(f"{what}: {answered:,} requests, {cpu / answered * 1e6:,.0f} us CPU per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
