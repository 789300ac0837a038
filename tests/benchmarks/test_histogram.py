"""Percentile math of the log-linear histogram against exact sorted percentiles."""

from __future__ import annotations

import random

import pytest

from benchmarks.histogram import (
    SUB_BUCKET_BITS,
    Histogram,
    bucket_bounds,
    bucket_index,
    exact_percentile,
    percentile_rank,
)

PERCENTILES = [0, 0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100]
# Half a bucket: buckets above 256 are at most 1/128 of their lowest value wide.
PRECISION = 1 / (1 << SUB_BUCKET_BITS)


def assert_matches_exact(values: list[int]) -> None:
    hist = Histogram()
    for v in values:
        hist.record(v)
    ordered = sorted(values)
    for p in PERCENTILES:
        exact = exact_percentile(ordered, p)
        got = hist.percentile(p)
        assert abs(got - exact) <= exact * PRECISION + 1e-9, (p, got, exact)
    assert hist.min == ordered[0]
    assert hist.max == ordered[-1]
    assert hist.total == len(values)
    assert hist.mean == pytest.approx(sum(values) / len(values))


def test_uniform_distribution() -> None:
    rng = random.Random(1)
    assert_matches_exact([rng.randrange(0, 2_000_000) for _ in range(50_000)])


def test_constant_distribution() -> None:
    for value in (0, 7, 255, 256, 1234, 987_654_321):
        hist = Histogram()
        for _ in range(1000):
            hist.record(value)
        assert {hist.percentile(p) for p in PERCENTILES} == {float(value)}


def test_exponential_distribution() -> None:
    rng = random.Random(2)
    assert_matches_exact([int(rng.expovariate(1 / 5000)) for _ in range(50_000)])


def test_heavy_tail_spanning_many_octaves() -> None:
    rng = random.Random(3)
    assert_matches_exact([int(10 ** rng.uniform(0, 8)) for _ in range(20_000)])


def test_small_values_are_exact() -> None:
    values = list(range(256)) * 3
    hist = Histogram()
    for v in values:
        hist.record(v)
    ordered = sorted(values)
    for p in PERCENTILES:
        assert hist.percentile(p) == exact_percentile(ordered, p)


def test_buckets_are_contiguous_and_contain_their_values() -> None:
    previous_high = -1
    for index in range(bucket_index(10**9) + 1):
        low, high = bucket_bounds(index)
        assert low == previous_high + 1
        assert bucket_index(low) == index == bucket_index(high)
        assert (high - low + 1) <= max(1, low * 2 * PRECISION)
        previous_high = high


def test_nearest_rank() -> None:
    assert percentile_rank(99.9, 1000) == 999  # no binary-noise rounding up to 1000
    assert percentile_rank(50, 2) == 1
    assert percentile_rank(0, 10) == 1
    assert percentile_rank(100, 10) == 10
    assert exact_percentile([1, 2, 3, 4], 50) == 2
    with pytest.raises(ValueError):
        percentile_rank(101, 10)


def test_negative_values_count_as_zero_and_empty_is_zero() -> None:
    hist = Histogram()
    assert hist.percentile(99) == 0.0
    hist.record(-5)
    assert hist.min == 0 and hist.percentile(50) == 0.0


def test_merge_equals_recording_everything_in_one() -> None:
    rng = random.Random(4)
    values = [int(rng.expovariate(1 / 800)) for _ in range(10_000)]
    whole, a, b = Histogram(), Histogram(), Histogram()
    for i, v in enumerate(values):
        whole.record(v)
        (a if i % 3 else b).record(v)
    a.merge(b)
    a.merge(Histogram())
    assert a.counts == whole.counts
    assert (a.total, a.sum, a.min, a.max) == (whole.total, whole.sum, whole.min, whole.max)


def test_serialisation_round_trip() -> None:
    rng = random.Random(5)
    hist = Histogram()
    for _ in range(5000):
        hist.record(int(rng.expovariate(1 / 3000)))
    back = Histogram.from_dict(hist.to_dict())
    assert back.counts == hist.counts
    assert back.percentiles(PERCENTILES) == hist.percentiles(PERCENTILES)
    with pytest.raises(ValueError):
        Histogram.from_dict({**hist.to_dict(), "sub_bucket_bits": 7})


def test_cumulative_ends_at_one_and_the_max() -> None:
    hist = Histogram()
    for v in (1, 500, 500, 70_000):
        hist.record(v)
    points = hist.cumulative()
    assert points[-1] == (1.0, 70_000.0)
    assert [f for f, _ in points] == sorted(f for f, _ in points)
