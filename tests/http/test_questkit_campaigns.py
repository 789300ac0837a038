"""GET /v1/campaigns and GET /v1/campaigns/:id, and campaign timing in mission evaluation."""

from __future__ import annotations

from tests.http.questkit_support import (  # noqa: F401
    QK,
    Y2025,
    Y2030,
    Y2031,
    acme_campaigns,
    make_qk_fixture,
    qk_fixture,
)


async def test_list_shows_campaigns_not_yet_ended(qk: QK):
    token = await qk.token()
    r = await qk.get(token, "/v1/campaigns")
    assert r.status_code == 200
    body = r.json()
    assert [c["id"] for c in body["campaigns"]] == ["spring", "future"]
    assert body["campaigns"][0] == acme_campaigns()[0]
    assert "theme" not in body["campaigns"][1]  # optional fields absent, not null
    everything = (await qk.get(token, "/v1/campaigns", include="expired")).json()
    assert [c["id"] for c in everything["campaigns"]] == ["spring", "future", "past"]


async def test_end_at_is_inclusive(qk: QK):
    qk.clock.set(Y2030)  # == spring.endAt
    token = await qk.token()
    assert "spring" in [c["id"] for c in (await qk.get(token, "/v1/campaigns")).json()["campaigns"]]
    qk.clock.set(Y2030 + 1)
    token = await qk.token()
    assert "spring" not in [c["id"] for c in (await qk.get(token, "/v1/campaigns")).json()["campaigns"]]


async def test_get_campaign_with_and_without_missions(qk: QK):
    token = await qk.token()
    r = await qk.get(token, "/v1/campaigns/spring")
    assert r.status_code == 200
    assert r.json() == {"campaign": acme_campaigns()[0]}
    r = await qk.get(token, "/v1/campaigns/spring", include="missions")
    body = r.json()
    assert set(body) == {"campaign", "missions"}
    assert [m["id"] for m in body["missions"]] == ["spring-1"]
    assert body["missions"][0]["campaignId"] == "spring"
    past = await qk.get(token, "/v1/campaigns/past")  # ended campaigns can still be read by id
    assert past.status_code == 200


async def test_unknown_campaign_and_bad_include(qk: QK):
    token = await qk.token()
    r = await qk.get(token, "/v1/campaigns/nope")
    assert (r.status_code, r.json()["error"]) == (404, "campaign_not_found")
    r = await qk.get(token, "/v1/campaigns", include="everything")
    assert (r.status_code, r.json()["error"]) == (400, "validation_error")
    r = await qk.get(token, "/v1/campaigns/spring", include="expired")
    assert (r.status_code, r.json()["error"]) == (400, "validation_error")


async def test_events_count_only_while_the_campaign_runs(qk: QK):
    token = await qk.token()
    r = await qk.event(token, "shop")
    assert r.json()["missionsUpdated"] == ["spring-1"]  # future-1 not started, past-1 ended
    qk.clock.set(Y2031 + 1000)  # future runs now; spring has ended
    token = await qk.token()
    r = await qk.event(token, "shop")
    assert r.json()["missionsUpdated"] == ["future-1"]
    assert (await qk.progress(token, "spring-1"))["status"] == "locked"
    # Campaign timing is judged by the event's own timestamp (like expiresAt): an event
    # that happened during the campaign still counts toward its lifetime mission.
    r = await qk.event(token, "shop", ts=Y2025 + 1000)
    assert r.json()["missionsUpdated"] == ["spring-1"]
    r = await qk.event(token, "shop", ts=Y2030 + 1)
    assert r.json()["missionsUpdated"] == []
