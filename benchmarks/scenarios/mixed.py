"""``mixed``: QuestKit's realistic mix, 80 % event writes / 15 % reads / 5 % streams, at once.

Fresh users (``--stream-users``, 500: each gets ~2 events/s at 1,000 ops/s,
well under QuestKit's 100 events/min per token) and ``--connections`` closed-loop
connections; see benchmarks/mixed.py for the pattern and the delivery
correlation. One row per class, measured in the same window by the same client:

- ``write``: ``POST /v1/events`` (catalog events, plus the bench counter mission
  on a server this run started, as ``sse`` does), vs the baseline ``POST``;
- ``read``: ``GET /v1/missions`` / ``GET /v1/balance`` in turn, vs the baseline ``GET``;
- ``stream``: subscribers opened during the run and held; latency = delivery of
  the writers' events to them (frame - event answer), throughput = frames
  delivered per second; time to open a stream in ``extra.open_latency``.

``client%``/``server%`` are the whole mix's (the same on the three rows).
"""

from __future__ import annotations

import asyncio

import msgspec

from benchmarks.harness import Harness, Scenario, ScenarioUnavailable, Target, latency_of
from benchmarks.histogram import Histogram
from benchmarks.load import LoadSpec, PhaseHooks, merge, run_phase
from benchmarks.mixed import MixedSpec, MixedWorkerResult
from benchmarks.scenarios import _questkit
from benchmarks.scenarios.read import ROUTES
from benchmarks.scenarios.sse import STREAM_PATH
from benchmarks.schema import Result
from benchmarks.server import CpuWindow
from benchmarks.streams import probe_stream


def run(h: Harness, target: Target) -> list[Result]:
    s = h.settings
    if s.rate:
        raise ScenarioUnavailable("mixed runs closed loop only (its streams are held, not scheduled); drop --rate")
    users = _questkit.tokens(h, target, max(s.stream_users, 2 * s.connections), group="mix")
    token = users[0][1]
    _questkit.check_route(target, token, "POST", "/v1/events", b"{}")
    for path in ROUTES:
        _questkit.check_route(target, token, "GET", path)
    assert target.url is not None
    try:
        status, body = asyncio.run(probe_stream(target.url, STREAM_PATH, token))
    except Exception as exc:
        raise ScenarioUnavailable(f"GET {STREAM_PATH} failed: {exc}") from None
    if status != 200:
        raise ScenarioUnavailable(f"GET {STREAM_PATH} answered {status}: {body[:200]}")
    templates, warnings = _questkit.event_templates(h, target, token)
    if _questkit.install_bench_mission(h, target) is None:
        templates = [*templates, _questkit.BENCH_EVENT]
    else:
        warnings = [*warnings, "catalog events only: stream updates stop once a user's missions complete"]
    processes = min(s.clients, len(users))
    spec = MixedSpec(
        url=target.url, users=users, events=templates, read_paths=list(ROUTES), tag=h.run_tag,
        connections=s.connections, warmup=s.warmup, seconds=s.seconds, drain_timeout=s.drain_timeout,
        processes=processes, stream_path=STREAM_PATH,
    )
    label = "mixed" + (f" [{target.runtime}/{target.durability}]" if target.runtime else "")
    cpu = CpuWindow(target.server_pid)
    bar = h.bar(label, s.warmup + s.seconds)
    if bar.disable:
        h.note(f"running {label} ...")

    def tick(elapsed: float, ok: int, errors: int) -> None:
        bar.set_postfix_str(f"{ok:,} ok" + (f", {errors:,} errors" if errors else ""), refresh=False)
        bar.update(min(bar.total, elapsed) - bar.n)

    try:
        results = run_phase(
            "benchmarks.mixed:run_mixed_worker", spec, MixedWorkerResult, processes=processes,
            warmup=s.warmup, seconds=s.seconds, drain_timeout=s.drain_timeout,
            hooks=PhaseHooks(on_window_start=cpu.start, on_window_end=cpu.stop, on_tick=tick),
        )
    finally:
        bar.close()
    load = LoadSpec(url=target.url, source="benchmarks.mixed:run_mixed_worker", params={}, mode="closed",
                    connections=s.connections, warmup=s.warmup, seconds=s.seconds,
                    drain_timeout=s.drain_timeout, processes=processes)
    common = {"users": len(users), "mix": "80/15/5 write/read/stream", "event_templates": templates,
              "skipped_busy_users": sum(r.skipped_busy for r in results)}
    write = h._result("mixed", "write 80%: POST /v1/events", target, merge(load, [r.write for r in results]),
                      cpu, "events/s", "POST", common)
    read = h._result("mixed", "read 15%: GET /v1/missions|balance", target,
                     merge(load, [r.read for r in results]), cpu, "req/s", "GET", common)
    write.warnings[:0] = warnings
    return [write, read, _stream_row(h, target, load, results, cpu, common)]


def _stream_row(h: Harness, target: Target, load: LoadSpec, results: list[MixedWorkerResult], cpu: CpuWindow,
                common: dict[str, object]) -> Result:
    opened = merge(load, [r.stream for r in results])
    delivery, from_send = Histogram(), Histogram()
    for r in results:
        delivery.merge(Histogram.from_dict(r.delivery))
        from_send.merge(Histogram.from_dict(r.delivery_from_send))
    totals = {f: sum(getattr(r, f) for r in results) for f in (
        "streams_opened", "streams_failed", "streams_held", "expected", "delivered", "delivered_in_window", "missing",
        "misdelivered", "early")}
    open_latency = latency_of(opened.histogram)
    # The row's latency is delivery and its throughput frames delivered in the window.
    opened.histogram = delivery
    opened.ok_in_window = totals["delivered_in_window"]
    row = h._result("mixed", "stream 5%: delivery to held subscribers", target, opened, cpu, "frames/s", None, {
        **common, **totals, "streams_requested": totals["streams_opened"] + totals["streams_failed"],
        "latency_is": "delivery: update frame received - event POST answered (200)",
        "open_latency": msgspec.to_builtins(open_latency) if open_latency else None,
        "delivery_from_send": msgspec.to_builtins(latency_of(from_send)) if from_send.total else None,
    })
    if totals["misdelivered"]:
        row.warnings.append(f"BUG: {totals['misdelivered']:,} frames reached a stream of another user")
    if totals["missing"]:
        row.warnings.append(f"{totals['missing']:,} of {totals['expected']:,} expected frames did not arrive "
                            f"(waited {load.drain_timeout:g} s after the last answer)")
    if not totals["expected"]:
        row.warnings.append("no event after a stream opened changed a mission: delivery latency not measured")
    if totals["streams_opened"] != totals["streams_held"]:
        row.warnings.append(f"the server closed {totals['streams_opened'] - totals['streams_held']:,} streams")
    return row


SCENARIO = Scenario(
    name="mixed",
    description="QuestKit 80/15/5 mix: event writes, reads (missions/balance), held SSE streams with delivery latency",
    needs="server",
    run=run,
    order=45,
)
