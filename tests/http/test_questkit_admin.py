"""Catalogs: PUT/GET /v1/admin/catalog, loading catalog files, and the demo app."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import httpx
import pytest

from questline.actors.questkit import QUESTKIT_ACTORS
from questline.demo.questkit import DEMO_CATALOG_PATH, demo_curl_sequence
from questline.http.app import create_app
from questline.http.questkit import questkit_routes
from questline.questkit_catalog import CatalogFileError, install_catalogs, parse_catalog_file
from tests.http.live import live_server
from tests.http.questkit_support import (  # noqa: F401
    APP,
    QK,
    SECRET,
    acme_campaigns,
    acme_missions,
    catalog_file,
    make_qk_fixture,
    mission,
    qk_fixture,
)


def admin(secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def get_catalog(qk: QK, secret: str = SECRET, app: str = APP) -> httpx.Response:
    return await qk.http.get("/v1/admin/catalog", params={"appId": app}, headers=admin(secret))


async def put_catalog(qk: QK, doc, secret: str = SECRET) -> httpx.Response:
    return await qk.http.put("/v1/admin/catalog", json=doc, headers=admin(secret))


def new_catalog() -> dict:
    missions = [m for m in acme_missions() if m["id"] in ("open-daily", "open-weekly")]
    missions[0]["criteria"]["count"] = 3
    missions.append(mission("new-one", "app.opened", 1))
    return {"appId": APP, "missions": missions, "campaigns": []}


async def test_get_catalog_requires_the_app_secret(qk: QK):
    r = await qk.http.get("/v1/admin/catalog", params={"appId": APP})
    assert (r.status_code, r.json()["error"]) == (401, "unauthorized")
    r = await get_catalog(qk, secret="wrong")
    assert (r.status_code, r.json()["error"]) == (401, "invalid_credentials")
    r = await get_catalog(qk, secret="beta-secret")  # another app's secret
    assert (r.status_code, r.json()["error"]) == (401, "invalid_credentials")
    r = await qk.http.get("/v1/admin/catalog", headers=admin())
    assert (r.status_code, r.json()["error"]) == (400, "validation_error")
    r = await get_catalog(qk)
    assert r.status_code == 200
    body = r.json()
    assert body["appId"] == APP and body["version"] == 1
    assert [m["id"] for m in body["missions"]] == [m["id"] for m in acme_missions()]
    assert body["campaigns"] == acme_campaigns()


async def test_replacing_the_catalog_keeps_users_progress(qk: QK):
    token = await qk.token()
    await qk.event(token, "app.opened")
    await qk.event(token, "app.opened")  # open-daily completed (2/2), open-weekly 2/3
    r = await put_catalog(qk, new_catalog())
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    assert [m["id"] for m in r.json()["missions"]] == ["open-daily", "open-weekly", "new-one"]
    # Seen at once by this front door.
    missions = (await qk.get(token, "/v1/missions")).json()
    assert [m["id"] for m in missions["missions"]] == ["open-daily", "open-weekly", "new-one"]
    weekly = missions["progress"]["open-weekly"]
    assert (weekly["currentCount"], weekly["targetCount"]) == (2, 3)
    daily = missions["progress"]["open-daily"]
    assert (daily["status"], daily["currentCount"], daily["targetCount"]) == ("completed", 2, 3)
    assert (await qk.get(token, "/v1/missions/open-once")).status_code == 404
    r = await qk.event(token, "app.opened")
    assert r.json()["missionsUpdated"] == ["open-weekly", "new-one"]
    # Putting the old catalog back brings the old mission back with its progress intact.
    old = {"appId": APP, "missions": acme_missions(), "campaigns": acme_campaigns()}
    assert (await put_catalog(qk, old)).json()["version"] == 3
    assert (await qk.progress(token, "open-once"))["status"] == "completed"


async def test_same_catalog_does_not_bump_the_version(qk: QK):
    current = (await get_catalog(qk)).json()
    current.pop("version")
    r = await put_catalog(qk, current)
    assert r.status_code == 200 and r.json()["version"] == 1


def bad_catalogs() -> list[tuple[dict | str, str]]:
    def with_mission(**changes) -> dict:
        m = mission("x", "e")
        for path, value in changes.items():
            node = m
            *parents, leaf = path.split("__")
            for p in parents:
                node = node[p]
            node[leaf] = value
        return {"appId": APP, "missions": [m], "campaigns": []}

    return [
        (with_mission(criteria__filter={"amount": {"like": 5}}), "$.missions[0].criteria.filter.amount"),
        (with_mission(criteria__filter={"amount": {"gte": 1, "lte": 9}}), "$.missions[0].criteria.filter.amount"),
        (with_mission(criteria__count=0), "$.missions[0].criteria.count"),
        (with_mission(criteria__window="monthly"), "$.missions[0].criteria.window"),
        (with_mission(reward={"kind": "points", "amount": 1}), "$.missions[0].reward"),
        (with_mission(reward={"kind": "currency", "currency": "coins", "amount": -1}), "$.missions[0].reward.amount"),
        ({"appId": APP, "missions": [mission("x", "e"), mission("x", "f")], "campaigns": []}, "$.missions[1].id"),
        ({"appId": APP, "missions": [], "campaigns": [{**acme_campaigns()[1], "missionIds": ["ghost"]}]},
         "$.campaigns[0].missionIds[0]"),
        ({"appId": APP, "missions": "nope"}, "$.missions"),
    ]


@pytest.mark.parametrize("doc,field", bad_catalogs())
async def test_invalid_catalog_is_400_naming_the_field_and_changes_nothing(qk: QK, doc, field):
    r = await put_catalog(qk, doc)
    assert r.status_code == 400
    assert r.json()["error"] == "validation_error"
    assert field in r.json()["message"]
    after = (await get_catalog(qk)).json()
    assert after["version"] == 1 and len(after["missions"]) == len(acme_missions())


async def test_put_errors(qk: QK):
    r = await qk.http.put("/v1/admin/catalog", json=new_catalog())
    assert (r.status_code, r.json()["error"]) == (401, "unauthorized")
    assert (await put_catalog(qk, new_catalog(), secret="wrong")).status_code == 401
    r = await put_catalog(qk, {**new_catalog(), "appId": "nope"})
    assert (r.status_code, r.json()["error"]) == (401, "invalid_credentials")
    r = await qk.http.put("/v1/admin/catalog", content=b"{nope", headers=admin())
    assert (r.status_code, r.json()["error"]) == (400, "validation_error")
    r = await put_catalog(qk, {"missions": []})
    assert (r.status_code, r.json()["error"]) == (400, "validation_error")
    r = await qk.http.put("/v1/admin/catalog", json=new_catalog(), params={"appId": "beta"}, headers=admin())
    assert (r.status_code, r.json()["error"]) == (400, "validation_error")
    assert (await get_catalog(qk)).json()["version"] == 1


async def test_other_front_doors_see_a_new_catalog_within_a_second(qk: QK):
    """A second app object on the same runtime stands in for another front-door process."""
    other_app = create_app(qk.runtime, extra_routes=questkit_routes(), manage_runtime=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other_app), base_url="http://other") as other:
        token = await qk.token()
        auth = {"Authorization": f"Bearer {token}"}
        assert len((await other.get("/v1/missions", headers=auth)).json()["missions"]) == len(acme_missions())
        assert (await put_catalog(qk, new_catalog())).status_code == 200
        await asyncio.sleep(1.05)
        assert len((await other.get("/v1/missions", headers=auth)).json()["missions"]) == 3


async def test_reinstalling_the_file_is_idempotent_and_keeps_progress(qk: QK, tmp_path: Path):
    token = await qk.token()
    await qk.event(token, "app.opened")
    path = catalog_file(tmp_path)
    results = await install_catalogs(qk.runtime, path)
    assert [(r["appId"], r["created"], r["changed"], r["version"]) for r in results] == [
        ("acme", False, False, 1), ("beta", False, False, 1)]
    assert (await qk.progress(token, "open-once"))["status"] == "completed"

    changed = catalog_file(tmp_path, acme_missions_override=new_catalog()["missions"], acme_secret="rotated")
    results = await install_catalogs(qk.runtime, changed)
    assert (results[0]["changed"], results[0]["version"], results[0]["secretChanged"]) == (True, 2, True)
    # Old tokens stay valid (the signing key is not the app secret); the new secret mints.
    assert (await qk.progress(token, "open-weekly"))["currentCount"] == 1
    bad = await qk.http.post("/v1/auth/token", json={"appId": APP, "appSecret": SECRET, "userId": "u1"})
    assert bad.status_code == 401
    assert await qk.token(secret="rotated")


async def test_a_bad_file_installs_nothing(qk: QK, tmp_path: Path):
    doc = json.loads(catalog_file(tmp_path).read_text())
    doc["apps"][0]["missions"] = new_catalog()["missions"]
    doc["apps"][0]["campaigns"] = []
    doc["apps"][1]["missions"][0]["criteria"]["count"] = 0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(CatalogFileError, match=r"beta.*criteria.count"):
        await install_catalogs(qk.runtime, path)
    assert (await get_catalog(qk)).json()["version"] == 1
    for broken, message in (
        ('{"apps": [{"appId": "a/b", "appSecret": "s"}]}', "appId"),
        ('{"apps": [{"appId": "a"}]}', "appSecret"),
        ('{"apps": [{"appId": "a", "appSecretEnv": "QL_TEST_UNSET_VAR"}]}', "QL_TEST_UNSET_VAR"),
        ('{"apps": [{"appId": "a", "appSecret": "s"}, {"appId": "a", "appSecret": "s"}]}', "duplicate"),
        ("[]", "apps"),
        ("{nope", "not valid"),
    ):
        path.write_text(broken)
        with pytest.raises(CatalogFileError, match=message):
            parse_catalog_file(path, environ={})


async def test_yaml_catalog_file(make_runtime, tmp_path: Path):
    path = tmp_path / "apps.yaml"
    path.write_text(
        "apps:\n"
        "  - appId: yamlapp\n"
        "    appSecretEnv: YAML_APP_SECRET\n"
        "    missions:\n"
        "      - id: hello\n"
        "        title: Hello\n"
        "        description: Say hello\n"
        "        criteria: {eventName: hello, count: 1}\n"
        "        reward: {kind: badge, badgeId: hi}\n"
    )
    [spec] = parse_catalog_file(path, environ={"YAML_APP_SECRET": "from-env"})
    assert (spec.app_id, spec.app_secret, spec.webhook_secret) == ("yamlapp", "from-env", None)
    runtime = await make_runtime("local", actor_classes=QUESTKIT_ACTORS)
    [result] = await install_catalogs(runtime, path, environ={"YAML_APP_SECRET": "from-env"})
    assert result["created"] is True and result["version"] == 1


def test_demo_catalog_exercises_every_rule_feature():
    doc = json.loads(DEMO_CATALOG_PATH.read_text())
    [app] = doc["apps"]
    assert app["appId"] == "demo"
    missions = app["missions"]
    assert {m["criteria"].get("window", "lifetime") for m in missions} == {"daily", "weekly", "lifetime"}
    operators = {op for m in missions for clause in m["criteria"].get("filter", {}).values() for op in clause}
    assert operators == {"eq", "gte", "lte", "gt", "lt", "in"}
    assert {m["reward"]["kind"] for m in missions} == {"currency", "badge", "item"}
    assert any("expiresAt" in m for m in missions)
    assert app["campaigns"] and all(c["startAt"] < c["endAt"] for c in app["campaigns"])
    [spec] = parse_catalog_file(DEMO_CATALOG_PATH, environ={})
    assert spec.app_secret == "demo-secret"
    assert parse_catalog_file(DEMO_CATALOG_PATH, environ={"QUESTLINE_DEMO_APP_SECRET": "s3"})[0].app_secret == "s3"


async def test_demo_curl_sequence_runs_against_a_live_server(make_runtime, tmp_path: Path, monkeypatch):
    """The walkthrough ``make run`` prints works as printed: token, event, missions, claim, balance."""
    monkeypatch.delenv("QUESTLINE_DEMO_APP_SECRET", raising=False)
    runtime = await make_runtime("local", actor_classes=QUESTKIT_ACTORS)
    await install_catalogs(runtime, DEMO_CATALOG_PATH)
    app = create_app(runtime, extra_routes=questkit_routes(), manage_runtime=False)
    async with live_server(app) as url:
        script = demo_curl_sequence(url)
        assert script.count("curl ") >= 5
        proc = await asyncio.create_subprocess_exec(
            shutil.which("bash") or "bash", "-euc", script,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    event, missions, claim, balance, recs = lines
    assert event["accepted"] is True
    assert set(event["missionsUpdated"]) == {"daily-checkin", "first-steps"}
    assert {m["id"] for m in missions["missions"]} == {"daily-checkin", "first-steps"}
    assert claim["progress"]["status"] == "claimed"
    assert balance == {"balance": {**balance["balance"], "currency": "coins", "amount": 10}}
    assert set(recs) >= {"missionIds", "reason", "cached", "count"}


async def test_seed_example_event_against_the_demo_catalog(make_runtime):
    """Seed 001's example event updates the demo's "daily-streak" and "spring-buyer" (and more)."""
    runtime = await make_runtime("local", actor_classes=QUESTKIT_ACTORS)
    await install_catalogs(runtime, DEMO_CATALOG_PATH, environ={})
    app = create_app(runtime, extra_routes=questkit_routes(), manage_runtime=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://demo") as http:
        token = (await http.post("/v1/auth/token", json={
            "appId": "demo", "appSecret": "demo-secret", "userId": "usr_demo_123"})).json()["token"]
        r = await http.post("/v1/events", headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "abc123"},
                            json={"userId": "usr_demo_123", "name": "purchase.completed",
                                  "payload": {"product": "boots", "amount": 49.99},
                                  "timestamp": runtime.config.clock()})
    assert r.status_code == 200
    assert r.json()["missionsUpdated"] == ["daily-streak", "boots-fan", "spring-buyer"]


async def test_startup_hook_installs_the_configured_file_or_the_demo(make_runtime, tmp_path: Path, monkeypatch):
    from questline.questkit_catalog import CATALOG_ENV, catalog_path, catalog_startup_hook

    monkeypatch.delenv(CATALOG_ENV, raising=False)
    assert catalog_path() == DEMO_CATALOG_PATH
    path = catalog_file(tmp_path)
    monkeypatch.setenv(CATALOG_ENV, str(path))
    assert catalog_path() == path
    assert catalog_path(tmp_path / "x.json") == tmp_path / "x.json"
    runtime = await make_runtime("local", actor_classes=QUESTKIT_ACTORS)
    await catalog_startup_hook()(runtime)
    app = create_app(runtime, extra_routes=questkit_routes(), manage_runtime=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
        r = await http.post("/v1/auth/token", json={"appId": APP, "appSecret": SECRET, "userId": "u"})
        assert r.status_code == 200
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(CatalogFileError):
        catalog_startup_hook(bad)
