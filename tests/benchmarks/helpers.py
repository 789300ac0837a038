"""Test doubles for the load generator: a tiny in-loop HTTP server and request sources."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from benchmarks.client import Endpoint, encode_request


@asynccontextmanager
async def tiny_server(*, delay: float = 0.0, status_every: tuple[int, int] | None = None) -> AsyncIterator[str]:
    """An HTTP/1.1 keep-alive server in this event loop; yields its URL.

    ``delay``: seconds before each answer (one request at a time per connection).
    ``status_every``: (n, status) answers every n-th request with ``status``.
    """
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                if delay:
                    await asyncio.sleep(delay)
                served += 1
                status = 200
                if status_every and served % status_every[0] == 0:
                    status = status_every[1]
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


class PlainSource:
    """GET /ping, always the same bytes."""

    def __init__(self, params: dict[str, Any], *, endpoint: Endpoint, prefix: str, worker: int, workers: int) -> None:
        self.data = encode_request("GET", prefix + "/ping", endpoint.authority)

    def next_request(self) -> bytes:
        return self.data


class BlockingSource(PlainSource):
    """Blocks the client's event loop for ``params["block"]`` seconds per request:
    a client that cannot keep up with its own schedule."""

    def __init__(self, params: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.block = float(params["block"])

    def next_request(self) -> bytes:
        time.sleep(self.block)
        return self.data


ANSWERS: dict[str, list[tuple[bool, int, bytes]]] = {}  # params["key"] -> (same object as sent?, status, body)


class FollowUpSource:
    """A fresh request each time; ``on_answer`` records whether it got back the very object it sent."""

    def __init__(self, params: dict[str, Any], *, endpoint: Endpoint, prefix: str, worker: int, workers: int) -> None:
        self.endpoint, self.prefix = endpoint, prefix
        self.sent: dict[int, bytes] = {}
        self.answers = ANSWERS.setdefault(params["key"], [])
        self.n = 0

    def next_request(self) -> bytes:
        self.n += 1
        data = encode_request("GET", f"{self.prefix}/ping?n={self.n}", self.endpoint.authority)
        self.sent[id(data)] = data
        return data

    def on_answer(self, request: bytes, status: int, body: bytes) -> None:
        self.answers.append((self.sent.pop(id(request), None) is request, status, body))
