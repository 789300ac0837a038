"""``python -m questline bench [scenario ...]``: the questline load-test harness.

Starts what it measures: the baseline (a bare Starlette endpoint on uvicorn)
once, then for every --runtime x --durability a ``python -m questline serve``
on a free port and a temporary data dir, waits for /readyz, runs each
scenario against it and stops it. ``--url`` targets a running server instead.
Prints one table (stdout); ``--json`` writes every number (schema in
benchmarks/schema.py), ``--plot`` draws latency distributions and throughput
over time. See benchmarks/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from benchmarks.harness import Harness, Scenario, ScenarioUnavailable, Settings, Target
from benchmarks.load import LoadError
from benchmarks.scenarios import registry
from benchmarks.schema import SCHEMA_VERSION, Machine, Report, Result, encode_report
from benchmarks.server import ManagedServer, ServerError, baseline_server, probe, questline_server

DEFAULT_RUNTIMES = ["local", "ray"]
DEFAULT_DURABILITIES = ["strict", "relaxed"]


def build_parser(scenarios: dict[str, Scenario]) -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<9} {s.description}" for name, s in scenarios.items())
    parser = argparse.ArgumentParser(
        prog="python -m questline bench",
        description=__doc__,
        epilog=f"scenarios (default: all):\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenarios", nargs="*", metavar="scenario", help="scenarios to run (default: all)")
    target = parser.add_argument_group("server under test")
    target.add_argument("--url", help="target a running server instead of starting one (e.g. http://127.0.0.1:8080)")
    target.add_argument("--runtime", action="append", choices=["local", "ray"],
                        help="runtime(s) to measure, repeatable (default: local and ray)")
    target.add_argument("--durability", action="append", choices=["strict", "relaxed"],
                        help="durability mode(s), repeatable (default: strict and relaxed)")
    target.add_argument("--shards", type=int, default=2, help="shards of the server (default 2)")
    target.add_argument("--workers", type=int, default=1,
                        help="uvicorn worker processes of the server and the baseline (default 1)")
    target.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for `questline serve`, repeatable (--server-arg=--catalog=x.yaml)")
    target.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                        help="environment for the started servers, repeatable (default QUESTLINE_DEMO=1: "
                             "demo tenants, as `make run`)")
    target.add_argument("--app-id", default="demo", help="QuestKit app to mint tokens for (default demo)")
    target.add_argument("--app-secret", default=os.environ.get("QUESTLINE_DEMO_APP_SECRET", "demo-secret"),
                        help="its secret (default $QUESTLINE_DEMO_APP_SECRET or demo-secret)")
    load = parser.add_argument_group("load")
    load.add_argument("--seconds", type=float, default=5.0, help="measured seconds per workload (default 5)")
    load.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each (default 1)")
    load.add_argument("--connections", type=int, default=64,
                      help="closed loop: concurrent connections; open loop: pool size (default 64)")
    load.add_argument("--rate", type=float, help="open loop: offered requests/s (default: closed loop)")
    load.add_argument("--clients", type=int, default=1, help="load-generator processes (default 1)")
    load.add_argument("--users", type=int, default=10_000, help="QuestKit users (default 10,000)")
    load.add_argument("--drain-timeout", type=float, default=5.0,
                      help="seconds to wait for answers after the window (default 5)")
    load.add_argument("--streams", type=int, default=2_000, help="sse: concurrent streams (default 2,000)")
    load.add_argument("--stream-users", type=int, default=500, help="sse: users the streams belong to (default 500)")
    load.add_argument("--stream-rate", type=float, default=1_000.0,
                      help="sse: events/s posted for those users, open loop (default 1,000)")
    load.add_argument("--surface-users", type=int, default=200,
                      help="minigame characters and Hatched users/buddies (default 200; each costs set-up time)")
    load.add_argument("--actors", type=int, default=10_000, help="engine: actors in the wide workload")
    load.add_argument("--engine-callers", "--concurrency", type=int, default=256,
                      help="engine: concurrent callers (default 256)")
    out = parser.add_argument_group("output")
    out.add_argument("--json", dest="json_path", metavar="PATH", help="write every result as JSON")
    out.add_argument("--plot", dest="plot_path", metavar="PATH", help="draw latency and throughput (PNG)")
    out.add_argument("--no-baseline", action="store_true", help="skip the baseline (no ratios)")
    out.add_argument("--no-progress", action="store_true", help="no progress bars")
    out.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return parser


# -- table ---------------------------------------------------------------------------
def format_table(
    rows: list[dict[str, Any]], columns: list[tuple[str, str]], left: frozenset[str] = frozenset()
) -> str:
    """A plain aligned text table: ``columns`` is [(key, header)]; ``left`` keys are left-aligned."""
    cells = [[h for _, h in columns]] + [[_fmt(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    align = [str.ljust if key in left else str.rjust for key, _ in columns]
    lines = ["  ".join(a(c, w) for a, c, w in zip(align, row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


COLUMNS = [
    ("n", "#"), ("scenario", "scenario"), ("workload", "workload"), ("config", "runtime"),
    ("load", "load"), ("ok", "ok"), ("errors", "err"), ("throughput", "throughput"),
    ("ratio", "x base"), ("p50", "p50 ms"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9"),
    ("max", "max"), ("client_cpu", "client%"), ("server_cpu", "server%"), ("notes", "notes"),
]
LEFT = frozenset({"scenario", "workload", "config", "load", "notes"})


def _ms(value: float) -> str:
    return f"{value:,.2f}" if value < 10 else f"{value:,.1f}"


def table_rows(results: list[Result]) -> list[dict[str, Any]]:
    rows = []
    for n, r in enumerate(results, 1):
        config = "/".join(x for x in (r.runtime, r.durability) if x) or "-"
        if r.status == "failed":
            load = "-"
        elif r.mode == "in-process":
            load = f"{r.connections} callers"
        elif r.mode == "open":
            load = f"{r.target_rate:,.0f}/s open"
        else:
            load = f"{r.connections} conns"
        row: dict[str, Any] = {"n": n, "scenario": r.scenario, "workload": r.workload, "config": config, "load": load}
        if r.status == "failed":
            row["throughput"] = "FAILED"
            row["notes"] = "see below"
            rows.append(row)
            continue
        row.update(ok=r.ok, errors=r.errors, throughput=f"{r.throughput:,.0f} {r.unit}")
        if r.vs_baseline is not None:
            row["ratio"] = f"{r.vs_baseline.throughput:.2f}"
        if r.latency is not None:
            for key in ("p50", "p90", "p99", "p999", "max"):
                row[key] = _ms(getattr(r.latency, key))
        if r.client is not None:
            row["client_cpu"] = f"{r.client.cpu_percent:.0f}"
        if r.server_cpu_percent is not None:
            row["server_cpu"] = f"{r.server_cpu_percent:.0f}"
        notes = []
        if r.client is not None and r.client.saturated:
            notes.append("CLIENT-BOUND")
        if r.errors:
            notes.append("errors")
        if r.incomplete:
            notes.append("incomplete")
        if any(w.startswith("noisy") for w in r.warnings):
            notes.append("noisy")
        if "streams_held" in r.extra:
            notes.append(f"{r.extra['streams_held']:,}/{r.extra['streams_requested']:,} streams held")
            if r.extra.get("missing"):
                notes.append(f"{r.extra['missing']:,} frames missing")
            if r.extra.get("misdelivered"):
                notes.append("MISDELIVERED")
        if r.extra.get("mean_batch"):
            notes.append(f"{r.extra['mean_batch']:g} msgs/Ray call")
        if r.extra.get("mean_commit"):
            notes.append(f"{r.extra['mean_commit']:g} turns/commit")
        row["notes"] = ", ".join(notes) or None
        rows.append(row)
    return rows


def render(results: list[Result]) -> str:
    out = [format_table(table_rows(results), COLUMNS, LEFT)]
    details = []
    for n, r in enumerate(results, 1):
        where = "/".join(x for x in (r.runtime, r.durability) if x)
        head = f"#{n} {r.scenario} {r.workload}" + (f" [{where}]" if where else "")
        if r.status == "failed":
            details.append(f"{head}: FAILED: {r.error}")
        for w in r.warnings:
            details.append(f"{head}: {w}")
    if details:
        out.append("\n" + "\n".join(details))
    return "\n".join(out)


# -- running -------------------------------------------------------------------------
def _run_scenario(h: Harness, scenario: Scenario, target: Target) -> list[Result]:
    try:
        return scenario.run(h, target)
    except (ScenarioUnavailable, LoadError) as exc:
        return [h.failed(scenario.name, "-", target, str(exc),
                         mode="in-process" if scenario.needs == "in-process" else "closed")]


def _url_target(url: str) -> Target:
    url = url.rstrip("/")
    status, body = probe(url + "/readyz", time_limit=5.0)
    target = Target(url=url)
    if status == 200:
        try:
            info = msgspec.json.decode(body)
            target.runtime = info.get("runtime")
            target.shards = len(info.get("shards") or []) or None
        except msgspec.DecodeError:
            pass
    else:
        raise ServerError(f"{url}/readyz answered {status or 'nothing'}: the server is not ready")
    return target


def _stop(server: ManagedServer | None) -> None:
    if server is not None:
        server.stop()


def run_all(args: argparse.Namespace, h: Harness, selected: list[Scenario]) -> list[Result]:
    results: list[Result] = []
    server_scenarios = [s for s in selected if s.needs == "server"]
    in_process = [s for s in selected if s.needs == "in-process"]
    baseline = [s for s in selected if s.needs == "baseline"]
    all_scenarios = registry()
    if not baseline and any(s.uses_baseline for s in server_scenarios) and not args.no_baseline:
        baseline = [s for s in all_scenarios.values() if s.needs == "baseline"]
    for scenario in baseline:
        server = baseline_server(workers=args.workers)
        target = Target(url=server.url, workers=args.workers)
        try:
            h.note(f"starting {server.label} ...")
            server.start()
            target.server_pid = server.pid
            results += _run_scenario(h, scenario, target)
        except ServerError as exc:
            results.append(h.failed(scenario.name, "-", target, str(exc)))
        finally:
            _stop(server)
    runtimes = args.runtime or DEFAULT_RUNTIMES
    durabilities = args.durability or DEFAULT_DURABILITIES
    url_done = False
    for runtime in runtimes:
        for durability in durabilities:
            plain = Target(url=None, runtime=runtime, durability=durability, shards=args.shards)
            for scenario in in_process:
                results += _run_scenario(h, scenario, plain)
            if not server_scenarios or url_done:
                continue
            server = None
            if args.url:
                url_done = True
                try:
                    target = _url_target(args.url)
                except ServerError as exc:
                    results += [h.failed(s.name, "-", Target(url=args.url), str(exc)) for s in server_scenarios]
                    continue
            else:
                server = questline_server(
                    runtime=runtime, durability=durability, shards=args.shards,
                    workers=args.workers, extra_args=args.server_arg, env=args.server_env_map,
                )
                target = Target(url=server.url, runtime=runtime, durability=durability,
                                shards=args.shards, workers=args.workers)
                try:
                    h.note(f"starting {server.label} ...")
                    server.start()
                    target.server_pid = server.pid
                except ServerError as exc:
                    _stop(server)
                    results += [h.failed(s.name, "-", target, str(exc)) for s in server_scenarios]
                    continue
            try:
                for scenario in server_scenarios:
                    results += _run_scenario(h, scenario, target)
            finally:
                _stop(server)
    return results


def _raise_fd_limit() -> None:
    """Thousands of streams need thousands of descriptors, in the load generator and in the
    server it starts (which inherits the limit): lift the soft limit to the hard one."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65_536 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main(argv: Sequence[str] | None = None) -> int:
    scenarios = registry()
    parser = build_parser(scenarios)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.list:
        for name, s in scenarios.items():
            print(f"{name:<9} {s.description}")
        return 0
    names = args.scenarios or list(scenarios)
    unknown = [n for n in names if n not in scenarios]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}; available: {', '.join(scenarios)}")
    for flag in ("seconds", "connections", "clients", "users", "shards", "workers", "actors", "engine_callers",
                 "streams", "stream_users", "stream_rate", "surface_users"):
        if getattr(args, flag) <= 0:
            parser.error(f"--{flag.replace('_', '-')} must be positive")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    if args.users < args.clients:
        parser.error("--users must be at least --clients")
    bad_env = [e for e in args.server_env if "=" not in e or e.startswith("=")]
    if bad_env:
        parser.error(f"--server-env wants KEY=VALUE, got {bad_env[0]!r}")
    args.server_env_map = dict(e.split("=", 1) for e in args.server_env)
    selected = [scenarios[n] for n in dict.fromkeys(names)]
    settings = Settings(
        seconds=args.seconds, warmup=args.warmup, connections=args.connections, rate=args.rate,
        clients=args.clients, users=args.users, drain_timeout=args.drain_timeout, shards=args.shards,
        workers=args.workers, actors=args.actors, engine_callers=args.engine_callers,
        streams=args.streams, stream_users=args.stream_users, stream_rate=args.stream_rate,
        surface_users=args.surface_users,
        app_id=args.app_id, app_secret=args.app_secret, progress=not args.no_progress,
    )
    _raise_fd_limit()
    h = Harness(settings)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else []
    results = run_all(args, h, selected)
    report = Report(
        schema_version=SCHEMA_VERSION,
        started_at=started,
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        command=["python", "-m", "questline", "bench", *(argv if argv is not None else sys.argv[1:])],
        machine=Machine(
            cpus=os.cpu_count() or 0, python=platform.python_version(), platform=platform.platform(),
            load_avg_start=load_start, load_avg_end=list(os.getloadavg()) if hasattr(os, "getloadavg") else [],
        ),
        settings={
            **{k: v for k, v in vars(settings).items() if k != "app_secret"},
            "scenarios": [s.name for s in selected],
            "runtimes": args.runtime or DEFAULT_RUNTIMES,
            "durabilities": args.durability or DEFAULT_DURABILITIES,
            "url": args.url,
            "server_args": args.server_arg,
            "server_env": args.server_env,
        },
        results=results,
    )
    print(f"\nquestline bench: {shlex.join(report.command[4:]) or '(defaults)'}  "
          f"[{report.machine.cpus} CPUs, load avg {' '.join(f'{x:.2f}' for x in load_start)}]")
    print(render(results))
    if args.json_path:
        with open(args.json_path, "wb") as fh:
            fh.write(encode_report(report))
        print(f"\nraw results: {args.json_path} (schema version {SCHEMA_VERSION})")
    if args.plot_path:
        from benchmarks.plot import plot_report

        plot_report(report, args.plot_path)
        print(f"plot: {args.plot_path}")
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
