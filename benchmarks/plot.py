"""``--plot out.png``: latency distributions and throughput over time (matplotlib).

One row per scenario. Left: each result's latency by percentile, HdrHistogram
style (x axis ``1/(1-p)`` on a log scale, so the tail gets the room it
deserves). Right: ok answers per second through the phase; the shaded part is
the warm-up. Colour = server configuration (runtime/durability), line style =
workload, the same in every row.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from benchmarks.histogram import Histogram  # noqa: E402
from benchmarks.schema import Report, Result  # noqa: E402

PERCENTILE_TICKS = (50.0, 90.0, 99.0, 99.9, 99.99, 99.999)
STYLES = ("-", "--", ":", "-.")
LATENCY_MEANING = {
    "sse": "delivery latency (update frame - event answer)",
    "engine": "latency per actor call (in-process)",
}


def _config(r: Result) -> str:
    return "/".join(x for x in (r.runtime, r.durability) if x) or "baseline"


def _hist(r: Result) -> Histogram:
    assert r.histogram is not None
    h = r.histogram
    return Histogram.from_dict(
        {"sub_bucket_bits": h.sub_bucket_bits, "total": h.total, "sum": h.sum, "min": h.min,
         "max": h.max, "buckets": h.buckets}
    )


def _latency(ax: Axes, r: Result, label: str, color: str, style: str) -> float:
    hist = _hist(r)
    xs, ys = [], []
    for fraction, value_us in hist.cumulative():
        xs.append(1 / max(1 - fraction, 1 / hist.total))  # the last sample sits at p(1 - 1/n)
        ys.append(value_us / 1000)
    ax.step(xs, ys, where="post", label=label, color=color, linestyle=style)
    return xs[-1]


def _throughput(ax: Axes, r: Result, label: str, color: str, style: str) -> bool:
    points = [p for p in r.timeline if p.t < r.seconds]  # not the drain's stragglers
    if not points:
        return False
    dt = r.timeline_interval_s
    ax.plot([p.t for p in points] + [points[-1].t + dt], [p.ok / dt for p in points] + [points[-1].ok / dt],
            label=label, color=color, linestyle=style, drawstyle="steps-post")
    return True


def plot_report(report: Report, path: str) -> None:
    results = [r for r in report.results if r.status == "ok" and r.histogram is not None]
    scenarios = list(dict.fromkeys(r.scenario for r in results))
    if not scenarios:
        fig, ax = plt.subplots(figsize=(8, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no results with numbers in this run", ha="center", va="center")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return
    configs = list(dict.fromkeys(_config(r) for r in results))
    palette = plt.get_cmap("tab10").colors  # type: ignore[attr-defined]
    colors = {c: palette[i % len(palette)] for i, c in enumerate(configs)}
    fig, axes = plt.subplots(len(scenarios), 2, figsize=(16, 4.3 * len(scenarios)), squeeze=False)
    for row, scenario in enumerate(scenarios):
        lat_ax, tput_ax = axes[row]
        rows = [r for r in results if r.scenario == scenario]
        workloads = list(dict.fromkeys(r.workload for r in rows))
        max_x = 10.0
        has_timeline = False
        for r in rows:
            label = f"{r.workload} [{_config(r)}]" if len(workloads) > 1 else _config(r)
            style = STYLES[workloads.index(r.workload) % len(STYLES)]
            max_x = max(max_x, _latency(lat_ax, r, label, colors[_config(r)], style))
            has_timeline |= _throughput(tput_ax, r, label, colors[_config(r)], style)
        ticks = [(1 / (1 - p / 100), f"p{p:g}") for p in PERCENTILE_TICKS if 1 / (1 - p / 100) <= max_x * 1.01]
        lat_ax.set_xscale("log")
        lat_ax.set_yscale("log")
        lat_ax.set_xticks([t for t, _ in ticks], [name for _, name in ticks])
        lat_ax.set_xlim(1, max_x)
        lat_ax.set_ylabel("ms")
        lat_ax.set_title(f"{scenario}: {LATENCY_MEANING.get(scenario, 'latency by percentile')}", fontsize=10)
        lat_ax.grid(True, which="both", alpha=0.3)
        lat_ax.legend(fontsize=7, loc="upper left")
        if has_timeline:
            warmup = max(r.warmup_s for r in rows)
            if warmup:
                tput_ax.axvspan(-warmup, 0, color="grey", alpha=0.15)
            unit = rows[0].unit
            tput_ax.set_title(f"{scenario}: ok {unit} over time (shaded: warm-up)", fontsize=10)
            tput_ax.set_ylim(bottom=0)
            tput_ax.grid(True, alpha=0.3)
            tput_ax.legend(fontsize=7, loc="lower right")
        else:
            tput_ax.axis("off")
            tput_ax.text(0.5, 0.5, f"{scenario}: no timeline (in-process)", ha="center", va="center")
    axes[-1][0].set_xlabel("percentile")
    axes[-1][1].set_xlabel("seconds from the start of the measurement window")
    fig.suptitle(f"questline bench {report.started_at} ({report.machine.cpus} CPUs)")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.25 / len(scenarios) / 4.3))
    fig.savefig(path, dpi=100)
    plt.close(fig)
