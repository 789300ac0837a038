"""QuestKit bearer tokens: minting, verification and revocation checks.

Tokens are HS256 JWTs signed with the app's own key (made once by the app actor,
never rotated, so each front-door process caches it per app). Claims: ``sub``
(userId), ``app`` (appId), ``iat``/``exp`` (Unix seconds, 1 h apart), ``jti``.

Verification order: the header must say HS256 (``alg: none`` and every other
algorithm are refused before any key is looked up), then the signature, then
expiry against the engine clock (``exp > now`` strictly; injectable in tests).
``authenticate`` adds the revocation check: it asks the user's actor, which
holds that user's denylist, on every request, so a revocation is in force on
every front-door process as soon as the revoke call returns. Routes that call
the user actor anyway (events, missions, ...) use ``verify_token`` and pass the
``jti`` along; the actor refuses a revoked one in the same turn, saving a hop.
"""

from __future__ import annotations

import base64
import hmac
import re
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

import jwt
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from questline.actors.questkit import AppNotFound, QuestKitClient
from questline.actors.questkit_common import app_address, user_address, valid_app_id, valid_user_id
from questline.engine import Runtime

ALGORITHM = "HS256"
TOKEN_TTL_S = 3600
REQUIRED_CLAIMS = ("sub", "app", "iat", "exp", "jti")
# Tokens whose signature this process has verified (signing keys never change, so a
# verified signature stays verified; expiry and revocation are still checked per request).
VERIFIED_CACHE_SIZE = 16_384

_json = msgspec.json.Encoder()


class QuestKitError(Exception):
    """A QuestKit error reply: ``{error, message?}`` (plus ``extra`` fields) with a status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}

    def response(self) -> Response:
        body: dict[str, Any] = {"error": self.code}
        if self.message:
            body["message"] = self.message
        body.update(self.extra)
        return Response(
            _json.encode(body), self.status, headers=self.headers, media_type="application/json"
        )


def unauthorized(message: str) -> QuestKitError:
    return QuestKitError(401, "unauthorized", message)


Endpoint = Callable[[Request], Awaitable[Response]]


def questkit_endpoint(handler: Endpoint) -> Endpoint:
    """Turn ``QuestKitError`` raised by a handler (or ``authenticate``) into its JSON reply."""

    @wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except QuestKitError as exc:
            return exc.response()
        except AppNotFound:
            return unauthorized("Unknown app.").response()

    return wrapped


@dataclass(frozen=True)
class Principal:
    """Who a valid token speaks for. ``exp`` is Unix seconds, as in the token."""

    app_id: str
    user_id: str
    jti: str
    exp: int

    @property
    def exp_ms(self) -> int:
        return self.exp * 1000


@dataclass
class QuestKitContext:
    """Per-app (per front door) state: the engine client and cached signing keys."""

    runtime: Runtime
    client: QuestKitClient
    keys: dict[str, bytes] = field(default_factory=dict)
    verified: OrderedDict[str, Principal] = field(default_factory=OrderedDict)

    def remember(self, token: str, principal: Principal) -> None:
        self.verified[token] = principal
        if len(self.verified) > VERIFIED_CACHE_SIZE:
            self.verified.popitem(last=False)

    def now_ms(self) -> int:
        """The engine clock (``EngineConfig.clock``), so tests can move HTTP and actors together."""
        return self.runtime.config.clock()

    async def signing_key(self, app_id: str) -> bytes | None:
        key = self.keys.get(app_id)
        if key is None:
            key = await self.runtime.call(app_address(app_id), "jwt_key")
            if key is not None:
                self.keys[app_id] = key
        return key


def questkit_context(request: Request) -> QuestKitContext:
    """The context of the app serving ``request`` (made on first use, kept on ``app.state``)."""
    state = request.app.state
    ctx = getattr(state, "questkit", None)
    if ctx is None or ctx.runtime is not state.runtime:
        ctx = QuestKitContext(state.runtime, QuestKitClient(state.runtime))
        state.questkit = ctx
    return ctx


def mint_token(key: bytes, app_id: str, user_id: str, now_ms: int, ttl_s: int = TOKEN_TTL_S) -> tuple[str, int]:
    """A fresh token and its expiry in Unix seconds (``exp > now`` strictly)."""
    iat = now_ms // 1000
    exp = iat + ttl_s
    claims = {"sub": user_id, "app": app_id, "iat": iat, "exp": exp, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, key, algorithm=ALGORITHM), exp


def bearer_token(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def _b64(raw: str) -> bytes:
    """A base64url segment; canonical '=' padding is tolerated, as pyjwt does."""
    stripped = raw.rstrip("=")
    padding = len(raw) - len(stripped)
    if padding > 2 or (padding and len(raw) % 4) or len(stripped) % 4 == 1 or not _B64URL.fullmatch(stripped):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Header and claims read WITHOUT verification, or None if the token is not a JWS.

    Only to refuse a wrong ``alg`` early and to pick the app's key, which
    :func:`_signed_by` then checks the token against.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, claims = msgspec.json.decode(_b64(parts[0])), msgspec.json.decode(_b64(parts[1]))
    except (ValueError, msgspec.DecodeError):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return header, claims


def _signed_by(token: str, key: bytes) -> bool:
    """Whether ``token``'s HS256 signature is ``key``'s, compared in constant time.

    Verification is done here rather than by ``jwt.decode`` (pyjwt still mints):
    the algorithm is pinned to HS256 before this runs, so what remains is one
    HMAC, and pyjwt's per-character segment checks and key preparation cost ~80 us
    per token -- most of a first request's CPU. tests/http/test_questkit_auth.py
    checks this against pyjwt on valid, tampered and foreign-key tokens.
    """
    signing_input, _, signature = token.rpartition(".")
    try:
        given = _b64(signature)
        expected = hmac.digest(key, signing_input.encode("ascii"), "sha256")
    except (ValueError, UnicodeEncodeError):
        return False
    return hmac.compare_digest(expected, given)


async def verify_token(request: Request, token: str | None = None) -> Principal:
    """Signature and expiry (no revocation check: pass ``jti`` to the user actor, or use ``authenticate``)."""
    ctx = questkit_context(request)
    token = token if token is not None else bearer_token(request)
    if not token:
        raise unauthorized("Missing bearer token.")
    known = ctx.verified.get(token)
    if known is not None:
        if known.exp_ms <= ctx.now_ms():
            raise unauthorized("Token has expired.")
        return known
    segments = _peek(token)
    if segments is None:
        raise unauthorized("Malformed token.")
    header, unverified = segments
    if header.get("alg") != ALGORITHM:
        raise unauthorized("Token must be signed with HS256.")
    app_id = unverified.get("app")
    if not valid_app_id(app_id):
        raise unauthorized("Token names no valid app.")
    key = await ctx.signing_key(app_id)
    if key is None:
        raise unauthorized("Token names an unknown app.")
    if not _signed_by(token, key):
        raise unauthorized("Invalid token signature.")
    claims = unverified  # the signature covers them
    if any(name not in claims for name in REQUIRED_CLAIMS):
        raise unauthorized("Invalid token signature.")
    sub, jti, exp = claims.get("sub"), claims.get("jti"), claims.get("exp")
    if not valid_user_id(sub) or not isinstance(jti, str) or not jti:
        raise unauthorized("Token claims are malformed.")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise unauthorized("Token expiry is malformed.")
    if exp * 1000 <= ctx.now_ms():
        raise unauthorized("Token has expired.")
    principal = Principal(app_id=app_id, user_id=sub, jti=jti, exp=exp)
    ctx.remember(token, principal)
    return principal


async def authenticate(request: Request, token: str | None = None) -> Principal:
    """A fully checked principal: signature, expiry and revocation (asked of the user actor).

    ``token`` overrides the ``Authorization`` header (e.g. a query parameter for
    clients that cannot set headers). Raises ``QuestKitError`` 401 ``unauthorized``.
    """
    principal = await verify_token(request, token)
    ctx = questkit_context(request)
    ok = await ctx.runtime.call(user_address(principal.app_id, principal.user_id), "token_ok", principal.jti)
    if not ok:
        raise unauthorized("This token has been revoked.")
    return principal
