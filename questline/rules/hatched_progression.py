"""Pure progression logic behind a buddy's manual overrides and progression reads.

Skill updates, manual badge awards, typed token wallets and token changes, gate
unlock costs, evolution progress and the "may this buddy evolve now?" check,
progression metrics and the per-user summary. No I/O and no clock: the buddy
actor passes its pinned config and state in and writes what comes back, so every
check runs before anything is written and a refused request changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Literal

import msgspec

from questline.rules.hatched import ProgressState, Readiness, criteria_met, evolution_readiness
from questline.rules.hatched_errors import HatchedError
from questline.rules.hatched_models import (
    MAX_EVOLUTION_STAGES,
    BadgeDefinition,
    ConfigContent,
    Gate,
    TokenConfig,
)

SkillOperation = Literal["increase", "decrease", "set"]
OPEN_OPERATION_STATES = frozenset({"pending", "processing"})


def _invalid(message: str) -> HatchedError:
    return HatchedError(400, "validation_error", message, {"errors": [message]})


# -- skills ------------------------------------------------------------------------------
class SkillUpdate(msgspec.Struct, kw_only=True):
    """One requested change: ``increase``/``decrease`` by ``value`` or ``set`` to ``value``."""

    skill_key: str
    operation: SkillOperation
    value: int


def skill_limits(config: ConfigContent) -> dict[str, int]:
    """Every skill of the pinned config's skill sets and its ``max_level`` (the bounds are 0..max)."""
    return {skill.key: skill.max_level for skill_set in config.skill_sets.values() for skill in skill_set.skills}


def apply_skill_updates(config: ConfigContent, skills: dict[str, int],
                        updates: list[SkillUpdate]) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """The new skill levels and one change record per update, or an error and nothing applied.

    Manual overrides are strict: a result outside ``0..max_level`` is refused
    (not clamped), so an operator sees exactly what they asked for or why not.
    """
    limits = skill_limits(config)
    seen: set[str] = set()
    for update in updates:
        if update.skill_key in seen:
            raise _invalid(f"skill {update.skill_key} appears more than once")
        seen.add(update.skill_key)
        if update.operation != "set" and update.value < 1:
            raise _invalid(f"{update.operation} of skill {update.skill_key} needs a value of at least 1")
    unknown = [u.skill_key for u in updates if u.skill_key not in limits]
    if unknown:
        raise HatchedError(422, "unknown_skill",
                           f"Skill {', '.join(unknown)} is not in this buddy's config version.",
                           {"unknown": unknown, "allowed": sorted(limits)})
    levels = dict(skills)
    changes: list[dict[str, Any]] = []
    out_of_bounds: list[dict[str, Any]] = []
    for update in updates:
        before = levels.get(update.skill_key, 0)
        if update.operation == "increase":
            after = before + update.value
        elif update.operation == "decrease":
            after = before - update.value
        else:
            after = update.value
        maximum = limits[update.skill_key]
        if not 0 <= after <= maximum:
            out_of_bounds.append({"skill_key": update.skill_key, "level": before, "requested": after,
                                  "min": 0, "max": maximum})
            continue
        levels[update.skill_key] = after
        changes.append({"skill_key": update.skill_key, "operation": update.operation, "before": before,
                        "after": after, "delta": after - before})
    if out_of_bounds:
        first = out_of_bounds[0]
        raise HatchedError(422, "skill_out_of_bounds",
                           f"Skill {first['skill_key']} would be {first['requested']}; levels stay within "
                           f"{first['min']}..{first['max']}.", {"errors": out_of_bounds})
    return levels, changes


# -- badges ------------------------------------------------------------------------------
def badge_definitions(config: ConfigContent) -> dict[str, BadgeDefinition]:
    """Badge definitions by their customer-chosen key."""
    return {badge.key: badge for badge in config.badge_definitions.values()}


def badge_for(config: ConfigContent, badge_key: str) -> BadgeDefinition:
    """The pinned config's definition of ``badge_key``; manual awards cannot invent badges."""
    badge = badge_definitions(config).get(badge_key)
    if badge is None:
        raise HatchedError(422, "unknown_badge", f"Badge {badge_key} is not defined in this buddy's config version.",
                           {"badge_key": badge_key, "allowed": sorted(badge_definitions(config))})
    return badge


def newly_met_badges(config: ConfigContent, state: ProgressState) -> list[str]:
    """Badges whose criteria the state now meets and that the buddy does not hold yet.

    A manual skill change or an evolution awards them at once instead of waiting for
    the next event (which would award them anyway).
    """
    return [badge.key for badge in config.badge_definitions.values()
            if badge.key not in state.badges and criteria_met(badge.criteria, state)]


def badge_view(config: ConfigContent, badge_key: str, award: dict[str, Any] | None) -> dict[str, Any]:
    """One held badge with its definition (a badge the config no longer defines keeps its key)."""
    badge = badge_definitions(config).get(badge_key)
    award = award or {}
    return {
        "badge_key": badge_key,
        "name": badge.name if badge else badge_key,
        "description": badge.description if badge else "",
        "icon_url": badge.icon_url if badge else None,
        "criteria": msgspec.to_builtins(badge.criteria) if badge else None,
        "source": award.get("source"),
        "reason": award.get("reason"),
        "awarded_at": award.get("awarded_at"),
    }


# -- tokens ------------------------------------------------------------------------------
def token_types(config: ConfigContent) -> dict[str, TokenConfig]:
    """Token configs by ``token_key`` (the section is keyed by id, the key is a field)."""
    return {cfg.token_key: cfg for cfg in config.token_config.values()}


def token_wallet(config: ConfigContent, balances: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    """Balances typed by the token config: ``primary``, ``progression`` and ``unconfigured``
    (held tokens the pinned config does not describe, e.g. after a migration)."""
    wallet: dict[str, list[dict[str, Any]]] = {"primary": [], "progression": [], "unconfigured": []}
    types = token_types(config)
    for token_key, cfg in sorted(types.items()):
        wallet[cfg.kind].append({"token_key": token_key, "name": cfg.name, "kind": cfg.kind,
                                 "balance": balances.get(token_key, 0), "max_balance": cfg.max_balance})
    for token_key, balance in sorted(balances.items()):
        if token_key not in types and balance:
            wallet["unconfigured"].append({"token_key": token_key, "name": token_key, "kind": None,
                                           "balance": balance, "max_balance": None})
    return wallet


def check_token_change(config: ConfigContent, balances: dict[str, int], token_key: str, delta: int) -> int:
    """The balance after earning (``delta > 0``) or spending (``delta < 0``), or why not.

    Earning needs the token in the pinned config and respects its ``max_balance``;
    spending works on anything held but never below zero.
    """
    cfg = token_types(config).get(token_key)
    balance = balances.get(token_key, 0)
    if cfg is None and (delta > 0 or balance == 0):
        raise HatchedError(422, "unknown_token", f"Token {token_key} is not configured for this buddy's config version.",
                           {"token_key": token_key, "configured": sorted(token_types(config))})
    after = balance + delta
    if after < 0:
        raise HatchedError(422, "insufficient_tokens", f"Buddy has {balance} {token_key}; {-delta} requested.",
                           {"token_key": token_key, "balance": balance, "requested": -delta})
    if delta > 0 and cfg is not None and cfg.max_balance is not None and after > cfg.max_balance:
        raise HatchedError(422, "max_balance_exceeded",
                           f"{token_key} is capped at {cfg.max_balance}; the buddy has {balance}.",
                           {"token_key": token_key, "balance": balance, "requested": delta,
                            "max_balance": cfg.max_balance})
    return after


# -- gates -------------------------------------------------------------------------------
def gate_for(config: ConfigContent, gate_key: str) -> Gate:
    gate = config.gates.get(gate_key)
    if gate is None:
        raise HatchedError(404, "gate_not_found", f"Gate {gate_key} is not defined in this buddy's config version.",
                           {"gate_key": gate_key, "available": sorted(config.gates)})
    return gate


def gate_unlock_balance(config: ConfigContent, balances: dict[str, int], gate_key: str) -> tuple[Gate, int]:
    """The gate and the token balance after paying its cost, or ``insufficient_tokens``."""
    gate = gate_for(config, gate_key)
    balance = balances.get(gate.token_key, 0)
    if balance < gate.cost:
        raise HatchedError(422, "insufficient_tokens",
                           f"Unlocking {gate_key} costs {gate.cost} {gate.token_key}; the buddy has {balance}.",
                           {"gate_key": gate_key, "token_key": gate.token_key, "balance": balance,
                            "cost": gate.cost})
    return gate, balance - gate.cost


# -- evolution ---------------------------------------------------------------------------
def stage_names(config: ConfigContent) -> dict[int, str]:
    return {stage.stage: stage.name for stage in config.evolution_rules}


def final_stage(config: ConfigContent) -> int:
    """The highest stage this config defines (at least 1, never above the contract's 5)."""
    return min(MAX_EVOLUTION_STAGES, max((s.stage for s in config.evolution_rules), default=1))


def _requirements(config: ConfigContent, state: ProgressState, next_stage: int | None) -> list[dict[str, Any]]:
    stage = next((s for s in config.evolution_rules if s.stage == next_stage), None)
    if stage is None:
        return []
    req = stage.requirements
    best_streak = max((s.longest for s in state.streaks.values()), default=0)
    rows: list[dict[str, Any]] = []
    for kind, current, required in (("coins_earned", state.coins_earned, req.min_coins_earned),
                                    ("events", state.events_total, req.min_events),
                                    ("streak", best_streak, req.min_streak)):
        if required:
            rows.append({"type": kind, "key": None, "current": current, "required": required,
                         "met": current >= required})
    for badge_key in req.badges:
        held = int(badge_key in state.badges)
        rows.append({"type": "badge", "key": badge_key, "current": held, "required": 1, "met": bool(held)})
    for skill_key, level in sorted(req.skill_levels.items()):
        have = state.skills.get(skill_key, 0)
        rows.append({"type": "skill", "key": skill_key, "current": have, "required": level, "met": have >= level})
    return rows


def evolution_progress(config: ConfigContent, state: ProgressState) -> dict[str, Any]:
    """Readiness (the same check events report) plus a per-requirement breakdown and a percent.

    ``progress_percent`` averages each requirement's completion (capped at 100%), so a
    buddy at 50/100 coins and holding its one badge is 75% of the way.
    """
    readiness = evolution_readiness(config, state)
    rows = _requirements(config, state, readiness.next_stage)
    if readiness.next_stage is None:
        percent = 100
    elif rows:
        percent = int(100 * sum(min(1.0, r["current"] / r["required"]) for r in rows) / len(rows))
    else:
        percent = 100
    names = stage_names(config)
    return {
        "current_stage": state.evolution_stage,
        "current_stage_name": names.get(state.evolution_stage),
        "next_stage": readiness.next_stage,
        "next_stage_name": readiness.next_stage_name,
        "final_stage": final_stage(config),
        "is_final_stage": readiness.next_stage is None,
        "ready": readiness.ready,
        "missing": readiness.missing,
        "requirements": rows,
        "progress_percent": percent,
    }


def not_ready_error(readiness: Readiness) -> HatchedError:
    return HatchedError(409, "evolution_not_ready",
                        f"Buddy cannot evolve yet: {'; '.join(readiness.missing)}.",
                        {"current_stage": readiness.current_stage, "next_stage": readiness.next_stage,
                         "missing": readiness.missing})


def ensure_ready(readiness: Readiness) -> None:
    """``POST /evolve`` answers 409 ``evolution_not_ready`` before any operation is started."""
    if not readiness.ready:
        raise not_ready_error(readiness)


def evolve_target(config: ConfigContent, state: ProgressState, from_stage: int) -> int:
    """Re-check at run time: the stage the operation moves ``from_stage`` to, or why it fails.

    An operation started at stage N whose buddy is no longer at N (a second evolve
    that a panicked client started) fails ``evolution_stale`` instead of evolving twice.
    """
    if state.evolution_stage != from_stage:
        raise HatchedError(409, "evolution_stale",
                           f"This evolution was for stage {from_stage} but the buddy is now at stage "
                           f"{state.evolution_stage}.", {"from_stage": from_stage,
                                                         "current_stage": state.evolution_stage})
    readiness = evolution_readiness(config, state)
    ensure_ready(readiness)
    if readiness.next_stage is None or readiness.next_stage > MAX_EVOLUTION_STAGES:
        raise not_ready_error(readiness)
    return readiness.next_stage


def operation_open(status: str) -> bool:
    """Whether an operation may still change state (a new evolve then reuses it)."""
    return status in OPEN_OPERATION_STATES


# -- metrics and summaries ---------------------------------------------------------------------
def _period_start(ordinal: int | None) -> str | None:
    return dt.date.fromordinal(ordinal).isoformat() if ordinal is not None else None


def progression_metrics(config: ConfigContent, state: ProgressState, unlocked_gates: Iterable[str],
                        evolutions: int) -> dict[str, Any]:
    """What a buddy has done and where it stands: counts, streaks, balances, badges, skills, stage."""
    periods = {s.key: s.period for s in config.streak_definitions.values()}
    readiness = evolution_readiness(config, state)
    return {
        "events_total": state.events_total,
        "event_counts": dict(sorted(state.event_counts.items())),
        "streaks": {key: {"current": s.current, "longest": s.longest, "period": periods.get(key, "daily"),
                          "last_period_start": _period_start(s.last_period)}
                    for key, s in sorted(state.streaks.items())},
        "longest_streak": max((s.longest for s in state.streaks.values()), default=0),
        "coins": state.coins,
        "coins_earned": state.coins_earned,
        "tokens": dict(sorted(state.tokens.items())),
        "badges_count": len(state.badges),
        "badges": list(state.badges),
        "skills": dict(sorted(state.skills.items())),
        "skills_total": sum(state.skills.values()),
        "evolution_stage": state.evolution_stage,
        "stage_name": stage_names(config).get(state.evolution_stage),
        "evolutions_count": evolutions,
        "evolution_ready": readiness.ready,
        "next_stage": readiness.next_stage,
        "gates_unlocked": sorted(unlocked_gates),
    }


def user_summary(user_id: str, buddies: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over a user's buddies (each ``buddy`` is the actor's ``summary_inputs``)."""
    tokens: dict[str, int] = {}
    for buddy in buddies:
        for key, amount in buddy["tokens"].items():
            tokens[key] = tokens.get(key, 0) + amount
    ordered = sorted(buddies, key=lambda b: (b["created_at"], b["buddy_id"]))
    return {
        "user_id": user_id,
        "buddy_count": len(buddies),
        "active_buddy_count": sum(1 for b in buddies if b["status"] == "active"),
        "coins": sum(b["coins"] for b in buddies),
        "coins_earned": sum(b["coins_earned"] for b in buddies),
        "badges_count": sum(len(b["badges"]) for b in buddies),
        "unique_badges": sorted({key for b in buddies for key in b["badges"]}),
        "tokens": dict(sorted(tokens.items())),
        "highest_stage": max((b["evolution_stage"] for b in buddies), default=0),
        "buddies": [{"buddy_id": b["buddy_id"], "name": b["name"], "status": b["status"],
                     "evolution_stage": b["evolution_stage"], "coins": b["coins"], "badges_count": len(b["badges"]),
                     "tokens": b["tokens"]} for b in ordered],
    }


def eggs_by_status(eggs: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for egg in eggs:
        counts[egg["status"]] = counts.get(egg["status"], 0) + 1
    return dict(sorted(counts.items()))
