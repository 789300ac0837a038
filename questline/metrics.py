"""Prometheus metrics of one front-door process, and the engine's, rendered at scrape time.

Two sources, one text exposition:

* what the front door sees itself (HTTP requests and latency by route template,
  SSE streams open) lives in ``REGISTRY`` as ordinary prometheus-client objects,
  updated by the front door (:class:`questline.http.metrics.RequestMetrics`);
* what the engine counts (turns, activations, group commits, admission
  rejections, counts made inside actors such as webhook deliveries) lives in the
  shard hosts, possibly in other processes (Ray). :func:`render` pulls
  ``runtime.stats()`` at scrape time and turns that snapshot into metric families
  with a one-shot collector, so the shards never hold a Prometheus object or a lock.

With ``serve --workers N`` each worker process keeps its own HTTP figures; the
engine figures are cluster-wide in every worker's scrape (label ``shard``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    exposition,
    gc_collector,
    platform_collector,
    process_collector,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from questline.engine.stats import PROCESS_COUNTERS

log = logging.getLogger("questline.metrics")

CONTENT_TYPE = exposition.CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry()
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

HTTP_REQUESTS = Counter(
    "questline_http_requests", "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"], registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "questline_http_request_duration_seconds",
    "Time from request to the end of the response, by method and route template (streams excluded).",
    ["method", "route"], registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SSE_OPEN = Gauge("questline_sse_connections_open", "Server-Sent Event streams open now, by route template.",
                 ["route"], registry=REGISTRY)
SSE_OPENED = Counter("questline_sse_connections", "Server-Sent Event streams opened, by route template.",
                     ["route"], registry=REGISTRY)

WEBHOOK_DELIVERIES = "questline_webhook_deliveries_total"
# delivered: the receiver answered 2xx; retrying: an attempt failed and another is scheduled;
# failed: the last attempt failed and the delivery was given up.
WEBHOOK_OUTCOMES = ("delivered", "retrying", "failed")


def record_webhook_delivery(outcome: str) -> None:
    """Count one webhook delivery attempt's outcome, from any process (actor code included).

    A fixed outcome set keeps the label's cardinality bounded; anything else is a bug.
    """
    if outcome not in WEBHOOK_OUTCOMES:
        raise ValueError(f"webhook outcome must be one of {WEBHOOK_OUTCOMES}, not {outcome!r}")
    PROCESS_COUNTERS.incr(WEBHOOK_DELIVERIES, outcome=outcome)


# -- engine snapshot -> metric families -------------------------------------------------------
_SHARD_COUNTERS = {
    "turns": ("questline_engine_turns", "Actor turns run."),
    "activations": ("questline_engine_activations", "Actors activated (loaded into memory)."),
    "evictions": ("questline_engine_evictions", "Idle actors passivated."),
    "commits": ("questline_engine_journal_commits", "Group commits of the shard journal."),
    "committed_turns": ("questline_engine_journal_committed_turns", "Turns with writes made durable."),
    "alarms_fired": ("questline_engine_alarms_fired", "Actor alarms delivered."),
    "storage_faults": ("questline_engine_storage_faults", "Journal commits that failed."),
}
_SHARD_GAUGES = {
    "resident": ("questline_engine_resident_actors", "Actors in memory."),
    "pending_alarms": ("questline_engine_pending_alarms", "Alarms scheduled."),
    "feed_subscribers": ("questline_engine_feed_subscribers", "Feed subscriptions held."),
    "journal_backlog": ("questline_engine_journal_backlog", "Journal entries written but not yet committed."),
}
_SHARD_HISTOGRAMS = {
    "commit_seconds": ("questline_engine_journal_commit_duration_seconds", "Duration of one group commit."),
    "commit_batch_turns": ("questline_engine_journal_commit_batch_turns", "Turns covered by one group commit."),
}


class EngineCollector(Collector):
    """Metric families from one ``Runtime.stats()`` snapshot (built per scrape, then dropped)."""

    def __init__(self, stats: dict[str, Any] | None) -> None:
        self.stats = stats

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("questline_engine_shard_up", "1 if the shard answered this scrape.",
                               labels=["shard"])
        if self.stats is None:
            scrape = GaugeMetricFamily("questline_engine_stats_ok", "1 if the engine's stats were read.")
            scrape.add_metric([], 0)
            yield scrape
            yield up
            return
        ok = GaugeMetricFamily("questline_engine_stats_ok", "1 if the engine's stats were read.")
        ok.add_metric([], 1)
        yield ok
        shards = self.stats["shards"]
        for entry in shards:
            up.add_metric([str(entry["shard"])], 1 if entry.get("up") else 0)
        yield up
        live = [s for s in shards if s.get("up")]
        for key, (name, doc) in _SHARD_COUNTERS.items():
            family = CounterMetricFamily(name, doc, labels=["shard"])
            for s in live:
                family.add_metric([str(s["shard"])], s["counters"].get(key, 0))
            yield family
        yield from self._rejections(live)
        for key, (name, doc) in _SHARD_GAUGES.items():
            gauge = GaugeMetricFamily(name, doc, labels=["shard"])
            for s in live:
                gauge.add_metric([str(s["shard"])], s["gauges"].get(key, 0))
            yield gauge
        for key, (name, doc) in _SHARD_HISTOGRAMS.items():
            histogram = HistogramMetricFamily(name, doc, labels=["shard"])
            for s in live:
                snap = s["histograms"][key]
                buckets = [(_le(bound), count) for bound, count in snap["buckets"]]
                histogram.add_metric([str(s["shard"])], buckets, snap["sum"])
            yield histogram
        yield from _process_families(self.stats.get("processes", []))

    def _rejections(self, live: list[dict[str, Any]]) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "questline_engine_admission_rejections",
            "Messages refused at once instead of queued: a full actor mailbox, or (Ray) a full per-shard client queue.",
            labels=["shard", "where"])
        for s in live:
            family.add_metric([str(s["shard"]), "mailbox"], s["counters"].get("rejected", 0))
        assert self.stats is not None
        for link in self.stats.get("client", {}).get("shards", []):
            family.add_metric([str(link["shard"]), "client_queue"], link["rejected"])
        yield family


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _process_families(processes: list[dict[str, Any]]) -> Iterator[Metric]:
    """Counts made inside actors, summed over every process that reported (one snapshot each)."""
    totals: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for process in processes:
        for name, labels, value in process["counters"]:
            series = totals.setdefault(name, {})
            key = tuple(sorted(labels.items()))
            series[key] = series.get(key, 0) + value
    if WEBHOOK_DELIVERIES not in totals:
        totals[WEBHOOK_DELIVERIES] = {}  # always exposed, so dashboards and alerts see zeros, not absence
    for name, series in sorted(totals.items()):
        label_names = sorted({k for key in series for k, _ in key})
        base = name.removesuffix("_total")
        doc = "Webhook deliveries by outcome." if name == WEBHOOK_DELIVERIES else "Count made inside actors."
        family = CounterMetricFamily(base, doc, labels=label_names)
        for key, value in sorted(series.items()):
            labels = dict(key)
            family.add_metric([labels.get(n, "") for n in label_names], value)
        yield family


async def render(runtime: Any, time_limit: float = 2.0) -> bytes:
    """The text exposition: this process's registry, then the engine's snapshot."""
    stats: dict[str, Any] | None
    try:
        async with asyncio.timeout(time_limit):
            stats = await runtime.stats()
    except Exception:  # a scrape must still answer (with stats_ok 0) when the engine does not
        log.warning("engine stats unavailable for this scrape", exc_info=True)
        stats = None
    engine = CollectorRegistry()
    engine.register(EngineCollector(stats))
    return exposition.generate_latest(REGISTRY) + exposition.generate_latest(engine)
