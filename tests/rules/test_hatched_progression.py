"""Pure progression checks: skill bounds, badge lookups and criteria, typed token wallets and
token changes, gate costs, evolution progress and the run-time evolve re-check, metrics and
per-user summaries."""

from __future__ import annotations

import datetime as dt

import pytest

from questline.rules.hatched import ProgressState, StreakState
from questline.rules.hatched_config import preset_content
from questline.rules.hatched_errors import HatchedError
from questline.rules.hatched_models import (
    BadgeCriteria,
    BadgeDefinition,
    ConfigContent,
    EvolutionRequirements,
    EvolutionStage,
    Gate,
    Skill,
    SkillSet,
    StreakDefinition,
    TokenConfig,
)
from questline.rules.hatched_progression import (
    SkillUpdate,
    apply_skill_updates,
    badge_for,
    badge_view,
    check_token_change,
    eggs_by_status,
    evolution_progress,
    evolve_target,
    final_stage,
    gate_unlock_balance,
    newly_met_badges,
    operation_open,
    progression_metrics,
    skill_limits,
    token_wallet,
    user_summary,
)


def config() -> ConfigContent:
    return ConfigContent(
        skill_sets={"a": SkillSet(key="mind", name="Mind", skills=[Skill(key="focus", name="Focus", max_level=10)]),
                    "b": SkillSet(key="body", name="Body", skills=[Skill(key="grit", name="Grit")])},
        badge_definitions={
            "b1": BadgeDefinition(key="focused", name="Focused",
                                  criteria=BadgeCriteria(type="skill_level", skill_key="focus", threshold=5)),
            "b2": BadgeDefinition(key="grown", name="Grown", criteria=BadgeCriteria(type="evolution_stage", threshold=2)),
            "b3": BadgeDefinition(key="hero", name="Hero",
                                  criteria=BadgeCriteria(type="event_count", event_type="rescue", threshold=3)),
        },
        evolution_rules=[
            EvolutionStage(stage=1, name="Egg"),
            EvolutionStage(stage=2, name="Sprout", requirements=EvolutionRequirements(
                min_coins_earned=100, badges=["hero"], skill_levels={"focus": 4})),
        ],
        token_config={"t1": TokenConfig(token_key="gems", name="Gems", kind="primary", max_balance=50),
                      "t2": TokenConfig(token_key="xp", name="XP")},
        streak_definitions={"s1": StreakDefinition(key="weekly", name="Weekly", event_type="x", period="weekly")},
        gates={"vip": Gate(name="VIP", token_key="gems", cost=20)},
    )


def code_of(excinfo: pytest.ExceptionInfo[HatchedError]) -> tuple[int, str]:
    return excinfo.value.status, excinfo.value.code


# -- skills ----------------------------------------------------------------------------------
def test_skill_limits_span_every_skill_set() -> None:
    assert skill_limits(config()) == {"focus": 10, "grit": 100}


def test_skill_updates_apply_in_order_without_mutating_the_input() -> None:
    before = {"focus": 2}
    levels, changes = apply_skill_updates(config(), before, [
        SkillUpdate(skill_key="focus", operation="increase", value=3),
        SkillUpdate(skill_key="grit", operation="set", value=40)])
    assert levels == {"focus": 5, "grit": 40} and before == {"focus": 2}
    assert [(c["skill_key"], c["before"], c["after"], c["delta"]) for c in changes] == [
        ("focus", 2, 5, 3), ("grit", 0, 40, 40)]
    levels, _ = apply_skill_updates(config(), levels, [SkillUpdate(skill_key="focus", operation="decrease", value=5)])
    assert levels["focus"] == 0


@pytest.mark.parametrize(("updates", "expected"), [
    ([("focus", "set", 11)], (422, "skill_out_of_bounds")),
    ([("focus", "decrease", 3)], (422, "skill_out_of_bounds")),
    ([("grit", "increase", 99)], (422, "skill_out_of_bounds")),
    ([("luck", "set", 1)], (422, "unknown_skill")),
    ([("focus", "increase", 0)], (400, "validation_error")),
    ([("focus", "set", 1), ("focus", "set", 2)], (400, "validation_error")),
])
def test_bad_skill_updates_are_refused(updates: list[tuple[str, str, int]], expected: tuple[int, str]) -> None:
    with pytest.raises(HatchedError) as excinfo:
        apply_skill_updates(config(), {"focus": 2, "grit": 2},
                            [SkillUpdate(skill_key=k, operation=op, value=v) for k, op, v in updates])  # type: ignore[arg-type]
    assert code_of(excinfo) == expected


def test_set_to_the_bounds_is_allowed() -> None:
    levels, _ = apply_skill_updates(config(), {"focus": 4}, [SkillUpdate(skill_key="focus", operation="set", value=10)])
    assert levels == {"focus": 10}
    levels, _ = apply_skill_updates(config(), levels, [SkillUpdate(skill_key="focus", operation="set", value=0)])
    assert levels == {"focus": 0}


# -- badges ----------------------------------------------------------------------------------
def test_badge_lookup_and_newly_met_badges() -> None:
    assert badge_for(config(), "hero").name == "Hero"
    with pytest.raises(HatchedError) as excinfo:
        badge_for(config(), "legend")
    assert code_of(excinfo) == (422, "unknown_badge")
    assert excinfo.value.details == {"badge_key": "legend", "allowed": ["focused", "grown", "hero"]}
    state = ProgressState(skills={"focus": 5}, evolution_stage=2, badges=["grown"])
    assert newly_met_badges(config(), state) == ["focused"]
    assert newly_met_badges(config(), ProgressState()) == []


def test_badge_view_keeps_badges_the_config_no_longer_defines() -> None:
    view = badge_view(config(), "retired", {"source": "event", "awarded_at": "2026-04-08T10:30:00Z"})
    assert view["name"] == "retired" and view["criteria"] is None and view["source"] == "event"
    assert badge_view(config(), "hero", None)["criteria"]["type"] == "event_count"


# -- tokens and gates -------------------------------------------------------------------------
def test_token_wallet_types_balances() -> None:
    wallet = token_wallet(config(), {"gems": 3, "streak_freeze": 2})
    assert wallet["primary"] == [{"token_key": "gems", "name": "Gems", "kind": "primary", "balance": 3,
                                  "max_balance": 50}]
    assert wallet["progression"] == [{"token_key": "xp", "name": "XP", "kind": "progression", "balance": 0,
                                      "max_balance": None}]
    assert [t["token_key"] for t in wallet["unconfigured"]] == ["streak_freeze"]


@pytest.mark.parametrize(("balances", "token_key", "delta", "outcome"), [
    ({}, "gems", 50, 50),
    ({"gems": 10}, "gems", -10, 0),
    ({"gems": 10}, "gems", -11, (422, "insufficient_tokens")),
    ({"gems": 45}, "gems", 6, (422, "max_balance_exceeded")),
    ({}, "xp", 1_000_000, 1_000_000),
    ({}, "energy", 1, (422, "unknown_token")),
    ({"streak_freeze": 2}, "streak_freeze", -1, 1),  # held but unconfigured: spendable
    ({"streak_freeze": 2}, "streak_freeze", 1, (422, "unknown_token")),
])
def test_token_changes(balances: dict[str, int], token_key: str, delta: int, outcome: int | tuple[int, str]) -> None:
    if isinstance(outcome, int):
        assert check_token_change(config(), balances, token_key, delta) == outcome
        return
    with pytest.raises(HatchedError) as excinfo:
        check_token_change(config(), balances, token_key, delta)
    assert code_of(excinfo) == outcome


def test_gate_costs() -> None:
    gate, after = gate_unlock_balance(config(), {"gems": 25}, "vip")
    assert gate.name == "VIP" and after == 5
    with pytest.raises(HatchedError) as excinfo:
        gate_unlock_balance(config(), {"gems": 19}, "vip")
    assert code_of(excinfo) == (422, "insufficient_tokens") and excinfo.value.details["cost"] == 20
    with pytest.raises(HatchedError) as excinfo:
        gate_unlock_balance(config(), {"gems": 100}, "nope")
    assert code_of(excinfo) == (404, "gate_not_found") and excinfo.value.details["available"] == ["vip"]


# -- evolution -------------------------------------------------------------------------------
def test_evolution_progress_breaks_requirements_down() -> None:
    state = ProgressState(coins_earned=50, skills={"focus": 8})
    progress = evolution_progress(config(), state)
    assert progress["ready"] is False and progress["next_stage"] == 2 and progress["final_stage"] == 2
    assert progress["requirements"] == [
        {"type": "coins_earned", "key": None, "current": 50, "required": 100, "met": False},
        {"type": "badge", "key": "hero", "current": 0, "required": 1, "met": False},
        {"type": "skill", "key": "focus", "current": 8, "required": 4, "met": True}]
    assert progress["progress_percent"] == 50  # (0.5 + 0 + 1) / 3
    ready = evolution_progress(config(), ProgressState(coins_earned=100, badges=["hero"], skills={"focus": 4}))
    assert ready["ready"] is True and ready["progress_percent"] == 100 and ready["missing"] == []
    final = evolution_progress(config(), ProgressState(evolution_stage=2))
    assert final["is_final_stage"] is True and final["progress_percent"] == 100 and final["requirements"] == []


def test_evolve_target_rechecks_stage_and_readiness() -> None:
    ready = ProgressState(coins_earned=100, badges=["hero"], skills={"focus": 4})
    assert evolve_target(config(), ready, 1) == 2
    with pytest.raises(HatchedError) as excinfo:
        evolve_target(config(), ProgressState(coins_earned=100, badges=["hero"]), 1)
    assert code_of(excinfo) == (409, "evolution_not_ready")
    assert excinfo.value.details["missing"] == ["skill focus 0/4"]
    with pytest.raises(HatchedError) as excinfo:
        evolve_target(config(), ready, 2)
    assert code_of(excinfo) == (409, "evolution_stale")
    with pytest.raises(HatchedError) as excinfo:
        evolve_target(config(), ProgressState(evolution_stage=2), 2)
    assert code_of(excinfo) == (409, "evolution_not_ready")


def test_final_stage_of_presets_and_empty_configs() -> None:
    assert final_stage(ConfigContent()) == 1
    fitness = preset_content("fitness")
    assert fitness is not None and final_stage(fitness) == 5


def test_open_operations() -> None:
    assert operation_open("pending") and operation_open("processing")
    assert not any(operation_open(s) for s in ("completed", "failed", "cancelled"))


# -- metrics and summaries ---------------------------------------------------------------------
def test_progression_metrics() -> None:
    monday = dt.date(2026, 4, 6).toordinal()
    state = ProgressState(events_total=4, event_counts={"x": 3, "a": 1}, coins=5, coins_earned=30,
                          badges=["hero"], skills={"focus": 2, "grit": 3}, tokens={"gems": 4},
                          streaks={"weekly": StreakState(current=2, longest=3, last_period=monday)})
    metrics = progression_metrics(config(), state, {"vip": {}}, evolutions=0)
    assert metrics["event_counts"] == {"a": 1, "x": 3} and metrics["events_total"] == 4
    assert metrics["streaks"] == {"weekly": {"current": 2, "longest": 3, "period": "weekly",
                                             "last_period_start": "2026-04-06"}}
    assert metrics["longest_streak"] == 3 and metrics["skills_total"] == 5
    assert metrics["stage_name"] == "Egg" and metrics["next_stage"] == 2 and metrics["evolution_ready"] is False
    assert metrics["gates_unlocked"] == ["vip"] and metrics["badges_count"] == 1


def test_user_summary_adds_up_buddies() -> None:
    buddies = [
        {"buddy_id": "b2", "name": "Two", "status": "archived", "evolution_stage": 3, "coins": 5, "coins_earned": 9,
         "badges": ["hero"], "tokens": {"gems": 2}, "created_at": 2000},
        {"buddy_id": "b1", "name": "One", "status": "active", "evolution_stage": 1, "coins": 10, "coins_earned": 10,
         "badges": ["hero", "grown"], "tokens": {"gems": 1, "xp": 4}, "created_at": 1000},
    ]
    summary = user_summary("u", buddies)
    assert summary["buddy_count"] == 2 and summary["active_buddy_count"] == 1
    assert summary["coins"] == 15 and summary["coins_earned"] == 19 and summary["badges_count"] == 3
    assert summary["unique_badges"] == ["grown", "hero"] and summary["tokens"] == {"gems": 3, "xp": 4}
    assert summary["highest_stage"] == 3 and [b["buddy_id"] for b in summary["buddies"]] == ["b1", "b2"]
    empty = user_summary("nobody", [])
    assert empty["buddy_count"] == 0 and empty["highest_stage"] == 0 and empty["tokens"] == {}
    assert eggs_by_status([{"status": "ready"}, {"status": "hatched"}, {"status": "ready"}]) == {
        "hatched": 1, "ready": 2}
