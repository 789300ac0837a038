"""The ``sse`` scenario against the QuestKit contract double: it runs, its event<->frame
accounting is exact, and it reports lost and misdelivered frames instead of hiding them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.harness import Harness, Settings, Target
from benchmarks.scenarios import registry
from benchmarks.schema import Result, load_report
from benchmarks.server import ManagedServer, free_port
from questline import cli

SMALL = ["--streams", "60", "--stream-users", "20", "--stream-rate", "100", "--seconds", "1", "--warmup",
         "0.3", "--drain-timeout", "1", "--no-progress"]


@contextmanager
def fake_questkit(**env: str) -> Iterator[ManagedServer]:
    port = free_port()
    fake = ManagedServer(
        label="fake QuestKit", url=f"http://127.0.0.1:{port}", env=env,
        argv=[sys.executable, "-m", "uvicorn", "tests.benchmarks.fake_questkit:app", "--port", str(port),
              "--no-access-log", "--log-level", "warning"],
    )
    with fake:
        fake.start()
        yield fake


def sse_via_cli(url: str, tmp_path: Path) -> tuple[int, Result]:
    out = tmp_path / "sse.json"
    code = cli.main(["bench", "sse", "--url", url, *SMALL, "--json", str(out)], environ={})
    (result,) = load_report(out.read_bytes()).results
    return code, result


def test_sse_on_a_server_the_harness_owns_installs_its_counter_mission() -> None:
    with fake_questkit() as fake:
        h = Harness(Settings(streams=60, stream_users=20, stream_rate=100, seconds=1, warmup=0.3,
                             drain_timeout=1, progress=False))
        (result,) = registry()["sse"].run(h, Target(url=fake.url, runtime="fake", server_pid=fake.pid))
    assert result.status == "ok"
    assert result.extra["event_templates"] == [{"name": "questline.bench.tick", "payload": {}}]
    assert result.extra["streams_held"] == result.extra["streams_requested"] == 60
    assert result.extra["expected"] > 0
    assert result.extra["delivered"] == result.extra["expected"]
    assert result.extra["missing"] == result.extra["misdelivered"] == result.extra["unmatched"] == 0
    assert result.latency is not None and result.latency.count == result.extra["delivered"]
    assert result.ok > 0 and result.throughput > 0


def test_sse_against_a_running_server_uses_its_catalog(tmp_path: Path) -> None:
    with fake_questkit() as fake:
        code, result = sse_via_cli(fake.url, tmp_path)
    assert code == 0
    assert result.status == "ok" and result.runtime == "fake"
    assert {t["name"] for t in result.extra["event_templates"]} == {"purchase.completed", "cart.updated", "app.login"}
    assert result.extra["delivered"] == result.extra["expected"] > 0
    assert any("catalog's own events" in w for w in result.warnings)


def test_sse_reports_frames_that_reach_the_wrong_user(tmp_path: Path) -> None:
    with fake_questkit(FAKE_QUESTKIT_MISDELIVER="1") as fake:
        _, result = sse_via_cli(fake.url, tmp_path)
    assert result.extra["misdelivered"] > 0
    assert any(w.startswith("BUG:") for w in result.warnings)


def test_sse_reports_missing_frames(tmp_path: Path) -> None:
    with fake_questkit(FAKE_QUESTKIT_DROP_EVERY="7") as fake:
        _, result = sse_via_cli(fake.url, tmp_path)
    assert result.extra["missing"] > 0
    assert result.extra["delivered"] + result.extra["missing"] == result.extra["expected"]
    assert any("did not arrive" in w for w in result.warnings)
