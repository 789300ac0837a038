"""Wire shapes: camelCase round trips exactly as the reference, decode errors, catalog checks."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from questline.rules.questkit_models import (
    BadgeReward,
    Balance,
    BalanceChangedUpdate,
    Campaign,
    Catalog,
    CatalogError,
    CurrencyReward,
    Event,
    FilterClause,
    ItemReward,
    Mission,
    MissionCriteria,
    MissionProgress,
    MissionProgressUpdate,
    Reward,
    RewardGranted,
    RewardGrantedUpdate,
    SDKUpdate,
    WireError,
    convert,
    decode,
    decode_catalog,
    decode_event,
    validate_catalog,
)
from tests.rules.factories import badge, campaign, mission


def roundtrip(doc: dict[str, Any], type_: Any) -> dict[str, Any]:
    """JSON in, Struct, JSON out, as builtins."""
    value = decode(json.dumps(doc), type_)
    return json.loads(msgspec.json.encode(value))


FULL_MISSION = {
    "id": "spring-buyer",
    "title": "Spring buyer",
    "description": "Buy three things",
    "criteria": {
        "eventName": "purchase.completed",
        "count": 3,
        "window": "weekly",
        "filter": {
            "amount": {"gte": 20},
            "product": {"in": ["boots", "hat"]},
            "gift": {"eq": None},
        },
    },
    "reward": {"kind": "currency", "currency": "coins", "amount": 50},
    "campaignId": "spring",
    "expiresAt": 1716100000000,
    "iconUrl": "https://example.test/i.svg",
}


def test_mission_roundtrip_keeps_every_key() -> None:
    assert roundtrip(FULL_MISSION, Mission) == FULL_MISSION


def test_mission_optional_fields_are_omitted_and_window_is_written() -> None:
    doc = {
        "id": "m",
        "title": "t",
        "description": "d",
        "criteria": {"eventName": "x", "count": 1, "filter": None},
        "reward": {"kind": "badge", "badgeId": "b"},
        "campaignId": None,
    }
    out = roundtrip(doc, Mission)
    assert set(out) == {"id", "title", "description", "criteria", "reward"}
    assert out["criteria"] == {"eventName": "x", "count": 1, "window": "lifetime"}


@pytest.mark.parametrize(
    ("doc", "cls"),
    [
        ({"kind": "currency", "currency": "gems", "amount": 2.5}, CurrencyReward),
        ({"kind": "badge", "badgeId": "first-buy"}, BadgeReward),
        ({"kind": "item", "itemId": "sword", "quantity": 2}, ItemReward),
    ],
)
def test_reward_is_tagged_on_kind(doc: dict[str, Any], cls: type) -> None:
    value = decode(json.dumps(doc), Reward)
    assert isinstance(value, cls)
    assert json.loads(msgspec.json.encode(value)) == doc


def test_campaign_roundtrip() -> None:
    doc = {
        "id": "spring",
        "title": "Spring",
        "description": "d",
        "startAt": 1,
        "endAt": 2,
        "missionIds": ["a", "b"],
        "theme": {"primaryColor": "#00ff00"},
        "bannerUrl": "https://example.test/b.png",
    }
    assert roundtrip(doc, Campaign) == doc
    bare = {k: doc[k] for k in ("id", "title", "description", "startAt", "endAt", "missionIds")}
    assert roundtrip(bare, Campaign) == bare


def test_progress_balance_and_event_keys() -> None:
    progress = MissionProgress(
        user_id="u",
        mission_id="m",
        status="active",
        progress=0.5,
        current_count=1,
        target_count=2,
        updated_at=5,
    )
    assert json.loads(msgspec.json.encode(progress)) == {
        "userId": "u",
        "missionId": "m",
        "status": "active",
        "progress": 0.5,
        "currentCount": 1,
        "targetCount": 2,
        "updatedAt": 5,
    }
    balance = Balance(user_id="u", currency="coins", amount=10, updated_at=7)
    assert json.loads(msgspec.json.encode(balance)) == {
        "userId": "u",
        "currency": "coins",
        "amount": 10,
        "updatedAt": 7,
    }
    event = {
        "userId": "usr_demo_123",
        "name": "purchase.completed",
        "payload": {"product": "boots", "amount": 49.99},
        "timestamp": 1716100000000,
    }
    assert roundtrip(event, Event) == event
    assert roundtrip({**event, "idempotencyKey": "k"}, Event) == {**event, "idempotencyKey": "k"}


def test_sdk_updates_are_tagged_on_type() -> None:
    progress = MissionProgress("u", "m", "completed", 1.0, 2, 2, 5)
    out = json.loads(msgspec.json.encode(MissionProgressUpdate(data=progress)))
    assert out["type"] == "mission.progress" and out["data"]["missionId"] == "m"
    granted = RewardGrantedUpdate(data=RewardGranted("u", badge(), "m"))
    assert json.loads(msgspec.json.encode(granted)) == {
        "type": "reward.granted",
        "data": {"userId": "u", "reward": {"kind": "badge", "badgeId": "b1"}, "missionId": "m"},
    }
    raw = msgspec.json.encode(BalanceChangedUpdate(data=Balance("u", "coins", 3, 4)))
    assert isinstance(decode(raw, SDKUpdate), BalanceChangedUpdate)


def test_filter_clause_wire_names() -> None:
    assert msgspec.json.encode(FilterClause(in_=[1])) == b'{"in":[1]}'
    assert msgspec.json.encode(FilterClause(eq=None)) == b'{"eq":null}'
    assert decode(b'{"in":["a"]}', FilterClause).in_ == ["a"]


def test_unknown_top_level_fields_are_ignored() -> None:
    event = decode_event(b'{"userId":"u","name":"n","payload":{},"timestamp":1,"extra":true}')
    assert event.user_id == "u"


# --------------------------------------------------------------------------- decode errors


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        (b'{"userId":"u","name":"n","payload":{},"timestamp":"soon"}', "$.timestamp", "int"),
        (b'{"userId":"u","name":"n","payload":[],"timestamp":1}', "$.payload", "object"),
        (b'{"userId":"","name":"n","payload":{},"timestamp":1}', "$.userId", "length"),
        (b'{"name":"n","payload":{},"timestamp":1}', "$", "userId"),
        (b'{"userId":"u",', "$", "Malformed JSON"),
    ],
)
def test_event_decode_errors_name_the_field(raw: bytes, path: str, fragment: str) -> None:
    with pytest.raises(WireError) as info:
        decode_event(raw)
    assert info.value.field_path == path
    assert fragment in info.value.message
    assert f"at `{path}`" in str(info.value)


def catalog_doc(**mission_overrides: Any) -> dict[str, Any]:
    m = {
        "id": "m1",
        "title": "t",
        "description": "d",
        "criteria": {"eventName": "x", "count": 1},
        "reward": {"kind": "badge", "badgeId": "b"},
    }
    m.update(mission_overrides)
    return {"appId": "app", "missions": [m], "campaigns": []}


@pytest.mark.parametrize(
    ("overrides", "path", "fragment"),
    [
        ({"criteria": {"eventName": "x", "count": 0}}, "$.missions[0].criteria.count", ">= 1"),
        ({"criteria": {"eventName": "x", "count": 1.5}}, "$.missions[0].criteria.count", "int"),
        ({"criteria": {"eventName": "", "count": 1}}, "$.missions[0].criteria.eventName", ""),
        (
            {"criteria": {"eventName": "x", "count": 1, "window": "monthly"}},
            "$.missions[0].criteria.window",
            "",
        ),
        (
            {"criteria": {"eventName": "x", "count": 1, "filter": {"amount": {"eq": 1, "lt": 2}}}},
            "$.missions[0].criteria.filter.amount",
            "exactly one",
        ),
        (
            {"criteria": {"eventName": "x", "count": 1, "filter": {"a b": {"neq": 1}}}},
            '$.missions[0].criteria.filter["a b"]',
            "neq",
        ),
        (
            {"criteria": {"eventName": "x", "count": 1, "filter": {"amount": {"gte": True}}}},
            "$.missions[0].criteria.filter.amount.gte",
            "bool",
        ),
        ({"reward": {"kind": "gold"}}, "$.missions[0].reward.kind", "gold"),
        (
            {"reward": {"kind": "currency", "currency": "c", "amount": 0}},
            "$.missions[0].reward.amount",
            "",
        ),
        (
            {"reward": {"kind": "item", "itemId": "i", "quantity": 0}},
            "$.missions[0].reward.quantity",
            ">= 1",
        ),
        ({"reward": {"kind": "badge", "badgeId": ""}}, "$.missions[0].reward.badgeId", ""),
        ({"id": ""}, "$.missions[0].id", ""),
    ],
)
def test_catalog_decode_errors_name_the_field(
    overrides: dict[str, Any], path: str, fragment: str
) -> None:
    with pytest.raises(CatalogError) as info:
        decode_catalog(json.dumps(catalog_doc(**overrides)))
    assert info.value.field_path == path
    assert fragment in info.value.message


def test_convert_names_the_field_too() -> None:
    with pytest.raises(WireError) as info:
        convert({"eventName": "x", "count": 1, "filter": {"k": {"in": 3}}}, MissionCriteria)
    assert info.value.field_path == "$.filter.k.in"


# --------------------------------------------------------------------------- semantic validation


def catalog(missions: list[Mission], campaigns: list[Campaign] | None = None) -> Catalog:
    return Catalog(app_id="app", missions=missions, campaigns=campaigns or [])


def test_valid_catalog_passes() -> None:
    cat = catalog(
        [mission("a", campaign_id="c1"), mission("b"), mission("c")],
        [campaign("c1", ["a", "b"], start_at=5, end_at=5)],
    )
    validate_catalog(cat)
    assert decode_catalog(msgspec.json.encode(cat)) == cat


@pytest.mark.parametrize(
    ("cat", "path", "fragment"),
    [
        (catalog([mission("a"), mission("a")]), "$.missions[1].id", "duplicate mission id 'a'"),
        (catalog([mission("")]), "$.missions[0].id", "non-empty"),
        (catalog([mission("  ")]), "$.missions[0].id", "non-empty"),
        (Catalog(app_id="", missions=[]), "$.appId", "non-empty"),
        (catalog([mission(count=0)]), "$.missions[0].criteria.count", ">= 1"),
        (catalog([mission(count=True)]), "$.missions[0].criteria.count", ">= 1"),
        (catalog([mission(window="monthly")]), "$.missions[0].criteria.window", "one of"),
        (
            catalog([mission(filter={"amount": {"gte": "10"}})]),
            "$.missions[0].criteria.filter.amount",
            "`gte` needs a finite number",
        ),
        (
            catalog([mission(filter={"x-y": {"eq": 1, "in": [1]}})]),
            '$.missions[0].criteria.filter["x-y"]',
            "exactly one",
        ),
        (
            catalog([mission(reward=CurrencyReward(currency="coins", amount=0))]),
            "$.missions[0].reward.amount",
            "> 0",
        ),
        (
            catalog([mission(reward=CurrencyReward(currency="coins", amount=-1.5))]),
            "$.missions[0].reward.amount",
            "> 0",
        ),
        (
            catalog([mission(reward=CurrencyReward(currency="", amount=1))]),
            "$.missions[0].reward.currency",
            "non-empty",
        ),
        (
            catalog([mission(reward=ItemReward(item_id="sword", quantity=0))]),
            "$.missions[0].reward.quantity",
            ">= 1",
        ),
        (
            catalog([mission(reward=ItemReward(item_id="", quantity=1))]),
            "$.missions[0].reward.itemId",
            "non-empty",
        ),
        (
            catalog([mission(reward=BadgeReward(badge_id=""))]),
            "$.missions[0].reward.badgeId",
            "non-empty",
        ),
        (
            catalog([mission("a")], [campaign("c1", ["a", "ghost"])]),
            "$.campaigns[0].missionIds[1]",
            "unknown mission id 'ghost'",
        ),
        (
            catalog([mission("a")], [campaign("c1", ["a"], start_at=10, end_at=9)]),
            "$.campaigns[0].endAt",
            "before startAt",
        ),
        (
            catalog([mission("a")], [campaign("c1", ["a"]), campaign("c1", [])]),
            "$.campaigns[1].id",
            "duplicate campaign id",
        ),
        (catalog([], [campaign("", [])]), "$.campaigns[0].id", "non-empty"),
        (
            catalog([mission("a")], [campaign("c1", ["a"]), campaign("c2", ["a"])]),
            "$.campaigns[1].missionIds[0]",
            "already listed by campaign 'c1'",
        ),
        (
            catalog([mission("a")], [campaign("c1", ["a", "a"])]),
            "$.campaigns[0].missionIds[1]",
            "already listed by this campaign",
        ),
        (
            catalog([mission("a", campaign_id="nope")]),
            "$.missions[0].campaignId",
            "unknown campaign id 'nope'",
        ),
        (
            catalog([mission("a", campaign_id="c1")], [campaign("c1", [])]),
            "$.missions[0].campaignId",
            "does not list mission 'a'",
        ),
    ],
)
def test_catalog_semantic_errors_name_the_field(cat: Catalog, path: str, fragment: str) -> None:
    with pytest.raises(CatalogError) as info:
        validate_catalog(cat)
    assert info.value.field_path == path
    assert fragment in info.value.message


def test_semantic_errors_surface_through_decode_catalog() -> None:
    doc = catalog_doc()
    doc["missions"].append(dict(doc["missions"][0]))
    with pytest.raises(CatalogError) as info:
        decode_catalog(json.dumps(doc))
    assert info.value.field_path == "$.missions[1].id"
