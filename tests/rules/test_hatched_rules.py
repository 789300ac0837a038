"""The pure Hatched rule engine: each coin rule type, caps, tokens, skills, streak day
boundaries (zones, DST, weeks, freezes), badge criteria and evolution readiness."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from questline.rules.hatched import (
    EventInput,
    ProgressState,
    StreakState,
    evaluate_event,
    evolution_readiness,
    local_day,
    period_of,
)
from questline.rules.hatched_config import preset_content
from questline.rules.hatched_models import (
    BadgeCriteria,
    BadgeDefinition,
    CoinRule,
    ConfigContent,
    EvolutionRequirements,
    EvolutionStage,
    Skill,
    SkillRule,
    SkillSet,
    StreakDefinition,
    StreakReward,
    TokenConfig,
    TokenEarnRule,
)


def ms(text: str, tz: str = "UTC") -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp() * 1000)


_ids = iter(range(1_000_000))


def event(type: str = "lesson_completed", at: str = "2026-04-08T10:00:00", tz: str = "UTC",
          **properties: object) -> EventInput:
    return EventInput(event_id=f"evt_{next(_ids)}", type=type, occurred_at=ms(at, tz), timezone=tz,
                      properties=dict(properties))


def coins_config(**rule: object) -> ConfigContent:
    return ConfigContent(coin_rules={"cr_1": CoinRule(name="Rule", event_type="lesson_completed", **rule)})


def codes(evaluation) -> list[str]:  # noqa: ANN001 - tiny helper
    return [s.code for s in evaluation.skipped]


# -- coins ----------------------------------------------------------------------------------
def test_fixed_coins_write_a_ledger_credit_and_leave_input_state_alone() -> None:
    state = ProgressState()
    result = evaluate_event(coins_config(amount=10), state, event())
    assert result.effects.coins == 10 and result.state.coins == 10 and result.state.coins_earned == 10
    assert [(e.currency, e.delta, e.reason) for e in result.ledger] == [("coins", 10, "coin_rule:cr_1")]
    assert state.coins == 0 and state.events_total == 0  # pure: the input is not mutated
    assert result.state.event_counts == {"lesson_completed": 1}


def test_per_property_coins_floor_and_missing_property() -> None:
    config = coins_config(rule_type="per_property", amount=5, property="km")
    assert evaluate_event(config, ProgressState(), event(km=3.7)).effects.coins == 18
    missing = evaluate_event(config, ProgressState(), event())
    assert missing.effects.coins == 0 and codes(missing) == ["property_missing"]
    text = evaluate_event(config, ProgressState(), event(km="far"))
    assert codes(text) == ["property_missing"]
    tiny = evaluate_event(config, ProgressState(), event(km=0.1))
    assert codes(tiny) == ["zero_amount"]


def test_threshold_coins() -> None:
    config = coins_config(rule_type="threshold", amount=15, property="score", threshold=80)
    assert evaluate_event(config, ProgressState(), event(score=80)).effects.coins == 15
    low = evaluate_event(config, ProgressState(), event(score=79.5))
    assert low.effects.coins == 0 and codes(low) == ["below_threshold"]
    assert "79.5" in low.skipped[0].message and low.skipped[0].rule_id == "cr_1"


def test_first_time_coins_pay_once() -> None:
    config = coins_config(rule_type="first_time", amount=50)
    first = evaluate_event(config, ProgressState(), event())
    assert first.effects.coins == 50 and first.state.first_time_awarded == ["cr_1"]
    again = evaluate_event(config, first.state, event())
    assert again.effects.coins == 0 and codes(again) == ["already_awarded"]


def test_disabled_rule_explains_itself() -> None:
    result = evaluate_event(coins_config(amount=10, enabled=False), ProgressState(), event())
    assert result.effects.coins == 0 and codes(result) == ["rule_disabled"]


def test_unmatched_event_type_says_no_rule_listens() -> None:
    result = evaluate_event(coins_config(amount=10), ProgressState(), event("page_viewed"))
    assert codes(result) == ["no_matching_rule"] and not result.effects.any()
    assert result.state.event_counts == {"page_viewed": 1}


def test_daily_cap_grants_partially_then_nothing_and_resets_on_the_next_local_day() -> None:
    config = coins_config(amount=40, daily_cap=100)
    state = ProgressState()
    granted = []
    for _ in range(4):
        result = evaluate_event(config, state, event(at="2026-04-08T23:00:00", tz="Europe/Berlin"))
        state = result.state
        granted.append(result.effects.coins)
    assert granted == [40, 40, 20, 0]
    assert codes(result) == ["daily_cap_reached"]
    # 00:10 Berlin on the 9th is a new local day while UTC is still on the 8th.
    same = evaluate_event(config, state, event(at="2026-04-08T23:59:00", tz="Europe/Berlin"))
    assert same.effects.coins == 0
    next_day = evaluate_event(config, state, event(at="2026-04-09T00:10:00", tz="Europe/Berlin"))
    assert next_day.effects.coins == 40
    assert ms("2026-04-09T00:10:00", "Europe/Berlin") < ms("2026-04-09T00:00:00")  # still the 8th in UTC


def test_daily_cap_refuses_events_older_than_its_memory() -> None:
    config = coins_config(amount=10, daily_cap=100)
    state = evaluate_event(config, ProgressState(), event(at="2026-06-01T10:00:00")).state
    old = evaluate_event(config, state, event(at="2026-04-01T10:00:00"))
    assert old.effects.coins == 0 and codes(old) == ["event_too_old_for_cap"]
    recent = evaluate_event(config, state, event(at="2026-05-30T10:00:00"))
    assert recent.effects.coins == 10


# -- tokens and skills --------------------------------------------------------------------------
def test_tokens_from_earn_rules_respect_max_balance() -> None:
    config = ConfigContent(token_config={
        "energy": TokenConfig(token_key="energy", name="Energy", max_balance=5,
                              earn_rules=[TokenEarnRule(event_type="workout", amount=2)]),
        "xp": TokenConfig(token_key="xp", name="XP", earn_rules=[TokenEarnRule(event_type="workout", amount=10)]),
    })
    state = ProgressState()
    gains = []
    for _ in range(3):
        result = evaluate_event(config, state, event("workout"))
        state = result.state
        gains.append({t.token_key: t.amount for t in result.effects.tokens})
    assert gains == [{"energy": 2, "xp": 10}, {"energy": 2, "xp": 10}, {"energy": 1, "xp": 10}]
    assert state.tokens == {"energy": 5, "xp": 30}
    assert codes(result) == ["max_balance_reached"]
    assert [(e.currency, e.delta) for e in result.ledger] == [("energy", 1), ("xp", 10)]


def test_skill_rules_with_threshold_and_max_level() -> None:
    config = ConfigContent(
        skill_sets={"s": SkillSet(key="learning", name="L", skills=[Skill(key="focus", name="F", max_level=5)])},
        skill_rules={"skr": SkillRule(event_type="quiz", skill_key="focus", amount=3, min_property="score",
                                      min_value=80)},
    )
    low = evaluate_event(config, ProgressState(), event("quiz", score=50))
    assert low.effects.skills == [] and codes(low) == ["below_threshold"]
    first = evaluate_event(config, ProgressState(), event("quiz", score=90))
    assert [(s.skill_key, s.delta, s.level) for s in first.effects.skills] == [("focus", 3, 3)]
    second = evaluate_event(config, first.state, event("quiz", score=90))
    assert [(s.delta, s.level) for s in second.effects.skills] == [(2, 5)]
    third = evaluate_event(config, second.state, event("quiz", score=90))
    assert third.effects.skills == [] and codes(third) == ["skill_at_limit"]


# -- streaks --------------------------------------------------------------------------------------
def streak_config(period: str = "daily", **reward: object) -> ConfigContent:
    rewards = [StreakReward(**reward)] if reward else []
    return ConfigContent(streak_definitions={
        "stk": StreakDefinition(key="daily", name="D", event_type="lesson_completed", period=period, rewards=rewards)})


def run(config: ConfigContent, stamps: list[tuple[str, str]], state: ProgressState | None = None):  # noqa: ANN201
    state = state or ProgressState()
    results = []
    for at, tz in stamps:
        result = evaluate_event(config, state, event(at=at, tz=tz))
        state = result.state
        results.append(result)
    return state, results


def test_daily_streak_counts_local_days_once() -> None:
    state, results = run(streak_config(), [("2026-04-08T09:00:00", "UTC"), ("2026-04-08T21:00:00", "UTC"),
                                           ("2026-04-09T00:01:00", "UTC")])
    assert [r.effects.streaks[0].status if r.effects.streaks else None for r in results] == [
        "started", None, "extended"]
    assert codes(results[1]) == ["already_counted"]
    assert state.streaks["daily"].current == 2


def test_streak_day_boundary_is_the_users_midnight_not_utcs() -> None:
    # 23:30 and 00:30 New York time: two local days (and, here, one UTC day).
    state, _ = run(streak_config(), [("2026-04-08T23:30:00", "America/New_York"),
                                     ("2026-04-09T00:30:00", "America/New_York")])
    assert state.streaks["daily"].current == 2
    # Two events on one New York day that straddle UTC midnight count once.
    state, results = run(streak_config(), [("2026-04-08T18:00:00", "America/New_York"),
                                           ("2026-04-08T21:00:00", "America/New_York")])
    assert state.streaks["daily"].current == 1 and codes(results[1]) == ["already_counted"]


def test_streak_over_a_dst_change_neither_breaks_nor_double_counts() -> None:
    # Europe/Berlin springs forward on 2026-03-29 (a 23-hour day).
    state, results = run(streak_config(), [("2026-03-28T23:30:00", "Europe/Berlin"),
                                           ("2026-03-29T23:30:00", "Europe/Berlin"),
                                           ("2026-03-30T00:15:00", "Europe/Berlin")])
    assert [r.effects.streaks[0].current for r in results] == [1, 2, 3]
    assert local_day(ms("2026-03-30T00:15:00", "Europe/Berlin"), "Europe/Berlin") - \
        local_day(ms("2026-03-29T23:30:00", "Europe/Berlin"), "Europe/Berlin") == 1
    assert state.streaks["daily"].longest == 3


def test_missed_day_restarts_unless_freezes_cover_it() -> None:
    stamps = [("2026-04-08T10:00:00", "UTC"), ("2026-04-09T10:00:00", "UTC"), ("2026-04-12T10:00:00", "UTC")]
    state, results = run(streak_config(), stamps)
    assert results[-1].effects.streaks[0].status == "restarted" and state.streaks["daily"].current == 1
    assert state.streaks["daily"].longest == 2
    frozen, results = run(streak_config(), stamps, ProgressState(tokens={"streak_freeze": 2}))
    last = results[-1]
    assert last.effects.streaks[0].status == "kept_by_freeze" and last.effects.streaks[0].freezes_used == 2
    assert frozen.streaks["daily"].current == 3 and frozen.tokens["streak_freeze"] == 0
    assert [(e.currency, e.delta) for e in last.ledger] == [("streak_freeze", -2)]
    short, _ = run(streak_config(), stamps, ProgressState(tokens={"streak_freeze": 1}))
    assert short.streaks["daily"].current == 1 and short.tokens["streak_freeze"] == 1


def test_late_event_for_an_earlier_day_does_not_move_the_streak() -> None:
    _, results = run(streak_config(), [("2026-04-09T10:00:00", "UTC"), ("2026-04-07T10:00:00", "UTC")])
    assert results[1].effects.streaks == [] and codes(results[1]) == ["older_than_streak"]


def test_weekly_streak_counts_iso_weeks() -> None:
    # Sunday then Monday: two ISO weeks; Monday then Sunday: one.
    assert period_of(dt.date(2026, 4, 12).toordinal(), "weekly") == dt.date(2026, 4, 6).toordinal()
    state, _ = run(streak_config("weekly"), [("2026-04-12T10:00:00", "UTC"), ("2026-04-13T10:00:00", "UTC")])
    assert state.streaks["daily"].current == 2
    state, results = run(streak_config("weekly"), [("2026-04-13T10:00:00", "UTC"), ("2026-04-19T10:00:00", "UTC")])
    assert state.streaks["daily"].current == 1 and codes(results[1]) == ["already_counted"]
    state, _ = run(streak_config("weekly"), [("2026-04-13T10:00:00", "UTC"), ("2026-04-28T10:00:00", "UTC")])
    assert state.streaks["daily"].current == 1  # a whole week was missed


def test_streak_rewards_pay_when_the_length_is_reached() -> None:
    config = ConfigContent(
        badge_definitions={"b": BadgeDefinition(key="three", name="Three",
                                                criteria=BadgeCriteria(type="event_count", event_type="x",
                                                                       threshold=99))},
        token_config={"f": TokenConfig(token_key="streak_freeze", name="Freeze", max_balance=3)},
        streak_definitions={"stk": StreakDefinition(
            key="daily", name="D", event_type="lesson_completed",
            rewards=[StreakReward(length=3, coins=20, token_key="streak_freeze", tokens=1, badge_key="three")])},
    )
    state, results = run(config, [(f"2026-04-0{d}T10:00:00", "UTC") for d in (1, 2, 3, 4)])
    assert [r.effects.coins for r in results] == [0, 0, 20, 0]
    assert results[2].effects.badges_awarded == ["three"]
    assert [(t.token_key, t.amount) for t in results[2].effects.tokens] == [("streak_freeze", 1)]
    assert state.badges == ["three"] and state.coins_earned == 20


# -- badges and evolution ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("criteria", "state", "met"),
    [
        (BadgeCriteria(type="event_count", event_type="lesson_completed", threshold=2),
         ProgressState(event_counts={"lesson_completed": 1}), True),
        (BadgeCriteria(type="event_count", event_type="lesson_completed", threshold=3),
         ProgressState(event_counts={"lesson_completed": 1}), False),
        (BadgeCriteria(type="coins_earned", threshold=10), ProgressState(), True),
        (BadgeCriteria(type="coins_earned", threshold=11), ProgressState(), False),
        (BadgeCriteria(type="skill_level", skill_key="focus", threshold=4), ProgressState(skills={"focus": 4}), True),
        (BadgeCriteria(type="skill_level", skill_key="focus", threshold=5), ProgressState(skills={"focus": 4}), False),
        (BadgeCriteria(type="streak_length", streak_key="s", threshold=3),
         ProgressState(streaks={"s": StreakState(current=1, longest=3, last_period=1)}), True),
        (BadgeCriteria(type="streak_length", streak_key="s", threshold=4),
         ProgressState(streaks={"s": StreakState(current=1, longest=3, last_period=1)}), False),
        (BadgeCriteria(type="evolution_stage", threshold=2), ProgressState(evolution_stage=2), True),
        (BadgeCriteria(type="evolution_stage", threshold=3), ProgressState(evolution_stage=2), False),
    ],
)
def test_badge_criteria_types(criteria: BadgeCriteria, state: ProgressState, met: bool) -> None:
    config = ConfigContent(coin_rules={"cr": CoinRule(name="c", event_type="lesson_completed", amount=10)},
                           badge_definitions={"bdg": BadgeDefinition(key="b", name="B", criteria=criteria)})
    result = evaluate_event(config, state, event())
    assert result.effects.badges_awarded == (["b"] if met else [])
    if met:  # a badge is awarded once
        assert evaluate_event(config, result.state, event()).effects.badges_awarded == []


def test_evolution_readiness_lists_what_is_missing() -> None:
    config = ConfigContent(
        coin_rules={"cr": CoinRule(name="c", event_type="lesson_completed", amount=10)},
        badge_definitions={"b": BadgeDefinition(key="first", name="F", criteria=BadgeCriteria(
            type="event_count", event_type="lesson_completed", threshold=1))},
        evolution_rules=[EvolutionStage(stage=1, name="Egg"),
                         EvolutionStage(stage=2, name="Sprout", requirements=EvolutionRequirements(
                             min_coins_earned=20, min_events=2, badges=["first"]))],
    )
    first = evaluate_event(config, ProgressState(), event())
    assert first.effects.evolution_ready is False
    assert first.readiness.missing == ["coins_earned 10/20", "events 1/2"]
    second = evaluate_event(config, first.state, event())
    assert second.effects.evolution_ready is True and second.readiness.next_stage == 2
    final = evolution_readiness(config, ProgressState(evolution_stage=2))
    assert final.ready is False and final.next_stage is None


def test_learning_preset_end_to_end() -> None:
    config = preset_content("learning")
    assert config is not None
    result = evaluate_event(config, ProgressState(), event(at="2026-04-08T10:00:00"))
    effects = result.effects
    assert effects.coins == 60  # 10 per lesson + 50 first-lesson bonus
    assert effects.badges_awarded == ["first_lesson"]
    assert {t.token_key: t.amount for t in effects.tokens} == {"xp": 20}
    assert [(s.skill_key, s.delta) for s in effects.skills] == [("knowledge", 2)]
    assert [(s.streak_key, s.status) for s in effects.streaks] == [("daily_learning", "started")]
