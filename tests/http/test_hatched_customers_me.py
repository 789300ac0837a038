"""The customer's own account over HTTP: ``GET/PATCH /customers/me``,
``PATCH /customers/me/settings`` (strict snake_case, validated, nothing written on
a 400), user-data erasure not being offered, and the event-type registry
(``/event-types`` CRUD kept consistent with ``GET /events/types``)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.http.hatched_support import (  # noqa: F401 - fixtures
    Customer,
    assert_error,
    client_fixture,
    customer_fixture,
    fast_operations_fixture,
    register,
    runtime_fixture,
)


async def me(client: httpx.AsyncClient, customer: Customer) -> dict[str, Any]:
    answer = await client.get("/customers/me", headers=customer.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_me_shows_profile_quota_and_rate_limit(client: httpx.AsyncClient, customer: Customer) -> None:
    body = await me(client, customer)
    assert body["customer_id"] == customer.customer_id and body["plan"] == "free" and body["name"] == "Acme"
    quota = body["event_quota"]
    assert (quota["limit"], quota["used"], quota["remaining"]) == (100_000, 0, 100_000)
    assert re.fullmatch(r"\d{4}-\d{2}", quota["period"]) and quota["reset_at"].endswith("-01T00:00:00Z")
    assert body["rate_limit"] == {"limit": 100, "window_ms": 1000}
    assert body["auth"]["via"] == "secret"
    via_auth = (await client.get("/auth/me", headers=customer.jwt)).json()
    assert via_auth["event_quota"]["used"] == 0 and via_auth["auth"]["via"] == "dashboard"


async def test_patch_me_updates_the_name_and_rejects_unknown_properties(
    client: httpx.AsyncClient, customer: Customer
) -> None:
    answer = await client.patch("/customers/me", json={"name": "Acme Learning"}, headers=customer.auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == "Acme Learning" and "event_quota" in answer.json()
    login = await client.post("/auth/login", json={"email": customer.email, "password": "correct horse"})
    assert login.json()["customer"]["name"] == "Acme Learning"
    for bad, message in (({"name": "X", "displayName": "Y"}, "property displayName should not exist"),
                         ({"email": "new@example.com"}, "property email should not exist"),
                         ({"name": ""}, None), ({"name": 7}, None)):
        refused = await client.patch("/customers/me", json=bad, headers=customer.auth)
        error = assert_error(refused, 400, "validation_error")
        assert message is None or error["message"] == message
    assert (await me(client, customer))["name"] == "Acme Learning"
    publishable = (await client.post("/auth/publishable-keys", json={}, headers=customer.jwt)).json()["key"]
    forbidden = await client.patch("/customers/me", json={"name": "Z"},
                                   headers={"Authorization": f"Bearer {publishable}"})
    assert_error(forbidden, 403, "insufficient_permissions")
    assert (await me(client, customer))["name"] == "Acme Learning"


async def test_patch_settings_merges_validates_and_removes_with_null(
    client: httpx.AsyncClient, customer: Customer
) -> None:
    patch = {"timezone": "Europe/Istanbul", "locale": "tr-TR", "widget_size": "compact",
             "widget_theme_config": {"surface": "paper", "geometry": "rounded", "typography": "sans-serif-modern"}}
    answer = await client.patch("/customers/me/settings", json=patch, headers=customer.auth)
    assert answer.status_code == 200, answer.text
    settings = answer.json()["settings"]
    assert settings["timezone"] == "Europe/Istanbul" and settings["locale"] == "tr-TR"
    assert settings["widget_theme_config"]["surface"] == "paper" and settings["widget_theme_config"]["iconography"] is None
    second = await client.patch("/customers/me/settings", json={"locale": None, "widget_size": "large"},
                                headers=customer.auth)
    assert second.status_code == 200
    settings = second.json()["settings"]
    assert "locale" not in settings and settings["widget_size"] == "large" and settings["timezone"] == "Europe/Istanbul"

    refusals = [
        ({"timezone": "Mars/Olympus"}, "property timezone: unknown time zone Mars/Olympus"),
        ({"widgetSize": "large"}, "property widgetSize should not exist"),
        ({"widget_theme_config": {"surface": "paper", "cornerRadius": 4}},
         "property widget_theme_config.cornerRadius should not exist"),
        ({"widget_size": "huge"}, None),
        ({"locale": "english"}, None),
        ({"widget_custom_css": "@import url(https://evil.example/x.css);"}, None),
        ({"widget_custom_css": ".b{background:url(https://evil.example/t.png)}"}, None),
    ]
    for bad, message in refusals:
        refused = await client.patch("/customers/me/settings", json=bad, headers=customer.auth)
        error = assert_error(refused, 400, "validation_error")
        assert message is None or error["message"] == message, error
    assert (await me(client, customer))["settings"] == settings  # nothing changed by any refusal
    css = await client.patch("/customers/me/settings", json={"widget_custom_css": ".buddy{color:#333}"},
                             headers=customer.auth)
    assert css.status_code == 200 and css.json()["settings"]["widget_custom_css"] == ".buddy{color:#333}"


async def test_user_data_erasure_is_not_offered(client: httpx.AsyncClient, customer: Customer) -> None:
    """Not routed rather than half done (see customers_me): the envelope's 404, nothing deleted."""
    await client.post("/events", json={"event_id": "keep", "user_id": "user_1", "type": "t"}, headers=customer.auth)
    answer = await client.delete("/customers/me/users/user_1/data", headers=customer.auth)
    assert_error(answer, 404, "not_found")
    assert (await client.get("/events/keep", headers=customer.auth)).status_code == 200


# -- event types ---------------------------------------------------------------------------
async def test_event_types_crud_and_consistency_with_seen_types(
    client: httpx.AsyncClient, customer: Customer
) -> None:
    created = await client.post("/event-types", json={"name": "lesson_completed", "description": "A lesson"},
                                headers=customer.auth)
    assert created.status_code == 201, created.text
    entry = created.json()
    assert entry["name"] == "lesson_completed" and entry["count"] == 0 and entry["last_seen_at"] is None
    type_id = entry["id"]
    assert_error(await client.post("/event-types", json={"name": "lesson_completed"}, headers=customer.auth),
                 409, "event_type_exists")
    for n in range(2):
        sent = await client.post("/events", json={"event_id": f"e{n}", "user_id": "u", "type": "lesson_completed"},
                                 headers=customer.auth)
        assert sent.status_code == 200
    await client.post("/events", json={"event_id": "q1", "user_id": "u", "type": "quiz_passed"},
                      headers=customer.auth)

    listed = (await client.get("/event-types", headers=customer.auth)).json()
    assert listed["meta"] == {"page": 1, "limit": 20, "total": 1}
    assert [(t["id"], t["count"]) for t in listed["data"]] == [(type_id, 2)]
    seen = (await client.get("/events/types", headers=customer.auth)).json()["data"]
    assert [(t["type"], t["count"], t["registered"], t["event_type_id"]) for t in seen] == [
        ("lesson_completed", 2, True, type_id), ("quiz_passed", 1, False, None)]

    got = await client.get(f"/event-types/{type_id}", headers=customer.auth)
    assert got.status_code == 200 and got.json()["description"] == "A lesson" and got.json()["count"] == 2
    quiz = (await client.post("/event-types", json={"name": "quiz_passed"}, headers=customer.auth)).json()
    assert quiz["count"] == 1
    assert_error(await client.put(f"/event-types/{type_id}", json={"name": "quiz_passed"}, headers=customer.auth),
                 409, "event_type_exists")
    renamed = await client.put(f"/event-types/{type_id}", json={"name": "lesson_done"}, headers=customer.auth)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["id"] == type_id and renamed.json()["description"] is None and renamed.json()["count"] == 0
    seen = {t["type"]: t for t in (await client.get("/events/types", headers=customer.auth)).json()["data"]}
    assert seen["lesson_completed"]["registered"] is False and seen["quiz_passed"]["event_type_id"] == quiz["id"]

    deleted = await client.delete(f"/event-types/{type_id}", headers=customer.auth)
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert_error(await client.get(f"/event-types/{type_id}", headers=customer.auth), 404, "event_type_not_found")
    assert_error(await client.delete(f"/event-types/{type_id}", headers=customer.auth), 404, "event_type_not_found")
    assert [t["name"] for t in (await client.get("/event-types", headers=customer.auth)).json()["data"]] == [
        "quiz_passed"]


async def test_event_types_are_validated_and_private_to_the_customer(
    client: httpx.AsyncClient, customer: Customer
) -> None:
    for bad in ({}, {"name": ""}, {"name": "x" * 101}, {"name": "ok", "displayName": "Ok"},
                {"name": "ok", "description": "d" * 501}):
        assert_error(await client.post("/event-types", json=bad, headers=customer.auth), 400, "validation_error")
    assert (await client.get("/event-types", headers=customer.auth)).json()["data"] == []
    mine = (await client.post("/event-types", json={"name": "ok"}, headers=customer.auth)).json()
    other = await register(client)
    assert_error(await client.get(f"/event-types/{mine['id']}", headers=other.auth), 404, "event_type_not_found")
    assert_error(await client.put(f"/event-types/{mine['id']}", json={"name": "x"}, headers=other.auth),
                 404, "event_type_not_found")
    assert (await client.get("/event-types", headers=other.auth)).json()["data"] == []
    assert_error(await client.put(f"/event-types/{mine['id']}", json={"description": "no name"},
                                  headers=customer.auth), 400, "validation_error")
    assert (await client.get(f"/event-types/{mine['id']}", headers=customer.auth)).json()["name"] == "ok"
