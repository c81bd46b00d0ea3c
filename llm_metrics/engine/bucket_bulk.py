"""Histogram bucket indexes of many values at once (numpy), the same index as one ``Histogram.record`` each.

Why numpy. A streamed call records its 63 chunk gaps (64 tokens) plus about 10 per-call values; one at a time
in Python each costs a log2, a multiply, a ceil and a count, about 2,000 CPU instructions, most of the metrics
layer's cost per call (bench/RESULTS.md). numpy does the same arithmetic over a whole batch in C.

Exactness. The index of a value ``v`` is defined by ``Histogram.record``: ``ceil(math.log2(v) * k)``. numpy's
``log2`` is not the C library's ``log2`` (it may differ by an ulp: 261 of 1,000,000 random values on this
machine's AVX-512 build), so a value within rounding of a bucket bound could land on the other side. Both are
within a few ulps of the true log2, so ``y = log2(v) * k`` from numpy and from ``math`` differ by less than
1e-9 for every ``v`` this histogram files (``|log2(v)| <= 1000``, ``k`` about 69.3: a few ulps of 1000 times
``k`` is about 1e-10), far below ``GUARD``. So where numpy's ``y`` is further than ``GUARD`` from every integer,
no integer lies between the two ``y`` and both ceilings agree; the values with ``y`` within ``GUARD`` of an
integer (about two in a million) get their index from the scalar function itself (``index_of``). Every path
therefore gives the index ``record`` gives, bit for bit, and merged histograms stay exact. Property tests:
``tests/unit/test_bucket_bulk.py`` (at, around and between bucket bounds).
"""

from __future__ import annotations

import struct
from collections import _count_elements as _count_into  # type: ignore[attr-defined]
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["GUARD", "as_array", "count_indexes", "run_gaps", "sum_in_order"]

GUARD = 1e-6
"""Distance of numpy's ``log2(v) * k`` from an integer under which the scalar formula decides the index."""
_log2 = np.log2


def as_array(values: Sequence[float]) -> np.ndarray:
    """The values as a float64 array. ``struct.pack`` converts a list of floats in about a third of the
    instructions of ``np.fromiter`` or ``np.asarray`` (about 70 a value against 210-290; bench/RESULTS.md)."""
    return np.frombuffer(struct.pack(f"{len(values)}d", *values), np.float64)


def count_indexes(
    buckets: dict[int, int], values: Sequence[float] | np.ndarray, k: float, index_of: Callable[[float], int]
) -> None:
    """Add to ``buckets`` one count per value at ``index_of(v)`` (``ceil(math.log2(v) * k)``), for plain values
    (above 0, finite: the caller checks), computed in bulk. See the module docstring."""
    v = values if isinstance(values, np.ndarray) else as_array(values)
    y = _log2(v)
    y *= k
    c = np.ceil(y)
    d = c - y  # in [0, 1): near 0 or 1 means near an integer
    near = np.flatnonzero((d < GUARD) | (d > 1.0 - GUARD))
    for j in near.tolist():
        c[j] = index_of(float(v[j]))
    idx = c.astype(np.int64)
    lo = int(idx.min())
    counts = np.bincount(idx - lo)
    present = np.flatnonzero(counts)
    if len(present) * 4 > len(idx):  # spread out: counting each index in C beats a Python loop per bucket
        _count_into(buckets, idx.tolist())
        return
    get = buckets.get
    for i, n in zip((present + lo).tolist(), counts[present].tolist(), strict=True):
        buckets[i] = get(i, 0) + n


def run_gaps(times: Sequence[float], lengths: Sequence[int], scale: float) -> np.ndarray:
    """``(t[i] - t[i-1]) * scale`` within each run of ``times`` (runs of ``lengths``, each at least 2 long, one
    after the other), in order, without the gap from one run's last time to the next run's first: the same
    two float operations per gap as a Python loop, so the same values bit for bit."""
    t = as_array(times)
    g = t[1:] - t[:-1]
    g *= scale
    if len(lengths) > 1:
        g = np.delete(g, np.cumsum(lengths[:-1]) - 1)
    return g


def sum_in_order(start: float, values: np.ndarray) -> float:
    """``start`` plus every value, one at a time in order, as ``s += v`` in a loop gives bit for bit: numpy's
    ``cumsum`` adds sequentially (its ``sum`` adds pairwise, which rounds differently)."""
    a = np.empty(len(values) + 1)
    a[0] = start
    a[1:] = values
    return float(np.cumsum(a)[-1])
