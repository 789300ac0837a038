"""Pure config-version logic: publish-time validation, impact diffs and the presets.

No I/O and no clock: the customer actor calls these inside its turns, tests call
them directly.
"""

from __future__ import annotations

from typing import Any

from questline.rules.hatched_models import (
    BadgeCriteria,
    BadgeDefinition,
    CoinRule,
    ConfigContent,
    EvolutionRequirements,
    EvolutionStage,
    Gate,
    Skill,
    SkillRule,
    SkillSet,
    StreakDefinition,
    StreakReward,
    TokenConfig,
    TokenEarnRule,
    content_to_builtins,
)

DIFF_SECTIONS = (
    "skill_sets",
    "skill_rules",
    "coin_rules",
    "badge_definitions",
    "token_config",
    "streak_definitions",
    "gates",
    "marketplace_requirements",
)


def skill_keys(content: ConfigContent) -> set[str]:
    return {skill.key for skill_set in content.skill_sets.values() for skill in skill_set.skills}


def validate_content(content: ConfigContent) -> list[str]:
    """Cross-reference checks a draft must pass before it may be published.

    Field-level checks (enums, ranges, at most 5 stages) already happened when the
    draft was written; these are the ones that need the whole config.
    """
    errors: list[str] = []
    skills = skill_keys(content)
    badges = {b.key for b in content.badge_definitions.values()}
    streaks = {s.key for s in content.streak_definitions.values()}
    for rule_id, rule in content.skill_rules.items():
        if rule.skill_key not in skills:
            errors.append(f"skill_rules.{rule_id}: unknown skill_key {rule.skill_key}")
    for rule_id, coin in content.coin_rules.items():
        if coin.rule_type in ("per_property", "threshold") and not coin.property:
            errors.append(f"coin_rules.{rule_id}: rule_type {coin.rule_type} needs property")
        if coin.rule_type == "threshold" and coin.threshold is None:
            errors.append(f"coin_rules.{rule_id}: rule_type threshold needs threshold")
    for badge_id, badge in content.badge_definitions.items():
        crit = badge.criteria
        if crit.type == "skill_level" and crit.skill_key not in skills:
            errors.append(f"badge_definitions.{badge_id}: unknown skill_key {crit.skill_key}")
        if crit.type == "streak_length" and crit.streak_key not in streaks:
            errors.append(f"badge_definitions.{badge_id}: unknown streak_key {crit.streak_key}")
        if crit.type == "event_count" and not crit.event_type:
            errors.append(f"badge_definitions.{badge_id}: event_count needs event_type")
    for streak_id, streak in content.streak_definitions.items():
        for reward in streak.rewards:
            if reward.badge_key and reward.badge_key not in badges:
                errors.append(f"streak_definitions.{streak_id}: unknown badge_key {reward.badge_key}")
    stages = [stage.stage for stage in content.evolution_rules]
    if stages != list(range(1, len(stages) + 1)):
        errors.append("evolution_rules: stages must be numbered 1, 2, ... in order")
    for stage in content.evolution_rules:
        for badge_key in stage.requirements.badges:
            if badge_key not in badges:
                errors.append(f"evolution_rules.{stage.stage}: unknown badge {badge_key}")
        for skill_key in stage.requirements.skill_levels:
            if skill_key not in skills:
                errors.append(f"evolution_rules.{stage.stage}: unknown skill {skill_key}")
    return errors


def _identity(section: str, item_id: str, item: dict[str, Any]) -> str:
    """What a change is about: the customer's key when the item has one, else its id."""
    return str(item.get("key") or item_id)


def diff_content(old: ConfigContent | None, new: ConfigContent) -> dict[str, dict[str, list[str]]]:
    """Per section: keys added, removed and changed between two configs."""
    before = content_to_builtins(old) if old is not None else content_to_builtins(ConfigContent())
    after = content_to_builtins(new)
    changes: dict[str, dict[str, list[str]]] = {}
    for section in DIFF_SECTIONS:
        a = {_identity(section, k, v if isinstance(v, dict) else {}): v for k, v in before[section].items()}
        b = {_identity(section, k, v if isinstance(v, dict) else {}): v for k, v in after[section].items()}
        entry = {
            "added": sorted(set(b) - set(a)),
            "removed": sorted(set(a) - set(b)),
            "changed": sorted(k for k in set(a) & set(b) if a[k] != b[k]),
        }
        if any(entry.values()):
            changes[section] = entry
    if before["evolution_rules"] != after["evolution_rules"]:
        old_stages = {s["stage"]: s for s in before["evolution_rules"]}
        new_stages = {s["stage"]: s for s in after["evolution_rules"]}
        changes["evolution_rules"] = {
            "added": [str(s) for s in sorted(set(new_stages) - set(old_stages))],
            "removed": [str(s) for s in sorted(set(old_stages) - set(new_stages))],
            "changed": [str(s) for s in sorted(set(old_stages) & set(new_stages)) if old_stages[s] != new_stages[s]],
        }
    return changes


def impact_summary(changes: dict[str, dict[str, list[str]]], existing_buddies: int) -> list[str]:
    """The publish modal's sentences: impact language, not jargon."""
    lines: list[str] = []
    for section, entry in changes.items():
        label = section.replace("_", " ")
        for verb in ("added", "removed", "changed"):
            if entry[verb]:
                lines.append(f"{len(entry[verb])} {label} {verb} for new buddies")
    if not lines:
        lines.append("No progression changes compared to the published version")
    lines.append(
        "This change does not retroactively affect existing buddies"
        + (f" ({existing_buddies} keep their current version until migrated)" if existing_buddies else "")
    )
    return lines


# -- presets -------------------------------------------------------------------------
def _stages(names: list[str], coins: list[int], events: list[int], badges: list[list[str]]) -> list[EvolutionStage]:
    return [
        EvolutionStage(
            stage=i + 1,
            name=name,
            requirements=EvolutionRequirements(min_coins_earned=coins[i], min_events=events[i], badges=badges[i]),
        )
        for i, name in enumerate(names)
    ]


def _learning() -> ConfigContent:
    return ConfigContent(
        skill_sets={
            "sks_learning": SkillSet(
                key="learning",
                name="Learning",
                skills=[Skill(key="focus", name="Focus"), Skill(key="knowledge", name="Knowledge"),
                        Skill(key="curiosity", name="Curiosity")],
            )
        },
        skill_rules={
            "skr_lesson": SkillRule(event_type="lesson_completed", skill_key="knowledge", amount=2),
            "skr_quiz": SkillRule(event_type="quiz_passed", skill_key="focus", amount=3, min_property="score", min_value=80),
            "skr_explore": SkillRule(event_type="topic_explored", skill_key="curiosity", amount=1),
        },
        coin_rules={
            "cr_lesson": CoinRule(name="Lesson completed", event_type="lesson_completed", amount=10, daily_cap=100),
            "cr_quiz": CoinRule(name="High quiz score", event_type="quiz_passed", rule_type="threshold",
                                amount=15, property="score", threshold=80),
            "cr_first": CoinRule(name="First lesson bonus", event_type="lesson_completed", rule_type="first_time", amount=50),
        },
        badge_definitions={
            "bdg_first": BadgeDefinition(key="first_lesson", name="First Steps",
                                         criteria=BadgeCriteria(type="event_count", event_type="lesson_completed", threshold=1)),
            "bdg_ten": BadgeDefinition(key="ten_lessons", name="Bookworm",
                                       criteria=BadgeCriteria(type="event_count", event_type="lesson_completed", threshold=10)),
            "bdg_streak": BadgeDefinition(key="week_streak", name="Week Warrior",
                                          criteria=BadgeCriteria(type="streak_length", streak_key="daily_learning", threshold=7)),
        },
        evolution_rules=_stages(["Eggling", "Sprout", "Scholar", "Sage"], [0, 100, 400, 1200], [0, 5, 25, 80],
                                [[], ["first_lesson"], ["ten_lessons"], ["week_streak"]]),
        token_config={
            "xp": TokenConfig(token_key="xp", name="XP", kind="progression",
                              earn_rules=[TokenEarnRule(event_type="lesson_completed", amount=20)]),
            "gems": TokenConfig(token_key="gems", name="Gems", kind="primary",
                                earn_rules=[TokenEarnRule(event_type="quiz_passed", amount=1)]),
        },
        streak_definitions={
            "stk_daily": StreakDefinition(key="daily_learning", name="Daily learning", event_type="lesson_completed",
                                          rewards=[StreakReward(length=3, coins=20), StreakReward(length=7, coins=50, badge_key="week_streak")]),
        },
        gates={"bonus_lessons": Gate(name="Bonus lessons", token_key="gems", cost=5)},
    )


def _fitness() -> ConfigContent:
    return ConfigContent(
        skill_sets={
            "sks_fitness": SkillSet(
                key="fitness",
                name="Fitness",
                skills=[Skill(key="strength", name="Strength"), Skill(key="endurance", name="Endurance"),
                        Skill(key="mobility", name="Mobility")],
            )
        },
        skill_rules={
            "skr_workout": SkillRule(event_type="workout_logged", skill_key="strength", amount=2),
            "skr_run": SkillRule(event_type="run_logged", skill_key="endurance", amount=3),
            "skr_stretch": SkillRule(event_type="stretch_logged", skill_key="mobility", amount=1),
        },
        coin_rules={
            "cr_workout": CoinRule(name="Workout logged", event_type="workout_logged", amount=15, daily_cap=60),
            "cr_run": CoinRule(name="Coins per km", event_type="run_logged", rule_type="per_property", amount=5, property="km"),
            "cr_first": CoinRule(name="First workout", event_type="workout_logged", rule_type="first_time", amount=40),
        },
        badge_definitions={
            "bdg_first": BadgeDefinition(key="first_workout", name="Warm Up",
                                         criteria=BadgeCriteria(type="event_count", event_type="workout_logged", threshold=1)),
            "bdg_strong": BadgeDefinition(key="strong", name="Strong",
                                          criteria=BadgeCriteria(type="skill_level", skill_key="strength", threshold=20)),
            "bdg_streak": BadgeDefinition(key="consistent", name="Consistent",
                                          criteria=BadgeCriteria(type="streak_length", streak_key="daily_move", threshold=5)),
        },
        evolution_rules=_stages(["Pup", "Runner", "Athlete", "Champion", "Legend"], [0, 150, 500, 1500, 4000],
                                [0, 5, 20, 60, 150], [[], ["first_workout"], [], ["strong"], ["consistent"]]),
        token_config={
            "energy": TokenConfig(token_key="energy", name="Energy", kind="primary",
                                  earn_rules=[TokenEarnRule(event_type="workout_logged", amount=2)], max_balance=100),
            "xp": TokenConfig(token_key="xp", name="XP", earn_rules=[TokenEarnRule(event_type="run_logged", amount=10)]),
        },
        streak_definitions={
            "stk_move": StreakDefinition(key="daily_move", name="Move every day", event_type="workout_logged",
                                         rewards=[StreakReward(length=5, coins=30, badge_key="consistent")]),
        },
        gates={"pro_plans": Gate(name="Pro training plans", token_key="energy", cost=20)},
    )


def _productivity() -> ConfigContent:
    return ConfigContent(
        skill_sets={
            "sks_work": SkillSet(
                key="productivity",
                name="Productivity",
                skills=[Skill(key="planning", name="Planning"), Skill(key="execution", name="Execution")],
            )
        },
        skill_rules={
            "skr_task": SkillRule(event_type="task_completed", skill_key="execution", amount=1),
            "skr_plan": SkillRule(event_type="plan_created", skill_key="planning", amount=2),
        },
        coin_rules={
            "cr_task": CoinRule(name="Task completed", event_type="task_completed", amount=5, daily_cap=50),
            "cr_focus": CoinRule(name="Long focus session", event_type="focus_session", rule_type="threshold",
                                 amount=20, property="minutes", threshold=45),
        },
        badge_definitions={
            "bdg_ten": BadgeDefinition(key="ten_tasks", name="Getting Things Done",
                                       criteria=BadgeCriteria(type="event_count", event_type="task_completed", threshold=10)),
            "bdg_rich": BadgeDefinition(key="saver", name="Saver", criteria=BadgeCriteria(type="coins_earned", threshold=500)),
        },
        evolution_rules=_stages(["Seed", "Bud", "Bloom"], [0, 200, 800], [0, 10, 50], [[], ["ten_tasks"], ["saver"]]),
        token_config={
            "xp": TokenConfig(token_key="xp", name="XP", earn_rules=[TokenEarnRule(event_type="task_completed", amount=5)]),
            "streak_freeze": TokenConfig(token_key="streak_freeze", name="Streak freeze", kind="primary", max_balance=3),
        },
        streak_definitions={
            "stk_weekly": StreakDefinition(key="weekly_planning", name="Weekly planning", event_type="plan_created",
                                           period="weekly", rewards=[StreakReward(length=4, coins=100, token_key="streak_freeze", tokens=1)]),
        },
        gates={"templates": Gate(name="Premium templates", token_key="xp", cost=100)},
    )


PRESETS: dict[str, tuple[str, str, Any]] = {
    "learning": ("Learning app", "Lessons and quizzes grow knowledge, focus and curiosity.", _learning),
    "fitness": ("Fitness tracker", "Workouts and runs build strength and endurance.", _fitness),
    "productivity": ("Productivity tool", "Tasks, plans and focus sessions help a buddy bloom.", _productivity),
}


def preset_content(key: str) -> ConfigContent | None:
    entry = PRESETS.get(key)
    return entry[2]() if entry else None
