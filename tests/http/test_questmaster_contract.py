"""The contract: every response matches the wire Structs the OpenAPI document is built from."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import msgspec
import pytest
from starlette.routing import Route

from questline.actors.questmaster import session_hub
from questline.http import questmaster_wire as wire
from questline.http.questmaster import OPENAPI_PATH, questmaster_routes
from tests.http.questmaster_helpers import (  # noqa: F401 (fixtures)
    AGENT,
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


def conforms(body: Any, shape: type) -> Any:
    """Decode strictly: a missing, mistyped or extra field fails the test."""
    return msgspec.convert(body, type=shape, strict=True)




async def test_openapi_documents_every_route(client: httpx.AsyncClient, clock: Clock) -> None:
    response = await client.get(OPENAPI_PATH)
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1")
    routes = [r.path for r in questmaster_routes(settings(clock)) if isinstance(r, Route)]
    assert sorted(set(routes) - {OPENAPI_PATH}) == sorted(doc["paths"])
    assert set(doc["paths"]["/api/tasks"]) == {"get", "post", "patch", "delete"}
    schemas = doc["components"]["schemas"]
    assert schemas["TaskOut"]["properties"]["XP"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10000,
    }
    post = doc["paths"]["/agents/quest-master-agent/{sessionId}"]["post"]
    assert set(post["requestBody"]["content"]) == {"application/json", "text/plain"}
    assert set(post["responses"]) == {"200", "400", "401", "404", "429"}


async def test_every_response_matches_its_struct(
    client: httpx.AsyncClient, clock: Clock, runtime
) -> None:
    headers = auth(clock, "user-1")
    url = f"{AGENT}/user-1"
    conforms((await client.get(url, headers=headers)).json(), wire.TasksResponse)

    created = await client.post(
        url, headers=headers, json={"tool": "createTask", "params": create_params()}
    )
    task = conforms(created.json(), wire.TaskResponse).task
    updated = await client.post(
        url, headers=headers, json={"tool": "updateTask", "params": {"taskId": task.id, "XP": 60}}
    )
    assert conforms(updated.json(), wire.TaskResponse).task.XP == 60
    done = await client.post(
        url,
        headers=headers,
        json={"tool": "deleteTask", "params": {"taskId": task.id, "addXP": True}},
    )
    conforms(done.json(), wire.CompleteResponse)
    other = conforms(
        (
            await client.post(
                url, headers=headers, json={"tool": "createTask", "params": create_params()}
            )
        ).json(),
        wire.TaskResponse,
    ).task
    gone = await client.post(
        url, headers=headers, json={"tool": "deleteTask", "params": {"taskId": other.id}}
    )
    conforms(gone.json(), wire.AbandonResponse)

    history = conforms(
        (await client.get(url, headers=headers, params={"history": "true"})).json(),
        wire.HistoryResponse,
    )
    assert history.statistics.totalCompleted == 1
    state = conforms((await client.get(url, headers=headers)).json(), wire.TasksResponse)
    assert state.lastCompletionDate == "2026-01-15"

    chat = await client.post(
        url,
        headers={**headers, "Content-Type": "text/plain"},
        content=b"Create a quest to feed the cat by 6pm",
    )
    data = [line[6:] for line in chat.text.split("\n") if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    conforms(json.loads(data[-2]), wire.ChatMetadata)

    for status, response in [
        (401, await client.get(url)),
        (
            404,
            await client.post(
                url, headers=headers, json={"tool": "deleteTask", "params": {"taskId": "x"}}
            ),
        ),
        (400, await client.post(url, headers=headers, json={"tool": "createTask", "params": {}})),
    ]:
        assert response.status_code == status
        conforms(response.json(), wire.ErrorResponse)

    minted = await client.post(
        "/api/questmaster/tokens",
        headers={"Authorization": f"Bearer {SECRET.decode()}"},
        json={"sessionId": "u9"},
    )
    conforms(minted.json(), wire.TokenResponse)

    await asyncio.sleep(0.05)
    for item in (await runtime.call(session_hub("user-1"), "replay", 0))["items"]:
        assert item["event"] == "tasks"
        conforms(item["data"], wire.LiveUpdate)


async def test_extra_fields_would_be_caught() -> None:
    with pytest.raises(msgspec.ValidationError):
        conforms({"error": "x", "message": "y"}, wire.ErrorResponse)
    with pytest.raises(msgspec.ValidationError):
        conforms({"success": True}, wire.CompleteResponse)
