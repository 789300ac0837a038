"""Pure minigame logic (seed 003): tables, formulas and token codecs, no I/O, no clock.

Everything that decides whether a minigame submission or a signed token is
acceptable lives here as functions of their inputs (bytes, keys, ``now_ms``),
so actors and the HTTP layer share one definition and the rules are unit-tested
in isolation. Randomness (jti, seed, keys) is drawn by the callers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from typing import Any, Final

# -- constants ------------------------------------------------------------------
SESSION_TTL_S: Final = 300
RESULT_TTL_S: Final = 600
MODIFIER_MIN: Final = 0.7
MODIFIER_MAX: Final = 1.4
PASSIVE_SCORE: Final = 0.5
PASSIVE_MODIFIER: Final = 1.0
RATE_LIMIT: Final = 20
RATE_WINDOW_MS: Final = 60_000
HISTORY_MAX_LIMIT: Final = 50
HISTORY_DEFAULT_LIMIT: Final = 20
EVENT_HASH_PREFIX: Final = "questline-minigame-v1"

SESSION_TYP: Final = "mgs"
RESULT_TYP: Final = "mgr"


@dataclass(frozen=True, slots=True)
class MinigameType:
    """How one activity_type is played: the minigame, its duration bounds, its skill."""

    minigame_type: str
    min_duration_ms: int
    max_duration_ms: int
    skill: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "minigame_type": self.minigame_type,
            "min_duration_ms": self.min_duration_ms,
            "max_duration_ms": self.max_duration_ms,
            "skill": self.skill,
        }


def _t(minigame: str, lo: int, hi: int, skill: str) -> MinigameType:
    return MinigameType(minigame, lo, hi, skill)


# activity_type -> minigame; a tenant's catalog may override any row (docs/minigame.md).
DEFAULT_TYPE_MAP: Final[dict[str, MinigameType]] = {
    "expedition_accept": _t("rhythm", 8_000, 45_000, "leadership"),
    "craft_smithing": _t("timing", 6_000, 40_000, "smithing"),
    "craft_carpentry": _t("precision", 6_000, 40_000, "carpentry"),
    "craft_leatherworking": _t("precision", 6_000, 40_000, "leatherworking"),
    "craft_clothworking": _t("pattern", 6_000, 40_000, "clothworking"),
    "craft_tinkering": _t("sequence", 8_000, 50_000, "tinkering"),
    "craft_artifice": _t("sequence", 10_000, 60_000, "artifice"),
    "craft_masonry": _t("balance", 6_000, 40_000, "masonry"),
    "craft_alchemy": _t("mixing", 8_000, 50_000, "alchemy"),
    "craft_cooking": _t("timing", 5_000, 35_000, "cooking"),
    "craft_preservation": _t("sorting", 5_000, 35_000, "preservation"),
    "gather_mining": _t("rhythm", 5_000, 30_000, "mining"),
    "gather_quarrying": _t("rhythm", 5_000, 30_000, "quarrying"),
    "gather_logging": _t("timing", 5_000, 30_000, "logging"),
    "gather_salvage": _t("search", 5_000, 30_000, "salvage"),
    "gather_herbalism": _t("search", 5_000, 30_000, "herbalism"),
    "gather_farming": _t("pattern", 5_000, 30_000, "farming"),
    "gather_hunting": _t("reaction", 4_000, 30_000, "hunting"),
    "trade": _t("haggle", 4_000, 30_000, "trading"),
    "appraise": _t("inspect", 4_000, 30_000, "appraisal"),
    "negotiate": _t("haggle", 6_000, 45_000, "negotiation"),
    "heal": _t("steady_hand", 6_000, 40_000, "healing"),
    "scout": _t("search", 6_000, 40_000, "scouting"),
    "survey": _t("precision", 6_000, 40_000, "surveying"),
    "cartograph": _t("pathfinding", 8_000, 60_000, "cartography"),
    "animal_handling": _t("calm", 5_000, 35_000, "animal_handling"),
    "beastbond": _t("calm", 6_000, 40_000, "beastbond"),
    "tame": _t("timing", 5_000, 35_000, "taming"),
    "mount_care": _t("sequence", 5_000, 35_000, "mount_care"),
    "mount_train": _t("rhythm", 6_000, 40_000, "mount_training"),
}

# expedition category -> minigame, overriding the expedition_accept row (seed step 4).
DEFAULT_EXPEDITION_CATEGORIES: Final[dict[str, MinigameType]] = {
    "combat": _t("reaction", 5_000, 30_000, "leadership"),
    "exploration": _t("pathfinding", 10_000, 60_000, "leadership"),
    "escort": _t("rhythm", 8_000, 45_000, "leadership"),
    "salvage": _t("search", 8_000, 45_000, "leadership"),
}

# The gated routes and the activity types each one settles.
ROUTE_ACTIVITY_TYPES: Final[dict[str, frozenset[str]]] = {
    "board": frozenset({"expedition_accept"}),
    "crafting": frozenset(t for t in DEFAULT_TYPE_MAP if t.startswith("craft_")),
    "gathering": frozenset(t for t in DEFAULT_TYPE_MAP if t.startswith("gather_")),
    "trade": frozenset({"trade", "appraise", "negotiate"}),
    "heal": frozenset({"heal"}),
    "scouting": frozenset({"scout", "survey", "cartograph"}),
    "animals": frozenset({"animal_handling", "beastbond", "tame", "mount_care", "mount_train"}),
}

# Skill bands: (band, lowest XP of the band). A character's band in a skill is the
# highest band whose threshold its XP reaches.
SKILL_BANDS: Final[tuple[tuple[int, int], ...]] = (
    (1, 0),
    (2, 100),
    (3, 300),
    (4, 700),
    (5, 1_500),
    (6, 3_000),
    (7, 6_000),
)


# -- formulas -------------------------------------------------------------------
def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def modifier_for(score: float) -> float:
    """``clamp(0.7 + score * 0.7, 0.7, 1.4)`` rounded to 3 decimals (1.274, not 1.2739999...)."""
    if not math.isfinite(score):
        raise ValueError("score must be finite")
    return round(clamp(MODIFIER_MIN + score * 0.7, MODIFIER_MIN, MODIFIER_MAX), 3)


def skill_band(xp: int) -> int:
    """The band of a skill with ``xp`` experience (band 1 below the first threshold)."""
    band = SKILL_BANDS[0][0]
    for b, threshold in SKILL_BANDS:
        if xp >= threshold:
            band = b
    return band


def scale_amount(base: int, modifier: float, *, at_least_one: bool = False) -> int:
    """``base * modifier`` rounded half up, in integer milli-units so no float drift.

    Items keep ``at_least_one``: a poor score shrinks a reward, it never erases it.
    """
    if base <= 0:
        return 0
    milli = math.floor(modifier * 1000 + 0.5)
    scaled = (base * milli + 500) // 1000
    return max(1, scaled) if at_least_one else scaled


def scale_rewards(rewards: dict[str, dict[str, int]], modifier: float) -> dict[str, dict[str, int]]:
    """Rewards ``{xp, currency, items}`` scaled by the modifier (items never below 1)."""
    out: dict[str, dict[str, int]] = {}
    for section in ("xp", "currency", "items"):
        amounts = rewards.get(section) or {}
        out[section] = {
            name: scale_amount(int(base), modifier, at_least_one=section == "items")
            for name, base in sorted(amounts.items())
            if int(base) > 0
        }
    return out


def duration_error(duration_ms: int, min_ms: int, max_ms: int) -> str | None:
    """The seed's duration codes; both bounds are inclusive."""
    if duration_ms < min_ms:
        return "duration_too_short"
    if duration_ms > max_ms:
        return "duration_too_long"
    return None


def score_in_range(score: float) -> bool:
    return math.isfinite(score) and 0.0 <= score <= 1.0


# -- the event hash -------------------------------------------------------------
def score_milli(score: float) -> int:
    """The score in thousandths, rounded half up (``Math.floor(score * 1000 + 0.5)`` in JS)."""
    return math.floor(score * 1000 + 0.5)


def event_hash_message(seed: int, duration_ms: int, score: float) -> bytes:
    """The documented derivation input: ``questline-minigame-v1|<seed>|<duration_ms>|<score_milli>``.

    Everything in it is known to the client (the seed from the session response),
    so any client can compute it; it binds the submission to the session's seed.
    """
    return f"{EVENT_HASH_PREFIX}|{seed}|{duration_ms}|{score_milli(score)}".encode()


def event_hash(seed: int, duration_ms: int, score: float) -> str:
    """Standard base64 (padded) of SHA-256 over :func:`event_hash_message`."""
    digest = hashlib.sha256(event_hash_message(seed, duration_ms, score)).digest()
    return base64.b64encode(digest).decode()


def _b64decode_any(text: str) -> bytes | None:
    """Standard or URL-safe base64, padding optional; ``None`` if it is neither."""
    cleaned = text.strip()
    if not cleaned or len(cleaned) > 128:
        return None
    cleaned = cleaned.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def event_hash_matches(provided: str, seed: int, duration_ms: int, score: float) -> bool:
    """Standard or URL-safe base64, padded or not, of the right digest."""
    digest = hashlib.sha256(event_hash_message(seed, duration_ms, score)).digest()
    raw = _b64decode_any(provided)
    return raw is not None and hmac.compare_digest(raw, digest)


# -- keys -----------------------------------------------------------------------
def derive_key(signing_key: bytes, purpose: str) -> bytes:
    """One key per token kind, so a session token can never pass as a result token or JWT."""
    return hmac.new(signing_key, f"questline/{purpose}".encode(), hashlib.sha256).digest()


def access_key(signing_key: bytes) -> bytes:
    return derive_key(signing_key, "access-jwt")


def session_key(signing_key: bytes) -> bytes:
    return derive_key(signing_key, "minigame-session")


def result_key(signing_key: bytes) -> bytes:
    return derive_key(signing_key, "minigame-result")


# -- signed tokens: base64url(json payload) "." base64url(hmac-sha256) --------------
def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(payload: dict[str, Any], key: bytes) -> str:
    """``<payload>.<signature>``: canonical JSON (sorted keys) so signing is deterministic."""
    body = _b64url(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
    sig = _b64url(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{body}.{sig}"


def verify_token(token: str, key: bytes, typ: str) -> dict[str, Any] | None:
    """The payload if ``token`` carries a valid signature by ``key`` and is of kind ``typ``.

    Only the signature and the token's shape are checked; expiry and ownership are
    the caller's (they need the clock and the request).
    """
    if not isinstance(token, str) or len(token) > 4096 or token.count(".") != 1:
        return None
    body, sig = token.split(".")
    try:
        provided = _b64url_decode(sig)
    except (binascii.Error, ValueError):
        return None
    expected = hmac.new(key, body.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(provided, expected):
        return None
    try:
        payload = json.loads(_b64url_decode(body))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("typ") != typ:
        return None
    return payload


def session_payload(
    *,
    jti: str,
    tenant_id: str,
    character_id: str,
    activity_type: str,
    activity_ref_id: str,
    minigame: MinigameType,
    skill_band: int,
    seed: int,
    now_ms: int,
) -> dict[str, Any]:
    """The issued session (seed steps 6-11): stored in the session actor and signed as the token."""
    issued_at = now_ms // 1000
    return {
        "typ": SESSION_TYP,
        "jti": jti,
        "tid": tenant_id,
        "sub": character_id,
        "activity_type": activity_type,
        "activity_ref_id": activity_ref_id,
        "type": minigame.minigame_type,
        "skill": minigame.skill,
        "skill_band": skill_band,
        "seed": seed,
        "min_duration_ms": minigame.min_duration_ms,
        "max_duration_ms": minigame.max_duration_ms,
        "iat": issued_at,
        "exp": issued_at + SESSION_TTL_S,
    }


def result_record(
    *,
    jti: str,
    character_id: str,
    activity_type: str,
    activity_ref_id: str,
    minigame_type: str,
    score: float,
    modifier: float,
    now_ms: int,
    passive: bool = False,
) -> dict[str, Any]:
    """A minigame_result row (also the claims of its result token)."""
    submitted_at = now_ms // 1000
    return {
        "jti": jti,
        "sub": character_id,
        "activity_type": activity_type,
        "activity_ref_id": activity_ref_id,
        "minigame_type": minigame_type,
        "score": score,
        "modifier_applied": modifier,
        "submitted_at": submitted_at,
        "exp": submitted_at + RESULT_TTL_S,
        "passive": passive,
    }


def result_claims(record: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    """What a result token carries: enough to check binding without a lookup."""
    return {
        "typ": RESULT_TYP,
        "jti": record["jti"],
        "tid": tenant_id,
        "sub": record["sub"],
        "activity_type": record["activity_type"],
        "activity_ref_id": record["activity_ref_id"],
        "modifier": record["modifier_applied"],
        "score": record["score"],
        "iat": record["submitted_at"],
        "exp": record["exp"],
    }


def expired(exp_s: int, now_ms: int) -> bool:
    """``exp < now`` in the seed's words: valid up to and including the instant ``exp``."""
    return now_ms > exp_s * 1000


def result_binding_ok(
    claims: dict[str, Any],
    *,
    character_id: str,
    tenant_id: str,
    allowed_types: frozenset[str],
    activity_ref_id: str | None,
    now_ms: int,
) -> bool:
    """The Minigame-Result checks the header alone can decide (seed steps 3-5)."""
    if claims.get("sub") != character_id or claims.get("tid") != tenant_id:
        return False
    exp = claims.get("exp")
    if not isinstance(exp, int) or expired(exp, now_ms):
        return False
    if claims.get("activity_type") not in allowed_types:
        return False
    if activity_ref_id is not None and claims.get("activity_ref_id") != activity_ref_id:
        return False
    return isinstance(claims.get("jti"), str)


# -- tenant secrets ---------------------------------------------------------------
SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1


def hash_secret(secret: str, salt: bytes) -> dict[str, Any]:
    """scrypt hash record of a tenant secret (the plain secret is never stored; salt from the caller)."""
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return {"alg": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": salt, "hash": digest}


def verify_secret(secret: str, record: dict[str, Any]) -> bool:
    """Constant-time check of ``secret`` against a :func:`hash_secret` record."""
    if record.get("alg") != "scrypt":
        return False
    digest = hashlib.scrypt(
        secret.encode(),
        salt=record["salt"],
        n=int(record["n"]),
        r=int(record["r"]),
        p=int(record["p"]),
        dklen=len(record["hash"]),
    )
    return hmac.compare_digest(digest, record["hash"])
