"""POST /v1/webhook/incoming: Stripe-style signatures, tolerance, replays, mapping to events."""

from __future__ import annotations

import json

import pytest

from tests.http.questkit_support import (  # noqa: F401
    APP,
    QK,
    START,
    make_qk_fixture,
    qk_fixture,
    sign,
)


def provider_event(customer="cus_1", type_="app.opened", event_id="evt_provider_1", created=START // 1000,
                   **obj) -> bytes:
    return json.dumps({"id": event_id, "type": type_, "created": created,
                       "data": {"object": {"customer": customer, **obj}}}).encode()


async def post(qk: QK, body: bytes, header: str | None, *, app: str | None = APP,
               header_name: str = "Stripe-Signature"):
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers[header_name] = header
    params = {"appId": app} if app else {}
    return await qk.http.post("/v1/webhook/incoming", content=body, headers=headers, params=params)


async def test_signed_event_is_accepted_once_and_applied(qk: QK):
    body = provider_event()
    t = qk.now() // 1000
    r = await post(qk, body, sign(body, t))
    assert r.status_code == 202
    assert set(r.json()) == {"accepted", "eventId"}
    assert r.json()["accepted"] is True
    token = await qk.token("cus_1")
    assert (await qk.progress(token, "open-once"))["status"] == "completed"
    assert (await qk.progress(token, "open-daily"))["currentCount"] == 1
    # The provider retries the same event: it applies once.
    again = await post(qk, body, sign(body, t + 5))
    assert again.status_code == 202
    assert again.json() == r.json()
    assert again.headers["x-idempotent-replay"] == "hit"
    assert (await qk.progress(token, "open-daily"))["currentCount"] == 1
    assert [u["type"] for u in await qk.hub_updates("cus_1", expect=4)] == [
        "mission.progress", "mission.progress", "mission.progress", "mission.completed"]


async def test_payload_is_the_provider_object_and_expanded_customers_work(qk: QK):
    body = provider_event(customer={"id": "cus_2"}, type_="buy", product="boots", amount=60)
    r = await post(qk, body, sign(body, qk.now() // 1000), header_name="X-QuestKit-Signature")
    assert r.status_code == 202
    token = await qk.token("cus_2")
    assert (await qk.progress(token, "f-and"))["status"] == "completed"


async def test_bad_signature_is_401_and_changes_nothing(qk: QK):
    body = provider_event()
    t = qk.now() // 1000
    signed_later = sign(body, t + 1).split(",")[1]
    for header in (
        sign(body, t, secret="not-the-secret"),
        sign(body + b" ", t),  # signed a different body
        f"t={t},{signed_later}",  # t does not match what was signed
    ):
        r = await post(qk, body, header)
        assert (r.status_code, r.json()["error"]) == (401, "invalid_signature")
    token = await qk.token("cus_1")
    assert await qk.progress(token, "open-once") is None
    assert await qk.hub_updates("cus_1") == []


async def test_one_matching_v1_among_several_is_enough(qk: QK):
    body = provider_event()
    t = qk.now() // 1000
    good = sign(body, t).split(",")[1]
    r = await post(qk, body, f"t={t},v1={'0' * 64},{good},v0=ignored")
    assert r.status_code == 202


@pytest.mark.parametrize(
    "header",
    [None, "", "garbage", "t=abc,v1=" + "0" * 64, "v1=" + "0" * 64, "t=1700000000",
     "t=1700000000,v1=nothex", "t=1,t=2,v1=" + "0" * 64],
)
async def test_malformed_signature_header_is_400(qk: QK, header):
    r = await post(qk, provider_event(), header)
    assert (r.status_code, r.json()["error"]) == (400, "malformed_signature")


async def test_outside_tolerance_is_signature_expired(qk: QK):
    body = provider_event()
    now_s = qk.now() // 1000
    assert (await post(qk, body, sign(body, now_s - 300))).status_code == 202
    for t in (now_s - 301, now_s + 301):
        r = await post(qk, provider_event(event_id=f"evt_{t}"), sign(provider_event(event_id=f"evt_{t}"), t))
        assert (r.status_code, r.json()["error"]) == (401, "signature_expired")


async def test_app_must_be_named_and_known(qk: QK):
    body = provider_event()
    header = sign(body, qk.now() // 1000)
    r = await post(qk, body, header, app=None)
    assert (r.status_code, r.json()["error"]) == (400, "validation_error")
    r = await post(qk, body, header, app="nope")
    assert (r.status_code, r.json()["error"]) == (401, "invalid_signature")
    r = await post(qk, body, header, app="beta")  # beta has no webhook secret configured
    assert (r.status_code, r.json()["error"]) == (401, "invalid_signature")


@pytest.mark.parametrize(
    "doc",
    [
        {"id": "e1", "type": "app.opened", "data": {"object": {}}},  # no customer
        {"id": "e1", "data": {"object": {"customer": "cus_1"}}},  # no type
        {"id": "e1", "type": "app.opened", "data": {}},
        {"id": "e1", "type": "app.opened", "data": {"object": {"customer": 5}}},
        [1, 2],
    ],
)
async def test_signed_but_unusable_body_is_400(qk: QK, doc):
    body = json.dumps(doc).encode()
    r = await post(qk, body, sign(body, qk.now() // 1000))
    assert (r.status_code, r.json()["error"]) == (400, "validation_error")
