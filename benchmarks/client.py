"""A minimal HTTP/1.1 keep-alive client for load generation.

asyncio ``Protocol`` + ``httptools`` (the C response parser uvicorn itself
depends on). Requests are pre-encoded bytes; one request in flight per
connection (no pipelining), the connection is reused while the server keeps it
alive and re-opened when it does not.

Why not httpx or aiohttp: on this 2-core machine the client shares the CPU
with the server, so every microsecond the client spends per request is taken
from the server it measures. Measured against ``benchmarks/baseline_app.py``
(POST with a JSON body, closed loop, one client process on uvloop, 3 s each):

    client        64 connections            8 connections
    this one      ~9,500 req/s, 34 us CPU/req   ~8,000 req/s, 40 us CPU/req
    aiohttp 3.14  ~4,300 req/s, 164 us CPU/req  ~3,700 req/s, 159 us CPU/req
    httpx 0.28       ~100 req/s, 9 ms CPU/req      ~640 req/s, 1.4 ms CPU/req

(the server was the limit for this client, at one core). httpx's pool is
pathological under many concurrent requests on one client; aiohttp costs the
client ~5x more CPU per request than the server spends answering it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httptools


class HTTPError(Exception):
    """The connection failed or the response could not be parsed."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"


def parse_url(url: str) -> tuple[Endpoint, str]:
    """``http://host:port/prefix`` -> (endpoint, path prefix without a trailing slash)."""
    parsed = httptools.parse_url(url.encode())
    if parsed.schema not in (b"http", None):
        raise ValueError(f"only http:// URLs are supported, got {url!r}")
    host = (parsed.host or b"127.0.0.1").decode()
    port = parsed.port or 80
    prefix = (parsed.path or b"").decode().rstrip("/")
    return Endpoint(host, port), prefix


def encode_request(
    method: str,
    path: str,
    authority: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> bytes:
    """Encode one HTTP/1.1 request (keep-alive; ``Content-Length`` when there is a body)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {authority}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


class _ResponseProtocol(asyncio.Protocol):
    """Collects one response at a time; the parser keeps state across keep-alive responses."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.chunks: list[bytes] = []
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.keep_alive = True
        self.lost = False

    # -- asyncio.Protocol -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HTTPError(f"malformed response: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(HTTPError(f"connection closed by the server ({exc or 'EOF'})"))

    # -- httptools callbacks ------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        if self.headers is not None:
            self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        body = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        self.chunks = []
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class Connection:
    """One keep-alive connection; ``request`` sends pre-encoded bytes and returns (status, body)."""

    def __init__(self, endpoint: Endpoint, *, record_headers: bool = False) -> None:
        self.endpoint = endpoint
        self.record_headers = record_headers
        self._proto: _ResponseProtocol | None = None
        self.connects = 0

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(_ResponseProtocol, self.endpoint.host, self.endpoint.port)
        self._proto = proto
        self.connects += 1

    @property
    def last_headers(self) -> list[tuple[bytes, bytes]]:
        return (self._proto.headers or []) if self._proto is not None else []

    async def request(self, data: bytes) -> tuple[int, bytes]:
        proto = self._proto
        if proto is None or proto.lost or not proto.keep_alive:
            if proto is not None and proto.transport is not None:
                proto.transport.close()
            await self.connect()
            proto = self._proto
            assert proto is not None
        waiter: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        proto.waiter = waiter
        if self.record_headers:
            proto.headers = []
        assert proto.transport is not None
        proto.transport.write(data)
        try:
            return await waiter
        except BaseException:
            # A cancelled or failed request leaves the stream in an unknown state.
            proto.waiter = None
            if proto.transport is not None:
                proto.transport.close()
            proto.lost = True
            raise

    def close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None


async def fetch(
    url_endpoint: Endpoint, method: str, path: str, *, headers: dict[str, str] | None = None,
    body: bytes | None = None, time_limit: float = 10.0,
) -> tuple[int, bytes]:
    """One request on a fresh connection (setup steps, probes)."""
    conn = Connection(url_endpoint)
    try:
        async with asyncio.timeout(time_limit):
            return await conn.request(
                encode_request(method, path, url_endpoint.authority, headers=headers, body=body)
            )
    finally:
        conn.close()
