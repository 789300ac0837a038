"""Load generation: closed-loop and open-loop HTTP load from separate processes.

The harness never generates load from its own process: each load phase spawns
``processes`` worker processes (``multiprocessing`` spawn), each running its own
uvloop event loop with its share of the connections (and of the rate), so the
load generator shares neither an event loop nor a GIL with the harness (progress
bars, CPU sampling) or the server.

Modes
-----
closed  ``connections`` connections, each sends a request as soon as the previous
        answer arrived. Latency = answer time - send time. Throughput is what the
        server (or the client...) manages at that concurrency.
open    requests are *scheduled* at a fixed ``rate`` (evenly spaced, staggered
        across processes) whatever the server does, and sent on a pool of
        ``connections`` keep-alive connections; a request that finds every
        connection busy waits in a queue. Latency = answer time - **intended**
        send time, so time spent queued behind a slow server counts (no
        coordinated omission). ``service_latency`` (from the actual send) is
        reported beside it.

Both modes discard a warm-up, measure the requests *intended* within the
window, and then wait up to ``drain_timeout`` for the ones still in flight;
unanswered ones are ``incomplete``.

Honesty checks, reported per process and merged by the harness:
CPU of each client process over the window (one event loop cannot use more
than one core), the lag of a 10 ms timer in the client loop, and in open loop
how late each request was dispatched relative to its intended time (the
client's own lag, as opposed to waiting for a free connection, which is the
server's).

Requests come from a *source*: ``"module:callable"`` called in the worker as
``callable(params, endpoint=..., prefix=..., worker=i, workers=n)`` returning
an object with ``next_request() -> bytes`` (a complete, encoded HTTP/1.1
request) and optionally ``on_answer(request, status, body)``, called with the
very bytes object it returned once it is answered (flows whose next request
depends on an answer: a minigame result needs its session's token). A 2xx answer is ``ok``; anything else is an error, counted by status.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import multiprocessing as mp
import multiprocessing.sharedctypes
import queue as queue_mod
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, MutableSequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import msgspec

from benchmarks.client import Connection, HTTPError, parse_url
from benchmarks.histogram import Histogram

LOOP_PROBE_INTERVAL = 0.010  # s: the client loop-lag probe's timer
MIN_SLEEP = 0.001  # s: the open-loop dispatcher's shortest timer
LATE_DISPATCH = 0.010  # s: an open-loop send later than this behind schedule is "late"
CLIENT_CPU_SATURATED = 90.0  # % of one core used by one client process
SCHEDULE_LAG_SATURATED_MS = 10.0  # open loop: p99 dispatch lag beyond this = client behind
LOOP_LAG_SATURATED_MS = 25.0  # p99 lag of a 10 ms timer in the client loop
MAX_ERROR_SAMPLES = 5



async def window_probe(
    ms: float, end: float, cpu: list[float], loop_lag: Any, progress: Callable[[], tuple[int, int]],
    report: Callable[[int, int], None],
) -> None:
    """Until ``end``: the worker's loop lag (timer overshoot) and CPU over the measured window
    ``[ms, end)`` into ``loop_lag`` / ``cpu``, and ``report(ok, errors)`` of ``progress()``
    every tick for the harness's progress bar. One probe for every load shape."""
    monotonic = time.monotonic
    started = False
    while True:
        before = monotonic()
        if before >= end and started:
            cpu[1] = time.process_time()
            return
        if before >= ms and not started:
            cpu[0] = time.process_time()
            started = True
        await asyncio.sleep(LOOP_PROBE_INTERVAL)
        if ms <= before < end:
            loop_lag.record(int((monotonic() - before - LOOP_PROBE_INTERVAL) * 1_000_000 + 0.5))
        report(*progress())

class LoadError(Exception):
    """The load phase could not run (connection refused, a worker crashed, ...)."""


class RequestSource(Protocol):
    def next_request(self) -> bytes: ...


SourceFactory = Callable[..., RequestSource]
R = TypeVar("R", bound=msgspec.Struct)


class LoadSpec(msgspec.Struct, frozen=True):
    """One load phase: what to send, how, for how long."""

    url: str
    source: str  # "module:callable" building a RequestSource in each worker
    params: dict[str, Any]
    mode: Literal["closed", "open"] = "closed"
    connections: int = 64
    rate: float | None = None  # open loop: requests/s across all processes
    warmup: float = 1.0
    seconds: float = 5.0
    drain_timeout: float = 5.0
    processes: int = 1
    max_backlog_seconds: float = 5.0  # open loop: stop queueing beyond rate x this
    interval: float = 0.25  # s: resolution of the throughput timeline


class WorkerResult(msgspec.Struct):
    worker: int
    histogram: dict[str, Any]
    service: dict[str, Any]
    schedule_lag: dict[str, Any]
    loop_lag: dict[str, Any]
    ok: int
    ok_in_window: int  # ok answers that arrived within the window (throughput)
    errors: int
    incomplete: int
    status_counts: dict[str, int]
    error_samples: list[str]
    timeline_ok: dict[int, int]
    timeline_errors: dict[int, int]
    cpu_seconds: float
    late_dispatches: int
    max_backlog: int
    shed: int


@dataclass
class LoadOutcome:
    """Merged results of every worker of one phase."""

    spec: LoadSpec
    histogram: Histogram
    service: Histogram
    schedule_lag: Histogram
    loop_lag: Histogram
    ok: int
    ok_in_window: int
    errors: int
    incomplete: int
    status_counts: dict[str, int]
    error_samples: list[str]
    timeline: list[tuple[float, int, int]]  # (bucket start rel. to the window, ok, errors)
    cpu_percent: list[float]  # per process, % of one core over the window
    late_dispatches: int
    max_backlog: int
    shed: int
    warnings: list[str] = field(default_factory=list)

    @property
    def client_saturated(self) -> bool:
        return bool(self.saturation_reasons())

    def saturation_reasons(self) -> list[str]:
        return saturation_reasons(
            self.cpu_percent, self.loop_lag, self.schedule_lag if self.spec.mode == "open" else None
        )


def saturation_reasons(cpu_percent: list[float], loop_lag: Histogram, schedule_lag: Histogram | None) -> list[str]:
    """Why the load generator itself may have been the limit (empty: it kept up)."""
    reasons = []
    busiest = max(cpu_percent, default=0.0)
    if busiest >= CLIENT_CPU_SATURATED:
        reasons.append(
            f"a load-generator process used {busiest:.0f}% of a core (one event loop "
            f"cannot use more); add --clients or lower the load"
        )
    if loop_lag.total and loop_lag.percentile(99) / 1000 > LOOP_LAG_SATURATED_MS:
        starved = (
            f"; using only {busiest:.0f}% of a core, it was starved of CPU by the server or other processes"
            if busiest < CLIENT_CPU_SATURATED / 2 else ""
        )
        reasons.append(
            f"the client event loop lagged (p99 {loop_lag.percentile(99) / 1000:.1f} ms "
            f"on a {LOOP_PROBE_INTERVAL * 1000:.0f} ms timer){starved}"
        )
    if schedule_lag is not None and schedule_lag.total:
        p99 = schedule_lag.percentile(99) / 1000
        if p99 > SCHEDULE_LAG_SATURATED_MS:
            starved = f", starved of CPU (it used {busiest:.0f}% of a core)" if busiest < CLIENT_CPU_SATURATED / 2 else ""
            reasons.append(
                f"the client fell behind its own send schedule (dispatch lag p99 {p99:.1f} ms{starved}); "
                f"the offered rate was not really offered"
            )
    return reasons


def share(total: int, parts: int, index: int) -> int:
    """``index``'s share when ``total`` items are split as evenly as possible over ``parts``."""
    return total // parts + (1 if index < total % parts else 0)


class Schedule:
    """The open-loop send schedule of one worker: sends evenly spaced at ``rate``
    (all workers together) from ``start``; worker ``i`` of ``n`` takes every
    ``n``-th slot (``i``, ``i + n``, ...), so the workers interleave and their
    union is the full schedule. Times are ``time.monotonic()`` seconds."""

    __slots__ = ("rate", "start", "end", "slot", "step")

    def __init__(self, rate: float, start: float, end: float, *, worker: int = 0, workers: int = 1) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.start = start
        self.end = end
        self.slot = worker
        self.step = workers

    def peek(self) -> float | None:
        """Intended time of the next send, or ``None`` once past ``end``."""
        t = self.start + self.slot / self.rate
        return t if t < self.end else None

    def advance(self) -> None:
        self.slot += self.step

    def all(self) -> list[float]:
        out = []
        while (t := self.peek()) is not None:
            out.append(t)
            self.advance()
        return out


def intended_times(
    rate: float, start: float, end: float, *, worker: int = 0, workers: int = 1
) -> list[float]:
    """Every intended send time of one worker within ``[start, end)``."""
    return Schedule(rate, start, end, worker=worker, workers=workers).all()


def load_source(path: str) -> SourceFactory:
    module_name, _, attr = path.partition(":")
    if not attr:
        raise ValueError(f"source must be 'module:callable', got {path!r}")
    return getattr(importlib.import_module(module_name), attr)


# -- the worker process --------------------------------------------------------------
class _Recorder:
    """Per-worker bookkeeping, kept in plain attributes for speed."""

    def __init__(self, start: float, measure_start: float, measure_end: float, interval: float) -> None:
        self.t0 = start
        self.interval = interval
        self.ms = measure_start
        self.end = measure_end
        self.hist = Histogram()
        self.service = Histogram()
        self.ok = 0
        self.ok_in_window = 0
        self.errors = 0
        self.done_total = 0
        self.errors_total = 0
        self.status_counts: dict[str, int] = {}
        self.samples: list[str] = []
        self.timeline_ok: dict[int, int] = {}
        self.timeline_err: dict[int, int] = {}
        self.inflight_measured = 0

    def record(self, intended: float, sent: float, done: float, status: int, body: bytes) -> None:
        ok = 200 <= status < 300
        second = math.floor((done - self.t0) / self.interval)  # timeline bucket from the phase start
        self.done_total += 1
        if ok and self.ms <= done < self.end:
            self.ok_in_window += 1
        if ok:
            self.timeline_ok[second] = self.timeline_ok.get(second, 0) + 1
        else:
            self.errors_total += 1
            self.timeline_err[second] = self.timeline_err.get(second, 0) + 1
        if not (self.ms <= intended < self.end):
            return
        self.hist.record(int((done - intended) * 1_000_000 + 0.5))
        if sent != intended:
            self.service.record(int((done - sent) * 1_000_000 + 0.5))
        key = str(status) if status else "connection"
        self.status_counts[key] = self.status_counts.get(key, 0) + 1
        if ok:
            self.ok += 1
        else:
            self.errors += 1
            if len(self.samples) < MAX_ERROR_SAMPLES:
                sample = f"{key}: {body[:300].decode('utf-8', 'replace')}"
                if sample not in self.samples:
                    self.samples.append(sample)


async def run_worker(
    spec: LoadSpec,
    index: int,
    *,
    on_ready: Callable[[], None],
    wait_go: Callable[[], Awaitable[float]],
    progress: MutableSequence[int],
) -> WorkerResult:
    """One worker's share of a phase: connect, report ready, wait for the start time
    ``wait_go()`` returns (``time.monotonic()`` seconds), run, drain, return its numbers."""
    endpoint, prefix = parse_url(spec.url)
    factory = load_source(spec.source)
    source = factory(spec.params, endpoint=endpoint, prefix=prefix, worker=index, workers=spec.processes)
    next_request = source.next_request
    on_answer: Callable[[bytes, int, bytes], None] | None = getattr(source, "on_answer", None)
    n_conns = max(1, share(spec.connections, spec.processes, index))
    conns = [Connection(endpoint) for _ in range(n_conns)]
    try:
        await asyncio.gather(*(c.connect() for c in conns))
    except OSError as exc:
        raise LoadError(f"cannot connect to {endpoint.authority}: {exc}") from None
    on_ready()
    loop = asyncio.get_running_loop()
    t0 = await wait_go()
    ms = t0 + spec.warmup
    end = ms + spec.seconds
    rec = _Recorder(t0, ms, end, spec.interval)
    loop_lag = Histogram()
    schedule_lag = Histogram()
    cpu = [0.0, 0.0]
    late = 0
    max_backlog = 0
    shed = 0
    monotonic = time.monotonic
    await asyncio.sleep(max(0.0, t0 - monotonic()))

    def report(ok: int, errors: int) -> None:
        progress[2 * index], progress[2 * index + 1] = ok, errors

    def probe() -> Awaitable[None]:
        return window_probe(ms, end, cpu, loop_lag, lambda: (rec.done_total - rec.errors_total, rec.errors_total),
                            report)

    async def closed_conn(conn: Connection) -> None:
        while True:
            start = monotonic()
            if start >= end:
                return
            measured = start >= ms
            if measured:
                rec.inflight_measured += 1
            data = next_request()
            try:
                status, body = await conn.request(data)
            except (HTTPError, OSError) as exc:
                status, body = 0, str(exc).encode()
            if measured:
                rec.inflight_measured -= 1
            rec.record(start, start, monotonic(), status, body)
            if on_answer is not None:
                on_answer(data, status, body)
            if status == 0:
                await asyncio.sleep(0.05)  # do not spin on a refused connection

    pending: deque[float] = deque()
    wakeups: deque[asyncio.Future[None]] = deque()
    dispatch_done = False

    async def open_conn(conn: Connection) -> None:
        while True:
            while not pending:
                if dispatch_done:
                    return
                fut: asyncio.Future[None] = loop.create_future()
                wakeups.append(fut)
                await fut
            intended = pending.popleft()
            measured = ms <= intended < end
            if measured:
                rec.inflight_measured += 1
            sent = monotonic()
            data = next_request()
            try:
                status, body = await conn.request(data)
            except (HTTPError, OSError) as exc:
                status, body = 0, str(exc).encode()
            if measured:
                rec.inflight_measured -= 1
            rec.record(intended, sent, monotonic(), status, body)
            if on_answer is not None:
                on_answer(data, status, body)

    def wake_one() -> None:
        while wakeups:
            fut = wakeups.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    async def dispatcher() -> None:
        nonlocal late, max_backlog, shed, dispatch_done
        assert spec.rate is not None
        schedule = Schedule(spec.rate, t0, end, worker=index, workers=spec.processes)
        backlog_cap = max(1000, int(spec.rate / spec.processes * spec.max_backlog_seconds))
        burst = 0
        try:
            while (intended := schedule.peek()) is not None:
                now = monotonic()
                if intended > now:
                    # Timers have 1 ms resolution: shorter sleeps would spin and eat the
                    # CPU the server needs. Sends are released in 1 ms ticks instead; the
                    # tick's lateness is recorded (schedule lag) and counted in latency.
                    burst = 0
                    await asyncio.sleep(max(intended - now, MIN_SLEEP))
                    continue
                schedule.advance()
                measured = intended >= ms
                lag = now - intended
                if measured:
                    schedule_lag.record(int(lag * 1_000_000 + 0.5))
                    if lag > LATE_DISPATCH:
                        late += 1
                if len(pending) >= backlog_cap:
                    if measured:
                        shed += 1  # the server is this far behind: stop queueing
                    continue
                pending.append(intended)
                max_backlog = max(max_backlog, len(pending))
                wake_one()
                burst += 1
                if burst >= 64:  # far behind: let the connections run between sends
                    burst = 0
                    await asyncio.sleep(0)
        finally:
            dispatch_done = True
            while wakeups:
                wake_one()

    probe_task = asyncio.create_task(probe())
    if spec.mode == "closed":
        tasks = [asyncio.create_task(closed_conn(c)) for c in conns]
    else:
        if not spec.rate or spec.rate <= 0:
            raise LoadError("open-loop mode needs a positive --rate")
        tasks = [asyncio.create_task(dispatcher())]
        tasks += [asyncio.create_task(open_conn(c)) for c in conns]
    await probe_task
    done, still = await asyncio.wait(tasks, timeout=max(0.0, end + spec.drain_timeout - monotonic()))
    for task in still:
        task.cancel()
    await asyncio.gather(*still, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    for conn in conns:
        conn.close()
    unsent = sum(1 for t in pending if ms <= t < end)
    progress[2 * index] = rec.done_total - rec.errors_total
    progress[2 * index + 1] = rec.errors_total
    return WorkerResult(
        worker=index,
        histogram=rec.hist.to_dict(),
        service=rec.service.to_dict(),
        schedule_lag=schedule_lag.to_dict(),
        loop_lag=loop_lag.to_dict(),
        ok=rec.ok,
        ok_in_window=rec.ok_in_window,
        errors=rec.errors,
        incomplete=rec.inflight_measured + unsent + shed,
        status_counts=rec.status_counts,
        error_samples=rec.samples,
        timeline_ok=rec.timeline_ok,
        timeline_errors=rec.timeline_err,
        cpu_seconds=max(0.0, cpu[1] - cpu[0]),
        late_dispatches=late,
        max_backlog=max_backlog,
        shed=shed,
    )


WorkerFn = Callable[..., Awaitable[msgspec.Struct]]


def worker_main(
    worker: str, spec: Any, index: int, go: Any, t0_value: Any, out_q: Any, progress: Any
) -> None:
    """Entry point of a load-generator process: runs the coroutine function ``worker``
    ("module:function", e.g. :func:`run_worker`) on uvloop and sends back its result."""
    try:
        try:
            import uvloop

            runner: Callable[[Any], msgspec.Struct] = uvloop.run
        except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
            runner = asyncio.run
        fn: WorkerFn = load_source(worker)  # type: ignore[assignment]

        async def wait_go() -> float:
            await asyncio.get_running_loop().run_in_executor(None, go.wait)
            return float(t0_value.value)

        result = runner(
            fn(spec, index, on_ready=lambda: out_q.put(("ready", index, None)), wait_go=wait_go, progress=progress)
        )
        out_q.put(("result", index, msgspec.msgpack.encode(result)))
    except LoadError as exc:
        out_q.put(("error", index, str(exc)))
    except BaseException as exc:  # report, do not hang the harness
        out_q.put(("error", index, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


# -- the harness side -----------------------------------------------------------------
@dataclass
class PhaseHooks:
    """Called by :func:`run_phase` in the harness process while a phase runs."""

    on_window_start: Callable[[], None] = lambda: None
    on_window_end: Callable[[], None] = lambda: None
    on_tick: Callable[[float, int, int], None] = lambda elapsed, ok, errors: None


def run_phase(
    worker: str,
    spec: Any,
    result_type: type[R],
    *,
    processes: int,
    warmup: float,
    seconds: float,
    drain_timeout: float,
    hooks: PhaseHooks | None = None,
    ready_timeout: float = 60.0,
) -> list[R]:
    """Run ``worker`` ("module:coroutine function") in ``processes`` fresh processes.

    Each gets ``(spec, index, on_ready=, wait_go=, progress=)``; once all are ready
    they start together at one ``time.monotonic()`` instant. ``progress`` is a
    shared array of two counters per process (ok, errors) for the progress bar.
    """
    hooks = hooks or PhaseHooks()
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    out_q = ctx.Queue()
    t0_value = ctx.Value("d", 0.0, lock=False)
    progress: multiprocessing.sharedctypes.SynchronizedArray[int] = ctx.Array(  # type: ignore[assignment]
        "q", 2 * processes, lock=False
    )
    procs = [
        ctx.Process(
            target=worker_main, args=(worker, spec, i, go, t0_value, out_q, progress),
            name=f"questline-bench-load-{i}", daemon=True,
        )
        for i in range(processes)
    ]
    for proc in procs:
        proc.start()
    try:
        ready = 0
        deadline = time.monotonic() + ready_timeout
        while ready < processes:
            kind, index, payload = _get(out_q, deadline, procs)
            if kind == "error":
                raise LoadError(f"load worker {index}: {payload}")
            ready += kind == "ready"
        t0 = time.monotonic() + 0.2
        t0_value.value = t0
        go.set()
        ms, end = t0 + warmup, t0 + warmup + seconds
        window_started = False
        while True:
            now = time.monotonic()
            if not window_started and now >= ms:
                hooks.on_window_start()
                window_started = True
            if now >= end:
                if not window_started:
                    hooks.on_window_start()
                hooks.on_window_end()
                break
            hooks.on_tick(max(0.0, now - t0), sum(progress[0::2]), sum(progress[1::2]))
            next_mark = ms if not window_started else end
            time.sleep(max(0.0, min(0.25, next_mark - now)))
        results: list[R] = []
        deadline = end + 2 * drain_timeout + 30.0  # answers, then (sse) frames, may each drain
        while len(results) < processes:
            kind, index, payload = _get(out_q, deadline, procs)
            if kind == "error":
                raise LoadError(f"load worker {index}: {payload}")
            if kind == "result":
                results.append(msgspec.msgpack.decode(payload, type=result_type))
        hooks.on_tick(warmup + seconds, sum(progress[0::2]), sum(progress[1::2]))
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
    return results


def run_load(spec: LoadSpec, hooks: PhaseHooks | None = None, *, ready_timeout: float = 60.0) -> LoadOutcome:
    """Run one HTTP load phase in ``spec.processes`` fresh worker processes and merge their results."""
    results = run_phase(
        "benchmarks.load:run_worker", spec, WorkerResult, processes=spec.processes, warmup=spec.warmup,
        seconds=spec.seconds, drain_timeout=spec.drain_timeout, hooks=hooks, ready_timeout=ready_timeout,
    )
    return merge(spec, results)


def _get(out_q: Any, deadline: float, procs: list[Any]) -> tuple[str, int, Any]:
    while True:
        try:
            return out_q.get(timeout=0.5)
        except queue_mod.Empty:
            dead = [p for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
            if dead:
                raise LoadError(f"load worker {dead[0].name} died (exit code {dead[0].exitcode})") from None
            if time.monotonic() > deadline:
                raise LoadError("load workers did not answer in time") from None


def merge(spec: LoadSpec, results: list[WorkerResult]) -> LoadOutcome:
    hist, service, sched, lag = Histogram(), Histogram(), Histogram(), Histogram()
    status_counts: dict[str, int] = {}
    samples: list[str] = []
    timeline: dict[int, list[int]] = {}
    for r in sorted(results, key=lambda r: r.worker):
        hist.merge(Histogram.from_dict(r.histogram))
        service.merge(Histogram.from_dict(r.service))
        sched.merge(Histogram.from_dict(r.schedule_lag))
        lag.merge(Histogram.from_dict(r.loop_lag))
        for key, count in r.status_counts.items():
            status_counts[key] = status_counts.get(key, 0) + count
        samples += [s for s in r.error_samples if s not in samples][: MAX_ERROR_SAMPLES - len(samples)]
        for bucket, count in r.timeline_ok.items():
            timeline.setdefault(int(bucket), [0, 0])[0] += count
        for bucket, count in r.timeline_errors.items():
            timeline.setdefault(int(bucket), [0, 0])[1] += count
    window = spec.seconds
    return LoadOutcome(
        spec=spec,
        histogram=hist,
        service=service,
        schedule_lag=sched,
        loop_lag=lag,
        ok=sum(r.ok for r in results),
        ok_in_window=sum(r.ok_in_window for r in results),
        errors=sum(r.errors for r in results),
        incomplete=sum(r.incomplete for r in results),
        status_counts=dict(sorted(status_counts.items())),
        error_samples=samples,
        timeline=[
            (round(b * spec.interval - spec.warmup, 6), ok, err) for b, (ok, err) in sorted(timeline.items())
        ],
        cpu_percent=[r.cpu_seconds / window * 100 if window else 0.0 for r in results],
        late_dispatches=sum(r.late_dispatches for r in results),
        max_backlog=max((r.max_backlog for r in results), default=0),
        shed=sum(r.shed for r in results),
    )
