"""Pure marketplace logic: item models, requirement operators, visibility, equip slots, item art.

V1 ships "marketplace visibility and requirement logic with predefined operators",
so a requirement is one of a fixed set of tagged structs and an item's visibility
one of three words; everything here is a function of its arguments (no I/O, no
clock), so the buddy actor can check a purchase inside one turn and tests can
call it directly.
"""

from __future__ import annotations

import hashlib
from html import escape
from typing import Annotated, Any, Literal

import msgspec

from questline.rules.hatched_errors import HatchedError
from questline.rules.hatched_models import (
    MAX_EVOLUTION_STAGES,
    Key,
    Name,
    NonNegInt,
    Strict,
    Text,
    TokenKey,
)

Slot = Literal["head", "face", "neck", "body", "hand", "back", "background"]
SLOTS: tuple[str, ...] = ("head", "face", "neck", "body", "hand", "back", "background")
Visibility = Literal["visible", "requirements_met", "hidden"]
VISIBILITIES: tuple[str, ...] = ("visible", "requirements_met", "hidden")
Price = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]
Stage = Annotated[int, msgspec.Meta(ge=1, le=MAX_EVOLUTION_STAGES)]
Sku = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
MAX_REQUIREMENTS = 10
MAX_ITEMS_PER_MARKETPLACE = 1000


# -- requirement operators (a tagged union: ``type`` picks the operator) -----------------------
class _Req(Strict, tag_field="type", kw_only=True):
    pass


class MinStage(_Req, tag="min_stage", kw_only=True):
    value: Stage


class HasBadge(_Req, tag="has_badge", kw_only=True):
    value: Key


class SkillAtLeast(_Req, tag="skill_at_least", kw_only=True):
    skill_key: Key
    value: NonNegInt


class MinCoinsEarned(_Req, tag="min_coins_earned", kw_only=True):
    value: NonNegInt


class MinTokenBalance(_Req, tag="min_token_balance", kw_only=True):
    token_key: TokenKey
    value: NonNegInt


class GateUnlocked(_Req, tag="gate_unlocked", kw_only=True):
    value: Key


ItemRequirement = MinStage | HasBadge | SkillAtLeast | MinCoinsEarned | MinTokenBalance | GateUnlocked
REQUIREMENT_TYPES: tuple[str, ...] = ("min_stage", "has_badge", "skill_at_least", "min_coins_earned",
                                      "min_token_balance", "gate_unlocked")
Requirements = Annotated[list[ItemRequirement], msgspec.Meta(max_length=MAX_REQUIREMENTS)]


# -- wire bodies ------------------------------------------------------------------------------
class MarketplaceBody(Strict, kw_only=True):
    name: Name
    description: Text = ""
    active: bool = True


class MarketplaceUpdate(Strict, kw_only=True):
    """PUT: the fields sent replace the stored ones; absent fields stay."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Text | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET


class ItemBody(Strict, kw_only=True):
    """An item for sale: ``slot`` null means a collectible that cannot be equipped.

    ``requirement_set`` names a list in the buddy's pinned config version
    (``marketplace_requirements``), checked in addition to ``requirements``.
    """

    name: Name
    price: Price
    description: Text = ""
    slot: Slot | None = None
    category: Key = "general"
    sku: Sku | None = None
    visibility: Visibility = "visible"
    requirements: Requirements = []
    requirement_set: Key | None = None
    metadata: dict[str, Any] = {}


class ItemUpdate(Strict, kw_only=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    price: Price | msgspec.UnsetType = msgspec.UNSET
    description: Text | msgspec.UnsetType = msgspec.UNSET
    slot: Slot | None | msgspec.UnsetType = msgspec.UNSET
    category: Key | msgspec.UnsetType = msgspec.UNSET
    sku: Sku | None | msgspec.UnsetType = msgspec.UNSET
    visibility: Visibility | msgspec.UnsetType = msgspec.UNSET
    requirements: Requirements | msgspec.UnsetType = msgspec.UNSET
    requirement_set: Key | None | msgspec.UnsetType = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


def set_fields(update: msgspec.Struct) -> dict[str, Any]:
    """The fields an update body actually carried (UNSET ones dropped), as builtins."""
    return {f: msgspec.to_builtins(getattr(update, f)) for f in update.__struct_fields__
            if getattr(update, f) is not msgspec.UNSET}


# -- requirement evaluation ---------------------------------------------------------------------
class BuddyFacts(msgspec.Struct, kw_only=True):
    """What requirements may look at: a snapshot of one buddy."""

    evolution_stage: int = 1
    badges: list[str] = []
    skills: dict[str, int] = {}
    coins_earned: int = 0
    tokens: dict[str, int] = {}
    unlocked_gates: list[str] = []


def unmet_reason(req: ItemRequirement, facts: BuddyFacts) -> str | None:
    """Why one requirement is not met, or None when it is."""
    if isinstance(req, MinStage):
        return None if facts.evolution_stage >= req.value else \
            f"evolution stage {req.value} required (buddy is at {facts.evolution_stage})"
    if isinstance(req, HasBadge):
        return None if req.value in facts.badges else f"badge {req.value} required"
    if isinstance(req, SkillAtLeast):
        level = facts.skills.get(req.skill_key, 0)
        return None if level >= req.value else f"skill {req.skill_key} {req.value} required (buddy has {level})"
    if isinstance(req, MinCoinsEarned):
        return None if facts.coins_earned >= req.value else \
            f"{req.value} coins earned required (buddy earned {facts.coins_earned})"
    if isinstance(req, MinTokenBalance):
        balance = facts.tokens.get(req.token_key, 0)
        return None if balance >= req.value else f"{req.value} {req.token_key} required (buddy has {balance})"
    if isinstance(req, GateUnlocked):
        return None if req.value in facts.unlocked_gates else f"gate {req.value} must be unlocked"
    raise TypeError(f"unknown requirement {req!r}")  # unreachable: the union is closed


def requirement_view(req: ItemRequirement) -> dict[str, Any]:
    return msgspec.to_builtins(req)  # the tag field ``type`` comes first


def unmet(requirements: list[ItemRequirement], facts: BuddyFacts) -> list[dict[str, Any]]:
    """Every unmet requirement with a human reason (empty when the buddy qualifies)."""
    out: list[dict[str, Any]] = []
    for req in requirements:
        reason = unmet_reason(req, facts)
        if reason is not None:
            out.append({**requirement_view(req), "reason": reason})
    return out


def item_unmet(item: dict[str, Any], facts: BuddyFacts, config_sets: dict[str, Any]) -> list[dict[str, Any]]:
    """Unmet requirements of an item: its own, plus its named set in the buddy's pinned config.

    The set rows are the config's ``{type, value, skill_key}``. A set the pinned
    version does not have, or a row that does not read as an operator, cannot be
    satisfied: the item stays locked rather than open.
    """
    reqs = [msgspec.convert(r, ItemRequirement) for r in item.get("requirements", [])]
    set_key = item.get("requirement_set")
    broken: str | None = None
    if set_key:
        rows = config_sets.get(set_key)
        if rows is None:
            broken = f"requirement set {set_key} is not in the buddy's config version"
        else:
            for row in rows:
                try:
                    reqs.append(msgspec.convert({k: v for k, v in row.items() if v is not None}, ItemRequirement))
                except msgspec.ValidationError as exc:
                    broken = f"requirement set {set_key} has an unreadable row: {exc}"
                    break
    out = unmet(reqs, facts)
    if broken is not None:
        out.append({"type": "requirement_set", "value": set_key, "reason": broken})
    return out


def visible_to(item: dict[str, Any], unmet_list: list[dict[str, Any]]) -> bool:
    """Whether a buddy's widget lists the item: hidden never, requirements_met only when eligible."""
    if item["visibility"] == "hidden":
        return False
    if item["visibility"] == "requirements_met":
        return not unmet_list
    return True


def check_purchase(item: dict[str, Any], facts: BuddyFacts, coins: int, owned: bool,
                   config_sets: dict[str, Any]) -> None:
    """Raise the specific refusal for a purchase, or return when it may go ahead.

    Order matters for clients: unavailable, then already owned, then requirements,
    then money -- the most actionable reason wins.
    """
    if item["visibility"] == "hidden" or not item.get("marketplace_active", True):
        raise HatchedError(409, "item_unavailable", f"Item {item['item_id']} is not for sale.",
                           {"item_id": item["item_id"], "visibility": item["visibility"],
                            "marketplace_active": item.get("marketplace_active", True)})
    if owned:
        raise HatchedError(409, "item_already_owned", f"The buddy already owns item {item['item_id']}.",
                           {"item_id": item["item_id"]})
    missing = item_unmet(item, facts, config_sets)
    if missing:
        raise HatchedError(403, "requirements_not_met",
                           f"The buddy does not meet the requirements of item {item['item_id']}.",
                           {"item_id": item["item_id"], "unmet": missing})
    if coins < item["price"]:
        raise HatchedError(422, "insufficient_funds",
                           f"The buddy has {coins} coins; item {item['item_id']} costs {item['price']}.",
                           {"balance": coins, "requested": item["price"], "item_id": item["item_id"]})


# -- equip -----------------------------------------------------------------------------------------
def apply_equip(equipped: list[str], owned: dict[str, dict[str, Any]], equip: list[str],
                unequip: list[str]) -> dict[str, Any]:
    """The equipped set after unequipping then equipping; one item per slot.

    Equipping into an occupied slot replaces its item (reported in ``replaced``).
    Refusals name the item: ``item_not_owned``, ``item_not_equippable``,
    ``item_not_equipped``, ``slot_conflict``.
    """
    if set(equip) & set(unequip):
        both = sorted(set(equip) & set(unequip))
        raise HatchedError(422, "equip_conflict", "An item cannot be equipped and unequipped at once.",
                           {"item_ids": both})
    for item_id in unequip:
        if item_id not in equipped:
            raise HatchedError(422, "item_not_equipped", f"Item {item_id} is not equipped.", {"item_id": item_id})
    slots_taken: dict[str, str] = {}
    for item_id in equip:
        item = owned.get(item_id)
        if item is None:
            raise HatchedError(422, "item_not_owned", f"The buddy does not own item {item_id}.", {"item_id": item_id})
        if item.get("slot") is None:
            raise HatchedError(422, "item_not_equippable", f"Item {item_id} has no slot and cannot be equipped.",
                               {"item_id": item_id})
        if item["slot"] in slots_taken:
            raise HatchedError(422, "slot_conflict", f"Items {slots_taken[item['slot']]} and {item_id} both use "
                               f"slot {item['slot']}.", {"slot": item["slot"],
                                                         "item_ids": [slots_taken[item["slot"]], item_id]})
        slots_taken[item["slot"]] = item_id
    result = [i for i in equipped if i not in unequip]
    replaced: list[str] = []
    for item_id in equip:
        if item_id in result:
            continue
        slot = owned[item_id]["slot"]
        for other in list(result):
            if owned.get(other, {}).get("slot") == slot:
                result.remove(other)
                replaced.append(other)
        result.append(item_id)
    return {"equipped_items": result, "equipped": [i for i in equip if i not in equipped],
            "unequipped": list(unequip), "replaced": replaced}


# -- reorder and import ------------------------------------------------------------------------
def check_reorder(current: list[str], wanted: list[str]) -> None:
    """A reorder must list every item of the marketplace exactly once."""
    duplicates = sorted({i for i in wanted if wanted.count(i) > 1})
    missing = [i for i in current if i not in wanted]
    unknown = [i for i in wanted if i not in current]
    if duplicates or missing or unknown:
        raise HatchedError(422, "invalid_reorder", "item_ids must list every item of the marketplace exactly once.",
                           {"missing": missing, "unknown": unknown, "duplicates": duplicates})


def check_skus(existing: dict[str, str], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-item errors for SKUs already used in the marketplace or repeated in the batch.

    ``existing`` maps sku -> item id; an item may keep its own sku (``item_id`` set).
    """
    errors: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        sku = item.get("sku")
        if not sku:
            continue
        owner = existing.get(sku)
        if owner is not None and owner != item.get("item_id"):
            errors.append({"index": index, "errors": [f"sku {sku} is already used by item {owner}"]})
        elif sku in seen:
            errors.append({"index": index, "errors": [f"sku {sku} repeats item {seen[sku]} of this request"]})
        seen.setdefault(sku, index)
    return errors


# -- item art ---------------------------------------------------------------------------------------
def item_svg(seed: str, slot: str | None, name: str) -> str:
    """Deterministic procedural art for an item: the same seed, slot and name draw the same SVG."""
    digest = hashlib.sha256(f"{seed}|{slot}".encode()).digest()
    hue = digest[0] * 360 // 256
    accent = (hue + 120 + digest[1] % 90) % 360
    shape = slot or "collectible"
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128" viewBox="0 0 128 128">',
        f'<rect width="128" height="128" rx="18" fill="hsl({hue},45%,92%)"/>',
    ]
    main, edge = f"hsl({hue},70%,55%)", f"hsl({hue},60%,30%)"
    if shape == "head":
        parts.append(f'<path d="M24 84 Q64 {20 + digest[2] % 16} 104 84 Z" fill="{main}" stroke="{edge}" stroke-width="4"/>')
        parts.append(f'<rect x="18" y="80" width="92" height="12" rx="6" fill="{edge}"/>')
    elif shape == "face":
        parts.append(f'<circle cx="44" cy="64" r="18" fill="none" stroke="{main}" stroke-width="7"/>')
        parts.append(f'<circle cx="84" cy="64" r="18" fill="none" stroke="{main}" stroke-width="7"/>')
        parts.append(f'<line x1="62" y1="62" x2="66" y2="62" stroke="{edge}" stroke-width="5"/>')
    elif shape == "neck":
        parts.append(f'<path d="M28 40 Q64 {100 + digest[2] % 12} 100 40" fill="none" stroke="{main}" stroke-width="10"/>')
        parts.append(f'<circle cx="64" cy="{92 + digest[2] % 12}" r="9" fill="hsl({accent},70%,55%)"/>')
    elif shape == "body":
        parts.append(f'<path d="M36 30 L92 30 L104 100 L24 100 Z" fill="{main}" stroke="{edge}" stroke-width="4"/>')
    elif shape == "hand":
        parts.append(f'<rect x="58" y="20" width="12" height="88" rx="5" fill="{edge}"/>')
        parts.append(f'<circle cx="64" cy="26" r="{12 + digest[2] % 8}" fill="{main}"/>')
    elif shape == "back":
        parts.append(f'<path d="M64 64 Q20 10 14 80 Q40 70 64 64 Q88 70 114 80 Q108 10 64 64Z" fill="{main}" stroke="{edge}" stroke-width="3"/>')
    elif shape == "background":
        for i in range(4):
            parts.append(f'<circle cx="{20 + (digest[3 + i] % 88)}" cy="{20 + (digest[7 + i] % 88)}" r="{8 + digest[11 + i] % 14}" fill="hsl({(hue + 40 * i) % 360},60%,70%)" opacity="0.7"/>')
    else:
        radii = [40 if k % 2 == 0 else 18 for k in range(10)]
        points = " ".join(f"{64 + r * _cos(k):.1f},{64 + r * _sin(k):.1f}" for k, r in enumerate(radii))
        parts.append(f'<polygon points="{points}" fill="{main}" stroke="{edge}" stroke-width="3"/>')
    for i in range(digest[4] % 4):
        parts.append(f'<circle cx="{30 + i * 22}" cy="112" r="4" fill="hsl({accent},70%,50%)"/>')
    parts.append(f'<title>{escape(name)}</title></svg>')
    return "".join(parts)


_COS = (1.0, 0.809, 0.309, -0.309, -0.809, -1.0, -0.809, -0.309, 0.309, 0.809)
_SIN = (0.0, 0.588, 0.951, 0.951, 0.588, 0.0, -0.588, -0.951, -0.951, -0.588)


def _cos(k: int) -> float:
    return _COS[k % 10]


def _sin(k: int) -> float:
    return _SIN[k % 10]
