"""QuestKit helpers shared by the ``events``, ``read`` (and later ``sse``/``mixed``) scenarios.

Written against the documented contract (seeds 000/001 and
shared/reference/questkit.md): tokens from ``POST /v1/auth/token``
{appId, appSecret, userId} -> {token, expiresAt}; the catalog discovered from
``GET /v1/missions`` -> {missions: [Mission], progress}. If the server does not
serve those routes, :class:`ScenarioUnavailable` says so; nothing is measured.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from benchmarks.client import Connection, Endpoint, HTTPError, encode_request, fetch, parse_url
from benchmarks.harness import Harness, ScenarioUnavailable, Target

MINT_CONNECTIONS = 32
MAX_TEMPLATES = 16
FALLBACK_EVENT: dict[str, Any] = {"name": "bench.ping", "payload": {"source": "questline-bench"}}
NOT_SERVED = (404, 405)


def _json_headers(token: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _snippet(body: bytes) -> str:
    return body[:200].decode("utf-8", "replace")


def user_id(h: Harness, index: int, group: str = "") -> str:
    return f"bench-{h.run_tag}-{group}{index:05d}"


async def _mint_one(conn: Connection, ep: Endpoint, prefix: str, app_id: str, secret: str, uid: str) -> str:
    body = msgspec.json.encode({"appId": app_id, "appSecret": secret, "userId": uid})
    status, raw = await conn.request(
        encode_request("POST", f"{prefix}/v1/auth/token", ep.authority, headers=_json_headers(), body=body)
    )
    if status != 200:
        raise ScenarioUnavailable(f"POST /v1/auth/token answered {status}: {_snippet(raw)}")
    token = msgspec.json.decode(raw).get("token")
    if not isinstance(token, str):
        raise ScenarioUnavailable(f"POST /v1/auth/token answered without a token: {_snippet(raw)}")
    return token


def check_auth(h: Harness, target: Target) -> None:
    """Fail clearly unless the server serves QuestKit's token route and knows the app."""
    assert target.url is not None
    ep, prefix = parse_url(target.url)
    s = h.settings
    body = msgspec.json.encode({"appId": s.app_id, "appSecret": s.app_secret, "userId": user_id(h, 0)})
    try:
        status, raw = asyncio.run(fetch(ep, "POST", f"{prefix}/v1/auth/token", headers=_json_headers(), body=body))
    except (HTTPError, OSError, TimeoutError) as exc:
        raise ScenarioUnavailable(f"POST /v1/auth/token failed: {exc}") from None
    if status in NOT_SERVED:
        raise ScenarioUnavailable("server has no POST /v1/auth/token: QuestKit surface not available")
    if status == 401:
        raise ScenarioUnavailable(
            f"the server does not know app {s.app_id!r} with that secret (401 {_snippet(raw)}); "
            "start it with the demo catalog or pass --app-id/--app-secret"
        )
    if status != 200:
        raise ScenarioUnavailable(f"POST /v1/auth/token answered {status}: {_snippet(raw)}")


def check_route(target: Target, token: str, method: str, path: str, body: bytes | None = None) -> None:
    """Fail clearly when ``method path`` is not served (404/405); any other answer means it is."""
    assert target.url is not None
    ep, prefix = parse_url(target.url)
    try:
        status, raw = asyncio.run(
            fetch(ep, method, prefix + path, headers=_json_headers(token), body=body)
        )
    except (HTTPError, OSError, TimeoutError) as exc:
        raise ScenarioUnavailable(f"{method} {path} failed: {exc}") from None
    if status in NOT_SERVED:
        raise ScenarioUnavailable(f"server has no {method} {path}: QuestKit surface not available")
    if status >= 500:
        raise ScenarioUnavailable(f"{method} {path} answered {status}: {_snippet(raw)}")


def tokens(h: Harness, target: Target, users: int, group: str = "") -> list[tuple[str, str]]:
    """``[(userId, token)]`` for ``users`` users, minted once per server (progress bar).

    ``group`` names a separate set of users (the ``sse`` scenario needs users whose
    missions no other scenario has touched)."""
    cache_key = f"tokens{group}"
    cached: list[tuple[str, str]] = target.cache.get(cache_key, [])
    if len(cached) >= users:
        return cached[:users]
    check_auth(h, target)
    assert target.url is not None
    ep, prefix = parse_url(target.url)
    s = h.settings
    todo = [user_id(h, i, group) for i in range(len(cached), users)]
    minted: dict[str, str] = {}
    bar = h.bar(f"minting tokens for {users:,} users", len(todo), unit=" tokens")
    if bar.disable:
        h.note(f"minting tokens for {users:,} users ...")

    async def mint_all() -> None:
        queue = list(reversed(todo))

        async def worker() -> None:
            conn = Connection(ep)
            try:
                while queue:
                    uid = queue.pop()
                    minted[uid] = await _mint_one(conn, ep, prefix, s.app_id, s.app_secret, uid)
                    bar.update(1)
            finally:
                conn.close()

        await asyncio.gather(*(worker() for _ in range(min(MINT_CONNECTIONS, len(todo)))))

    try:
        asyncio.run(mint_all())
    except (HTTPError, OSError) as exc:
        raise ScenarioUnavailable(f"minting tokens failed: {exc}") from None
    finally:
        bar.close()
    cached = cached + [(uid, minted[uid]) for uid in todo]
    target.cache[cache_key] = cached
    return cached


def payload_matching(filter_: dict[str, Any] | None) -> dict[str, Any]:
    """A payload that satisfies a MissionCriteria filter (one clause per key, AND)."""
    payload: dict[str, Any] = {}
    for key, clause in (filter_ or {}).items():
        if not isinstance(clause, dict) or len(clause) != 1:
            continue
        (op, value), = clause.items()
        if op in ("eq", "gte", "lte"):
            payload[key] = value
        elif op == "gt":
            payload[key] = value + 1
        elif op == "lt":
            payload[key] = value - 1
        elif op == "in" and isinstance(value, list) and value:
            payload[key] = value[0]
    return payload


def event_templates(h: Harness, target: Target, token: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Events that progress the app's missions, from ``GET /v1/missions`` (cached per server).

    Returns (templates, warnings)."""
    if "event_templates" in target.cache:
        return target.cache["event_templates"], []
    assert target.url is not None
    ep, prefix = parse_url(target.url)
    status, raw = asyncio.run(fetch(ep, "GET", f"{prefix}/v1/missions", headers=_json_headers(token)))
    warnings: list[str] = []
    templates: list[dict[str, Any]] = []
    if status == 200:
        missions = msgspec.json.decode(raw).get("missions") or []
        seen: set[bytes] = set()
        for mission in missions:
            criteria = mission.get("criteria") or {}
            name = criteria.get("eventName")
            if not isinstance(name, str):
                continue
            template = {"name": name, "payload": payload_matching(criteria.get("filter"))}
            key = msgspec.json.encode(template)
            if key not in seen:
                seen.add(key)
                templates.append(template)
    else:
        warnings.append(f"GET /v1/missions answered {status}; events use a generic name")
    if not templates:
        warnings.append("the app's catalog has no missions: events exercise ingest only, no mission progress")
        templates = [FALLBACK_EVENT]
    templates = templates[:MAX_TEMPLATES]
    target.cache["event_templates"] = templates
    return templates, warnings


BENCH_MISSION: dict[str, Any] = {
    "id": "questline-bench-tick",
    "title": "questline bench counter",
    "description": "Added by `questline bench` to a server it started: every tick progresses it.",
    "criteria": {"eventName": "questline.bench.tick", "count": 1_000_000_000},
    "reward": {"kind": "badge", "badgeId": "questline-bench"},
}
BENCH_EVENT: dict[str, Any] = {"name": "questline.bench.tick", "payload": {}}


def install_bench_mission(h: Harness, target: Target) -> str | None:
    """Add :data:`BENCH_MISSION` to the app's catalog (``GET``/``PUT /v1/admin/catalog``,
    ``Authorization: Bearer <appSecret>``) so every bench event changes exactly one
    mission. Only on a server the harness started itself; returns why not, or None."""
    if target.server_pid is None:
        return "not changing the catalog of a server this run did not start"
    if target.cache.get("bench_mission"):
        return None
    assert target.url is not None
    ep, prefix = parse_url(target.url)
    s = h.settings
    headers = {"Authorization": f"Bearer {s.app_secret}", "Content-Type": "application/json"}
    path = f"{prefix}/v1/admin/catalog?appId={s.app_id}"
    try:
        status, raw = asyncio.run(fetch(ep, "GET", path, headers=headers))
        if status != 200:
            return f"GET /v1/admin/catalog answered {status}: {_snippet(raw)}"
        catalog = msgspec.json.decode(raw)
        missions = list(catalog.get("missions") or [])
        if not any(m.get("id") == BENCH_MISSION["id"] for m in missions):
            body = msgspec.json.encode(
                {"appId": s.app_id, "missions": [*missions, BENCH_MISSION],
                 "campaigns": list(catalog.get("campaigns") or [])}
            )
            status, raw = asyncio.run(fetch(ep, "PUT", path, headers=headers, body=body))
            if status not in (200, 201, 204):
                return f"PUT /v1/admin/catalog answered {status}: {_snippet(raw)}"
    except (HTTPError, OSError, TimeoutError, msgspec.DecodeError, AttributeError) as exc:
        return f"the admin catalog could not be changed ({exc})"
    target.cache["bench_mission"] = True
    return None
