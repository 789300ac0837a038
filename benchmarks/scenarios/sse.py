"""``sse``: QuestKit live updates, ``GET /v1/sse/updates``: delivery latency under load.

``--streams`` (2,000) concurrent streams across ``--stream-users`` (500) fresh
users, held while producers post events for those users at ``--stream-rate``
(1,000 events/s, open loop). Reports streams held, events/s, and delivery
latency: from the event's ``200`` answer to the ``update`` frame on each of the
user's streams (p50/p99/max), with exact event<->frame correlation (see
benchmarks/streams.py), plus missing and misdelivered frames.

On a server the harness started it adds one counter mission to the app's
catalog (``PUT /v1/admin/catalog``) so every event changes exactly one mission;
against ``--url`` it leaves the catalog alone and posts the catalog's own
events, whose updates stop once a user's missions are completed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from benchmarks.harness import (
    RATE_SHORTFALL,
    Harness,
    Scenario,
    ScenarioUnavailable,
    Target,
    histogram_data,
    latency_of,
    noise_of,
)
from benchmarks.histogram import Histogram
from benchmarks.load import PhaseHooks, run_phase, saturation_reasons
from benchmarks.scenarios import _questkit
from benchmarks.schema import ClientStats, Result, TimelinePoint
from benchmarks.server import CpuWindow
from benchmarks.streams import StreamSpec, StreamWorkerResult, probe_stream

STREAM_PATH = "/v1/sse/updates"


def _sum_hist(results: list[StreamWorkerResult], field: str) -> Histogram:
    total = Histogram()
    for r in results:
        total.merge(Histogram.from_dict(getattr(r, field)))
    return total


def _add(counts: list[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return dict(sorted(out.items()))


def run(h: Harness, target: Target) -> list[Result]:
    s = h.settings
    users = _questkit.tokens(h, target, s.stream_users, group="sse")
    token = users[0][1]
    _questkit.check_route(target, token, "POST", "/v1/events", b"{}")
    assert target.url is not None
    try:
        status, body = asyncio.run(probe_stream(target.url, STREAM_PATH, token))
    except Exception as exc:
        raise ScenarioUnavailable(f"GET {STREAM_PATH} failed: {exc}") from None
    if status in _questkit.NOT_SERVED:
        raise ScenarioUnavailable(f"server has no GET {STREAM_PATH}: QuestKit surface not available")
    if status != 200:
        raise ScenarioUnavailable(f"GET {STREAM_PATH} answered {status}: {body[:200]}")
    warnings: list[str] = []
    why_not = _questkit.install_bench_mission(h, target)
    if why_not is None:
        templates = [_questkit.BENCH_EVENT]
    else:
        templates, template_warnings = _questkit.event_templates(h, target, token)
        warnings += [
            f"using the catalog's own events ({why_not}): updates stop once a user's missions complete",
            *template_warnings,
        ]
    spec = StreamSpec(
        url=target.url, users=users, streams=s.streams, rate=s.stream_rate, events=templates,
        tag=h.run_tag, warmup=s.warmup, seconds=s.seconds, drain_timeout=s.drain_timeout,
        processes=min(s.clients, len(users)), stream_path=STREAM_PATH,
    )
    label = f"sse [{target.runtime}/{target.durability}]" if target.runtime else "sse"
    cpu = CpuWindow(target.server_pid)
    bar = h.bar(label, s.warmup + s.seconds)
    if bar.disable:
        h.note(f"running {label}: opening {s.streams:,} streams ...")

    def tick(elapsed: float, ok: int, errors: int) -> None:
        bar.set_postfix_str(f"{ok:,} events" + (f", {errors:,} errors" if errors else ""), refresh=False)
        bar.update(min(bar.total, elapsed) - bar.n)

    try:
        results = run_phase(
            "benchmarks.streams:run_stream_worker", spec, StreamWorkerResult, processes=spec.processes,
            warmup=s.warmup, seconds=s.seconds, drain_timeout=s.drain_timeout,
            hooks=PhaseHooks(on_window_start=cpu.start, on_window_end=cpu.stop, on_tick=tick),
            ready_timeout=spec.connect_timeout + 30,
        )
    finally:
        bar.close()
    return [_result(h, target, spec, results, cpu, warnings, templates)]


def _result(
    h: Harness, target: Target, spec: StreamSpec, results: list[StreamWorkerResult], cpu: CpuWindow,
    warnings: list[str], templates: list[dict[str, Any]],
) -> Result:
    delivery = _sum_hist(results, "delivery")
    from_send = _sum_hist(results, "delivery_from_send")
    post_latency = _sum_hist(results, "post_latency")
    loop_lag = _sum_hist(results, "loop_lag")
    schedule_lag = _sum_hist(results, "schedule_lag")
    total = {f: sum(getattr(r, f) for r in results) for f in (
        "streams_requested", "streams_opened", "streams_held", "disconnects", "posts_ok",
        "posts_ok_in_window", "posts_errors",
        "posts_incomplete", "expected", "delivered", "missing", "misdelivered", "unmatched", "early",
        "frames", "heartbeats",
    )}
    failures = _add([r.open_failures for r in results])
    cpu_percent = [r.cpu_seconds / spec.seconds * 100 for r in results]
    reasons = saturation_reasons(cpu_percent, loop_lag, schedule_lag)
    warnings = [*warnings, *(f"CLIENT-BOUND: {r} (delivery latency includes it)" for r in reasons)]
    if failures:
        samples = "; ".join(s for r in results for s in r.failure_samples)[:400]
        warnings.append(f"{sum(failures.values()):,} streams could not be opened ({failures}): {samples}")
    if total["disconnects"]:
        warnings.append(f"the server closed {total['disconnects']:,} streams during the run")
    if total["misdelivered"]:
        warnings.append(f"BUG: {total['misdelivered']:,} frames reached a stream of another user")
    if total["missing"]:
        warnings.append(
            f"{total['missing']:,} of {total['expected']:,} expected frames did not arrive "
            f"(waited {spec.drain_timeout:g} s after the last answer)"
        )
    if total["posts_incomplete"]:
        warnings.append(
            f"{total['posts_incomplete']:,} event posts got no answer within {spec.drain_timeout:g} s "
            "after the window (their frames are not expected)"
        )
    if total["unmatched"]:
        why = " (events that got no answer may still have been applied)" if total["posts_incomplete"] else ""
        warnings.append(f"{total['unmatched']:,} progress frames matched no answered event{why}")
    if not total["expected"]:
        warnings.append("no event changed a mission, so nothing was delivered: delivery latency not measured")
    throughput = total["posts_ok_in_window"] / spec.seconds
    post_lat = latency_of(post_latency)
    if throughput < RATE_SHORTFALL * spec.rate and not reasons:
        warnings.append(
            f"the server did not sustain the offered {spec.rate:,.0f} events/s (answered {throughput:,.0f}/s "
            f"in the window; event answer p50 {post_lat.p50 if post_lat else 0:,.0f} ms after the intended send)"
        )
    post_status = _add([r.post_status for r in results])
    if total["posts_errors"]:
        codes = ", ".join(f"{k}: {v:,}" for k, v in post_status.items() if not k.startswith("2"))
        warnings.append(f"{total['posts_errors']:,} event posts failed ({codes})")
    timeline: dict[int, list[int]] = {}
    for r in results:
        for b, n in r.timeline_ok.items():
            timeline.setdefault(int(b), [0, 0])[0] += n
        for b, n in r.timeline_errors.items():
            timeline.setdefault(int(b), [0, 0])[1] += n
    client_cpu = sum(cpu_percent)
    other, noise = noise_of(cpu, client_cpu, target)
    warnings += noise
    send_lat = latency_of(from_send)
    return Result(
        scenario="sse",
        workload=f"{total['streams_opened']:,} streams / {len(spec.users):,} users",
        status="ok", mode="open", unit="events/s", runtime=target.runtime, durability=target.durability,
        shards=target.shards, server_workers=target.workers, connections=total["streams_opened"],
        target_rate=spec.rate, warmup_s=spec.warmup, seconds=spec.seconds,
        requests=total["posts_ok"] + total["posts_errors"], ok=total["posts_ok"], errors=total["posts_errors"],
        incomplete=total["posts_incomplete"], status_counts=post_status,
        error_samples=[s for r in results for s in r.post_samples][:5],
        throughput=throughput, latency=latency_of(delivery),
        histogram=histogram_data(delivery),
        timeline=[TimelinePoint(t=round(b * spec.interval - spec.warmup, 6), ok=v[0], errors=v[1])
                  for b, v in sorted(timeline.items())],
        timeline_interval_s=spec.interval,
        client=ClientStats(
            processes=len(results), cpu_percent=client_cpu, max_process_cpu_percent=max(cpu_percent, default=0.0),
            loop_lag_p99_ms=loop_lag.percentile(99) / 1000, loop_lag_max_ms=loop_lag.max / 1000,
            schedule_lag_p99_ms=schedule_lag.percentile(99) / 1000, schedule_lag_max_ms=schedule_lag.max / 1000,
            saturated=bool(reasons),
        ),
        server_cpu_percent=cpu.server_percent, machine_cpu_percent=cpu.machine_percent, other_cpu_percent=other,
        warnings=warnings,
        extra={
            **total, "open_failures": failures, "users": len(spec.users), "event_templates": templates,
            "latency_is": "delivery: update frame received - event POST answered (200)",
            "post_latency": msgspec.to_builtins(post_lat) if post_lat else None,
            "delivery_from_send": msgspec.to_builtins(send_lat) if send_lat else None,
        },
    )


SCENARIO = Scenario(
    name="sse",
    description="QuestKit live updates: 2,000 SSE streams / 500 users, delivery latency at 1,000 events/s",
    needs="server",
    run=run,
    order=40,
    uses_baseline=False,  # nothing in the baseline is comparable to a held stream
)
