"""Pure marketplace rules: every requirement operator at its boundary, requirement sets from a
pinned config, visibility, the order of purchase refusals, equip slots, reorder/sku checks, art."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from questline.rules.hatched_errors import HatchedError
from questline.rules.hatched_market import (
    REQUIREMENT_TYPES,
    BuddyFacts,
    ItemBody,
    ItemRequirement,
    apply_equip,
    check_purchase,
    check_reorder,
    check_skus,
    item_svg,
    item_unmet,
    unmet,
    visible_to,
)
from questline.rules.hatched_models import ConfigContent, Requirement

FACTS = BuddyFacts(evolution_stage=2, badges=["first_lesson"], skills={"focus": 5}, coins_earned=120,
                   tokens={"gems": 3}, unlocked_gates=["bonus_lessons"])


def req(**raw: Any) -> ItemRequirement:
    return msgspec.convert(raw, ItemRequirement)


@pytest.mark.parametrize(("raw", "met"), [
    ({"type": "min_stage", "value": 2}, True),
    ({"type": "min_stage", "value": 3}, False),
    ({"type": "has_badge", "value": "first_lesson"}, True),
    ({"type": "has_badge", "value": "ten_lessons"}, False),
    ({"type": "skill_at_least", "skill_key": "focus", "value": 5}, True),
    ({"type": "skill_at_least", "skill_key": "focus", "value": 6}, False),
    ({"type": "skill_at_least", "skill_key": "never_trained", "value": 0}, True),
    ({"type": "skill_at_least", "skill_key": "never_trained", "value": 1}, False),
    ({"type": "min_coins_earned", "value": 120}, True),
    ({"type": "min_coins_earned", "value": 121}, False),
    ({"type": "min_token_balance", "token_key": "gems", "value": 3}, True),
    ({"type": "min_token_balance", "token_key": "gems", "value": 4}, False),
    ({"type": "min_token_balance", "token_key": "xp", "value": 1}, False),
    ({"type": "gate_unlocked", "value": "bonus_lessons"}, True),
    ({"type": "gate_unlocked", "value": "pro_plans"}, False),
])
def test_each_operator_at_its_boundary(raw: dict[str, Any], met: bool) -> None:
    result = unmet([req(**raw)], FACTS)
    assert (result == []) is met
    if not met:
        assert result[0]["type"] == raw["type"] and result[0]["reason"]


def test_every_operator_is_covered_and_the_enum_is_closed() -> None:
    assert set(REQUIREMENT_TYPES) == {"min_stage", "has_badge", "skill_at_least", "min_coins_earned",
                                      "min_token_balance", "gate_unlocked"}
    with pytest.raises(msgspec.ValidationError):
        req(type="is_premium", value=1)
    with pytest.raises(msgspec.ValidationError):
        req(type="min_stage", value=6)  # evolution caps at 5 stages
    with pytest.raises(msgspec.ValidationError):
        req(type="skill_at_least", value=3)  # skill_key is required
    with pytest.raises(msgspec.ValidationError):
        req(type="has_badge", value="x", skill_key="focus")  # no stray fields
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"name": "x", "price": 1, "slot": "tail"}', type=ItemBody)


def item(**fields: Any) -> dict[str, Any]:
    return {"item_id": "itm_1", "name": "Hat", "price": 10, "slot": "head", "visibility": "visible",
            "requirements": [], "requirement_set": None, "marketplace_active": True, **fields}


def test_requirement_sets_come_from_the_pinned_config() -> None:
    """The config draft's ``marketplace_requirements`` rows read as the same operators."""
    content = ConfigContent(marketplace_requirements={
        "vips": [Requirement(type="min_stage", value=2), Requirement(type="skill_at_least", value=9, skill_key="focus")],
        "broken": [Requirement(type="min_stage", value="two")],
    })
    sets = msgspec.to_builtins(content)["marketplace_requirements"]
    vip = item_unmet(item(requirement_set="vips"), FACTS, sets)
    assert [u["type"] for u in vip] == ["skill_at_least"]
    own_and_set = item_unmet(item(requirements=[{"type": "min_stage", "value": 4}], requirement_set="vips"), FACTS, sets)
    assert [u["type"] for u in own_and_set] == ["min_stage", "skill_at_least"]
    missing = item_unmet(item(requirement_set="nobody"), FACTS, sets)
    assert missing[0]["type"] == "requirement_set" and "not in the buddy's config version" in missing[0]["reason"]
    broken = item_unmet(item(requirement_set="broken"), FACTS, sets)
    assert broken[0]["type"] == "requirement_set" and "unreadable" in broken[0]["reason"]
    assert item_unmet(item(), FACTS, {}) == []


def test_visibility() -> None:
    locked = [{"type": "min_stage", "value": 5, "reason": "x"}]
    assert visible_to(item(visibility="visible"), locked) is True
    assert visible_to(item(visibility="requirements_met"), locked) is False
    assert visible_to(item(visibility="requirements_met"), []) is True
    assert visible_to(item(visibility="hidden"), []) is False


def refusal(thing: dict[str, Any], coins: int, owned: bool = False) -> str | None:
    try:
        check_purchase(thing, FACTS, coins, owned, {})
    except HatchedError as exc:
        return exc.code
    return None


def test_purchase_refusals_in_order_of_usefulness() -> None:
    locked = [{"type": "min_stage", "value": 5}]
    assert refusal(item(), 10) is None
    assert refusal(item(price=0), 0) is None
    assert refusal(item(), 9) == "insufficient_funds"
    assert refusal(item(requirements=locked), 9) == "requirements_not_met"
    assert refusal(item(requirements=locked), 9, owned=True) == "item_already_owned"
    assert refusal(item(visibility="hidden"), 100, owned=True) == "item_unavailable"
    assert refusal(item(marketplace_active=False), 100) == "item_unavailable"
    assert refusal(item(visibility="requirements_met"), 10) is None


OWNED = {"hat": {"slot": "head"}, "cap": {"slot": "head"}, "glasses": {"slot": "face"}, "gem": {"slot": None}}


def equip_code(equipped: list[str], equip: list[str], unequip: list[str]) -> str:
    with pytest.raises(HatchedError) as caught:
        apply_equip(equipped, OWNED, equip, unequip)
    return caught.value.code


def test_equip_slots() -> None:
    first = apply_equip([], OWNED, ["hat", "glasses"], [])
    assert first == {"equipped_items": ["hat", "glasses"], "equipped": ["hat", "glasses"], "unequipped": [],
                     "replaced": []}
    swap = apply_equip(["hat", "glasses"], OWNED, ["cap"], ["glasses"])
    assert swap["equipped_items"] == ["cap"] and swap["replaced"] == ["hat"] and swap["unequipped"] == ["glasses"]
    again = apply_equip(["hat"], OWNED, ["hat"], [])
    assert again["equipped_items"] == ["hat"] and again["equipped"] == []
    assert equip_code([], ["cape"], []) == "item_not_owned"
    assert equip_code([], ["gem"], []) == "item_not_equippable"
    assert equip_code([], ["hat", "cap"], []) == "slot_conflict"
    assert equip_code([], [], ["hat"]) == "item_not_equipped"
    assert equip_code(["hat"], ["hat"], ["hat"]) == "equip_conflict"


def test_reorder_and_skus() -> None:
    check_reorder(["a", "b", "c"], ["c", "a", "b"])
    with pytest.raises(HatchedError) as caught:
        check_reorder(["a", "b", "c"], ["a", "a", "d"])
    assert caught.value.details == {"missing": ["b", "c"], "unknown": ["d"], "duplicates": ["a"]}
    errors = check_skus({"OLD": "itm_old"}, [{"sku": "NEW"}, {"sku": "OLD"}, {"sku": "NEW"}, {"sku": None}])
    assert [e["index"] for e in errors] == [1, 2]
    assert check_skus({"OLD": "itm_old"}, [{"sku": "OLD", "item_id": "itm_old"}]) == []  # an item keeps its sku


def test_item_art_is_deterministic_per_seed_and_differs_by_seed_and_slot() -> None:
    assert item_svg("itm_1", "head", "Hat") == item_svg("itm_1", "head", "Hat")
    assert item_svg("itm_1", "head", "Hat") != item_svg("itm_1:2", "head", "Hat")
    drawings = {item_svg("itm_1", slot, "x") for slot in ("head", "face", "neck", "body", "hand", "back",
                                                          "background", None)}
    assert len(drawings) == 8
    assert "<title>&lt;b&gt;</title>" in item_svg("s", None, "<b>")
