"""GET /v1/recommendations: local, deterministic suggestions from the user's own state."""

from __future__ import annotations

from questline.rules.recommendations import NO_ACTIVITY_REASON
from tests.http.questkit_support import QK, make_qk_fixture, qk_fixture  # noqa: F401


async def test_no_activity_invites_the_user_to_act(qk: QK):
    token = await qk.token()
    r = await qk.get(token, "/v1/recommendations")
    assert r.status_code == 200
    assert r.json() == {"missionIds": [], "reason": NO_ACTIVITY_REASON, "cached": False, "count": 0,
                        "fallback": False}


async def test_closest_to_completion_first_then_campaign_missions(qk: QK):
    token = await qk.token()
    await qk.event(token, "app.opened")  # open-daily 1/2, open-weekly 1/3, open-once done
    first = await qk.get(token, "/v1/recommendations")
    body = first.json()
    assert body["missionIds"] == ["open-daily", "open-weekly", "spring-1"]
    assert body["count"] == 3
    assert "Open Daily" in body["reason"] and "1/2" in body["reason"]
    again = await qk.get(token, "/v1/recommendations")
    assert again.json() == body  # deterministic for the same state


async def test_recommendations_are_per_user(qk: QK):
    alice = await qk.token("alice")
    bob = await qk.token("bob")
    await qk.event(alice, "app.opened", user="alice")
    assert (await qk.get(alice, "/v1/recommendations")).json()["count"] == 3
    assert (await qk.get(bob, "/v1/recommendations")).json()["missionIds"] == []
