"""The command line: settings resolution, the bench hand-off, and a real ``serve`` process."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import httpx
import pytest

from questline import cli


def parse_serve(argv: list[str], environ: dict[str, str]) -> argparse.Namespace:
    args, extra = cli.build_parser().parse_known_args(["serve", *argv])
    assert extra == []
    cli.resolve_options(args, args.options, environ)
    return args


# -- settings ---------------------------------------------------------------------
def test_serve_defaults() -> None:
    args = parse_serve([], {})
    assert (args.host, args.port, args.runtime, args.shards) == ("127.0.0.1", 8080, "ray", 2)
    assert args.data_dir == Path("data")
    assert (args.durability, args.snapshot_interval, args.max_resident) == ("strict", 5.0, 50_000)
    assert (args.ray_address, args.log_level, args.access_log) == (None, "info", False)


def test_environment_fills_unset_flags_and_flags_win() -> None:
    environ = {
        "QUESTLINE_RUNTIME": "local",
        "QUESTLINE_SHARDS": "4",
        "QUESTLINE_DATA_DIR": "/srv/questline",
        "QUESTLINE_DURABILITY": "relaxed",
        "QUESTLINE_SNAPSHOT_INTERVAL": "0.5",
        "QUESTLINE_RAY_ADDRESS": "10.0.0.1:6379",
        "QUESTLINE_ACCESS_LOG": "yes",
        "QUESTLINE_PORT": "",  # empty means unset
    }
    args = parse_serve(["--shards", "3"], environ)
    assert args.shards == 3
    assert args.runtime == "local"
    assert args.data_dir == Path("/srv/questline")
    assert args.durability == "relaxed"
    assert args.snapshot_interval == 0.5
    assert args.ray_address == "10.0.0.1:6379"
    assert args.access_log is True
    assert args.port == 8080


@pytest.mark.parametrize(
    ("environ", "complaint"),
    [
        ({"QUESTLINE_RUNTIME": "kubernetes"}, "QUESTLINE_RUNTIME='kubernetes': must be one of ray, local"),
        ({"QUESTLINE_SHARDS": "0"}, "QUESTLINE_SHARDS='0': must be at least 1"),
        ({"QUESTLINE_PORT": "http"}, "QUESTLINE_PORT='http'"),
        ({"QUESTLINE_SNAPSHOT_INTERVAL": "-1"}, "QUESTLINE_SNAPSHOT_INTERVAL='-1'"),
    ],
)
def test_bad_environment_value_is_a_usage_error(
    environ: dict[str, str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["serve"], environ=environ)
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["serve", "--bogus"], ["serve", "--runtime", "kubernetes"], ["serve", "--shards", "0"], []],
)
def test_bad_command_line_is_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv, environ={})
    assert exit_info.value.code == 2


# -- bench ----------------------------------------------------------------------------
def test_bench_without_harness_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, cli.BENCH_MODULE, None)  # makes the import fail
    assert cli.main(["bench"], environ={}) == 2
    assert "benchmarks not available yet" in capsys.readouterr().err


def test_bench_hands_every_argument_to_the_harness(monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[list[str]] = []

    def fake_main(args: list[str]) -> Any:
        received.append(args)
        return 5

    harness = types.ModuleType(cli.BENCH_MODULE)
    harness.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, cli.BENCH_MODULE, harness)
    argv = ["bench", "--help", "--users", "100", "smoke"]
    assert cli.main(argv, environ={}) == 5
    assert received == [["--help", "--users", "100", "smoke"]]


# -- a real server process ---------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env() -> dict[str, str]:
    """The test's settings only: no QUESTLINE_* or RAY_ADDRESS from the developer's shell."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith("QUESTLINE_") and k != "RAY_ADDRESS"
    }


def serve_until_ready_then_terminate(tmp_path: Path, runtime: str, ready_within: float) -> dict:
    """Start ``python -m questline serve``, wait for /readyz 200, send SIGTERM; return what happened."""
    port = free_port()
    data_dir = tmp_path / "data"
    out_path, err_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
    command = [
        sys.executable, "-m", "questline", "serve",
        "--runtime", runtime, "--port", str(port), "--data-dir", str(data_dir),
    ]
    with out_path.open("w") as out, err_path.open("w") as err:
        env = {**clean_env(), "QUESTLINE_QUESTMASTER_SECRET": "cli-test-secret-0123456789abcdef"}
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=tmp_path)
        try:
            ready: dict | None = None
            deadline = time.monotonic() + ready_within
            while ready is None and time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                    if response.status_code == 200:
                        ready = response.json()
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            logs = f"stdout:\n{out_path.read_text()}\nstderr:\n{err_path.read_text()}"
            assert ready is not None, f"/readyz never answered 200 (exit code {proc.poll()})\n{logs}"
            proc.send_signal(signal.SIGTERM)
            returncode = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return {
        "port": port,
        "ready": ready,
        "returncode": returncode,
        "stdout": out_path.read_text(),
        "stderr": err_path.read_text(),
        "shard_files": sorted(p.name for p in data_dir.glob("*.sqlite")),
    }


def assert_clean_run(run: dict, runtime: str) -> None:
    logs = f"stdout:\n{run['stdout']}\nstderr:\n{run['stderr']}"
    assert run["returncode"] == 0, logs
    assert run["ready"]["status"] == "ready"
    assert run["ready"]["runtime"] == runtime
    assert len(run["ready"]["shards"]) == 2
    assert f"listening on http://127.0.0.1:{run['port']}" in run["stdout"], logs
    # The lifespan ran to its end: the runtime was stopped, not killed.
    assert "Application shutdown complete" in run["stderr"], logs
    assert "Traceback" not in run["stderr"], logs
    assert run["shard_files"] == ["shard-000-of-002.sqlite", "shard-001-of-002.sqlite"]


def test_serve_local_runtime_process(tmp_path: Path) -> None:
    run = serve_until_ready_then_terminate(tmp_path, "local", ready_within=30)
    assert_clean_run(run, "local")


@pytest.mark.ray
def test_serve_ray_runtime_process_shuts_down_gracefully(tmp_path: Path) -> None:
    """ray.init() installs a SIGTERM handler of its own; the server must still shut down cleanly."""
    run = serve_until_ready_then_terminate(tmp_path, "ray", ready_within=90)
    assert_clean_run(run, "ray")


def test_serve_refuses_to_start_without_required_secrets_outside_demo(tmp_path: Path) -> None:
    """Secrets that have demo defaults are required unless --demo is given."""
    proc = subprocess.run(
        [sys.executable, "-m", "questline", "serve", "--runtime", "local", "--port", "0",
         "--data-dir", str(tmp_path / "data")],
        env=clean_env(), cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "QUESTLINE_QUESTMASTER_SECRET" in proc.stderr
