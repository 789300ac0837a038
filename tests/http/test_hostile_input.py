"""Hostile input against every write route of every surface (issue 11).

Each hostile request gets a 4xx in the owning surface's error format (never a
5xx) and changes nothing: every parameterless read of every surface answers the
same before and after.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from questline.http.limits import DEFAULT_MAX_BODY_BYTES
from tests.http.all_surfaces import (
    World,
    all_routes,
    assert_error_format,
    credentials,
    fill,
    reconfigure_front_door,
    route_table,
    surface_of,
    world_fixture,  # noqa: F401  (fixture)
)

MIB = 1024 * 1024
QM_WRITES = {
    ("POST", "/agents/quest-master-agent/{sessionId}"),
    ("POST", "/api/tasks"), ("PATCH", "/api/tasks"), ("DELETE", "/api/tasks"),
    ("POST", "/api/chat"), ("POST", "/api/questmaster/tokens"),
}
# Reads that are not state: streams, documents, art, and figures that move with the clock or
# the request count itself (metrics, health, analytics ranges ending "now").
READ_SKIP = ("events", "/sse/", "openapi", "art.svg", "metrics", "/health", "/analytics", "/widget/stream")


def write_routes(world: World) -> list[tuple[str, str]]:
    out = []
    for method, path in route_table(all_routes(world.qm)):
        if method == "GET":
            continue
        if surface_of(path) == "questmaster" and (method, path) not in QM_WRITES:
            continue
        out.append((method, path))
    return out


def concrete(path: str) -> str:
    return fill(path, "nope", sessionId="qm-s1") + ("?appId=acme" if path.endswith("/webhook/incoming") else "")


async def fingerprint(world: World) -> dict[str, tuple[int, str]]:
    """Every parameterless read of every surface (and the QuestMaster session's), as seen by its principal."""
    seen: dict[str, tuple[int, str]] = {}
    for method, path in route_table(all_routes(world.qm)):
        if method != "GET" or any(s in path for s in READ_SKIP):
            continue
        url = fill(path, "nope", sessionId="qm-s1")
        headers = {**credentials(world, "GET", path), "X-Request-Id": "fingerprint"}
        r = await world.client.get(url, headers=headers)
        seen[url] = (r.status_code, r.text)
        hist = "/agents/quest-master-agent/qm-s1?history=true"
        if url.endswith("/qm-s1"):
            r = await world.client.get(hist, headers=headers)
            seen[hist] = (r.status_code, r.text)
    return seen


async def send(world: World, method: str, path: str, body: bytes | AsyncIterator[bytes],
               content_type: str = "application/json", url: str | None = None) -> httpx.Response:
    headers = {**credentials(world, method, path), "Content-Type": content_type}
    return await world.client.request(method, url or concrete(path), content=body, headers=headers)


def check(response: httpx.Response, path: str, what: str, status: int | None = None) -> None:
    where = f"{what}: {response.request.method} {response.request.url.path} -> {response.status_code} {response.text[:300]}"
    if status is not None:
        assert response.status_code == status, where
    assert 400 <= response.status_code < 500, where
    assert_error_format(surface_of(path), response)


DEEP_ARRAY = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
HUGE_ARRAY = b"[" + b"0," * 200_000 + b"0]"
HUGE_ARRAY_FIELD = b'{"items":[' + b'"x",' * 100_000 + b'"x"]}'
BAD_UTF8 = b'{"name": "\xff\xfe\xfd", "userId": "\xc3\x28"}'
LONE_SURROGATE = b'{"name": "\\ud800", "userId": "\\udfff", "email": "\\ud800@x.io", "user_id": "\\ud800"}'

HOSTILE: list[tuple[str, bytes, str]] = [
    ("deeply nested array", DEEP_ARRAY, "application/json"),
    ("deeply nested object", DEEP_OBJECT, "application/json"),
    ("huge top-level array", HUGE_ARRAY, "application/json"),
    ("huge array field", HUGE_ARRAY_FIELD, "application/json"),
    ("invalid UTF-8", BAD_UTF8, "application/json"),
    ("lone surrogates", LONE_SURROGATE, "application/json"),
    ("XML", b"<event><name>x</name></event>", "application/xml"),
    ("form", b"userId=u1&name=x", "application/x-www-form-urlencoded"),
    ("not JSON", b"{nope", "application/json"),
    ("JSON null", b"null", "application/json"),
]


async def test_oversize_bodies_get_413_in_each_surfaces_format(world: World) -> None:
    before = await fingerprint(world)
    big = b'{"x":"' + b"a" * (5 * MIB) + b'"}'  # beyond every limit, the catalog upload's included
    for method, path in write_routes(world):
        check(await send(world, method, path, big), path, "oversize", 413)

    async def dribble() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse up front
        for _ in range(DEFAULT_MAX_BODY_BYTES // 65_536 + 2):
            yield b" " * 65_536

    for method, path in [("POST", "/v1/events"), ("POST", "/api/tasks"), ("POST", "/api/minigame/session"),
                         ("POST", "/api/v1/eggs")]:
        check(await send(world, method, path, dribble()), path, "chunked oversize", 413)
    assert await fingerprint(world) == before


@pytest.mark.parametrize("kind", [h[0] for h in HOSTILE])
async def test_hostile_bodies_get_4xx_and_change_nothing(world: World, kind: str) -> None:
    _, body, content_type = next(h for h in HOSTILE if h[0] == kind)
    before = await fingerprint(world)
    for method, path in write_routes(world):
        check(await send(world, method, path, body, content_type), path, kind)
    assert await fingerprint(world) == before


OUT_OF_RANGE = [10**30, -(10**30), 2**63, 1e308 * 10, -1]


def numeric_bodies(world: World) -> list[tuple[str, str, dict]]:
    """Near-valid bodies whose one number is out of range."""
    out: list[tuple[str, str, dict]] = []
    for n in OUT_OF_RANGE:
        out += [
            ("POST", "/v1/events", {"userId": "u1", "name": "app.opened", "payload": {}, "timestamp": n}),
            ("POST", "/api/tasks", {"taskName": "x", "taskDescription": "y",
                                    "taskStartTime": "2026-03-04T10:00:00.000Z",
                                    "taskEndTime": "2026-03-04T11:00:00.000Z", "XP": n}),
            ("POST", "/api/minigame/result", {"token": "x.y", "score": n, "duration_ms": n, "event_hash": "0" * 64}),
            ("POST", "/api/v1/buddies/nope/coins", {"amount": n, "reason": "x"}),
        ]
    return out


async def test_numbers_out_of_range_get_4xx(world: World) -> None:
    before = await fingerprint(world)
    for method, path, doc in numeric_bodies(world):
        raw = json.dumps(doc).replace("Infinity", "1e400").encode()
        check(await send(world, method, path, raw), path, f"number {doc}")
    assert await fingerprint(world) == before


UNICODE_IDS = ["\U0001f4a5", "caf\u00e9", "\u202eevil", "a%00b", "%00", "..%2F..%2Fetc", "x" * 5000]


async def test_unicode_ids_in_paths_and_bodies_get_4xx(world: World) -> None:
    before = await fingerprint(world)
    for method, path in route_table(all_routes(world.qm)):
        if "{" not in path or any(s in path for s in READ_SKIP) or "{sessionId}" in path:
            continue
        for ident in UNICODE_IDS:
            url = fill(path, ident)
            body = b"{}"
            r = await send(world, method, path, body, url=url) if method != "GET" else await world.client.get(
                url, headers=credentials(world, method, path))
            check(r, path, f"id {ident[:20]!r}")
    bodies = [
        ("POST", "/v1/auth/token", {"appId": "acme", "appSecret": "acme-secret", "userId": "x" * 5000}),
        ("POST", "/v1/auth/token", {"appId": "\U0001f4a5", "appSecret": "acme-secret", "userId": "u1"}),
        ("POST", "/v1/events", {"userId": "\u202eu1", "name": "app.opened", "payload": {}, "timestamp": 1}),
        ("POST", "/api/auth/token", {"tenant_id": "t1", "tenant_secret": "s1-secret", "character_id": "c\u0000"}),
        ("POST", "/api/auth/token", {"tenant_id": "t\u00e9", "tenant_secret": "s1-secret", "character_id": "c1"}),
        ("POST", "/api/minigame/session", {"activity_type": "expedition_accept", "activity_ref_id": "b\U0001f4a5"}),
        ("POST", "/api/questmaster/tokens", {"sessionId": "s\U0001f4a5"}),
        ("POST", "/api/v1/eggs", {"user_id": "x" * 5000}),
    ]
    for method, path, doc in bodies:
        raw = httpx.Request("POST", "http://x", json=doc).content
        check(await send(world, method, path, raw), path, f"body id {doc}")
    assert await fingerprint(world) == before


async def test_limit_is_configurable_and_other_routes_unaffected(world: World) -> None:
    """A smaller limit applies everywhere; bodies under it and bodyless reads still work."""
    reconfigure_front_door(world.app, max_body_bytes=100)
    r = await send(world, "POST", "/api/v1/eggs", b'{"user_id": "' + b"u" * 200 + b'"}')
    check(r, "/api/v1/eggs", "small limit", 413)
    r = await world.client.get("/api/v1/eggs", headers=credentials(world, "GET", "/api/v1/eggs"))
    assert r.status_code == 200, r.text
    r = await send(world, "POST", "/v1/events", b'{"userId":"u1","name":"app.opened","payload":{},"timestamp":1}')
    assert r.status_code == 200, r.text


async def test_hatched_invalid_utf8_without_json_content_type(world: World) -> None:
    """The front door checks UTF-8 only for JSON content types; Hatched decodes whatever it gets."""
    r = await send(world, "POST", "/api/v1/auth/register", BAD_UTF8, "text/plain")
    check(r, "/api/v1/auth/register", "invalid UTF-8 as text/plain")
