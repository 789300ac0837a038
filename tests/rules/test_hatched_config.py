"""Pure config logic: presets validate, cross-reference errors, impact diffs."""

from __future__ import annotations

import msgspec
import pytest

from questline.rules.hatched_config import (
    PRESETS,
    diff_content,
    impact_summary,
    preset_content,
    validate_content,
)
from questline.rules.hatched_models import (
    BadgeCriteria,
    BadgeDefinition,
    CoinRule,
    ConfigContent,
    EvolutionRequirements,
    EvolutionStage,
    SkillRule,
    iso_ms,
)


@pytest.mark.parametrize("key", sorted(PRESETS))
def test_presets_are_valid(key: str) -> None:
    content = preset_content(key)
    assert content is not None and validate_content(content) == []


def test_cross_reference_errors() -> None:
    content = ConfigContent(
        skill_rules={"r": SkillRule(event_type="e", skill_key="ghost")},
        coin_rules={"c": CoinRule(name="c", event_type="e", rule_type="threshold")},
        badge_definitions={"b": BadgeDefinition(key="b", name="b", criteria=BadgeCriteria(type="event_count"))},
        evolution_rules=[EvolutionStage(stage=2, name="x", requirements=EvolutionRequirements(badges=["nope"]))],
    )
    errors = validate_content(content)
    assert any("ghost" in e for e in errors)
    assert any("needs property" in e for e in errors)
    assert any("needs threshold" in e for e in errors)
    assert any("event_count needs event_type" in e for e in errors)
    assert any("numbered" in e for e in errors)
    assert any("unknown badge nope" in e for e in errors)


def test_diff_reports_added_removed_changed_by_key() -> None:
    old = preset_content("learning")
    assert old is not None
    new = msgspec.structs.replace(old, coin_rules={**old.coin_rules, "cr_new": CoinRule(name="n", event_type="x")})
    del new.coin_rules["cr_quiz"]
    new.coin_rules["cr_lesson"] = msgspec.structs.replace(new.coin_rules["cr_lesson"], amount=99)
    changes = diff_content(old, new)
    assert changes == {"coin_rules": {"added": ["cr_new"], "removed": ["cr_quiz"], "changed": ["cr_lesson"]}}
    assert diff_content(old, old) == {}
    assert "1 coin rules added for new buddies" in impact_summary(changes, 3)
    assert impact_summary({}, 0)[-1] == "This change does not retroactively affect existing buddies"


def test_iso_ms() -> None:
    assert iso_ms(0) == "1970-01-01T00:00:00Z"
    assert iso_ms(1_775_644_200_123) == "2026-04-08T10:30:00.123Z"
