"""Two front-door processes on one Ray cluster: an event posted to one reaches a stream held by the other."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.http.live import free_port
from tests.http.test_sse import read_frames
from tests.test_cli import clean_env

REPO = Path(__file__).resolve().parents[2]


def start_serve(data_dir: Path, port: int, log: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "questline", "serve", "--runtime", "ray", "--demo", "--port", str(port),
         "--data-dir", str(data_dir), *extra],
        cwd=REPO, env=clean_env(), stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def wait_for(predicate, seconds: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} within {seconds} s\n{log.read_text()[-3000:]}")


def ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


async def test_event_on_one_front_door_reaches_a_stream_on_another(tmp_path):
    data = tmp_path / "data"
    port1, port2 = free_port(), free_port()
    log1, log2 = tmp_path / "serve1.log", tmp_path / "serve2.log"
    first = start_serve(data, port1, log1)
    procs = [first]
    try:
        wait_for(lambda: "ray cluster" in log1.read_text(), 90, "first front door did not start Ray", log1)
        cluster = log1.read_text().split("ray cluster ", 1)[1].split()[0]
        procs.append(start_serve(data, port2, log2, "--ray-address", cluster))
        wait_for(lambda: ready(port1) and ready(port2), 90, "front doors not ready", log2)

        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.post(f"http://127.0.0.1:{port1}/v1/auth/token",
                                json={"appId": "demo", "appSecret": "demo-secret", "userId": "carol"})
            token = r.json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            async with http.stream("GET", f"http://127.0.0.1:{port2}/v1/sse/updates", headers=auth) as stream:
                assert stream.status_code == 200
                event = {"userId": "carol", "name": "app.opened", "payload": {},
                         "timestamp": int(time.time() * 1000)}
                r = await http.post(f"http://127.0.0.1:{port1}/v1/events", json=event, headers=auth)
                assert r.status_code == 200, r.text
                updated = set(r.json()["missionsUpdated"])
                frames = await read_frames(stream, len(updated), seconds=10)
                progressed = {json.loads(f["data"])["data"]["missionId"] for f in frames}
                assert progressed <= updated and progressed
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
