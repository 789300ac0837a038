"""Alarms across a crash (issue 11): a pending Hatched hatch fires after SIGKILL + restart, once in effect.

A real ``questline serve`` (local runtime, its own process group) accepts a
hatch whose operation waits 3 s in ``pending``; the whole process group is
SIGKILLed before the operation's alarm is due and the server restarted on the
same data dir. The operation must then complete on its own (the alarm was
durable), and its effect must exist exactly once: one buddy for the user, the
egg hatched, one completed hatch operation, still so a while later.
"""

from __future__ import annotations

import time

import httpx
import pytest

from benchmarks.chaos import Server

PASSWORD = "restart horse battery"


def _ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def test_pending_hatch_fires_once_after_sigkill_and_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HATCHED_OP_PENDING_MS", "3000")
    monkeypatch.setenv("HATCHED_OP_PROCESSING_MS", "200")
    with Server("local") as server:
        server.start()
        with httpx.Client(base_url=server.url + "/api/v1", timeout=30) as http:
            jwt = _ok(http.post("/auth/register", json={"email": "crash@example.com", "password": PASSWORD,
                                                        "name": "Crash"}), 201)["access_token"]
            key = _ok(http.post("/auth/api-keys", json={"name": "server"},
                                headers={"Authorization": f"Bearer {jwt}"}), 201)["key"]
            auth = {"Authorization": f"Bearer {key}"}
            version = _ok(http.post("/customers/me/apply-preset", json={"preset_key": "learning"}, headers=auth))
            _ok(http.post(f"/config-versions/{version['id']}/publish", headers=auth))
            egg = _ok(http.post("/eggs", json={"user_id": "user_1"}, headers=auth), 201)
            _ok(http.patch(f"/eggs/{egg['egg_id']}/status", json={"status": "ready"}, headers=auth))
            op_id = _ok(http.post(f"/eggs/{egg['egg_id']}/hatch", headers=auth), 202)["operation_id"]
            assert _ok(http.get(f"/operations/{op_id}", headers=auth))["status"] == "pending"

        server.kill()  # before the operation's alarm is due: it exists only on disk now
        server.start()

        with httpx.Client(base_url=server.url + "/api/v1", timeout=30) as http:
            deadline = time.monotonic() + 30
            while (op := _ok(http.get(f"/operations/{op_id}", headers=auth)))["status"] not in (
                    "completed", "failed", "cancelled"):
                assert time.monotonic() < deadline, f"the hatch never completed after the restart: {op}"
                time.sleep(0.1)
            assert op["status"] == "completed", op
            time.sleep(1.0)  # a duplicate firing would have landed by now
            buddies = _ok(http.get("/buddies", params={"user_id": "user_1"}, headers=auth))
            assert buddies["meta"]["total"] == 1, buddies
            assert buddies["data"][0]["buddy_id"] == op["result"]["buddy_id"]
            assert _ok(http.get(f"/eggs/{egg['egg_id']}", headers=auth))["status"] == "hatched"
            ops = _ok(http.get("/operations", params={"type": "hatch"}, headers=auth))
            assert [o["operation_id"] for o in ops["data"]] == [op_id], ops
            assert _ok(http.get(f"/operations/{op_id}", headers=auth)) == op
