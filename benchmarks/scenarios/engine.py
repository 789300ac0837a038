"""``engine``: raw actor messages/s with no HTTP (benchmarks/engine.py), per runtime and durability.

Runs in a child process of its own (the Ray runtime starts and stops its own
local Ray there), never beside a server under test. ``server%`` is that process
and its descendants (Ray's, for the Ray runtime) over each measured workload. Latency is per
``runtime.call`` in a closed loop of ``--engine-callers`` callers.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import queue
import time
import traceback
from typing import Any

from benchmarks.harness import (
    NOISY_OTHER_CPU,
    Harness,
    Scenario,
    ScenarioUnavailable,
    Target,
    histogram_data,
    latency_of,
)
from benchmarks.histogram import Histogram
from benchmarks.schema import Result
from benchmarks.server import CpuWindow

WORKLOAD_SETUP_ALLOWANCE = 15.0  # s: activation of the wide key space, Ray start


def _child(kwargs: dict[str, Any], out: Any) -> None:
    try:
        from benchmarks.engine import run_engine

        windows: dict[str, CpuWindow] = {}

        def window(edge: str, workload: str) -> None:
            # This process and its descendants: the engine, and Ray's processes if it started Ray.
            if edge == "start":
                windows[workload] = CpuWindow(os.getpid())
                windows[workload].start()
            else:
                windows[workload].stop()

        rows = [r.row() for r in asyncio.run(run_engine(**kwargs, window=window))]
        for row in rows:
            cpu = windows.get(row["workload"])
            row["server_cpu_percent"] = cpu.server_percent if cpu else None
            row["machine_cpu_percent"] = cpu.machine_percent if cpu else None
        out.put(("ok", rows))
    except BaseException as exc:
        out.put(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


def run(h: Harness, target: Target) -> list[Result]:
    s = h.settings
    assert target.runtime is not None and target.durability is not None
    kwargs = {
        "runtime_name": target.runtime, "durability": target.durability, "shards": s.shards,
        "concurrency": s.engine_callers, "seconds": s.seconds, "actors": s.actors,
    }
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_child, args=(kwargs, out), name="questline-bench-engine", daemon=True)
    label = f"engine [{target.runtime}/{target.durability}]"
    expected = 2 * s.seconds
    bar = h.bar(label, expected)
    if bar.disable:
        h.note(f"running {label} ...")
    started = time.monotonic()
    proc.start()
    deadline = started + expected + WORKLOAD_SETUP_ALLOWANCE + 120
    try:
        while True:
            try:
                kind, payload = out.get(timeout=0.25)
                break
            except queue.Empty:
                bar.update(min(expected, time.monotonic() - started) - bar.n)
                if not proc.is_alive():
                    raise ScenarioUnavailable(f"engine benchmark process died (exit {proc.exitcode})") from None
                if time.monotonic() > deadline:
                    proc.kill()
                    raise ScenarioUnavailable("engine benchmark did not finish in time") from None
    finally:
        bar.close()
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
    if kind != "ok":
        raise ScenarioUnavailable(f"engine benchmark failed: {payload}")
    results = []
    for row in payload:
        server_cpu, machine_cpu = row.get("server_cpu_percent"), row.get("machine_cpu_percent")
        other = None
        warnings = []
        if server_cpu is not None and machine_cpu is not None:
            other = machine_cpu - server_cpu
            if other > NOISY_OTHER_CPU:
                warnings.append(f"noisy machine: other processes used {other:.0f}% of a core during the window")
        hist = Histogram.from_dict(row["histogram"]) if row.get("histogram") else Histogram()
        results.append(
            Result(
                scenario="engine", workload=row["workload"], status="ok", mode="in-process",
                unit="msgs/s", runtime=target.runtime, durability=target.durability, shards=s.shards,
                connections=row["concurrency"], seconds=row["seconds"], requests=row["messages"],
                ok=row["messages"], throughput=row["msgs_per_s"], latency=latency_of(hist),
                histogram=histogram_data(hist), server_cpu_percent=server_cpu,
                machine_cpu_percent=machine_cpu, other_cpu_percent=other, warnings=warnings,
                extra={"actors": row["actors"], "mean_batch": row["mean_batch"], "mean_commit": row["mean_commit"]},
            )
        )
    return results


SCENARIO = Scenario(
    name="engine",
    description="actor messages/s without HTTP: one hot actor and 10,000 actors (in-process)",
    needs="in-process",
    run=run,
    order=10,
)
