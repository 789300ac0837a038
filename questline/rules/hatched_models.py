"""Hatched wire and config models: snake_case msgspec Structs, unknown fields rejected.

Rule types are fixed enums (the contract's "template-first" V1: pick a trigger, a
reward, a limit), so every config a customer can publish is one the engine in
``rules/hatched.py`` knows how to evaluate.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

Key = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.:-]*$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Text = Annotated[str, msgspec.Meta(max_length=2000)]
EventType = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
PosInt = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]

TokenKey = Literal["xp", "energy", "gems", "streak_freeze"]
TOKEN_KEYS: tuple[str, ...] = ("xp", "energy", "gems", "streak_freeze")
CoinRuleType = Literal["fixed", "per_property", "threshold", "first_time"]
BadgeCriteriaType = Literal["event_count", "coins_earned", "streak_length", "skill_level", "evolution_stage"]
StreakPeriod = Literal["daily", "weekly"]
MAX_EVOLUTION_STAGES = 5


def iso_ms(ms: int) -> str:
    """Unix ms -> ``2026-04-08T10:30:00Z`` (the contract's timestamp style)."""
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    text = moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")
    return text.replace("+00:00", "Z")


class Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=False, kw_only=True):
    """Base of every request body: snake_case only, unknown properties rejected."""


# -- config sections -------------------------------------------------------------------
class Skill(Strict, kw_only=True):
    key: Key
    name: Name
    max_level: PosInt = 100


class SkillSet(Strict, kw_only=True):
    key: Key
    name: Name
    description: Text = ""
    skills: Annotated[list[Skill], msgspec.Meta(max_length=50)] = []


class SkillRule(Strict, kw_only=True):
    """``event_type`` raises ``skill_key`` by ``amount`` (optionally only when a property is at least a value)."""

    event_type: EventType
    skill_key: Key
    amount: Annotated[int, msgspec.Meta(ge=-1000, le=1000)] = 1
    min_property: Key | None = None
    min_value: float | None = None


class CoinRule(Strict, kw_only=True):
    """Trigger (``event_type``), reward (``rule_type`` + ``amount``), limit (``daily_cap``)."""

    name: Name
    event_type: EventType
    rule_type: CoinRuleType = "fixed"
    amount: PosInt = 1
    property: Key | None = None
    threshold: float | None = None
    daily_cap: PosInt | None = None
    enabled: bool = True


class BadgeCriteria(Strict, kw_only=True):
    type: BadgeCriteriaType
    threshold: PosInt = 1
    event_type: EventType | None = None
    skill_key: Key | None = None
    streak_key: Key | None = None


class BadgeDefinition(Strict, kw_only=True):
    key: Key
    name: Name
    criteria: BadgeCriteria
    description: Text = ""
    icon_url: str | None = None


class EvolutionRequirements(Strict, kw_only=True):
    min_coins_earned: NonNegInt = 0
    min_events: NonNegInt = 0
    min_streak: NonNegInt = 0
    badges: list[Key] = []
    skill_levels: dict[str, NonNegInt] = {}


class EvolutionStage(Strict, kw_only=True):
    stage: Annotated[int, msgspec.Meta(ge=1, le=MAX_EVOLUTION_STAGES)]
    name: Name
    requirements: EvolutionRequirements = msgspec.field(default_factory=EvolutionRequirements)


class TokenEarnRule(Strict, kw_only=True):
    event_type: EventType
    amount: PosInt = 1


class TokenConfig(Strict, kw_only=True):
    token_key: TokenKey
    name: Name
    kind: Literal["primary", "progression"] = "progression"
    earn_rules: Annotated[list[TokenEarnRule], msgspec.Meta(max_length=50)] = []
    max_balance: PosInt | None = None


class StreakReward(Strict, kw_only=True):
    length: PosInt
    coins: NonNegInt = 0
    token_key: TokenKey | None = None
    tokens: NonNegInt = 0
    badge_key: Key | None = None


class StreakDefinition(Strict, kw_only=True):
    key: Key
    name: Name
    event_type: EventType
    period: StreakPeriod = "daily"
    rewards: Annotated[list[StreakReward], msgspec.Meta(max_length=50)] = []


class Gate(Strict, kw_only=True):
    name: Name
    description: Text = ""
    token_key: TokenKey
    cost: PosInt


class Requirement(Strict, kw_only=True):
    """A marketplace visibility/purchase requirement with a predefined operator."""

    type: Literal["min_stage", "has_badge", "skill_at_least", "min_coins_earned", "gate_unlocked"]
    value: int | str
    skill_key: Key | None = None


class ConfigContent(Strict, kw_only=True):
    """Everything a config version pins: one immutable snapshot once published."""

    skill_sets: dict[str, SkillSet] = {}
    skill_rules: dict[str, SkillRule] = {}
    coin_rules: dict[str, CoinRule] = {}
    badge_definitions: dict[str, BadgeDefinition] = {}
    evolution_rules: Annotated[list[EvolutionStage], msgspec.Meta(max_length=MAX_EVOLUTION_STAGES)] = []
    token_config: dict[str, TokenConfig] = {}
    streak_definitions: dict[str, StreakDefinition] = {}
    gates: dict[str, Gate] = {}
    marketplace_requirements: dict[str, list[Requirement]] = {}


# Sections edited item by item through their own routes: section -> (item type, id prefix).
SECTIONS: dict[str, tuple[type[Strict], str]] = {
    "skill_sets": (SkillSet, "sks"),
    "skill_rules": (SkillRule, "skr"),
    "coin_rules": (CoinRule, "cr"),
    "badge_definitions": (BadgeDefinition, "bdg"),
    "streak_definitions": (StreakDefinition, "stk"),
}
# Sections whose items carry a customer-chosen ``key`` that must stay unique.
KEYED_SECTIONS = frozenset({"skill_sets", "badge_definitions", "streak_definitions"})


def content_to_builtins(content: ConfigContent) -> dict[str, Any]:
    return msgspec.to_builtins(content)


def content_from_builtins(raw: dict[str, Any]) -> ConfigContent:
    return msgspec.convert(raw, ConfigContent)
