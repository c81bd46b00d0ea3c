"""bucket_bulk: numpy files a batch of values in the bucket ``Histogram.record`` files each one, at and around
every bucket bound too, and ``Histogram.record_runs`` (many calls' chunk gaps at once) is one ``record_diffs``
per call, bit for bit."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_metrics.engine import bucket_bulk, histogram
from llm_metrics.engine.bucket_bulk import count_indexes, run_gaps, sum_in_order
from llm_metrics.engine.histogram import BULK_MIN, GAMMA, Histogram, bucket_index
from tests.support import floats_around

K = 1.0 / math.log2(GAMMA)  # the histogram's own constant, by the same expression


def near_bounds(first: int, last: int, every: int, step: int = 1) -> list[float]:
    """The floats at and around the bounds gamma**i of every ``every``-th bucket, ``step`` floats apart."""
    return [v for i in range(first, last, every) for v in floats_around(GAMMA**i, 6, step)]


def bulk(values: list[float]) -> dict[int, int]:
    buckets: dict[int, int] = {}
    count_indexes(buckets, values, K, bucket_index)
    return buckets


def test_every_bound_of_the_range_is_filed_as_record_files_it() -> None:
    # every 7th bucket of the whole range (1e-9 .. 1e300), 13 floats at and around each bound
    values = near_bounds(-2070, 69070, 7)
    assert bulk(values) == dict(Counter(bucket_index(v) for v in values))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=1.1e-9, max_value=1e300, allow_nan=False), max_size=60),
    st.integers(min_value=-2070, max_value=69000),
    st.integers(min_value=1, max_value=4),
)
def test_a_batch_is_filed_as_record_files_each_value(values: list[float], i: int, step: int) -> None:
    values = values + near_bounds(i, i + 40, 1, step)
    assert bulk(values) == dict(Counter(bucket_index(v) for v in values))


def _off_by_ulps(n: int) -> Callable[[np.ndarray], np.ndarray]:
    """A log2 ``n`` ulps off numpy's (up for n > 0): another platform's log2, as far as the guard is concerned."""

    def log2(v: np.ndarray) -> np.ndarray:
        y = np.log2(v)
        for _ in range(abs(n)):
            y = np.nextafter(y, np.inf if n > 0 else -np.inf)
        return y

    return log2


@pytest.mark.parametrize("ulps", [-3, -1, 1, 3])
def test_the_guard_gives_record_s_index_where_numpy_log2_differs_and_is_needed(
    monkeypatch: pytest.MonkeyPatch, ulps: int
) -> None:
    values = near_bounds(-2070, 69070, 13)
    want = dict(Counter(bucket_index(v) for v in values))
    monkeypatch.setattr(bucket_bulk, "_log2", _off_by_ulps(ulps))
    assert bulk(values) == want  # values near a bound go to the scalar formula
    monkeypatch.setattr(bucket_bulk, "GUARD", 0.0)
    assert bulk(values) != want  # without the guard, a log2 a few ulps off files some bound values elsewhere


def runs_of(rng: random.Random, n_runs: int, odd: float | None) -> list[list[float]]:
    runs = []
    for _ in range(n_runs):
        t = rng.uniform(0.0, 1e4)
        times = [t]
        for _ in range(rng.randint(1, 70)):
            t += 10 ** rng.uniform(-5.3, -1.5)  # 5 µs .. 30 ms, as a stream's chunks
            times.append(t)
        runs.append(times)
    if odd is not None:  # 0.0: a repeated time (a zero gap); others: a broken clock value
        run = runs[rng.randrange(n_runs)]
        j = rng.randrange(len(run))
        run.insert(j, run[j] if odd == 0.0 else odd)
    return runs


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**32),
    st.integers(min_value=1, max_value=20),
    st.sampled_from([None, None, None, 0.0, -1.0, math.nan, math.inf]),
    st.sampled_from([1000.0, 1.0]),
)
def test_record_runs_is_record_diffs_of_each_run_in_turn(
    seed: int, n_runs: int, odd: float | None, scale: float
) -> None:
    runs = runs_of(random.Random(seed), n_runs, odd)
    one = Histogram.of([5.0])
    for times in runs:
        one.record_diffs(times, scale)
    bulk_h = Histogram.of([5.0])
    bulk_h.record_runs(list(itertools.chain.from_iterable(runs)), [len(r) for r in runs], scale)
    assert bulk_h.buckets == one.buckets
    assert (bulk_h.count, bulk_h.zero, bulk_h.clamped) == (one.count, one.zero, one.clamped)
    assert bulk_h.invalid == one.invalid
    assert (bulk_h.min, bulk_h.max) == (one.min, one.max)
    # bit for bit on every Python: numpy's cumsum and record_diffs's loop both add one gap at a time, and a batch
    # with a special gap goes through record_diffs itself
    assert bulk_h.sum == one.sum or (math.isnan(bulk_h.sum) and math.isnan(one.sum))


def test_record_runs_takes_the_numpy_path_from_bulk_min_times(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    runs: list[list[float]] = []
    while sum(map(len, runs)) < BULK_MIN:
        runs += runs_of(rng, 1, None)
    flat = list(itertools.chain.from_iterable(runs))
    batches: list[int] = []
    real = bucket_bulk.count_indexes

    def spy(buckets: dict[int, int], values: Any, k: float, index_of: Callable[[float], int]) -> None:
        batches.append(len(values))
        real(buckets, values, k, index_of)

    monkeypatch.setattr(histogram, "count_indexes", spy)
    Histogram().record_runs(flat, [len(r) for r in runs], 1000.0)
    assert batches == [len(flat) - len(runs)]  # one batch of every gap, none across two runs


def test_run_gaps_leaves_out_the_gap_from_one_run_to_the_next() -> None:
    g = run_gaps([1.0, 1.5, 2.5, 10.0, 10.25, 20.0, 20.125], [3, 2, 2], 2.0)
    assert g.tolist() == [1.0, 2.0, 0.5, 0.25]


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=0.0, max_value=1e9), st.lists(st.floats(min_value=0.0, max_value=1e6), max_size=300))
def test_sum_in_order_adds_one_value_at_a_time(start: float, values: list[float]) -> None:
    s = start
    for v in values:
        s += v
    assert sum_in_order(start, np.array(values, dtype=np.float64)) == s


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=-2070, max_value=69000))
def test_record_many_of_a_bulk_batch_is_a_loop_of_record(seed: int, i: int) -> None:
    # from BULK_MIN values record_many indexes in numpy: the same buckets, count, min, max and sum as record
    rng = random.Random(seed)
    values = [rng.lognormvariate(5.3, rng.choice([0.1, 2.0])) for _ in range(BULK_MIN)] + near_bounds(i, i + 5, 1)
    one = Histogram.of([3.0])
    for v in values:
        one.record(v)
    many = Histogram.of([3.0])
    many.record_many(values, in_order=True)
    assert many.buckets == one.buckets
    assert (many.count, many.min, many.max, many.sum) == (one.count, one.min, one.max, one.sum)  # sum: on 3.11
