"""Open-loop scheduling, lag detection and the load worker, against an in-loop HTTP server."""

from __future__ import annotations

import socket
import time

import pytest

from benchmarks.load import (
    LoadError,
    LoadOutcome,
    LoadSpec,
    Schedule,
    intended_times,
    merge,
    run_worker,
    share,
)
from tests.benchmarks.helpers import ANSWERS, tiny_server

PLAIN = "tests.benchmarks.helpers:PlainSource"
BLOCKING = "tests.benchmarks.helpers:BlockingSource"


async def run_inline(spec: LoadSpec) -> LoadOutcome:
    """One worker in this event loop (the harness runs the same coroutine in a process)."""

    async def go() -> float:
        return time.monotonic() + 0.01

    result = await run_worker(spec, 0, on_ready=lambda: None, wait_go=go, progress=[0, 0])
    return merge(spec, [result])


# -- the schedule ---------------------------------------------------------------------
def test_intended_times_are_evenly_spaced_within_the_window() -> None:
    times = intended_times(100.0, 10.0, 11.0)
    assert len(times) == 100
    assert times[0] == 10.0
    assert all(t < 11.0 for t in times)
    gaps = {round(b - a, 9) for a, b in zip(times, times[1:], strict=False)}
    assert gaps == {0.01}


def test_workers_interleave_and_together_make_the_full_schedule() -> None:
    full = intended_times(1000.0, 0.0, 2.0)
    parts = [intended_times(1000.0, 0.0, 2.0, worker=i, workers=3) for i in range(3)]
    assert sorted(t for part in parts for t in part) == full
    assert [len(p) for p in parts] == [667, 667, 666]
    assert parts[1][0] == full[1]  # staggered, not three sends at once


def test_schedule_peek_and_advance() -> None:
    schedule = Schedule(2.0, 0.0, 1.5)
    seen = []
    while (t := schedule.peek()) is not None:
        seen.append(t)
        schedule.advance()
    assert seen == [0.0, 0.5, 1.0]
    with pytest.raises(ValueError):
        Schedule(0.0, 0.0, 1.0)


def test_share_splits_connections_evenly() -> None:
    assert [share(10, 3, i) for i in range(3)] == [4, 3, 3]
    assert sum(share(64, 5, i) for i in range(5)) == 64


# -- the worker -------------------------------------------------------------------------
async def test_closed_loop_counts_every_answer() -> None:
    async with tiny_server() as url:
        spec = LoadSpec(url=url, source=PLAIN, params={}, connections=4, warmup=0.1, seconds=0.4)
        out = await run_inline(spec)
    assert out.ok > 0 and out.errors == 0 and out.incomplete == 0
    assert out.histogram.total == out.ok
    assert out.status_counts == {"200": out.ok}
    assert out.service.total == 0  # closed loop: send time is the intended time
    assert sum(ok for _, ok, _ in out.timeline) >= out.ok  # the timeline includes the warm-up


async def test_errors_are_counted_by_status_with_samples() -> None:
    async with tiny_server(status_every=(3, 429)) as url:
        spec = LoadSpec(url=url, source=PLAIN, params={}, connections=2, warmup=0.0, seconds=0.3)
        out = await run_inline(spec)
    assert out.errors > 0 and out.ok > 0
    assert out.status_counts["429"] == out.errors
    assert out.error_samples and out.error_samples[0].startswith("429")


async def test_refused_connection_is_a_load_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        spec = LoadSpec(url=f"http://127.0.0.1:{port}", source=PLAIN, params={}, connections=1, seconds=0.1)
        with pytest.raises(LoadError, match="cannot connect"):
            await run_inline(spec)


async def test_open_loop_measures_from_the_intended_send_time() -> None:
    """A server slower than the offered rate: requests queue for the one connection, and
    that queueing is in the latency (from intended time), not in the service time."""
    async with tiny_server(delay=0.02) as url:  # at most 50 answers/s on one connection
        spec = LoadSpec(url=url, source=PLAIN, params={}, mode="open", rate=200.0, connections=1,
                        warmup=0.0, seconds=0.5, drain_timeout=0.3)
        out = await run_inline(spec)
    assert out.max_backlog > 1
    assert out.histogram.percentile(99) > out.service.percentile(99)
    assert out.incomplete > 0  # the backlog could not be drained in time
    # Throughput counts answers within the window: the drain's answers get no credit.
    assert out.ok_in_window < out.ok


async def test_open_loop_detects_a_client_that_falls_behind() -> None:
    """The client blocks its own loop 20 ms per request at 200 req/s: it cannot dispatch
    on time, and says so instead of reporting the server as slow."""
    async with tiny_server() as url:
        spec = LoadSpec(url=url, source=BLOCKING, params={"block": 0.02}, mode="open", rate=200.0,
                        connections=2, warmup=0.0, seconds=0.5, drain_timeout=1.0)
        out = await run_inline(spec)
    assert out.late_dispatches > 0
    assert out.client_saturated
    assert any("behind its own send schedule" in r for r in out.saturation_reasons())


async def test_open_loop_needs_a_rate() -> None:
    async with tiny_server() as url:
        spec = LoadSpec(url=url, source=PLAIN, params={}, mode="open", rate=None, connections=1, seconds=0.1)
        with pytest.raises(LoadError, match="rate"):
            await run_inline(spec)


def test_client_cpu_saturation_is_reported() -> None:
    spec = LoadSpec(url="http://127.0.0.1:1", source=PLAIN, params={}, seconds=1.0)
    out = merge(spec, [])
    out.cpu_percent = [97.0]
    assert out.client_saturated
    assert "97% of a core" in out.saturation_reasons()[0]


@pytest.mark.parametrize("mode", ["closed", "open"])
async def test_a_source_hears_every_answer_to_the_request_it_made(mode: str) -> None:
    key = f"follow-{mode}"
    async with tiny_server(status_every=(4, 503)) as url:
        out = await run_inline(LoadSpec(
            url=url, source="tests.benchmarks.helpers:FollowUpSource", params={"key": key}, connections=3,
            mode=mode, rate=400.0 if mode == "open" else None,  # type: ignore[arg-type]
            warmup=0.05, seconds=0.3,
        ))
    answers = ANSWERS.pop(key)
    assert answers and all(same for same, _, _ in answers)  # the very object next_request returned
    assert {status for _, status, _ in answers} == {200, 503}
    assert len(answers) >= out.ok + out.errors  # warm-up answers too
