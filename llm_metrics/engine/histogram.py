"""Mergeable log-bucketed histogram with 0.5% relative accuracy (DDSketch-style).

Why not Locust's histogram: it rounds to about two significant digits, too coarse for per-token gaps.
Why not ``hdrhistogram``: measured 1.35 µs per record against ~0.35 µs here, and the hot path records
about 64 values per streamed request (design.md section 6).

Bucketing. A positive value ``v`` goes to bucket ``i = ceil(log2(v) * k)`` with ``k = 1 / log2(gamma)``,
``gamma = (1 + a) / (1 - a)`` and ``a = 0.005``. Bucket ``i`` covers ``(gamma**(i-1), gamma**i]``; its
representative value ``2 * gamma**i / (gamma + 1)`` is within ``a`` (relative) of every value in it. A value
within float rounding (about 1e-13 relative) of a bound may be filed on either side of it: still within ``a``
(plus that rounding) of its bucket's representative. Every process files a value with this same code, so
merged histograms stay exact. ``math.log2`` rather than ``math.log``: CPython 3.11 calls ``log`` (which takes
an optional base) through argument-tuple parsing, about twice the cost per value; the formula changed with
wire version 3 (version 2 used ``ceil(log(v) / log(gamma))``, the same buckets up to that rounding at the
bounds). ``record_many`` (from ``BULK_MIN`` values) and ``record_runs`` index a batch in numpy
(``bucket_bulk``), which gives this same index for every value (values whose numpy index could differ by
rounding take this formula itself).
Values at or below ``ZERO_FLOOR`` (including 0) go to a dedicated zero bucket. Negative values are clamped
to 0 (zero bucket) and counted in ``clamped``. NaN and infinities are not recorded; they are counted in
``invalid`` so that a broken measurement is visible without poisoning ``sum``.

Exact parts. ``count``, ``sum``, ``min`` and ``max`` are exact. ``percentile(p)`` uses nearest rank over
the buckets (rank ``ceil(p/100 * count)``, at least 1), so it is within 0.5% of the exact nearest-rank
sample (0.5%: 1 ms at 200 ms, where the TTFT accuracy test asks for 2 ms); the estimate is
clamped to ``[min, max]`` and ``p0``/``p100`` return ``min``/``max`` exactly.

Merging adds bucket counts, so merging the histograms of two data sets gives exactly the histogram of
their union (``sum`` up to float rounding). ``__eq__`` compares ``sum`` with a relative tolerance of 1e-9.

Wire format (``to_wire``): a plain list, msgpack- and JSON-friendly, no map keys at all::

    [3, count, sum, min, max, zero, clamped, invalid, keys, counts]

``min``/``max`` are ``None`` when empty; ``keys`` holds the sorted bucket indexes delta-encoded (first
index, then differences, mostly 1, one byte each in msgpack) and ``counts`` the matching counts. The first
item is the wire version: ``from_wire`` refuses any other (a worker filing values by another formula is not
merged silently), except that a saved summary's version 2 histogram is read with ``saved=True`` (the
comparison of runs and the overview only read percentiles of it).
"""

from __future__ import annotations

import math
import struct
from collections import _count_elements as _count_into  # type: ignore[attr-defined]
from collections.abc import Iterable, Sequence
from typing import Any

from llm_metrics.engine.bucket_bulk import count_indexes, run_gaps, sum_in_order

__all__ = [
    "GAMMA",
    "RELATIVE_ACCURACY",
    "ZERO_FLOOR",
    "Histogram",
    "bucket_index",
    "bucket_value",
    "nearest_rank",
]

RELATIVE_ACCURACY = 0.005
GAMMA = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
ZERO_FLOOR = 1e-9
"""Values at or below this go to the zero bucket (1e-9 ms is a picosecond; counts are integers)."""
_MAX_VALUE = 1e300
_INV_LOG2_GAMMA = 1.0 / math.log2(GAMMA)
_VALUE_FACTOR = 2.0 / (GAMMA + 1.0)
_WIRE_VERSION = 3
_SAVED_VERSIONS = (2, 3)
BULK_MIN = 256
"""Values (or chunk times) from which ``record_many`` and ``record_runs`` index in numpy (``bucket_bulk``): numpy's
fixed cost per batch, about 110,000 instructions (some 20 array operations), outweighs the Python loop's
~1,900 a value below about 200 values (bench/RESULTS.md)."""

_log2 = math.log2
_ceil = math.ceil
_inf = math.inf


def bucket_index(v: float) -> int:
    """Bucket index of a positive value above ``ZERO_FLOOR``."""
    return _ceil(_log2(v) * _INV_LOG2_GAMMA)


def nearest_rank(p: float, n: int) -> int:
    """1-based nearest rank of percentile ``p`` among ``n`` sorted values: ``ceil(p/100 * n)``, at least 1.

    ``p * n / 100`` is rounded to 9 decimals first so that float noise (``0.95 * 100 = 95.00000000000001``)
    does not move the rank.
    """
    return max(1, _ceil(round(p * n / 100.0, 9)))


def bucket_value(i: int) -> float:
    """Representative value of bucket ``i`` (within 1% of every value in the bucket)."""
    return _VALUE_FACTOR * GAMMA**i


class Histogram:
    """A mergeable histogram of floats >= 0 with 1% relative accuracy. See the module docstring."""

    __slots__ = ("buckets", "clamped", "count", "invalid", "max", "min", "sum", "zero")

    buckets: dict[int, int]
    zero: int
    clamped: int
    invalid: int
    count: int
    sum: float
    min: float
    max: float

    def __init__(self) -> None:
        self.buckets = {}
        self.zero = 0
        self.clamped = 0
        self.invalid = 0
        self.count = 0
        self.sum = 0.0
        self.min = _inf  # inf / -inf while empty; use vmin/vmax for None-when-empty
        self.max = -_inf

    # -- recording ---------------------------------------------------------------------------------

    def record(self, v: float) -> None:
        """Record one value. Hot path: one log2, one dict update, no further calls."""
        if ZERO_FLOOR < v <= _MAX_VALUE:
            i = _ceil(_log2(v) * _INV_LOG2_GAMMA)
            b = self.buckets
            b[i] = b.get(i, 0) + 1
            self.count += 1
            self.sum += v
            if v < self.min:
                self.min = v
            if v > self.max:
                self.max = v
        else:
            self._record_special(v)

    def _record_special(self, v: float) -> None:
        """Zero, tiny, negative, NaN, infinite or absurdly large values."""
        if v != v or v > _MAX_VALUE or v == -_inf:  # NaN, +inf, huge, -inf: not a measurement
            self.invalid += 1
            return
        if v < 0:
            self.clamped += 1
        v = 0.0 if v < 0 else float(v)
        self.zero += 1
        self.count += 1
        self.sum += v
        self.min = min(self.min, v)
        self.max = max(self.max, v)

    def record_many(self, values: Iterable[float], *, in_order: bool = False) -> None:
        """Record many values; about 40% of the cost per value of calling ``record`` in a loop.

        ``count``, ``sum``, ``min`` and ``max`` come from the C builtins over the batch, so the loop only
        computes bucket indexes. A batch holding a special value (0, negative, NaN, inf) goes value by value.
        ``sum`` grows by the batch's sum; with ``in_order`` it adds the values one by one instead
        (``sum(values, self.sum)``), as a loop of ``record`` does: the same float on CPython 3.11 (3.12's
        ``sum`` compensates rounding, so there it may differ from the loop in the last bits).
        """
        vals = values if isinstance(values, list) else list(values)
        if not vals:
            return
        s = sum(vals, self.sum) if in_order else self.sum + sum(vals)
        lo = min(vals)
        hi = max(vals)
        # s - s == 0 rules out NaN and infinities anywhere in the batch (they make the sum NaN or inf).
        if lo > ZERO_FLOOR and hi <= _MAX_VALUE and s - s == 0:
            # the same index as ``record`` (ceil(log2(v) * k)), counted in C by collections' counting helper
            # (``Counter.update``'s); a list comprehension beats map chains here (3.11 specialises the calls)
            k = _INV_LOG2_GAMMA
            if len(vals) >= BULK_MIN:
                count_indexes(self.buckets, vals, k, bucket_index)  # the same index, in numpy
            else:
                _count_into(self.buckets, [_ceil(_log2(v) * k) for v in vals])
            self.count += len(vals)
            self.sum = s
            self.min = min(self.min, lo)
            self.max = max(self.max, hi)
        else:
            record = self.record
            for v in vals:
                record(v)

    def record_diffs(self, times: Sequence[float], scale: float) -> None:
        """Record ``(times[i] - times[i-1]) * scale`` for every ``i >= 1`` (a stream's chunk gaps in ms from
        its chunk times in seconds): the same buckets, count, min, max and sum as ``record`` of each value in
        turn (``sum`` grown by one value at a time), in one loop that also finds the sum, min and max (no list
        of the values is built). A gap that is not a plain positive value (0, negative, NaN, inf, tiny or huge)
        sends the batch to ``record_many(in_order=True)``.
        """
        if len(times) < 2:
            return
        log2, ceil, k = _log2, _ceil, _INV_LOG2_GAMMA
        idx: list[int] = []
        append = idx.append
        prev = times[0]
        s = self.sum
        lo = _inf
        hi = -_inf
        try:
            for t in times[1:]:
                g = (t - prev) * scale
                prev = t
                s += g
                if g < lo:
                    lo = g
                if g > hi:
                    hi = g
                append(ceil(log2(g) * k))
        except (ValueError, OverflowError):  # log2 of 0 or a negative value, ceil of NaN or inf
            lo = -_inf
        if lo > ZERO_FLOOR and hi <= _MAX_VALUE:
            _count_into(self.buckets, idx)
            self.count += len(idx)
            self.sum = s
            if lo < self.min:
                self.min = lo
            if hi > self.max:
                self.max = hi
        else:
            prev = times[0]
            gaps = []
            for t in times[1:]:
                gaps.append((t - prev) * scale)
                prev = t
            self.record_many(gaps, in_order=True)

    def record_runs(self, times: Sequence[float], lengths: Sequence[int], scale: float) -> None:
        """``record_diffs(run, scale)`` of each run of ``times`` in turn (runs of ``lengths``, each at least 2
        long, one after the other: many calls' chunk times), with the same result bit for bit: the gaps by
        ``bucket_bulk.run_gaps`` (the same float operations), indexed in numpy (``bucket_bulk``: the same index
        as ``record``), ``sum`` grown by one gap at a time in order (``bucket_bulk.sum_in_order``). A batch
        holding a gap that is not a plain positive value, or a time that is not a number, goes run by run
        through ``record_diffs`` (which raises at the first run holding a time that is not a number).
        """
        g = None
        if len(times) >= BULK_MIN:
            try:
                g = run_gaps(times, lengths, scale)
            except (TypeError, struct.error):  # struct.pack: a time that is not a number
                g = None
            else:
                lo, hi = float(g.min()), float(g.max())
        if g is None or not (lo > ZERO_FLOOR and hi <= _MAX_VALUE):  # (NaN compares False)
            pos = 0
            for n in lengths:
                self.record_diffs(times[pos : pos + n], scale)
                pos += n
            return
        count_indexes(self.buckets, g, _INV_LOG2_GAMMA, bucket_index)
        self.sum = sum_in_order(self.sum, g)
        self.count += len(g)
        if lo < self.min:
            self.min = lo
        if hi > self.max:
            self.max = hi

    @classmethod
    def of(cls, values: Iterable[float]) -> Histogram:
        """A histogram of ``values``."""
        h = cls()
        h.record_many(values)
        return h

    # -- combining ---------------------------------------------------------------------------------

    def merge(self, other: Histogram) -> Histogram:
        """Add ``other`` into this histogram (in place) and return self."""
        if other.count == 0 and other.invalid == 0:
            return self
        b = self.buckets
        get = b.get
        for i, c in other.buckets.items():
            b[i] = get(i, 0) + c
        self.zero += other.zero
        self.clamped += other.clamped
        self.invalid += other.invalid
        self.count += other.count
        self.sum += other.sum
        if other.min < self.min:
            self.min = other.min
        if other.max > self.max:
            self.max = other.max
        return self

    def copy(self) -> Histogram:
        h = Histogram()
        h.buckets = dict(self.buckets)
        h.zero = self.zero
        h.clamped = self.clamped
        h.invalid = self.invalid
        h.count = self.count
        h.sum = self.sum
        h.min = self.min
        h.max = self.max
        return h

    def clear(self) -> None:
        """Forget everything recorded."""
        self.buckets = {}
        self.zero = self.clamped = self.invalid = self.count = 0
        self.sum = 0.0
        self.min = _inf
        self.max = -_inf

    # -- reading -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    @property
    def mean(self) -> float | None:
        """Exact arithmetic mean, None when empty."""
        return self.sum / self.count if self.count else None

    @property
    def vmin(self) -> float | None:
        """Exact minimum, None when empty."""
        return self.min if self.count else None

    @property
    def vmax(self) -> float | None:
        """Exact maximum, None when empty."""
        return self.max if self.count else None

    def percentile(self, p: float) -> float | None:
        """Nearest-rank percentile, ``p`` in [0, 100]; None when empty."""
        return self.percentiles((p,))[0]

    def percentiles(self, ps: Sequence[float]) -> list[float | None]:
        """Several percentiles with one sort of the buckets (for summaries)."""
        for p in ps:
            if not 0.0 <= p <= 100.0:
                raise ValueError(f"percentile must be within [0, 100], got {p!r}")
        n = self.count
        if n == 0:
            return [None for _ in ps]
        # Ranks (1-based) wanted, in increasing order, resolved in one walk over the buckets.
        ranks = [nearest_rank(p, n) for p in ps]
        order = sorted(range(len(ps)), key=ranks.__getitem__)
        out: list[float | None] = [None] * len(ps)
        keys = sorted(self.buckets)
        buckets = self.buckets
        cum = self.zero
        ki = 0
        lo, hi = self.min, self.max
        for j in order:
            p = ps[j]
            if p <= 0.0:
                out[j] = lo
                continue
            if p >= 100.0:
                out[j] = hi
                continue
            r = ranks[j]
            if r <= self.zero:
                est = 0.0
            else:
                while cum < r and ki < len(keys):
                    cum += buckets[keys[ki]]
                    ki += 1
                est = _VALUE_FACTOR * GAMMA ** keys[ki - 1]
            out[j] = lo if est < lo else hi if est > hi else est
        return out

    def stats(self, ps: Sequence[float] = (50.0, 90.0, 95.0, 99.0)) -> dict[str, float | int | None]:
        """count, avg, min, p(N)..., max as a plain dict with stable key order."""
        out: dict[str, float | int | None] = {"count": self.count, "avg": self.mean, "min": self.vmin}
        for p, v in zip(ps, self.percentiles(ps), strict=True):
            out[f"p{_fmt_p(p)}"] = v
        out["max"] = self.vmax
        return out

    # -- transport ---------------------------------------------------------------------------------

    def to_wire(self) -> list[Any]:
        """Compact plain structure (lists, ints, floats, None). See the module docstring."""
        keys = sorted(self.buckets)
        b = self.buckets
        counts = [b[k] for k in keys]
        deltas: list[int] = []
        prev = 0
        for k in keys:
            deltas.append(k - prev)
            prev = k
        empty = self.count == 0
        return [
            _WIRE_VERSION,
            self.count,
            self.sum,
            None if empty else self.min,
            None if empty else self.max,
            self.zero,
            self.clamped,
            self.invalid,
            deltas,
            counts,
        ]

    @classmethod
    def from_wire(cls, wire: Any, *, saved: bool = False) -> Histogram:
        """Inverse of ``to_wire``; raises ValueError on a malformed structure or another wire version.
        ``saved``: a saved summary's histogram, read for its percentiles; version 2 is accepted too."""
        versions = _SAVED_VERSIONS if saved else (_WIRE_VERSION,)
        if not isinstance(wire, list | tuple) or len(wire) != 10 or wire[0] not in versions:
            raise ValueError(f"not a histogram wire structure (version {_WIRE_VERSION}): {wire!r:.80}")
        _, count, total, lo, hi, zero, clamped, invalid, deltas, counts = wire
        if not isinstance(deltas, list | tuple) or not isinstance(counts, list | tuple):
            raise ValueError("histogram wire: keys and counts must be lists")
        if len(deltas) != len(counts):
            raise ValueError("histogram wire: keys and counts differ in length")
        h = cls()
        k = 0
        b = h.buckets
        for d, c in zip(deltas, counts, strict=True):
            k += int(d)
            b[k] = int(c)
        h.count = int(count)
        h.sum = float(total)
        h.zero = int(zero)
        h.clamped = int(clamped)
        h.invalid = int(invalid)
        if h.count:
            if lo is None or hi is None:
                raise ValueError("histogram wire: min/max missing for a non-empty histogram")
            h.min = float(lo)
            h.max = float(hi)
        if sum(b.values()) + h.zero != h.count:
            raise ValueError("histogram wire: bucket counts do not add up to count")
        return h

    # -- comparison --------------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return (
            self.count == other.count
            and self.zero == other.zero
            and self.clamped == other.clamped
            and self.invalid == other.invalid
            and self.buckets == other.buckets
            and (self.count == 0 or (self.min == other.min and self.max == other.max))
            and math.isclose(self.sum, other.sum, rel_tol=1e-9, abs_tol=1e-9)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if not self.count:
            return "Histogram(empty)"
        p50, p95 = self.percentiles((50.0, 95.0))
        return (
            f"Histogram(count={self.count}, min={self.min:.4g}, p50={p50:.4g}, p95={p95:.4g}, "
            f"max={self.max:.4g}, buckets={len(self.buckets)})"
        )


def _fmt_p(p: float) -> str:
    """50.0 -> '50', 99.9 -> '99.9'."""
    return f"{p:g}"
