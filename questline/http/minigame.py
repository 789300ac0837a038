"""The Minigame surface (seed 003) over HTTP: validate, authenticate, route, format.

No game rules live here: bodies are msgspec Structs, tokens are checked with the
pure functions of ``questline.rules.minigame``, and every decision that touches
state is a message to the tenant, character or session actor. Errors are the
seed's ``{"error": "<code>"}`` bodies (a ``message`` is added only to the
``invalid_request`` errors the seed does not define).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import jwt
import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from questline.actors.minigame import (
    character_address,
    session_address,
    tenant_address,
)
from questline.actors.ratelimit import ratelimit_address
from questline.engine import Runtime
from questline.http.errors import retry_after_seconds
from questline.http.limits import request_body
from questline.rules import minigame as rules

ACCESS_TTL_S: Final = 3600
ISSUER: Final = "questline"
RESULT_HEADER: Final = "Minigame-Result"
CHARACTER_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")

STATUS: Final[dict[str, int]] = {
    "invalid_request": 400,
    "invalid_signature": 400,
    "duration_too_short": 400,
    "duration_too_long": 400,
    "invalid_score": 400,
    "invalid_event_hash": 400,
    "unauthorized": 401,
    "character_mismatch": 403,
    "minigame_result_required": 403,
    "activity_not_found": 404,
    "session_not_found": 404,
    "session_expired": 408,
    "activity_unavailable": 409,
    "session_already_used": 409,
    "rate_limited": 429,
}


# -- bodies -------------------------------------------------------------------------
class TokenRequest(msgspec.Struct):
    tenant_id: str
    tenant_secret: str
    character_id: str


class TokenResponse(msgspec.Struct):
    access_token: str
    expires_at: int


class SessionRequest(msgspec.Struct):
    activity_type: str
    activity_ref_id: str
    character_id: str | None = None  # optional context: must be the JWT's character


class SessionResponse(msgspec.Struct):
    token: str
    seed: int
    type: str
    min_duration_ms: int
    max_duration_ms: int
    skill_band: int


class PassiveSessionResponse(msgspec.Struct):
    passive: bool
    result_token: str
    modifier: float
    score: float


class ResultRequest(msgspec.Struct):
    token: str
    score: float
    duration_ms: int
    event_hash: str


class ResultResponse(msgspec.Struct):
    result_token: str
    modifier: float
    score: float


class PassiveModeRequest(msgspec.Struct):
    enabled: bool


class PassiveModeResponse(msgspec.Struct):
    passive_mode: bool


class ActivityRequest(msgspec.Struct):
    """Body of the gated routes other than the board (whose id is in the path)."""

    activity_ref_id: str
    activity_type: str | None = None
    character_id: str | None = None


class BoardAcceptRequest(msgspec.Struct):
    character_id: str | None = None


class HistoryEntry(msgspec.Struct):
    jti: str
    minigame_type: str
    activity_type: str
    score: float
    modifier_applied: float
    submitted_at: int


class HistoryResponse(msgspec.Struct):
    results: list[HistoryEntry]
    total: int


class Rewards(msgspec.Struct):
    xp: dict[str, int]
    currency: dict[str, int]
    items: dict[str, int]


class SkillLevel(msgspec.Struct):
    xp: int
    band: int


class SettledActivity(msgspec.Struct):
    id: str
    kind: str
    name: str
    status: str


class Settlement(msgspec.Struct):
    jti: str
    activity_type: str
    activity_ref_id: str
    activity: SettledActivity
    minigame_type: str
    score: float
    modifier_applied: float
    rewards: Rewards
    skills: dict[str, SkillLevel]
    settled_at: int


class Profile(msgspec.Struct):
    character_id: str
    passive_mode: bool
    skills: dict[str, SkillLevel]
    currency: dict[str, int]
    items: dict[str, int]


class ActivityInfo(msgspec.Struct):
    id: str
    kind: str
    activity_type: str
    name: str
    description: str
    minigame_type: str | None
    skill: str | None
    status: str
    rewards: dict[str, dict[str, int]]
    expires_at: int | None
    departs_at: int | None


class ActivityList(msgspec.Struct):
    activities: list[ActivityInfo]


class ErrorResponse(msgspec.Struct, omit_defaults=True):
    error: str
    message: str | None = None


# -- plumbing -------------------------------------------------------------------------
S = TypeVar("S", bound=msgspec.Struct)


class Refused(Exception):
    """Ends a request with one of the surface's error bodies."""

    def __init__(self, code: str, message: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.headers = headers


def error(code: str, message: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": code}
    if message:
        body["message"] = message
    return JSONResponse(body, status_code=STATUS[code], headers=headers)


def ok(body: msgspec.Struct | dict[str, Any]) -> Response:
    return Response(msgspec.json.encode(body), media_type="application/json")


def handler(fn: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Turn ``Refused`` into the error body, so handlers read top to bottom."""

    async def wrapped(request: Request) -> Response:
        try:
            return await fn(request)
        except Refused as refused:
            return error(refused.code, refused.message, refused.headers)

    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


async def body_of(request: Request, type_: type[S], *, empty_ok: bool = False) -> S:
    raw = await request_body(request)
    if empty_ok and not raw.strip():
        raw = b"{}"
    try:
        return msgspec.json.decode(raw, type=type_)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise Refused("invalid_request", str(exc)) from exc
    except RecursionError:
        raise Refused("invalid_request", "JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise Refused("invalid_request", "Body is not valid UTF-8") from None


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def now_ms(request: Request) -> int:
    """The engine clock, so tests that inject time see one time everywhere."""
    return int(runtime_of(request).config.clock())


@dataclass(frozen=True, slots=True)
class TenantKeys:
    access: bytes
    session: bytes
    result: bytes


async def tenant_credentials(request: Request, tenant_id: str) -> dict[str, Any] | None:
    """The tenant's secret hash and signing key, straight from its actor (never cached:
    a re-installed catalog may have rotated the secret)."""
    if not CHARACTER_ID.match(tenant_id):
        return None
    return await runtime_of(request).call(tenant_address(tenant_id), "credentials")


async def tenant_keys(request: Request, tenant_id: str) -> TenantKeys | None:
    """The tenant's derived token keys, cached per app: a signing key never changes once made."""
    cache: dict[str, TenantKeys] | None = getattr(request.app.state, "minigame_keys", None)
    if cache is None:
        cache = {}
        request.app.state.minigame_keys = cache
    keys = cache.get(tenant_id)
    if keys is None:
        creds = await tenant_credentials(request, tenant_id)
        if creds is None:
            return None
        signing = creds["signing_key"]
        keys = TenantKeys(
            access=rules.access_key(signing),
            session=rules.session_key(signing),
            result=rules.result_key(signing),
        )
        cache[tenant_id] = keys
    return keys


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    character_id: str
    keys: TenantKeys


async def authenticate(request: Request) -> Principal:
    """The access JWT: HS256 only, signed by the tenant's access key, unexpired by the engine clock."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Refused("unauthorized")
    try:
        if jwt.get_unverified_header(token).get("alg") != "HS256":
            raise Refused("unauthorized")
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise Refused("unauthorized") from exc
    tenant_id = unverified.get("tid")
    if not isinstance(tenant_id, str):
        raise Refused("unauthorized")
    keys = await tenant_keys(request, tenant_id)
    if keys is None:
        raise Refused("unauthorized")
    try:
        claims = jwt.decode(
            token,
            keys.access,
            algorithms=["HS256"],
            issuer=ISSUER,
            options={
                "require": ["exp", "iat", "sub", "tid", "iss"],
                "verify_exp": False,  # checked below against the engine clock
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise Refused("unauthorized") from exc
    sub, exp = claims.get("sub"), claims.get("exp")
    if (
        claims.get("typ") != "access"
        or not isinstance(sub, str)
        or not CHARACTER_ID.match(sub)
        or not isinstance(exp, int)
        or rules.expired(exp, now_ms(request))
    ):
        raise Refused("unauthorized")
    return Principal(tenant_id, sub, keys)


def check_context(principal: Principal, character_id: str | None) -> None:
    """A body naming a character must name the JWT's character."""
    if character_id is not None and character_id != principal.character_id:
        raise Refused("character_mismatch")


def refuse_from(reply: dict[str, Any]) -> Refused:
    code = reply.get("error", "invalid_request")
    return Refused(code if code in STATUS else "invalid_request")


# -- routes -------------------------------------------------------------------------
@handler
async def issue_access_token(request: Request) -> Response:
    """POST /api/auth/token: tenant credentials in, a character's access JWT out."""
    body = await body_of(request, TokenRequest)
    if not CHARACTER_ID.match(body.character_id):
        raise Refused("invalid_request", "character_id must match " + CHARACTER_ID.pattern)
    creds = await tenant_credentials(request, body.tenant_id)
    # The same answer for an unknown tenant and a wrong secret: nothing to probe.
    if creds is None or not await asyncio.to_thread(rules.verify_secret, body.tenant_secret, creds["secret"]):
        raise Refused("unauthorized")
    keys = await tenant_keys(request, body.tenant_id)
    assert keys is not None  # the tenant exists: its credentials were just read
    issued_at = now_ms(request) // 1000
    expires_at = issued_at + ACCESS_TTL_S
    token = jwt.encode(
        {
            "iss": ISSUER,
            "typ": "access",
            "sub": body.character_id,
            "tid": body.tenant_id,
            "iat": issued_at,
            "exp": expires_at,
        },
        keys.access,
        algorithm="HS256",
    )
    return ok(TokenResponse(access_token=token, expires_at=expires_at))


@handler
async def create_session(request: Request) -> Response:
    """POST /api/minigame/session: rate limit, then the character actor runs the seed's steps.

    Every authenticated, well-formed request counts toward the 20/minute window
    (one answered 404 too); a refused one does not.
    """
    principal = await authenticate(request)
    body = await body_of(request, SessionRequest)
    check_context(principal, body.character_id)
    runtime = runtime_of(request)
    limit = await runtime.call(
        ratelimit_address(f"minigame.session:{principal.tenant_id}/{principal.character_id}"),
        "hit",
        rules.RATE_LIMIT,
        rules.RATE_WINDOW_MS,
    )
    if not limit["allowed"]:
        retry = str(retry_after_seconds(limit["retryAfterMs"] / 1000))
        raise Refused("rate_limited", headers={"Retry-After": retry})
    reply = await runtime.call(
        character_address(principal.tenant_id, principal.character_id),
        "open_session",
        body.activity_type,
        body.activity_ref_id,
    )
    if not reply["ok"]:
        raise refuse_from(reply)
    if reply["passive"]:
        record = reply["result"]
        token = rules.sign_token(rules.result_claims(record, principal.tenant_id), principal.keys.result)
        return ok(
            PassiveSessionResponse(
                passive=True, result_token=token, modifier=record["modifier_applied"], score=record["score"]
            )
        )
    session = reply["session"]
    return ok(
        SessionResponse(
            token=rules.sign_token(session, principal.keys.session),
            seed=session["seed"],
            type=session["type"],
            min_duration_ms=session["min_duration_ms"],
            max_duration_ms=session["max_duration_ms"],
            skill_band=session["skill_band"],
        )
    )


@handler
async def submit_result(request: Request) -> Response:
    """POST /api/minigame/result: signature here, everything else in the session's actor."""
    principal = await authenticate(request)
    body = await body_of(request, ResultRequest)
    session = rules.verify_token(body.token, principal.keys.session, rules.SESSION_TYP)
    if session is None or not isinstance(session.get("jti"), str):
        raise Refused("invalid_signature")
    reply = await runtime_of(request).call(
        session_address(principal.tenant_id, session["jti"]),
        "submit",
        principal.character_id,
        body.score,
        body.duration_ms,
        body.event_hash,
    )
    if not reply["ok"]:
        raise refuse_from(reply)
    record = reply["result"]
    token = rules.sign_token(rules.result_claims(record, principal.tenant_id), principal.keys.result)
    return ok(ResultResponse(result_token=token, modifier=record["modifier_applied"], score=record["score"]))


def _query_int(request: Request, name: str, default: int, low: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise Refused("invalid_request", f"{name} must be an integer") from exc
    if value < low:
        raise Refused("invalid_request", f"{name} must be >= {low}")
    return value


@handler
async def history(request: Request) -> Response:
    """GET /api/minigame/history: newest first; ``limit`` above 50 is served as 50."""
    principal = await authenticate(request)
    limit = min(_query_int(request, "limit", rules.HISTORY_DEFAULT_LIMIT, 1), rules.HISTORY_MAX_LIMIT)
    offset = _query_int(request, "offset", 0, 0)
    page = await runtime_of(request).call(
        character_address(principal.tenant_id, principal.character_id), "history", limit, offset
    )
    return ok(msgspec.convert(page, HistoryResponse))


@handler
async def passive_mode(request: Request) -> Response:
    """PATCH /api/characters/me/passive-mode: takes effect on the next session issuance."""
    principal = await authenticate(request)
    body = await body_of(request, PassiveModeRequest)
    reply = await runtime_of(request).call(
        character_address(principal.tenant_id, principal.character_id), "set_passive", body.enabled
    )
    return ok(PassiveModeResponse(passive_mode=reply["passive_mode"]))


@handler
async def me(request: Request) -> Response:
    """GET /api/characters/me: skills with bands, currencies, items, passive flag."""
    principal = await authenticate(request)
    profile = await runtime_of(request).call(
        character_address(principal.tenant_id, principal.character_id), "profile"
    )
    return ok(msgspec.convert(profile, Profile))


@handler
async def activities(request: Request) -> Response:
    """GET /api/activities: the tenant's activities and their status for this character."""
    principal = await authenticate(request)
    listed = await runtime_of(request).call(
        tenant_address(principal.tenant_id), "activities", principal.character_id
    )
    return ok(ActivityList(activities=msgspec.convert(listed, list[ActivityInfo])))


def gated(route_name: str) -> Callable[[Request], Awaitable[Response]]:
    """A gated activity route: the Minigame-Result token, then settlement in the character actor."""
    allowed = rules.ROUTE_ACTIVITY_TYPES[route_name]

    async def settle(request: Request) -> Response:
        principal = await authenticate(request)
        if route_name == "board":
            board = await body_of(request, BoardAcceptRequest, empty_ok=True)
            check_context(principal, board.character_id)
            ref_id, wanted = request.path_params["id"], allowed
        else:
            body = await body_of(request, ActivityRequest)
            check_context(principal, body.character_id)
            ref_id = body.activity_ref_id
            wanted = allowed & {body.activity_type} if body.activity_type is not None else allowed
        claims = rules.verify_token(request.headers.get(RESULT_HEADER, ""), principal.keys.result, rules.RESULT_TYP)
        if claims is None or not rules.result_binding_ok(
            claims,
            character_id=principal.character_id,
            tenant_id=principal.tenant_id,
            allowed_types=frozenset(wanted),
            activity_ref_id=ref_id,
            now_ms=now_ms(request),
        ):
            raise Refused("minigame_result_required")
        reply = await runtime_of(request).call(
            character_address(principal.tenant_id, principal.character_id),
            "settle",
            claims["jti"],
            claims["activity_type"],
            ref_id,
        )
        if not reply["ok"]:
            raise refuse_from(reply)
        return ok(msgspec.convert(reply["settlement"], Settlement))

    settle.__name__ = f"settle_{route_name}"
    return handler(settle)


@dataclass(frozen=True, slots=True)
class Operation:
    """One route: the handler and its contract (bodies, errors), for routing and OpenAPI alike."""

    method: str
    path: str
    endpoint: Callable[[Request], Awaitable[Response]]
    summary: str
    request: type | None
    responses: tuple[type, ...]
    errors: tuple[str, ...]
    auth: bool = True
    result_header: bool = False
    query: tuple[str, ...] = ()


_GATED_ERRORS = ("invalid_request", "unauthorized", "character_mismatch", "minigame_result_required",
                 "activity_not_found", "activity_unavailable")
_GATED = [
    ("/api/crafting/start", "crafting", "Start a craft"),
    ("/api/gathering/start", "gathering", "Gather at a node"),
    ("/api/trade/offer", "trade", "Trade, appraise or negotiate an offer"),
    ("/api/heal/start", "heal", "Heal"),
    ("/api/scouting/start", "scouting", "Scout, survey or chart"),
    ("/api/animals/interact", "animals", "Interact with an animal"),
]

OPERATIONS: Final[list[Operation]] = [
    Operation("POST", "/api/auth/token", issue_access_token, "Mint a character's access JWT",
              TokenRequest, (TokenResponse,), ("invalid_request", "unauthorized"), auth=False),
    Operation("POST", "/api/minigame/session", create_session, "Issue a signed minigame session",
              SessionRequest, (SessionResponse, PassiveSessionResponse),
              ("invalid_request", "unauthorized", "character_mismatch", "activity_not_found",
               "activity_unavailable", "rate_limited")),
    Operation("POST", "/api/minigame/result", submit_result, "Submit a played session",
              ResultRequest, (ResultResponse,),
              ("invalid_request", "invalid_signature", "duration_too_short", "duration_too_long", "invalid_score",
               "invalid_event_hash", "unauthorized", "character_mismatch", "session_not_found",
               "session_expired", "session_already_used")),
    Operation("GET", "/api/minigame/history", history, "The character's results, newest first",
              None, (HistoryResponse,), ("invalid_request", "unauthorized"), query=("limit", "offset")),
    Operation("PATCH", "/api/characters/me/passive-mode", passive_mode, "Toggle passive mode",
              PassiveModeRequest, (PassiveModeResponse,), ("invalid_request", "unauthorized")),
    Operation("GET", "/api/characters/me", me, "The character's skills, currencies and items",
              None, (Profile,), ("unauthorized",)),
    Operation("GET", "/api/activities", activities, "The tenant's activities and their status",
              None, (ActivityList,), ("unauthorized",)),
    Operation("POST", "/api/board/{id}/accept", gated("board"), "Accept a board order or expedition",
              BoardAcceptRequest, (Settlement,), _GATED_ERRORS, result_header=True),
    *(
        Operation("POST", path, gated(name), summary, ActivityRequest, (Settlement,), _GATED_ERRORS,
                  result_header=True)
        for path, name, summary in _GATED
    ),
]

OPENAPI_PATH: Final = "/api/minigame/openapi.json"


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 built from the Structs and the operation table the routes are made of."""
    structs = {t for op in OPERATIONS for t in (*((op.request,) if op.request else ()), *op.responses)}
    structs.add(ErrorResponse)
    ordered = sorted(structs, key=lambda t: t.__name__)
    schemas, components = msgspec.json.schema_components(ordered, ref_template="#/components/schemas/{name}")
    refs = dict(zip(ordered, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        responses: dict[str, Any] = {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": (
                    refs[op.responses[0]] if len(op.responses) == 1
                    else {"oneOf": [refs[t] for t in op.responses]}
                )}},
            }
        }
        by_status: dict[int, list[str]] = {}
        for code in op.errors:
            by_status.setdefault(STATUS[code], []).append(code)
        for status, codes in sorted(by_status.items()):
            responses[str(status)] = {
                "description": "error: " + " | ".join(codes),
                "content": {"application/json": {"schema": refs[ErrorResponse]}},
            }
        parameters: list[dict[str, Any]] = []
        if "{id}" in op.path:
            parameters.append({"name": "id", "in": "path", "required": True, "schema": {"type": "string"}})
        for name in op.query:
            parameters.append({"name": name, "in": "query", "required": False,
                               "schema": {"type": "integer", "minimum": 1 if name == "limit" else 0}})
        if op.result_header:
            parameters.append({"name": RESULT_HEADER, "in": "header", "required": True,
                               "schema": {"type": "string"},
                               "description": "result_token from POST /api/minigame/result"})
        operation: dict[str, Any] = {"summary": op.summary, "responses": responses}
        if parameters:
            operation["parameters"] = parameters
        if op.request is not None:
            operation["requestBody"] = {
                "required": op.request is not BoardAcceptRequest,
                "content": {"application/json": {"schema": refs[op.request]}},
            }
        if op.auth:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "questline Minigame API (seed 003)", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


async def openapi(request: Request) -> Response:
    return ok(openapi_document())


def minigame_routes() -> list[BaseRoute]:
    """Every route of the Minigame surface, for ``create_app(extra_routes=...)``."""
    return [
        Route(OPENAPI_PATH, openapi, methods=["GET"]),
        *(Route(op.path, op.endpoint, methods=[op.method]) for op in OPERATIONS),
    ]
