"""Buddy turns for progression: skills, badges, tokens, evolution, gates and metrics.

A mixin of ``BuddyActor`` (one actor, one owner), kept in its own module so each
concern of the buddy reads on its own. Every check lives in
``rules/hatched_progression.py`` and runs against the pinned config before
anything is written; a token spend, its ledger row and a gate unlock happen in
one turn, so they happen whole or not at all, and serialised turns mean two
concurrent spends can never take a balance below zero.

Storage keys owned here: ``badge_awards`` (badge key -> when/why), ``gate_unlocks``
(gate key -> record; the items mixin reads its keys for ``gate_unlocked``
requirements), ``evolutions`` (the stage timeline), ``evolve_op`` (the latest
evolve operation id) and ``evolve_done:<op id>`` (an evolve's remembered result).
"""

from __future__ import annotations

from typing import Any

import msgspec

from questline.actors.hatched_buddy_host import BuddyHost
from questline.rules.hatched import evolution_readiness
from questline.rules.hatched_errors import HatchedError
from questline.rules.hatched_models import iso_ms
from questline.rules.hatched_progression import (
    SkillUpdate,
    apply_skill_updates,
    badge_for,
    badge_view,
    check_token_change,
    evolution_progress,
    evolve_target,
    gate_unlock_balance,
    newly_met_badges,
    progression_metrics,
    stage_names,
    token_wallet,
)


class ProgressionTurns(BuddyHost):
    """Skills, badges, tokens, evolution and gate turns of a buddy."""

    # -- badges ------------------------------------------------------------------------
    def _note_badges(self, keys: list[str], source: str, ref: str | None, reason: str = "") -> None:
        """Remember when and why each newly held badge was awarded (the list shows it)."""
        if not keys:
            return
        awards: dict[str, Any] = self.storage.get("badge_awards", {})
        for key in keys:
            awards.setdefault(key, {"source": source, "ref": ref, "reason": reason or None,
                                    "awarded_at": iso_ms(self.now())})
        self.storage.put("badge_awards", awards)

    def _award_met_badges(self, buddy: dict[str, Any], source: str, ref: str | None) -> list[str]:
        """Award badges whose criteria the buddy's current state meets (after a skill change or evolve)."""
        state = self._progress(buddy)
        earned = newly_met_badges(self._config(buddy), state)
        if earned:
            buddy["badges"] = [*buddy["badges"], *earned]
            self._note_badges(earned, source, ref)
        return earned

    def list_badges(self) -> list[dict[str, Any]]:
        buddy = self._buddy()
        config = self._config(buddy)
        awards: dict[str, Any] = self.storage.get("badge_awards", {})
        return [badge_view(config, key, awards.get(key)) for key in buddy["badges"]]

    def award_badge(self, badge_key: str, reason: str) -> dict[str, Any]:
        """Manual award of a badge the pinned config defines; a second award is a 409."""
        buddy = self._active()
        config = self._config(buddy)
        badge_for(config, badge_key)
        if badge_key in buddy["badges"]:
            award = self.storage.get("badge_awards", {}).get(badge_key, {})
            raise HatchedError(409, "badge_already_awarded",
                               f"Buddy {buddy['buddy_id']} already has badge {badge_key}.",
                               {"badge_key": badge_key, "awarded_at": award.get("awarded_at")})
        buddy["badges"] = [*buddy["badges"], badge_key]
        self._note_badges([badge_key], "manual", None, reason)
        view = self._save(buddy)
        readiness = evolution_progress(config, self._progress(buddy))
        return {"buddy_id": buddy["buddy_id"],
                "badge": badge_view(config, badge_key, self.storage.get("badge_awards", {}).get(badge_key)),
                "badges": view["badges"], "evolution_ready": readiness["ready"]}

    # -- skills ------------------------------------------------------------------------
    def update_skills(self, updates: list[dict[str, Any]], reason: str) -> dict[str, Any]:
        """Increase / decrease / set skill levels within the pinned config's skill set, all or nothing."""
        buddy = self._active()
        config = self._config(buddy)
        levels, changes = apply_skill_updates(config, buddy["skills"], msgspec.convert(updates, list[SkillUpdate]))
        buddy["skills"] = levels
        awarded = self._award_met_badges(buddy, "skills", reason or None)
        view = self._save(buddy)
        readiness = evolution_progress(config, self._progress(buddy))
        return {**view, "changes": changes, "badges_awarded": awarded, "evolution_ready": readiness["ready"]}

    # -- tokens ------------------------------------------------------------------------
    def token_wallet(self) -> dict[str, Any]:
        buddy = self._buddy()
        return {"buddy_id": buddy["buddy_id"], "config_version_id": buddy["config_version_id"],
                **token_wallet(self._config(buddy), buddy["tokens"]), "balances": dict(sorted(buddy["tokens"].items()))}

    def change_tokens(self, token_key: str, delta: int, reason: str, source: str,
                      idempotency_key: str | None) -> dict[str, Any]:
        """Earn (``delta > 0``) or spend (``delta < 0``) one token type, with its ledger row."""
        request = {"token_key": token_key, "delta": delta, "reason": reason, "source": source}
        replay = self._remembered(idempotency_key, request)
        if replay is not None:
            return replay
        buddy = self._active()
        balance = check_token_change(self._config(buddy), buddy["tokens"], token_key, delta)
        buddy["tokens"] = {**buddy["tokens"], token_key: balance}
        row = self._append_ledger(token_key, delta, balance, reason, source, idempotency_key)
        self._save(buddy)
        response = {"buddy_id": buddy["buddy_id"], "token_key": token_key, "balance": balance,
                    "tokens": dict(sorted(buddy["tokens"].items())), "ledger_entry": row}
        self._remember(idempotency_key, request, response)
        return response

    # -- gates -------------------------------------------------------------------------
    def _unlocks(self) -> dict[str, Any]:
        return self.storage.get("gate_unlocks", {})

    def unlock_gate(self, gate_key: str) -> dict[str, Any]:
        """Pay the gate's token cost and record the unlock in one turn; unlocking again is a
        no-op answering ``already_unlocked`` (nothing is charged twice)."""
        buddy = self._active()
        unlocks = self._unlocks()
        if gate_key in unlocks:
            return {"buddy_id": buddy["buddy_id"], "already_unlocked": True, "unlock": unlocks[gate_key],
                    "tokens": dict(sorted(buddy["tokens"].items()))}
        gate, balance = gate_unlock_balance(self._config(buddy), buddy["tokens"], gate_key)
        buddy["tokens"] = {**buddy["tokens"], gate.token_key: balance}
        row = self._append_ledger(gate.token_key, -gate.cost, balance, f"gate_unlock:{gate_key}", "gate", gate_key)
        record = {"gate_key": gate_key, "name": gate.name, "description": gate.description,
                  "token_key": gate.token_key, "cost": gate.cost, "ledger_entry_id": row["id"],
                  "unlocked_at": iso_ms(self.now())}
        self.storage.put("gate_unlocks", {**unlocks, gate_key: record})
        self._save(buddy)
        return {"buddy_id": buddy["buddy_id"], "already_unlocked": False, "unlock": record,
                "tokens": dict(sorted(buddy["tokens"].items())), "ledger_entry": row}

    def unlocks(self) -> list[dict[str, Any]]:
        self._buddy()
        return sorted(self._unlocks().values(), key=lambda r: r["ledger_entry_id"])

    # -- evolution ---------------------------------------------------------------------
    def evolution(self) -> dict[str, Any]:
        buddy = self._buddy()
        return {"buddy_id": buddy["buddy_id"], "config_version_id": buddy["config_version_id"],
                **evolution_progress(self._config(buddy), self._progress(buddy))}

    def evolve_check(self) -> dict[str, Any]:
        """What ``POST /evolve`` needs: the readiness and the last evolve operation started."""
        buddy = self._active()
        readiness = evolution_readiness(self._config(buddy), self._progress(buddy))
        return {"readiness": msgspec.to_builtins(readiness), "pending_operation_id": self.storage.get("evolve_op")}

    def note_evolve_operation(self, operation_id: str) -> None:
        self.storage.put("evolve_op", operation_id)

    def run_evolve(self, operation_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """The evolve operation's work: re-check, bump the stage, record the transition.

        Idempotent per operation id: the customer actor re-runs an operation whose
        bookkeeping a crash interrupted, and gets the remembered result back.
        """
        done = self.storage.get(f"evolve_done:{operation_id}")
        if done is not None:
            return done
        buddy = self._active()
        config = self._config(buddy)
        stage = evolve_target(config, self._progress(buddy), int(request["from_stage"]))
        previous = buddy["evolution_stage"]
        buddy["evolution_stage"] = stage
        awarded = self._award_met_badges(buddy, "evolution", operation_id)
        entry = {"from_stage": previous, "to_stage": stage,
                 "stage_name": stage_names(config).get(stage), "operation_id": operation_id,
                 "evolved_at": iso_ms(self.now())}
        self.storage.put("evolutions", [*self.storage.get("evolutions", []), entry])
        view = self._save(buddy)
        result = {"buddy": view,
                  "result": {"buddy_id": buddy["buddy_id"], "previous_stage": previous,
                             "evolution_stage": stage, "stage_name": entry["stage_name"],
                             "image_url": view["image_url"], "badges_awarded": awarded,
                             "evolved_at": entry["evolved_at"]}}
        self.storage.put(f"evolve_done:{operation_id}", result)
        return result

    def evolutions(self) -> dict[str, Any]:
        """The stage timeline, oldest first, starting with the hatch at stage 1."""
        buddy = self._buddy()
        names = stage_names(self._config(buddy))
        born = {"from_stage": None, "to_stage": 1, "stage_name": names.get(1), "operation_id": None,
                "evolved_at": iso_ms(buddy["created_at"]), "source": "hatch"}
        transitions = [{**e, "source": "evolve"} for e in self.storage.get("evolutions", [])]
        return {"buddy_id": buddy["buddy_id"], "current_stage": buddy["evolution_stage"],
                "data": [born, *transitions]}

    # -- metrics -----------------------------------------------------------------------
    def progression_metrics(self) -> dict[str, Any]:
        buddy = self._buddy()
        metrics = progression_metrics(self._config(buddy), self._progress(buddy), self._unlocks(),
                                      len(self.storage.get("evolutions", [])))
        return {"buddy_id": buddy["buddy_id"], "user_id": buddy["user_id"],
                "config_version_id": buddy["config_version_id"], **metrics}

    def summary_inputs(self) -> dict[str, Any]:
        """What a per-user summary adds up for this buddy."""
        buddy = self._buddy()
        return {k: buddy[k] for k in ("buddy_id", "name", "status", "evolution_stage", "coins", "coins_earned",
                                      "badges", "tokens", "created_at")}
