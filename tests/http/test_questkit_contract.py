"""The served OpenAPI document, and every route's real responses decoded with its declared Structs."""

from __future__ import annotations

import json

import msgspec
from starlette.routing import Mount, Route

from questline.http import questkit_openapi as c
from questline.http.questkit import questkit_routes
from tests.http.questkit_support import (  # noqa: F401
    APP,
    QK,
    SECRET,
    make_qk_fixture,
    qk_fixture,
    sign,
)


def decode(response, struct):
    """Decode with the declared Struct (envelopes forbid unknown fields: no extra wrapping)."""
    return msgspec.json.decode(response.content, type=struct)


async def test_openapi_document_lists_every_route(qk: QK):
    r = await qk.http.get("/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    [mount] = [route for route in questkit_routes() if isinstance(route, Mount)]
    served = {
        (method.lower(), "/v1" + route.path.replace("mission_id", "missionId").replace("campaign_id", "campaignId"))
        for route in mount.routes if isinstance(route, Route) and route.path != "/openapi.json"
        for method in route.methods - {"HEAD"}
    }
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert served == documented
    assert {"Mission", "Campaign", "MissionProgress", "Balance", "Event"} <= set(doc["components"]["schemas"])
    event = doc["components"]["schemas"]["Event"]
    assert set(event["required"]) == {"userId", "name", "payload", "timestamp"}


async def test_every_response_matches_its_declared_struct(qk: QK):
    r = await qk.http.post("/v1/auth/token", json={"appId": APP, "appSecret": SECRET, "userId": "u1"})
    token = decode(r, c.TokenResponse).token
    auth = {"Authorization": f"Bearer {token}"}
    decode(await qk.event(token, "app.opened", key="a"), c.EventAccepted)
    decode(await qk.event(token, "app.opened", key="a"), c.EventAccepted)
    await qk.event(token, "app.opened")
    decode(await qk.get(token, "/v1/missions"), c.MissionList)
    decode(await qk.get(token, "/v1/missions", limit=1), c.MissionList)
    decode(await qk.get(token, "/v1/missions/open-daily"), c.MissionDetail)
    decode(await qk.get(token, "/v1/missions/f-eq"), c.MissionDetail)
    decode(await qk.claim(token, "open-daily"), c.ClaimResult)
    decode(await qk.claim(token, "open-once"), c.ClaimResult)
    decode(await qk.get(token, "/v1/balance"), c.BalanceList)
    decode(await qk.get(token, "/v1/balance/coins"), c.BalanceDetail)
    decode(await qk.get(token, "/v1/campaigns", include="expired"), c.CampaignList)
    decode(await qk.get(token, "/v1/campaigns/spring"), c.CampaignDetail)
    decode(await qk.get(token, "/v1/campaigns/spring", include="missions"), c.CampaignDetail)
    decode(await qk.get(token, "/v1/recommendations"), c.Recommendations)
    body = json.dumps({"id": "e1", "type": "app.opened", "data": {"object": {"customer": "u2"}}}).encode()
    r = await qk.http.post("/v1/webhook/incoming", params={"appId": APP}, content=body,
                           headers={"Stripe-Signature": sign(body, qk.now() // 1000)})
    decode(r, c.WebhookAccepted)
    admin = {"Authorization": f"Bearer {SECRET}"}
    current = decode(await qk.http.get("/v1/admin/catalog", params={"appId": APP}, headers=admin), c.AdminCatalog)
    put = await qk.http.put("/v1/admin/catalog", headers=admin,
                            content=msgspec.json.encode(c.CatalogBody(current.app_id, current.missions, current.campaigns)))
    assert decode(put, c.AdminCatalog).version == current.version
    decode(await qk.http.post("/v1/auth/revoke", headers=auth), c.RevokeResponse)

    errors = [
        await qk.get(token, "/v1/balance"),  # revoked
        await qk.http.post("/v1/auth/token", json={}),
        await qk.http.get("/v1/nope"),
    ]
    for error in errors:
        assert error.headers["content-type"] == "application/json"
        decode(error, c.ErrorBody)
