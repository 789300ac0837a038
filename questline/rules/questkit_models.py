"""QuestKit wire shapes (``reference/questkit.md``) as msgspec Structs.

Fields are snake_case in Python and camelCase on the wire (``rename="camel"``).
Optional fields the reference marks with ``?`` default to None and are left out
of the output when absent (``omit_defaults``), so an encoded object carries
exactly the keys a QuestKit client expects. Unknown input fields are ignored
(QuestKit is lenient), except inside a filter clause, where an unknown key is
an operator we do not support and must not be silently dropped.

Decoding checks types and ranges (``msgspec.Meta``); ``validate_catalog`` adds
what a type cannot say (unique ids, references, time order) and re-checks the
ranges, because msgspec does not validate Structs built in Python.
"""

import functools
import json
import math
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType, field

from questline.rules.filters import clause_problem, is_number
from questline.rules.windows import Window

T = TypeVar("T")

Status = Literal["locked", "active", "completed", "claimed"]
WINDOWS: tuple[str, ...] = ("daily", "weekly", "lifetime")

NonEmptyStr = Annotated[str, Meta(min_length=1)]
UnixMs = Annotated[int, Meta(description="Unix time in milliseconds")]
# An event's time is trusted as-is, but it must be a representable date (1970 to 9999).
EventMs = Annotated[int, Meta(ge=0, le=253_402_300_799_999, description="Unix time in milliseconds")]
# msgspec cannot put one numeric constraint on a union, hence one per member.
PositiveNumber = Annotated[int, Meta(gt=0)] | Annotated[float, Meta(gt=0)]
Number = int | float


# --------------------------------------------------------------------------- filters


class FilterClause(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Exactly one operator: eq, gte, lte, gt, lt or in."""

    # Docstrings of wire Structs end up in the OpenAPI document, so implementation
    # notes live in comments: UNSET marks an absent operator, keeping {"eq": null}
    # (compare with null) distinct from "no eq".
    eq: Any | UnsetType = UNSET
    gte: Number | UnsetType = UNSET
    lte: Number | UnsetType = UNSET
    gt: Number | UnsetType = UNSET
    lt: Number | UnsetType = UNSET
    in_: list[Any] | UnsetType = field(default=UNSET, name="in")

    def __post_init__(self) -> None:
        # Runs on decode (msgspec turns the ValueError into a ValidationError with
        # the path) and on construction in Python.
        problem = clause_problem(self)
        if problem is not None:
            raise ValueError(problem)


Filter = dict[str, FilterClause]


# --------------------------------------------------------------------------- missions


class MissionCriteria(Struct, rename="camel"):
    """``count`` events named ``eventName`` whose payload matches ``filter``, per ``window``."""

    # window is always written out (a client showing "daily" should not have to
    # know the default) while an absent filter is left out. omit_defaults cannot
    # do both, so filter uses UNSET (never encoded); JSON null is accepted and
    # normalised to UNSET in __post_init__.
    event_name: NonEmptyStr
    count: Annotated[int, Meta(ge=1)]
    window: Window = "lifetime"
    filter: Filter | None | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.filter is None:
            self.filter = UNSET


class CurrencyReward(Struct, tag="currency", tag_field="kind", rename="camel"):
    currency: NonEmptyStr
    amount: PositiveNumber


class BadgeReward(Struct, tag="badge", tag_field="kind", rename="camel"):
    badge_id: NonEmptyStr


class ItemReward(Struct, tag="item", tag_field="kind", rename="camel"):
    item_id: NonEmptyStr
    quantity: Annotated[int, Meta(ge=1)]


Reward = CurrencyReward | BadgeReward | ItemReward


class Mission(Struct, rename="camel", omit_defaults=True):
    id: NonEmptyStr
    title: str
    description: str
    criteria: MissionCriteria
    reward: Reward
    campaign_id: str | None = None
    expires_at: UnixMs | None = None
    icon_url: str | None = None


class Theme(Struct, rename="camel", omit_defaults=True):
    primary_color: str | None = None


class Campaign(Struct, rename="camel", omit_defaults=True):
    id: NonEmptyStr
    title: str
    description: str
    start_at: UnixMs
    end_at: UnixMs
    mission_ids: list[str]
    theme: Theme | None = None
    banner_url: str | None = None


class MissionProgress(Struct, rename="camel"):
    user_id: str
    mission_id: str
    status: Status
    progress: Annotated[float, Meta(ge=0, le=1)]
    current_count: int
    target_count: int
    updated_at: UnixMs


class Balance(Struct, rename="camel"):
    user_id: str
    currency: str
    amount: Number
    updated_at: UnixMs


class Event(Struct, rename="camel", omit_defaults=True):
    user_id: NonEmptyStr
    name: NonEmptyStr
    payload: dict[str, Any]
    timestamp: EventMs
    idempotency_key: str | None = None


class Catalog(Struct, rename="camel"):
    """One app's published missions and campaigns."""

    app_id: NonEmptyStr
    missions: list[Mission] = field(default_factory=list)
    campaigns: list[Campaign] = field(default_factory=list)


# --------------------------------------------------------------------------- SSE updates


class RewardGranted(Struct, rename="camel"):
    user_id: str
    reward: Reward
    mission_id: str


class RecommendationData(Struct, rename="camel"):
    user_id: str
    mission_ids: list[str]
    reason: str


class MissionProgressUpdate(Struct, tag="mission.progress", tag_field="type"):
    data: MissionProgress


class MissionCompletedUpdate(Struct, tag="mission.completed", tag_field="type"):
    data: MissionProgress


class MissionClaimedUpdate(Struct, tag="mission.claimed", tag_field="type"):
    data: MissionProgress


class BalanceChangedUpdate(Struct, tag="balance.changed", tag_field="type"):
    data: Balance


class RewardGrantedUpdate(Struct, tag="reward.granted", tag_field="type"):
    data: RewardGranted


class RecommendationUpdate(Struct, tag="recommendation", tag_field="type"):
    data: RecommendationData


SDKUpdate = (
    MissionProgressUpdate
    | MissionCompletedUpdate
    | MissionClaimedUpdate
    | BalanceChangedUpdate
    | RewardGrantedUpdate
    | RecommendationUpdate
)


# --------------------------------------------------------------------------- errors + decoding


class WireError(ValueError):
    """Bad input, naming the offending field as a msgspec-style path (``$.criteria.count``).

    ``str()`` reads like msgspec's own messages ("... - at `$.x`") so the HTTP
    layer can put it straight into ``{"error": ..., "message": ...}``.
    """

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{message} - at `{field_path}`")
        self.field_path = field_path
        self.message = message


class CatalogError(WireError):
    """A catalog that decodes but does not make sense (or does not decode)."""


_AT_PATH = re.compile(r" - at `(\$[^`]*)`$")
_PATH_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_FILTER_ANY_KEY = ".filter[...]"


def _split_error(text: str) -> tuple[str, str]:
    """msgspec's "message - at `$.path`" as ``(path, message)``."""
    found = _AT_PATH.search(text)
    if found is None:
        return "$", text
    return found.group(1), text[: found.start()]


def _name_filter_key(path: str, source: Callable[[], Any]) -> tuple[str, str] | None:
    """Replace msgspec's ``filter[...]`` (it never names dict keys) by the offending key.

    Walks the untyped JSON to the filter and re-checks each clause; returns
    ``(path, message)`` for the first bad one, or None if it cannot tell.
    """
    prefix, found, _ = path.partition(_FILTER_ANY_KEY)
    if not found:
        return None
    try:
        node = source()
        for name, index in _PATH_STEP.findall(prefix[1:]):
            node = node[name] if name else node[int(index)]
        clauses = node["filter"]
        for key, clause in clauses.items():
            try:
                msgspec.convert(clause, FilterClause)
            except msgspec.ValidationError as exc:
                inner_path, message = _split_error(str(exc))
                return f"{prefix}.filter{_key_path(key)}{inner_path[1:]}", message
    except (msgspec.DecodeError, LookupError, TypeError, AttributeError, ValueError):
        return None
    return None


def _wire_error(
    exc: msgspec.DecodeError, error: type[WireError], source: Callable[[], Any]
) -> WireError:
    text = str(exc)
    if not isinstance(exc, msgspec.ValidationError):
        return error("$", f"Malformed JSON: {text}")
    path, message = _split_error(text)
    named = _name_filter_key(path, source)
    if named is not None:
        path, message = named
    return error(path, message)


@functools.cache
def _decoder(type_: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(type_)


def decode(raw: bytes | str, type_: type[T], error: type[WireError] = WireError) -> T:
    """Decode JSON into ``type_``; any failure becomes ``error`` naming the field path."""
    try:
        return _decoder(type_).decode(raw)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass
        raise _wire_error(exc, error, lambda: msgspec.json.decode(raw)) from exc
    except RecursionError:  # hostile nesting: msgspec gives up before the stack does
        raise error("$", "Malformed JSON: nested too deeply") from None
    except UnicodeDecodeError:  # msgspec raises it as is for invalid UTF-8 in a string
        raise error("$", "Malformed JSON: invalid UTF-8") from None


def convert(obj: Any, type_: type[T], error: type[WireError] = WireError) -> T:
    """Like ``decode`` for already-parsed builtins (e.g. a dict from a form or a fixture)."""
    try:
        return msgspec.convert(obj, type_)
    except msgspec.ValidationError as exc:
        raise _wire_error(exc, error, lambda: obj) from exc


def decode_event(raw: bytes | str) -> Event:
    return decode(raw, Event)


def decode_catalog(raw: bytes | str) -> Catalog:
    """Decode and semantically validate a catalog; every problem is a CatalogError."""
    catalog = decode(raw, Catalog, CatalogError)
    validate_catalog(catalog)
    return catalog


# --------------------------------------------------------------------------- catalog validation


def _key_path(key: str) -> str:
    """Path step for a dict key: ``.key`` when it reads like an identifier, else ``["k.e y"]``."""
    return f".{key}" if key.isidentifier() else f"[{json.dumps(key)}]"


def _require_id(value: Any, path: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(path, "must be a non-empty string")


def _check_criteria(criteria: MissionCriteria, path: str) -> None:
    _require_id(criteria.event_name, f"{path}.eventName")
    count = criteria.count
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise CatalogError(f"{path}.count", f"count must be an integer >= 1, got {count!r}")
    if criteria.window not in WINDOWS:
        raise CatalogError(f"{path}.window", f"window must be one of {', '.join(WINDOWS)}")
    if not criteria.filter:
        return
    for key, clause in criteria.filter.items():
        clause_path = f"{path}.filter{_key_path(key)}"
        if not isinstance(key, str) or not key:
            raise CatalogError(clause_path, "filter keys must be non-empty strings")
        problem = clause_problem(clause)
        if problem is not None:
            raise CatalogError(clause_path, problem)


def _check_reward(reward: Any, path: str) -> None:
    if isinstance(reward, CurrencyReward):
        _require_id(reward.currency, f"{path}.currency")
        amount = reward.amount
        if not is_number(amount) or not math.isfinite(amount) or amount <= 0:
            raise CatalogError(f"{path}.amount", f"amount must be a number > 0, got {amount!r}")
    elif isinstance(reward, BadgeReward):
        _require_id(reward.badge_id, f"{path}.badgeId")
    elif isinstance(reward, ItemReward):
        _require_id(reward.item_id, f"{path}.itemId")
        quantity = reward.quantity
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            raise CatalogError(
                f"{path}.quantity", f"quantity must be an integer >= 1, got {quantity!r}"
            )
    else:
        raise CatalogError(f"{path}.kind", "reward kind must be currency, badge or item")


def validate_catalog(catalog: Catalog) -> None:
    """Raise CatalogError for the first semantic problem, naming its field path.

    Beyond the per-field checks, a mission belongs to at most one campaign, and
    ``Mission.campaignId`` and ``Campaign.missionIds`` must agree: both are on
    the wire and routes filter by either, so a disagreement would show a mission
    in a campaign on one route and not on the other.
    """
    _require_id(catalog.app_id, "$.appId")
    missions: dict[str, int] = {}
    for i, mission in enumerate(catalog.missions):
        path = f"$.missions[{i}]"
        _require_id(mission.id, f"{path}.id")
        if mission.id in missions:
            raise CatalogError(
                f"{path}.id",
                f"duplicate mission id {mission.id!r} (also at $.missions[{missions[mission.id]}])",
            )
        missions[mission.id] = i
        _check_criteria(mission.criteria, f"{path}.criteria")
        _check_reward(mission.reward, f"{path}.reward")

    campaigns: dict[str, int] = {}
    owner: dict[str, str] = {}  # mission id -> the campaign listing it
    for j, campaign in enumerate(catalog.campaigns):
        path = f"$.campaigns[{j}]"
        _require_id(campaign.id, f"{path}.id")
        if campaign.id in campaigns:
            raise CatalogError(
                f"{path}.id",
                f"duplicate campaign id {campaign.id!r} (also at $.campaigns[{campaigns[campaign.id]}])",
            )
        campaigns[campaign.id] = j
        if campaign.end_at < campaign.start_at:
            raise CatalogError(f"{path}.endAt", "endAt must not be before startAt")
        for k, mission_id in enumerate(campaign.mission_ids):
            item_path = f"{path}.missionIds[{k}]"
            if mission_id not in missions:
                raise CatalogError(item_path, f"unknown mission id {mission_id!r}")
            if mission_id in owner:
                where = (
                    "this campaign"
                    if owner[mission_id] == campaign.id
                    else f"campaign {owner[mission_id]!r}"
                )
                raise CatalogError(
                    item_path, f"mission {mission_id!r} is already listed by {where}"
                )
            owner[mission_id] = campaign.id

    for i, mission in enumerate(catalog.missions):
        if mission.campaign_id is None:
            continue
        path = f"$.missions[{i}].campaignId"
        if mission.campaign_id not in campaigns:
            raise CatalogError(path, f"unknown campaign id {mission.campaign_id!r}")
        if owner.get(mission.id) != mission.campaign_id:
            raise CatalogError(
                path,
                f"campaign {mission.campaign_id!r} does not list mission {mission.id!r} in missionIds",
            )
