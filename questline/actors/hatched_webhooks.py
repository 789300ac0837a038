"""Hatched outbound webhooks: one routing actor per customer, one delivery actor per config.

``hatched.webhooks`` (key ``{customer}``) knows which configs subscribe to which
event types. The events and customer actors ``tell`` it what happened (a tell
leaves only after their turn commits, so a failed turn emits nothing); it turns
that into webhook events and tells each subscribed config actor to enqueue them.

``hatched.webhook`` (key ``{customer}/{config_id}``) owns one config: its URL,
its signing secrets (sealed with :mod:`questline.secrets_box`, never plaintext),
its delivery log and its pending queue. Deliveries are driven by its alarm, so
retries continue after a restart: an attempt is recorded in the same turn that
makes it, and a crash mid-attempt leaves the delivery pending, to be tried again
(at-least-once; receivers dedupe on the payload ``id`` or ``X-Hatched-Delivery``).
A slow or dead receiver only ever blocks its own config's actor.

Known gap: the hop from the events/customer actor to the routing actor is a
``tell`` (at-most-once): a crash in the milliseconds between that turn's commit
and the tell's delivery loses the webhook. Everything after ``enqueue`` is durable.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpx

from questline import secrets_box
from questline.engine import Actor, Address
from questline.metrics import record_webhook_delivery
from questline.rules.hatched_errors import HatchedError, not_found
from questline.rules.hatched_models import iso_ms
from questline.rules.hatched_webhooks import (
    TEST_EVENT,
    RetryPolicy,
    delivered,
    encode_payload,
    envelope,
    event_from_operation,
    events_from_ingest,
    payload_id,
    signature_header,
)

MAX_LOG = 1000  # deliveries kept per config (pending ones are never dropped)
BATCH = 16  # attempts per alarm turn, made concurrently; more due -> another turn right after
USER_AGENT = "questline-hatched-webhooks/1"


def webhooks_address(customer_id: str) -> Address:
    return Address("hatched.webhooks", customer_id)


def webhook_address(customer_id: str, config_id: str) -> Address:
    return Address("hatched.webhook", f"{customer_id}/{config_id}")


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class DeliverySettings:
    """From the environment of the process hosting the actors (read on each use)."""

    policy: RetryPolicy
    timeout_ms: int

    @classmethod
    def from_env(cls) -> DeliverySettings:
        try:
            policy = RetryPolicy(base_ms=_env_int("HATCHED_WEBHOOK_BACKOFF_BASE_MS", 1_000),
                                 cap_ms=_env_int("HATCHED_WEBHOOK_BACKOFF_CAP_MS", 600_000),
                                 max_attempts=_env_int("HATCHED_WEBHOOK_MAX_ATTEMPTS", 16))
        except ValueError:  # an inconsistent setting: the defaults rather than no retries at all
            policy = RetryPolicy()
        return cls(policy=policy, timeout_ms=max(100, _env_int("HATCHED_WEBHOOK_TIMEOUT_MS", 5_000)))


@functools.cache
def _tls() -> ssl.SSLContext:
    """Built once per process: loading the CA bundle for every turn would cost milliseconds."""
    return httpx.create_ssl_context()


# -- routing (one per customer) ---------------------------------------------------------
class WebhooksActor(Actor):
    """A customer's webhook configs and their subscriptions; fans events out to them."""

    kind = "hatched.webhooks"

    def _configs(self) -> dict[str, Any]:
        return self.storage.get("configs", {})

    def ids(self) -> list[str]:
        """Config ids, oldest first."""
        configs = self._configs()
        return sorted(configs, key=lambda i: (configs[i]["created_at"], i))

    async def create(self, config_id: str, record: dict[str, Any], max_configs: int) -> dict[str, Any]:
        configs = self._configs()
        if len(configs) >= max_configs:
            raise HatchedError(409, "webhook_config_limit",
                               f"A customer may have at most {max_configs} webhook configs; delete one first.",
                               {"max": max_configs})
        view = await self.call(webhook_address(self.key, config_id), "init", record)
        configs[config_id] = {"events": view["events"], "enabled": view["enabled"], "created_at": self.now()}
        self.storage.put("configs", configs)
        return view

    async def update(self, config_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        configs = self._configs()
        if config_id not in configs:
            raise not_found("webhook_config", config_id)
        view = await self.call(webhook_address(self.key, config_id), "update", changes)
        configs[config_id].update(events=view["events"], enabled=view["enabled"])
        self.storage.put("configs", configs)
        return view

    async def delete(self, config_id: str) -> dict[str, Any]:
        configs = self._configs()
        if config_id not in configs:
            raise not_found("webhook_config", config_id)
        await self.call(webhook_address(self.key, config_id), "remove")
        del configs[config_id]
        self.storage.put("configs", configs)
        return {"id": config_id, "deleted": True}

    def _subscribers(self, event_type: str) -> list[str]:
        return [i for i, c in self._configs().items() if c["enabled"] and event_type in c["events"]]

    def _fan_out(self, items: list[tuple[str, str, dict[str, Any]]], request_id: str | None) -> None:
        created = iso_ms(self.now())
        per_config: dict[str, list[dict[str, Any]]] = {}
        for event_type, ident, data in items:
            payload = envelope(ident, event_type, self.key, created, request_id, data)
            for config_id in self._subscribers(event_type):
                per_config.setdefault(config_id, []).append(payload)
        for config_id, payloads in per_config.items():
            self.tell(webhook_address(self.key, config_id), "enqueue", payloads)

    def on_event(self, record: dict[str, Any]) -> None:
        """An event was ingested (told by the events actor after its turn committed)."""
        if not self._configs():
            return
        items = []
        for item in events_from_ingest(record):
            if item[0] == "evolution.ready":
                # The rules say "ready" on every event while a buddy stays ready: announce each stage once.
                if not self._subscribers("evolution.ready"):
                    continue
                key = f"evo:{item[2]['buddy_id']}"
                if self.storage.get(key) == item[2]["next_stage"]:
                    continue
                self.storage.put(key, item[2]["next_stage"])
            items.append(item)
        self._fan_out(items, record.get("request_id"))

    def on_operation(self, op: dict[str, Any], request_id: str | None = None) -> None:
        """An operation finished (told by the customer actor); cancellations are not announced."""
        item = event_from_operation(op)
        if item is not None and self._configs():
            self._fan_out([item], request_id)


# -- delivery (one per config) ----------------------------------------------------------
class WebhookActor(Actor):
    """One webhook config: secrets, delivery log, pending queue, retries by alarm."""

    kind = "hatched.webhook"

    @property
    def _customer_id(self) -> str:
        return self.key.rpartition("/")[0]

    @property
    def _config_id(self) -> str:
        return self.key.rpartition("/")[2]

    def _config(self) -> dict[str, Any]:
        config = self.storage.get("config")
        if config is None:
            raise not_found("webhook_config", self._config_id)
        return config

    def _live_secrets(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """Newest first; a rotated-out secret lives until its ``expires_at``."""
        now = self.now()
        return [s for s in config["secrets"] if s["expires_at"] is None or s["expires_at"] > now]

    def _view(self, config: dict[str, Any]) -> dict[str, Any]:
        live = self._live_secrets(config)
        previous = [s for s in live if s["expires_at"] is not None]
        return {
            "id": config["id"],
            "url": config["url"],
            "events": config["events"],
            "enabled": config["enabled"],
            "description": config["description"],
            "secret_created_at": iso_ms(live[0]["created_at"]),
            "previous_secret_expires_at": iso_ms(previous[0]["expires_at"]) if previous else None,
            "pending_deliveries": len(self.storage.get("pending", [])),
            "created_at": iso_ms(config["created_at"]),
            "updated_at": iso_ms(config["updated_at"]),
        }

    # -- config ---------------------------------------------------------------------
    def init(self, record: dict[str, Any]) -> dict[str, Any]:
        """Create once (``record['sealed_secret']`` is already sealed); a retry returns what exists."""
        existing = self.storage.get("config")
        if existing is not None:
            return self._view(existing)
        now = self.now()
        config = {"id": self._config_id, "url": record["url"], "events": list(record["events"]),
                  "enabled": record["enabled"], "description": record["description"],
                  "secrets": [{"sealed": record["sealed_secret"], "created_at": now, "expires_at": None}],
                  "created_at": now, "updated_at": now}
        self.storage.put("config", config)
        return self._view(config)

    def get(self) -> dict[str, Any]:
        return self._view(self._config())

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        config = self._config()
        for field in ("url", "events", "enabled", "description"):
            if field in changes:
                config[field] = changes[field]
        config["updated_at"] = self.now()
        self.storage.put("config", config)
        return self._view(config)

    def remove(self) -> None:
        """Forget the config, its secrets and its log; pending deliveries are dropped."""
        self._config()
        for key in self.storage.keys():
            self.storage.delete(key)
        self.delete_alarm()

    def rotate(self, sealed_secret: str, overlap_ms: int) -> dict[str, Any]:
        """The new secret signs from now on; the current one keeps signing for ``overlap_ms``.

        A secret already rotated out is dropped at once (at most two sign at a time).
        """
        config = self._config()
        now = self.now()
        current = next(s for s in config["secrets"] if s["expires_at"] is None)
        kept = [{**current, "expires_at": now + overlap_ms}] if overlap_ms > 0 else []
        config["secrets"] = [{"sealed": sealed_secret, "created_at": now, "expires_at": None}, *kept]
        config["updated_at"] = now
        self.storage.put("config", config)
        return self._view(config)

    # -- the log --------------------------------------------------------------------
    def _delivery(self, seq: int) -> dict[str, Any] | None:
        return self.storage.get(f"d:{seq:012d}")

    def _delivery_view(self, d: dict[str, Any]) -> dict[str, Any]:
        last = d["attempts"][-1] if d["attempts"] else None
        return {
            "id": d["id"],
            "webhook_config_id": self._config_id,
            "event_type": d["payload"]["type"],
            "payload_id": d["payload"]["id"],
            "status": d["status"],
            "attempt_count": len(d["attempts"]),
            "last_status_code": last["status_code"] if last else None,
            "last_error": last["error"] if last else None,
            "next_attempt_at": iso_ms(d["next_attempt_at"]) if d["status"] == "pending" else None,
            "created_at": iso_ms(d["created_at"]),
            "delivered_at": iso_ms(d["delivered_at"]) if d["delivered_at"] else None,
            "request_id": d["payload"]["request_id"],
            "redelivery_of": d["redelivery_of"],
            "attempts": [{**a, "attempted_at": iso_ms(a["attempted_at"])} for a in d["attempts"]],
            "payload": d["payload"],
        }

    def deliveries(self, before: int | None, limit: int, status: str | None) -> dict[str, Any]:
        """Newest first, ``limit`` per page; ``next`` is the seq to pass as ``before``."""
        self._config()
        top = self.storage.get("seq", 0)
        start = top if before is None else min(top, before - 1)
        rows: list[dict[str, Any]] = []
        seq = start
        floor = max(0, top - MAX_LOG)
        while seq > floor and len(rows) <= limit:
            d = self._delivery(seq)
            if d is not None and (status is None or d["status"] == status):
                rows.append(d)
            seq -= 1
        more = len(rows) > limit
        rows = rows[:limit]
        return {"data": [self._delivery_view(d) for d in rows], "next": rows[-1]["seq"] if more else None}

    def get_delivery(self, delivery_id: str) -> dict[str, Any]:
        self._config()
        seq = self.storage.get(f"did:{delivery_id}")
        d = None if seq is None else self._delivery(seq)
        if d is None:
            raise not_found("webhook_delivery", delivery_id)
        return self._delivery_view(d)

    def _add(self, payload: dict[str, Any], redelivery_of: str | None = None) -> dict[str, Any]:
        seq = self.storage.get("seq", 0) + 1
        now = self.now()
        ident = f"whd_{payload_id(self.key, str(seq), str(now))[4:20]}"
        d = {"id": ident, "seq": seq, "payload": payload, "status": "pending", "attempts": [],
             "next_attempt_at": now, "created_at": now, "delivered_at": None, "redelivery_of": redelivery_of}
        self.storage.put("seq", seq)
        self.storage.put(f"d:{seq:012d}", d)
        self.storage.put(f"did:{ident}", seq)
        self.storage.put("pending", [*self.storage.get("pending", []), [seq, now]])
        self._prune(seq - MAX_LOG)
        return d

    def _prune(self, seq: int) -> None:
        """Drop the delivery that just fell out of the log window, unless it is still pending."""
        if seq < 1:
            return
        old = self._delivery(seq)
        if old is not None and old["status"] != "pending":
            self.storage.delete(f"d:{seq:012d}")
            self.storage.delete(f"did:{old['id']}")

    def _arm(self, at: int) -> None:
        current = self.get_alarm()
        if current is None or at < current:
            self.set_alarm(at)

    def enqueue(self, payloads: list[dict[str, Any]]) -> None:
        """New webhook events for this config (told by the routing actor); sent by the alarm."""
        if self.storage.get("config") is None:
            return  # deleted meanwhile
        for payload in payloads:
            self._add(payload)
        self._arm(self.now())

    async def send_test(self, request_id: str | None) -> dict[str, Any]:
        """Create a ``webhook.test`` delivery and attempt it now (retried like any other if it fails)."""
        config = self._config()
        now = self.now()
        payload = envelope(payload_id(TEST_EVENT, self.key, str(now), os.urandom(8).hex()), TEST_EVENT,
                           self._customer_id, iso_ms(now), request_id,
                           {"webhook_config_id": config["id"], "message": "This is a test webhook from Hatched."})
        return await self._add_and_attempt(config, payload, None)

    async def redeliver(self, delivery_id: str) -> dict[str, Any]:
        """A new delivery of the same payload (same payload id and request id), attempted now."""
        config = self._config()
        seq = self.storage.get(f"did:{delivery_id}")
        original = None if seq is None else self._delivery(seq)
        if original is None:
            raise not_found("webhook_delivery", delivery_id)
        return await self._add_and_attempt(config, original["payload"], delivery_id)

    async def _add_and_attempt(self, config: dict[str, Any], payload: dict[str, Any],
                               redelivery_of: str | None) -> dict[str, Any]:
        d = self._add(payload, redelivery_of)
        settings = DeliverySettings.from_env()
        async with self._client(settings) as client:
            await self._attempt(client, config, d, settings)
        self._settle([d])
        return self._delivery_view(d)

    # -- sending ----------------------------------------------------------------------
    @staticmethod
    def _client(settings: DeliverySettings) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=settings.timeout_ms / 1000, verify=_tls(), follow_redirects=False,
                                 trust_env=False, headers={"User-Agent": USER_AGENT})

    async def _attempt(self, client: httpx.AsyncClient, config: dict[str, Any], d: dict[str, Any],
                       settings: DeliverySettings) -> None:
        """One POST; the outcome is appended to ``d`` (never raises)."""
        now = self.now()
        body = encode_payload(d["payload"])
        status_code: int | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            secrets = [secrets_box.unseal(s["sealed"]) for s in self._live_secrets(config)]
            timestamp = now // 1000
            headers = {
                "Content-Type": "application/json",
                "X-Hatched-Event": d["payload"]["type"],
                "X-Hatched-Delivery": d["id"],
                "X-Hatched-Timestamp": str(timestamp),
                "X-Hatched-Signature": signature_header(secrets, timestamp, body),
                "X-Hatched-Attempt": str(len(d["attempts"]) + 1),
            }
            if d["payload"]["request_id"]:
                headers["X-Request-Id"] = d["payload"]["request_id"]
            async with client.stream("POST", config["url"], content=body, headers=headers) as response:
                status_code = response.status_code
                async for _ in response.aiter_bytes():
                    break  # the body does not matter; do not read a huge one
            if not delivered(status_code):
                error = f"receiver answered {status_code}"
        except secrets_box.SecretsBoxError as exc:
            error = f"cannot open the signing secret: {exc}"
        except httpx.TimeoutException:
            error = f"timed out after {settings.timeout_ms} ms"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        d["attempts"].append({"attempt": len(d["attempts"]) + 1, "attempted_at": now, "status_code": status_code,
                              "duration_ms": duration_ms, "error": error})
        if delivered(status_code):
            d.update(status="delivered", delivered_at=self.now())
        else:
            at = settings.policy.next_attempt_at(len(d["attempts"]), self.now(), random.random())
            if at is None:
                d["status"] = "failed"
            else:
                d["next_attempt_at"] = at
        record_webhook_delivery("retrying" if d["status"] == "pending" else d["status"])

    def _settle(self, attempted: list[dict[str, Any]], missing: frozenset[int] = frozenset()) -> None:
        """Store attempted deliveries, update the pending queue and the alarm."""
        by_seq = {d["seq"]: d for d in attempted}
        for d in attempted:
            self.storage.put(f"d:{d['seq']:012d}", d)
        pending: list[list[int]] = []
        for seq, at in self.storage.get("pending", []):
            d = by_seq.get(seq)
            if seq in missing:
                continue
            if d is None:
                pending.append([seq, at])
            elif d["status"] == "pending":
                pending.append([seq, d["next_attempt_at"]])
        self.storage.put("pending", pending)
        if pending:
            self.set_alarm(min(at for _, at in pending))
        else:
            self.delete_alarm()

    async def on_alarm(self) -> None:
        """Attempt up to ``BATCH`` due deliveries concurrently, oldest first."""
        config = self.storage.get("config")
        if config is None:
            return
        now = self.now()
        due = [seq for seq, at in self.storage.get("pending", []) if at <= now][:BATCH]
        found = {seq: self._delivery(seq) for seq in due}
        deliveries = [d for d in found.values() if d is not None]
        if deliveries:
            settings = DeliverySettings.from_env()
            async with self._client(settings) as client:
                await asyncio.gather(*(self._attempt(client, config, d, settings) for d in deliveries))
        self._settle(deliveries, frozenset(seq for seq, d in found.items() if d is None))
