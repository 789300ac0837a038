"""Config versions, their draft sections (one CRUD group per section) and presets.

Routes only translate HTTP to customer-actor calls; every rule (one draft, one
published, immutability, validation before publish) lives in the actor and in
``rules/hatched_config.py``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from questline.actors.hatched_customer import customer_address
from questline.http.hatched.auth import require_read, require_write, runtime_of
from questline.http.hatched.conventions import (
    json,
    page_params,
    paginate_page,
    path_param,
    query_enum,
    read_body,
)
from questline.http.hatched.errors import endpoint
from questline.rules.hatched_config import PRESETS, preset_content
from questline.rules.hatched_errors import HatchedError, not_found
from questline.rules.hatched_models import (
    SECTIONS,
    TOKEN_KEYS,
    ConfigContent,
    Gate,
    Key,
    Name,
    Strict,
    Text,
    TokenConfig,
    content_to_builtins,
)


class CreateVersionBody(Strict, kw_only=True):
    name: Name | None = None
    description: Text = ""
    content: ConfigContent | None = None


class UpdateVersionBody(Strict, kw_only=True):
    name: Name | None = None
    description: Text | None = None
    content: ConfigContent | None = None


class CloneBody(Strict, kw_only=True):
    name: Name | None = None


class MigrateBody(Strict, kw_only=True):
    buddy_ids: list[str] | None = None


class ApplyPresetBody(Strict, kw_only=True):
    preset_key: Key


async def _customer(request: Request, write: bool) -> tuple[Any, Any]:
    principal = await (require_write(request) if write else require_read(request, "config:read"))
    return runtime_of(request), customer_address(principal.customer_id)


# -- config versions -----------------------------------------------------------------
@endpoint
async def list_versions(request: Request) -> Response:
    runtime, customer = await _customer(request, write=False)
    status = query_enum(request, "status", ("draft", "published", "archived"))
    page, limit = page_params(request)
    versions = await runtime.call(customer, "list_versions", status)
    return json(paginate_page(versions, page, limit))


@endpoint
async def create_version(request: Request) -> Response:
    runtime, customer = await _customer(request, write=True)
    body = await read_body(request, CreateVersionBody)
    content = content_to_builtins(body.content) if body.content is not None else None
    return json(await runtime.call(customer, "create_version", body.name or "", body.description, content), 201)


@endpoint
async def get_version(request: Request) -> Response:
    runtime, customer = await _customer(request, write=False)
    return json(await runtime.call(customer, "get_version", path_param(request, "id")))


@endpoint
async def update_version(request: Request) -> Response:
    runtime, customer = await _customer(request, write=True)
    body = await read_body(request, UpdateVersionBody)
    patch = {"name": body.name, "description": body.description,
             "content": content_to_builtins(body.content) if body.content is not None else None}
    return json(await runtime.call(customer, "update_version", path_param(request, "id"), patch))


@endpoint
async def clone_version(request: Request) -> Response:
    runtime, customer = await _customer(request, write=True)
    body = await read_body(request, CloneBody)
    return json(await runtime.call(customer, "clone_version", path_param(request, "id"), body.name), 201)


@endpoint
async def publish_version(request: Request) -> Response:
    runtime, customer = await _customer(request, write=True)
    return json(await runtime.call(customer, "publish_version", path_param(request, "id")))


@endpoint
async def version_impact(request: Request) -> Response:
    runtime, customer = await _customer(request, write=False)
    return json(await runtime.call(customer, "version_impact", path_param(request, "id")))


@endpoint
async def migrate_buddies(request: Request) -> Response:
    runtime, customer = await _customer(request, write=True)
    body = await read_body(request, MigrateBody)
    return json(await runtime.call(customer, "migrate_buddies", path_param(request, "id"), body.buddy_ids))


# -- presets -------------------------------------------------------------------------
def _preset_view(key: str, full: bool) -> dict[str, Any]:
    name, description, _ = PRESETS[key]
    content = preset_content(key)
    assert content is not None
    view: dict[str, Any] = {
        "key": key,
        "name": name,
        "description": description,
        "summary": {
            "skills": sum(len(s.skills) for s in content.skill_sets.values()),
            "coin_rules": len(content.coin_rules),
            "badges": len(content.badge_definitions),
            "evolution_stages": len(content.evolution_rules),
            "streaks": len(content.streak_definitions),
        },
    }
    if full:
        view["content"] = content_to_builtins(content)
    return view


@endpoint
async def list_presets(request: Request) -> Response:
    await require_read(request, "config:read")
    return json({"data": [_preset_view(key, full=False) for key in PRESETS]})


@endpoint
async def get_preset(request: Request) -> Response:
    await require_read(request, "config:read")
    key = path_param(request, "key")
    if key not in PRESETS:
        raise not_found("preset", key)
    return json(_preset_view(key, full=True))


@endpoint
async def apply_preset(request: Request) -> Response:
    runtime, customer = await _customer(request, write=True)
    body = await read_body(request, ApplyPresetBody)
    return json(await runtime.call(customer, "apply_preset", body.preset_key))


# -- draft sections (skill sets, skill rules, coin rules, badges, streaks) ------------------
def section_routes(path: str, section: str, with_get: bool) -> list[BaseRoute]:
    """GET list / POST / PUT / DELETE (and GET one) for one section of the working draft."""
    item_type, prefix = SECTIONS[section]

    @endpoint
    async def list_items(request: Request) -> Response:
        runtime, customer = await _customer(request, write=False)
        return json({"data": await runtime.call(customer, "section_list", section)})

    @endpoint
    async def create_item(request: Request) -> Response:
        runtime, customer = await _customer(request, write=True)
        item = msgspec.to_builtins(await read_body(request, item_type))
        return json(await runtime.call(customer, "section_create", section, prefix, item), 201)

    @endpoint
    async def get_item(request: Request) -> Response:
        runtime, customer = await _customer(request, write=False)
        return json(await runtime.call(customer, "section_get", section, path_param(request, "id")))

    @endpoint
    async def update_item(request: Request) -> Response:
        runtime, customer = await _customer(request, write=True)
        item = msgspec.to_builtins(await read_body(request, item_type))
        return json(await runtime.call(customer, "section_update", section, path_param(request, "id"), item))

    @endpoint
    async def delete_item(request: Request) -> Response:
        runtime, customer = await _customer(request, write=True)
        return json(await runtime.call(customer, "section_delete", section, path_param(request, "id")))

    routes: list[BaseRoute] = [
        Route(path, list_items, methods=["GET"]),
        Route(path, create_item, methods=["POST"]),
        Route(path + "/{id}", update_item, methods=["PUT"]),
        Route(path + "/{id}", delete_item, methods=["DELETE"]),
    ]
    if with_get:
        routes.append(Route(path + "/{id}", get_item, methods=["GET"]))
    return routes


# -- token config (upsert by token_key) and gates (PUT by gate_key) ----------------------------
@endpoint
async def list_token_config(request: Request) -> Response:
    runtime, customer = await _customer(request, write=False)
    items = await runtime.call(customer, "section_list", "token_config")
    return json({"data": [{k: v for k, v in item.items() if k != "id"} for item in items],
                 "available_tokens": list(TOKEN_KEYS)})


@endpoint
async def upsert_token_config(request: Request) -> Response:
    runtime, customer = await _customer(request, write=True)
    body = await read_body(request, TokenConfig)
    result = await runtime.call(customer, "section_put", "token_config", body.token_key, msgspec.to_builtins(body))
    created = result.pop("created")
    result.pop("key")
    return json(result, 201 if created else 200)


@endpoint
async def list_gates(request: Request) -> Response:
    runtime, customer = await _customer(request, write=False)
    items = await runtime.call(customer, "section_list", "gates")
    return json({"data": [{"gate_key": item.pop("id"), **item} for item in items]})


@endpoint
async def put_gate(request: Request) -> Response:
    runtime, customer = await _customer(request, write=True)
    gate_key = path_param(request, "gate_key")
    try:
        msgspec.convert(gate_key, Key)
    except msgspec.ValidationError as exc:
        raise HatchedError(400, "validation_error", "gate_key must be a lowercase key",
                           {"errors": ["gate_key must be a lowercase key"]}) from exc
    body = await read_body(request, Gate)
    result = await runtime.call(customer, "section_put", "gates", gate_key, msgspec.to_builtins(body))
    created = result.pop("created")
    result.pop("key")
    return json({"gate_key": gate_key, **result}, 201 if created else 200)


@endpoint
async def delete_gate(request: Request) -> Response:
    runtime, customer = await _customer(request, write=True)
    result = await runtime.call(customer, "section_remove", "gates", path_param(request, "gate_key"))
    return json({"gate_key": result["key"], "deleted": True})


def routes() -> list[BaseRoute]:
    return [
        Route("/config-versions", list_versions, methods=["GET"]),
        Route("/config-versions", create_version, methods=["POST"]),
        Route("/config-versions/{id}", get_version, methods=["GET"]),
        Route("/config-versions/{id}", update_version, methods=["PATCH"]),
        Route("/config-versions/{id}/clone", clone_version, methods=["POST"]),
        Route("/config-versions/{id}/publish", publish_version, methods=["POST"]),
        Route("/config-versions/{id}/impact", version_impact, methods=["GET"]),
        Route("/config-versions/{id}/migrate-buddies", migrate_buddies, methods=["POST"]),
        Route("/presets", list_presets, methods=["GET"]),
        Route("/presets/{key}", get_preset, methods=["GET"]),
        Route("/customers/me/apply-preset", apply_preset, methods=["POST"]),
        *section_routes("/skill-sets", "skill_sets", with_get=True),
        *section_routes("/skill-rules", "skill_rules", with_get=False),
        *section_routes("/coin-rules", "coin_rules", with_get=False),
        *section_routes("/badge-definitions", "badge_definitions", with_get=True),
        *section_routes("/streak-definitions", "streak_definitions", with_get=True),
        Route("/token-config", list_token_config, methods=["GET"]),
        Route("/token-config", upsert_token_config, methods=["POST"]),
        Route("/gates", list_gates, methods=["GET"]),
        Route("/gates/{gate_key}", put_gate, methods=["PUT"]),
        Route("/gates/{gate_key}", delete_gate, methods=["DELETE"]),
    ]
