"""Buddy progression routes: skills, badges, tokens, evolution, gates, metrics, user summaries.

Routes only translate HTTP to actor calls; the checks live in
``rules/hatched_progression.py`` and the writes in the buddy's progression turns
(``actors/hatched_buddy_progress.py``). Choices clients can rely on:

- ``POST /buddies/{id}/badges`` for a badge the buddy already holds is a 409
  ``badge_already_awarded`` (a manual award is an operator action; a silent no-op
  would hide a mistake).
- ``POST /buddies/{id}/gates/{key}/unlock`` on an unlocked gate is a 200 with
  ``already_unlocked: true`` and nothing charged (safe for a client to retry).
- ``POST /buddies/{id}/evolve`` while an evolve of that buddy is still pending or
  processing answers 202 with that same operation (``in_progress: true``) instead
  of starting a second one.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from questline.actors.hatched_buddy import buddy_address
from questline.actors.hatched_customer import customer_address
from questline.actors.hatched_events import user_address
from questline.engine import Address, Runtime
from questline.http.hatched.auth import require_read, require_write, runtime_of
from questline.http.hatched.conventions import (
    idempotency_key,
    json,
    page_params,
    paginate_page,
    path_param,
    read_body,
)
from questline.http.hatched.eggs import accepted, start_buddy_operation
from questline.http.hatched.errors import endpoint
from questline.rules.hatched import Readiness
from questline.rules.hatched_errors import HatchedError, not_found
from questline.rules.hatched_models import Key, Strict, TokenKey
from questline.rules.hatched_progression import (
    eggs_by_status,
    ensure_ready,
    operation_open,
    user_summary,
)

Amount = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
Reason = Annotated[str, msgspec.Meta(max_length=200)]
IdemKey = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
UserId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class SkillUpdateBody(Strict, kw_only=True):
    skill_key: Key
    operation: Literal["increase", "decrease", "set"]
    value: Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]


class SkillsBody(Strict, kw_only=True):
    updates: Annotated[list[SkillUpdateBody], msgspec.Meta(min_length=1, max_length=50)]
    reason: Reason = ""


class AwardBadgeBody(Strict, kw_only=True):
    badge_key: Key
    reason: Reason = ""


class TokensBody(Strict, kw_only=True):
    token_key: TokenKey
    action: Literal["earn", "spend"]
    amount: Amount
    reason: Reason = ""
    idempotency_key: IdemKey | None = None


async def _buddy(request: Request, write: bool, permission: str = "buddies:read",
                 param: str = "buddy_id") -> tuple[Runtime, str, Address]:
    principal = await (require_write(request) if write else require_read(request, permission))
    return runtime_of(request), principal.customer_id, buddy_address(principal.customer_id,
                                                                     path_param(request, param))


# -- skills and badges -----------------------------------------------------------------
@endpoint
async def update_skills(request: Request) -> Response:
    runtime, _, buddy = await _buddy(request, write=True, param="id")
    body = await read_body(request, SkillsBody)
    return json(await runtime.call(buddy, "update_skills", msgspec.to_builtins(body.updates), body.reason))


@endpoint
async def list_badges(request: Request) -> Response:
    runtime, _, buddy = await _buddy(request, write=False, permission="badges:read")
    page, limit = page_params(request)
    return json(paginate_page(await runtime.call(buddy, "list_badges"), page, limit))


@endpoint
async def award_badge(request: Request) -> Response:
    runtime, _, buddy = await _buddy(request, write=True)
    body = await read_body(request, AwardBadgeBody)
    return json(await runtime.call(buddy, "award_badge", body.badge_key, body.reason), 201)


# -- tokens ------------------------------------------------------------------------------
@endpoint
async def get_tokens(request: Request) -> Response:
    runtime, _, buddy = await _buddy(request, write=False)
    return json(await runtime.call(buddy, "token_wallet"))


@endpoint
async def change_tokens(request: Request) -> Response:
    runtime, _, buddy = await _buddy(request, write=True)
    body = await read_body(request, TokensBody)
    delta = body.amount if body.action == "earn" else -body.amount
    reason = body.reason or f"manual_{body.action}"
    return json(await runtime.call(buddy, "change_tokens", body.token_key, delta, reason, "manual",
                                   idempotency_key(request, body.idempotency_key)))


# -- evolution -----------------------------------------------------------------------------
@endpoint
async def get_evolution(request: Request) -> Response:
    runtime, _, buddy = await _buddy(request, write=False)
    return json(await runtime.call(buddy, "evolution"))


@endpoint
async def evolve(request: Request) -> Response:
    """202 with an operation id; the customer actor's alarm runs the buddy's ``run_evolve``."""
    runtime, customer_id, buddy = await _buddy(request, write=True)
    customer = customer_address(customer_id)
    check = await runtime.call(buddy, "evolve_check")
    if check["pending_operation_id"]:
        op = await runtime.call(customer, "get_operation", check["pending_operation_id"])
        if operation_open(op["status"]):
            return accepted(op, in_progress=True)
    readiness = msgspec.convert(check["readiness"], Readiness)
    ensure_ready(readiness)
    op = await start_buddy_operation(request, customer_id, "evolve", path_param(request, "buddy_id"),
                                     {"from_stage": readiness.current_stage, "to_stage": readiness.next_stage})
    await runtime.call(buddy, "note_evolve_operation", op["operation_id"])
    return accepted(op, in_progress=False)


@endpoint
async def list_evolutions(request: Request) -> Response:
    runtime, _, buddy = await _buddy(request, write=False)
    return json(await runtime.call(buddy, "evolutions"))


# -- gates ---------------------------------------------------------------------------------
@endpoint
async def unlock_gate(request: Request) -> Response:
    runtime, _, buddy = await _buddy(request, write=True)
    return json(await runtime.call(buddy, "unlock_gate", path_param(request, "gate_key")))


@endpoint
async def list_unlocks(request: Request) -> Response:
    runtime, _, buddy = await _buddy(request, write=False)
    return json({"data": await runtime.call(buddy, "unlocks")})


# -- metrics and summaries -------------------------------------------------------------------
@endpoint
async def progression_metrics(request: Request) -> Response:
    runtime, _, buddy = await _buddy(request, write=False)
    return json(await runtime.call(buddy, "progression_metrics"))


@endpoint
async def legacy_progression(request: Request) -> Response:
    """The legacy path: the same document, pointing at its successor."""
    runtime, _, buddy = await _buddy(request, write=False)
    successor = f"<{request.url.path}-metrics>; rel=\"successor-version\""
    return json(await runtime.call(buddy, "progression_metrics"),
                headers={"Deprecation": "true", "Link": successor})


def _user_id(request: Request) -> str:
    try:
        return msgspec.convert(path_param(request, "user_id"), UserId)
    except msgspec.ValidationError as exc:
        raise HatchedError(400, "validation_error", "user_id must be 1-200 characters",
                           {"errors": ["user_id must be 1-200 characters"]}) from exc


async def _summary(runtime: Runtime, customer_id: str, user_id: str) -> tuple[dict[str, Any], list[Any]]:
    """The user's buddy totals and eggs; 404 ``user_not_found`` when Hatched knows neither."""
    buddy_ids, eggs = await asyncio.gather(
        runtime.call(user_address(customer_id, user_id), "buddy_ids"),
        runtime.call(customer_address(customer_id), "list_eggs", user_id, None))
    if not buddy_ids and not eggs:
        raise not_found("user", user_id)
    inputs = await asyncio.gather(*(runtime.call(buddy_address(customer_id, b), "summary_inputs")
                                    for b in buddy_ids))
    return user_summary(user_id, list(inputs)), eggs


@endpoint
async def user_summary_route(request: Request) -> Response:
    principal = await require_read(request, "buddies:read")
    summary, _ = await _summary(runtime_of(request), principal.customer_id, _user_id(request))
    return json(summary)


@endpoint
async def customer_user_summary(request: Request) -> Response:
    """The support view of one end user: the buddy totals plus their eggs by status."""
    principal = await require_read(request, "buddies:read")
    summary, eggs = await _summary(runtime_of(request), principal.customer_id, _user_id(request))
    return json({**summary, "eggs": {"total": len(eggs), "by_status": eggs_by_status(eggs)}})


def routes() -> list[BaseRoute]:
    return [
        Route("/buddies/users/{user_id}/summary", user_summary_route, methods=["GET"]),
        Route("/customers/me/users/{user_id}/summary", customer_user_summary, methods=["GET"]),
        Route("/buddies/{id}/skills", update_skills, methods=["PATCH"]),
        Route("/buddies/{buddy_id}/badges", list_badges, methods=["GET"]),
        Route("/buddies/{buddy_id}/badges", award_badge, methods=["POST"]),
        Route("/buddies/{buddy_id}/tokens", get_tokens, methods=["GET"]),
        Route("/buddies/{buddy_id}/tokens", change_tokens, methods=["POST"]),
        Route("/buddies/{buddy_id}/evolution", get_evolution, methods=["GET"]),
        Route("/buddies/{buddy_id}/evolve", evolve, methods=["POST"]),
        Route("/buddies/{buddy_id}/evolutions", list_evolutions, methods=["GET"]),
        Route("/buddies/{buddy_id}/gates/{gate_key}/unlock", unlock_gate, methods=["POST"]),
        Route("/buddies/{buddy_id}/unlocks", list_unlocks, methods=["GET"]),
        Route("/buddies/{buddy_id}/progression-metrics", progression_metrics, methods=["GET"]),
        Route("/buddies/{buddy_id}/progression", legacy_progression, methods=["GET"]),
    ]
