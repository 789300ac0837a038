"""The frontend proxy (/api/tasks, /api/chat), token minting, CORS and settings."""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from questline.http import questmaster as qmhttp
from questline.http.questmaster import (
    COOKIE_NAME,
    QuestMasterConfigError,
    QuestMasterSettings,
    mint_session_cookie,
)
from questline.rules.questmaster import derived_key, sign_token, verify_token
from tests.http.questmaster_helpers import (  # noqa: F401 (fixtures)
    AGENT,
    NY,
    SECRET,
    Clock,
    app_for,
    auth,
    client_fixture,
    client_for,
    clock_fixture,
    create_params,
    runtime_fixture,
    settings,
)

SIGN_IN = {"error": "Unauthorized. Please sign in."}




@pytest.fixture
async def demo_client(runtime, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app_for(runtime, settings(clock, demo=True))) as c:
        yield c


async def sign_in(client: httpx.AsyncClient, session: str = "user-1") -> dict:
    """What the trusted frontend does: mint with the server secret, hand the cookie to the browser."""
    response = await client.post(
        "/api/questmaster/tokens",
        headers={"Authorization": f"Bearer {SECRET.decode()}"},
        json={"sessionId": session},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    client.cookies.set(COOKIE_NAME, body["sessionCookie"]["value"])
    return body


# --------------------------------------------------------------------------- proxy


async def test_proxy_requires_a_session(client: httpx.AsyncClient) -> None:
    for method in ("GET", "POST", "PATCH", "DELETE"):
        response = await client.request(method, "/api/tasks", json={})
        assert response.status_code == 401, method
        assert response.json() == SIGN_IN
    response = await client.post("/api/chat", content=b"hi", headers={"Content-Type": "text/plain"})
    assert response.status_code == 401
    assert response.json() == SIGN_IN


async def test_proxy_crud_reaches_the_same_session_as_the_agent(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    await sign_in(client)
    created = await client.post("/api/tasks", json=create_params(xp=70), headers={"x-timezone": NY})
    assert created.status_code == 200
    assert created.headers["x-ratelimit-limit"] == "60"
    task = created.json()["task"]
    # The frontend's {tool, params} form is accepted too.
    updated = await client.patch(
        "/api/tasks",
        json={
            "tool": "updateTask",
            "params": {"taskId": task["id"], "endTime": "2026-01-15T21:00:00.000Z"},
        },
    )
    assert updated.status_code == 200
    assert updated.json()["task"]["endTime"] == "2026-01-15T21:00:00.000Z"
    listed = await client.get("/api/tasks")
    assert [t["id"] for t in listed.json()["tasks"]] == [task["id"]]
    agent_view = await client.get(f"{AGENT}/user-1", headers=auth(clock, "user-1"))
    assert agent_view.json()["tasks"] == listed.json()["tasks"]
    deleted = await client.request(
        "DELETE", "/api/tasks", json={"taskId": task["id"], "addXP": True}
    )
    assert deleted.status_code == 200
    assert deleted.json()["xpEarned"] == 70
    history = await client.get("/api/tasks", params={"history": "true"})
    assert history.json()["statistics"]["totalCompleted"] == 1
    # DELETE without addXP abandons (the seed's bare {taskId} body).
    other = (await client.post("/api/tasks", json=create_params(xp=40))).json()["task"]
    gone = await client.request("DELETE", "/api/tasks", json={"taskId": other["id"]})
    assert gone.json() == {"success": True}
    assert (await client.get("/api/tasks")).json()["totalXP"] == 50
    missing = await client.request("DELETE", "/api/tasks", json={"taskId": other["id"]})
    assert missing.status_code == 404
    assert missing.json() == {"error": "Task not found"}


@pytest.mark.parametrize(
    ("method", "doc", "error"),
    [
        (
            "POST",
            {"tool": "deleteTask", "params": {"taskId": "x"}},
            "Invalid request: expected tool createTask with params",
        ),
        ("PATCH", {"tool": "updateTask"}, "Invalid request: expected tool updateTask with params"),
        ("POST", [1], "Invalid request: expected a JSON object"),
        (
            "POST",
            {**create_params(), "XP": 0},
            "Task validation failed: XP must be a number between 1 and 10000",
        ),
        (
            "PATCH",
            {"endTime": "2026-01-15T21:00:00.000Z"},
            "Task validation failed: taskId is required",
        ),
    ],
)
async def test_proxy_bad_bodies(
    client: httpx.AsyncClient, method: str, doc: object, error: str
) -> None:
    await sign_in(client)
    response = await client.request(method, "/api/tasks", json=doc)
    assert response.status_code == 400
    assert response.json() == {"error": error}
    response = await client.post(
        "/api/tasks", content=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert response.json() == {"error": "Invalid JSON body"}


async def test_proxy_refuses_forged_and_expired_cookies(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    cookie_key = derived_key(SECRET, "proxy-session")
    forged = [
        sign_token(b"not-the-secret", "user-1", clock()),
        sign_token(SECRET, "user-1", clock()),  # an agent token is not a cookie
        mint_session_cookie(settings(clock), "user-1")[:-1] + "0",
        sign_token(cookie_key, "user-1", clock() - 30 * 86_400_000 - 1),
        "garbage",
    ]
    for value in forged:
        client.cookies.set(COOKIE_NAME, value)
        response = await client.get("/api/tasks")
        assert response.status_code == 401, value
        assert response.json() == SIGN_IN
    client.cookies.set(COOKIE_NAME, sign_token(cookie_key, "user-1", clock() - 30 * 86_400_000))
    assert (await client.get("/api/tasks")).status_code == 200


async def test_proxy_accepts_an_agent_bearer_token(client: httpx.AsyncClient, clock: Clock) -> None:
    response = await client.get("/api/tasks", headers=auth(clock, "user-7"))
    assert response.status_code == 200
    expired = auth(clock, "user-7")
    clock.advance(300_001)
    assert (await client.get("/api/tasks", headers=expired)).status_code == 401


async def test_proxy_rate_limit_is_the_sessions(client: httpx.AsyncClient, clock: Clock) -> None:
    await sign_in(client)
    for _ in range(60):
        assert (await client.get("/api/tasks")).status_code == 200
    limited = await client.get("/api/tasks")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "60"
    # The agent route shares the session's window.
    assert (await client.get(f"{AGENT}/user-1", headers=auth(clock, "user-1"))).status_code == 429


async def test_demo_mode_gives_anonymous_visitors_a_session(demo_client: httpx.AsyncClient) -> None:
    first = await demo_client.post("/api/tasks", json=create_params())
    assert first.status_code == 200
    set_cookie = first.headers["set-cookie"]
    assert set_cookie.startswith(f"{COOKIE_NAME}=")
    assert (
        "HttpOnly" in set_cookie
        and "Path=/api" in set_cookie
        and "samesite=lax" in set_cookie.lower()
    )
    # httpx keeps the cookie: the next request is the same session.
    again = await demo_client.get("/api/tasks")
    assert [t["name"] for t in again.json()["tasks"]] == ["Slay the dragon"]
    assert "set-cookie" not in again.headers
    # A stranger gets a different, empty session.
    demo_client.cookies.clear()
    stranger = await demo_client.get("/api/tasks")
    assert stranger.json()["tasks"] == []


# --------------------------------------------------------------------------- minting


async def test_mint_endpoint(client: httpx.AsyncClient, clock: Clock) -> None:
    body = await sign_in(client, "user-5")
    assert body["sessionId"] == "user-5"
    assert body["expiresAt"] == clock() + 300_000
    assert verify_token(SECRET, body["token"], clock()) == "user-5"
    assert body["sessionCookie"]["name"] == COOKIE_NAME
    assert body["sessionCookie"]["maxAge"] == 30 * 86_400
    response = await client.get(
        f"{AGENT}/user-5", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("headers", "doc", "status"),
    [
        ({}, {"sessionId": "u"}, 401),
        ({"Authorization": "Bearer wrong"}, {"sessionId": "u"}, 401),
        ({"Authorization": f"Bearer {SECRET.decode()}x"}, {"sessionId": "u"}, 401),
        ({"Authorization": f"Bearer {SECRET.decode()}"}, {"sessionId": "has space"}, 400),
        ({"Authorization": f"Bearer {SECRET.decode()}"}, {"sessionId": ""}, 400),
        ({"Authorization": f"Bearer {SECRET.decode()}"}, {}, 400),
    ],
)
async def test_mint_refusals(
    client: httpx.AsyncClient, headers: dict, doc: dict, status: int
) -> None:
    response = await client.post("/api/questmaster/tokens", headers=headers, json=doc)
    assert response.status_code == status
    assert "error" in response.json()
    assert "token" not in response.json()


def test_cli_mints_tokens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    qmhttp.add_questmaster_token(parser.add_subparsers())
    monkeypatch.setenv("QUESTLINE_QUESTMASTER_SECRET", "cli-secret")
    args = parser.parse_args(["questmaster-token", "user-3"])
    assert args.handler(args, []) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("user-3:")
    assert verify_token(b"cli-secret", token, int(token.split(":")[1])) == "user-3"
    args = parser.parse_args(["questmaster-token", "user-3", "--cookie"])
    assert args.handler(args, []) == 0
    cookie = capsys.readouterr().out.strip()
    assert (
        verify_token(derived_key(b"cli-secret", "proxy-session"), cookie, int(cookie.split(":")[1]))
        == "user-3"
    )
    monkeypatch.delenv("QUESTLINE_QUESTMASTER_SECRET")
    monkeypatch.delenv("QUESTLINE_DEMO", raising=False)
    assert args.handler(args, []) == 2
    assert "QUESTLINE_QUESTMASTER_SECRET" in capsys.readouterr().err


# --------------------------------------------------------------------------- CORS


async def test_cors_preflight_and_exposed_headers(client: httpx.AsyncClient) -> None:
    for path in ("/api/tasks", "/api/chat", f"{AGENT}/user-1"):
        response = await client.options(
            path,
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, x-timezone",
            },
        )
        assert response.status_code == 200, path
        assert response.headers["access-control-allow-origin"] == "*"
        allowed = response.headers["access-control-allow-headers"].lower()
        assert "x-timezone" in allowed and "authorization" in allowed
    response = await client.get("/api/tasks", headers={"Origin": "https://app.example"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "x-ratelimit-remaining" not in response.headers  # 401: no session yet
    assert "X-RateLimit-Remaining" in response.headers["access-control-expose-headers"]


async def test_cors_with_named_origins_allows_credentials(runtime, clock: Clock) -> None:
    app = app_for(runtime, settings(clock, cors_origins=("https://app.example",)))
    async with client_for(app) as client:
        ok = await client.options(
            "/api/tasks",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "PATCH"},
        )
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        assert ok.headers["access-control-allow-credentials"] == "true"
        refused = await client.options(
            "/api/tasks",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PATCH"},
        )
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers


# --------------------------------------------------------------------------- settings


def test_settings_require_a_secret_outside_the_demo(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(QuestMasterConfigError, match="QUESTLINE_QUESTMASTER_SECRET"):
        QuestMasterSettings.from_env({})
    with pytest.raises(QuestMasterConfigError):
        QuestMasterSettings.from_env({"QUESTLINE_QUESTMASTER_SECRET": "  ", "QUESTLINE_DEMO": "0"})
    with caplog.at_level(logging.WARNING, logger="questline.http.questmaster"):
        demo = QuestMasterSettings.from_env({"QUESTLINE_DEMO": "1"})
    assert demo.demo and demo.secret == qmhttp.DEMO_SECRET.encode()
    assert any("demo secret" in r.getMessage() for r in caplog.records)
    real = QuestMasterSettings.from_env(
        {
            "QUESTLINE_QUESTMASTER_SECRET": "s3cret",
            "QUESTLINE_QUESTMASTER_CORS_ORIGINS": "https://a.example, https://b.example",
            "QUESTLINE_QUESTMASTER_COOKIE_SECURE": "true",
        }
    )
    assert real.secret == b"s3cret" and not real.demo and real.cookie_secure
    assert real.cors_origins == ("https://a.example", "https://b.example")
    assert (real.chat_limit, real.task_limit, real.window_ms) == (30, 60, 60_000)
