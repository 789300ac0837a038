"""The result JSON: what the harness writes decodes, validated, into the msgspec Structs."""

from __future__ import annotations

import time

import msgspec
import pytest

from benchmarks.harness import Harness, Settings, Target
from benchmarks.load import LoadSpec, merge, run_worker
from benchmarks.run import render
from benchmarks.schema import SCHEMA_VERSION, Machine, Report, Result, encode_report, load_report
from benchmarks.server import CpuWindow
from tests.benchmarks.helpers import tiny_server


def report_with(results: list[Result]) -> Report:
    return Report(
        schema_version=SCHEMA_VERSION, started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T00:00:09Z",
        command=["python", "-m", "questline", "bench"],
        machine=Machine(cpus=2, python="3.11", platform="test", load_avg_start=[0.1, 0.2, 0.3]),
        settings={"seconds": 0.3}, results=results,
    )


async def measured_result(mode: str) -> Result:
    async with tiny_server() as url:
        spec = LoadSpec(url=url, source="tests.benchmarks.helpers:PlainSource", params={}, connections=2,
                        mode=mode, rate=300.0 if mode == "open" else None,  # type: ignore[arg-type]
                        warmup=0.0, seconds=0.3)

        async def go() -> float:
            return time.monotonic() + 0.01

        out = merge(spec, [await run_worker(spec, 0, on_ready=lambda: None, wait_go=go, progress=[0, 0])])
    cpu = CpuWindow(None)
    cpu.start()
    cpu.stop()
    h = Harness(Settings(progress=False))
    return h._result("test", "GET /ping", Target(url=url), out, cpu, "req/s", None, {"note": 1})


@pytest.mark.parametrize("mode", ["closed", "open"])
async def test_a_measured_result_round_trips(mode: str) -> None:
    result = await measured_result(mode)
    assert result.status == "ok" and result.latency is not None and result.histogram is not None
    assert (result.service_latency is not None) == (mode == "open")
    report = report_with([result])
    decoded = load_report(encode_report(report))
    assert decoded == report
    assert decoded.results[0].histogram is not None
    assert decoded.results[0].histogram.total == result.ok


def test_a_failed_result_round_trips_without_numbers() -> None:
    failed = Harness.failed("events", "-", Target(url=None, runtime="local"), "server has no /v1/events")
    decoded = load_report(encode_report(report_with([failed])))
    assert decoded.results[0].status == "failed"
    assert decoded.results[0].latency is None and decoded.results[0].throughput == 0
    assert "FAILED" in render(decoded.results) and "server has no /v1/events" in render(decoded.results)


def test_unknown_fields_wrong_types_and_other_versions_are_rejected() -> None:
    raw = msgspec.json.decode(encode_report(report_with([])))
    with pytest.raises(msgspec.ValidationError):
        load_report(msgspec.json.encode({**raw, "surprise": 1}))
    with pytest.raises(msgspec.ValidationError):
        load_report(msgspec.json.encode({**raw, "schema_version": SCHEMA_VERSION + 1}))
    bad_result = {"scenario": "x", "workload": "y", "status": "ok", "mode": "closed", "unit": "req/s",
                  "throughput": "fast"}
    with pytest.raises(msgspec.ValidationError):
        load_report(msgspec.json.encode({**raw, "results": [bad_result]}))
    with pytest.raises(msgspec.ValidationError):
        load_report(msgspec.json.encode({**raw, "results": [{**bad_result, "throughput": 1.0, "mode": "sideways"}]}))
