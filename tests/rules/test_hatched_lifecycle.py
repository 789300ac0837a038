"""Pure state machines and procedural art."""

from __future__ import annotations

import pytest

from questline.rules.hatched_art import buddy_svg, traits_for
from questline.rules.hatched_errors import HatchedError
from questline.rules.hatched_lifecycle import (
    EGG_TRANSITIONS,
    check_egg,
    check_operation,
    visual_variant,
)


def test_egg_machine_is_exactly_the_documented_one() -> None:
    allowed = {(a, b) for a, targets in EGG_TRANSITIONS.items() for b in targets}
    assert allowed == {("waiting", "ready"), ("ready", "hatching"), ("hatching", "hatched"),
                       ("waiting", "cancelled"), ("ready", "cancelled")}
    with pytest.raises(HatchedError) as info:
        check_egg("egg_1", "hatched", "ready")
    assert info.value.status == 409 and info.value.details == {"from": "hatched", "to": "ready"}


def test_operation_machine() -> None:
    check_operation("op", "pending", "processing")
    check_operation("op", "pending", "cancelled")
    check_operation("op", "processing", "failed")
    for current, target in [("processing", "cancelled"), ("completed", "failed"), ("pending", "completed")]:
        with pytest.raises(HatchedError):
            check_operation("op", current, target)


def test_art_is_deterministic_and_reflects_stage_and_items() -> None:
    traits = traits_for("egg_abc")
    assert traits == traits_for("egg_abc") and 0 <= visual_variant("egg_abc") < 12
    base = buddy_svg(traits, 1, [])
    assert base == buddy_svg(traits, 1, []) and base.startswith("<svg")
    assert buddy_svg(traits, 2, []) != base
    with_item = buddy_svg(traits, 1, ['hat"><script>'])
    assert with_item != base and "<script>" not in with_item
