"""The result document written by ``--json`` (schema version 1), as msgspec Structs.

The JSON is ``msgspec.json.encode(Report)``; read it back, validated, with
:func:`load_report`. Field meanings are documented in benchmarks/README.md
("Result JSON"). Bump :data:`SCHEMA_VERSION` on any incompatible change.

Units: latencies in milliseconds, CPU in percent of ONE core (a 2-core
machine tops out at 200), throughput in ``unit`` per second, times in seconds.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

SCHEMA_VERSION = 1

Mode = Literal["closed", "open", "in-process"]
Status = Literal["ok", "failed"]


class Latency(msgspec.Struct, forbid_unknown_fields=True):
    """Percentiles (nearest rank, within 0.4 %) of one latency histogram, in ms."""

    count: int
    min: float
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float


class HistogramData(msgspec.Struct, forbid_unknown_fields=True):
    """A serialised :class:`benchmarks.histogram.Histogram` of microseconds."""

    sub_bucket_bits: int
    total: int
    sum: int
    min: int
    max: int
    buckets: list[tuple[int, int]]  # (lowest value of the bucket in us, count)
    unit: Literal["us"] = "us"


class TimelinePoint(msgspec.Struct, forbid_unknown_fields=True):
    """Answers completed in one interval of ``Result.timeline_interval_s`` seconds;
    ``t`` is the interval's start relative to the measurement window (negative:
    the warm-up; ``t >= seconds``: stragglers answered during the drain)."""

    t: float
    ok: int
    errors: int


class ClientStats(msgspec.Struct, forbid_unknown_fields=True):
    """How the load generator itself fared (to tell its limits from the server's)."""

    processes: int
    cpu_percent: float  # all load-generator processes together, % of one core
    max_process_cpu_percent: float  # the busiest single process (one event loop = one core)
    loop_lag_p99_ms: float  # how late a 10 ms timer fired in the client's event loop
    loop_lag_max_ms: float
    schedule_lag_p99_ms: float | None = None  # open loop: dispatch time - intended time
    schedule_lag_max_ms: float | None = None
    behind_schedule: int | None = None  # open loop: intended sends never dispatched in the window
    max_backlog: int | None = None  # open loop: most requests waiting for a free connection
    saturated: bool = False  # the client, not the server, may have been the limit


class BaselineRatio(msgspec.Struct, forbid_unknown_fields=True):
    """This result relative to the baseline workload measured in the same run."""

    baseline_workload: str
    throughput: float  # this throughput / baseline throughput
    p50: float  # this p50 / baseline p50
    p99: float  # this p99 / baseline p99


class Result(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=False):
    """One measured workload of one scenario on one server configuration."""

    scenario: str
    workload: str
    status: Status
    mode: Mode
    unit: str  # what ``throughput`` counts per second: "req/s", "events/s", "msgs/s"
    error: str | None = None  # why it failed (status "failed"); no numbers are given then
    runtime: str | None = None
    durability: str | None = None
    shards: int | None = None
    server_workers: int | None = None
    connections: int = 0  # closed loop: concurrent connections; open loop: pool size
    target_rate: float | None = None  # open loop: offered requests/s
    warmup_s: float = 0.0
    seconds: float = 0.0  # measurement window
    requests: int = 0  # requests intended in the window that completed (ok + errors)
    ok: int = 0
    errors: int = 0
    incomplete: int = 0  # sent in the window, no answer before the drain timeout
    status_counts: dict[str, int] = msgspec.field(default_factory=dict)
    error_samples: list[str] = msgspec.field(default_factory=list)
    throughput: float = 0.0  # ok answers received within the window / seconds
    latency: Latency | None = None  # open loop: from the intended send time
    service_latency: Latency | None = None  # open loop only: from the actual send
    histogram: HistogramData | None = None  # of ``latency``
    timeline: list[TimelinePoint] = msgspec.field(default_factory=list)
    timeline_interval_s: float = 0.25
    vs_baseline: BaselineRatio | None = None
    client: ClientStats | None = None
    server_cpu_percent: float | None = None  # the server process and its children
    machine_cpu_percent: float | None = None  # every process on the machine
    other_cpu_percent: float | None = None  # machine - server - client: noise from elsewhere
    warnings: list[str] = msgspec.field(default_factory=list)
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class Machine(msgspec.Struct, forbid_unknown_fields=True):
    cpus: int
    python: str
    platform: str
    load_avg_start: list[float]
    load_avg_end: list[float] = msgspec.field(default_factory=list)


class Report(msgspec.Struct, forbid_unknown_fields=True):
    schema_version: int
    started_at: str  # ISO 8601 UTC
    finished_at: str
    command: list[str]
    machine: Machine
    settings: dict[str, Any]
    results: list[Result]
    tool: str = "questline-bench"


def encode_report(report: Report) -> bytes:
    return msgspec.json.format(msgspec.json.encode(report), indent=2)


def load_report(data: bytes | str) -> Report:
    """Decode and validate a result document; raises ``msgspec.ValidationError``."""
    report = msgspec.json.decode(data, type=Report)
    if report.schema_version != SCHEMA_VERSION:
        raise msgspec.ValidationError(
            f"schema_version {report.schema_version} is not supported (expected {SCHEMA_VERSION})"
        )
    return report
