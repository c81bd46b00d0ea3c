"""Capacity search: the highest load at which every SLO still holds, found by steps then bisection (pure).

The question users ask is not "where does it break" but "what is the most load we can take while meeting our
SLOs". The search answers it in load *levels*: concurrent Users (``mode: users``, the closed model) or arrivals
per second (``mode: rate``, the open model).

1. **Ramp.** Levels ``start``, ``start * growth``, ... (or ``+ increment``), capped at ``max``, until a level
   fails. If ``max`` passes, the limit is at least ``max`` and the search stops.
2. **Descent.** If the very first level fails, levels ``level / growth`` down to ``min_level`` until one passes;
   none passes: there is no limit (even the lowest level misses the SLOs).
3. **Bisection.** Between the highest passing and the lowest failing level, the middle one (whole Users in
   users mode), until the gap is within ``resolution`` (absolute) or ``relative_resolution`` (a fraction of
   the passing level), or cannot be split.

A step passes when it has at least ``min_samples`` completed requests and every threshold holds on the step's
own data (``judge``); the limit is the highest passing level, and the step just above it tells which threshold
failed first. ``max_steps`` bounds the number of steps.

``SearchDriver`` runs the steps in time, driven by a clock the caller passes (the shape's ``tick()``, about
once a second): at each step start the new level is applied; after ``settle_s`` (ramp-up, queues and the
calls of the previous level draining; in a distributed run also the worker reports, which come every 3 s)
the step's data window opens; after ``hold_s`` it closes; then, in a distributed run, the driver waits until
every worker has reported after the close (at most ``report_timeout_s``), and the step is judged. Each
phase ends on the first tick at or after its deadline (``slack_s`` absorbs a tick that comes a hair early).
After a failing step, ``cooldown_s`` of no load (level 0: every User stopped, their calls cut) lets the target
recover before the next step: an overloaded server may stay overloaded at a slightly lower load.
``max_duration_s`` bounds the whole search: when it runs out the search stops with the limit found so far.

No Locust import: the step window, the judging and the report wait are callbacks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llm_metrics.engine.thresholds import ThresholdResult

__all__ = [
    "MODES",
    "CapacitySearch",
    "SearchDriver",
    "SearchResult",
    "SearchSpec",
    "StepOutcome",
    "StepRecord",
    "StepTiming",
    "Verdict",
    "judge",
]

MODES = ("users", "rate")
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class SearchSpec:
    """What levels the search may try and when it has narrowed in enough."""

    mode: str = "users"
    start: float = 1.0
    max: float = 100.0
    growth: float = 2.0
    """Ramp factor (> 1) of the ramp and of the descent; unused for the ramp when ``increment`` > 0."""
    increment: float = 0.0
    """> 0: the ramp adds this much per step instead of multiplying by ``growth``."""
    resolution: float = 1.0
    """Stop when the failing level is at most this much above the passing one (Users or arrivals/s)."""
    relative_resolution: float = 0.0
    """... or at most this fraction of the passing level above it (0.05: within 5%)."""
    min_level: float = 0.0
    """Lowest level of the descent; 0 means 1 User (users mode) or ``resolution`` (rate mode)."""
    max_steps: int = 30

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        for name in ("start", "max", "growth", "increment", "resolution", "relative_resolution", "min_level"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a number >= 0, got {v!r}")
        if self.start <= 0:
            raise ValueError(f"start must be > 0, got {self.start!r}")
        if self.max < self.start:
            raise ValueError(f"max ({self.max:g}) must be >= start ({self.start:g})")
        if self.growth <= 1 and self.increment <= 0:
            raise ValueError(f"growth must be > 1 (or increment > 0), got growth {self.growth!r}")
        if self.growth <= 1 and self.min_level <= 0 and self.mode == "rate" and self.resolution <= 0:
            raise ValueError("rate mode needs resolution > 0 or min_level > 0 to bound the descent")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps!r}")
        if self.mode == "users" and (self.start != int(self.start) or self.max != int(self.max)):
            raise ValueError(f"users mode needs whole numbers of Users, got start {self.start:g}, max {self.max:g}")

    @property
    def unit(self) -> str:
        return "users" if self.mode == "users" else "req/s"

    @property
    def floor(self) -> float:
        """The lowest level the descent may try."""
        if self.min_level > 0:
            return self.min_level
        return 1.0 if self.mode == "users" else max(self.resolution, self.start / 1024)

    def quantize(self, level: float) -> float:
        """A level as it is applied: whole Users, or arrivals/s to 1/1000."""
        if self.mode == "users":
            return float(max(1, round(level)))
        return round(level, 3)

    def close_enough(self, passing: float, failing: float) -> bool:
        """Whether the gap between a passing and a failing level is within the resolution."""
        gap = failing - passing
        limit = max(self.resolution, self.relative_resolution * passing)
        if self.mode == "users":
            limit = max(limit, 1.0)
        return gap <= limit + _EPS


@dataclass(frozen=True, slots=True)
class Verdict:
    """How one step was judged: passed or not, and why not (each failing threshold, or too little data)."""

    passed: bool
    reason: str = ""
    failures: tuple[ThresholdResult, ...] = ()


def _observed(r: ThresholdResult) -> str:
    if r.error:
        return f"error: {r.error}"
    if r.no_data or r.observed is None:
        return "no data"
    agg = r.threshold.aggregation
    return f"{agg}={r.observed:.4g}"


def describe_failure(r: ThresholdResult) -> str:
    """``llm_ttft_ms p(95)<1000 (p(95)=1234)``."""
    return f"{r.threshold.name} {r.threshold.expression} ({_observed(r)})"


def judge(results: Sequence[ThresholdResult], samples: int, min_samples: int = 1) -> Verdict:
    """A step's verdict from its threshold results and the number of requests it completed.

    Too few requests fail the step (a load so high that nothing completes must not pass for lack of data);
    then every threshold must hold (``ThresholdResult.ok``: "no data" follows the threshold's
    ``failOnNoData``, as for a whole run).
    """
    if samples < min_samples:
        return Verdict(False, f"not enough data: {samples} requests completed (min_samples {min_samples})")
    failing = tuple(r for r in results if not r.ok)
    if failing:
        return Verdict(False, "; ".join(describe_failure(r) for r in failing), failing)
    return Verdict(True)


@dataclass
class StepOutcome:
    """What the judge callback returns: the verdict, the threshold results and the step's numbers."""

    verdict: Verdict
    results: list[ThresholdResult] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepRecord:
    """One step of the search, as run."""

    index: int
    level: float
    phase: str
    """``ramp``, ``descent`` or ``bisect``."""
    started_at: float
    window: tuple[float, float] | None = None
    judged_at: float | None = None
    outcome: StepOutcome | None = None

    @property
    def passed(self) -> bool | None:
        return None if self.outcome is None else self.outcome.verdict.passed


@dataclass
class SearchResult:
    """The answer: the limit (highest passing level, None if none passed), the failing level above it, why the
    search stopped, and every step."""

    limit: float | None
    first_failure: float | None
    reason: str
    complete: bool
    steps: list[StepRecord]

    def step_at(self, level: float | None) -> StepRecord | None:
        """The last judged step run at ``level``."""
        if level is None:
            return None
        for step in reversed(self.steps):
            if step.outcome is not None and abs(step.level - level) < _EPS:
                return step
        return None


class CapacitySearch:
    """The levels to try and the bookkeeping of passes and failures (no time involved)."""

    def __init__(self, spec: SearchSpec) -> None:
        self.spec = spec
        self.passing: float | None = None
        self.failing: float | None = None
        self.tried: list[tuple[float, bool]] = []
        self.reason = ""

    @property
    def phase(self) -> str:
        if self.failing is None:
            return "ramp"
        return "descent" if self.passing is None else "bisect"

    def next_level(self) -> float | None:
        """The next level to try, None when the search is over (``reason`` says why)."""
        spec = self.spec
        if len(self.tried) >= spec.max_steps:
            self.reason = f"max_steps ({spec.max_steps}) reached"
            return None
        if not self.tried:
            return spec.quantize(spec.start)
        if self.failing is None:  # ramp: every level so far passed
            last = self.tried[-1][0]
            if last >= spec.max - _EPS:
                self.reason = f"the highest level ({spec.max:g} {spec.unit}) passed: the limit is at least that"
                return None
            nxt = last + spec.increment if spec.increment > 0 else last * spec.growth
            nxt = spec.quantize(min(spec.max, nxt))
            if nxt <= last:
                nxt = spec.quantize(min(spec.max, last + (1.0 if spec.mode == "users" else spec.resolution)))
            return nxt if nxt > last else None
        if self.passing is None:  # descent: every level so far failed
            low = self.failing
            floor = spec.quantize(spec.floor)
            if low <= floor + _EPS:
                self.reason = f"even the lowest level ({low:g} {spec.unit}) failed: no load meets the thresholds"
                return None
            growth = spec.growth if spec.growth > 1 else 2.0
            return max(floor, spec.quantize(low / growth))
        lo, hi = self.passing, self.failing
        if spec.close_enough(lo, hi):
            self.reason = f"narrowed to {lo:g}-{hi:g} {spec.unit}, within the resolution"
            return None
        mid = spec.quantize((lo + hi) / 2)
        if not lo < mid < hi:
            self.reason = f"narrowed to {lo:g}-{hi:g} {spec.unit}: no level in between"
            return None
        return mid

    def record(self, level: float, passed: bool) -> None:
        self.tried.append((level, passed))
        if passed:
            if self.passing is None or level > self.passing:
                self.passing = level
        elif self.failing is None or level < self.failing:
            self.failing = level
        if self.passing is not None and self.failing is not None and self.passing >= self.failing:
            # noise: a level passed at or above one that failed; keep the failing one as the bound
            self.passing = max((lv for lv, ok in self.tried if ok and lv < self.failing), default=None)

    @property
    def limit(self) -> float | None:
        return self.passing

    @property
    def first_failure(self) -> float | None:
        """The lowest failing level above the limit (the whole search's lowest failure)."""
        return self.failing


@dataclass(frozen=True, slots=True)
class StepTiming:
    """How long each phase of a step lasts, in seconds; see the module docstring."""

    settle_s: float = 10.0
    hold_s: float = 30.0
    report_timeout_s: float = 0.0
    """Distributed runs: after the hold, wait at most this for every worker's next report (0: do not wait)."""
    max_duration_s: float | None = None
    cooldown_s: float = 0.0
    """After a failing step, run no load (level 0) this long before the next step, so that the slow calls of an
    overloaded level do not carry over (an overloaded server may not recover at a slightly lower rate)."""
    slack_s: float = 0.1

    def __post_init__(self) -> None:
        for name in ("settle_s", "hold_s", "report_timeout_s", "cooldown_s", "slack_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a number of seconds >= 0, got {v!r}")
        if self.hold_s <= 0:
            raise ValueError(f"hold_s must be > 0, got {self.hold_s!r}")
        if self.max_duration_s is not None and not self.max_duration_s > 0:
            raise ValueError(f"max_duration_s must be > 0, got {self.max_duration_s!r}")

    def step_seconds(self) -> float:
        return self.settle_s + self.hold_s


class SearchDriver:
    """Runs a ``CapacitySearch`` in time; call ``tick(now)`` about once a second (see the module docstring).

    Callbacks: ``open_window()`` when a step's data window opens; ``judge(level, elapsed_s)`` when it is
    judged (returns a ``StepOutcome``; the window is the caller's to close); ``reported_after(t)``: every
    worker has reported since ``t`` (always true without workers).
    """

    SETTLE, HOLD, REPORT, COOLDOWN, DONE = "settle", "hold", "report", "cooldown", "done"

    def __init__(
        self,
        search: CapacitySearch,
        timing: StepTiming,
        *,
        open_window: Callable[[], None],
        judge: Callable[[float, float], StepOutcome],
        reported_after: Callable[[float], bool] = lambda _t: True,
    ) -> None:
        self.search = search
        self.timing = timing
        self._open_window = open_window
        self._judge = judge
        self._reported_after = reported_after
        self.steps: list[StepRecord] = []
        self.state = self.SETTLE
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.reason = ""
        self._phase_at = 0.0

    @property
    def done(self) -> bool:
        return self.state == self.DONE

    @property
    def current(self) -> StepRecord | None:
        return self.steps[-1] if self.steps and self.steps[-1].outcome is None else None

    @property
    def cooling_down(self) -> bool:
        return self.state == self.COOLDOWN

    def _due(self, now: float, deadline: float) -> bool:
        return now + self.timing.slack_s >= deadline

    def _over_budget(self, now: float) -> bool:
        """Whether another step would end after the time budget (the first step always runs)."""
        budget = self.timing.max_duration_s
        if budget is None or self.started_at is None or not self.steps:
            return False
        return now + self.timing.step_seconds() > self.started_at + budget + self.timing.slack_s

    def _begin(self, now: float) -> float | None:
        if self._over_budget(now):
            self._finish(now, f"time budget ({self.timing.max_duration_s:g} s) used up")
            return None
        phase = self.search.phase
        level = self.search.next_level()
        if level is None:
            self._finish(now, self.search.reason)
            return None
        self.steps.append(StepRecord(len(self.steps) + 1, level, phase, now))
        self.state = self.SETTLE
        self._phase_at = now
        if self.timing.settle_s <= 0:
            self._open(now)
        return level

    def _open(self, now: float) -> None:
        step = self.steps[-1]
        self._open_window()
        step.window = (now, now)
        self.state = self.HOLD
        self._phase_at = now

    def _finish(self, now: float, reason: str) -> None:
        self.state = self.DONE
        self.finished_at = now
        self.reason = reason

    def tick(self, now: float) -> float | None:
        """The level to run now (0 while cooling down after a failing step); None once the search is over."""
        if self.state == self.DONE:
            return None
        if self.started_at is None:
            self.started_at = now
            return self._begin(now)
        step = self.steps[-1]
        if self.state == self.SETTLE and self._due(now, self._phase_at + self.timing.settle_s):
            self._open(now)
        if self.state == self.HOLD and self._due(now, self._phase_at + self.timing.hold_s):
            assert step.window is not None
            step.window = (step.window[0], now)
            self.state = self.REPORT
            self._phase_at = now
        if self.state == self.REPORT:
            closed = self._phase_at
            if self._reported_after(closed) or now >= closed + self.timing.report_timeout_s:
                assert step.window is not None
                outcome = self._judge(step.level, max(1e-6, now - step.window[0]))
                step.outcome = outcome
                step.judged_at = now
                self.search.record(step.level, outcome.verdict.passed)
                if outcome.verdict.passed or self.timing.cooldown_s <= 0:
                    return self._begin(now)
                self.state = self.COOLDOWN
                self._phase_at = now
        if self.state == self.COOLDOWN:
            if self._due(now, self._phase_at + self.timing.cooldown_s):
                return self._begin(now)
            return 0.0
        return step.level

    def stop(self, now: float, reason: str = "the run stopped before the search ended") -> None:
        """End the search early (the run is stopping); the step in progress is not judged."""
        if self.state != self.DONE:
            if self.state != self.COOLDOWN and self.steps and self.steps[-1].outcome is None:
                self.steps.pop()
            self._finish(now, reason)

    def result(self) -> SearchResult:
        complete = self.state == self.DONE and not self.reason.startswith("the run stopped")
        return SearchResult(
            self.search.limit,
            self.search.first_failure,
            self.reason or "in progress",
            complete,
            [s for s in self.steps if s.outcome is not None] + ([self.current] if self.current is not None else []),
        )
