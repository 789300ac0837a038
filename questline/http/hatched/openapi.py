"""Hatched's OpenAPI document, generated from the routes actually registered.

Hatched's routes are plain Starlette ``Route``s whose handlers decode their
body with ``read_body(request, SomeStruct)``; there is no hand-written route
table to drift. The document walks the router (``hatched_routes()`` or, when
served, the router answering the request), finds each handler's body Struct by
reading the handler's own ``read_body``/``decode_body`` call, and renders the
Struct with ``msgspec.json.schema_components``. Success bodies are documented as
JSON (their shapes live in the actors' dicts, not in Structs); every 4xx is the
envelope ``{error: {code, message, details?, requestId}}``.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Iterable
from functools import cache
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router

from questline.http.hatched.conventions import json

BASE_PATH = "/api/v1"
OPENAPI_PATH = "/openapi.json"
PUBLIC = frozenset({("post", "/auth/register"), ("post", "/auth/login"), ("get", "/health"),
                    ("get", "/health/live"), ("get", "/health/ready"), ("get", "/metrics"),
                    ("get", OPENAPI_PATH)})
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_BODY_READERS = frozenset({"read_body", "decode_body"})

ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {"error": {
        "type": "object",
        "required": ["code", "message"],
        "additionalProperties": False,
        "properties": {
            "code": {"type": "string"}, "message": {"type": "string"},
            "details": {}, "requestId": {"type": "string"},
        },
    }},
}


def _inner_routes(routes: Iterable[BaseRoute], prefix: str = "") -> list[tuple[str, Route]]:
    """``(full path, Route)`` for every route, Mounts and wrapped routers expanded."""
    out: list[tuple[str, Route]] = []
    for route in routes:
        if isinstance(route, Mount):
            inner: Any = route.app
            while not isinstance(inner, Router) and hasattr(inner, "app"):
                inner = inner.app
            out += _inner_routes(getattr(inner, "routes", None) or route.routes, prefix + route.path)
        elif isinstance(route, Route):
            out.append((prefix + route.path, route))
    return out


@cache
def body_struct(handler: Any) -> type | None:
    """The Struct a handler decodes its body into: the second argument of its own
    ``read_body``/``decode_body`` call, resolved in the handler's closure and module."""
    fn = inspect.unwrap(handler)
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return None
    names = inspect.getclosurevars(fn)
    scope = {**names.globals, **names.nonlocals}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and len(node.args) >= 2):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if called in _BODY_READERS and isinstance(node.args[1], ast.Name):
            found = scope.get(node.args[1].id)
            if isinstance(found, type) and issubclass(found, msgspec.Struct):
                return found
    return None


def openapi_document(routes: Iterable[BaseRoute], base_path: str = "") -> dict[str, Any]:
    """OpenAPI 3.1 for ``routes`` (paths prefixed with ``base_path``: ``hatched_routes()`` carry
    their ``/api/v1`` mount already, the router serving the document does not)."""
    ops = [(path, route, method.lower()) for path, route in _inner_routes(routes, base_path)
           for method in sorted(route.methods or ()) if method not in ("HEAD", "OPTIONS")]
    structs = sorted({s for _, route, _ in ops if (s := body_struct(route.endpoint)) is not None},
                     key=lambda t: (t.__module__, t.__qualname__))
    schemas, components = msgspec.json.schema_components(structs, ref_template="#/components/schemas/{name}")
    refs = dict(zip(structs, schemas, strict=True))
    components["Error"] = ENVELOPE
    error = {"description": "error envelope",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    paths: dict[str, dict[str, Any]] = {}
    for path, route, method in ops:
        template = _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)
        local = template[len(BASE_PATH):] if template.startswith(BASE_PATH + "/") else template
        op: dict[str, Any] = {
            "operationId": f"{method}_{route.name}_{len(paths)}",
            "responses": {"2XX": {"description": "success"}, "4XX": error},
        }
        params = _PARAM.findall(path)
        if params:
            op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                                for p in params]
        struct = body_struct(route.endpoint)
        if struct is not None:
            # An empty body reads as {} (conventions.decode_body), so the body itself is optional.
            op["requestBody"] = {"required": False, "content": {"application/json": {"schema": refs[struct]}}}
        if (method, local) not in PUBLIC:
            op["security"] = [{"bearer": []}]
        paths.setdefault(template, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "questline - Hatched API (seed 004)", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "API key (sk_...) or dashboard JWT"}},
        },
    }


async def serve_openapi(request: Request) -> Response:
    """The document of the router answering this request (the routes really served)."""
    router = request.scope.get("router")
    routes = getattr(router, "routes", [])
    return json(openapi_document(routes, BASE_PATH))


def routes() -> list[BaseRoute]:
    """``GET /api/v1/openapi.json``, to add to the Hatched router."""
    return [Route(OPENAPI_PATH, serve_openapi, methods=["GET"])]
