"""The "Over time" part of the HTML report (``report_html``): from the summary's per-second ``series``, users,
requests/s with errors, blocked and goodput/s, TTFT p50/p95, total latency p50/p95 and output tokens/s.

Plots show at most the last ``MAX_SPAN_S`` seconds; with more than ``MAX_POINTS`` seconds they are
downsampled: counts per second are averaged over the bucket, latency percentiles and users take the bucket's
maximum (peaks stay visible); the caption says so. Pure: no Locust import.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from llm_metrics.outputs.charts import COLORS, _chart, _e, _float

__all__ = ["MAX_POINTS", "MAX_SPAN_S", "plots_section"]

MAX_POINTS = 720
MAX_SPAN_S = 24 * 3600
"""Plots show at most the last day of a summary's seconds (a run's series keeps 6 h)."""
_COUNTS = ("requests", "failures", "blocked", "good", "output_tokens")
_LATENCIES = ("ttft_ms_p50", "ttft_ms_p95", "total_ms_p50", "total_ms_p95")
_NO_USERS = "users were not recorded in this summary"
_TTFT_NOTE = "per second of finishing requests; streamed calls only"
_TOTAL_NOTE = "per second of finishing requests; successful requests only"

Columns = dict[str, list[float | None]]


def _downsample(xs: list[float], cols: Columns, peak: set[str]) -> tuple[list[float], Columns, int]:
    n = len(xs)
    if n <= MAX_POINTS:
        return xs, cols, 1
    b = math.ceil(n / MAX_POINTS)
    out_x = [xs[i] for i in range(0, n, b)]
    out: Columns = {}
    for name, ys in cols.items():
        vals: list[float | None] = []
        for i in range(0, n, b):
            chunk = [v for v in ys[i : i + b] if v is not None]
            if not chunk:
                vals.append(None)
            else:
                vals.append(max(chunk) if name in peak else sum(chunk) / len(chunk))
        out[name] = vals
    return out_x, out, b


def _columns(rows: Mapping[int, Mapping[str, Any]], t0: int, t1: int) -> Columns:
    """One value per second from ``t0`` to ``t1`` of every plotted key of the series."""
    seconds = range(t0, t1 + 1)
    cols: Columns = {}
    for c in _COUNTS:  # a second without an entry had no request finishing in it
        cols[c] = [float(rows[t].get(c) or 0) if t in rows else 0.0 for t in seconds]
    for c in (*_LATENCIES, "users"):
        cols[c] = [_float(rows[t].get(c)) if t in rows else None for t in seconds]
    # users is a gauge sampled every second: carry it over seconds without a sample
    last: float | None = None
    for i, u in enumerate(cols["users"]):
        if u is None:
            cols["users"][i] = last
        else:
            last = u
    return cols


def plots_section(series: Sequence[Mapping[str, Any]]) -> str:
    """The charts over time, on an axis of seconds from the first second shown."""
    if not series:
        return '<p class="muted">No per-second data in this summary.</p>'
    rows = {int(s["t"]): s for s in series}
    t0, t1 = min(rows), max(rows)
    clipped = t1 - t0 > MAX_SPAN_S
    if clipped:
        t0 = t1 - MAX_SPAN_S
    xs = [float(t) for t in range(t0, t1 + 1)]
    xs, cols, bucket = _downsample(xs, _columns(rows, t0, t1), set(_LATENCIES) | {"users"})
    note = f"each point: {bucket} s (counts averaged, latencies and users: maximum)" if bucket > 1 else ""
    if clipped:
        note = f"the last {MAX_SPAN_S // 3600} h; " + note
    start = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t0))

    def chart(title: str, lines: Sequence[tuple[str, str, int]], unit: str, chart_id: str, caption: str) -> str:
        """``lines``: (label, column, colour number)."""
        drawn = [(label, cols[key], COLORS[c]) for label, key, c in lines]
        return _chart(
            title, xs, drawn, unit=unit, chart_id=f"plot-{chart_id}", caption=caption, step=chart_id == "users"
        )

    has_users = any(v is not None for v in cols["users"])
    good = [("goodput/s", "good", 3)] if any(cols["good"]) else []
    ttft_p50 = [("TTFT p50", "ttft_ms_p50", 0)] if any(v is not None for v in cols["ttft_ms_p50"]) else []
    total = [("total p50", "total_ms_p50", 0), ("total p95", "total_ms_p95", 4)]
    requests = [("requests/s", "requests", 0), ("errors/s", "failures", 1), ("blocked (429)/s", "blocked", 2)]
    charts = [
        chart("Users", [("users", "users", 0)], "users", "users", note if has_users else _NO_USERS),
        chart("Requests per second", [*requests, *good], "1/s", "requests", note),
        chart("Time to first token", [*ttft_p50, ("TTFT p95", "ttft_ms_p95", 4)], "ms", "ttft", note or _TTFT_NOTE),
        chart("Total latency", total, "ms", "total", note or _TOTAL_NOTE),
        chart("Output tokens per second", [("output tokens/s", "output_tokens", 3)], "tok/s", "tokens", note),
    ]
    return f'<p class="facts">Time axis: seconds from {_e(start)}.</p><div class="charts">{"".join(charts)}</div>'
