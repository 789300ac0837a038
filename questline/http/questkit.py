"""The QuestKit surface at ``/v1`` (seeds 000/001, ``reference/questkit.md``).

This module validates, authenticates, routes each request to the actor that owns
the state and formats the reply in QuestKit's envelopes; the rules live in
``questline.rules`` and the state in ``questline.actors``. Errors are
``{"error": code, "message"?: ...}`` with the statuses of the contract's tables.

Order of checks on ``POST /v1/events``: token (401), body (400 ``invalid_event``),
``userId`` against the token (403), then one turn of the user actor: rate limit
(429, 100 per 60 s per token, a sliding window the user actor keeps per token),
revoked token (401), a replay of an ``Idempotency-Key`` it has seen in the last
24 h, or the event applied. Only successes are cached for replay: a 409 on a
claim is not, so a retry after the mission completes can still succeed.
Idempotency keys are scoped per user and per operation (events; each mission's
claim), so an event key cannot replay a claim.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from questline.actors.questkit_common import (
    app_address,
    user_address,
    valid_app_id,
    valid_idempotency_key,
    valid_user_id,
)
from questline.http.limits import buffered_body
from questline.http.questkit_auth import (
    QuestKitError,
    bearer_token,
    mint_token,
    questkit_context,
    questkit_endpoint,
    unauthorized,
    verify_token,
)
from questline.http.questkit_openapi import RevokeRequest, TokenRequest, openapi_document
from questline.rules.questkit_models import Event, WireError, decode

STATUS_OF: dict[str, int] = {
    "validation_error": 400,
    "invalid_event": 400,
    "malformed_signature": 400,
    "invalid_credentials": 401,
    "unauthorized": 401,
    "invalid_signature": 401,
    "signature_expired": 401,
    "user_mismatch": 403,
    "mission_not_found": 404,
    "balance_not_found": 404,
    "campaign_not_found": 404,
    "claim_not_ready": 409,
    "payload_too_large": 413,
    "rate_limited": 429,
}
MISSION_STATUSES = ("locked", "active", "completed", "claimed")
REPLAY_HEADER = "X-Idempotent-Replay"
SIGNATURE_HEADERS = ("stripe-signature", "x-questkit-signature", "x-webhook-signature")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")

_json = msgspec.json.Encoder()


@dataclass(frozen=True)
class QuestKitSettings:
    """Limits of the surface (the contract's values by default)."""

    token_ttl_s: int = 3600
    event_limit: int = 100
    event_window_ms: int = 60_000
    webhook_tolerance_s: int = 300
    max_body_bytes: int = 64 * 1024
    max_catalog_bytes: int = 4 * 1024 * 1024
    default_page_size: int = 50
    max_page_size: int = 100


# -- reply helpers ------------------------------------------------------------------------
def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_json.encode(body), status, headers=headers, media_type="application/json")


def raise_for_error(reply: dict[str, Any]) -> None:
    """An actor's ``{error, message}`` reply as the QuestKitError it stands for."""
    code = reply.get("error")
    if code is not None:
        raise QuestKitError(STATUS_OF.get(code, 400), code, reply.get("message"))


def from_actor(reply: dict[str, Any], status: int = 200) -> Response:
    """An actor's ``{body, replay?}`` as a response (errors raised as QuestKitError)."""
    raise_for_error(reply)
    headers = {REPLAY_HEADER: reply["replay"]} if reply.get("replay") else None
    return json_response(reply["body"], status, headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than ``limit`` bytes (413 ``payload_too_large``).

    The front door's body limit has usually buffered it already (then no read at all).
    """
    body = buffered_body(request.scope)
    if body is None:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise QuestKitError(413, "payload_too_large", f"Body exceeds {limit} bytes.")
        body = await request.body()
    if len(body) > limit:
        raise QuestKitError(413, "payload_too_large", f"Body exceeds {limit} bytes.")
    return body


def idempotency_key(request: Request, body_key: str | None, code: str) -> str | None:
    """The ``Idempotency-Key`` header, else the body's key; ``code`` error if malformed."""
    key = request.headers.get("idempotency-key")
    if key is None:
        key = body_key
    if key is None:
        return None
    if not valid_idempotency_key(key):
        raise QuestKitError(400, code, "Idempotency-Key must be 1-255 printable ASCII characters.")
    return key


def query_flags(request: Request, name: str, allowed: set[str]) -> set[str]:
    """Comma-separated values of ``?name=``; an unknown one is a 400."""
    values = {
        part.strip()
        for raw in request.query_params.getlist(name)
        for part in raw.split(",")
        if part.strip()
    }
    unknown = values - allowed
    if unknown:
        raise QuestKitError(
            400,
            "validation_error",
            f"Unknown {name} value {sorted(unknown)[0]!r}; expected {', '.join(sorted(allowed))}.",
        )
    return values


class QuestKitAPI:
    """The ``/v1`` handlers; ``settings`` fixes the limits, the runtime comes from ``app.state``."""

    def __init__(self, settings: QuestKitSettings | None = None) -> None:
        self.settings = settings or QuestKitSettings()
        self._openapi: bytes | None = None

    # -- auth -----------------------------------------------------------------------------------
    async def issue_token(self, request: Request) -> Response:
        ctx = questkit_context(request)
        raw = await read_body(request, self.settings.max_body_bytes)
        try:
            req = decode(raw, TokenRequest)
        except WireError as exc:
            raise QuestKitError(400, "validation_error", str(exc)) from None
        if not valid_user_id(req.user_id):
            raise QuestKitError(400, "validation_error", "userId must be 1-256 characters - at `$.userId`")
        if not valid_app_id(req.app_id):
            raise QuestKitError(401, "invalid_credentials", "Unknown appId or wrong appSecret.")
        key = await ctx.runtime.call(app_address(req.app_id), "check_secret", req.app_secret)
        if key is None:
            raise QuestKitError(401, "invalid_credentials", "Unknown appId or wrong appSecret.")
        ctx.keys[req.app_id] = key
        token, exp = mint_token(key, req.app_id, req.user_id, ctx.now_ms(), self.settings.token_ttl_s)
        return json_response({"token": token, "expiresAt": exp * 1000})

    async def revoke_token(self, request: Request) -> Response:
        """Revoke a token: the bearer token itself, or any ``jti`` of a user with the app secret."""
        ctx = questkit_context(request)
        raw = await read_body(request, self.settings.max_body_bytes)
        if raw.strip():
            try:
                req = decode(raw, RevokeRequest)
            except WireError as exc:
                raise QuestKitError(400, "validation_error", str(exc)) from None
            if not valid_app_id(req.app_id) or not await ctx.runtime.call(
                app_address(req.app_id), "check_secret", req.app_secret
            ):
                raise QuestKitError(401, "invalid_credentials", "Unknown appId or wrong appSecret.")
            if not valid_user_id(req.user_id):
                raise QuestKitError(400, "validation_error", "userId must be 1-256 characters - at `$.userId`")
            await ctx.runtime.call(user_address(req.app_id, req.user_id), "revoke", req.jti, None)
            return json_response({"revoked": True, "jti": req.jti})
        principal = await verify_token(request)
        await ctx.runtime.call(
            user_address(principal.app_id, principal.user_id), "revoke", principal.jti, principal.exp_ms
        )
        return json_response({"revoked": True, "jti": principal.jti})

    # -- events -----------------------------------------------------------------------------------
    async def post_event(self, request: Request) -> Response:
        ctx = questkit_context(request)
        principal = await verify_token(request)
        raw = await read_body(request, self.settings.max_body_bytes)
        try:
            event = decode(raw, Event)
        except WireError as exc:
            raise QuestKitError(400, "invalid_event", str(exc)) from None
        key = idempotency_key(request, event.idempotency_key, "invalid_event")
        if event.user_id != principal.user_id:
            raise QuestKitError(403, "user_mismatch", "body.userId does not match the token's sub.")
        reply = await ctx.client.call_user(
            principal.app_id,
            principal.user_id,
            "ingest",
            principal.jti,
            event,
            key,
            (self.settings.event_limit, self.settings.event_window_ms),
        )
        if reply.get("error") == "rate_limited":
            retry_ms = int(reply["retryAfterMs"])
            raise QuestKitError(
                429,
                "rate_limited",
                headers={"Retry-After": str(max(1, math.ceil(retry_ms / 1000)))},
                extra={"retryAfterMs": retry_ms},
            )
        return from_actor(reply)

    # -- missions -----------------------------------------------------------------------------------
    async def list_missions(self, request: Request) -> Response:
        ctx = questkit_context(request)
        principal = await verify_token(request)
        params = request.query_params
        status = params.get("status") or None
        if status is not None and status not in MISSION_STATUSES:
            raise QuestKitError(
                400, "validation_error", f"status must be one of {', '.join(MISSION_STATUSES)}."
            )
        limit = self.settings.default_page_size
        if params.get("limit"):
            raw_limit = params["limit"]
            if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= self.settings.max_page_size:
                raise QuestKitError(
                    400,
                    "validation_error",
                    f"limit must be an integer from 1 to {self.settings.max_page_size}.",
                )
            limit = int(raw_limit)
        reply = await ctx.client.call_user(
            principal.app_id,
            principal.user_id,
            "list_missions",
            principal.jti,
            params.get("campaignId") or None,
            status,
            limit,
            params.get("cursor") or None,
        )
        return from_actor(reply)

    async def get_mission(self, request: Request) -> Response:
        ctx = questkit_context(request)
        principal = await verify_token(request)
        reply = await ctx.client.call_user(
            principal.app_id, principal.user_id, "get_mission", principal.jti,
            request.path_params["mission_id"],
        )
        return from_actor(reply)

    async def claim_mission(self, request: Request) -> Response:
        """No body needed; an empty or JSON body is accepted and ignored."""
        ctx = questkit_context(request)
        principal = await verify_token(request)
        await read_body(request, self.settings.max_body_bytes)
        key = idempotency_key(request, None, "validation_error")
        reply = await ctx.client.call_user(
            principal.app_id, principal.user_id, "claim", principal.jti,
            request.path_params["mission_id"], key,
        )
        return from_actor(reply)

    # -- balances -----------------------------------------------------------------------------------
    async def list_balances(self, request: Request) -> Response:
        ctx = questkit_context(request)
        principal = await verify_token(request)
        reply = await ctx.client.call_user(
            principal.app_id, principal.user_id, "balances", principal.jti, catalog=False
        )
        return from_actor(reply)

    async def get_balance(self, request: Request) -> Response:
        ctx = questkit_context(request)
        principal = await verify_token(request)
        reply = await ctx.client.call_user(
            principal.app_id, principal.user_id, "balance", principal.jti,
            request.path_params["currency"], catalog=False,
        )
        return from_actor(reply)

    # -- campaigns -----------------------------------------------------------------------------------
    async def list_campaigns(self, request: Request) -> Response:
        ctx = questkit_context(request)
        principal = await verify_token(request)
        include = query_flags(request, "include", {"expired"})
        reply = await ctx.client.call_user(
            principal.app_id, principal.user_id, "campaigns", principal.jti, "expired" in include
        )
        return from_actor(reply)

    async def get_campaign(self, request: Request) -> Response:
        ctx = questkit_context(request)
        principal = await verify_token(request)
        include = query_flags(request, "include", {"missions"})
        reply = await ctx.client.call_user(
            principal.app_id, principal.user_id, "campaign", principal.jti,
            request.path_params["campaign_id"], "missions" in include,
        )
        return from_actor(reply)

    # -- recommendations -----------------------------------------------------------------------------
    async def recommendations(self, request: Request) -> Response:
        ctx = questkit_context(request)
        principal = await verify_token(request)
        reply = await ctx.client.call_user(
            principal.app_id, principal.user_id, "recommendations", principal.jti
        )
        return from_actor(reply)

    # -- inbound webhooks -----------------------------------------------------------------------------
    async def incoming_webhook(self, request: Request) -> Response:
        """A partner's signed event (Stripe-style ``t=..,v1=..``) becomes a user event.

        The app is named by ``?appId=`` (or ``X-QuestKit-App``) in the URL the
        partner is given. The signature is checked by the app actor (the secret
        never leaves it) before the body is even parsed; nothing changes unless it
        holds and ``t`` is within the tolerance. The provider's event id is the
        idempotency key, so the partner's retries apply once.
        """
        ctx = questkit_context(request)
        app_id = request.query_params.get("appId") or request.headers.get("x-questkit-app")
        if not valid_app_id(app_id):
            raise QuestKitError(400, "validation_error", "appId query parameter is required.")
        assert app_id is not None
        raw = await read_body(request, self.settings.max_body_bytes)
        header = next((request.headers[h] for h in SIGNATURE_HEADERS if h in request.headers), None)
        timestamp, signatures = parse_signature_header(header)
        signed = f"{timestamp}.".encode() + raw
        verdict = await ctx.runtime.call(app_address(app_id), "verify_webhook", signed, signatures)
        if verdict != "ok":
            raise QuestKitError(401, "invalid_signature", "Signature does not match.")
        now_ms = ctx.now_ms()
        if abs(now_ms // 1000 - timestamp) > self.settings.webhook_tolerance_s:
            raise QuestKitError(
                401, "signature_expired",
                f"Signature timestamp is outside the {self.settings.webhook_tolerance_s} s tolerance.",
            )
        event, key = provider_event(raw, now_ms)
        reply = await ctx.client.call_user(app_id, event.user_id, "ingest", None, event, key)
        if "body" in reply:  # the contract's 202 body is {accepted, eventId}
            body = reply["body"]
            reply = {**reply, "body": {"accepted": body["accepted"], "eventId": body["eventId"]}}
        return from_actor(reply, status=202)

    # -- admin ------------------------------------------------------------------------------------------
    async def put_catalog(self, request: Request) -> Response:
        ctx = questkit_context(request)
        secret = bearer_token(request)
        if secret is None:
            raise unauthorized("Authorization: Bearer <appSecret> is required.")
        raw = await read_body(request, self.settings.max_catalog_bytes)
        try:
            parsed = msgspec.json.decode(raw)
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
            raise QuestKitError(400, "validation_error", f"Malformed JSON: {exc}") from None
        app_id = parsed.get("appId") if isinstance(parsed, dict) else None
        query_app = request.query_params.get("appId")
        if not valid_app_id(app_id):
            raise QuestKitError(400, "validation_error", "appId must be a valid app id - at `$.appId`")
        if query_app is not None and query_app != app_id:
            raise QuestKitError(400, "validation_error", "?appId does not match body appId - at `$.appId`")
        reply = await ctx.runtime.call(app_address(app_id), "replace_catalog", secret, raw)
        raise_for_error(reply)
        ctx.client.note_catalog(app_id, reply["etag"])
        return json_response(catalog_body(reply))

    async def get_catalog(self, request: Request) -> Response:
        ctx = questkit_context(request)
        secret = bearer_token(request)
        if secret is None:
            raise unauthorized("Authorization: Bearer <appSecret> is required.")
        app_id = request.query_params.get("appId")
        if not valid_app_id(app_id):
            raise QuestKitError(400, "validation_error", "appId query parameter is required.")
        reply = await ctx.runtime.call(app_address(app_id), "get_catalog", secret)
        raise_for_error(reply)
        return json_response(catalog_body(reply))

    # -- contract ------------------------------------------------------------------------------------
    async def openapi(self, request: Request) -> Response:
        if self._openapi is None:
            self._openapi = _json.encode(openapi_document())
        return Response(self._openapi, media_type="application/json")

    # -- routing ------------------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        e = questkit_endpoint
        return [  # tried in order: the hot path first
            Route("/events", e(self.post_event), methods=["POST"]),
            Route("/auth/token", e(self.issue_token), methods=["POST"]),
            Route("/auth/revoke", e(self.revoke_token), methods=["POST"]),
            Route("/missions", e(self.list_missions), methods=["GET"]),
            Route("/missions/{mission_id}", e(self.get_mission), methods=["GET"]),
            Route("/missions/{mission_id}/claim", e(self.claim_mission), methods=["POST"]),
            Route("/balance", e(self.list_balances), methods=["GET"]),
            Route("/balance/{currency}", e(self.get_balance), methods=["GET"]),
            Route("/campaigns", e(self.list_campaigns), methods=["GET"]),
            Route("/campaigns/{campaign_id}", e(self.get_campaign), methods=["GET"]),
            Route("/recommendations", e(self.recommendations), methods=["GET"]),
            Route("/webhook/incoming", e(self.incoming_webhook), methods=["POST"]),
            Route("/admin/catalog", e(self.put_catalog), methods=["PUT"]),
            Route("/admin/catalog", e(self.get_catalog), methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
        ]


def catalog_body(reply: dict[str, Any]) -> dict[str, Any]:
    """The admin view of a stored catalog: its own fields plus ``version``."""
    catalog = msgspec.json.decode(reply["catalog"])
    return {**catalog, "version": reply["version"]}


def parse_signature_header(header: str | None) -> tuple[int, list[str]]:
    """``t=<unix seconds>,v1=<hex>[,v1=<hex>...]`` -> (t, [v1...]); else 400 malformed_signature."""
    if not header:
        raise QuestKitError(400, "malformed_signature", "Missing signature header (Stripe-Signature).")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise QuestKitError(400, "malformed_signature", "Signature header must be t=..,v1=..")
        if name == "t":
            if not value.isdigit() or timestamp is not None:
                raise QuestKitError(400, "malformed_signature", "t must be one Unix time in seconds.")
            timestamp = int(value)
        elif name == "v1":
            if not _HEX64.fullmatch(value):
                raise QuestKitError(400, "malformed_signature", "v1 must be a hex HMAC-SHA256.")
            signatures.append(value.lower())
        # other schemes (v0, ...) are ignored, as Stripe does
    if timestamp is None or not signatures:
        raise QuestKitError(400, "malformed_signature", "Signature header needs t and v1.")
    return timestamp, signatures


def provider_event(raw: bytes, now_ms: int) -> tuple[Event, str | None]:
    """A provider event (``{id, type, created?, data: {object: {customer, ...}}}``) as an Event."""

    def bad(message: str) -> QuestKitError:
        return QuestKitError(400, "validation_error", message)

    try:
        doc = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise bad(f"Malformed JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise bad("Body must be an object - at `$`")
    name = doc.get("type")
    if not isinstance(name, str) or not name:
        raise bad("type must be a non-empty string - at `$.type`")
    data = doc.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise bad("data.object must be an object - at `$.data.object`")
    customer = obj.get("customer")
    if isinstance(customer, dict):  # an expanded customer object
        customer = customer.get("id")
    if not valid_user_id(customer):
        raise bad("data.object.customer must name the user - at `$.data.object.customer`")
    created = doc.get("created")
    timestamp = created * 1000 if isinstance(created, int) and not isinstance(created, bool) else now_ms
    event_id = doc.get("id")
    key = f"webhook:{event_id}" if isinstance(event_id, str) and event_id else None
    if key is not None and not valid_idempotency_key(key):
        raise bad("id must be 1-246 printable ASCII characters - at `$.id`")
    return Event(user_id=customer, name=name, payload=obj, timestamp=timestamp), key


def questkit_routes(
    settings: QuestKitSettings | None = None, extra_routes: list[BaseRoute] | None = None
) -> list[BaseRoute]:
    """The ``/v1`` mount: every QuestKit route (plus ``extra_routes``, e.g. SSE) behind CORS.

    CORS has no origin allow-list (the SDK runs on any host; tokens are the
    boundary) and no credentials (bearer tokens, not cookies); preflights may send
    Authorization, Idempotency-Key and Content-Type.
    """
    api = QuestKitAPI(settings)
    cors = Middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "PUT", "OPTIONS"],
        allow_headers=["Authorization", "Idempotency-Key", "Content-Type", "Last-Event-ID", "X-Request-Id"],
        expose_headers=["Retry-After", REPLAY_HEADER, "X-Request-Id"],
        max_age=600,
    )
    return [Mount("/v1", routes=[*api.routes(), *(extra_routes or [])], middleware=[cors])]
