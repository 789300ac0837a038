"""Hatched outbound webhooks over HTTP, delivered to a real receiver on 127.0.0.1.

Covers CRUD and its validation/envelope errors, signatures checked with the
recipe from docs/hatched-webhooks.md (and refused when body or timestamp is
tampered with), deliveries for an event's effects and an operation's completion
carrying the originating request id, retries with backoff while the receiver is
down, rotation overlap, redeliver/test routes and the delivery log.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hmac
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.durability import kill_group
from benchmarks.server import ManagedServer, free_port
from questline import secrets_box
from tests.http.hatched_support import (  # noqa: F401 - fixtures
    Customer,
    assert_error,
    client_fixture,
    customer_fixture,
    fast_operations_fixture,
    hatch_buddy,
    publish_preset,
    register,
    runtime_fixture,
)
from tests.http.webhook_receiver import Receiver, documented_verifier

ALL_TYPES = ["coins.earned", "badge.awarded", "evolution.ready", "operation.completed", "operation.failed",
             "event.processed"]
verify = documented_verifier()
_n = iter(range(1_000_000))


@pytest.fixture(autouse=True)
def webhook_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A throwaway sealing key (never the real ~/.config one) and fast retries."""
    monkeypatch.setenv(secrets_box.KEY_ENV, base64.urlsafe_b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("HATCHED_WEBHOOK_BACKOFF_BASE_MS", "100")
    monkeypatch.setenv("HATCHED_WEBHOOK_BACKOFF_CAP_MS", "400")
    monkeypatch.setenv("HATCHED_WEBHOOK_MAX_ATTEMPTS", "200")
    monkeypatch.setenv("HATCHED_WEBHOOK_TIMEOUT_MS", "2000")


@pytest.fixture(name="receiver")
async def receiver_fixture() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def create(client: httpx.AsyncClient, customer: Customer, url: str, events: list[str] | None = None,
                 **extra: Any) -> dict[str, Any]:
    response = await client.post("/webhook-configs", json={"url": url, "events": events or ALL_TYPES, **extra},
                                 headers=customer.auth)
    assert response.status_code == 201, response.text
    return response.json()


async def deliveries(client: httpx.AsyncClient, customer: Customer, config_id: str, **params: Any) -> dict:
    response = await client.get(f"/webhook-configs/{config_id}/deliveries", params=params, headers=customer.auth)
    assert response.status_code == 200, response.text
    return response.json()


async def send_event(client: httpx.AsyncClient, customer: Customer, request_id: str | None = None,
                     **extra: Any) -> dict[str, Any]:
    body = {"event_id": f"evt_wh_{next(_n)}", "user_id": "user_1", "type": "lesson_completed", **extra}
    headers = {**customer.auth, **({"X-Request-Id": request_id} if request_id else {})}
    response = await client.post("/events", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def signatures(received: Any) -> list[str]:
    return received.headers["x-hatched-signature"].split(",")


# -- CRUD -------------------------------------------------------------------------------------
async def test_crud_shows_the_secret_once(client: httpx.AsyncClient, customer: Customer) -> None:
    created = await create(client, customer, "https://hooks.example/a", ["coins.earned"], description="crm")
    secret = created.pop("secret")
    assert secret.startswith("whsec_") and len(secret) > 40
    assert created["url"] == "https://hooks.example/a" and created["events"] == ["coins.earned"]
    assert created["enabled"] is True and created["description"] == "crm"
    assert created["previous_secret_expires_at"] is None and created["pending_deliveries"] == 0
    config_id = created["id"]

    got = await client.get(f"/webhook-configs/{config_id}", headers=customer.auth)
    assert got.status_code == 200 and got.json() == created
    assert secret not in got.text
    listed = await client.get("/webhook-configs", headers=customer.jwt)
    assert listed.status_code == 200
    assert listed.json() == {"data": [created], "meta": {"page": 1, "limit": 20, "total": 1}}
    assert secret not in listed.text

    put = await client.put(f"/webhook-configs/{config_id}", json={"events": ["badge.awarded", "coins.earned"],
                                                                  "enabled": False, "description": None},
                           headers=customer.auth)
    assert put.status_code == 200, put.text
    updated = put.json()
    assert updated["events"] == ["badge.awarded", "coins.earned"] and updated["enabled"] is False
    assert updated["description"] is None and updated["url"] == "https://hooks.example/a"

    other = await register(client)
    assert_error(await client.get(f"/webhook-configs/{config_id}", headers=other.auth), 404,
                 "webhook_config_not_found")
    assert (await client.get("/webhook-configs", headers=other.auth)).json()["data"] == []

    deleted = await client.delete(f"/webhook-configs/{config_id}", headers=customer.auth)
    assert deleted.status_code == 200 and deleted.json() == {"id": config_id, "deleted": True}
    assert_error(await client.get(f"/webhook-configs/{config_id}", headers=customer.auth), 404,
                 "webhook_config_not_found")
    assert_error(await client.delete(f"/webhook-configs/{config_id}", headers=customer.auth), 404,
                 "webhook_config_not_found")
    assert (await client.get("/webhook-configs", headers=customer.auth)).json()["meta"]["total"] == 0


@pytest.mark.parametrize(("body", "message"), [
    ({"url": "https://x.example/h", "events": ["coins.spent_everything"]}, "events"),
    ({"url": "https://x.example/h", "events": []}, "events"),
    ({"url": "https://x.example/h", "events": ["coins.earned", "coins.earned"]}, "must not repeat"),
    ({"url": "ftp://x.example/h", "events": ["coins.earned"]}, "http or https"),
    ({"url": "https:///nohost", "events": ["coins.earned"]}, "host"),
    ({"url": "https://user:pw@x.example/h", "events": ["coins.earned"]}, "credentials"),
    ({"events": ["coins.earned"]}, "property url is required"),
    ({"url": "https://x.example/h", "events": ["coins.earned"], "eventTypes": []}, "eventTypes should not exist"),
    ({"url": "https://x.example/h", "events": "coins.earned"}, "events"),
])
async def test_create_validation(client: httpx.AsyncClient, customer: Customer, body: dict[str, Any],
                                 message: str) -> None:
    error = assert_error(await client.post("/webhook-configs", json=body, headers=customer.auth), 400,
                         "validation_error")
    assert message in error["message"], error
    assert (await client.get("/webhook-configs", headers=customer.auth)).json()["meta"]["total"] == 0


async def test_errors_use_the_envelope(client: httpx.AsyncClient, customer: Customer,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    config = await create(client, customer, "https://x.example/h", ["coins.earned"])
    cid = config["id"]
    assert_error(await client.put(f"/webhook-configs/{cid}", json={"url": "mailto:a@b.c"}, headers=customer.auth),
                 400, "validation_error")
    assert_error(await client.put(f"/webhook-configs/{cid}", json={"secret": "mine"}, headers=customer.auth),
                 400, "validation_error")
    assert_error(await client.post(f"/webhook-configs/{cid}/rotate-secret", json={"overlap_seconds": -1},
                                   headers=customer.auth), 400, "validation_error")
    assert_error(await client.get("/webhook-configs/whc_0000000000000000", headers=customer.auth), 404,
                 "webhook_config_not_found")
    assert_error(await client.get("/webhook-configs/whc_%C3%A9", headers=customer.auth), 404,
                 "webhook_config_not_found")
    assert_error(await client.post(f"/webhook-configs/{cid}/deliveries/whd_0000000000000000/redeliver",
                                   headers=customer.auth), 404, "webhook_delivery_not_found")
    assert_error(await client.post(f"/webhook-configs/{cid}/deliveries/nope/redeliver", headers=customer.auth),
                 404, "webhook_delivery_not_found")
    assert_error(await client.get(f"/webhook-configs/{cid}/deliveries?cursor=bm9wZQ", headers=customer.auth),
                 400, "invalid_cursor")
    assert_error(await client.get(f"/webhook-configs/{cid}/deliveries?status=lost", headers=customer.auth),
                 400, "validation_error")
    assert_error(await client.get("/webhook-configs"), 401, "unauthorized")
    pk = await client.post("/auth/publishable-keys", json={}, headers=customer.jwt)
    assert pk.status_code == 201, pk.text
    publishable = {"Authorization": f"Bearer {pk.json()['key']}"}
    assert_error(await client.get("/webhook-configs", headers=publishable), 403, "insufficient_permissions")
    assert_error(await client.patch(f"/webhook-configs/{cid}", json={}, headers=customer.auth), 405,
                 "method_not_allowed")
    monkeypatch.setenv("HATCHED_WEBHOOK_MAX_CONFIGS", "2")
    await create(client, customer, "https://x.example/2", ["coins.earned"])
    error = assert_error(await client.post("/webhook-configs", json={"url": "https://x.example/3",
                                                                     "events": ["coins.earned"]},
                                           headers=customer.auth), 409, "webhook_config_limit")
    assert error["details"] == {"max": 2}


# -- deliveries ------------------------------------------------------------------------------
async def test_operation_webhooks_quote_the_request_that_started_the_operation(
        client: httpx.AsyncClient, customer: Customer, receiver: Receiver) -> None:
    await publish_preset(client, customer, "learning")
    await create(client, customer, receiver.url)
    egg = (await client.post("/eggs", json={"user_id": "user_rq"}, headers=customer.auth)).json()
    await client.patch(f"/eggs/{egg['egg_id']}/status", json={"status": "ready"}, headers=customer.auth)
    hatch = await client.post(f"/eggs/{egg['egg_id']}/hatch", headers={**customer.auth, "X-Request-Id": "req-hatch-1"})
    assert hatch.status_code == 202, hatch.text
    [completed] = await receiver.wait_for("operation.completed")
    assert completed.json()["request_id"] == "req-hatch-1"
    assert completed.headers["x-request-id"] == "req-hatch-1"


async def test_event_effects_and_operations_are_delivered_signed(
        client: httpx.AsyncClient, customer: Customer, receiver: Receiver) -> None:
    await publish_preset(client, customer, "learning")
    config = await create(client, customer, receiver.url)
    secret = config["secret"]
    buddy = await hatch_buddy(client, customer, "user_1")

    [completed] = await receiver.wait_for("operation.completed")
    op = completed.json()
    assert op["type"] == "operation.completed" and op["customer_id"] == customer.customer_id
    assert op["data"]["status"] == "completed" and op["data"]["buddy_id"] == buddy["buddy_id"]
    assert op["data"]["type"] == "hatch"

    result = await send_event(client, customer, request_id="req-from-crm-1", properties={"lesson_id": "l1"})
    assert result["effects"]["coins"] > 0 and result["effects"]["badges_awarded"]
    [coins] = await receiver.wait_for("coins.earned")
    [badge] = await receiver.wait_for("badge.awarded")
    [processed] = await receiver.wait_for("event.processed")
    for received in (coins, badge, processed):
        body = received.json()
        assert body["request_id"] == "req-from-crm-1"
        assert received.headers["x-request-id"] == "req-from-crm-1"
        assert body["data"]["event_id"] == result["event_id"]
        assert received.headers["x-hatched-delivery"].startswith("whd_")
        assert received.headers["content-type"] == "application/json"
        assert verify(secret, received.headers, received.body)
    assert coins.json()["data"]["amount"] == result["effects"]["coins"]
    assert coins.json()["data"]["buddy_id"] == buddy["buddy_id"]
    assert badge.json()["data"]["badge_key"] == result["effects"]["badges_awarded"][0]
    assert processed.json()["data"]["effects"] == {k: result["effects"][k] for k in processed.json()["data"]
                                                   ["effects"]}

    # The documented recipe refuses tampering and stale or wrong-secret requests.
    assert not verify(secret, coins.headers, coins.body.replace(b'"amount":', b'"amount":1'))
    assert not verify(secret, {**coins.headers, "x-hatched-timestamp": str(int(coins.headers
                                                                             ["x-hatched-timestamp"]) + 1)},
                      coins.body)
    assert not verify("whsec_other", coins.headers, coins.body)
    assert not verify(secret, coins.headers, coins.body, tolerance_seconds=-1)

    # A resend of the same event announces nothing again.
    again = await client.post("/events", json={"event_id": result["event_id"], "user_id": "user_1",
                                               "type": "lesson_completed"}, headers=customer.auth)
    assert again.json()["duplicate"] is True
    log = await deliveries(client, customer, config["id"], status="delivered")
    assert {d["event_type"] for d in log["data"]} == {"operation.completed", "coins.earned", "badge.awarded",
                                                       "event.processed"}
    assert len(log["data"]) == 4
    for entry in log["data"]:
        assert entry["attempt_count"] == 1 and entry["attempts"][0]["status_code"] == 200
        assert entry["attempts"][0]["error"] is None and entry["attempts"][0]["duration_ms"] >= 0
    assert len(receiver.received) == 4


async def test_subscriptions_and_failed_turns_filter_what_is_sent(
        client: httpx.AsyncClient, customer: Customer, receiver: Receiver) -> None:
    await publish_preset(client, customer, "learning")
    await hatch_buddy(client, customer, "user_1")
    coins_only = await create(client, customer, receiver.url, ["coins.earned"])
    disabled = await create(client, customer, receiver.url, ["event.processed"], enabled=False)
    # A turn that fails (buddy not owned by the user) emits nothing.
    refused = await client.post("/events", json={"event_id": "evt_refused", "user_id": "user_1",
                                                 "type": "lesson_completed", "buddy_id": "bdy_not_mine"},
                                headers=customer.auth)
    assert_error(refused, 404, "buddy_not_found")
    result = await send_event(client, customer)
    [coins] = await receiver.wait_for("coins.earned")
    assert coins.json()["data"]["event_id"] == result["event_id"]
    await asyncio.sleep(0.3)
    assert [r.headers["x-hatched-event"] for r in receiver.received] == ["coins.earned"]
    assert (await deliveries(client, customer, disabled["id"]))["data"] == []
    assert len((await deliveries(client, customer, coins_only["id"]))["data"]) == 1


async def test_receiver_down_then_back_loses_nothing(
        client: httpx.AsyncClient, customer: Customer) -> None:
    await publish_preset(client, customer, "learning")
    await hatch_buddy(client, customer, "user_1")
    receiver = Receiver()  # not started: connections are refused
    config = await create(client, customer, receiver.url, ["coins.earned", "event.processed"])
    sent = [await send_event(client, customer) for _ in range(3)]

    deadline = time.monotonic() + 15
    while True:
        log = (await deliveries(client, customer, config["id"]))["data"]
        if len(log) == 6 and all(d["attempt_count"] >= 4 for d in log):
            break
        assert time.monotonic() < deadline, log
        await asyncio.sleep(0.05)
    for entry in log:
        assert entry["status"] == "pending" and entry["next_attempt_at"] is not None
        assert entry["attempts"][0]["status_code"] is None and "Connect" in entry["attempts"][0]["error"]
        times = [a["attempted_at"] for a in entry["attempts"]]
        assert times == sorted(times)
    # Backoff: the gaps between attempts grow (100 ms, 200 ms, 400 ms nominal, plus jitter).
    moments = [dt.datetime.fromisoformat(a["attempted_at"].replace("Z", "+00:00")).timestamp()
               for a in log[0]["attempts"]]
    gaps = [b - a for a, b in zip(moments, moments[1:], strict=False)]
    assert gaps[0] >= 0.09 and gaps[2] >= 0.39, gaps

    # The receiver comes up answering 500: still retried, status codes logged.
    receiver.status = 500
    await receiver.start()
    try:
        await receiver.wait_for("coins.earned", 3)
        receiver.status = 204
        deadline = time.monotonic() + 15
        while True:
            log = (await deliveries(client, customer, config["id"]))["data"]
            if all(d["status"] == "delivered" for d in log):
                break
            assert time.monotonic() < deadline, log
            await asyncio.sleep(0.05)
        assert any(a["status_code"] == 500 and a["error"] == "receiver answered 500"
                   for d in log for a in d["attempts"])
        assert all(d["attempts"][-1]["status_code"] == 204 for d in log)
        delivered_ids = {r.json()["data"]["event_id"] for r in receiver.received if r.headers["x-hatched-event"]
                         == "coins.earned"}
        assert delivered_ids == {s["event_id"] for s in sent}
        config_view = (await client.get(f"/webhook-configs/{config['id']}", headers=customer.auth)).json()
        assert config_view["pending_deliveries"] == 0
    finally:
        await receiver.stop()


async def test_rotation_signs_with_both_secrets_during_the_overlap(
        client: httpx.AsyncClient, customer: Customer, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    config = await create(client, customer, receiver.url, ["coins.earned"])
    old = config["secret"]
    rotated = await client.post(f"/webhook-configs/{config['id']}/rotate-secret", json={"overlap_seconds": 2},
                                headers=customer.auth)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old and new.startswith("whsec_")
    assert rotated.json()["previous_secret_expires_at"] is not None
    got = await client.get(f"/webhook-configs/{config['id']}", headers=customer.auth)
    assert new not in got.text and old not in got.text

    test = await client.post(f"/webhook-configs/{config['id']}/test", headers=customer.auth)
    assert test.status_code == 200 and test.json()["status"] == "delivered", test.text
    [during] = receiver.of_type("webhook.test")
    assert len(signatures(during)) == 2
    assert verify(new, during.headers, during.body) and verify(old, during.headers, during.body)
    assert signatures(during)[0] == "v1=" + hmac.new(
        new.encode(), during.headers["x-hatched-timestamp"].encode() + b"." + during.body, "sha256").hexdigest()

    await asyncio.sleep(2.1)
    test = await client.post(f"/webhook-configs/{config['id']}/test", headers=customer.auth)
    assert test.json()["status"] == "delivered"
    after = receiver.of_type("webhook.test")[1]
    assert len(signatures(after)) == 1
    assert verify(new, after.headers, after.body) and not verify(old, after.headers, after.body)
    got = (await client.get(f"/webhook-configs/{config['id']}", headers=customer.auth)).json()
    assert got["previous_secret_expires_at"] is None

    # overlap 0: the previous secret stops at once.
    third = (await client.post(f"/webhook-configs/{config['id']}/rotate-secret", json={"overlap_seconds": 0},
                               headers=customer.auth)).json()["secret"]
    await client.post(f"/webhook-configs/{config['id']}/test", headers=customer.auth)
    last = receiver.of_type("webhook.test")[2]
    assert len(signatures(last)) == 1 and verify(third, last.headers, last.body)
    assert not verify(new, last.headers, last.body)

    # Without overlap_seconds the configured default applies (24 h unless set).
    monkeypatch.setenv("HATCHED_WEBHOOK_SECRET_OVERLAP_S", "3600")
    fourth = await client.post(f"/webhook-configs/{config['id']}/rotate-secret", headers=customer.auth)
    assert fourth.status_code == 200, fourth.text
    expires = fourth.json()["previous_secret_expires_at"].replace("Z", "+00:00")
    assert 3500 < dt.datetime.fromisoformat(expires).timestamp() - time.time() <= 3601


async def test_test_and_redeliver_routes(client: httpx.AsyncClient, customer: Customer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HATCHED_WEBHOOK_MAX_ATTEMPTS", "2")
    receiver = Receiver()
    config = await create(client, customer, receiver.url, ["coins.earned"])
    cid = config["id"]
    down = await client.post(f"/webhook-configs/{cid}/test", headers={**customer.auth, "X-Request-Id": "req-t1"})
    assert down.status_code == 200, down.text
    failed = down.json()
    assert failed["status"] == "pending" and failed["attempt_count"] == 1 and failed["last_status_code"] is None
    assert failed["event_type"] == "webhook.test" and failed["request_id"] == "req-t1"
    deadline = time.monotonic() + 10
    while (entry := (await deliveries(client, customer, cid))["data"][0])["status"] != "failed":
        assert time.monotonic() < deadline, entry
        await asyncio.sleep(0.05)
    assert entry["attempt_count"] == 2 and entry["next_attempt_at"] is None

    await receiver.start()
    try:
        again = await client.post(f"/webhook-configs/{cid}/deliveries/{failed['id']}/redeliver",
                                  headers=customer.auth)
        assert again.status_code == 200, again.text
        redelivered = again.json()
        assert redelivered["status"] == "delivered" and redelivered["redelivery_of"] == failed["id"]
        assert redelivered["id"] != failed["id"] and redelivered["payload"] == failed["payload"]
        [got] = receiver.of_type("webhook.test")
        assert got.json() == failed["payload"] and got.headers["x-request-id"] == "req-t1"
        assert got.headers["x-hatched-delivery"] == redelivered["id"]
        assert verify(config["secret"], got.headers, got.body)
        log = (await deliveries(client, customer, cid))["data"]
        assert [d["id"] for d in log] == [redelivered["id"], failed["id"]]
        assert log[1]["status"] == "failed"  # the original keeps its own history
    finally:
        await receiver.stop()


async def test_delivery_log_pages_newest_first(client: httpx.AsyncClient, customer: Customer,
                                               receiver: Receiver) -> None:
    config = await create(client, customer, receiver.url, ["coins.earned"])
    ids = []
    for _ in range(5):
        sent = await client.post(f"/webhook-configs/{config['id']}/test", headers=customer.auth)
        ids.append(sent.json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        page = await deliveries(client, customer, config["id"], limit=2, **({"cursor": cursor} if cursor else {}))
        assert len(page["data"]) <= 2
        seen += [d["id"] for d in page["data"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert (await deliveries(client, customer, config["id"], status="failed"))["data"] == []
    assert len((await deliveries(client, customer, config["id"], status="delivered"))["data"]) == 5


async def test_deleting_a_config_stops_its_retries(client: httpx.AsyncClient, customer: Customer) -> None:
    receiver = Receiver()
    config = await create(client, customer, receiver.url, ["coins.earned"])
    await client.post(f"/webhook-configs/{config['id']}/test", headers=customer.auth)
    deleted = await client.delete(f"/webhook-configs/{config['id']}", headers=customer.auth)
    assert deleted.status_code == 200
    await receiver.start()
    try:
        await asyncio.sleep(0.6)  # several backoff periods
        assert receiver.received == []
    finally:
        await receiver.stop()


# -- retries survive a crash of a real server process -------------------------------------------
def _server(data_dir: Path, env: dict[str, str]) -> ManagedServer:
    port = free_port()
    argv = [sys.executable, "-m", "questline", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--runtime", "local", "--durability", "strict", "--shards", "2", "--data-dir", str(data_dir),
            "--log-level", "warning"]
    # data_dir stays None: the directory must outlive the first server.
    return ManagedServer(label="questline serve (webhooks)", argv=argv, url=f"http://127.0.0.1:{port}", env=env)


async def test_pending_deliveries_survive_kill_9_of_the_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    receiver = Receiver()  # down until the server has been killed and restarted
    env = {"QUESTLINE_DEMO": "1", secrets_box.KEY_ENV: os.environ[secrets_box.KEY_ENV],
           "HATCHED_WEBHOOK_BACKOFF_BASE_MS": "200", "HATCHED_WEBHOOK_BACKOFF_CAP_MS": "500",
           "HATCHED_WEBHOOK_MAX_ATTEMPTS": "1000", "HATCHED_OP_PENDING_MS": "10", "HATCHED_OP_PROCESSING_MS": "10"}
    first = _server(data_dir, env)
    await asyncio.to_thread(first.start)
    try:
        async with httpx.AsyncClient(base_url=first.url + "/api/v1", timeout=30) as client:
            customer = await register(client)
            await publish_preset(client, customer, "learning")
            await hatch_buddy(client, customer, "user_1")
            config = await create(client, customer, receiver.url, ["coins.earned", "event.processed"])
            sent = await send_event(client, customer, request_id="req-before-crash")
            deadline = time.monotonic() + 30
            while True:
                log = (await deliveries(client, customer, config["id"]))["data"]
                if len(log) == 2 and all(d["attempt_count"] >= 2 for d in log):
                    break
                assert time.monotonic() < deadline, log
                await asyncio.sleep(0.1)
    finally:
        assert first.proc is not None
        kill_group(first.proc)  # SIGKILL: no flush, no final snapshot
        first.stop()
    attempts_before = {d["id"]: d["attempt_count"] for d in log}

    second = _server(data_dir, env)
    await asyncio.to_thread(second.start)
    await receiver.start()
    try:
        await receiver.wait_for("coins.earned", limit_s=30)
        await receiver.wait_for("event.processed", limit_s=30)
        [coins] = receiver.of_type("coins.earned")
        assert coins.json()["data"]["event_id"] == sent["event_id"]
        assert coins.json()["request_id"] == "req-before-crash"
        assert verify(config["secret"], coins.headers, coins.body)  # the sealed secret survived too
        async with httpx.AsyncClient(base_url=second.url + "/api/v1", timeout=30) as client:
            log = (await deliveries(client, customer, config["id"]))["data"]
        assert {d["id"] for d in log} == set(attempts_before)
        for entry in log:
            assert entry["status"] == "delivered"
            assert entry["attempt_count"] > attempts_before[entry["id"]]
            assert entry["attempts"][0]["error"] and entry["attempts"][-1]["status_code"] == 200
        delivery = coins.headers["x-hatched-delivery"]
        assert int(coins.headers["x-hatched-attempt"]) == next(d["attempt_count"] for d in log if d["id"] == delivery)
        assert int(coins.headers["x-hatched-attempt"]) > attempts_before[delivery]
    finally:
        await receiver.stop()
        second.stop()
    assert config["secret"].encode() not in b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
