"""``recovery_time`` after the spike of a load profile (seed 000), from the per-second series of a run.

Inputs are what the shape knows -- the stages' real-time bounds, their user targets, the stage marked
``spike`` and the wall-clock start of the run -- and the merged ``TimeSeries``. The definition of recovery
is ``timeseries.analyze_recovery``'s; this module picks its windows:

* **Spike end**: the end of the stage marked spike (``wall_start + end``); the first post-spike second of
  the series is the first whole second after it (``ceil``), and the reported recovery time counts from the
  exact spike end, so it is ``recovered_at - spike_end`` (0 when the first post-spike second is in bounds,
  up to one second of rounding otherwise).
* **Baseline**: the stage before the surge. Walking back from the spike stage over the stages that raise
  the user count (the ramp up to the spike; the first stage never counts as such), the stage just before
  them is the baseline (for the spike profile: the 50 s at 10 users, not the ramp from 0). Only whole
  seconds inside it count; a stage of 1 to 2 s that holds no whole second (a strongly time-scaled run) has
  the second around its middle instead. No such stage (the spike is the first stage), or one shorter than
  a second -> no baseline, no recovery time.
* **Windows at a time scale**: ``window_s`` and ``hold_s`` are seconds of the *profile*; with
  ``scale_with_time_scale`` they are multiplied by the shape's time scale (at least 1 s), so a rehearsal at
  ``--time-scale 0.05`` judges recovery as the full-length run would, 20 times faster.

No Locust import here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm_metrics.engine.timeseries import RecoveryAnalysis, TimeSeries, analyze_recovery

__all__ = ["RecoveryParams", "RecoveryReport", "analyze_spike_recovery", "baseline_stage", "format_report"]


@dataclass(frozen=True, slots=True)
class RecoveryParams:
    """Bounds of "recovered" (see ``timeseries.analyze_recovery``); windows in profile seconds."""

    tolerance: float = 0.2
    window_s: float = 10.0
    hold_s: float = 10.0
    latency_slack_ms: float = 5.0
    error_slack: float = 0.01
    percentile: float = 95.0
    scale_with_time_scale: bool = True

    def windows(self, time_scale: float) -> tuple[int, int]:
        """``(window_s, hold_s)`` in whole real seconds (at least 1) at ``time_scale``."""
        k = time_scale if self.scale_with_time_scale else 1.0
        return max(1, round(self.window_s * k)), max(1, round(self.hold_s * k))


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What ``analyze_spike_recovery`` found; ``recovery_time_s`` None when not recovered (see ``reason``)."""

    recovery_time_s: float | None
    reason: str
    spike_window_s: tuple[float, float] | None = None
    """Run-time seconds of the spike stage."""
    spike_end_wall: float | None = None
    baseline_wall: tuple[int, int] | None = None
    """Half-open ``[start, end)`` whole wall-clock seconds of the baseline."""
    window_s: int | None = None
    hold_s: int | None = None
    analysis: RecoveryAnalysis | None = None
    time_scale: float = 1.0

    def to_json(self) -> dict[str, Any]:
        a = self.analysis
        return {
            "recovery_time_s": self.recovery_time_s,
            "reason": self.reason,
            "spike_window_run_s": list(self.spike_window_s) if self.spike_window_s else None,
            "spike_end_wall": self.spike_end_wall,
            "recovered_at_wall": a.recovered_at if a is not None else None,
            "baseline_wall": list(self.baseline_wall) if self.baseline_wall else None,
            "baseline_p": a.baseline_p if a is not None else None,
            "baseline_error_rate": a.baseline_error_rate if a is not None else None,
            "latency_bound_ms": a.latency_bound if a is not None else None,
            "error_rate_bound": a.error_bound if a is not None else None,
            "window_s": self.window_s,
            "hold_s": self.hold_s,
            "time_scale": self.time_scale,
        }


def baseline_stage(targets: Sequence[int], spike_index: int) -> int | None:
    """Index of the baseline stage for the spike at ``spike_index`` (module docstring), None if none."""
    k = spike_index
    # stage k-1 raises the count: part of the surge; the first stage is never part of it (at worst it is
    # the warm-up ramp from the start, then the only baseline there is)
    while k > 1 and targets[k - 1] > targets[k - 2]:
        k -= 1
    return k - 1 if k >= 1 else None


def analyze_spike_recovery(
    series: TimeSeries,
    *,
    wall_start: float,
    bounds: Sequence[tuple[float, float]],
    targets: Sequence[int],
    spike_index: int,
    params: RecoveryParams,
    time_scale: float = 1.0,
) -> RecoveryReport:
    """Recovery after the spike stage ``spike_index`` of a run that started at ``wall_start``."""
    window_s, hold_s = params.windows(time_scale)
    spike = bounds[spike_index]
    spike_end_wall = wall_start + spike[1]
    base_i = baseline_stage(targets, spike_index)
    common: dict[str, Any] = {
        "spike_window_s": spike,
        "spike_end_wall": spike_end_wall,
        "window_s": window_s,
        "hold_s": hold_s,
        "time_scale": time_scale,
    }
    if base_i is None:
        return RecoveryReport(None, "no baseline stage before the spike", **common)
    b0, b1 = bounds[base_i]
    baseline = (math.ceil(wall_start + b0), math.floor(wall_start + b1))
    if baseline[1] <= baseline[0]:
        if b1 - b0 < 1.0:
            return RecoveryReport(None, "the baseline stage is shorter than a second", **common)
        mid = math.floor(wall_start + (b0 + b1) / 2)
        baseline = (mid, mid + 1)
    first_after = math.ceil(spike_end_wall)
    a = analyze_recovery(
        series,
        first_after,
        baseline,
        params.tolerance,
        window_s=window_s,
        hold_s=hold_s,
        latency_slack_ms=params.latency_slack_ms,
        error_slack=params.error_slack,
        pct=params.percentile,
    )
    seconds = None
    if a.recovered_at is not None:
        seconds = max(0.0, a.recovered_at - spike_end_wall)
    return RecoveryReport(seconds, a.reason, baseline_wall=baseline, analysis=a, **common)


def _num(v: float | None, unit: str = "", digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}{unit}"


def format_report(report: RecoveryReport, percentile: float = 95.0) -> str:
    """A few lines for the console report."""
    lines = ["RECOVERY AFTER THE SPIKE"]
    if report.recovery_time_s is not None:
        lines.append(f"  recovery_time = {report.recovery_time_s:.2f} s ({report.reason})")
    else:
        lines.append(f"  recovery_time: not recorded ({report.reason})")
    if report.spike_window_s is not None:
        s0, s1 = report.spike_window_s
        lines.append(f"  spike stage: {s0:g}-{s1:g} s of the run (time scale {report.time_scale:g})")
    a = report.analysis
    if a is not None:
        p = f"p({percentile:g})"
        lines.append(
            f"  baseline: {p}={_num(a.baseline_p, ' ms')}, error rate={_num(a.baseline_error_rate, '', 4)}; "
            f"back within bounds: {p} <= {_num(a.latency_bound, ' ms')} and error rate <= "
            f"{_num(a.error_bound, '', 4)}, over {report.window_s} s windows held {report.hold_s} s"
        )
    return "\n".join(lines) + "\n"
