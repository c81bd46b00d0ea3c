"""What the capacity search reports: each step's numbers, the JSON section and the console text (pure).

``step_stats(window, elapsed_s)`` reads one step's window store: requests and their rate, failures, goodput
(calls meeting every per-request SLO of ``goodput:``; without such SLOs, successful LLM calls, and
``goodput_basis`` says so), TTFT p50/p95/p99, total latency p50/p95, TPOT p95, output tokens per second,
queue time p95, dropped arrivals. ``result_json`` is the summary's ``capacity`` section (rendered by
``llm_metrics.outputs.report_html``), ``result_text`` its console form. No Locust import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llm_metrics.engine.store import MetricStore
from llm_metrics.engine.thresholds import ThresholdResult
from shapes.capacity_config import CapacityPlan
from shapes.capacity_search import SearchResult, StepRecord, describe_failure

__all__ = ["result_json", "result_text", "step_stats"]


def _pcts(store: MetricStore, metric: str, ps: Sequence[float]) -> list[float | None]:
    h = store.select_hist(metric)
    if h is None:
        return [None] * len(ps)
    return list(h.percentiles(ps))


def step_stats(window: MetricStore, elapsed_s: float) -> dict[str, Any]:
    """The numbers of one step, from its window store; rates per second over ``elapsed_s``."""
    elapsed = max(elapsed_s, 1e-6)
    requests = int(window.select_counter("http_reqs") or 0)
    failed = window.select_rate("http_req_failed")
    goodput = window.select_rate("goodput")
    if goodput is not None:
        good, basis, share = goodput.hits, "slo", goodput.rate
    else:  # no per-request SLOs: successful requests
        good = (failed.total - failed.hits) if failed is not None else 0
        basis, share = "success", (good / failed.total if failed is not None and failed.total else None)
    ttft = _pcts(window, "llm_ttft_ms", (50.0, 95.0, 99.0))
    total_ms = _pcts(window, "llm_total_ms", (50.0, 95.0))
    out_tokens = window.select_hist("llm_output_tokens")
    dropped = window.select_counter("dropped_iterations")
    return {
        "elapsed_s": round(elapsed, 3),
        "requests": requests,
        "requests_per_s": requests / elapsed,
        "failed_requests": failed.hits if failed is not None else 0,
        "error_rate": failed.rate if failed is not None else None,
        "goodput": share,
        "goodput_per_s": good / elapsed,
        "goodput_basis": basis,
        "ttft_p50_ms": ttft[0],
        "ttft_p95_ms": ttft[1],
        "ttft_p99_ms": ttft[2],
        "total_p50_ms": total_ms[0],
        "total_p95_ms": total_ms[1],
        "tpot_p95_ms": _pcts(window, "llm_tpot_ms", (95.0,))[0],
        "queue_p95_ms": _pcts(window, "llm_queue_ms", (95.0,))[0],
        "output_tokens_per_s": (out_tokens.sum / elapsed) if out_tokens is not None else None,
        "dropped": int(dropped or 0),
    }


def _threshold_json(r: ThresholdResult) -> dict[str, Any]:
    return {
        "key": r.threshold.name,
        "expression": r.threshold.expression,
        "observed": r.observed,
        "ok": r.ok,
        "no_data": r.no_data,
        "samples": r.samples,
    }


def _step_json(step: StepRecord, plan: CapacityPlan, t0: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": step.index,
        "phase": step.phase,
        "level": step.level,
        "users": plan.users_for(step.level),
        "started_s": round(step.started_at - t0, 3),
        "started_wall": step.started_at,
        "window_s": [round(step.window[0] - t0, 3), round(step.window[1] - t0, 3)] if step.window else None,
    }
    if plan.spec.mode == "rate":
        out["rate"] = step.level
    oc = step.outcome
    if oc is None:
        out.update(passed=None, reason="running")
        return out
    out.update(
        passed=oc.verdict.passed,
        reason=oc.verdict.reason,
        failures=[describe_failure(r) for r in oc.verdict.failures],
        **oc.stats,
        thresholds=[_threshold_json(r) for r in oc.results],
    )
    return out


def result_json(result: SearchResult, plan: CapacityPlan, ok: bool) -> dict[str, Any]:
    """The ``capacity`` section of the JSON summary."""
    t0 = result.steps[0].started_at if result.steps else 0.0
    above = result.step_at(result.first_failure)
    failing = above.outcome.verdict if above is not None and above.outcome is not None else None
    return {
        "mode": plan.spec.mode,
        "unit": plan.spec.unit,
        "limit": result.limit,
        "limit_users": plan.users_for(result.limit) if result.limit is not None else None,
        "first_failure": result.first_failure,
        "failing_thresholds": [describe_failure(r) for r in failing.failures] if failing else [],
        "failing_reason": failing.reason if failing else "",
        "reason": result.reason,
        "complete": result.complete,
        "ok": ok,
        "min_limit": plan.min_limit,
        "plan": plan.to_json(),
        "steps": [_step_json(s, plan, t0) for s in result.steps],
    }


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def result_text(doc: dict[str, Any]) -> str:
    """The console form of ``result_json``'s output."""
    unit = doc["unit"]
    limit = doc["limit"]
    lines = []
    if limit is None:
        lines.append(f"CAPACITY SEARCH ({doc['mode']}): no level met every threshold")
    else:
        lines.append(
            f"CAPACITY SEARCH ({doc['mode']}): limit {limit:g} {unit}, the highest load at which every threshold held"
        )
    if doc["first_failure"] is not None:
        why = "; ".join(doc["failing_thresholds"]) or doc["failing_reason"]
        lines.append(f"  first failing load: {doc['first_failure']:g} {unit}: {why}")
    state = "" if doc["complete"] else " (incomplete)"
    lines.append(f"  stopped{state}: {doc['reason']}")
    if doc["min_limit"]:
        lines.append(f"  required: at least {doc['min_limit']:g} {unit} -> {'PASS' if doc['ok'] else 'FAIL'}")
    head = ("step", "phase", unit, "verdict", "req/s", "goodput/s", "TTFT p50", "TTFT p95", "total p95", "failing")
    rows = [head]
    for s in doc["steps"]:
        verdict = "running" if s["passed"] is None else ("pass" if s["passed"] else "FAIL")
        failing = "; ".join(s.get("failures") or []) or ("" if s["passed"] is not False else s.get("reason", ""))
        rows.append(
            (
                str(s["index"]),
                s["phase"],
                f"{s['level']:g}",
                verdict,
                _fmt(s.get("requests_per_s")),
                _fmt(s.get("goodput_per_s")),
                _fmt(s.get("ttft_p50_ms")),
                _fmt(s.get("ttft_p95_ms")),
                _fmt(s.get("total_p95_ms")),
                failing,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    for r in rows:
        cells = [c.rjust(w) if i not in (1, 3) else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=False))]
        lines.append("  " + "  ".join(cells) + ("  " + r[-1] if r[-1] else ""))
    return "\n".join(lines) + "\n"
