"""Schedule adherence of the open model (pure, no Locust): arrivals expected against arrivals issued and dropped.

An open-model suite asks for a rate (arrivals per second for the whole test, all workers together). Where
the verdict is made (master or local runner) an ``ArrivalLedger`` integrates that rate over the run, from
the test start to the stop (``start``, ``set_rates`` when it changes, ``stop``): the arrivals *expected*.
A trace replay gives its scheduled offsets instead. Each process counts what its schedule *issued* (every
due arrival: handed to a User, *sent*, or *dropped* because no User was idle, k6's ``dropped_iterations``);
the counts are merged on the master.

The verdict is not trustworthy (``problems``) when

* issued < ``min_issued`` (default 90%) of expected: the schedule did not run for the whole test (it
  started late, a worker had no share, the generator could not keep up). A Poisson schedule's count is
  random: it is flagged only below ``min(min_issued * E, E - 3 * sqrt(E))``, three standard deviations;
* dropped > ``max_dropped`` (default 5%) of issued: too few Users for the rate times the call duration.

``accept=True`` (the ``--accept-schedule-miss`` flag) keeps the figures in the summary without the flag.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_DROPPED", "MIN_ISSUED", "ArrivalLedger", "problems", "section"]

MIN_ISSUED = 0.90
MAX_DROPPED = 0.05


@dataclass
class ArrivalLedger:
    """Arrivals the run should issue, per scenario: a rate integrated over time, or a trace's offsets."""

    kind: str = "constant"
    """``constant`` or ``poisson`` (the tolerance of the issued count), ``trace`` for offsets."""
    rates: dict[str, float] = field(default_factory=dict)
    offsets: dict[str, Sequence[float]] | None = None
    """Trace replay: each scenario's scheduled offsets (seconds from the start), instead of ``rates``."""
    started_at: float | None = None
    stopped_at: float | None = None
    _acc: dict[str, float] = field(default_factory=dict)
    _since: float = 0.0

    def start(self, t: float, rates: Mapping[str, float] | None = None) -> None:
        self.started_at = self._since = t
        self.stopped_at = None
        self._acc = {}
        if rates is not None:
            self.rates = dict(rates)

    def _advance(self, t: float) -> None:
        dt = max(0.0, t - self._since)
        for name, rate in self.rates.items():
            self._acc[name] = self._acc.get(name, 0.0) + rate * dt
        self._since = max(self._since, t)

    def set_rates(self, t: float, rates: Mapping[str, float]) -> None:
        """The rates change at ``t`` (the capacity search's rate mode)."""
        if self.started_at is not None and self.stopped_at is None:
            self._advance(t)
        self.rates = dict(rates)

    def stop(self, t: float) -> None:
        if self.started_at is None or self.stopped_at is not None:
            return
        self._advance(t)
        self.stopped_at = t

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.stopped_at is None

    def seconds(self, now: float) -> float:
        if self.started_at is None:
            return 0.0
        end = self.stopped_at if self.stopped_at is not None else now
        return max(0.0, end - self.started_at)

    def expected(self, now: float) -> dict[str, float]:
        """Arrivals due from the start to the stop (or ``now`` while running), per scenario."""
        if self.started_at is None:
            return {}
        if self.offsets is not None:
            span = self.seconds(now)
            return {name: float(sum(1 for t in offs if t < span)) for name, offs in self.offsets.items()}
        out = dict(self._acc)
        if self.stopped_at is None:
            dt = max(0.0, now - self._since)
            for name, rate in self.rates.items():
                out[name] = out.get(name, 0.0) + rate * dt
        return out


def problems(
    expected: float,
    issued: float,
    dropped: float,
    *,
    kind: str = "constant",
    min_issued: float = MIN_ISSUED,
    max_dropped: float = MAX_DROPPED,
    label: str = "open model",
) -> list[str]:
    """Why the schedule was not kept, in words (empty: kept)."""
    out: list[str] = []
    if expected >= 1:
        floor = min_issued * expected
        if kind == "poisson":
            floor = min(floor, expected - 3.0 * math.sqrt(expected))
        if issued < floor:
            out.append(
                f"{label}: {issued:.0f} arrivals issued of {expected:.0f} expected ({issued / expected:.0%}, "
                f"under {min_issued:.0%}): the schedule did not run for the whole test (late start, a process "
                "without its share, or a generator that could not keep up)"
            )
    if issued > 0 and dropped > max_dropped * issued:
        out.append(
            f"{label}: {dropped:.0f} of {issued:.0f} arrivals dropped ({dropped / issued:.0%}, over "
            f"{max_dropped:.0%}): no User was idle when they were due; raise -u (Users needed = rate x call "
            "duration) or lower the rate"
        )
    return out


def section(
    ledger: ArrivalLedger,
    issued: Mapping[str, float],
    dropped: Mapping[str, float],
    now: float,
    *,
    accept: bool = False,
    min_issued: float = MIN_ISSUED,
    max_dropped: float = MAX_DROPPED,
) -> dict[str, Any]:
    """The JSON ``arrivals`` section: expected, issued, sent, dropped (whole test and per scenario), problems."""
    expected = ledger.expected(now)
    names = sorted(set(expected) | set(issued) | set(dropped))
    scenarios: dict[str, dict[str, float]] = {}
    for name in names:
        i = float(issued.get(name, 0))
        d = float(dropped.get(name, 0))
        scenarios[name] = {"expected": round(expected.get(name, 0.0), 1), "issued": i, "sent": i - d, "dropped": d}
    tot_e = sum(expected.values())
    tot_i = float(sum(issued.values()))
    tot_d = float(sum(dropped.values()))
    found = problems(tot_e, tot_i, tot_d, kind=ledger.kind, min_issued=min_issued, max_dropped=max_dropped)
    return {
        "expected": round(tot_e, 1),
        "issued": tot_i,
        "sent": tot_i - tot_d,
        "dropped": tot_d,
        "scheduled_s": round(ledger.seconds(now), 3),
        "arrival": ledger.kind,
        "scenarios": scenarios,
        "rules": {"min_issued": min_issued, "max_dropped": max_dropped},
        "problems": found,
        "accepted": accept and bool(found),
    }
