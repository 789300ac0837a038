"""What scenarios are written against: settings, targets, load phases, results.

A scenario module (``benchmarks/scenarios/<name>.py``) defines ``SCENARIO``, a
:class:`Scenario` whose ``run(harness, target)`` returns :class:`Result` rows.
HTTP scenarios call :meth:`Harness.load_phase` with a request source; the
harness runs the load in separate processes, shows a progress bar, samples
CPU, and turns the outcome into a result with its baseline ratio and honest
warnings. A scenario that cannot run raises :class:`ScenarioUnavailable` with
the reason; it becomes a ``failed`` row, never a number.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from tqdm import tqdm

from benchmarks.histogram import Histogram
from benchmarks.load import LoadError, LoadOutcome, LoadSpec, PhaseHooks, run_load
from benchmarks.schema import (
    BaselineRatio,
    ClientStats,
    HistogramData,
    Latency,
    Mode,
    Result,
    TimelinePoint,
)
from benchmarks.server import CpuWindow

NOISY_OTHER_CPU = 25.0  # % of a core used by processes that are neither server nor client
RATE_SHORTFALL = 0.95  # open loop: achieved < this x offered = the server did not keep up


class ScenarioUnavailable(Exception):
    """The scenario cannot run against this target (a route is missing, setup failed, ...)."""


Needs = Literal["server", "baseline", "in-process"]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    needs: Needs  # a questline server, the baseline server, or nothing (in-process)
    run: Callable[[Harness, Target], list[Result]]
    order: int = 50  # position in the default run and in the table
    uses_baseline: bool = True  # compared with the baseline (which then runs first)


@dataclass
class Settings:
    seconds: float = 5.0
    warmup: float = 1.0
    connections: int = 64
    rate: float | None = None  # open loop when set
    clients: int = 1  # load-generator processes
    users: int = 10_000
    drain_timeout: float = 5.0
    shards: int = 2
    workers: int = 1
    actors: int = 10_000  # engine scenario
    engine_callers: int = 256  # engine scenario
    streams: int = 2_000  # sse scenario
    stream_users: int = 500
    stream_rate: float = 1_000.0
    surface_users: int = 200  # minigame characters (a scrypt login each), Hatched buddies (a hatch each)
    app_id: str = "demo"
    app_secret: str = "demo-secret"
    progress: bool = True


@dataclass
class Target:
    """Where a scenario runs: a server URL (None for in-process scenarios) and its configuration."""

    url: str | None
    runtime: str | None = None
    durability: str | None = None
    shards: int | None = None
    workers: int | None = None
    server_pid: int | None = None
    cache: dict[str, Any] = field(default_factory=dict)  # per server: tokens, catalog, ...


def latency_of(hist: Histogram) -> Latency | None:
    """Percentiles in ms of a histogram of microseconds."""
    if hist.total == 0:
        return None
    ms = 1000.0
    return Latency(
        count=hist.total,
        min=hist.min / ms,
        mean=hist.mean / ms,
        p50=hist.percentile(50) / ms,
        p90=hist.percentile(90) / ms,
        p99=hist.percentile(99) / ms,
        p999=hist.percentile(99.9) / ms,
        max=hist.max / ms,
    )


def histogram_data(hist: Histogram) -> HistogramData | None:
    if hist.total == 0:
        return None
    d = hist.to_dict()
    return HistogramData(
        sub_bucket_bits=d["sub_bucket_bits"], total=d["total"], sum=d["sum"], min=d["min"],
        max=d["max"], buckets=[(int(a), int(b)) for a, b in d["buckets"]],
    )


def noise_of(cpu: CpuWindow, client_cpu: float, target: Target) -> tuple[float | None, list[str]]:
    """CPU used by processes that are neither the server nor the client, and a warning
    when it is enough to have disturbed the measurement."""
    if cpu.machine_percent is None:
        return None, []
    other = cpu.machine_percent - client_cpu - (cpu.server_percent or 0.0)
    if target.server_pid is not None and other > NOISY_OTHER_CPU:
        return other, [f"noisy machine: other processes used {other:.0f}% of a core during the window"]
    return other, []


class Harness:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.baseline: dict[str, Result] = {}  # workload -> result, measured first in the run
        self.run_tag = secrets.token_hex(3)  # keeps users of separate runs apart on one server

    # -- progress -----------------------------------------------------------------------
    def note(self, message: str) -> None:
        """A status line on stderr (never mixed into the results on stdout)."""
        if self.settings.progress:
            tqdm.write(message, file=sys.stderr)

    def bar(self, desc: str, total: float, unit: str = "s") -> tqdm:
        """A progress bar on a terminal; disabled (callers print one line instead) in logs."""
        return tqdm(
            total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
            disable=not (self.settings.progress and sys.stderr.isatty()), dynamic_ncols=True,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}",
        )

    # -- results --------------------------------------------------------------------------
    @staticmethod
    def failed(scenario: str, workload: str, target: Target, error: str, *, mode: Mode = "closed") -> Result:
        return Result(
            scenario=scenario, workload=workload, status="failed", mode=mode,
            unit="-", error=error, runtime=target.runtime, durability=target.durability,
            shards=target.shards, server_workers=target.workers,
        )

    def load_phase(
        self,
        *,
        scenario: str,
        workload: str,
        target: Target,
        source: str,
        params: dict[str, Any],
        unit: str = "req/s",
        baseline_workload: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Result:
        """Run one HTTP load phase against ``target`` and describe it as a :class:`Result`."""
        s = self.settings
        if target.url is None:
            raise ScenarioUnavailable("this scenario needs a server URL")
        spec = LoadSpec(
            url=target.url, source=source, params=params,
            mode="open" if s.rate else "closed", connections=s.connections, rate=s.rate,
            warmup=s.warmup, seconds=s.seconds, drain_timeout=s.drain_timeout, processes=s.clients,
        )
        label = f"{scenario} {workload}" + (f" [{target.runtime}/{target.durability}]" if target.runtime else "")
        cpu = CpuWindow(target.server_pid)
        total = s.warmup + s.seconds
        bar = self.bar(label, total)
        last = [0.0, 0, time.monotonic()]

        def tick(elapsed: float, ok: int, errors: int) -> None:
            now = time.monotonic()
            dt = now - float(last[2])
            if dt >= 0.5:
                rate = (ok + errors - int(last[1])) / dt
                bar.set_postfix_str(f"{rate:,.0f} {unit}" + (f", {errors:,} errors" if errors else ""))
                last[1], last[2] = ok + errors, now
            bar.update(min(total, elapsed) - bar.n)

        if bar.disable:
            self.note(f"running {label} ...")
        try:
            outcome = run_load(
                spec, PhaseHooks(on_window_start=cpu.start, on_window_end=cpu.stop, on_tick=tick)
            )
        finally:
            bar.close()
        return self._result(scenario, workload, target, outcome, cpu, unit, baseline_workload, extra or {})

    def _result(
        self,
        scenario: str,
        workload: str,
        target: Target,
        out: LoadOutcome,
        cpu: CpuWindow,
        unit: str,
        baseline_workload: str | None,
        extra: dict[str, Any],
    ) -> Result:
        spec = out.spec
        warnings: list[str] = []
        requests = out.ok + out.errors
        # Answers that arrived within the window: a server that falls behind an open-loop
        # rate and answers the backlog during the drain gets no credit for keeping up.
        throughput = out.ok_in_window / spec.seconds if spec.seconds else 0.0
        client_cpu = sum(out.cpu_percent)
        reasons = out.saturation_reasons()
        warnings += [f"CLIENT-BOUND: {r}" for r in reasons]
        if out.errors:
            codes = ", ".join(f"{k}: {v:,}" for k, v in out.status_counts.items() if not k.startswith("2"))
            warnings.append(f"{out.errors:,} of {requests:,} requests failed ({codes})")
            if "429" in out.status_counts:
                warnings.append(
                    "429 rate_limited: a per-user rate limit was hit; spread the load over more users "
                    "(--users; --surface-users for minigame and hatched)"
                )
        if out.incomplete:
            warnings.append(
                f"{out.incomplete:,} requests intended in the window got no answer within "
                f"{spec.drain_timeout:g} s after it (or were never sent: backlog cap)"
            )
        if spec.mode == "open" and spec.rate:
            if throughput < RATE_SHORTFALL * spec.rate and not reasons:
                warnings.append(
                    f"the server did not sustain the offered {spec.rate:,.0f} req/s "
                    f"(answered {throughput:,.0f} ok/s); latency includes the queueing"
                )
            if out.max_backlog > spec.connections:
                warnings.append(
                    f"requests waited for a free connection (max backlog {out.max_backlog:,}); "
                    "that wait is counted in latency"
                )
        other, noise = noise_of(cpu, client_cpu, target)
        warnings += noise
        ratio = None
        base = self.baseline.get(baseline_workload) if baseline_workload else None
        lat = latency_of(out.histogram)
        if base is not None and base.status == "ok" and base.throughput > 0 and lat and base.latency:
            ratio = BaselineRatio(
                baseline_workload=baseline_workload or "",
                throughput=throughput / base.throughput,
                p50=lat.p50 / base.latency.p50 if base.latency.p50 else 0.0,
                p99=lat.p99 / base.latency.p99 if base.latency.p99 else 0.0,
            )
        client = ClientStats(
            processes=spec.processes,
            cpu_percent=client_cpu,
            max_process_cpu_percent=max(out.cpu_percent, default=0.0),
            loop_lag_p99_ms=out.loop_lag.percentile(99) / 1000,
            loop_lag_max_ms=out.loop_lag.max / 1000,
            schedule_lag_p99_ms=out.schedule_lag.percentile(99) / 1000 if spec.mode == "open" else None,
            schedule_lag_max_ms=out.schedule_lag.max / 1000 if spec.mode == "open" else None,
            behind_schedule=out.late_dispatches if spec.mode == "open" else None,
            max_backlog=out.max_backlog if spec.mode == "open" else None,
            saturated=bool(reasons),
        )
        return Result(
            scenario=scenario, workload=workload, status="ok", mode=spec.mode, unit=unit,
            runtime=target.runtime, durability=target.durability, shards=target.shards,
            server_workers=target.workers, connections=spec.connections, target_rate=spec.rate,
            warmup_s=spec.warmup, seconds=spec.seconds, requests=requests, ok=out.ok,
            errors=out.errors, incomplete=out.incomplete, status_counts=out.status_counts,
            error_samples=out.error_samples, throughput=throughput, latency=lat,
            service_latency=latency_of(out.service) if spec.mode == "open" else None,
            histogram=histogram_data(out.histogram),
            timeline=[TimelinePoint(t=t, ok=ok, errors=err) for t, ok, err in out.timeline],
            timeline_interval_s=spec.interval,
            vs_baseline=ratio, client=client, server_cpu_percent=cpu.server_percent,
            machine_cpu_percent=cpu.machine_percent, other_cpu_percent=other,
            warnings=warnings, extra=extra,
        )


__all__ = [
    "Harness",
    "LoadError",
    "Scenario",
    "ScenarioUnavailable",
    "Settings",
    "Target",
    "histogram_data",
    "latency_of",
]
