"""The QuestMaster surface (seed 002): HTTP only, no business logic.

Routes
------
``/agents/quest-master-agent/{sessionId}`` (the agent; ``Authorization: Bearer
{sessionId}:{timestamp}:{signature}``):

- ``GET``: active quests with XP and streaks; ``?history=true``: completed quests and statistics
- ``POST`` JSON ``{tool, params}``: createTask / updateTask / deleteTask
- ``POST`` ``text/plain``: chat with the Dungeon Master, answered as an SSE stream
  (``data: <text>`` frames, ``data: {"type":"metadata","tasks":[...]}`` when quests
  changed, ``data: [DONE]``)
- ``GET .../events``: live updates of the quest log (SSE; the token may come as ``?token=``
  because ``EventSource`` cannot send headers)

``/api/tasks`` (GET, POST, PATCH, DELETE), ``/api/tasks/events`` and ``/api/chat``
(the frontend proxy): the same operations for the *frontend's* session, which the
server identifies itself instead of trusting a session id from the client. The
proxy accepts either a session cookie (``questmaster_session``: the session id
signed with a key derived from the server secret, valid 30 days, HttpOnly) or an
agent Bearer token. The trusted frontend obtains both from ``POST
/api/questmaster/tokens`` (authorised by the server secret itself) or from the
``questmaster-token`` CLI command. In demo mode a browser without a cookie gets
a fresh anonymous session (and its cookie) on its first proxy request.

Rate limits per session (sliding windows in ``ratelimit`` actors): chat 30/min,
every other operation 60/min. Responses to an authenticated request carry
``X-RateLimit-Limit`` and ``X-RateLimit-Remaining``; a 429 adds ``Retry-After``.
(A request that fails authentication is answered before any session is known,
so it is not counted against, and carries no headers of, anyone's limit.)

Settings (environment): ``QUESTLINE_QUESTMASTER_SECRET`` (required unless
``QUESTLINE_DEMO`` is on, then a fixed demo secret is used and a warning
logged), ``QUESTLINE_QUESTMASTER_CORS_ORIGINS`` (comma-separated origins, default
``*``: any origin, without credentials), ``QUESTLINE_QUESTMASTER_COOKIE_SECURE``.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from questline.actors.hub import HubActor
from questline.actors.questmaster import QuestMasterSession, session_address, session_hub
from questline.actors.ratelimit import RateLimitActor, ratelimit_address
from questline.demo import DEMO_ENV, demo_mode
from questline.engine import Actor, Runtime, ShardUnavailable
from questline.engine.shard import wall_clock_ms
from questline.http import questmaster_wire as wire
from questline.http import sse
from questline.http.errors import retry_after_seconds
from questline.http.limits import request_body
from questline.rules import questmaster as rules
from questline.rules.dungeon_master import MAX_MESSAGE_LENGTH

log = logging.getLogger("questline.http.questmaster")

AGENT_PATH = "/agents/quest-master-agent/{sessionId}"
OPENAPI_PATH = "/api/questmaster/openapi.json"
SECRET_ENV = "QUESTLINE_QUESTMASTER_SECRET"
CORS_ENV = "QUESTLINE_QUESTMASTER_CORS_ORIGINS"
COOKIE_SECURE_ENV = "QUESTLINE_QUESTMASTER_COOKIE_SECURE"
DEMO_SECRET = "questline-demo-secret-do-not-use-in-production"
COOKIE_NAME = "questmaster_session"
COOKIE_TTL_MS = 30 * 24 * 60 * 60 * 1000
MAX_BODY_BYTES = 256 * 1024

UNAUTHORIZED = "Unauthorized. Invalid authentication token."
PROXY_UNAUTHORIZED = "Unauthorized. Please sign in."
RATE_LIMITED = "Rate limit exceeded. Too many requests. Please try again later."
INTERNAL = "Internal server error"

QUESTMASTER_ACTORS: list[type[Actor]] = [QuestMasterSession, RateLimitActor, HubActor]

_json = msgspec.json.Encoder()


class QuestMasterConfigError(RuntimeError):
    """The surface cannot run with these settings (no secret outside the demo)."""


def _truthy(raw: str | None) -> bool:
    return (raw or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class QuestMasterSettings:
    """Everything the surface needs to know, with the seed's limits as defaults."""

    secret: bytes
    demo: bool = False
    cors_origins: tuple[str, ...] = ("*",)
    chat_limit: int = 30
    task_limit: int = 60
    window_ms: int = 60_000
    token_ttl_ms: int = rules.TOKEN_TTL_MS
    cookie_ttl_ms: int = COOKIE_TTL_MS
    cookie_secure: bool = False
    clock: Callable[[], int] = field(default=wall_clock_ms, compare=False)

    @property
    def cookie_key(self) -> bytes:
        return rules.derived_key(self.secret, "proxy-session")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> QuestMasterSettings:
        """Read the settings from the environment; refuse to run without a secret outside the demo."""
        env = os.environ if environ is None else environ
        demo = demo_mode(env)
        secret = env.get(SECRET_ENV, "").strip()
        if not secret:
            if not demo:
                raise QuestMasterConfigError(
                    f"{SECRET_ENV} must be set (the HMAC key shared with the frontend); "
                    f"set {DEMO_ENV}=1 to run the demo with a built-in secret"
                )
            log.warning(
                "QuestMaster runs with the built-in demo secret: anyone can mint session tokens. "
                "Set %s outside the demo.",
                SECRET_ENV,
            )
            secret = DEMO_SECRET
        origins = tuple(o.strip() for o in env.get(CORS_ENV, "*").split(",") if o.strip()) or ("*",)
        return cls(
            secret=secret.encode(),
            demo=demo,
            cors_origins=origins,
            cookie_secure=_truthy(env.get(COOKIE_SECURE_ENV)),
        )


# --------------------------------------------------------------------------- minting


def mint_token(settings: QuestMasterSettings, session_id: str, now_ms: int | None = None) -> str:
    """A 5-minute agent Bearer token for ``session_id``."""
    return rules.sign_token(
        settings.secret, session_id, settings.clock() if now_ms is None else now_ms
    )


def mint_session_cookie(
    settings: QuestMasterSettings, session_id: str, now_ms: int | None = None
) -> str:
    """The proxy's session cookie value for ``session_id`` (valid ``cookie_ttl_ms``)."""
    return rules.sign_token(
        settings.cookie_key, session_id, settings.clock() if now_ms is None else now_ms
    )


def add_questmaster_token(sub: argparse._SubParsersAction) -> None:
    """CLI: ``python -m questline questmaster-token SESSION_ID [--cookie]`` (for cli.SUBCOMMANDS)."""
    parser = sub.add_parser(
        "questmaster-token",
        help="mint a QuestMaster session token (reads QUESTLINE_QUESTMASTER_SECRET)",
        description="Print a 5-minute Bearer token for the QuestMaster agent routes, "
        "or with --cookie the value of the proxy's 30-day session cookie.",
    )
    parser.add_argument("session_id", metavar="SESSION_ID")
    parser.add_argument(
        "--cookie", action="store_true", help="print the proxy session cookie instead"
    )
    parser.set_defaults(handler=run_questmaster_token)


def run_questmaster_token(args: argparse.Namespace, extra: list[str]) -> int:
    import sys

    try:
        settings = QuestMasterSettings.from_env()
        value = (mint_session_cookie if args.cookie else mint_token)(settings, args.session_id)
    except (QuestMasterConfigError, ValueError) as exc:
        print(f"questline: {exc}", file=sys.stderr)
        return 2
    print(value)
    return 0


# --------------------------------------------------------------------------- responses


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))


class _Limit(msgspec.Struct):
    allowed: bool
    headers: dict[str, str]


class Surface:
    """The handlers, closed over the settings (one instance per app)."""

    def __init__(self, settings: QuestMasterSettings) -> None:
        self.settings = settings

    # -- plumbing ------------------------------------------------------------------
    @staticmethod
    def runtime(request: Request) -> Runtime:
        return request.app.state.runtime

    async def limit(self, request: Request, session_id: str, op: str) -> _Limit:
        """One hit on the session's ``chat`` or ``tasks`` window."""
        limit = self.settings.chat_limit if op == "chat" else self.settings.task_limit
        result = await self.runtime(request).call(
            ratelimit_address(f"questmaster.{op}:{session_id}"),
            "hit",
            limit,
            self.settings.window_ms,
        )
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(result["remaining"]),
        }
        if not result["allowed"]:
            headers["Retry-After"] = str(retry_after_seconds(result["retryAfterMs"] / 1000))
        return _Limit(bool(result["allowed"]), headers)

    def bearer_session(self, request: Request, *, allow_query: bool = False) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            token = request.query_params.get("token", "") if allow_query else ""
        token = token.strip()
        if not token:
            return None
        return rules.verify_token(
            self.settings.secret, token, self.settings.clock(), ttl_ms=self.settings.token_ttl_ms
        )

    @staticmethod
    def zone_name(request: Request) -> tuple[str | None, Response | None]:
        raw = request.headers.get("x-timezone")
        if raw is None or not raw.strip():
            return None, None
        try:
            return rules.resolve_zone(raw).key, None
        except rules.InvalidTimeZone:
            return None, _error(400, f"Invalid timezone: {raw.strip()[:64]}")

    # -- operations shared by the agent and the proxy --------------------------------
    async def read(self, request: Request, session_id: str, zone: str | None) -> Response:
        history = request.query_params.get("history", "").lower() == "true"
        method = "get_history" if history else "get_tasks"
        body = await self.runtime(request).call(session_address(session_id), method, zone)
        return JSONResponse(body)

    async def tool(
        self, request: Request, session_id: str, zone: str | None, tool: Any, params: Any
    ) -> Response:
        if not isinstance(tool, str):
            return _error(400, "Invalid request: expected a JSON object with tool and params")
        reply = await self.runtime(request).call(
            session_address(session_id), "run_tool", tool, params, zone
        )
        if reply["ok"]:
            return JSONResponse(reply["body"])
        return _error(404 if reply["error"] == "not_found" else 400, reply["message"])

    async def chat(
        self, request: Request, session_id: str, zone: str | None, body: bytes
    ) -> Response:
        try:
            message = body.decode("utf-8")
        except UnicodeDecodeError:
            return _error(400, "Message must be UTF-8 text")
        if not message.strip():
            return _error(400, "Message must not be empty")
        if len(message) > MAX_MESSAGE_LENGTH:
            return _error(400, f"Message too long (at most {MAX_MESSAGE_LENGTH} characters)")
        reply = await self.runtime(request).call(session_address(session_id), "chat", message, zone)
        return StreamingResponse(
            _chat_frames(reply),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def events(self, request: Request, session_id: str, headers: dict[str, str]) -> Response:
        return await sse.hub_stream(
            request, self.runtime(request), session_hub(session_id), headers=headers
        )

    # -- agent routes ----------------------------------------------------------------
    async def agent(self, request: Request) -> Response:
        if request.method not in ("GET", "POST"):
            return _error(405, "Method not allowed", {"Allow": "GET, POST, OPTIONS"})
        session_id = request.path_params["sessionId"]
        if self.bearer_session(request) != session_id:
            return _error(401, UNAUTHORIZED)
        if request.method == "GET":
            return await self.limited(request, session_id, "tasks", self.read)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request_body(request)
        if content_type.endswith("json"):

            async def run(request: Request, session_id: str, zone: str | None) -> Response:
                try:
                    doc = json.loads(body)
                except (ValueError, UnicodeDecodeError, RecursionError):
                    return _error(400, "Invalid JSON body")
                if not isinstance(doc, dict):
                    return _error(
                        400, "Invalid request: expected a JSON object with tool and params"
                    )
                return await self.tool(
                    request, session_id, zone, doc.get("tool"), doc.get("params")
                )

            return await self.limited(request, session_id, "tasks", run)
        if content_type in ("", "text/plain"):

            async def talk(request: Request, session_id: str, zone: str | None) -> Response:
                return await self.chat(request, session_id, zone, body)

            return await self.limited(request, session_id, "chat", talk)
        return _error(
            400, "Unsupported Content-Type: send application/json (tools) or text/plain (chat)"
        )

    async def agent_events(self, request: Request) -> Response:
        if request.method != "GET":
            return _error(405, "Method not allowed", {"Allow": "GET, OPTIONS"})
        session_id = request.path_params["sessionId"]
        if self.bearer_session(request, allow_query=True) != session_id:
            return _error(401, UNAUTHORIZED)
        limit = await self.limit(request, session_id, "tasks")
        if not limit.allowed:
            return _error(429, RATE_LIMITED, limit.headers)
        return await self.events(request, session_id, limit.headers)

    async def limited(
        self,
        request: Request,
        session_id: str,
        op: str,
        handler: Callable[[Request, str, str | None], Awaitable[Response]],
    ) -> Response:
        """Count the request, check the zone, run ``handler``; rate-limit headers on every answer."""
        limit = await self.limit(request, session_id, op)
        if not limit.allowed:
            return _error(429, RATE_LIMITED, limit.headers)
        zone, problem = self.zone_name(request)
        response = problem or await handler(request, session_id, zone)
        response.headers.update(limit.headers)
        return response

    # -- proxy routes ----------------------------------------------------------------
    def proxy_session(self, request: Request) -> tuple[str | None, str | None]:
        """The frontend's session: (session id, cookie to set). A Bearer token wins over
        the cookie; in demo mode a visitor without either gets a new anonymous session."""
        if request.headers.get("authorization"):
            return self.bearer_session(request), None
        cookie = request.cookies.get(COOKIE_NAME)
        if cookie:
            session_id = rules.verify_token(
                self.settings.cookie_key,
                cookie,
                self.settings.clock(),
                ttl_ms=self.settings.cookie_ttl_ms,
            )
            if session_id is not None or not self.settings.demo:
                return session_id, None
        if self.settings.demo:
            session_id = f"anon-{uuid.uuid4().hex}"
            return session_id, mint_session_cookie(self.settings, session_id)
        return None, None

    def set_cookie(self, response: Response, value: str) -> None:
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=self.settings.cookie_ttl_ms // 1000,
            path="/api",
            httponly=True,
            samesite="lax",
            secure=self.settings.cookie_secure,
        )

    async def proxied(
        self,
        request: Request,
        op: str,
        handler: Callable[[Request, str, str | None], Awaitable[Response]],
    ) -> Response:
        session_id, new_cookie = self.proxy_session(request)
        if session_id is None:
            return _error(401, PROXY_UNAUTHORIZED)
        response = await self.limited(request, session_id, op, handler)
        if new_cookie is not None:
            self.set_cookie(response, new_cookie)
        return response

    async def proxy_tasks(self, request: Request) -> Response:
        method = request.method
        if method == "GET":
            return await self.proxied(request, "tasks", self.read)
        expected = {"POST": "createTask", "PATCH": "updateTask", "DELETE": "deleteTask"}.get(method)
        if expected is None:
            return _error(405, "Method not allowed", {"Allow": "GET, POST, PATCH, DELETE, OPTIONS"})
        body = await request_body(request)

        async def run(request: Request, session_id: str, zone: str | None) -> Response:
            try:
                doc = json.loads(body) if body.strip() else None
            except (ValueError, UnicodeDecodeError, RecursionError):
                return _error(400, "Invalid JSON body")
            if not isinstance(doc, dict):
                return _error(400, "Invalid request: expected a JSON object")
            if "tool" in doc:  # the frontend's {tool, params} form
                if doc["tool"] != expected or not isinstance(doc.get("params"), dict):
                    return _error(400, f"Invalid request: expected tool {expected} with params")
                params = doc["params"]
            else:  # the seed's bare params form
                params = doc
            return await self.tool(request, session_id, zone, expected, params)

        return await self.proxied(request, "tasks", run)

    async def proxy_chat(self, request: Request) -> Response:
        if request.method != "POST":
            return _error(405, "Method not allowed", {"Allow": "POST, OPTIONS"})
        body = await request_body(request)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type.endswith("json"):  # {"message": "..."} is accepted too
            try:
                doc = json.loads(body)
            except (ValueError, UnicodeDecodeError, RecursionError):
                doc = None
            if not isinstance(doc, dict) or not isinstance(doc.get("message"), str):
                return _error(400, 'Invalid request: expected text/plain or {"message": ...}')
            body = doc["message"].encode()
        elif content_type not in ("", "text/plain"):
            return _error(400, 'Unsupported Content-Type: send text/plain or {"message": ...}')

        async def talk(request: Request, session_id: str, zone: str | None) -> Response:
            return await self.chat(request, session_id, zone, body)

        return await self.proxied(request, "chat", talk)

    async def proxy_events(self, request: Request) -> Response:
        if request.method != "GET":
            return _error(405, "Method not allowed", {"Allow": "GET, OPTIONS"})
        session_id, new_cookie = self.proxy_session(request)
        if session_id is None:
            return _error(401, PROXY_UNAUTHORIZED)
        limit = await self.limit(request, session_id, "tasks")
        if not limit.allowed:
            return _error(429, RATE_LIMITED, limit.headers)
        response = await self.events(request, session_id, limit.headers)
        if new_cookie is not None:
            self.set_cookie(response, new_cookie)
        return response

    # -- minting ---------------------------------------------------------------------
    async def mint(self, request: Request) -> Response:
        """``POST /api/questmaster/tokens`` for the trusted frontend: authorised by the
        server secret itself (``Authorization: Bearer <secret>``), body ``{"sessionId"}``."""
        if request.method != "POST":
            return _error(405, "Method not allowed", {"Allow": "POST"})
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode("utf-8", "replace"), self.settings.secret
        ):
            return _error(401, UNAUTHORIZED)
        try:
            doc = json.loads(await request_body(request))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return _error(400, "Invalid JSON body")
        session_id = doc.get("sessionId") if isinstance(doc, dict) else None
        if not isinstance(session_id, str) or not rules.valid_session_id(session_id):
            return _error(400, "sessionId must be 1-128 characters of [A-Za-z0-9._~@:+=-]")
        now = self.settings.clock()
        return JSONResponse(
            {
                "sessionId": session_id,
                "token": mint_token(self.settings, session_id, now),
                "expiresAt": now + self.settings.token_ttl_ms,
                "sessionCookie": {
                    "name": COOKIE_NAME,
                    "value": mint_session_cookie(self.settings, session_id, now),
                    "maxAge": self.settings.cookie_ttl_ms // 1000,
                },
            }
        )


async def _chat_frames(reply: Mapping[str, Any]) -> AsyncIterator[bytes]:
    """The seed's framing: text chunks, the metadata frame when quests changed, ``[DONE]``."""
    for chunk in reply["chunks"]:
        # A newline inside a chunk would end the SSE field; continuation lines are
        # sent as further data: lines of the same event, which clients join with "\n".
        yield ("".join(f"data: {line}\n" for line in str(chunk).split("\n")) + "\n").encode()
    if reply["changed"]:
        meta = _json.encode({"type": "metadata", "tasks": reply["tasks"]}).decode()
        yield f"data: {meta}\n\n".encode()
    yield b"data: [DONE]\n\n"


def _guarded(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Unexpected failures become the seed's ``{"error": "Internal server error"}``; an
    unavailable shard keeps the front door's 503 (nothing was changed, retry is safe)."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ShardUnavailable:
            raise
        except HTTPException as exc:  # e.g. the route's body limit (413) hit while reading
            return _error(exc.status_code, str(exc.detail), exc.headers)
        except Exception:
            log.exception("QuestMaster %s %s failed", request.method, request.url.path)
            return _error(500, INTERNAL)

    endpoint.__name__ = getattr(handler, "__name__", "endpoint")
    endpoint.__doc__ = handler.__doc__
    return endpoint


def _cors(settings: QuestMasterSettings) -> list[Middleware]:
    any_origin = "*" in settings.cors_origins
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=["*"] if any_origin else list(settings.cors_origins),
            allow_credentials=not any_origin,  # cookies only for origins named explicitly
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "x-timezone",
                "Last-Event-ID",
                "X-Request-Id",
            ],
            expose_headers=[
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "Retry-After",
                "X-Request-Id",
            ],
            max_age=600,
        )
    ]


_SSE = {"text/event-stream": {"schema": {"type": "string"}}}
_LIMIT_HEADERS = {
    "X-RateLimit-Limit": {"schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"schema": {"type": "integer"}},
}
# (method, path, summary, request body (media type, schema), {status: response}, security)
_OPERATIONS: list[tuple[str, str, str, tuple[str, Any] | None, dict[int, Any], str | None]] = [
    (
        "get",
        AGENT_PATH,
        "Active quests (or ?history=true: completed quests and statistics)",
        None,
        {200: (wire.TasksResponse, wire.HistoryResponse), 400: None, 401: None, 429: None},
        "token",
    ),
    (
        "post",
        AGENT_PATH,
        "Direct task operation (application/json) or Dungeon Master chat "
        '(text/plain, answered as SSE: data: <text>..., data: {"type":"metadata",...}, data: [DONE])',
        ("application/json", wire.ToolRequest),
        {
            200: (wire.TaskResponse, wire.CompleteResponse, wire.AbandonResponse),
            400: None,
            401: None,
            404: None,
            429: None,
        },
        "token",
    ),
    (
        "get",
        AGENT_PATH + "/events",
        "Live quest-log updates (SSE, event: tasks; ?token= allowed)",
        None,
        {200: "sse", 401: None, 429: None},
        "token",
    ),
    (
        "get",
        "/api/tasks",
        "Proxy: the frontend session's active quests (?history=true)",
        None,
        {200: (wire.TasksResponse, wire.HistoryResponse), 400: None, 401: None, 429: None},
        "cookie",
    ),
    (
        "post",
        "/api/tasks",
        "Proxy: create a quest",
        ("application/json", wire.CreateTaskParams),
        {200: (wire.TaskResponse,), 400: None, 401: None, 429: None},
        "cookie",
    ),
    (
        "patch",
        "/api/tasks",
        "Proxy: update a quest",
        ("application/json", wire.UpdateTaskParams),
        {200: (wire.TaskResponse,), 400: None, 401: None, 404: None, 429: None},
        "cookie",
    ),
    (
        "delete",
        "/api/tasks",
        "Proxy: complete (addXP: true) or abandon a quest",
        ("application/json", wire.DeleteTaskParams),
        {
            200: (wire.CompleteResponse, wire.AbandonResponse),
            400: None,
            401: None,
            404: None,
            429: None,
        },
        "cookie",
    ),
    (
        "post",
        "/api/chat",
        "Proxy: Dungeon Master chat (text/plain), answered as SSE",
        ("text/plain", {"type": "string", "maxLength": MAX_MESSAGE_LENGTH}),
        {200: "sse", 400: None, 401: None, 429: None},
        "cookie",
    ),
    (
        "get",
        "/api/tasks/events",
        "Proxy: live quest-log updates (SSE)",
        None,
        {200: "sse", 401: None, 429: None},
        "cookie",
    ),
    (
        "post",
        "/api/questmaster/tokens",
        "Mint a session token and cookie (Bearer <server secret>)",
        ("application/json", wire.TokenRequest),
        {200: (wire.TokenResponse,), 400: None, 401: None},
        "secret",
    ),
]


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 from the wire Structs and the operation table above."""
    structs: set[type] = {wire.ErrorResponse, wire.ChatMetadata, wire.LiveUpdate}
    for _, _, _, body, responses, _ in _OPERATIONS:
        if body is not None and isinstance(body[1], type):
            structs.add(body[1])
        for shape in responses.values():
            if isinstance(shape, tuple):
                structs.update(shape)
    ordered = sorted(structs, key=lambda t: t.__name__)
    schemas, components = msgspec.json.schema_components(
        ordered, ref_template="#/components/schemas/{name}"
    )
    refs = dict(zip(ordered, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, body, responses, security in _OPERATIONS:
        answers: dict[str, Any] = {}
        for status, shape in responses.items():
            if shape == "sse":
                answers[str(status)] = {"description": "event stream", "content": _SSE}
            elif shape is None:
                answers[str(status)] = {
                    "description": "error",
                    "content": {"application/json": {"schema": refs[wire.ErrorResponse]}},
                }
            else:
                schema = refs[shape[0]] if len(shape) == 1 else {"oneOf": [refs[t] for t in shape]}
                answers[str(status)] = {
                    "description": "OK",
                    "content": {"application/json": {"schema": schema}},
                }
            if security in ("token", "cookie") and status != 401:
                answers[str(status)]["headers"] = _LIMIT_HEADERS
        operation: dict[str, Any] = {"summary": summary, "responses": answers}
        parameters: list[dict[str, Any]] = [
            {
                "name": "x-timezone",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "IANA zone, e.g. America/New_York",
            }
        ]
        if "{sessionId}" in path:
            parameters.insert(
                0,
                {"name": "sessionId", "in": "path", "required": True, "schema": {"type": "string"}},
            )
        if security != "secret":
            operation["parameters"] = parameters
        if body is not None:
            media, schema = body
            content = {
                media: {"schema": refs.get(schema, schema) if isinstance(schema, type) else schema}
            }
            if path == AGENT_PATH:
                content["text/plain"] = {"schema": {"type": "string"}}
            operation["requestBody"] = {"required": True, "content": content}
        operation["security"] = (
            [{"sessionToken": []}]
            if security == "token"
            else (
                [{"sessionCookie": []}, {"sessionToken": []}]
                if security == "cookie"
                else [{"serverSecret": []}]
            )
        )
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "questline QuestMaster API (seed 002)", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "sessionToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "{sessionId}:{timestampMs}:{hex HMAC-SHA256}",
                },
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": COOKIE_NAME},
                "serverSecret": {"type": "http", "scheme": "bearer"},
            },
        },
    }


async def _openapi(request: Request) -> Response:
    if request.method != "GET":
        return _error(405, "Method not allowed", {"Allow": "GET"})
    return JSONResponse(openapi_document())


def questmaster_routes(settings: QuestMasterSettings | None = None) -> list[BaseRoute]:
    """The surface's routes; ``settings`` default to :meth:`QuestMasterSettings.from_env`."""
    settings = settings or QuestMasterSettings.from_env()
    surface = Surface(settings)
    cors = _cors(settings)
    all_methods = ["GET", "POST", "PATCH", "DELETE", "PUT", "OPTIONS"]

    def route(path: str, handler: Callable[[Request], Awaitable[Response]], name: str) -> Route:
        # Every method reaches the handler (which answers 405 in the surface's format)
        # and CORS preflights are answered by the middleware before it.
        return Route(
            path,
            _guarded(handler),
            methods=all_methods,
            name=name,
            middleware=cors,
            max_body_size=MAX_BODY_BYTES,
        )

    return [
        route(AGENT_PATH, surface.agent, "questmaster-agent"),
        route(AGENT_PATH + "/events", surface.agent_events, "questmaster-agent-events"),
        route("/api/tasks", surface.proxy_tasks, "questmaster-proxy-tasks"),
        route("/api/tasks/events", surface.proxy_events, "questmaster-proxy-events"),
        route("/api/chat", surface.proxy_chat, "questmaster-proxy-chat"),
        route("/api/questmaster/tokens", surface.mint, "questmaster-tokens"),
        route(OPENAPI_PATH, _openapi, "questmaster-openapi"),
    ]
