"""Set-up steps and request sources shared by the ``questmaster``, ``minigame`` and ``hatched`` scenarios.

Set-up (tokens, customers, buddies) goes through each surface's own HTTP
contract, concurrently, with a progress bar, and is never measured. A route
the server does not serve (404/405) or a step that fails becomes
:class:`ScenarioUnavailable` with the answer, never a number.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from benchmarks.client import Connection, Endpoint, HTTPError, encode_request, parse_url
from benchmarks.harness import Harness, ScenarioUnavailable, Target

SETUP_CONNECTIONS = 32
SETUP_RETRIES = 30  # a rate-limited (429) set-up step is retried after 1 s, this many times
T = TypeVar("T")


class Api:
    """One keep-alive connection for set-up requests, answers decoded as JSON."""

    def __init__(self, endpoint: Endpoint, prefix: str, surface: str) -> None:
        self.endpoint = endpoint
        self.prefix = prefix
        self.surface = surface
        self.conn = Connection(endpoint)

    async def call(
        self, method: str, path: str, body: Any = None, *, token: str | None = None, expect: tuple[int, ...] = (200,)
    ) -> Any:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        raw_body = msgspec.json.encode(body) if body is not None else None
        request = encode_request(method, self.prefix + path, self.endpoint.authority, headers=headers, body=raw_body)
        for _ in range(SETUP_RETRIES):
            try:
                status, raw = await asyncio.wait_for(self.conn.request(request), 30)
            except (HTTPError, OSError, TimeoutError) as exc:
                raise ScenarioUnavailable(f"{method} {path} failed: {exc}") from None
            if status != 429 or 429 in expect:
                break
            await asyncio.sleep(1.0)  # set-up is not measured: back off like a polite client
        if status in (404, 405) and status not in expect:
            raise ScenarioUnavailable(
                f"server has no {method} {path} ({status}): {self.surface} surface not available"
            )
        if status not in expect:
            snippet = raw[:200].decode("utf-8", "replace")
            raise ScenarioUnavailable(f"set-up: {method} {path} answered {status}: {snippet}")
        try:
            return msgspec.json.decode(raw) if raw else None
        except msgspec.DecodeError:
            raise ScenarioUnavailable(f"set-up: {method} {path} answered non-JSON: {raw[:200]!r}") from None

    def close(self) -> None:
        self.conn.close()


def concurrently(
    h: Harness, target: Target, surface: str, desc: str, count: int, step: Callable[[Api, int], Awaitable[T]],
) -> list[T]:
    """``step(api, i)`` for i in range(count), on up to 32 connections; results in order."""
    assert target.url is not None
    endpoint, prefix = parse_url(target.url)
    out: list[T | None] = [None] * count
    bar = h.bar(desc, count, unit=" steps")
    if bar.disable:
        h.note(f"{desc} ...")

    async def main() -> None:
        todo = list(reversed(range(count)))

        async def worker() -> None:
            api = Api(endpoint, prefix, surface)
            try:
                while todo:
                    i = todo.pop()
                    out[i] = await step(api, i)
                    bar.update(1)
            finally:
                api.close()

        await asyncio.gather(*(worker() for _ in range(min(SETUP_CONNECTIONS, count))))

    try:
        asyncio.run(main())
    finally:
        bar.close()
    return out  # type: ignore[return-value]


def one(h: Harness, target: Target, surface: str, step: Callable[[Api], Awaitable[T]]) -> T:
    """A single set-up step (on a connection of its own)."""
    return concurrently(h, target, surface, f"{surface} set-up", 1, lambda api, _: step(api))[0]


class GetSource:
    """Pre-encoded ``GET`` requests (``params["requests"]``: [(path, bearer token)]), round-robin
    over this worker's share."""

    def __init__(self, params: dict[str, Any], *, endpoint: Endpoint, prefix: str, worker: int, workers: int) -> None:
        mine = params["requests"][worker::workers]
        if not mine:
            raise ValueError("more load-generator processes than users")
        self.requests = [
            encode_request("GET", prefix + path, endpoint.authority, headers={"Authorization": f"Bearer {token}"})
            for path, token in mine
        ]
        self.i = 0

    def next_request(self) -> bytes:
        self.i += 1
        return self.requests[self.i % len(self.requests)]


def post_json(endpoint: Endpoint, path: str, token: str, body: bytes, extra: str = "") -> bytes:
    """One encoded JSON ``POST`` (cheaper than :func:`encode_request` in a hot loop)."""
    return b"".join((
        f"POST {path} HTTP/1.1\r\nHost: {endpoint.authority}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode(),
        body,
    ))
