"""Pre-encoded QuestKit requests for the load generators (no harness imports: cheap to
load in a worker process)."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from benchmarks.client import Endpoint


class EventEncoder:
    """Valid ``POST /v1/events`` requests for a fixed set of users and event templates.

    Each request carries the user's token, a body whose ``userId`` is the token's
    user, the current time as ``timestamp``, and a fresh ``Idempotency-Key``
    header (QuestKit's SDK sends one with every event).
    """

    def __init__(
        self,
        users: list[tuple[str, str]] | list[list[str]],
        templates: list[dict[str, Any]],
        *,
        endpoint: Endpoint,
        prefix: str,
        key_prefix: str,
        path: str = "/v1/events",
    ) -> None:
        if not users or not templates:
            raise ValueError("need at least one user and one event template")
        self.heads = [
            (
                f"POST {prefix}{path} HTTP/1.1\r\nHost: {endpoint.authority}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            ).encode()
            for _, token in users
        ]
        self.user_json = [msgspec.json.encode(uid) for uid, _ in users]
        self.templates = [(msgspec.json.encode(t["name"]), msgspec.json.encode(t["payload"])) for t in templates]
        self.key_prefix = key_prefix.encode()
        self.sent = 0

    def encode(self, user: int, template: int) -> bytes:
        """The next request: user ``user``, template ``template`` (modulo their counts)."""
        n = self.sent
        self.sent = n + 1
        name, payload = self.templates[template % len(self.templates)]
        u = user % len(self.heads)
        body = b"".join((
            b'{"userId":', self.user_json[u], b',"name":', name, b',"payload":', payload,
            b',"timestamp":', str(int(time.time() * 1000)).encode(), b"}",
        ))
        return b"".join((
            self.heads[u], b"Idempotency-Key: ", self.key_prefix, str(n).encode(),
            b"\r\nContent-Length: ", str(len(body)).encode(), b"\r\n\r\n", body,
        ))
