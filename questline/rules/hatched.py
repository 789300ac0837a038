"""Hatched's rule engine: one event in, the effects on one buddy out. Pure.

No I/O and no clock reads: the buddy actor passes the event (with its
``occurred_at`` in Unix ms and the zone its days count in) and its own state,
and gets back the new state, the effects to report, the ledger credits/debits to
write, and why each matching rule gave nothing -- the "why didn't this event
produce a reward?" answer the contract asks for. Everything is evaluated
against the config the buddy is pinned to, never the customer's latest one.

Order inside one event: count it, coins (``daily_cap``, ``first_time``), tokens
(``earn_rules``, ``max_balance``), skills, streaks (freezes, rewards), badges,
then evolution readiness -- so a badge or readiness sees this event's gains.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from questline.rules.hatched_models import ConfigContent, EvolutionStage, StreakDefinition

# Daily coin totals are kept this many days back; a backdated event older than
# that cannot prove it is under its cap, so capped rules skip it.
CAP_RETENTION_DAYS = 35
STREAK_FREEZE = "streak_freeze"


# -- inputs and state --------------------------------------------------------------------
class EventInput(msgspec.Struct, kw_only=True):
    event_id: str
    type: str
    occurred_at: int  # Unix ms
    timezone: str = "UTC"
    properties: dict[str, Any] = {}


class StreakState(msgspec.Struct, kw_only=True):
    current: int = 0
    longest: int = 0
    last_period: int | None = None  # ordinal of the local day (daily) or of its week's Monday (weekly)


class ProgressState(msgspec.Struct, kw_only=True):
    """What rules read and write on a buddy (balances are the ledger's projections)."""

    coins: int = 0
    coins_earned: int = 0
    tokens: dict[str, int] = {}
    skills: dict[str, int] = {}
    badges: list[str] = []
    evolution_stage: int = 1
    events_total: int = 0
    event_counts: dict[str, int] = {}
    first_time_awarded: list[str] = []
    coin_days: dict[str, dict[str, int]] = {}  # coin rule id -> {local day ordinal: coins}
    streaks: dict[str, StreakState] = {}


# -- outputs -------------------------------------------------------------------------------
class TokenEffect(msgspec.Struct, kw_only=True):
    token_key: str
    amount: int
    balance: int


class SkillEffect(msgspec.Struct, kw_only=True):
    skill_key: str
    delta: int
    level: int


class StreakEffect(msgspec.Struct, kw_only=True):
    streak_key: str
    status: str  # started | extended | kept_by_freeze | restarted
    current: int
    longest: int
    freezes_used: int = 0


class Effects(msgspec.Struct, kw_only=True):
    coins: int = 0
    badges_awarded: list[str] = []
    tokens: list[TokenEffect] = []
    skills: list[SkillEffect] = []
    streaks: list[StreakEffect] = []
    evolution_ready: bool = False

    def any(self) -> bool:
        return bool(self.coins or self.badges_awarded or self.tokens or self.skills or self.streaks)


class LedgerEntry(msgspec.Struct, kw_only=True):
    """One row the buddy actor appends: signed ``delta`` in ``currency``."""

    currency: str
    delta: int
    reason: str


class Skip(msgspec.Struct, kw_only=True):
    """Why a rule that could have applied gave nothing."""

    code: str
    message: str
    rule_id: str | None = None


class Readiness(msgspec.Struct, kw_only=True):
    ready: bool
    current_stage: int
    next_stage: int | None
    next_stage_name: str | None
    missing: list[str]


class Evaluation(msgspec.Struct, kw_only=True):
    state: ProgressState
    effects: Effects
    ledger: list[LedgerEntry]
    skipped: list[Skip]
    readiness: Readiness


# -- days and periods ------------------------------------------------------------------------
def zone(name: str) -> ZoneInfo:
    """The IANA zone, or ``ValueError`` (the HTTP layer turns it into a 400)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def local_day(ms: int, tz: str) -> int:
    """The proleptic ordinal of the calendar day ``ms`` falls on in ``tz``: DST-proof,
    because it comes from the wall-clock date, never from dividing by 86400."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=zone(tz)).date().toordinal()


def period_of(day: int, period: str) -> int:
    """Daily: the day itself; weekly: the Monday of its ISO week (so gaps are in days)."""
    if period == "weekly":
        return day - dt.date.fromordinal(day).weekday()
    return day


def period_length(period: str) -> int:
    return 7 if period == "weekly" else 1


# -- the engine --------------------------------------------------------------------------------
def _number(properties: dict[str, Any], name: str | None) -> float | None:
    value = properties.get(name) if name else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


class _Run:
    """Mutable scratch of one evaluation (never escapes :func:`evaluate_event`)."""

    def __init__(self, config: ConfigContent, state: ProgressState, event: EventInput) -> None:
        self.config = config
        self.state = state
        self.event = event
        self.day = local_day(event.occurred_at, event.timezone)
        self.effects = Effects()
        self.ledger: list[LedgerEntry] = []
        self.skipped: list[Skip] = []
        self.token_gains: dict[str, int] = {}

    def skip(self, code: str, message: str, rule_id: str | None = None) -> None:
        self.skipped.append(Skip(code=code, message=message, rule_id=rule_id))

    def credit_coins(self, amount: int, reason: str) -> None:
        if amount <= 0:
            return
        self.state.coins += amount
        self.state.coins_earned += amount
        self.effects.coins += amount
        self.ledger.append(LedgerEntry(currency="coins", delta=amount, reason=reason))

    def credit_tokens(self, token_key: str, amount: int, reason: str, rule_id: str | None) -> None:
        cfg = next((t for t in self.config.token_config.values() if t.token_key == token_key), None)
        balance = self.state.tokens.get(token_key, 0)
        granted = amount
        if cfg is not None and cfg.max_balance is not None:
            granted = max(0, min(amount, cfg.max_balance - balance))
            if granted < amount:
                self.skip("max_balance_reached",
                          f"{token_key} is capped at {cfg.max_balance}; {amount - granted} of {amount} not granted",
                          rule_id)
        if granted <= 0:
            return
        self.state.tokens[token_key] = balance + granted
        self.token_gains[token_key] = self.token_gains.get(token_key, 0) + granted
        self.ledger.append(LedgerEntry(currency=token_key, delta=granted, reason=reason))

    def award_badge(self, key: str) -> None:
        if key not in self.state.badges:
            self.state.badges.append(key)
            self.effects.badges_awarded.append(key)

    # -- rule kinds ----------------------------------------------------------------------
    def coins(self) -> None:
        for rule_id, rule in self.config.coin_rules.items():
            if rule.event_type != self.event.type:
                continue
            if not rule.enabled:
                self.skip("rule_disabled", f"coin rule {rule.name} is disabled", rule_id)
                continue
            amount = self._coin_amount(rule_id, rule)
            if amount <= 0:
                continue
            if rule.daily_cap is not None:
                amount = self._apply_cap(rule_id, rule.daily_cap, amount)
                if amount <= 0:
                    continue
            if rule.rule_type == "first_time":
                self.state.first_time_awarded.append(rule_id)
            self.credit_coins(amount, f"coin_rule:{rule_id}")

    def _coin_amount(self, rule_id: str, rule: Any) -> int:
        props = self.event.properties
        if rule.rule_type == "fixed":
            return rule.amount
        if rule.rule_type == "first_time":
            if rule_id in self.state.first_time_awarded:
                self.skip("already_awarded", f"coin rule {rule.name} pays only the first time", rule_id)
                return 0
            return rule.amount
        value = _number(props, rule.property)
        if value is None:
            self.skip("property_missing", f"coin rule {rule.name} needs numeric property {rule.property}", rule_id)
            return 0
        if rule.rule_type == "per_property":
            amount = int(math.floor(rule.amount * value))
            if amount <= 0:
                self.skip("zero_amount", f"coin rule {rule.name}: {rule.property}={value:g} gives no coins", rule_id)
            return amount
        # threshold
        threshold = rule.threshold if rule.threshold is not None else 0.0
        if value < threshold:
            self.skip("below_threshold",
                      f"coin rule {rule.name}: {rule.property}={value:g} is below the threshold {threshold:g}", rule_id)
            return 0
        return rule.amount

    def _apply_cap(self, rule_id: str, cap: int, amount: int) -> int:
        days = self.state.coin_days.setdefault(rule_id, {})
        newest = max((int(d) for d in days), default=self.day)
        if self.day < newest - CAP_RETENTION_DAYS:
            self.skip("event_too_old_for_cap",
                      f"events older than {CAP_RETENTION_DAYS} days cannot be checked against the daily cap", rule_id)
            return 0
        spent = days.get(str(self.day), 0)
        granted = max(0, min(amount, cap - spent))
        if granted < amount:
            self.skip("daily_cap_reached",
                      f"daily cap of {cap} coins reached ({spent} already earned today); "
                      f"{amount - granted} of {amount} not granted", rule_id)
        if granted > 0:
            days[str(self.day)] = spent + granted
            horizon = max(newest, self.day) - CAP_RETENTION_DAYS
            self.state.coin_days[rule_id] = {d: v for d, v in days.items() if int(d) >= horizon}
        return granted

    def tokens(self) -> None:
        for cfg_id, cfg in self.config.token_config.items():
            for rule in cfg.earn_rules:
                if rule.event_type == self.event.type:
                    self.credit_tokens(cfg.token_key, rule.amount, f"token_rule:{cfg_id}", cfg_id)

    def skills(self) -> None:
        max_levels = {s.key: s.max_level for ss in self.config.skill_sets.values() for s in ss.skills}
        for rule_id, rule in self.config.skill_rules.items():
            if rule.event_type != self.event.type:
                continue
            if rule.min_property is not None:
                value = _number(self.event.properties, rule.min_property)
                floor = rule.min_value if rule.min_value is not None else 0.0
                if value is None or value < floor:
                    shown = "missing" if value is None else f"{value:g}"
                    self.skip("below_threshold",
                              f"skill rule needs {rule.min_property} >= {floor:g} (got {shown})", rule_id)
                    continue
            if rule.skill_key not in max_levels:
                self.skip("unknown_skill", f"skill {rule.skill_key} is not in this config's skill sets", rule_id)
                continue
            before = self.state.skills.get(rule.skill_key, 0)
            after = max(0, min(max_levels[rule.skill_key], before + rule.amount))
            if after == before:
                self.skip("skill_at_limit", f"skill {rule.skill_key} is already at {before}", rule_id)
                continue
            self.state.skills[rule.skill_key] = after
            self.effects.skills.append(SkillEffect(skill_key=rule.skill_key, delta=after - before, level=after))

    def streaks(self) -> None:
        for streak_id, streak in self.config.streak_definitions.items():
            if streak.event_type == self.event.type:
                self._streak(streak_id, streak)

    def _streak(self, streak_id: str, streak: StreakDefinition) -> None:
        state = self.state.streaks.setdefault(streak.key, StreakState())
        period = period_of(self.day, streak.period)
        step = period_length(streak.period)
        freezes = 0
        if state.last_period is not None and period <= state.last_period:
            code = "already_counted" if period == state.last_period else "older_than_streak"
            word = "day" if streak.period == "daily" else "week"
            self.skip(code, f"streak {streak.key} already counted this {word}" if code == "already_counted"
                      else f"streak {streak.key} has moved past this event's {word}", streak_id)
            return
        if state.last_period is None:
            status, current = "started", 1
        elif period - state.last_period == step:
            status, current = "extended", state.current + 1
        else:
            missed = (period - state.last_period) // step - 1
            held = self.state.tokens.get(STREAK_FREEZE, 0)
            if 0 < missed <= held:
                freezes = missed
                self.state.tokens[STREAK_FREEZE] = held - missed
                self.token_gains[STREAK_FREEZE] = self.token_gains.get(STREAK_FREEZE, 0) - missed
                self.ledger.append(LedgerEntry(currency=STREAK_FREEZE, delta=-missed, reason=f"streak_freeze:{streak_id}"))
                status, current = "kept_by_freeze", state.current + 1
            else:
                status, current = "restarted", 1
        state.current = current
        state.longest = max(state.longest, current)
        state.last_period = period
        self.effects.streaks.append(StreakEffect(streak_key=streak.key, status=status, current=current,
                                                 longest=state.longest, freezes_used=freezes))
        for reward in streak.rewards:
            if reward.length != current:
                continue
            self.credit_coins(reward.coins, f"streak_reward:{streak_id}:{reward.length}")
            if reward.token_key and reward.tokens:
                self.credit_tokens(reward.token_key, reward.tokens, f"streak_reward:{streak_id}:{reward.length}",
                                   streak_id)
            if reward.badge_key:
                self.award_badge(reward.badge_key)

    def badges(self) -> None:
        for badge in self.config.badge_definitions.values():
            if badge.key not in self.state.badges and criteria_met(badge.criteria, self.state):
                self.award_badge(badge.key)


def criteria_met(criteria: Any, state: ProgressState) -> bool:
    """Whether a buddy's state satisfies one badge criterion (the fixed criteria enum)."""
    kind, threshold = criteria.type, criteria.threshold
    if kind == "event_count":
        return state.event_counts.get(criteria.event_type or "", 0) >= threshold
    if kind == "coins_earned":
        return state.coins_earned >= threshold
    if kind == "streak_length":
        streak = state.streaks.get(criteria.streak_key or "")
        return streak is not None and streak.longest >= threshold
    if kind == "skill_level":
        return state.skills.get(criteria.skill_key or "", 0) >= threshold
    if kind == "evolution_stage":
        return state.evolution_stage >= threshold
    return False


def evolution_readiness(config: ConfigContent, state: ProgressState) -> Readiness:
    """Whether the buddy meets every requirement of its next stage, and what is missing."""
    stages: dict[int, EvolutionStage] = {s.stage: s for s in config.evolution_rules}
    nxt = stages.get(state.evolution_stage + 1)
    if nxt is None:
        return Readiness(ready=False, current_stage=state.evolution_stage, next_stage=None, next_stage_name=None,
                         missing=["already at the final stage"])
    req = nxt.requirements
    missing: list[str] = []
    if state.coins_earned < req.min_coins_earned:
        missing.append(f"coins_earned {state.coins_earned}/{req.min_coins_earned}")
    if state.events_total < req.min_events:
        missing.append(f"events {state.events_total}/{req.min_events}")
    best_streak = max((s.longest for s in state.streaks.values()), default=0)
    if best_streak < req.min_streak:
        missing.append(f"streak {best_streak}/{req.min_streak}")
    missing.extend(f"badge {key}" for key in req.badges if key not in state.badges)
    for skill, level in req.skill_levels.items():
        have = state.skills.get(skill, 0)
        if have < level:
            missing.append(f"skill {skill} {have}/{level}")
    return Readiness(ready=not missing, current_stage=state.evolution_stage, next_stage=nxt.stage,
                     next_stage_name=nxt.name, missing=missing)


def matching_event_types(config: ConfigContent) -> set[str]:
    """Every event type some rule of this config listens to."""
    types = {r.event_type for r in config.coin_rules.values()}
    types |= {r.event_type for r in config.skill_rules.values()}
    types |= {r.event_type for t in config.token_config.values() for r in t.earn_rules}
    types |= {s.event_type for s in config.streak_definitions.values()}
    types |= {b.criteria.event_type for b in config.badge_definitions.values()
              if b.criteria.type == "event_count" and b.criteria.event_type}
    return types


def evaluate_event(config: ConfigContent, state: ProgressState, event: EventInput) -> Evaluation:
    """Apply one event to a copy of ``state`` under ``config``; the input is not mutated."""
    run = _Run(config, msgspec.convert(msgspec.to_builtins(state), ProgressState), event)
    run.state.events_total += 1
    run.state.event_counts[event.type] = run.state.event_counts.get(event.type, 0) + 1
    if event.type not in matching_event_types(config):
        run.skip("no_matching_rule", f"no rule of config listens to event type {event.type}")
    run.coins()
    run.tokens()
    run.skills()
    run.streaks()
    run.badges()
    run.effects.tokens = [TokenEffect(token_key=k, amount=v, balance=run.state.tokens.get(k, 0))
                          for k, v in run.token_gains.items() if v]
    readiness = evolution_readiness(config, run.state)
    run.effects.evolution_ready = readiness.ready
    return Evaluation(state=run.state, effects=run.effects, ledger=run.ledger, skipped=run.skipped,
                      readiness=readiness)
