"""Smoke runs of the real harness (``python -m questline bench``) against live servers.

Asserts that every scenario ran and produced numbers (or, for a surface the
server does not serve yet, failed with an honest message), never what the
numbers are. Local runtime only, ~1 s per workload.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from benchmarks.client import fetch, parse_url
from benchmarks.scenarios import registry
from benchmarks.schema import Report, Result, load_report
from benchmarks.server import ManagedServer, free_port, questline_server
from questline import cli

SHORT = ["--seconds", "1", "--warmup", "0.3", "--drain-timeout", "2", "--no-progress"]
QUESTKIT_MISSING = "QuestKit surface not available"


@pytest.fixture(scope="module")
def live_server() -> Iterator[tuple[ManagedServer, bool]]:
    """A running local-runtime server, and whether it serves QuestKit (POST /v1/auth/token)."""
    server = questline_server(runtime="local", durability="strict", shards=2)
    server.start()
    try:
        ep, _ = parse_url(server.url)
        body = msgspec.json.encode({"appId": "demo", "appSecret": "demo-secret", "userId": "probe"})
        status, _ = asyncio.run(
            fetch(ep, "POST", "/v1/auth/token", headers={"Content-Type": "application/json"}, body=body)
        )
        yield server, status not in (404, 405)
    finally:
        server.stop()


def bench(args: list[str], tmp_path: Path) -> tuple[int, Report]:
    out = tmp_path / "out.json"
    code = cli.main(["bench", *args, *SHORT, "--json", str(out)], environ={})
    return code, load_report(out.read_bytes())


def assert_produced_numbers(result: Result) -> None:
    assert result.status == "ok", result.error
    assert result.requests > 0 and result.ok > 0
    assert result.throughput > 0
    assert result.latency is not None and result.latency.count > 0
    assert result.histogram is not None


def assert_ran_or_honestly_unavailable(result: Result, questkit: bool, uses_baseline: bool) -> None:
    if questkit:
        assert_produced_numbers(result)
        held_streams = result.unit == "frames/s"  # mixed's stream row: nothing in the baseline compares
        assert (result.vs_baseline is not None) == (uses_baseline and not held_streams)
    else:
        assert result.status == "failed"
        assert result.error is not None and QUESTKIT_MISSING in result.error
        assert result.throughput == 0 and result.latency is None  # no fake numbers


def test_every_scenario_runs_against_servers_the_harness_starts(
    live_server: tuple[ManagedServer, bool], tmp_path: Path
) -> None:
    _, questkit = live_server
    scenarios = registry()
    plot = tmp_path / "out.png"
    code, report = bench(
        [*scenarios, "--runtime", "local", "--durability", "strict", "--users", "200",
         "--actors", "500", "--engine-callers", "32", "--connections", "16", "--streams", "100",
         "--stream-users", "20", "--stream-rate", "100", "--surface-users", "30", "--plot", str(plot)],
        tmp_path,
    )
    assert code == (0 if questkit else 1)
    assert plot.stat().st_size > 0
    by_scenario: dict[str, list[Result]] = {}
    for result in report.results:
        by_scenario.setdefault(result.scenario, []).append(result)
    assert set(by_scenario) == set(scenarios)
    for name, results in by_scenario.items():
        for result in results:
            if scenarios[name].needs == "server":
                assert result.runtime == "local" and result.durability == "strict"
                assert_ran_or_honestly_unavailable(result, questkit, scenarios[name].uses_baseline)
            else:
                assert_produced_numbers(result)
    assert [r.workload for r in by_scenario["baseline"]] == ["GET", "POST"]
    assert {r.mode for r in by_scenario["engine"]} == {"in-process"}
    for r in by_scenario["baseline"]:
        assert r.client is not None and r.server_cpu_percent is not None and r.timeline
    if questkit:
        write, read, stream = by_scenario["mixed"]
        assert [write.unit, read.unit, stream.unit] == ["events/s", "req/s", "frames/s"]
        assert write.vs_baseline is not None and write.vs_baseline.baseline_workload == "POST"
        assert read.vs_baseline is not None and read.vs_baseline.baseline_workload == "GET"
        assert stream.vs_baseline is None and stream.extra["streams_opened"] > 0
        assert stream.extra["delivered"] > 0 and stream.extra["misdelivered"] == 0
        assert stream.extra["open_latency"]["count"] > 0
        for surface in ("questmaster", "minigame", "hatched"):
            writes, reads = by_scenario[surface]
            assert writes.vs_baseline is not None and writes.vs_baseline.baseline_workload == "POST"
            assert reads.vs_baseline is not None and reads.vs_baseline.baseline_workload == "GET"


def test_url_mode_targets_a_running_server(live_server: tuple[ManagedServer, bool], tmp_path: Path) -> None:
    server, questkit = live_server
    code, report = bench(["events", "--url", server.url, "--no-baseline", "--users", "50"], tmp_path)
    assert code == (0 if questkit else 1)
    (result,) = report.results
    assert result.runtime == "local"  # learnt from the server's /readyz
    assert result.server_workers is None  # not ours: unknown
    if questkit:
        assert_produced_numbers(result)
    else:
        assert result.error is not None and QUESTKIT_MISSING in result.error


def test_open_loop_baseline(tmp_path: Path) -> None:
    code, report = bench(["baseline", "--rate", "400", "--connections", "8"], tmp_path)
    assert code == 0
    for result in report.results:
        assert_produced_numbers(result)
        assert result.mode == "open" and result.target_rate == 400
        assert result.service_latency is not None
        assert result.client is not None and result.client.schedule_lag_p99_ms is not None


def test_unknown_scenario_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "no-such-scenario"], environ={})
    assert exc.value.code == 2
    assert "unknown scenario" in capsys.readouterr().err


def test_questkit_scenarios_against_a_contract_double(tmp_path: Path) -> None:
    """events and read, end to end, against a stand-in that enforces the documented
    contract (valid events for the token's user, catalog-matching names and payloads,
    an Idempotency-Key each): whatever questline serves today, the scenarios' own
    requests are checked."""
    port = free_port()
    fake = ManagedServer(
        label="fake QuestKit", url=f"http://127.0.0.1:{port}",
        argv=[sys.executable, "-m", "uvicorn", "tests.benchmarks.fake_questkit:app", "--port", str(port),
              "--no-access-log", "--log-level", "warning"],
    )
    with fake:
        fake.start()
        code, report = bench(["events", "read", "--url", fake.url, "--no-baseline", "--users", "40",
                              "--connections", "8"], tmp_path)
    assert code == 0, [r.error for r in report.results]
    assert [r.scenario for r in report.results] == ["events", "read", "read"]
    for result in report.results:
        assert_produced_numbers(result)
        assert result.errors == 0, result.error_samples
        assert result.runtime == "fake"
    names = {t["name"] for t in report.results[0].extra["event_templates"]}
    assert names == {"purchase.completed", "cart.updated", "app.login"}
