"""Widget sessions, pure: scopes, lifetimes, the session state machine and token formats.

Two kinds of credential reach the ``/widget/*`` routes (seed 004, 3.5 and 5.5):

- interactive sessions (``wgt_sess_<id>_<secret>``): short-lived, scoped, minted by
  the customer's server for one buddy; only the secret's sha256 is stored.
- embed tokens (``wgt_embed_<claims>.<signature>``): read-only, longer-lived, HMAC
  signed, so the browser can hold them in page HTML; each also has a session
  record, so it can be revoked like a session.

A session is ``issued`` until first used, then ``active``; ``expired`` once its
time is up and ``revoked`` when the customer deletes it. Expired and revoked are
final. Every check here is a function of the record and the clock, so the actor
and the front door cannot disagree about what a token may do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any, Literal

from questline.rules.hatched_errors import HatchedError

# -- scopes ----------------------------------------------------------------------------------
Scope = Literal["buddy:read", "badges:read", "marketplace:read", "operations:read",
                "marketplace:purchase", "items:equip"]
READ_SCOPES: tuple[str, ...] = ("buddy:read", "badges:read", "marketplace:read", "operations:read")
WRITE_SCOPES: tuple[str, ...] = ("marketplace:purchase", "items:equip")
SCOPES: tuple[str, ...] = READ_SCOPES + WRITE_SCOPES
# What a write scope needs to be usable: a purchase widget shows the shop, an equip
# widget polls the operation it started. Every session reads its own buddy.
IMPLIED: dict[str, tuple[str, ...]] = {
    "marketplace:purchase": ("marketplace:read",),
    "items:equip": ("operations:read",),
}
BASE_SCOPE = "buddy:read"
DEFAULT_SESSION_SCOPES: tuple[str, ...] = ("buddy:read", "badges:read", "marketplace:read")
EMBED_SCOPES: tuple[str, ...] = READ_SCOPES

Kind = Literal["interactive", "embed", "preview"]

# -- lifetimes (seconds) -----------------------------------------------------------------------
SESSION_TTL_DEFAULT = 15 * 60
SESSION_TTL_MIN = 60
SESSION_TTL_MAX = 60 * 60
EMBED_TTL_DEFAULT = 30 * 86_400
EMBED_TTL_MIN = 60
EMBED_TTL_MAX = 365 * 86_400
PREVIEW_TTL = 10 * 60
# How long a finished (expired/revoked) record is kept so the token still answers
# "expired"/"revoked" instead of "invalid" (then the record is deleted).
RETAIN_MS = 7 * 86_400_000

Status = Literal["issued", "active", "expired", "revoked"]
FINAL: frozenset[str] = frozenset({"expired", "revoked"})


def effective_scopes(requested: list[str] | tuple[str, ...]) -> list[str]:
    """The requested scopes plus what they imply plus ``buddy:read``, in canonical order."""
    wanted = {BASE_SCOPE, *requested}
    for scope in list(wanted):
        wanted.update(IMPLIED.get(scope, ()))
    unknown = wanted - set(SCOPES)
    if unknown:
        message = f"unknown scopes: {', '.join(sorted(unknown))}"
        raise HatchedError(400, "validation_error", message, {"errors": [message], "allowed": list(SCOPES)})
    return [s for s in SCOPES if s in wanted]


def status_of(record: dict[str, Any], now_ms: int) -> Status:
    """Where the session stands now: revocation wins, then the clock, then first use."""
    if record.get("revoked_at") is not None:
        return "revoked"
    if now_ms >= record["expires_at"]:
        return "expired"
    return "active" if record.get("activated_at") is not None else "issued"


def check_access(record: dict[str, Any], now_ms: int, scope: str | None) -> Status:
    """Refuse a finished session (401) or a scope the session was not granted (403)."""
    status = status_of(record, now_ms)
    if status == "revoked":
        raise HatchedError(401, "widget_session_revoked", "This widget session has been revoked.",
                           {"session_id": record["session_id"]})
    if status == "expired":
        raise HatchedError(401, "widget_session_expired",
                           "This widget session has expired; mint a new one from your server.",
                           {"session_id": record["session_id"]})
    if scope is not None and scope not in record["scopes"]:
        raise HatchedError(403, "insufficient_scope", f"This widget token lacks the {scope} scope.",
                           {"required": scope, "granted": list(record["scopes"])})
    return status


def revoke(record: dict[str, Any], now_ms: int) -> bool:
    """issued/active -> revoked (True); a finished session stays as it is (False: nothing to do)."""
    if status_of(record, now_ms) in FINAL:
        return False
    record["revoked_at"] = now_ms
    return True


def ttl_ms(kind: Kind, ttl_seconds: int | None) -> int:
    """A lifetime within the kind's bounds; interactive sessions are always short-lived."""
    if kind == "preview":
        return PREVIEW_TTL * 1000
    lo, hi, default = ((SESSION_TTL_MIN, SESSION_TTL_MAX, SESSION_TTL_DEFAULT) if kind == "interactive"
                       else (EMBED_TTL_MIN, EMBED_TTL_MAX, EMBED_TTL_DEFAULT))
    seconds = default if ttl_seconds is None else ttl_seconds
    if not lo <= seconds <= hi:
        message = f"property ttl_seconds must be between {lo} and {hi} for {kind} tokens"
        raise HatchedError(400, "validation_error", message, {"errors": [message]})
    return seconds * 1000


# -- token formats -------------------------------------------------------------------------------
_SESSION = re.compile(r"wgt_sess_([0-9a-f]{16})_([0-9a-f]{48})")
_EMBED = re.compile(r"wgt_embed_([A-Za-z0-9_-]{1,2000})\.([A-Za-z0-9_-]{43})")
SESSION_ID = re.compile(r"wgs_([0-9a-f]{16})")


def session_id(raw_id: str) -> str:
    return f"wgs_{raw_id}"


def session_token(raw_id: str, secret: str) -> str:
    return f"wgt_sess_{raw_id}_{secret}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def embed_key(secret: str) -> bytes:
    """A signing key for embed tokens only, derived from the engine's durable secret
    (domain separation: nothing else signed with that secret verifies as an embed token)."""
    return hmac.new(secret.encode(), b"hatched-widget-embed-v1", hashlib.sha256).digest()


def sign_embed(key: bytes, claims: dict[str, Any]) -> str:
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signature = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return f"wgt_embed_{payload}.{signature}"


def _invalid_token() -> HatchedError:
    return HatchedError(401, "invalid_widget_token", "The widget token is malformed, unknown or forged.")


def parse_token(token: str) -> tuple[Literal["session", "embed"], str, str]:
    """``(form, raw session id, the part to check)``: the secret's sha256 or the embed payload."""
    if m := _SESSION.fullmatch(token):
        return "session", m[1], token_hash(token)
    if m := _EMBED.fullmatch(token):
        return "embed", "", token
    raise _invalid_token()


def verify_embed(key: bytes, token: str) -> dict[str, Any]:
    """The claims of a genuine embed token (expiry and revocation are the record's business)."""
    m = _EMBED.fullmatch(token)
    if m is None:
        raise _invalid_token()
    expected = _b64(hmac.new(key, m[1].encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, m[2]):
        raise _invalid_token()
    try:
        claims = json.loads(_unb64(m[1]))
    except ValueError as exc:
        raise _invalid_token() from exc
    if not isinstance(claims, dict) or not isinstance(claims.get("sid"), str) \
            or not re.fullmatch(r"[0-9a-f]{16}", claims["sid"]):
        raise _invalid_token()
    return claims


# -- theme ---------------------------------------------------------------------------------------
LIGHT: dict[str, Any] = {"primary_color": "#6c5ce7", "background_color": "#ffffff", "text_color": "#1f2330",
                         "accent_color": "#00b894"}
DARK: dict[str, Any] = {"primary_color": "#a29bfe", "background_color": "#1e1f29", "text_color": "#f1f2f6",
                        "accent_color": "#55efc4"}
THEME_TOKENS: tuple[str, ...] = ("surface", "geometry", "motion_profile", "reward_voice", "iconography",
                                 "typography")
SIZES: tuple[str, ...] = ("compact", "standard", "large")
_DARK_SURFACES = frozenset({"dark", "midnight", "night"})
_RADII = {"sharp": 2, "square": 2, "rounded": 12, "soft": 16, "pill": 24}


def theme_of(settings: dict[str, Any]) -> dict[str, Any]:
    """The live theme from the customer's settings (``PATCH /customers/me/settings``):
    ``widget_theme_config`` tokens, ``widget_size`` and the sanitised ``widget_custom_css``.

    The tokens pick from fixed palettes and radii (a configurable theme, not an
    arbitrary design surface); the widget also exposes them as data attributes so
    the custom CSS can target them.
    """
    raw = settings.get("widget_theme_config")
    config = raw if isinstance(raw, dict) else {}
    tokens = {k: config.get(k) if isinstance(config.get(k), str) else None for k in THEME_TOKENS}
    mode = "dark" if tokens["surface"] in _DARK_SURFACES else "light"
    size = settings.get("widget_size")
    css = settings.get("widget_custom_css")
    return {
        "mode": mode,
        **(DARK if mode == "dark" else LIGHT),
        "border_radius": _RADII.get(tokens["geometry"] or "", 12),
        "font_family": "ui-monospace, monospace" if tokens["typography"] == "mono"
        else "system-ui, -apple-system, Segoe UI, sans-serif",
        "size": size if size in SIZES else "standard",
        "theme_config": tokens,
        "custom_css": css if isinstance(css, str) and css else None,
        "locale": settings.get("locale") if isinstance(settings.get("locale"), str) else None,
    }
