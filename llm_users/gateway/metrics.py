"""The gateway suite's metrics (seed 000): names and kinds, and ``recovery_time`` computed at the verdict.

``gateway_registry()`` is the default registry plus the gateway metrics (pass it to ``install_metrics``).
``RecoveryHook`` is a ``before_verdict`` hook of ``LLMMetrics``: on the master (or the local runner), at
quit, it reads the running shape (``spike_window()``, ``wall_start``, ``plan``), computes the recovery from
the merged per-second series (``gateway_recovery``), records ``recovery_time`` (tag ``profile``) when there
is one, and provides the ``recovery`` part of the JSON summary and the console report.

No Locust import here: the environment and the shape are used by their attributes only.
"""

from __future__ import annotations

from typing import Any

from llm_metrics.engine.thresholds import MetricRegistry, default_registry
from llm_users.gateway.recovery import RecoveryParams, RecoveryReport, analyze_spike_recovery, format_report

__all__ = [
    "BUDGET_EXCEEDED",
    "GATEWAY_LATENCY",
    "GATEWAY_METRICS",
    "POLICY_CHECK_LATENCY",
    "RECOVERY_TIME",
    "REQUESTS_BLOCKED",
    "RecoveryHook",
    "attach_recovery",
    "gateway_registry",
]

GATEWAY_LATENCY = "gateway_latency"
POLICY_CHECK_LATENCY = "policy_check_latency"
REQUESTS_BLOCKED = "requests_blocked"
BUDGET_EXCEEDED = "budget_exceeded"
RECOVERY_TIME = "recovery_time"

GATEWAY_METRICS: dict[str, Any] = {
    GATEWAY_LATENCY: "trend",  # ms
    POLICY_CHECK_LATENCY: "trend",  # ms
    REQUESTS_BLOCKED: "counter",
    BUDGET_EXCEEDED: "counter",
    RECOVERY_TIME: "trend",  # seconds
}


def gateway_registry() -> MetricRegistry:
    """The default metrics plus the gateway ones (already known to the default registry: re-registered
    here so the suite does not depend on that)."""
    reg = default_registry()
    for name, kind in GATEWAY_METRICS.items():
        reg.register(name, kind)
    return reg


class RecoveryHook:
    """``before_verdict`` hook computing ``recovery_time`` from the shape's spike (module docstring)."""

    def __init__(self, environment: Any, params: RecoveryParams) -> None:
        self.environment = environment
        self.params = params
        self.report: RecoveryReport | None = None

    def __call__(self, m: Any) -> None:
        self.report = report = self.compute(m.series)
        if report.recovery_time_s is not None:
            profile = self._profile_name()
            m.store.add(RECOVERY_TIME, {"profile": profile} if profile else {}, report.recovery_time_s)

    def _profile_name(self) -> str:
        plan = getattr(self.environment.shape_class, "plan", None)
        return str(getattr(getattr(plan, "profile", None), "name", "") or "")

    def compute(self, series: Any) -> RecoveryReport:
        shape = self.environment.shape_class
        if shape is None:
            return RecoveryReport(None, "no load shape in this run (use --load-profile spike)")
        window = shape.spike_window() if hasattr(shape, "spike_window") else None
        plan = getattr(shape, "plan", None)
        if window is None or plan is None:
            return RecoveryReport(None, "the load profile has no stage marked spike")
        stages = plan.profile.stages
        spike_index = next(i for i, s in enumerate(stages) if s.spike)
        return analyze_spike_recovery(
            series,
            wall_start=float(shape.wall_start),
            bounds=plan.stage_bounds(),
            targets=[s.target for s in stages],
            spike_index=spike_index,
            params=self.params,
            time_scale=float(plan.time_scale),
        )

    def json(self) -> dict[str, Any] | None:
        if self.report is None:
            return None
        out = self.report.to_json()
        out["percentile"] = self.params.percentile
        out["tolerance"] = self.params.tolerance
        out["latency_slack_ms"] = self.params.latency_slack_ms
        out["error_slack"] = self.params.error_slack
        return out

    def text(self) -> str:
        if self.report is None or self.report.spike_window_s is None:
            return ""
        return format_report(self.report, self.params.percentile)


def attach_recovery(m: Any, environment: Any, params: RecoveryParams) -> RecoveryHook:
    """Add (once) a ``RecoveryHook`` to ``m`` (an ``LLMMetrics``): hook, JSON section, console section."""
    hook = getattr(m, "gateway_recovery", None)
    if isinstance(hook, RecoveryHook):
        hook.params = params
        return hook
    hook = RecoveryHook(environment, params)
    m.gateway_recovery = hook
    m.before_verdict.append(hook)
    m.json_sections["recovery"] = hook.json
    m.text_sections.append(hook.text)
    return hook
