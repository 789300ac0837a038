"""Who is calling: dashboard JWTs, secret keys and publishable keys; and how often.

A key embeds its own id (``hatch_live_<id>_<secret>``), so verifying it is one
call to that id's index actor, which holds only the key's sha256; the secret is
compared with ``hmac.compare_digest``. Dashboard JWTs (HS256) need no call once
the signing secret is cached in the process.

Every authenticated request then costs one more call: a hit on the principal's
sliding-window :class:`~questline.actors.ratelimit.RateLimitActor` (one per API
key, one per dashboard customer), sized by the customer's plan. The plan comes
from a short-lived per-process cache, so it costs a call only on a miss. The
verdict is kept on ``request.state`` and :func:`~questline.http.hatched.errors.endpoint`
turns it into ``X-RateLimit-*`` headers on whatever the handler answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import secrets
import time
from typing import Any, Literal

import jwt
import msgspec
from starlette.requests import Request

from questline.actors.hatched_auth import SYSTEM_ADDRESS, keyindex_address
from questline.actors.hatched_customer import customer_address
from questline.actors.ratelimit import ratelimit_address
from questline.engine import Runtime
from questline.http.errors import retry_after_seconds
from questline.http.hatched import settings
from questline.rules.hatched_errors import HatchedError

JWT_TTL_SECONDS = 7 * 24 * 3600
JWT_ALGORITHM = "HS256"
_KEY = re.compile(r"hatch_(live|test|pk)_([0-9a-f]{16})_([0-9a-f]{48})")

# What a publishable (browser-safe) key may be granted: reads only.
PUBLISHABLE_PERMISSIONS = ("buddies:read", "badges:read", "marketplace:read", "config:read", "operations:read")
DEFAULT_PUBLISHABLE_PERMISSIONS = ["buddies:read", "marketplace:read"]

Via = Literal["dashboard", "secret", "publishable"]


class Principal(msgspec.Struct, frozen=True):
    customer_id: str
    via: Via
    key_id: str | None = None
    environment: str | None = None
    permissions: tuple[str, ...] = ()


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


# -- passwords (scrypt, off the event loop) ----------------------------------------------
def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)


async def hash_password(password: str) -> dict[str, str]:
    salt = secrets.token_bytes(16)
    digest = await asyncio.to_thread(_scrypt, password, salt)
    return {"alg": "scrypt", "salt": salt.hex(), "hash": digest.hex()}


async def verify_password(password: str, stored: dict[str, str]) -> bool:
    digest = await asyncio.to_thread(_scrypt, password, bytes.fromhex(stored["salt"]))
    return hmac.compare_digest(digest.hex(), stored["hash"])


# -- API keys ----------------------------------------------------------------------------
def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def mint_key(kind: Literal["live", "test", "pk"]) -> tuple[str, str]:
    """A new ``(key_id, full_key)``; 192 random bits make sha256 storage sufficient."""
    key_id = secrets.token_hex(8)
    return key_id, f"hatch_{kind}_{key_id}_{secrets.token_hex(24)}"


def key_prefix(key: str) -> str:
    """What listings show: enough to recognise a key, never enough to use it."""
    return key[: key.index("_", 11) + 5] + "..."


# -- dashboard JWTs ------------------------------------------------------------------------
async def jwt_secret(request: Request) -> str:
    """``HATCHED_JWT_SECRET`` if set, else a durable secret shared through the engine."""
    state = request.app.state
    cached = getattr(state, "hatched_jwt_secret", None)
    if cached:
        return cached
    secret = os.environ.get("HATCHED_JWT_SECRET") or await runtime_of(request).call(SYSTEM_ADDRESS, "jwt_secret")
    state.hatched_jwt_secret = secret
    return secret


async def issue_jwt(request: Request, customer_id: str, email: str) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": customer_id, "email": email, "typ": "dashboard", "iat": now, "exp": now + JWT_TTL_SECONDS}
    token = jwt.encode(claims, await jwt_secret(request), algorithm=JWT_ALGORITHM)
    return {"access_token": token, "token_type": "Bearer", "expires_in": JWT_TTL_SECONDS}


# -- authentication --------------------------------------------------------------------------
def _unauthorized(code: str, message: str) -> HatchedError:
    return HatchedError(401, code, message)


async def authenticate(request: Request) -> Principal:
    """The caller, counted once per request against its rate limit (429 past it)."""
    cached: Principal | None = getattr(request.state, "hatched_principal", None)
    if cached is not None:
        return cached
    principal = await _identify(request)
    await _rate_limit(request, principal)
    request.state.hatched_principal = principal
    return principal


async def _identify(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("unauthorized", "Missing or malformed Authorization header; expected Bearer <key>.")
    token = token.strip()
    if token.startswith("hatch_"):
        return await _authenticate_key(request, token)
    try:
        claims = jwt.decode(token, await jwt_secret(request), algorithms=[JWT_ALGORITHM], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("token_expired", "The dashboard token has expired; log in again.") from exc
    except jwt.PyJWTError as exc:
        raise _unauthorized("invalid_token", "The bearer token is not a valid key or dashboard token.") from exc
    if claims.get("typ") != "dashboard":
        raise _unauthorized("invalid_token", "The bearer token is not a dashboard token.")
    return Principal(customer_id=str(claims["sub"]), via="dashboard")


async def _authenticate_key(request: Request, token: str) -> Principal:
    match = _KEY.fullmatch(token)
    if match is None:
        raise _unauthorized("invalid_api_key", "The API key is malformed.")
    kind, key_id = match[1], match[2]
    record = await runtime_of(request).call(keyindex_address(key_id), "lookup")
    if record is None or not hmac.compare_digest(record["hash"], key_hash(token)):
        raise _unauthorized("invalid_api_key", "The API key is invalid or has been revoked.")
    if kind == "pk":
        return Principal(record["customer_id"], "publishable", key_id, None, tuple(record["permissions"]))
    return Principal(record["customer_id"], "secret", key_id, kind, ())


# -- plans and rate limits ---------------------------------------------------------------------
async def plan_of(request: Request, customer_id: str) -> str:
    """The customer's plan, from a per-process cache kept ``settings.plan_cache_ms()``."""
    state = request.app.state
    cache: dict[str, tuple[str, float]] | None = getattr(state, "hatched_plans", None)
    if cache is None:
        cache = state.hatched_plans = {}
    now = time.monotonic()
    entry = cache.get(customer_id)
    if entry is not None and entry[1] > now:
        return entry[0]
    try:
        profile = await runtime_of(request).call(customer_address(customer_id), "profile")
        plan = str(profile.get("plan") or "free")
    except HatchedError:
        plan = "free"  # a token for a customer that no longer exists: the handler will say so
    if len(cache) > 100_000:
        cache.clear()
    cache[customer_id] = (plan, now + settings.plan_cache_ms() / 1000)
    return plan


def _bucket(principal: Principal) -> str:
    """One window per API key (secret or publishable), one per dashboard customer."""
    if principal.key_id is not None:
        return f"hatched:key:{principal.key_id}"
    return f"hatched:dashboard:{principal.customer_id}"


async def _rate_limit(request: Request, principal: Principal) -> None:
    plan = await plan_of(request, principal.customer_id)
    request.state.hatched_plan = plan
    limit = settings.rate_limit(plan)
    if limit == 0:
        return
    window_ms = settings.rate_window_ms()
    verdict = await runtime_of(request).call(ratelimit_address(_bucket(principal)), "hit", limit, window_ms)
    request.state.hatched_rate = verdict
    if not verdict["allowed"]:
        retry = retry_after_seconds(verdict["retryAfterMs"] / 1000)
        raise HatchedError(429, "rate_limited",
                           f"Rate limit exceeded ({limit} requests per {window_ms / 1000:g}s for this key). "
                           f"Please retry after {retry} seconds.",
                           {"retry_after_seconds": retry, "limit": limit, "window_ms": window_ms})


async def require_write(request: Request) -> Principal:
    """Mutations need a secret key or a dashboard token; publishable keys only read."""
    principal = await authenticate(request)
    if principal.via == "publishable":
        raise HatchedError(403, "insufficient_permissions",
                           "Publishable keys are read-only; use a secret key from your server.")
    return principal


async def require_read(request: Request, permission: str) -> Principal:
    principal = await authenticate(request)
    if principal.via == "publishable" and permission not in principal.permissions:
        raise HatchedError(403, "insufficient_permissions", f"This publishable key lacks {permission}.",
                           {"required": permission})
    return principal

