"""``python -m questline bench``: run benchmark scenarios and print a table.

Scenarios so far: ``engine`` (raw actor messages/s per runtime and durability).
Results can be written as JSON (``--json``) for comparison across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Sequence

from benchmarks.engine import EngineResult, run_engine

SCENARIOS = ("engine",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="questline bench", description=__doc__)
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS), help=f"any of {', '.join(SCENARIOS)}")
    parser.add_argument("--runtime", action="append", choices=["local", "ray"],
                        help="runtime(s) to measure (default: both)")
    parser.add_argument("--durability", action="append", choices=["strict", "relaxed"],
                        help="durability mode(s) to measure (default: both)")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per workload")
    parser.add_argument("--concurrency", type=int, default=256, help="concurrent callers (closed loop)")
    parser.add_argument("--actors", type=int, default=10_000, help="actors in the wide workload")
    parser.add_argument("--json", dest="json_path", help="write raw results to this file")
    return parser


def format_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A plain aligned text table: ``columns`` is [(key, header)]."""
    cells = [[h for _, h in columns]] + [[_fmt(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in cells]
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


ENGINE_COLUMNS = [
    ("runtime", "runtime"), ("durability", "durability"), ("workload", "workload"),
    ("concurrency", "callers"), ("messages", "messages"), ("msgs_per_s", "msgs/s"),
    ("mean_batch", "msgs/Ray call"), ("mean_commit", "turns/commit"),
]


async def _engine(args: argparse.Namespace) -> list[EngineResult]:
    results: list[EngineResult] = []
    for runtime in args.runtime or ["local", "ray"]:
        for durability in args.durability or ["strict", "relaxed"]:
            print(f"engine: {runtime} / {durability} ...", file=sys.stderr, flush=True)
            results += await run_engine(
                runtime, durability, shards=args.shards, concurrency=args.concurrency,
                seconds=args.seconds, actors=args.actors,
            )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; available: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    report: dict = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "scenarios": {},
    }
    if "engine" in args.scenarios:
        rows = [r.row() for r in asyncio.run(_engine(args))]
        report["scenarios"]["engine"] = rows
        print("\nengine — actor messages/s (closed loop, no HTTP)")
        print(format_table(rows, ENGINE_COLUMNS))
    if args.json_path:
        with open(args.json_path, "w") as fh:
            json.dump(report, fh, indent=2)
        print(f"\nraw results written to {args.json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
