"""The QuestKit contract as msgspec Structs and the OpenAPI document built from them.

Request and entity shapes come from ``rules.questkit_models`` (the same Structs
that validate input); response envelopes are declared here. The tests decode
real responses into these Structs with unknown fields forbidden, so the document
cannot drift from what the routes send.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Struct

from questline.rules.questkit_models import (
    Balance,
    Campaign,
    Event,
    Mission,
    MissionProgress,
    NonEmptyStr,
    Reward,
    SDKUpdate,
)


class TokenRequest(Struct, rename="camel"):
    app_id: NonEmptyStr
    app_secret: NonEmptyStr
    user_id: NonEmptyStr


class TokenResponse(Struct, rename="camel", forbid_unknown_fields=True):
    token: str
    expires_at: int


class RevokeRequest(Struct, rename="camel"):
    """Server-side revocation (without it, the bearer token revokes itself)."""

    app_id: NonEmptyStr
    app_secret: NonEmptyStr
    user_id: NonEmptyStr
    jti: NonEmptyStr


class RevokeResponse(Struct, rename="camel", forbid_unknown_fields=True):
    revoked: bool
    jti: str


class EventAccepted(Struct, rename="camel", forbid_unknown_fields=True):
    accepted: bool
    event_id: str
    missions_updated: list[str]


class WebhookAccepted(Struct, rename="camel", forbid_unknown_fields=True):
    accepted: bool
    event_id: str


class MissionList(Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    missions: list[Mission]
    progress: dict[str, MissionProgress]
    next_cursor: str | None = None


class MissionDetail(Struct, rename="camel", forbid_unknown_fields=True):
    mission: Mission
    progress: MissionProgress | None


class ClaimResult(Struct, rename="camel", forbid_unknown_fields=True):
    progress: MissionProgress
    balance: Balance | None
    reward: Reward


class BalanceList(Struct, forbid_unknown_fields=True):
    balances: list[Balance]


class BalanceDetail(Struct, forbid_unknown_fields=True):
    balance: Balance


class CampaignList(Struct, forbid_unknown_fields=True):
    campaigns: list[Campaign]


class CampaignDetail(Struct, forbid_unknown_fields=True, omit_defaults=True):
    campaign: Campaign
    missions: list[Mission] | None = None


class Recommendations(Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    mission_ids: list[str]
    reason: str
    cached: bool
    count: int
    fallback: bool | None = None


class AdminCatalog(Struct, rename="camel", forbid_unknown_fields=True):
    """A catalog as PUT by the admin, plus the ``version`` it was stored as."""

    app_id: str
    missions: list[Mission]
    campaigns: list[Campaign]
    version: int


class CatalogBody(Struct, rename="camel"):
    app_id: str
    missions: list[Mission]
    campaigns: list[Campaign]


class ErrorBody(Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    """``{error, message?}``; a 429 adds ``retryAfterMs``."""

    error: str
    message: str | None = None
    retry_after_ms: int | None = None


class ProviderEvent(Struct):
    """An inbound partner event (Stripe-style); ``data.object.customer`` names the user."""

    type: str
    data: dict[str, Any]
    id: str | None = None
    created: int | None = None


# (method, path, summary, request body, {status: response}, auth)
ROUTES: list[tuple[str, str, str, Any, dict[int, Any], str]] = [
    ("post", "/v1/auth/token", "Mint a user token (HS256, 1 h)", TokenRequest,
     {200: TokenResponse, 400: ErrorBody, 401: ErrorBody}, "none"),
    ("post", "/v1/auth/revoke", "Revoke the bearer token, or any jti with the app secret", RevokeRequest,
     {200: RevokeResponse, 400: ErrorBody, 401: ErrorBody}, "jwt"),
    ("post", "/v1/events", "Ingest one event", Event,
     {200: EventAccepted, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 429: ErrorBody}, "jwt"),
    ("get", "/v1/missions", "List missions with this user's progress", None,
     {200: MissionList, 400: ErrorBody, 401: ErrorBody}, "jwt"),
    ("get", "/v1/missions/{missionId}", "One mission with this user's progress", None,
     {200: MissionDetail, 401: ErrorBody, 404: ErrorBody}, "jwt"),
    ("post", "/v1/missions/{missionId}/claim", "Claim a completed mission's reward", None,
     {200: ClaimResult, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody}, "jwt"),
    ("get", "/v1/balance", "All balances of this user", None, {200: BalanceList, 401: ErrorBody}, "jwt"),
    ("get", "/v1/balance/{currency}", "One balance", None,
     {200: BalanceDetail, 401: ErrorBody, 404: ErrorBody}, "jwt"),
    ("get", "/v1/campaigns", "Campaigns not yet ended (?include=expired for all)", None,
     {200: CampaignList, 400: ErrorBody, 401: ErrorBody}, "jwt"),
    ("get", "/v1/campaigns/{campaignId}", "One campaign (?include=missions)", None,
     {200: CampaignDetail, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody}, "jwt"),
    ("get", "/v1/recommendations", "Suggested missions", None,
     {200: Recommendations, 401: ErrorBody}, "jwt"),
    ("post", "/v1/webhook/incoming", "Signed partner event (?appId=, Stripe-Signature: t=..,v1=..)",
     ProviderEvent, {202: WebhookAccepted, 400: ErrorBody, 401: ErrorBody}, "signature"),
    ("put", "/v1/admin/catalog", "Replace the app's catalog", CatalogBody,
     {200: AdminCatalog, 400: ErrorBody, 401: ErrorBody}, "appSecret"),
    ("get", "/v1/admin/catalog", "The app's catalog (?appId=)", None,
     {200: AdminCatalog, 400: ErrorBody, 401: ErrorBody}, "appSecret"),
]


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 for ``/v1``; schemas generated from the Structs above and the entity models."""
    types: list[Any] = [SDKUpdate]
    for _, _, _, request, responses, _ in ROUTES:
        if request is not None:
            types.append(request)
        types.extend(responses.values())
    schemas, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    refs = dict(zip([id(t) for t in types], schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, request, responses, auth in ROUTES:
        op: dict[str, Any] = {
            "summary": summary,
            "responses": {
                str(status): {
                    "description": "error" if body is ErrorBody else "ok",
                    "content": {"application/json": {"schema": refs[id(body)]}},
                }
                for status, body in responses.items()
            },
        }
        if request is not None:
            op["requestBody"] = {
                "required": method != "post" or path != "/v1/auth/revoke",
                "content": {"application/json": {"schema": refs[id(request)]}},
            }
        if auth in ("jwt", "appSecret"):
            op["security"] = [{"bearer": []}]
        params = [part[1:-1] for part in path.split("/") if part.startswith("{")]
        if params:
            op["parameters"] = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in params
            ]
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "questline - QuestKit API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "x-sse-updates": {"event": "update", "data": refs[id(SDKUpdate)]},
    }
