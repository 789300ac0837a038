"""``serve --workers N``: N front-door processes on one port, one set of Ray shards.

Checked from the outside, through /proc: two worker processes of the server each
hold their own listening socket on the port, a connection is served by whichever
of them holds its accepted socket, and what one worker wrote the other reads.
"""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

import pytest

from benchmarks.server import ManagedServer, parse_port, process_tree, questline_server
from questline import cli
from questline.workers import _listening_inodes, listening_pids, socket_owners


def serving_pid(port: int, client_port: int, pids: list[int]) -> int | None:
    """The process holding the server side of the connection from ``client_port``."""
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.rsplit(":", 1)[1], 16) == port and int(remote.rsplit(":", 1)[1], 16) == client_port:
                inodes.add(int(fields[9]))
    owners = socket_owners(inodes, pids)
    return next(iter(owners), None)


def call(conn: http.client.HTTPConnection, method: str, path: str, body: object = None,
         token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def test_local_runtime_refuses_several_workers(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    assert cli.main(["serve", "--runtime", "local", "--workers", "2"], environ={}) == 2
    assert "--workers 2 needs --runtime ray" in capsys.readouterr().err
    assert time.monotonic() - started < 10  # before any shard or Ray is started


def test_ray_workers_listen_in_two_processes_and_serve_the_same_data() -> None:
    server: ManagedServer = questline_server(runtime="ray", durability="strict", shards=2, workers=2)
    with server:
        server.start()  # returns once both workers listen
        assert server.proc is not None
        port = parse_port(server.url)
        tree = process_tree(server.proc.pid)
        listeners = listening_pids(port, tree)
        assert len(listeners) == 2 and server.proc.pid not in listeners
        assert len(set().union(*listeners.values())) == 2  # a socket each (SO_REUSEPORT), not one shared
        assert _listening_inodes(port) == set().union(*listeners.values())
        workers = sorted(listeners)

        by_pid: dict[int, http.client.HTTPConnection] = {}
        for _ in range(64):  # the kernel hashes connections over the two sockets
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.connect()
            pid = serving_pid(port, conn.sock.getsockname()[1], workers)
            if pid is not None and pid not in by_pid:
                by_pid[pid] = conn
            else:
                conn.close()
            if len(by_pid) == 2:
                break
        assert sorted(by_pid) == workers
        writer, reader = by_pid[workers[0]], by_pid[workers[1]]

        status, minted = call(writer, "POST", "/v1/auth/token",
                              {"appId": "demo", "appSecret": "demo-secret", "userId": "worker-test"})
        assert status == 200, minted
        token = minted["token"]
        event = {"userId": "worker-test", "name": "app.opened", "payload": {}, "timestamp": int(time.time() * 1000)}
        status, answer = call(writer, "POST", "/v1/events", event, token)
        assert status == 200 and answer["missionsUpdated"], answer
        status, missions = call(reader, "GET", "/v1/missions", token=token)
        assert status == 200
        assert set(answer["missionsUpdated"]) <= set(missions["progress"])
        # still the same two processes serving those connections
        assert serving_pid(port, writer.sock.getsockname()[1], workers) == workers[0]
        assert serving_pid(port, reader.sock.getsockname()[1], workers) == workers[1]
        for conn in by_pid.values():
            conn.close()
