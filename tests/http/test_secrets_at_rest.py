"""Secrets at rest (issue 11): no plaintext secret in any file of the data directory.

Secrets are created through every surface (QuestKit app and webhook secrets from
the catalog and the admin API, minigame tenant secrets, Hatched passwords and API
keys, QuestMaster's server secret and tokens), then every file under the data dir
(SQLite databases, WAL and journal files included) is searched byte for byte, both
while the server runs (WAL) and after a clean stop (snapshots). msgpack stores
strings as raw UTF-8, so a byte search finds them inside the blobs too.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from questline import secrets_box
from tests.http import minigame_support, questkit_support
from tests.http.all_surfaces import HATCHED_PASSWORD, QM_SECRET, World, world_fixture  # noqa: F401

# Plaintext secrets still stored today (see the report of issue 11); the test fails
# when one is fixed (so the set shrinks) or a new one appears.
KNOWN_LEAKS: set[str] = set()


def leaks(data_dir: Path, secrets: dict[str, str]) -> set[str]:
    found: set[str] = set()
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert files, f"no files under {data_dir}"
    for path in files:
        raw = path.read_bytes()
        for name, secret in secrets.items():
            if secret.encode() in raw:
                found.add(name)
    return found


async def test_no_plaintext_secret_in_the_data_dir(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = world.client
    hatched_jwt = world.bearer(world.hatched_jwt)
    extra_key = await c.post("/api/v1/auth/api-keys", json={"name": "second"}, headers=hatched_jwt)
    assert extra_key.status_code == 201, extra_key.text
    rotated = await c.post("/api/v1/auth/api-keys/rotate", json={}, headers=hatched_jwt)
    assert rotated.status_code in (200, 201), rotated.text
    rotated_keys = [v for v in _strings(rotated.json()) if v.startswith("sk_")]
    login = await c.post("/api/v1/auth/login", json={"email": "owner@example.com", "password": HATCHED_PASSWORD})
    assert login.status_code == 200, login.text
    catalog = {"appId": questkit_support.APP, "missions": [questkit_support.mission("m1", "app.opened")]}
    put = await c.put("/v1/admin/catalog", json=catalog, headers=world.bearer(questkit_support.SECRET))
    assert put.status_code == 200, put.text
    qm_mint = await c.post("/api/questmaster/tokens", json={"sessionId": "qm-s1"},
                           headers=world.bearer(QM_SECRET.decode()))
    assert qm_mint.status_code == 200, qm_mint.text
    qm = await c.post("/api/tasks", json={"taskName": "x", "taskDescription": "y",
                                          "taskStartTime": "2026-03-04T10:00:00.000Z",
                                          "taskEndTime": "2026-03-04T11:00:00.000Z", "XP": 5},
                      headers=world.bearer(world.qm_token()))
    assert qm.status_code in (200, 201), qm.text
    session = await c.post("/api/minigame/session", json={"activity_type": "expedition_accept",
                                                          "activity_ref_id": "b1"},
                           headers=world.bearer(world.mg_token))
    assert session.status_code == 200, session.text
    monkeypatch.setenv(secrets_box.KEY_ENV, base64.urlsafe_b64encode(os.urandom(32)).decode())  # not ~/.config
    hook = await c.post("/api/v1/webhook-configs", json={"url": "https://hooks.example/h", "events": ["coins.earned"]},
                        headers=hatched_jwt)
    assert hook.status_code == 201, hook.text
    hook_rotated = await c.post(f"/api/v1/webhook-configs/{hook.json()['id']}/rotate-secret", json={},
                                headers=hatched_jwt)
    assert hook_rotated.status_code == 200, hook_rotated.text

    secrets = {
        "questkit app secret": questkit_support.SECRET,
        "questkit other app secret": questkit_support.OTHER_SECRET,
        "questkit webhook secret": questkit_support.WEBHOOK_SECRET,
        "minigame tenant secret": "s1-secret",
        "minigame other tenant secret": "s2-secret",
        "hatched password": HATCHED_PASSWORD,
        "hatched api key": world.hatched_key,
        "hatched second api key": extra_key.json()["key"],
        **{f"hatched rotated key {i}": k for i, k in enumerate(rotated_keys)},
        "questmaster server secret": QM_SECRET.decode(),
        "hatched webhook secret": hook.json()["secret"],
        "hatched rotated webhook secret": hook_rotated.json()["secret"],
    }
    data_dir = world.runtime.config.data_dir
    running = leaks(Path(data_dir), secrets)
    await world.runtime.stop()  # final snapshots: the state as it rests on disk
    stopped = leaks(Path(data_dir), secrets)
    assert running | stopped == KNOWN_LEAKS


def _strings(doc: object) -> list[str]:
    if isinstance(doc, str):
        return [doc]
    if isinstance(doc, dict):
        return [s for v in doc.values() for s in _strings(v)]
    if isinstance(doc, list):
        return [s for v in doc for s in _strings(v)]
    return []


assert minigame_support  # the tenant secrets above are minigame_support.CATALOG's
