"""The minigame catalog format (activities, type map) and activity availability, pure.

A tenant's catalog lists its activities (board orders, expedition templates,
recipes, gathering nodes, trade offers, heal, scouting, animal interactions)
with their rewards and limits, and may override rows of the activity_type ->
minigame map. Parsing is strict so a typo in a catalog fails at install time,
not at a player's first request.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

import msgspec

from questline.rules.minigame import (
    DEFAULT_EXPEDITION_CATEGORIES,
    DEFAULT_TYPE_MAP,
    MinigameType,
)

ActivityKind = Literal[
    "board_order",
    "expedition",
    "recipe",
    "gathering_node",
    "trade_offer",
    "heal",
    "scouting",
    "animal",
]
Status = Literal["open", "accepted", "expired", "departed"]

KIND_ACTIVITY_TYPES: Final[dict[str, frozenset[str]]] = {
    "board_order": frozenset({"expedition_accept"}),
    "expedition": frozenset({"expedition_accept"}),
    "recipe": frozenset(t for t in DEFAULT_TYPE_MAP if t.startswith("craft_")),
    "gathering_node": frozenset(t for t in DEFAULT_TYPE_MAP if t.startswith("gather_")),
    "trade_offer": frozenset({"trade", "appraise", "negotiate"}),
    "heal": frozenset({"heal"}),
    "scouting": frozenset({"scout", "survey", "cartograph"}),
    "animal": frozenset({"animal_handling", "beastbond", "tame", "mount_care", "mount_train"}),
}

# Defaults per kind: (capacity, per_character). None = unlimited.
KIND_LIMITS: Final[dict[str, tuple[int | None, int | None]]] = {
    "board_order": (1, None),  # one character accepts it, then it is gone
    "expedition": (None, 1),  # many may join, each once, until it departs
    "trade_offer": (1, None),  # an offer is taken once
}

ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
MAX_AMOUNT: Final = 1_000_000


class Rewards(msgspec.Struct, forbid_unknown_fields=True):
    """Base rewards before the minigame modifier: skill XP, currencies, items."""

    xp: dict[str, int] = {}
    currency: dict[str, int] = {}
    items: dict[str, int] = {}


class TypeRow(msgspec.Struct, forbid_unknown_fields=True):
    minigame_type: str
    min_duration_ms: int
    max_duration_ms: int
    skill: str


class Activity(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    kind: ActivityKind
    activity_type: str
    name: str
    description: str = ""
    category: str | None = None  # expedition category: picks the minigame
    skill: str | None = None  # overrides the type map's skill
    rewards: Rewards = msgspec.field(default_factory=Rewards)
    capacity: int | None = None  # total settlements allowed (None = kind default)
    per_character: int | None = None  # settlements per character (None = kind default)
    unlimited: bool = False  # ignore the kind's default limits
    status: Status = "open"
    expires_at: int | None = None  # Unix seconds; after it the activity is gone (404)
    departs_at: int | None = None  # Unix seconds; expeditions depart (409)


class TenantCatalog(msgspec.Struct, forbid_unknown_fields=True):
    tenant_id: str
    secret: str | None = None
    secret_env: str | None = None
    minigame_types: dict[str, TypeRow] = {}
    expedition_categories: dict[str, TypeRow] = {}
    activities: list[Activity] = []


class Catalog(msgspec.Struct, forbid_unknown_fields=True):
    tenants: list[TenantCatalog]


class CatalogError(ValueError):
    """The catalog is malformed; nothing of it was installed."""


def _row(row: TypeRow, where: str) -> MinigameType:
    if not 0 < row.min_duration_ms <= row.max_duration_ms:
        raise CatalogError(f"{where}: need 0 < min_duration_ms <= max_duration_ms")
    return MinigameType(row.minigame_type, row.min_duration_ms, row.max_duration_ms, row.skill)


def parse_catalog(raw: bytes | str | dict[str, Any]) -> Catalog:
    """Decode and check a catalog (a ``{"tenants": [...]}`` document or one tenant object)."""
    try:
        if isinstance(raw, dict):
            data = raw if "tenants" in raw else {"tenants": [raw]}
            catalog = msgspec.convert(data, Catalog)
        else:
            decoded = msgspec.json.decode(raw)
            if isinstance(decoded, dict) and "tenants" not in decoded:
                decoded = {"tenants": [decoded]}
            catalog = msgspec.convert(decoded, Catalog)
    except msgspec.ValidationError as exc:
        raise CatalogError(f"invalid catalog: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise CatalogError(f"catalog is not JSON: {exc}") from exc
    seen_tenants: set[str] = set()
    for tenant in catalog.tenants:
        if not ID_PATTERN.match(tenant.tenant_id) or "/" in tenant.tenant_id:
            raise CatalogError(f"bad tenant_id {tenant.tenant_id!r}")
        if tenant.tenant_id in seen_tenants:
            raise CatalogError(f"tenant {tenant.tenant_id!r} listed twice")
        seen_tenants.add(tenant.tenant_id)
        if tenant.secret is None and tenant.secret_env is None:
            raise CatalogError(f"tenant {tenant.tenant_id!r} needs secret or secret_env")
        types = type_map(tenant)
        ids: set[str] = set()
        for act in tenant.activities:
            where = f"{tenant.tenant_id}/{act.id}"
            if not ID_PATTERN.match(act.id):
                raise CatalogError(f"bad activity id {where!r}")
            if act.id in ids:
                raise CatalogError(f"activity {where!r} listed twice")
            ids.add(act.id)
            if act.activity_type not in types:
                raise CatalogError(f"{where}: unknown activity_type {act.activity_type!r}")
            if act.activity_type not in KIND_ACTIVITY_TYPES[act.kind]:
                raise CatalogError(f"{where}: a {act.kind} cannot be {act.activity_type!r}")
            for section, amounts in (
                ("xp", act.rewards.xp),
                ("currency", act.rewards.currency),
                ("items", act.rewards.items),
            ):
                for name, amount in amounts.items():
                    if not 0 <= amount <= MAX_AMOUNT:
                        raise CatalogError(f"{where}: {section}.{name} out of range")
            for limit in (act.capacity, act.per_character):
                if limit is not None and limit < 1:
                    raise CatalogError(f"{where}: limits must be >= 1")
    return catalog


def type_map(tenant: TenantCatalog) -> dict[str, MinigameType]:
    """The tenant's activity_type -> minigame map: defaults, overridden row by row."""
    types = dict(DEFAULT_TYPE_MAP)
    for name, row in tenant.minigame_types.items():
        types[name] = _row(row, f"{tenant.tenant_id}: minigame_types.{name}")
    return types


def category_map(tenant: TenantCatalog) -> dict[str, MinigameType]:
    cats = dict(DEFAULT_EXPEDITION_CATEGORIES)
    for name, row in tenant.expedition_categories.items():
        cats[name] = _row(row, f"{tenant.tenant_id}: expedition_categories.{name}")
    return cats


def activity_definition(act: Activity) -> dict[str, Any]:
    """The stored form of an activity: plain data, limits resolved from the kind's defaults."""
    capacity, per_character = (None, None) if act.unlimited else KIND_LIMITS.get(act.kind, (None, None))
    if act.capacity is not None:
        capacity = act.capacity
    if act.per_character is not None:
        per_character = act.per_character
    return {
        "id": act.id,
        "kind": act.kind,
        "activity_type": act.activity_type,
        "name": act.name,
        "description": act.description,
        "category": act.category,
        "skill": act.skill,
        "rewards": msgspec.to_builtins(act.rewards),
        "capacity": capacity,
        "per_character": per_character,
        "status": act.status,
        "expires_at": act.expires_at,
        "departs_at": act.departs_at,
    }


def resolve_minigame(
    definition: dict[str, Any] | None,
    activity_type: str,
    types: dict[str, MinigameType],
    categories: dict[str, MinigameType],
) -> MinigameType | None:
    """activity_type (and expedition category) -> minigame, with the activity's skill override."""
    base = types.get(activity_type)
    if base is None:
        return None
    if definition is not None:
        category = definition.get("category")
        if activity_type == "expedition_accept" and category in categories:
            base = categories[category]
        if definition.get("skill"):
            base = MinigameType(base.minigame_type, base.min_duration_ms, base.max_duration_ms, definition["skill"])
    return base


def availability(
    definition: dict[str, Any], state: dict[str, Any], now_ms: int, character_id: str | None = None
) -> Status:
    """The activity's status now (for ``character_id`` if given).

    ``expired`` (past ``expires_at``) reads as gone, 404; ``departed`` and
    ``accepted`` (capacity used up, or this character's share used up) as 409.
    """
    expires_at = definition.get("expires_at")
    if definition["status"] == "expired" or (expires_at is not None and now_ms > expires_at * 1000):
        return "expired"
    departs_at = definition.get("departs_at")
    if definition["status"] == "departed" or (departs_at is not None and now_ms >= departs_at * 1000):
        return "departed"
    if definition["status"] == "accepted":
        return "accepted"
    capacity = definition.get("capacity")
    if capacity is not None and state.get("count", 0) >= capacity:
        return "accepted"
    per_character = definition.get("per_character")
    if (
        character_id is not None
        and per_character is not None
        and state.get("by", {}).get(character_id, 0) >= per_character
    ):
        return "accepted"
    return "open"


def unavailable_error(status: Status) -> str | None:
    """The seed's code for a status: gone -> 404, taken or departed -> 409."""
    if status == "expired":
        return "activity_not_found"
    if status in ("accepted", "departed"):
        return "activity_unavailable"
    return None
