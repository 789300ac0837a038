"""Hatched event ingestion: the per-user buddy index and the deduplicating event log.

``hatched.user`` (``{customer}/{user_id}``) lists a user's buddies; the customer
actor adds to it at hatch, so ingesting an event never touches the customer
actor. ``hatched.events`` (``{customer}/{partition}``) owns the event ids that
hash to its partition: ``(customer, event_id)`` is unique because exactly one
actor decides it, one turn at a time. It stores each event with the effects it
produced per buddy and why nothing happened when nothing did; a resend returns
that record untouched. Reads that span a customer's events fan out over the
``EVENT_PARTITIONS`` partitions.

Quota: a new event (never a resend) takes one unit of the customer's monthly
quota from :class:`~questline.actors.hatched_quota.QuotaActor` before any buddy
sees it, in parallel with the buddy lookup (so the hot path gets no longer); past
the quota it is refused with 402 ``event_quota_exceeded`` and not recorded, and a
unit taken for an event that then fails is given back.

Retention: each partition keeps events in full for ``retention_ms`` after receipt
(``GET /events`` and ``GET /events/:id`` stop showing them then), and after that a
small tombstone (ids, times and the effects, no properties) until ``dedupe_ms``,
so a resend stays a no-op returning the original effects for that long; after it
the id is forgotten. An alarm on the partition does the pruning, oldest first
(``seq`` order is receipt order), in bounded turns. Both horizons come with each
ingested event from the front door's settings and are kept, so alarms need no
configuration of their own.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from questline.actors.hatched_buddy import buddy_address
from questline.actors.hatched_quota import quota_address
from questline.actors.hatched_webhooks import webhooks_address
from questline.engine import Actor, Address
from questline.rules.hatched_errors import HatchedError, not_found
from questline.rules.hatched_models import iso_ms

# Fixed forever: an event id's partition must never move, or a resend after a
# change would land on an actor that has not seen it and reward twice.
EVENT_PARTITIONS = 16
DAY_MS = 86_400_000
ACTIVITY_RETENTION_DAYS = 90
DEFAULT_RETENTION_MS = 90 * DAY_MS
DEFAULT_DEDUPE_MS = 400 * DAY_MS
PRUNE_BATCH = 2_000  # records per alarm turn, so pruning a backlog never blocks ingestion for long
# What a pruned event keeps, so a resend still answers with the original outcome.
_TOMBSTONE_FIELDS = ("event_id", "user_id", "type", "buddy_id", "occurred_at", "received_at", "timezone",
                     "effects", "seq")


def user_address(customer_id: str, user_id: str) -> Address:
    return Address("hatched.user", f"{customer_id}/{user_id}")


def event_partition(event_id: str) -> int:
    """Stable across processes (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big") % EVENT_PARTITIONS


def events_address(customer_id: str, partition: int) -> Address:
    return Address("hatched.events", f"{customer_id}/{partition}")


def event_address(customer_id: str, event_id: str) -> Address:
    return events_address(customer_id, event_partition(event_id))


class UserActor(Actor):
    """One end user of one customer: which buddies their events feed."""

    kind = "hatched.user"

    def add_buddy(self, buddy_id: str) -> None:
        """Idempotent: a hatch retried after a crash adds nothing twice."""
        ids: list[str] = self.storage.get("buddy_ids", [])
        if buddy_id not in ids:
            self.storage.put("buddy_ids", [*ids, buddy_id])

    def buddy_ids(self) -> list[str]:
        return self.storage.get("buddy_ids", [])


def _empty_effects() -> dict[str, Any]:
    return {"coins": 0, "badges_awarded": [], "tokens": [], "skills": [], "streaks": [], "evolution_ready": False}


def aggregate_effects(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The contract's single ``effects`` object over every buddy the event fed."""
    total = _empty_effects()
    for result in results:
        effects = result["effects"]
        if effects is None:
            continue
        total["coins"] += effects["coins"]
        total["badges_awarded"] += [b for b in effects["badges_awarded"] if b not in total["badges_awarded"]]
        total["tokens"] += [{**t, "buddy_id": result["buddy_id"]} for t in effects["tokens"]]
        total["skills"] += [{**s, "buddy_id": result["buddy_id"]} for s in effects["skills"]]
        total["streaks"] += [{**s, "buddy_id": result["buddy_id"]} for s in effects["streaks"]]
        total["evolution_ready"] = total["evolution_ready"] or effects["evolution_ready"]
    return total


def has_effects(effects: dict[str, Any]) -> bool:
    return bool(effects["coins"] or effects["badges_awarded"] or effects["tokens"] or effects["skills"]
                or effects["streaks"])


def why_none(user_id: str, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The debug answer to "why didn't this event produce a reward?"."""
    if not results:
        return [{"code": "no_buddy", "message": f"user {user_id} has no hatched buddy yet; "
                 "events count only for buddies that exist when they arrive", "buddy_id": None, "rule_id": None}]
    reasons = [{**skip, "buddy_id": r["buddy_id"]} for r in results for skip in r["skipped"]]
    return reasons or [{"code": "no_effect", "message": "the matching rules gave nothing", "buddy_id": None,
                        "rule_id": None}]


class EventsActor(Actor):
    """One partition of a customer's event log (see the module docstring)."""

    kind = "hatched.events"

    @property
    def _customer_id(self) -> str:
        return self.key.rpartition("/")[0]

    @property
    def _partition(self) -> int:
        return int(self.key.rpartition("/")[2])

    def _view(self, record: dict[str, Any], duplicate: bool = False) -> dict[str, Any]:
        effects = record["effects"]
        if record.get("pruned"):
            return {"accepted": True, "duplicate": duplicate, "pruned": True,
                    **{k: record[k] for k in ("event_id", "user_id", "type", "buddy_id", "timezone")},
                    "occurred_at": iso_ms(record["occurred_at"]), "received_at": iso_ms(record["received_at"]),
                    "properties": None, "effects": effects, "buddies": None, "why_no_effects": None}
        return {
            "accepted": True,
            "duplicate": duplicate,
            "event_id": record["event_id"],
            "user_id": record["user_id"],
            "type": record["type"],
            "buddy_id": record["buddy_id"],
            "occurred_at": iso_ms(record["occurred_at"]),
            "received_at": iso_ms(record["received_at"]),
            "timezone": record["timezone"],
            "properties": record["properties"],
            "effects": effects,
            "buddies": record["buddies"],
            "why_no_effects": None if has_effects(effects) else why_none(record["user_id"], record["buddies"]),
        }

    async def ingest(self, event: dict[str, Any]) -> dict[str, Any]:
        """Dedupe, take a quota unit, apply to the user's buddies, record. A resend is a
        no-op returning the original (and costs no quota).

        The mailbox stays blocked while buddies apply the event, so a concurrent
        resend of the same id waits and then finds the record. ``quota_limit``
        (None: not metered), ``retention_ms`` and ``dedupe_ms`` are settings that
        ride along with the event and are not stored with it.
        """
        event = dict(event)
        quota_limit: int | None = event.pop("quota_limit", None)
        self._keep_horizons(event.pop("retention_ms", None), event.pop("dedupe_ms", None))
        event_id = event["event_id"]
        seq = self.storage.get(f"id:{event_id}")
        if seq is not None:
            return self._view(self.storage.get(f"ev:{seq:012d}"), duplicate=True)
        customer_id = self._customer_id
        lookups: list[Any] = [self.call(user_address(customer_id, event["user_id"]), "buddy_ids")]
        if quota_limit is not None:
            lookups.append(self.call(quota_address(customer_id), "consume", 1, quota_limit))
        found = await asyncio.gather(*lookups, return_exceptions=True)
        quota = found[1] if len(found) > 1 and isinstance(found[1], dict) else None
        try:
            for outcome in found:
                if isinstance(outcome, BaseException):
                    raise outcome
            if quota is not None and not quota["granted"]:
                raise _quota_exceeded(quota)
            record = await self._apply(event, found[0])
        except BaseException:
            if quota is not None and quota["granted"]:
                await self.call(quota_address(customer_id), "refund", quota["granted"], quota["period"])
            raise
        self.tell(webhooks_address(customer_id), "on_event", record)  # webhooks: only once this turn commits
        return self._view(record)

    async def _apply(self, event: dict[str, Any], buddy_ids: list[str]) -> dict[str, Any]:
        """Feed the event to its buddies and record it (the body of a first-time ingest)."""
        customer_id = self._customer_id
        if event.get("buddy_id") is not None:
            if event["buddy_id"] not in buddy_ids:
                raise HatchedError(404, "buddy_not_found",
                                   f"Buddy {event['buddy_id']} not found for user {event['user_id']}.")
            buddy_ids = [event["buddy_id"]]
        payload = {k: event[k] for k in ("event_id", "type", "occurred_at", "timezone", "properties")}
        results = list(await asyncio.gather(*(self.call(buddy_address(customer_id, b), "apply_event", payload)
                                              for b in buddy_ids)))
        now = max(self.now(), self.storage.get("last_received_at", 0))
        seq = self.storage.get("seq", 0) + 1
        record = {**event, "seq": seq, "received_at": now, "buddies": results,
                  "effects": aggregate_effects(results)}
        self.storage.put("seq", seq)
        self.storage.put("last_received_at", now)
        self.storage.put(f"id:{event['event_id']}", seq)
        self.storage.put(f"ev:{seq:012d}", record)
        self._count(record, now)
        if self.get_alarm() is None:
            self._arm()
        return record

    def _count(self, record: dict[str, Any], now: int) -> None:
        """Per-type totals and per-day per-user activity, for the two summary routes."""
        types: dict[str, Any] = self.storage.get("types", {})
        entry = types.setdefault(record["type"], {"count": 0, "last_seen_at": 0})
        entry["count"] += 1
        entry["last_seen_at"] = max(entry["last_seen_at"], record["received_at"])
        self.storage.put("types", types)
        day = record["occurred_at"] // DAY_MS
        if day < now // DAY_MS - ACTIVITY_RETENTION_DAYS:
            return
        bucket: dict[str, Any] = self.storage.get(f"act:{day}", {})
        user = bucket.setdefault(record["user_id"], [0, 0])
        user[0] += 1
        user[1] = max(user[1], record["occurred_at"])
        self.storage.put(f"act:{day}", bucket)
        # The day list (not a key scan, which would walk every stored event) drives pruning.
        days: list[int] = self.storage.get("act_days", [])
        if day not in days:
            horizon = now // DAY_MS - ACTIVITY_RETENTION_DAYS
            for old in (d for d in days if d < horizon):
                self.storage.delete(f"act:{old}")
            self.storage.put("act_days", sorted(d for d in [*days, day] if d >= horizon))

    def get(self, event_id: str) -> dict[str, Any]:
        """One event while it is retained; a pruned one is gone from the log (404)."""
        seq = self.storage.get(f"id:{event_id}")
        if seq is None or seq < self.storage.get("floor", 1):
            raise not_found("event", event_id)
        return self._view(self.storage.get(f"ev:{seq:012d}"))

    def page(self, before: list[Any] | None, limit: int, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """Up to ``limit`` events newest first whose position ``[received_at, partition, seq]``
        is below ``before``; ``received_at`` never decreases with ``seq``, so walking
        down ``seq`` walks down positions."""
        seq = self.storage.get("seq", 0)
        floor = self.storage.get("floor", 1)
        out: list[dict[str, Any]] = []
        while seq >= floor and len(out) < limit:
            record = self.storage.get(f"ev:{seq:012d}")
            seq -= 1
            position = [record["received_at"], self._partition, record["seq"]]
            if before is not None and position >= before:
                continue
            if not _matches(record, filters):
                continue
            out.append({"position": position, "event": self._view(record)})
        return out

    def types(self) -> dict[str, Any]:
        return self.storage.get("types", {})

    # -- retention -----------------------------------------------------------------
    def _keep_horizons(self, retention_ms: int | None, dedupe_ms: int | None) -> None:
        """Remember the front door's retention settings (re-arming when they shrink)."""
        changed = False
        for key, value in (("retention_ms", retention_ms), ("dedupe_ms", dedupe_ms)):
            if value is not None and self.storage.get(key) != value:
                self.storage.put(key, int(value))
                changed = True
        if changed:
            self._arm()

    def _horizons(self) -> tuple[int, int]:
        retention = self.storage.get("retention_ms", DEFAULT_RETENTION_MS)
        return retention, max(retention, self.storage.get("dedupe_ms", DEFAULT_DEDUPE_MS))

    def _next_due(self) -> int | None:
        """When the oldest full record leaves the log or the oldest tombstone is forgotten."""
        retention, dedupe = self._horizons()
        seq, floor, tomb = self.storage.get("seq", 0), self.storage.get("floor", 1), self.storage.get("tomb", 1)
        due: list[int] = []
        if floor <= seq:
            due.append(self.storage.get(f"ev:{floor:012d}")["received_at"] + retention)
        if tomb < floor:
            due.append(self.storage.get(f"ev:{tomb:012d}")["received_at"] + dedupe)
        return min(due) if due else None

    def _arm(self) -> None:
        due = self._next_due()
        if due is None:
            self.delete_alarm()
        elif self.get_alarm() != due:
            self.set_alarm(due)

    def on_alarm(self) -> None:
        """Prune, oldest first: full records past retention become tombstones, tombstones
        past the dedupe horizon are forgotten. At most ``PRUNE_BATCH`` records a turn."""
        now = self.now()
        retention, dedupe = self._horizons()
        seq, floor, tomb = self.storage.get("seq", 0), self.storage.get("floor", 1), self.storage.get("tomb", 1)
        budget = PRUNE_BATCH
        while floor <= seq and budget:
            record = self.storage.get(f"ev:{floor:012d}")
            if record["received_at"] > now - retention:
                break
            self.storage.put(f"ev:{floor:012d}",
                             {**{k: record[k] for k in _TOMBSTONE_FIELDS}, "pruned": True})
            floor += 1
            budget -= 1
        while tomb < floor and budget:
            record = self.storage.get(f"ev:{tomb:012d}")
            if record["received_at"] > now - dedupe:
                break
            self.storage.delete(f"ev:{tomb:012d}")
            if self.storage.get(f"id:{record['event_id']}") == tomb:
                self.storage.delete(f"id:{record['event_id']}")
            tomb += 1
            budget -= 1
        self.storage.put("floor", floor)
        self.storage.put("tomb", tomb)
        self._arm()

    def retention(self) -> dict[str, Any]:
        """What this partition holds: full records, tombstones and the next prune."""
        seq, floor, tomb = self.storage.get("seq", 0), self.storage.get("floor", 1), self.storage.get("tomb", 1)
        return {"retained": seq - floor + 1, "tombstones": floor - tomb, "next_prune_at": self.get_alarm()}

    def activity(self, since_ms: int) -> dict[str, list[int]]:
        """user_id -> [events, last occurred_at] over the days since ``since_ms``."""
        totals: dict[str, list[int]] = {}
        for day in self.storage.get("act_days", []):
            if (day + 1) * DAY_MS <= since_ms:
                continue
            for user_id, (count, last) in self.storage.get(f"act:{day}", {}).items():
                entry = totals.setdefault(user_id, [0, 0])
                entry[0] += count
                entry[1] = max(entry[1], last)
        return totals


def _quota_exceeded(quota: dict[str, Any]) -> HatchedError:
    return HatchedError(
        402, "event_quota_exceeded",
        f"The monthly event quota of your plan is exhausted ({quota['used']}/{quota['limit']} in "
        f"{quota['period']}); it resets at {quota['reset_at']}. Upgrade for more.",
        {"limit": quota["limit"], "used": quota["used"], "period": quota["period"], "reset_at": quota["reset_at"]})


def _matches(record: dict[str, Any], filters: dict[str, Any]) -> bool:
    if filters.get("user_id") and record["user_id"] != filters["user_id"]:
        return False
    if filters.get("type") and record["type"] != filters["type"]:
        return False
    if filters.get("buddy_id") and filters["buddy_id"] not in {b["buddy_id"] for b in record["buddies"]}:
        return False
    with_effects = filters.get("has_effects")
    return with_effects is None or has_effects(record["effects"]) == with_effects
