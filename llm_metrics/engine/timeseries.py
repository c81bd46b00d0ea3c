"""Per-second time series of a run, rolling windows over it, and the recovery time after a spike.

Each wall-clock second (``int(time.time())`` at the end of a request) holds: requests, failures, blocked
(429) requests, goodput hits, output tokens, users (a gauge, set by the caller) and histograms of
``llm_total_ms`` and ``llm_ttft_ms``. Seconds merge exactly (counts add, histograms merge, users take the
maximum: set users where the total is known, e.g. on the master from ``runner.user_count``).

Deltas work as in ``store``: a worker's ``take_delta()`` returns the seconds touched since the last call and
the master's ``merge_wire()`` adds them by second. Wire structure (no int map keys)::

    {"v": 1, "s": [[second, requests, failures, blocked, good, output_tokens, users_or_None,
                    total_ms_histogram_wire_or_None, ttft_ms_histogram_wire_or_None], ...]}

Bounded memory: seconds older than ``max_seconds`` (default 6 h) before the newest are dropped, and the
histograms of seconds older than ``hist_seconds`` (default 2 h) are dropped (their counts stay), since at
high request rates the histograms are the bulk of the memory. Windows over such seconds have no latency.

Windows. ``window(t_end, n)`` aggregates the seconds ``t_end - n < s <= t_end``.

Recovery time (``analyze_recovery``, ``recovery_time``; seed 000): the baseline is the half-open window
``[baseline_start, baseline_end)`` before the spike. After the spike ends (``spike_end``, the first
post-spike second), second ``t`` is *within bounds* when the rolling window of ``window_s`` seconds ending at
``t`` -- clipped so that it never reaches back before ``spike_end`` -- has requests, and

* its p95 of total latency <= baseline p95 * (1 + tolerance) + ``latency_slack_ms``, and
* its error rate <= baseline error rate + ``error_slack``.

The recovery time is ``t - spike_end`` for the first ``t`` that starts ``hold_s`` consecutive seconds within
bounds (0 when the first post-spike second already is); None when that never happens within the data
(including a hold cut short by the end of the data, or beyond ``max_wait_s``), or when the baseline has no
requests. A window without requests is not within bounds (nothing shows the service is back). Defaults:
tolerance 0.2, ``window_s`` 10, ``hold_s`` 10, ``latency_slack_ms`` 5, ``error_slack`` 0.01, p95.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llm_metrics.engine.calls import CallRecord
from llm_metrics.engine.histogram import Histogram

__all__ = [
    "RecoveryAnalysis",
    "SecondStats",
    "TimeSeries",
    "WindowStats",
    "analyze_recovery",
    "recovery_time",
]

_WIRE_VERSION = 1
_PRUNE_EVERY = 60


class SecondStats:
    """What happened in one wall-clock second."""

    __slots__ = ("blocked", "failures", "good", "output_tokens", "requests", "total_ms", "ttft_ms", "users")

    def __init__(self) -> None:
        self.requests = 0
        self.failures = 0
        self.blocked = 0
        self.good = 0
        self.output_tokens = 0
        self.users: int | None = None
        self.total_ms: Histogram | None = Histogram()
        self.ttft_ms: Histogram | None = Histogram()

    def merge(self, other: SecondStats) -> SecondStats:
        self.requests += other.requests
        self.failures += other.failures
        self.blocked += other.blocked
        self.good += other.good
        self.output_tokens += other.output_tokens
        if other.users is not None and (self.users is None or other.users > self.users):
            self.users = other.users
        for attr in ("total_ms", "ttft_ms"):
            mine: Histogram | None = getattr(self, attr)
            theirs: Histogram | None = getattr(other, attr)
            if theirs is not None and theirs.count:
                if mine is None:
                    setattr(self, attr, theirs.copy())
                else:
                    mine.merge(theirs)
        return self

    def copy(self) -> SecondStats:
        out = SecondStats()
        out.total_ms = None
        out.ttft_ms = None
        return out.merge(self)

    def to_wire(self, second: int) -> list[Any]:
        return [
            second,
            self.requests,
            self.failures,
            self.blocked,
            self.good,
            self.output_tokens,
            self.users,
            self.total_ms.to_wire() if self.total_ms is not None and self.total_ms.count else None,
            self.ttft_ms.to_wire() if self.ttft_ms is not None and self.ttft_ms.count else None,
        ]

    @classmethod
    def from_wire(cls, row: Any) -> tuple[int, SecondStats]:
        if not isinstance(row, list | tuple) or len(row) != 9:
            raise ValueError(f"time series wire: malformed second {row!r:.80}")
        sec, req, fail, blocked, good, tokens, users, tw, fw = row
        s = cls()
        s.requests, s.failures, s.blocked, s.good = int(req), int(fail), int(blocked), int(good)
        s.output_tokens = int(tokens)
        s.users = None if users is None else int(users)
        s.total_ms = Histogram() if tw is None else Histogram.from_wire(tw)
        s.ttft_ms = Histogram() if fw is None else Histogram.from_wire(fw)
        return int(sec), s

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecondStats):
            return NotImplemented
        empty = Histogram()
        return (
            self.to_wire(0)[:7] == other.to_wire(0)[:7]
            and (self.total_ms if self.total_ms is not None else empty)
            == (other.total_ms if other.total_ms is not None else empty)
            and (self.ttft_ms if self.ttft_ms is not None else empty)
            == (other.ttft_ms if other.ttft_ms is not None else empty)
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(slots=True)
class WindowStats:
    """Aggregate of the seconds ``start <= s <= end``."""

    start: int
    end: int
    requests: int = 0
    failures: int = 0
    blocked: int = 0
    good: int = 0
    output_tokens: int = 0
    total_ms: Histogram = field(default_factory=Histogram)
    ttft_ms: Histogram = field(default_factory=Histogram)

    @property
    def seconds(self) -> int:
        return self.end - self.start + 1

    @property
    def error_rate(self) -> float | None:
        return self.failures / self.requests if self.requests else None

    @property
    def goodput_rate(self) -> float | None:
        return self.good / self.requests if self.requests else None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def p(self, pct: float) -> float | None:
        """Percentile of total latency over the window."""
        return self.total_ms.percentile(pct)


class TimeSeries:
    """Per-second stats of a run; see the module docstring."""

    def __init__(self, *, max_seconds: int = 6 * 3600, hist_seconds: int = 2 * 3600, keep_totals: bool = True) -> None:
        self.max_seconds = max_seconds
        self.hist_seconds = hist_seconds
        self.keep_totals = keep_totals
        self._live: dict[int, SecondStats] = {}
        self._base: dict[int, SecondStats] = {}
        self._newest: int | None = None
        self._last_prune: int | None = None
        self._pending: SecondStats | None = None
        """The live second whose latencies wait in ``_pending_total``/``_pending_ttft`` (``_flush``)."""
        self._pending_total: list[float] = []
        self._pending_ttft: list[float] = []

    # -- recording ---------------------------------------------------------------------------------

    def _second(self, t: float | None) -> SecondStats:
        sec = int(time.time() if t is None else t)
        s = self._live.get(sec)
        if s is None:
            s = self._live[sec] = SecondStats()
            self._saw(sec)
        return s

    def _saw(self, sec: int) -> None:
        """Track the newest second; prune at most once per ``_PRUNE_EVERY`` seconds of data."""
        if self._newest is None or sec > self._newest:
            self._newest = sec
            if self._last_prune is None or sec - self._last_prune >= _PRUNE_EVERY:
                self._last_prune = sec
                self.prune()

    def record(
        self,
        t: float | None = None,
        *,
        failed: bool = False,
        total_ms: float | None = None,
        ttft_ms: float | None = None,
        blocked: bool = False,
        good: bool = False,
        output_tokens: int | None = None,
    ) -> None:
        """Count one finished request at wall-clock time ``t`` (``time.time()`` when None)."""
        s = self._second(t)
        s.requests += 1
        if failed:
            s.failures += 1
        if blocked:
            s.blocked += 1
        if good:
            s.good += 1
        if output_tokens:
            s.output_tokens += output_tokens
        if s is not self._pending:
            self._flush()
            self._pending = s
        if total_ms is not None:
            self._pending_total.append(total_ms)
        if ttft_ms is not None:
            self._pending_ttft.append(ttft_ms)

    def _flush(self) -> None:
        """Record the pending latencies of the current second in bulk (``Histogram.record_many(in_order=True)``:
        exactly what one ``record`` each gives); every read, prune and ``take_delta`` calls it first, and a
        request in another second. It costs one list append per value on the hot path."""
        s = self._pending
        if s is None:
            return
        self._pending = None
        if self._pending_total:
            if s.total_ms is None:
                s.total_ms = Histogram()
            s.total_ms.record_many(self._pending_total, in_order=True)
            self._pending_total.clear()
        if self._pending_ttft:
            if s.ttft_ms is None:
                s.ttft_ms = Histogram()
            s.ttft_ms.record_many(self._pending_ttft, in_order=True)
            self._pending_ttft.clear()

    def record_call(self, rec: CallRecord, t: float | None = None, *, good: bool = False) -> None:
        """Count one LLM call; latency only for successful calls (as in ``calls.metric_values``)."""
        total = ttft = None
        tokens = None
        if rec.ok:
            if rec.t_end is not None:
                total = (rec.t_end - rec.t_start) * 1000.0
            if rec.stream and rec.t_first_content is not None:
                ttft = (rec.t_first_content - rec.t_start) * 1000.0
            tokens = rec.output_tokens
        self.record(
            t,
            failed=not rec.ok,
            total_ms=total,
            ttft_ms=ttft,
            blocked=rec.status == 429,
            good=good,
            output_tokens=tokens,
        )

    def set_users(self, users: int, t: float | None = None) -> None:
        """Users running at time ``t``; the latest value set in a second wins, merges keep the maximum."""
        self._second(t).users = users

    # -- bounds ------------------------------------------------------------------------------------

    def prune(self) -> None:
        """Drop seconds (and histograms) beyond the retention before the newest second."""
        self._flush()
        if self._newest is None:
            return
        oldest_kept = self._newest - self.max_seconds
        oldest_hist = self._newest - self.hist_seconds
        for part in (self._live, self._base):
            for sec in [s for s in part if s < oldest_kept]:
                del part[sec]
            for sec, s in part.items():
                if sec < oldest_hist:
                    s.total_ms = None
                    s.ttft_ms = None

    def clear(self) -> None:
        """Forget every second (Locust's "Reset stats", a new run)."""
        self._pending = None
        self._pending_total.clear()
        self._pending_ttft.clear()
        self._live = {}
        self._base = {}
        self._newest = None
        self._last_prune = None

    # -- worker -> master --------------------------------------------------------------------------

    def take_delta(self) -> dict[str, Any]:
        """The seconds touched since the last call, as a wire structure; starts a new delta."""
        self._flush()
        live = self._live
        wire = {"v": _WIRE_VERSION, "s": [s.to_wire(sec) for sec, s in sorted(live.items())]}
        if self.keep_totals:
            for sec, s in live.items():
                old = self._base.get(sec)
                if old is None:
                    self._base[sec] = s
                else:
                    old.merge(s)
        self._live = {}
        return wire

    def merge_wire(self, wire: Mapping[str, Any]) -> None:
        """Add a ``take_delta`` structure (from a worker), by second; ValueError when malformed."""
        if not isinstance(wire, Mapping) or wire.get("v") != _WIRE_VERSION:
            raise ValueError(f"not a time series wire structure (version {_WIRE_VERSION}): {wire!r:.80}")
        rows = [SecondStats.from_wire(row) for row in wire.get("s", ())]
        for sec, s in rows:
            old = self._base.get(sec)
            if old is None:
                self._base[sec] = s
            else:
                old.merge(s)
            self._saw(sec)

    # -- reading -----------------------------------------------------------------------------------

    def seconds(self) -> list[int]:
        """Every second with data, sorted."""
        return sorted(set(self._base) | set(self._live))

    def get(self, second: int) -> SecondStats | None:
        """The merged stats of one second (a copy), None when nothing happened in it."""
        self._flush()
        a = self._base.get(second)
        b = self._live.get(second)
        if a is None and b is None:
            return None
        out = SecondStats()
        for s in (a, b):
            if s is not None:
                out.merge(s)
        return out

    def window(self, t_end: int, window_s: int, *, not_before: int | None = None) -> WindowStats:
        """Aggregate of the seconds ``t_end - window_s < s <= t_end`` (and ``s >= not_before``)."""
        self._flush()
        start = t_end - window_s + 1
        if not_before is not None and not_before > start:
            start = not_before
        w = WindowStats(start=start, end=t_end)
        for part in (self._base, self._live):
            if not part:
                continue
            if t_end - start + 1 <= len(part):
                items = [(sec, part[sec]) for sec in range(start, t_end + 1) if sec in part]
            else:
                items = [(sec, s) for sec, s in part.items() if start <= sec <= t_end]
            for _, s in items:
                w.requests += s.requests
                w.failures += s.failures
                w.blocked += s.blocked
                w.good += s.good
                w.output_tokens += s.output_tokens
                if s.total_ms is not None:
                    w.total_ms.merge(s.total_ms)
                if s.ttft_ms is not None:
                    w.ttft_ms.merge(s.ttft_ms)
        return w

    def rolling_percentile(self, t_end: int, window_s: int, pct: float = 95.0) -> float | None:
        """Percentile of total latency over the window ending at ``t_end``."""
        return self.window(t_end, window_s).total_ms.percentile(pct)

    def rolling_error_rate(self, t_end: int, window_s: int) -> float | None:
        """Failures / requests over the window ending at ``t_end``; None without requests."""
        return self.window(t_end, window_s).error_rate

    def to_json(self) -> list[dict[str, Any]]:
        """One plain dict per second (for the JSON summary): counts, users and latency percentiles."""
        out: list[dict[str, Any]] = []
        for sec in self.seconds():
            s = self.get(sec)
            assert s is not None
            tot = s.total_ms if s.total_ms is not None else Histogram()
            ttft = s.ttft_ms if s.ttft_ms is not None else Histogram()
            p50, p95 = tot.percentiles((50.0, 95.0))
            out.append(
                {
                    "t": sec,
                    "requests": s.requests,
                    "failures": s.failures,
                    "blocked": s.blocked,
                    "good": s.good,
                    "output_tokens": s.output_tokens,
                    "users": s.users,
                    "total_ms_p50": p50,
                    "total_ms_p95": p95,
                    "ttft_ms_p50": ttft.percentile(50.0),
                    "ttft_ms_p95": ttft.percentile(95.0),
                }
            )
        return out


# -- recovery time -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecoveryAnalysis:
    """Outcome of ``analyze_recovery``; ``seconds`` is the recovery time or None."""

    seconds: float | None
    baseline_p: float | None
    baseline_error_rate: float | None
    latency_bound: float | None
    error_bound: float | None
    recovered_at: int | None
    reason: str


def analyze_recovery(
    series: TimeSeries,
    spike_end: int,
    baseline_window: tuple[int, int],
    tolerance: float = 0.2,
    *,
    window_s: int = 10,
    hold_s: int = 10,
    latency_slack_ms: float = 5.0,
    error_slack: float = 0.01,
    pct: float = 95.0,
    max_wait_s: int | None = None,
) -> RecoveryAnalysis:
    """Recovery after a spike, with the bounds used; see the module docstring for the definition."""
    if window_s < 1 or hold_s < 1:
        raise ValueError("window_s and hold_s must be at least 1 second")
    b_start, b_end = baseline_window
    base = series.window(b_end - 1, b_end - b_start)
    base_p = base.total_ms.percentile(pct)
    base_err = base.error_rate
    if base_p is None or base_err is None:
        return RecoveryAnalysis(None, base_p, base_err, None, None, None, "no requests in the baseline window")
    lat_bound = base_p * (1.0 + tolerance) + latency_slack_ms
    err_bound = base_err + error_slack
    secs = series.seconds()
    if not secs or secs[-1] < spike_end:
        return RecoveryAnalysis(None, base_p, base_err, lat_bound, err_bound, None, "no data after the spike")
    last = secs[-1]
    if max_wait_s is not None:
        last = min(last, spike_end + max_wait_s + hold_s - 1)
    run_start: int | None = None
    for t in range(spike_end, last + 1):
        w = series.window(t, window_s, not_before=spike_end)
        p = w.total_ms.percentile(pct)
        err = w.error_rate
        # p is None when every request of the window failed: the error rate decides then.
        within = err is not None and err <= err_bound and (p is None or p <= lat_bound)
        if within:
            if run_start is None:
                run_start = t
            if t - run_start + 1 >= hold_s:
                return RecoveryAnalysis(
                    float(run_start - spike_end), base_p, base_err, lat_bound, err_bound, run_start, "recovered"
                )
        else:
            run_start = None
    reason = "not back within bounds" if run_start is None else "back within bounds, but not for the hold period"
    return RecoveryAnalysis(None, base_p, base_err, lat_bound, err_bound, None, reason)


def recovery_time(
    series: TimeSeries,
    spike_end: int,
    baseline_window: tuple[int, int],
    tolerance: float = 0.2,
    **kwargs: Any,
) -> float | None:
    """Seconds after ``spike_end`` until rolling p95 latency and error rate are back within the baseline
    bounds and stay there for the hold period; None if never. Keyword arguments as ``analyze_recovery``.
    """
    return analyze_recovery(series, spike_end, baseline_window, tolerance, **kwargs).seconds
