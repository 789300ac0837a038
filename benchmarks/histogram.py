"""A log-linear latency histogram in the spirit of HdrHistogram.

Values are non-negative integers (the harness records microseconds). Values
below ``2**SUB_BUCKET_BITS`` (256) get a bucket each, so they are exact; above
that every power-of-two range is split into 128 equal sub-buckets, so a bucket
is never wider than 1/128 of its lowest value. Percentiles answer the bucket's
midpoint, clamped to the exact recorded min and max: the error is at most half
a bucket, i.e. below 0.4 % of the value (plus 0.5 for values under 256).

Percentiles use the nearest-rank definition (the value of the
``ceil(p/100 * n)``-th smallest sample), the same one HdrHistogram uses, so a
histogram's ``percentile(p)`` lands in the same bucket as the exact sorted
sample (see :func:`exact_percentile`).

Histograms merge by adding counts, so each load-generator process keeps its own
and the harness adds them up; they serialise as ``[[bucket_lowest_value, count], ...]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

SUB_BUCKET_BITS = 8
_EXACT = 1 << SUB_BUCKET_BITS  # 256 values with a bucket of their own
_HALF = _EXACT >> 1  # 128 sub-buckets per power of two above that


def bucket_index(value: int) -> int:
    """Index of the bucket holding ``value`` (monotonic in ``value``)."""
    if value < _EXACT:
        return value
    shift = value.bit_length() - SUB_BUCKET_BITS  # value >> shift is in [128, 256)
    return _EXACT + (shift - 1) * _HALF + ((value >> shift) - _HALF)


def bucket_bounds(index: int) -> tuple[int, int]:
    """(lowest, highest) value, both inclusive, of bucket ``index``."""
    if index < _EXACT:
        return index, index
    k = index - _EXACT
    shift = k // _HALF + 1
    lowest = (k % _HALF + _HALF) << shift
    return lowest, lowest + (1 << shift) - 1


def percentile_rank(p: float, n: int) -> int:
    """1-based nearest rank of percentile ``p`` (0..100) among ``n`` samples."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    # round() absorbs binary noise such as 99.9 / 100 * 1000 = 999.0000000000001
    return min(n, max(1, math.ceil(round(p / 100 * n, 9))))


def exact_percentile(sorted_values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile of an already sorted sample (the reference for tests)."""
    if not sorted_values:
        raise ValueError("no samples")
    return sorted_values[percentile_rank(p, len(sorted_values)) - 1]


class Histogram:
    """Counts per log-linear bucket plus the exact count, sum, min and max."""

    __slots__ = ("counts", "total", "sum", "min", "max")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0
        self.sum = 0
        self.min = 0
        self.max = 0

    def record(self, value: int, count: int = 1) -> None:
        """Record ``value`` (an int; negative values count as 0) ``count`` times."""
        if value < 0:
            value = 0
        if value < _EXACT:
            index = value
        else:
            shift = value.bit_length() - SUB_BUCKET_BITS
            index = _EXACT + (shift - 1) * _HALF + ((value >> shift) - _HALF)
        counts = self.counts
        counts[index] = counts.get(index, 0) + count
        if self.total == 0 or value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.total += count
        self.sum += value * count

    def record_seconds(self, seconds: float) -> None:
        """Record a duration given in seconds, as microseconds."""
        self.record(int(seconds * 1_000_000 + 0.5))

    def merge(self, other: Histogram) -> None:
        if other.total == 0:
            return
        counts = self.counts
        for index, count in other.counts.items():
            counts[index] = counts.get(index, 0) + count
        self.min = other.min if self.total == 0 else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.total += other.total
        self.sum += other.sum

    def __len__(self) -> int:
        return self.total

    @property
    def mean(self) -> float:
        return self.sum / self.total if self.total else 0.0

    def percentile(self, p: float) -> float:
        """Value at percentile ``p`` (0..100) within half a bucket; 0.0 when empty."""
        if self.total == 0:
            return 0.0
        if p >= 100:
            return float(self.max)
        rank = percentile_rank(p, self.total)
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                lowest, highest = bucket_bounds(index)
                mid = (lowest + highest) / 2
                return float(min(max(mid, self.min), self.max))
        return float(self.max)  # unreachable: counts add up to total

    def percentiles(self, ps: Iterable[float]) -> dict[float, float]:
        return {p: self.percentile(p) for p in ps}

    def cumulative(self) -> list[tuple[float, float]]:
        """``[(fraction of samples <= bucket, bucket highest value)]`` for plotting."""
        out: list[tuple[float, float]] = []
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            out.append((seen / self.total, float(min(bucket_bounds(index)[1], self.max))))
        return out

    # -- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "sub_bucket_bits": SUB_BUCKET_BITS,
            "total": self.total,
            "sum": self.sum,
            "min": self.min,
            "max": self.max,
            "buckets": [[bucket_bounds(i)[0], self.counts[i]] for i in sorted(self.counts)],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        if data.get("sub_bucket_bits", SUB_BUCKET_BITS) != SUB_BUCKET_BITS:
            raise ValueError("histogram was written with a different bucket layout")
        hist = cls()
        for lowest, count in data["buckets"]:
            hist.counts[bucket_index(int(lowest))] = int(count)
        hist.total = int(data["total"])
        hist.sum = int(data["sum"])
        hist.min = int(data["min"])
        hist.max = int(data["max"])
        return hist
