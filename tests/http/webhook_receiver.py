"""A real webhook receiver on 127.0.0.1 for the Hatched webhook tests.

It runs uvicorn in the test's event loop on a fixed port, so it can be stopped
("receiver down", connections refused) and started again on the same URL, and
answers with whatever status the test sets.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.http.live import free_port

DOC = Path(__file__).resolve().parents[2] / "docs" / "hatched-webhooks.md"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        self.status = 200
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _hook(self, request: Request) -> Response:
        self.received.append(Received(dict(request.headers), await request.body(), time.time()))
        return Response(b"ok", status_code=self.status)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="off", log_level="warning")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            self._server.force_exit = True
            await asyncio.wait_for(self._task, 10)
        self._server = self._task = None

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.headers.get("x-hatched-event") == event_type]

    async def wait_for(self, event_type: str, count: int = 1, limit_s: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + limit_s
        while len(self.of_type(event_type)) < count:
            assert time.monotonic() < deadline, (event_type, count, [r.headers.get("x-hatched-event")
                                                                     for r in self.received])
            await asyncio.sleep(0.02)
        return self.of_type(event_type)


def documented_verifier() -> Any:
    """``verify_hatched_webhook`` exactly as docs/hatched-webhooks.md shows it to receivers."""
    block = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert block, "no python snippet in docs/hatched-webhooks.md"
    namespace: dict[str, Any] = {}
    exec(compile(block.group(1), str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace["verify_hatched_webhook"]
