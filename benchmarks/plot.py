"""``--plot out.png``: latency distributions and throughput over time (matplotlib).

Left: every result's latency by percentile, HdrHistogram-style (x axis
``1/(1-p)`` on a log scale, so the tail gets the room it deserves). Right:
answers per second through the run; the shaded part is the warm-up.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

import matplotlib.pyplot as plt  # noqa: E402

from benchmarks.histogram import Histogram  # noqa: E402
from benchmarks.schema import Report, Result  # noqa: E402

PERCENTILE_TICKS = (50.0, 90.0, 99.0, 99.9, 99.99)


def _label(n: int, r: Result) -> str:
    where = "/".join(x for x in (r.runtime, r.durability) if x)
    return f"#{n} {r.scenario} {r.workload}" + (f" [{where}]" if where else "")


def plot_report(report: Report, path: str) -> None:
    fig, (lat_ax, tput_ax) = plt.subplots(1, 2, figsize=(16, 7))
    max_x = 1.0
    warmup = 0.0
    for n, r in enumerate(report.results, 1):
        if r.status != "ok" or r.histogram is None:
            continue
        hist = Histogram.from_dict(
            {"sub_bucket_bits": r.histogram.sub_bucket_bits, "total": r.histogram.total, "sum": r.histogram.sum,
             "min": r.histogram.min, "max": r.histogram.max, "buckets": r.histogram.buckets}
        )
        xs, ys = [], []
        for fraction, value_us in hist.cumulative():
            x = 1 / max(1 - fraction, 1 / hist.total)  # the last sample sits at p(1 - 1/n)
            xs.append(x)
            ys.append(value_us / 1000)
        max_x = max(max_x, xs[-1])
        lat_ax.step(xs, ys, where="post", label=_label(n, r))
        points = [p for p in r.timeline if p.t < r.seconds]  # not the drain's stragglers
        if points:
            warmup = max(warmup, r.warmup_s)
            dt = r.timeline_interval_s
            tput_ax.plot([p.t for p in points] + [points[-1].t + dt], [p.ok / dt for p in points] + [points[-1].ok / dt],
                         label=_label(n, r), drawstyle="steps-post")
    ticks = [1 / (1 - p / 100) for p in PERCENTILE_TICKS if 1 / (1 - p / 100) <= max_x * 1.01]
    lat_ax.set_xscale("log")
    lat_ax.set_yscale("log")
    lat_ax.set_xticks(ticks, [f"p{p:g}" for p in PERCENTILE_TICKS][: len(ticks)])
    lat_ax.set_xlim(1, max(10.0, max_x))
    lat_ax.set_xlabel("percentile")
    lat_ax.set_ylabel("latency (ms)")
    lat_ax.set_title("latency by percentile (closed loop: from send; open loop: from intended send)")
    lat_ax.grid(True, which="both", alpha=0.3)
    lat_ax.legend(fontsize=7, loc="upper left")
    if warmup:
        tput_ax.axvspan(-warmup, 0, color="grey", alpha=0.15, label="warm-up")
    tput_ax.set_xlabel("seconds from the start of the measurement window")
    tput_ax.set_ylabel("ok answers per second")
    tput_ax.set_ylim(bottom=0)
    tput_ax.set_title("throughput over time")
    tput_ax.grid(True, alpha=0.3)
    tput_ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"questline bench {report.started_at} ({report.machine.cpus} CPUs)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
