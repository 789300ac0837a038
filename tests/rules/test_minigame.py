"""Pure minigame rules: the modifier at its edges, bands, hashes, tokens, catalog checks."""

from __future__ import annotations

import base64
import hashlib
import math

import pytest

from questline.rules import minigame as rules
from questline.rules.minigame_catalog import (
    CatalogError,
    activity_definition,
    availability,
    parse_catalog,
    resolve_minigame,
    unavailable_error,
)

KEY = b"k" * 32


# -- modifier -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0.0, 0.7),
        (1.0, 1.4),
        (0.5, 1.05),
        (0.82, 1.274),  # the seed's example
        (0.001, 0.701),
        (0.999, 1.399),
        (-0.5, 0.7),  # clamped below
        (-100.0, 0.7),
        (1.5, 1.4),  # clamped above
        (100.0, 1.4),
    ],
)
def test_modifier_formula_and_clamp(score: float, expected: float) -> None:
    assert rules.modifier_for(score) == expected


def test_modifier_stays_within_bounds_on_a_fine_grid() -> None:
    previous = 0.0
    for i in range(-200, 1201):
        m = rules.modifier_for(i / 1000)
        assert 0.7 <= m <= 1.4
        assert m >= previous  # monotone
        previous = m


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_modifier_refuses_non_finite_scores(bad: float) -> None:
    with pytest.raises(ValueError):
        rules.modifier_for(bad)


def test_score_range_is_inclusive() -> None:
    assert rules.score_in_range(0.0) and rules.score_in_range(1.0) and rules.score_in_range(0.5)
    assert not rules.score_in_range(-0.0001)
    assert not rules.score_in_range(1.0001)
    assert not rules.score_in_range(math.nan)


# -- bands, durations, scaling ------------------------------------------------------------
@pytest.mark.parametrize(
    ("xp", "band"),
    [(0, 1), (99, 1), (100, 2), (299, 2), (300, 3), (699, 3), (700, 4), (1499, 4), (1500, 5), (2999, 5),
     (3000, 6), (5999, 6), (6000, 7), (10**9, 7)],
)
def test_skill_bands(xp: int, band: int) -> None:
    assert rules.skill_band(xp) == band


def test_duration_bounds_are_inclusive() -> None:
    assert rules.duration_error(8000, 8000, 45000) is None
    assert rules.duration_error(45000, 8000, 45000) is None
    assert rules.duration_error(7999, 8000, 45000) == "duration_too_short"
    assert rules.duration_error(45001, 8000, 45000) == "duration_too_long"
    assert rules.duration_error(-1, 8000, 45000) == "duration_too_short"


def test_scaling_rounds_half_up_in_integer_milli_units() -> None:
    assert rules.scale_amount(40, 1.274) == 51  # 50.96
    assert rules.scale_amount(60, 1.274) == 76  # 76.44
    assert rules.scale_amount(10, 1.05) == 11  # 10.5 rounds up, no float drift
    assert rules.scale_amount(100, 0.7) == 70
    assert rules.scale_amount(100, 1.4) == 140
    assert rules.scale_amount(1, 0.7) == 1
    assert rules.scale_amount(1, 0.7, at_least_one=False) == 1
    assert rules.scale_amount(0, 1.4) == 0


def test_items_never_scale_to_nothing() -> None:
    scaled = rules.scale_rewards({"xp": {"a": 1}, "items": {"sword": 1}, "currency": {"g": 0}}, 0.7)
    assert scaled == {"xp": {"a": 1}, "currency": {}, "items": {"sword": 1}}
    assert rules.scale_amount(2, 0.7, at_least_one=True) == 1  # 1.4 -> 1


# -- event hash ---------------------------------------------------------------------------
def test_event_hash_is_the_documented_derivation() -> None:
    message = b"questline-minigame-v1|-123|14300|820"
    expected = base64.b64encode(hashlib.sha256(message).digest()).decode()
    assert rules.event_hash(-123, 14300, 0.82) == expected
    assert rules.event_hash_matches(expected, -123, 14300, 0.82)
    # URL-safe and unpadded spellings of the same digest are accepted too.
    assert rules.event_hash_matches(expected.replace("+", "-").replace("/", "_").rstrip("="), -123, 14300, 0.82)


def test_event_hash_rejects_other_inputs_and_garbage() -> None:
    good = rules.event_hash(7, 9000, 0.5)
    assert not rules.event_hash_matches(good, 8, 9000, 0.5)
    assert not rules.event_hash_matches(good, 7, 9001, 0.5)
    assert not rules.event_hash_matches(good, 7, 9000, 0.51)
    assert not rules.event_hash_matches("", 7, 9000, 0.5)
    assert not rules.event_hash_matches("not base64 !!", 7, 9000, 0.5)
    assert not rules.event_hash_matches(base64.b64encode(b"short").decode(), 7, 9000, 0.5)


def test_score_milli_rounds_half_up_like_javascript() -> None:
    assert rules.score_milli(0.8205) == math.floor(0.8205 * 1000 + 0.5)
    assert rules.score_milli(0.0) == 0
    assert rules.score_milli(1.0) == 1000
    assert rules.score_milli(0.0005) == 1  # Python's round() would give 0


# -- signed tokens ------------------------------------------------------------------------
def test_token_round_trip_and_tamper() -> None:
    token = rules.sign_token({"typ": "mgs", "jti": "j", "exp": 5}, KEY)
    assert rules.verify_token(token, KEY, "mgs") == {"typ": "mgs", "jti": "j", "exp": 5}
    body, sig = token.split(".")
    forged_body = rules.sign_token({"typ": "mgs", "jti": "other", "exp": 5}, KEY).split(".")[0]
    assert rules.verify_token(f"{forged_body}.{sig}", KEY, "mgs") is None
    assert rules.verify_token(token, b"x" * 32, "mgs") is None
    assert rules.verify_token(token, KEY, "mgr") is None  # wrong kind
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    assert rules.verify_token(f"{body}.{flipped}", KEY, "mgs") is None
    for garbage in ("", ".", "a.b.c", "nodot", "%%%.%%%", body):
        assert rules.verify_token(garbage, KEY, "mgs") is None


def test_keys_are_separated_by_purpose() -> None:
    keys = {rules.access_key(KEY), rules.session_key(KEY), rules.result_key(KEY)}
    assert len(keys) == 3
    session_token = rules.sign_token({"typ": "mgr", "jti": "j"}, rules.session_key(KEY))
    assert rules.verify_token(session_token, rules.result_key(KEY), "mgr") is None


def test_expiry_is_inclusive_of_the_exp_instant() -> None:
    assert not rules.expired(100, 100_000)
    assert rules.expired(100, 100_001)


def test_result_binding() -> None:
    claims = {"sub": "c1", "tid": "t", "exp": 200, "activity_type": "heal", "activity_ref_id": "h1", "jti": "j"}
    kwargs = {"character_id": "c1", "tenant_id": "t", "allowed_types": frozenset({"heal"}),
              "activity_ref_id": "h1", "now_ms": 150_000}
    assert rules.result_binding_ok(claims, **kwargs)
    assert not rules.result_binding_ok(claims, **{**kwargs, "character_id": "c2"})
    assert not rules.result_binding_ok(claims, **{**kwargs, "tenant_id": "u"})
    assert not rules.result_binding_ok(claims, **{**kwargs, "allowed_types": frozenset({"scout"})})
    assert not rules.result_binding_ok(claims, **{**kwargs, "activity_ref_id": "h2"})
    assert not rules.result_binding_ok(claims, **{**kwargs, "now_ms": 200_001})


def test_secret_hash_verifies_only_the_secret() -> None:
    record = rules.hash_secret("s3cret", b"salt" * 4)
    assert b"s3cret" not in record["hash"]
    assert rules.verify_secret("s3cret", record)
    assert not rules.verify_secret("s3cret ", record)
    assert not rules.verify_secret("", record)


def test_session_payload_fields() -> None:
    mt = rules.DEFAULT_TYPE_MAP["expedition_accept"]
    payload = rules.session_payload(
        jti="j", tenant_id="t", character_id="c", activity_type="expedition_accept",
        activity_ref_id="b1", minigame=mt, skill_band=3, seed=-5, now_ms=1_716_000_000_999,
    )
    assert payload["iat"] == 1_716_000_000 and payload["exp"] == 1_716_000_300
    assert (payload["type"], payload["min_duration_ms"], payload["max_duration_ms"]) == ("rhythm", 8000, 45000)


# -- catalog and availability -----------------------------------------------------------------
def _catalog(**activity: object) -> dict:
    act = {"id": "a1", "kind": "board_order", "activity_type": "expedition_accept", "name": "n", **activity}
    return {"tenants": [{"tenant_id": "t", "secret": "s", "activities": [act]}]}


def test_catalog_rejects_mismatched_kinds_and_unknown_types() -> None:
    with pytest.raises(CatalogError):
        parse_catalog(_catalog(kind="recipe"))  # a recipe cannot be expedition_accept
    with pytest.raises(CatalogError):
        parse_catalog(_catalog(activity_type="dance"))
    with pytest.raises(CatalogError):
        parse_catalog(_catalog(surprise=1))
    with pytest.raises(CatalogError):
        parse_catalog(_catalog(capacity=0))
    with pytest.raises(CatalogError):
        parse_catalog(b"{not json")
    parse_catalog(_catalog())


def test_board_orders_close_after_one_acceptance_and_expeditions_per_character() -> None:
    board = activity_definition(parse_catalog(_catalog()).tenants[0].activities[0])
    assert availability(board, {}, 0, "c1") == "open"
    assert availability(board, {"count": 1, "by": {"c1": 1}}, 0, "c2") == "accepted"
    expedition = activity_definition(
        parse_catalog(_catalog(kind="expedition", departs_at=100)).tenants[0].activities[0]
    )
    state = {"count": 1, "by": {"c1": 1}}
    assert availability(expedition, state, 0, "c2") == "open"
    assert availability(expedition, state, 0, "c1") == "accepted"
    assert availability(expedition, state, 100_000, "c2") == "departed"
    expiring = activity_definition(parse_catalog(_catalog(expires_at=100)).tenants[0].activities[0])
    assert availability(expiring, {}, 100_000) == "open"
    assert availability(expiring, {}, 100_001) == "expired"
    assert unavailable_error("expired") == "activity_not_found"
    assert unavailable_error("departed") == unavailable_error("accepted") == "activity_unavailable"
    assert unavailable_error("open") is None


def test_expedition_category_picks_the_minigame() -> None:
    types = rules.DEFAULT_TYPE_MAP
    cats = rules.DEFAULT_EXPEDITION_CATEGORIES
    definition = {"category": "combat", "skill": None}
    assert resolve_minigame(definition, "expedition_accept", types, cats).minigame_type == "reaction"
    assert resolve_minigame(None, "expedition_accept", types, cats).minigame_type == "rhythm"
    assert resolve_minigame({"category": None, "skill": "x"}, "heal", types, cats).skill == "x"
    assert resolve_minigame(None, "unknown", types, cats) is None


def test_every_route_type_has_a_minigame() -> None:
    for allowed in rules.ROUTE_ACTIVITY_TYPES.values():
        for activity_type in allowed:
            assert activity_type in rules.DEFAULT_TYPE_MAP


# -- the documented tables match the code ---------------------------------------------------
def _doc_rows(first_header: str) -> list[list[str]]:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
    return rows


def test_readme_type_table_matches_the_code() -> None:
    rows = _doc_rows("activity_type")
    documented = {r[0]: rules.MinigameType(r[1], int(r[2]), int(r[3]), r[4]) for r in rows}
    assert documented == rules.DEFAULT_TYPE_MAP
    cats = _doc_rows("expedition category")
    assert {r[0]: rules.MinigameType(r[1], int(r[2]), int(r[3]), r[4]) for r in cats} == (
        rules.DEFAULT_EXPEDITION_CATEGORIES
    )


def test_readme_band_table_matches_the_code() -> None:
    rows = _doc_rows("band")
    assert [(int(r[0]), int(r[1])) for r in rows] == list(rules.SKILL_BANDS)
    for r in rows:
        if r[2] != "—":
            assert rules.skill_band(int(r[2])) == int(r[0])
            assert rules.skill_band(int(r[2]) + 1) == int(r[0]) + 1
