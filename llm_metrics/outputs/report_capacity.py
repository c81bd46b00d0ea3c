"""The "Capacity search" part of the HTML report (``report_html``), from the summary's ``capacity`` section: the
limit, the threshold that failed above it, latency and goodput plotted against load, and the table of steps.
Pure: no Locust import."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llm_metrics.outputs.charts import COLORS, _e, _float, _xy_chart
from llm_metrics.outputs.report_sections import html_table, num_cell

__all__ = ["capacity_section"]

_STEP_NUMBERS = (
    "requests_per_s",
    "goodput",
    "goodput_per_s",
    "ttft_p50_ms",
    "ttft_p95_ms",
    "total_p95_ms",
    "error_rate",
)
_STEP_TITLES = ("req/s", "goodput", "goodput/s", "TTFT p50", "TTFT p95", "total p95", "error rate")


def _level(v: Any) -> str:
    """A load level as written: ``22`` Users, ``12.5`` req/s."""
    f = _float(v)
    return "-" if f is None else _e(f"{f:g}")


def _head(cap: Mapping[str, Any], unit: str, limit: float | None) -> str:
    """The limit, the first load that failed and why, and why the search stopped."""
    if limit is None:
        head = "<p><b>No load level met every threshold.</b></p>"
    else:
        head = f"<p>Limit: <b>{_level(limit)} {_e(unit)}</b>, the highest load at which every threshold held.</p>"
    fail = _float(cap.get("first_failure"))
    if fail is not None:
        why = "; ".join(str(x) for x in cap.get("failing_thresholds") or []) or str(cap.get("failing_reason", ""))
        head += f"<p>First failing load: <b>{_level(fail)} {_e(unit)}</b>: {_e(why)}</p>"
    state = "" if cap.get("complete", True) else " (incomplete)"
    head += f'<p class="facts">Search stopped{_e(state)}: {_e(cap.get("reason", ""))}. '
    head += "The thresholds table above is the step at the limit.</p>" if limit is not None else "</p>"
    return head


def _charts(steps: Sequence[Mapping[str, Any]], unit: str, limit: float | None) -> str:
    basis = {s.get("goodput_basis") for s in steps} - {None}
    good = "goodput/s" + (" (successful calls: no goodput SLOs)" if basis == {"success"} else "")
    latency = [
        ("TTFT p50", "ttft_p50_ms", COLORS[0]),
        ("TTFT p95", "ttft_p95_ms", COLORS[4]),
        ("total p95", "total_p95_ms", COLORS[5]),
    ]
    throughput = [("requests/s", "requests_per_s", COLORS[0]), (good, "goodput_per_s", COLORS[3])]
    charts = [
        _xy_chart(
            "Latency against load",
            steps,
            latency,
            unit="ms",
            x_unit=unit,
            chart_id="plot-capacity-latency",
            limit=limit,
            caption="each point: one step's judged window",
        ),
        _xy_chart(
            "Throughput and goodput against load",
            steps,
            throughput,
            unit="1/s",
            x_unit=unit,
            chart_id="plot-capacity-goodput",
            limit=limit,
            caption="goodput: calls meeting every per-request SLO",
        ),
    ]
    return f'<div class="charts">{"".join(charts)}</div>'


def _steps_table(steps: Sequence[Mapping[str, Any]], unit: str) -> str:
    rows = []
    for s in steps:
        passed = s.get("passed")
        verdict = "running" if passed is None else ("✓ pass" if passed else "✗ FAIL")
        cls = "pass" if passed else ("fail" if passed is False else "")
        failing = "; ".join(str(x) for x in s.get("failures") or []) or (
            s.get("reason") or "" if passed is False else ""
        )
        rows.append(
            f'<tr class="{cls}"><td class="n">{num_cell(s.get("index"))}</td><td>{_e(s.get("phase", ""))}</td>'
            f'<td class="n">{_level(s.get("level"))}</td><td class="mark">{_e(verdict)}</td>'
            + "".join(f'<td class="n">{num_cell(s.get(k))}</td>' for k in _STEP_NUMBERS)
            + f"<td>{_e(failing)}</td></tr>"
        )
    return html_table(["step", "phase", unit, "verdict", *_STEP_TITLES, "failing"], rows, 4, cls="capacity")


def capacity_section(cap: Mapping[str, Any]) -> str:
    """The capacity search: the limit, what failed above it, latency and goodput against load, every step."""
    unit = str(cap.get("unit", ""))
    limit = _float(cap.get("limit"))
    steps = [s for s in cap.get("steps") or [] if isinstance(s, Mapping)]
    return _head(cap, unit, limit) + _charts(steps, unit, limit) + _steps_table(steps, unit)
