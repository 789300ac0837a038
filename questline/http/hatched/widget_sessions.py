"""Minting and revoking widget credentials: ``/widget-sessions``, ``/embed-tokens``.

The customer's server (secret key) or the dashboard (JWT) mints them for one of
its buddies; the browser only ever sees the token. Interactive sessions are
short-lived and scoped, embed tokens read-only, longer-lived and signed; both
have a record in a session actor, so ``DELETE /widget-sessions/{id}`` revokes
either at once. Every answer carries the copy-paste embed snippet.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from questline.actors.hatched_buddy import buddy_address
from questline.actors.hatched_customer import customer_address
from questline.actors.hatched_widget import session_address
from questline.http.hatched.auth import jwt_secret, require_write, runtime_of
from questline.http.hatched.conventions import json, path_param, read_body
from questline.http.hatched.errors import endpoint
from questline.rules.hatched_errors import HatchedError
from questline.rules.hatched_models import Strict, iso_ms
from questline.rules.hatched_widget import (
    DEFAULT_SESSION_SCOPES,
    EMBED_SCOPES,
    SCOPES,
    SESSION_ID,
    Kind,
    Scope,
    effective_scopes,
    embed_key,
    session_id,
    session_token,
    sign_embed,
    token_hash,
    ttl_ms,
)

BuddyId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
ReadScope = Literal["buddy:read", "badges:read", "marketplace:read", "operations:read"]
assert set(ReadScope.__args__) == set(EMBED_SCOPES)  # type: ignore[attr-defined]
assert set(Scope.__args__) == set(SCOPES)  # type: ignore[attr-defined]


class SessionBody(Strict, kw_only=True):
    buddy_id: BuddyId
    scopes: Annotated[list[Scope], msgspec.Meta(max_length=len(SCOPES))] = msgspec.field(
        default_factory=lambda: list(DEFAULT_SESSION_SCOPES))
    ttl_seconds: int | None = None


class EmbedBody(Strict, kw_only=True):
    """Read-only by type: a write scope here is a validation error, not silently dropped."""

    buddy_id: BuddyId
    scopes: Annotated[list[ReadScope], msgspec.Meta(max_length=len(EMBED_SCOPES))] = msgspec.field(
        default_factory=lambda: list(EMBED_SCOPES))
    ttl_seconds: int | None = None


async def embed_signing_key(request: Request) -> bytes:
    state = request.app.state
    cached = getattr(state, "hatched_widget_embed_key", None)
    if cached is None:
        cached = embed_key(await jwt_secret(request))
        state.hatched_widget_embed_key = cached
    return cached


def snippet(request: Request, token: str) -> str:
    """The one line a customer pastes into their page."""
    base = str(request.base_url).rstrip("/")
    return f'<script src="{base}/api/v1/widget/embed.js" data-token="{token}" async></script>'


async def _known_buddy(request: Request, customer_id: str, buddy_id: str) -> dict[str, Any]:
    """Tokens only ever name a buddy of the minting customer (404 otherwise)."""
    return await runtime_of(request).call(buddy_address(customer_id, buddy_id), "get")


async def mint(request: Request, customer_id: str, buddy_id: str, kind: Kind, scopes: list[str],
               ttl_seconds: int | None) -> dict[str, Any]:
    """Create the record (hash only) and return the token once; the clock is the engine's."""
    runtime = runtime_of(request)
    lifetime = ttl_ms(kind, ttl_seconds)
    raw_id = secrets.token_hex(8)
    now = runtime.config.clock()
    expires_at = now + lifetime
    if kind == "embed":
        claims = {"sid": raw_id, "cid": customer_id, "bid": buddy_id, "scp": scopes, "exp": expires_at // 1000}
        token = sign_embed(await embed_signing_key(request), claims)
    else:
        token = session_token(raw_id, secrets.token_hex(24))
    record = {"session_id": session_id(raw_id), "customer_id": customer_id, "buddy_id": buddy_id, "kind": kind,
              "scopes": scopes, "token_hash": token_hash(token), "expires_at": expires_at}
    view = await runtime.call(session_address(raw_id), "issue", record)
    return {"token": token, **view, "expires_at": iso_ms(expires_at), "expires_in": lifetime // 1000,
            "embed_snippet": snippet(request, token)}


@endpoint
async def create_session(request: Request) -> Response:
    principal = await require_write(request)
    body = await read_body(request, SessionBody)
    scopes = effective_scopes(body.scopes)
    await _known_buddy(request, principal.customer_id, body.buddy_id)
    return json(await mint(request, principal.customer_id, body.buddy_id, "interactive", scopes,
                           body.ttl_seconds), 201)


@endpoint
async def create_embed_token(request: Request) -> Response:
    principal = await require_write(request)
    body = await read_body(request, EmbedBody)
    scopes = effective_scopes(body.scopes)
    await _known_buddy(request, principal.customer_id, body.buddy_id)
    return json(await mint(request, principal.customer_id, body.buddy_id, "embed", scopes, body.ttl_seconds), 201)


@endpoint
async def preview_tokens(request: Request) -> Response:
    """Dashboard preview: a read-only and an interactive token for one buddy (``?buddy_id=``,
    default the customer's newest active buddy), both short-lived."""
    principal = await require_write(request)
    buddy_id = request.query_params.get("buddy_id") or None
    if buddy_id is None:
        buddies = await runtime_of(request).call(customer_address(principal.customer_id), "list_buddies",
                                                 None, "active", None)
        if not buddies:
            raise HatchedError(409, "no_buddy_to_preview",
                               "This customer has no active buddy yet; hatch one, then preview the widget.")
        buddy_id = max(buddies, key=lambda b: (b["created_at"], b["buddy_id"]))["buddy_id"]
    await _known_buddy(request, principal.customer_id, buddy_id)
    read_only = await mint(request, principal.customer_id, buddy_id, "preview", effective_scopes(EMBED_SCOPES),
                           None)
    interactive = await mint(request, principal.customer_id, buddy_id, "preview", effective_scopes(SCOPES), None)
    return json({"buddy_id": buddy_id, "expires_at": read_only["expires_at"], "read_only": read_only,
                 "interactive": interactive})


@endpoint
async def revoke_session(request: Request) -> Response:
    """Effective at once: the next request with the token is refused, open streams end."""
    principal = await require_write(request)
    ident = path_param(request, "id")
    m = SESSION_ID.fullmatch(ident)
    if m is None:
        raise HatchedError(404, "widget_session_not_found", f"Widget session {ident} not found.")
    return json(await runtime_of(request).call(session_address(m[1]), "revoke", principal.customer_id))


def routes() -> list[BaseRoute]:
    return [
        Route("/widget-sessions", create_session, methods=["POST"]),
        Route("/widget-sessions/preview", preview_tokens, methods=["GET"]),
        Route("/widget-sessions/{id}", revoke_session, methods=["DELETE"]),
        Route("/embed-tokens", create_embed_token, methods=["POST"]),
    ]
