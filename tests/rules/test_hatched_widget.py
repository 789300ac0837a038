"""Widget session rules: scopes, the issued -> active -> expired/revoked machine, lifetimes,
embed token signatures and the theme."""

from __future__ import annotations

import pytest

from questline.rules.hatched_errors import HatchedError
from questline.rules.hatched_widget import (
    DARK,
    LIGHT,
    check_access,
    effective_scopes,
    embed_key,
    parse_token,
    revoke,
    sign_embed,
    status_of,
    theme_of,
    token_hash,
    ttl_ms,
    verify_embed,
)


def record(**fields: object) -> dict:
    return {"session_id": "wgs_0123456789abcdef", "scopes": ["buddy:read"], "expires_at": 1_000,
            "activated_at": None, "revoked_at": None, **fields}


def test_effective_scopes_add_buddy_read_and_what_write_scopes_need() -> None:
    assert effective_scopes([]) == ["buddy:read"]
    assert effective_scopes(["items:equip"]) == ["buddy:read", "operations:read", "items:equip"]
    assert effective_scopes(["marketplace:purchase", "marketplace:purchase"]) == [
        "buddy:read", "marketplace:read", "marketplace:purchase"]
    with pytest.raises(HatchedError) as exc:
        effective_scopes(["admin:all"])
    assert exc.value.status == 400 and "admin:all" in exc.value.message


def test_state_machine() -> None:
    assert status_of(record(), 0) == "issued"
    assert status_of(record(activated_at=5), 10) == "active"
    assert status_of(record(activated_at=5), 999) == "active"
    assert status_of(record(activated_at=5), 1_000) == "expired"
    assert status_of(record(revoked_at=7), 10) == "revoked"
    assert status_of(record(revoked_at=7), 5_000) == "revoked"  # revocation wins over the clock

    live = record(activated_at=5)
    assert revoke(live, 10) is True and live["revoked_at"] == 10
    assert revoke(live, 20) is False and live["revoked_at"] == 10  # final: unchanged
    expired = record()
    assert revoke(expired, 1_000) is False and expired["revoked_at"] is None


@pytest.mark.parametrize(("fields", "now", "scope", "status", "code"), [
    ({}, 0, "buddy:read", None, None),
    ({}, 0, "marketplace:purchase", 403, "insufficient_scope"),
    ({}, 1_000, "buddy:read", 401, "widget_session_expired"),
    ({"revoked_at": 3}, 5, None, 401, "widget_session_revoked"),
    ({"revoked_at": 3}, 5_000, "buddy:read", 401, "widget_session_revoked"),
])
def test_check_access(fields: dict, now: int, scope: str, status: int | None, code: str | None) -> None:
    if status is None:
        assert check_access(record(**fields), now, scope) == "issued"
        return
    with pytest.raises(HatchedError) as exc:
        check_access(record(**fields), now, scope)
    assert (exc.value.status, exc.value.code) == (status, code)


def test_lifetimes_are_bounded_per_kind() -> None:
    assert ttl_ms("interactive", None) == 900_000
    assert ttl_ms("interactive", 3600) == 3_600_000
    assert ttl_ms("embed", None) == 30 * 86_400_000
    assert ttl_ms("preview", 99_999) == 600_000
    for kind, bad in (("interactive", 59), ("interactive", 3601), ("embed", 59), ("embed", 365 * 86_400 + 1)):
        with pytest.raises(HatchedError):
            ttl_ms(kind, bad)  # type: ignore[arg-type]


def test_tokens_parse_and_embed_signatures_cover_the_claims() -> None:
    session = "wgt_sess_0123456789abcdef_" + "a" * 48
    assert parse_token(session) == ("session", "0123456789abcdef", token_hash(session))
    for bad in ("wgt_sess_0123", "hatch_live_x", "", "wgt_sess_0123456789ABCDEF_" + "a" * 48):
        with pytest.raises(HatchedError) as exc:
            parse_token(bad)
        assert exc.value.code == "invalid_widget_token"

    key = embed_key("engine-secret")
    assert key != embed_key("other-secret")
    claims = {"sid": "0123456789abcdef", "cid": "cus_1", "bid": "bdy_1", "scp": ["buddy:read"], "exp": 1}
    token = sign_embed(key, claims)
    assert parse_token(token)[0] == "embed"
    assert verify_embed(key, token) == claims
    with pytest.raises(HatchedError):
        verify_embed(embed_key("other-secret"), token)
    forged = sign_embed(key, {**claims, "bid": "bdy_2"})
    payload = forged.removeprefix("wgt_embed_").split(".")[0]
    with pytest.raises(HatchedError):
        verify_embed(key, f"wgt_embed_{payload}.{token.split('.')[1]}")
    with pytest.raises(HatchedError):
        verify_embed(key, sign_embed(key, {**claims, "sid": "../x"}))


def test_theme_from_settings() -> None:
    default = theme_of({})
    assert default["mode"] == "light" and default["primary_color"] == LIGHT["primary_color"]
    assert default["size"] == "standard" and default["custom_css"] is None and default["border_radius"] == 12
    themed = theme_of({"widget_theme_config": {"surface": "dark", "geometry": "pill", "typography": "mono"},
                       "widget_size": "large", "widget_custom_css": "a { color: red }", "locale": "de"})
    assert themed["mode"] == "dark" and themed["background_color"] == DARK["background_color"]
    assert themed["border_radius"] == 24 and themed["font_family"].startswith("ui-monospace")
    assert themed["size"] == "large" and themed["custom_css"] == "a { color: red }" and themed["locale"] == "de"
    assert themed["theme_config"]["surface"] == "dark" and themed["theme_config"]["reward_voice"] is None
    odd = theme_of({"widget_theme_config": "nope", "widget_size": "huge"})
    assert odd["size"] == "standard" and odd["mode"] == "light"
