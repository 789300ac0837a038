"""Hatched outbound webhooks, the pure part: event types, payloads, signatures, backoff.

No I/O here: the actors decide *when* to send and record what happened; this
module decides *what* a delivery looks like and *how long* to wait before the
next attempt, so both are unit-tested without a network.

Signature scheme (documented for receivers in ``docs/hatched-webhooks.md``):
``X-Hatched-Signature: v1=<hex>[,v1=<hex>]`` where each hex is
``HMAC-SHA256(secret, f"{timestamp}.{raw_body}")`` and ``timestamp`` is the Unix
seconds sent in ``X-Hatched-Timestamp``. During a secret rotation's overlap window
the header carries one signature per live secret (newest first), so a receiver
holding either secret keeps verifying.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

WebhookEventType = Literal[
    "coins.earned",
    "badge.awarded",
    "evolution.ready",
    "operation.completed",
    "operation.failed",
    "event.processed",
]
EVENT_TYPES: tuple[str, ...] = WebhookEventType.__args__  # type: ignore[attr-defined]
TEST_EVENT = "webhook.test"  # sent by POST /webhook-configs/:id/test whatever the subscription

SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300


# -- signatures --------------------------------------------------------------------
def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under ``secret``."""
    message = str(int(timestamp)).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """``v1=<hex>`` per live secret, newest first, comma separated."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    return ",".join(f"{SIGNATURE_VERSION}={sign(s, timestamp, body)}" for s in secrets)


def parse_signatures(header: str) -> list[str]:
    """The ``v1`` hex digests in a signature header (other versions ignored)."""
    out: list[str] = []
    for part in header.split(","):
        version, _, digest = part.strip().partition("=")
        if version == SIGNATURE_VERSION and digest:
            out.append(digest)
    return out


def verify(secret: str, header: str, timestamp: str, body: bytes, now_s: float,
           tolerance_s: int = DEFAULT_TOLERANCE_S) -> bool:
    """What a receiver does: fresh timestamp and one matching signature (constant-time)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now_s - ts) > tolerance_s:
        return False
    expected = sign(secret, ts, body)
    return any(hmac.compare_digest(expected, digest) for digest in parse_signatures(header))


# -- backoff -------------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: the n-th retry waits ``min(base * 2**(n-1), cap)`` plus up to
    ``jitter`` of that again (jitter only lengthens a wait, so ``min_span_ms`` is a floor)."""

    base_ms: int = 1_000
    cap_ms: int = 600_000
    max_attempts: int = 16
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.base_ms < 1 or self.cap_ms < self.base_ms or self.max_attempts < 1 or not 0 <= self.jitter <= 1:
            raise ValueError(f"invalid retry policy {self}")

    def nominal_delay_ms(self, retry: int) -> int:
        """Wait before retry number ``retry`` (1 = the first retry), without jitter."""
        if retry < 1:
            raise ValueError("retries are numbered from 1")
        # 2**60 would overflow nothing in Python, but keep the exponent small anyway.
        return min(self.base_ms * 2 ** min(retry - 1, 40), self.cap_ms)

    def delay_ms(self, retry: int, rand: float) -> int:
        """The jittered wait; ``rand`` in [0, 1) comes from the caller (testable)."""
        nominal = self.nominal_delay_ms(retry)
        return nominal + int(nominal * self.jitter * rand)

    def min_span_ms(self) -> int:
        """The shortest time between the first and the last attempt."""
        return sum(self.nominal_delay_ms(n) for n in range(1, self.max_attempts))

    def next_attempt_at(self, attempts_made: int, now_ms: int, rand: float) -> int | None:
        """When to try again after ``attempts_made`` failed attempts; None = give up."""
        if attempts_made >= self.max_attempts:
            return None
        return now_ms + self.delay_ms(attempts_made, rand)


def delivered(status_code: int | None) -> bool:
    """2xx is delivered; any other status, a timeout or a connection error is retried."""
    return status_code is not None and 200 <= status_code < 300


# -- configs ---------------------------------------------------------------------------
def url_problem(url: str) -> str | None:
    """Why ``url`` cannot receive webhooks, or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "property url must be a valid URL"
    if parts.scheme not in ("http", "https"):
        return "property url must be an http or https URL"
    if not parts.hostname:
        return "property url must include a host"
    if parts.username or parts.password:
        return "property url must not carry credentials"
    if port == 0:
        return "property url has an invalid port"
    if any(c.isspace() for c in url):
        return "property url must not contain whitespace"
    return None


def events_problem(events: Iterable[str]) -> str | None:
    seen: set[str] = set()
    for name in events:
        if name in seen:
            return f"property events must not repeat {name}"
        seen.add(name)
    return None


# -- payloads ----------------------------------------------------------------------
def payload_id(*parts: str) -> str:
    """Stable per logical event (receivers dedupe on it; redeliveries keep it)."""
    return "whe_" + hashlib.blake2b("/".join(parts).encode(), digest_size=12).hexdigest()


def envelope(ident: str, event_type: str, customer_id: str, created_at: str, request_id: str | None,
             data: dict[str, Any]) -> dict[str, Any]:
    return {"id": ident, "type": event_type, "created_at": created_at, "customer_id": customer_id,
            "request_id": request_id, "data": data}


def encode_payload(payload: dict[str, Any]) -> bytes:
    """The exact bytes signed and sent (compact, key order kept)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def events_from_ingest(record: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(type, stable id, data)`` for each webhook an ingested event causes.

    ``record`` is the events actor's stored record: the event plus per-buddy
    results. Coins and badges are per buddy; ``evolution.ready`` is reported per
    buddy and target stage (the caller remembers what it announced, since the
    rules report "ready" on every event while a buddy stays ready).
    """
    event_id, user_id = record["event_id"], record["user_id"]
    out: list[tuple[str, str, dict[str, Any]]] = []
    base = {"event_id": event_id, "user_id": user_id, "event_type": record["type"]}
    for result in record.get("buddies", []):
        effects = result.get("effects")
        if not effects:
            continue
        buddy_id = result["buddy_id"]
        if effects.get("coins", 0) > 0:
            out.append(("coins.earned", payload_id("coins.earned", event_id, buddy_id),
                        {**base, "buddy_id": buddy_id, "amount": effects["coins"]}))
        for badge in effects.get("badges_awarded", []):
            out.append(("badge.awarded", payload_id("badge.awarded", event_id, buddy_id, badge),
                        {**base, "buddy_id": buddy_id, "badge_key": badge}))
        readiness = result.get("evolution") or {}
        if effects.get("evolution_ready") and readiness.get("next_stage") is not None:
            stage = int(readiness["next_stage"])
            out.append(("evolution.ready", payload_id("evolution.ready", buddy_id, str(stage)),
                        {**base, "buddy_id": buddy_id, "current_stage": readiness.get("current_stage"),
                         "next_stage": stage}))
    out.append(("event.processed", payload_id("event.processed", event_id),
                {**base, "effects": record.get("effects"), "buddy_ids": [r["buddy_id"] for r in
                                                                         record.get("buddies", [])]}))
    return out


def event_from_operation(op: dict[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
    """``operation.completed`` / ``operation.failed`` for a finished operation view."""
    status = op.get("status")
    if status not in ("completed", "failed"):
        return None
    event_type = f"operation.{status}"
    return event_type, payload_id(event_type, op["operation_id"]), dict(op)
