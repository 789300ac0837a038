"""One buddy: its canonical state, its pinned config and its immutable economy ledger.

Every coin/token mutation appends a ledger row and updates the balance projection
in the same turn, so balances can never disagree with the ledger, and because a
buddy's turns are serialised, concurrent spends cannot take a balance below zero.
Idempotency keys are remembered with the reply they produced: a retried earn or
spend returns the original result instead of applying twice.
"""

from __future__ import annotations

from typing import Any

import msgspec

from questline.actors.hatched_buddy_facts import FactsTurns
from questline.actors.hatched_buddy_items import ItemTurns
from questline.actors.hatched_buddy_progress import ProgressionTurns
from questline.actors.hatched_widget import buddy_hub
from questline.engine import Actor, Address
from questline.rules.hatched import EventInput, ProgressState, Skip, evaluate_event
from questline.rules.hatched_errors import HatchedError, not_found
from questline.rules.hatched_models import ConfigContent, content_from_builtins, iso_ms

LEDGER_PAGE_MAX = 100
STATE_UPDATES_KEPT = 16  # buddy states a widget stream can resume from


def buddy_address(customer_id: str, buddy_id: str) -> Address:
    return Address("hatched.buddy", f"{customer_id}/{buddy_id}")


class BuddyActor(ProgressionTurns, ItemTurns, FactsTurns, Actor):
    kind = "hatched.buddy"

    # -- lifecycle ---------------------------------------------------------------
    def create(self, record: dict[str, Any]) -> dict[str, Any]:
        """Born from a hatch; a repeated create (an operation retried after a crash) is a no-op."""
        existing = self.storage.get("buddy")
        if existing is not None:
            return self._view(existing)
        buddy = {
            **record,
            "status": "active",
            "evolution_stage": 1,
            "skills": {},
            "coins": 0,
            "coins_earned": 0,
            "tokens": {},
            "badges": [],
            "equipped_items": [],
            "created_at": self.now(),
            "updated_at": self.now(),
        }
        self.storage.put("buddy", buddy)
        return self._view(buddy)

    def _buddy(self) -> dict[str, Any]:
        buddy = self.storage.get("buddy")
        if buddy is None:
            raise not_found("buddy", self.key.partition("/")[2])
        return buddy

    def _active(self) -> dict[str, Any]:
        buddy = self._buddy()
        if buddy["status"] != "active":
            raise HatchedError(409, "buddy_archived", f"Buddy {buddy['buddy_id']} is archived and cannot change.")
        return buddy

    def _save(self, buddy: dict[str, Any]) -> dict[str, Any]:
        buddy["updated_at"] = self.now()
        self.storage.put("buddy", buddy)
        view = self._view(buddy)
        # Live widgets: the hub gets the new state only once this turn commits (tell). Each
        # update is the whole state, so the hub keeps only the newest few for resumes.
        self.tell(buddy_hub(self.key), "publish", [{"event": "buddy", "data": view}], STATE_UPDATES_KEPT)
        return view

    @staticmethod
    def _view(buddy: dict[str, Any]) -> dict[str, Any]:
        return {
            "buddy_id": buddy["buddy_id"],
            "user_id": buddy["user_id"],
            "name": buddy["name"],
            "status": buddy["status"],
            "egg_id": buddy["egg_id"],
            "config_version_id": buddy["config_version_id"],
            "evolution_stage": buddy["evolution_stage"],
            "skills": buddy["skills"],
            "coins": buddy["coins"],
            "tokens": buddy["tokens"],
            "badges": buddy["badges"],
            "equipped_items": buddy["equipped_items"],
            "traits": buddy["traits"],
            "image_url": f"/api/v1/buddies/{buddy['buddy_id']}/art.svg",
            "created_at": iso_ms(buddy["created_at"]),
            "updated_at": iso_ms(buddy["updated_at"]),
        }

    def get(self) -> dict[str, Any]:
        return self._view(self._buddy())

    def art_inputs(self) -> dict[str, Any]:
        buddy = self._buddy()
        return {"traits": buddy["traits"], "stage": buddy["evolution_stage"], "equipped": buddy["equipped_items"]}

    def rename(self, name: str) -> dict[str, Any]:
        buddy = self._active()
        buddy["name"] = name
        return self._save(buddy)

    def archive(self) -> dict[str, Any]:
        """active -> archived, one way."""
        buddy = self._buddy()
        if buddy["status"] != "active":
            raise HatchedError(409, "invalid_state_transition",
                               f"Buddy {buddy['buddy_id']} cannot go from archived to archived.",
                               {"from": buddy["status"], "to": "archived"})
        buddy["status"] = "archived"
        return self._save(buddy)

    def migrate(self, config_version_id: str, config: dict[str, Any]) -> dict[str, Any]:
        """Re-pin to another config version (only ever on an explicit migration)."""
        buddy = self._buddy()
        buddy["config_version_id"] = config_version_id
        buddy["config"] = config
        return self._save(buddy)

    # -- economy -----------------------------------------------------------------
    def _remembered(self, idempotency_key: str | None, request: dict[str, Any]) -> dict[str, Any] | None:
        if not idempotency_key:
            return None
        seen = self.storage.get(f"idem:{idempotency_key}")
        if seen is None:
            return None
        if seen["request"] != request:
            raise HatchedError(409, "idempotency_key_reused",
                               "This idempotency key was already used with a different request.",
                               {"idempotency_key": idempotency_key})
        return {**seen["response"], "idempotent_replay": True}

    def _remember(self, idempotency_key: str | None, request: dict[str, Any], response: dict[str, Any]) -> None:
        if idempotency_key:
            self.storage.put(f"idem:{idempotency_key}", {"request": request, "response": response, "at": self.now()})

    def _append_ledger(self, currency: str, delta: int, balance_after: int, reason: str, source: str,
                       ref: str | None) -> dict[str, Any]:
        seq = self.storage.get("ledger_seq", 0) + 1
        row = {
            "id": f"led_{seq:010d}",
            "seq": seq,
            "type": "credit" if delta > 0 else "debit",
            "currency": currency,
            "amount": abs(delta),
            "balance_after": balance_after,
            "reason": reason,
            "source": source,
            "ref": ref,
            "created_at": iso_ms(self.now()),
        }
        self.storage.put("ledger_seq", seq)
        self.storage.put(f"ledger:{seq:010d}", row)
        return row

    def change_coins(self, delta: int, reason: str, source: str, idempotency_key: str | None) -> dict[str, Any]:
        """Earn (delta > 0) or spend (delta < 0) coins; a spend never overdraws."""
        request = {"delta": delta, "reason": reason, "source": source}
        replay = self._remembered(idempotency_key, request)
        if replay is not None:
            return replay
        buddy = self._active()
        balance = buddy["coins"] + delta
        if balance < 0:
            raise HatchedError(422, "insufficient_funds",
                               f"Buddy {buddy['buddy_id']} has {buddy['coins']} coins; {-delta} requested.",
                               {"balance": buddy["coins"], "requested": -delta})
        buddy["coins"] = balance
        if delta > 0:
            buddy["coins_earned"] += delta
        row = self._append_ledger("coins", delta, balance, reason, source, idempotency_key)
        self._save(buddy)
        response = {"buddy_id": buddy["buddy_id"], "coins": balance, "ledger_entry": row}
        self._remember(idempotency_key, request, response)
        return response

    def ledger(self, before_seq: int | None, limit: int, currency: str | None) -> dict[str, Any]:
        """Newest first; ``next_before`` continues the walk."""
        self._buddy()
        seq = self.storage.get("ledger_seq", 0) if before_seq is None else before_seq - 1
        rows: list[dict[str, Any]] = []
        while seq >= 1 and len(rows) < min(limit, LEDGER_PAGE_MAX):
            row = self.storage.get(f"ledger:{seq:010d}")
            if row is not None and (currency is None or row["currency"] == currency):
                rows.append(row)
            seq -= 1
        return {"rows": rows, "next_before": rows[-1]["seq"] if rows and seq >= 1 else None}

    # -- events ------------------------------------------------------------------
    def _config(self, buddy: dict[str, Any]) -> ConfigContent:
        """The pinned config, decoded once per version (instance attributes are caches only)."""
        cached = getattr(self, "_config_cache", None)
        if cached is None or cached[0] != buddy["config_version_id"]:
            cached = (buddy["config_version_id"], content_from_builtins(buddy["config"]))
            self._config_cache = cached
        return cached[1]

    def _progress(self, buddy: dict[str, Any]) -> ProgressState:
        extra: dict[str, Any] = self.storage.get("progress", {})
        return msgspec.convert({**extra, "coins": buddy["coins"], "coins_earned": buddy["coins_earned"],
                                "tokens": buddy["tokens"], "skills": buddy["skills"], "badges": buddy["badges"],
                                "evolution_stage": buddy["evolution_stage"]}, ProgressState)

    def apply_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Apply one event under the pinned config, with ledger rows, exactly once per event id.

        The result is remembered under the event id, so when the events actor
        retries after a failure between this turn and its own, the buddy answers
        with what it already did instead of rewarding twice.
        """
        seen = self.storage.get(f"evt:{event['event_id']}")
        if seen is not None:
            return seen
        buddy = self._buddy()
        if buddy["status"] != "active":
            skip = Skip(code="buddy_archived", message=f"buddy {buddy['buddy_id']} is archived")
            result = {"buddy_id": buddy["buddy_id"], "config_version_id": buddy["config_version_id"],
                      "effects": None, "skipped": [msgspec.to_builtins(skip)], "evolution": None}
            self.storage.put(f"evt:{event['event_id']}", result)
            return result
        evaluation = evaluate_event(self._config(buddy), self._progress(buddy), msgspec.convert(event, EventInput))
        state = evaluation.state
        balances = {"coins": buddy["coins"], **buddy["tokens"]}
        for entry in evaluation.ledger:
            balances[entry.currency] = balances.get(entry.currency, 0) + entry.delta
            self._append_ledger(entry.currency, entry.delta, balances[entry.currency], entry.reason, "event",
                                event["event_id"])
        buddy.update(coins=state.coins, coins_earned=state.coins_earned, tokens=state.tokens, skills=state.skills,
                     badges=state.badges)
        self._note_badges(evaluation.effects.badges_awarded, "event", event["event_id"])
        self.storage.put("progress", {k: v for k, v in msgspec.to_builtins(state).items()
                                      if k in ("events_total", "event_counts", "first_time_awarded", "coin_days",
                                               "streaks")})
        self._save(buddy)
        result = {"buddy_id": buddy["buddy_id"], "config_version_id": buddy["config_version_id"],
                  "effects": msgspec.to_builtins(evaluation.effects),
                  "skipped": msgspec.to_builtins(evaluation.skipped),
                  "evolution": msgspec.to_builtins(evaluation.readiness)}
        self.storage.put(f"evt:{event['event_id']}", result)
        return result
