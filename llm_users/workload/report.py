"""The workload suite's metrics of prompt-length accuracy and its part of the reports.

Every call whose whole prompt had a target length records how far the server's count was from it:
``input_len_error_pct`` (trend, absolute %), ``input_tokens_requested`` and ``input_tokens_served`` (counters;
their ratio is the bias). The summary's ``workload`` section (``summary``) and the console report
(``text_section``) say how close it came, with each process's calibration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_metrics.engine.histogram import Histogram
from llm_metrics.engine.thresholds import MetricRegistry, default_registry
from llm_users.workload.trace import duration

if TYPE_CHECKING:
    from llm_users.workload.runtime import WorkloadRuntime

__all__ = ["INPUT_ERROR", "INPUT_REQUESTED", "INPUT_SERVED", "input_accuracy", "summary", "text_section"]

INPUT_ERROR = "input_len_error_pct"
INPUT_REQUESTED = "input_tokens_requested"
INPUT_SERVED = "input_tokens_served"


def workload_registry() -> MetricRegistry:
    """The default metrics plus the workload suite's prompt-length accuracy metrics."""
    reg = default_registry()
    reg.register(INPUT_ERROR, "trend")
    reg.register(INPUT_REQUESTED, "counter")
    reg.register(INPUT_SERVED, "counter")
    return reg


def record_accuracy(metrics: Any, scenario: str, target: int, served: int) -> None:
    """One call's prompt length against its target (``metrics``: the metrics core, or ``None``)."""
    if metrics is None:
        return
    tags = {"scenario": scenario}
    metrics.add(INPUT_ERROR, tags, abs(served - target) / target * 100.0)
    metrics.count(INPUT_REQUESTED, tags, target)
    metrics.count(INPUT_SERVED, tags, served)


def input_accuracy(metrics: Any) -> dict[str, Any]:
    """How close the prompts came to their target lengths, from the (merged) store."""
    if metrics is None:
        return {}
    store = metrics.store
    h: Histogram | None = store.select_hist(INPUT_ERROR)
    requested = store.select_counter(INPUT_REQUESTED) or 0.0
    served = store.select_counter(INPUT_SERVED) or 0.0
    if h is None or not h.count:
        return {"calls": 0}
    p50, p95 = h.percentiles((50.0, 95.0))
    return {
        "calls": h.count,
        "error_pct_p50": p50,
        "error_pct_p95": p95,
        "error_pct_max": h.vmax,
        "error_pct_avg": h.mean,
        "requested_tokens": requested,
        "served_tokens": served,
        "served_over_requested": served / requested if requested else None,
    }


def summary(rt: WorkloadRuntime) -> dict[str, Any]:
    """The JSON summary's ``workload`` section."""
    s = rt.settings
    out: dict[str, Any] = {
        "mode": s.mode,
        "api": s.api.name,
        "stream": s.stream and s.api.streams,
        "output_tokens": str(s.output_tokens),
        "ignore_eos": s.ignore_eos,
        "seed": s.seed if s.seed_given else None,
    }
    if s.mode != "trace":
        out.update(input_tokens=str(s.input_tokens), turns=s.turns, followup_tokens=str(s.followup_tokens))
    if s.mode == "closed":
        out["think_time_s"] = str(s.think_time)
    if s.mode == "open":
        out.update(rate=rt.rate, arrival=s.arrival)
    if s.mode == "trace" and s.trace is not None:
        out["trace"] = {
            "file": s.trace_path,
            "records": len(s.trace),
            "conversations": len({r.conversation_id for r in s.trace if r.conversation_id}),
            "time_scale": s.trace_time_scale,
            "duration_s": duration(s.trace, s.trace_time_scale),
        }
    out["calibration"] = rt.calibrator.json()
    out["input_accuracy"] = input_accuracy(rt.metrics())
    return out


def text_section(rt: WorkloadRuntime) -> str:
    """The console report's ``WORKLOAD`` part."""
    data = summary(rt)
    lines = [f"WORKLOAD: {data['mode']}"]
    acc = data["input_accuracy"]
    if acc.get("calls"):
        lines.append(
            f"  prompt length vs target (server's usage.prompt_tokens): {acc['calls']} calls, "
            f"error p50 {acc['error_pct_p50']:.1f}%, p95 {acc['error_pct_p95']:.1f}%, "
            f"max {acc['error_pct_max']:.1f}%; served/requested {acc['served_over_requested']:.3f}"
        )
    else:
        lines.append("  prompt length vs target: no call reported usage.prompt_tokens")
    cal = data["calibration"]
    if "per_worker" in cal:
        for worker, text in cal["per_worker"].items():
            lines.append(f"  calibration ({worker}): {text}")
    elif rt.calibrator.calibration is not None:
        lines.append(f"  calibration: {rt.calibrator.describe()}")
    if "trace" in data:
        tr = data["trace"]
        lines.append(
            f"  trace {tr['file']}: {tr['records']} requests, {tr['conversations']} conversations, "
            f"{tr['duration_s']:.1f} s at time scale {tr['time_scale']:g}"
        )
    return "\n".join(lines) + "\n"
