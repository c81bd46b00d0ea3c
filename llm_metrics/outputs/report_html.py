"""The HTML report of a run: one self-contained file rendered from the JSON summary.

    python -m llm_metrics.outputs.report_html out/summary-chat.json -o out/report-chat.html

or ``--html-report PATH`` (env ``HTML_REPORT``) on a run, which writes it at the end, after the thresholds are
evaluated (Locust's own ``--html`` report is written before that, so it cannot show the verdict).

Contents, top to bottom: the verdict and run facts; the threshold table (every line, pass/fail, observed
value); for a capacity search (a ``capacity`` section), the limit, the threshold that failed above it, latency
and goodput plotted against load and the table of steps; plots over time from the per-second ``series``
(users, requests/s with errors, blocked and goodput/s, TTFT p50/p95, total latency p50/p95, output tokens/s);
the LLM overview per scenario, name and prompt (``overview``); every trend metric and tag set (count, avg,
min, p50, p90, p95, p99, max); counters; rates;
token source, warnings and the run's options.

Self-contained: inline CSS and inline SVG drawn here, no script, no external URL (no CDN, no web font), so it
opens from a CI artefact store or a mail attachment as it is. Every string of the summary is escaped. Plots
with more than ``MAX_POINTS`` seconds are downsampled: counts per second are averaged over the bucket, latency
percentiles take the bucket's maximum (peaks stay visible); the caption says so. Pure: no Locust import.
"""

from __future__ import annotations

import argparse
import html
import math
import re
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llm_metrics.engine.thresholds import DEFAULT_METRICS
from llm_metrics.outputs.charts import (
    _H,
    _MB,
    _ML,
    _MR,
    _MT,
    _W,
    COLORS,
    _caption,
    _chart,
    _fmt_dur,
    _fmt_tick,
    _nice_step,
)
from llm_metrics.outputs.files import write_atomic
from llm_metrics.outputs.overview import (
    ALL,
    LATENCY_COLUMNS,
    SummaryError,
    check_summary,
    compact_number,
    load_summary,
    overview_rows,
    summary_histograms,
    summary_rates,
)
from llm_metrics.outputs.summary import format_number, format_tags, redact

__all__ = ["MAX_POINTS", "main", "render_report", "write_report"]

MAX_POINTS = 720
MAX_SPAN_S = 24 * 3600
"""Plots show at most the last day of a summary's seconds (a run's series keeps 6 h)."""
_AGG = re.compile(r"\s*(p\s*\(\s*[0-9.]+\s*\)|avg|min|max|med|count|rate)")

_CSS = """
:root { color-scheme: light; --fg: #1f2937; --muted: #6b7280; --line: #e5e7eb; --ok: #15803d; --bad: #b91c1c;
  --warn: #b45309; --bg-ok: #dcfce7; --bg-bad: #fee2e2; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg);
  margin: 0 auto; padding: 16px 24px 48px; max-width: 1400px; }
h1 { font-size: 22px; margin: 4px 0 8px; } h2 { font-size: 18px; margin: 28px 0 8px;
  border-bottom: 1px solid var(--line); padding-bottom: 4px; } h3 { font-size: 14px; margin: 0 0 4px; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; font-weight: 700; margin-left: 8px; }
.verdict.ok { background: var(--bg-ok); color: var(--ok); }
.verdict.bad { background: var(--bg-bad); color: var(--bad); }
.facts { color: var(--muted); margin: 0; } .facts b { color: var(--fg); font-weight: 600; }
nav a { margin-right: 14px; color: #1d4ed8; text-decoration: none; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: #f9fafb; font-weight: 600; position: sticky; top: 0; }
td.n, th.n { text-align: right; white-space: nowrap; }
td.tags { max-width: 520px; word-break: break-word; color: #374151; }
td.name { max-width: 240px; word-break: break-word; }
th.group { text-align: center; border-left: 1px solid var(--line); }
table.overview th, table.overview td { padding: 3px 6px; }
tr.pass td.mark { color: var(--ok); font-weight: 700; } tr.fail td.mark { color: var(--bad); font-weight: 700; }
tr.fail { background: #fff5f5; } tr.total td { font-weight: 600; border-top: 2px solid var(--line); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 16px 24px; }
figure { margin: 0; } figcaption { color: var(--muted); font-size: 12px; }
svg { width: 100%; height: auto; display: block; }
svg text { font-size: 11px; fill: #4b5563; font-family: inherit; }
.legend span { margin-right: 12px; font-size: 12px; white-space: nowrap; }
.legend i { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin-right: 4px; }
.muted { color: var(--muted); } .warn { color: var(--warn); }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
"""


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, int | float) and not isinstance(v, bool):
        return format_number(v)
    return _e(v)


def _kind(metric: str, doc: Mapping[str, Any]) -> str | None:
    for key, kind in (("rates", "rate"), ("counters", "counter"), ("metrics", "trend")):
        if any(m.get("name") == metric for m in doc.get(key, [])):
            return kind
    return DEFAULT_METRICS.get(metric)


def _observed(th: Mapping[str, Any], kind: str | None) -> str:
    """What the threshold saw, as the console prints it: ``p(95)=843.21``, ``rate=0.0050 (5 of 1000)``."""
    if th.get("error"):
        return f"error: {th['error']}"
    if th.get("no_data"):
        return "no data"
    observed = th.get("observed")
    m = _AGG.match(str(th.get("expression", "")))
    agg = re.sub(r"\s+", "", m.group(1)) if m else "value"
    samples = th.get("samples")
    if kind == "rate" and isinstance(observed, int | float) and isinstance(samples, int):
        return f"{agg}={observed:.4f} ({round(observed * samples)} of {samples})"
    if agg == "count" and isinstance(observed, float) and observed.is_integer():
        observed = int(observed)
    text = f"{agg}={format_number(observed)}"
    if kind == "counter" and agg == "rate":
        text += "/s"
    return text


# -- plots ---------------------------------------------------------------------------------------------


def _downsample(
    xs: list[float], cols: dict[str, list[float | None]], peak: set[str]
) -> tuple[list[float], dict[str, list[float | None]], int]:
    n = len(xs)
    if n <= MAX_POINTS:
        return xs, cols, 1
    b = math.ceil(n / MAX_POINTS)
    out_x = [xs[i] for i in range(0, n, b)]
    out: dict[str, list[float | None]] = {}
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


def _plots(series: Sequence[Mapping[str, Any]]) -> str:
    if not series:
        return '<p class="muted">No per-second data in this summary.</p>'
    rows = {int(s["t"]): s for s in series}
    t0, t1 = min(rows), max(rows)
    clipped = t1 - t0 > MAX_SPAN_S
    if clipped:
        t0 = t1 - MAX_SPAN_S
    xs = [float(t) for t in range(t0, t1 + 1)]
    counts = ("requests", "failures", "blocked", "good", "output_tokens")
    latencies = ("ttft_ms_p50", "ttft_ms_p95", "total_ms_p50", "total_ms_p95")
    cols: dict[str, list[float | None]] = {}
    for c in counts:  # a second without an entry had no request finishing in it
        cols[c] = [float(rows[t].get(c) or 0) if t in rows else 0.0 for t in range(t0, t1 + 1)]
    for c in (*latencies, "users"):
        cols[c] = [_float(rows[t].get(c)) if t in rows else None for t in range(t0, t1 + 1)]
    # users is a gauge sampled every second: carry it over seconds without a sample
    last: float | None = None
    for i, u in enumerate(cols["users"]):
        if u is None:
            cols["users"][i] = last
        else:
            last = u
    xs, cols, bucket = _downsample(xs, cols, set(latencies) | {"users"})
    note = f"each point: {bucket} s (counts averaged, latencies and users: maximum)" if bucket > 1 else ""
    if clipped:
        note = f"the last {MAX_SPAN_S // 3600} h; " + note
    start = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t0))
    has_users = any(v is not None for v in cols["users"])
    charts = [
        _chart(
            "Users",
            xs,
            [("users", cols["users"], COLORS[0])],
            unit="users",
            chart_id="plot-users",
            caption=note if has_users else "users were not recorded in this summary",
            step=True,
        ),
        _chart(
            "Requests per second",
            xs,
            [
                ("requests/s", cols["requests"], COLORS[0]),
                ("errors/s", cols["failures"], COLORS[1]),
                ("blocked (429)/s", cols["blocked"], COLORS[2]),
                *([("goodput/s", cols["good"], COLORS[3])] if any(cols["good"]) else []),
            ],
            unit="1/s",
            chart_id="plot-requests",
            caption=note,
        ),
        _chart(
            "Time to first token",
            xs,
            [
                *(
                    [("TTFT p50", cols["ttft_ms_p50"], COLORS[0])]
                    if any(v is not None for v in cols["ttft_ms_p50"])
                    else []
                ),
                ("TTFT p95", cols["ttft_ms_p95"], COLORS[4]),
            ],
            unit="ms",
            chart_id="plot-ttft",
            caption=note or "per second of finishing requests; streamed calls only",
        ),
        _chart(
            "Total latency",
            xs,
            [("total p50", cols["total_ms_p50"], COLORS[0]), ("total p95", cols["total_ms_p95"], COLORS[4])],
            unit="ms",
            chart_id="plot-total",
            caption=note or "per second of finishing requests; successful requests only",
        ),
        _chart(
            "Output tokens per second",
            xs,
            [("output tokens/s", cols["output_tokens"], COLORS[3])],
            unit="tok/s",
            chart_id="plot-tokens",
            caption=note,
        ),
    ]
    return f'<p class="facts">Time axis: seconds from {_e(start)}.</p><div class="charts">{"".join(charts)}</div>'


# -- capacity search (the summary's "capacity" section) -------------------------------------------------


def _xy_chart(
    title: str,
    steps: Sequence[Mapping[str, Any]],
    lines: Sequence[tuple[str, str, str]],
    *,
    unit: str,
    x_unit: str,
    chart_id: str,
    limit: float | None,
    caption: str = "",
) -> str:
    """Values against load (one point per judged step, sorted by load), failed steps ringed in red, the limit
    as a dashed line. ``lines``: (label, step key, colour)."""
    legend = "".join(f'<span><i style="background:{c}"></i>{_e(label)}</span>' for label, _, c in lines)
    legend += '<span><i style="background:#dc2626;height:8px;width:8px;border-radius:4px"></i>failed step</span>'
    head = (
        f'<figure id="{chart_id}" class="chart"><h3>{_e(title)} <span class="muted">({_e(unit)})</span></h3>'
        f'<div class="legend">{legend}</div>'
    )
    pts = sorted(
        (s for s in steps if _float(s.get("level")) is not None and s.get("passed") is not None),
        key=lambda s: float(s["level"]),
    )
    values = [v for s in pts for _, key, _ in lines if (v := _float(s.get(key))) is not None]
    if not pts or not values:
        return head + f'<p class="muted">no data</p>{_caption(caption)}</figure>'
    xmax = max(float(s["level"]) for s in pts)
    xstep = _nice_step(xmax * 1.05)
    xtop = xstep * max(1, math.ceil(xmax * 1.05 / xstep))
    ymax = max(values)
    ystep = _nice_step(ymax * 1.05 if ymax > 0 else 1.0)
    ytop = ystep * max(1, math.ceil(ymax * 1.05 / ystep)) if ymax > 0 else ystep * 5
    pw, ph = _W - _ML - _MR, _H - _MT - _MB

    def sx(x: float) -> float:
        return _ML + x / xtop * pw

    def sy(y: float) -> float:
        return _MT + ph - y / ytop * ph

    out = [
        f'<svg viewBox="0 0 {_W} {_H}" role="img" aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(title)}</title>",
    ]
    y = 0.0
    while y <= ytop + ystep / 1000:
        out.append(f'<line x1="{_ML}" y1="{sy(y):.1f}" x2="{_W - _MR}" y2="{sy(y):.1f}" stroke="#e5e7eb"/>')
        out.append(f'<text x="{_ML - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{_fmt_tick(y)}</text>')
        y += ystep
    x = 0.0
    while x <= xtop + xstep / 1000:
        out.append(f'<line x1="{sx(x):.1f}" y1="{_MT}" x2="{sx(x):.1f}" y2="{_MT + ph}" stroke="#f3f4f6"/>')
        out.append(f'<text x="{sx(x):.1f}" y="{_H - _MB + 16}" text-anchor="middle">{_fmt_tick(x)}</text>')
        x += xstep
    out.append(f'<line x1="{_ML}" y1="{_MT + ph}" x2="{_W - _MR}" y2="{_MT + ph}" stroke="#9ca3af"/>')
    out.append(f'<text x="{_W - _MR}" y="{_H - 2}" text-anchor="end">{_e(x_unit)}</text>')
    if limit is not None:
        lx = sx(limit)
        out.append(
            f'<line x1="{lx:.1f}" y1="{_MT}" x2="{lx:.1f}" y2="{_MT + ph}" stroke="#16a34a" stroke-dasharray="5,4"/>'
            f'<text x="{lx + 4:.1f}" y="{_MT + 12}" fill="#16a34a">limit {_level(limit)}</text>'
        )
    for label, key, color in lines:
        seg = [(sx(float(s["level"])), sy(v), s) for s in pts if (v := _float(s.get(key))) is not None]
        if len(seg) > 1:
            poly = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in seg)
            out.append(f'<polyline points="{poly}" fill="none" stroke="{color}" stroke-width="1.6"/>')
        for px, py, st in seg:
            ring = ' stroke="#dc2626" stroke-width="2"' if st.get("passed") is False else ""
            tip = f"{float(st['level']):g} {x_unit}: {label} {format_number(_float(st.get(key)))} {unit}"
            out.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{color}"{ring}><title>{_e(tip)}</title></circle>'
            )
    out.append("</svg>")
    return head + "".join(out) + _caption(caption) + "</figure>"


def _level(v: Any) -> str:
    """A load level as written: ``22`` Users, ``12.5`` req/s."""
    f = _float(v)
    return "-" if f is None else _e(f"{f:g}")


def _capacity(cap: Mapping[str, Any]) -> str:
    """The capacity search: the limit, what failed above it, latency and goodput against load, every step."""
    unit = str(cap.get("unit", ""))
    limit = _float(cap.get("limit"))
    steps = [s for s in cap.get("steps") or [] if isinstance(s, Mapping)]
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
    basis = {s.get("goodput_basis") for s in steps} - {None}
    good = "goodput/s" + (" (successful calls: no goodput SLOs)" if basis == {"success"} else "")
    charts = [
        _xy_chart(
            "Latency against load",
            steps,
            [
                ("TTFT p50", "ttft_p50_ms", COLORS[0]),
                ("TTFT p95", "ttft_p95_ms", COLORS[4]),
                ("total p95", "total_p95_ms", COLORS[5]),
            ],
            unit="ms",
            x_unit=unit,
            chart_id="plot-capacity-latency",
            limit=limit,
            caption="each point: one step's judged window",
        ),
        _xy_chart(
            "Throughput and goodput against load",
            steps,
            [("requests/s", "requests_per_s", COLORS[0]), (good, "goodput_per_s", COLORS[3])],
            unit="1/s",
            x_unit=unit,
            chart_id="plot-capacity-goodput",
            limit=limit,
            caption="goodput: calls meeting every per-request SLO",
        ),
    ]
    rows = []
    for s in steps:
        passed = s.get("passed")
        verdict = "running" if passed is None else ("✓ pass" if passed else "✗ FAIL")
        cls = "pass" if passed else ("fail" if passed is False else "")
        failing = "; ".join(str(x) for x in s.get("failures") or []) or (
            s.get("reason") or "" if passed is False else ""
        )
        nums = [
            s.get(k)
            for k in (
                "requests_per_s",
                "goodput",
                "goodput_per_s",
                "ttft_p50_ms",
                "ttft_p95_ms",
                "total_p95_ms",
                "error_rate",
            )
        ]
        rows.append(
            f'<tr class="{cls}"><td class="n">{_num(s.get("index"))}</td><td>{_e(s.get("phase", ""))}</td>'
            f'<td class="n">{_level(s.get("level"))}</td><td class="mark">{_e(verdict)}</td>'
            + "".join(f'<td class="n">{_num(v)}</td>' for v in nums)
            + f"<td>{_e(failing)}</td></tr>"
        )
    table = _table(
        [
            "step",
            "phase",
            unit,
            "verdict",
            "req/s",
            "goodput",
            "goodput/s",
            "TTFT p50",
            "TTFT p95",
            "total p95",
            "error rate",
            "failing",
        ],
        rows,
        4,
        cls="capacity",
    )
    return head + f'<div class="charts">{"".join(charts)}</div>' + table


def _float(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


# -- tables --------------------------------------------------------------------------------------------


def _table(head: Sequence[str], rows: Sequence[str], num_from: int, *, cls: str = "") -> str:
    ths = "".join(f'<th class="n">{_e(h)}</th>' if i >= num_from else f"<th>{_e(h)}</th>" for i, h in enumerate(head))
    body = "".join(rows)
    return f'<div class="scroll"><table class="{cls}"><thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table></div>'


def _thresholds(doc: Mapping[str, Any]) -> str:
    ths = doc.get("thresholds", [])
    if not ths:
        return '<p class="muted">No thresholds were defined.</p>'
    rows = []
    for th in ths:
        ok = bool(th.get("ok"))
        mark = "✓ pass" if ok else "✗ FAIL"
        extra = " (abortOnFail)" if th.get("abort_on_fail") else ""
        rows.append(
            f'<tr class="{"pass" if ok else "fail"}"><td class="mark">{mark}</td><td>{_e(th.get("key", ""))}</td>'
            f"<td>{_e(th.get('expression', ''))}{_e(extra)}</td>"
            f"<td>{_e(_observed(th, _kind(str(th.get('metric', '')), doc)))}"
            + (f'<br><span class="muted">{_e(th["no_data_reason"])}</span>' if th.get("no_data_reason") else "")
            + "</td>"
            f'<td class="n">{_num(th.get("samples"))}</td></tr>'
        )
    failed = sum(1 for th in ths if not th.get("ok"))
    no_data = sum(1 for th in ths if th.get("no_data"))
    verdict = f"{len(ths) - failed} of {len(ths)} thresholds passed" + (f"; {no_data} had no data" if no_data else "")
    source = {str(th.get("source", "")) for th in ths} - {""}
    src = f" (from {', '.join(sorted(source))})" if source else ""
    table = _table(["", "metric", "threshold", "observed", "samples"], rows, 4, cls="thresholds")
    return f"{table}<p>{_e(verdict + src)}</p>"


def _overview(doc: Mapping[str, Any]) -> str:
    rows = overview_rows(summary_histograms(doc), summary_rates(doc), _float(doc.get("duration_s")))
    if not rows:
        return '<p class="muted">No LLM calls in this summary.</p>'
    has_goodput = any(r.goodput_total for r in rows)
    columns = [c for c in LATENCY_COLUMNS if any(r.hists.get(c[0]) for r in rows)]
    empty = [title for key, _, title in LATENCY_COLUMNS if (key, _, title) not in columns]
    top = '<th rowspan="2">scenario</th><th rowspan="2">name</th><th rowspan="2">prompt</th>'
    top += '<th class="n" rowspan="2">OK calls</th>'
    top += "".join(f'<th colspan="3" class="group">{_e(title)}</th>' for _, _, title in columns)
    top += '<th class="n" rowspan="2">output<br>tok/s</th>'
    if has_goodput:
        top += '<th class="n" rowspan="2">goodput</th><th class="n" rowspan="2">goodput/s</th>'
    sub = "".join('<th class="n">p50</th><th class="n">p95</th><th class="n">p99</th>' for _ in columns)
    body = []
    for r in rows:
        cells = [
            f'<td>{_e(r.scenario)}</td><td class="name">{_e(r.name)}</td><td>{_e(r.prompt)}</td>',
            f'<td class="n">{r.calls}</td>',
        ]
        for key, _, _ in columns:
            cells += [f'<td class="n">{compact_number(v)}</td>' for v in r.percentiles(key)]
        cells.append(f'<td class="n">{compact_number(r.output_tokens_per_s)}</td>')
        if has_goodput:
            gp = r.goodput
            cells.append(f'<td class="n">{"-" if gp is None else f"{gp * 100:.1f}%"}</td>')
            cells.append(f'<td class="n">{compact_number(r.goodput_per_s)}</td>')
        cls = ' class="total"' if r.scenario == ALL else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    note = (
        "Latencies of successful calls (status 2xx); tokens/s per call is output tokens / total time of each "
        "call; output tok/s is all output tokens / run duration"
        + ("; goodput: calls meeting every per-request SLO / all calls" if has_goodput else "")
        + "."
        + (f" No data: {', '.join(empty)}." if empty else "")
    )
    return (
        f'<div class="scroll"><table class="overview"><thead><tr>{top}</tr><tr>{sub}</tr></thead>'
        f'<tbody>{"".join(body)}</tbody></table></div><p class="facts">{_e(note)}</p>'
    )


def _metrics(doc: Mapping[str, Any]) -> str:
    rows = []
    for m in doc.get("metrics", []):
        nums = [m.get(k) for k in ("count", "avg", "min", "p50", "p90", "p95", "p99", "max")]
        rows.append(
            f"<tr><td>{_e(m['name'])}</td><td class='tags'>{_e(format_tags(m['tags']))}</td>"
            + "".join(f'<td class="n">{_num(v)}</td>' for v in nums)
            + "</tr>"
        )
    if not rows:
        return '<p class="muted">No trend metrics.</p>'
    return _table(["metric", "tags", "count", "avg", "min", "p50", "p90", "p95", "p99", "max"], rows, 2)


def _counters(doc: Mapping[str, Any]) -> str:
    rows = [
        f"<tr><td>{_e(c['name'])}</td><td class='tags'>{_e(format_tags(c['tags']))}</td>"
        f'<td class="n">{_num(c.get("count"))}</td><td class="n">{_num(c.get("rate"))}</td></tr>'
        for c in doc.get("counters", [])
    ]
    return _table(["counter", "tags", "count", "per second"], rows, 2) if rows else '<p class="muted">None.</p>'


def _rates(doc: Mapping[str, Any]) -> str:
    rows = [
        f"<tr><td>{_e(r['name'])}</td><td class='tags'>{_e(format_tags(r['tags']))}</td>"
        f'<td class="n">{_num(r.get("rate"))}</td><td class="n">{_num(r.get("hits"))}</td>'
        f'<td class="n">{_num(r.get("total"))}</td></tr>'
        for r in doc.get("rates", [])
    ]
    return _table(["rate", "tags", "rate", "hits", "total"], rows, 2) if rows else '<p class="muted">None.</p>'


def _trust(doc: Mapping[str, Any]) -> str:
    """Why the verdict cannot be trusted (if so), the load generator's self-measurement, the open-model ledger."""
    parts = []
    because = doc.get("untrustworthy_because") or []
    if because:
        items = "".join(f"<li>{_e(r)}</li>" for r in because)
        parts.append(f'<p class="warn">VERDICT NOT TRUSTWORTHY (exit code 98):</p><ul class="warn">{items}</ul>')
    gen = doc.get("load_generator") or {}
    if gen.get("saturated"):
        parts.append('<p class="warn">LOAD GENERATOR SATURATED: its own timings are distorted.</p>')
    rows = []
    lag = gen.get("loop_lag_ms")
    if isinstance(lag, Mapping):
        cells = "".join(f"<td class='n'>{_num(lag.get(k))}</td>" for k in ("samples", "p50", "p99", "max"))
        rows.append(f"<tr><td>client_loop_lag_ms</td>{cells}</tr>")
    cpu = gen.get("cpu_pct")
    if isinstance(cpu, Mapping):
        cells = "".join(f"<td class='n'>{_num(cpu.get(k))}</td>" for k in ("seconds", "p50"))
        rows.append(
            f"<tr><td>client_cpu_pct</td>{cells}<td class='n'>-</td><td class='n'>{_num(cpu.get('max'))}</td></tr>"
        )
    if rows:
        parts.append("<p>Load generator (every process that ran Users):</p>")
        parts.append(_table(["metric", "samples", "p50", "p99", "max"], rows, 1))
    arr = doc.get("arrivals")
    if isinstance(arr, Mapping) and "expected" in arr:
        row = "".join(f"<td class='n'>{_num(arr.get(k))}</td>" for k in ("expected", "issued", "sent", "dropped"))
        parts.append(f"<p>Open-model arrivals ({_e(arr.get('arrival'))}, {_num(arr.get('scheduled_s'))} s):</p>")
        parts.append(_table(["expected", "issued", "sent", "dropped"], [f"<tr>{row}</tr>"], 0))
        for problem in arr.get("problems") or []:
            parts.append(f'<p class="warn">SCHEDULE NOT KEPT: {_e(problem)}</p>')
    return "".join(parts) or '<p class="muted">Nothing measured.</p>'


def _run_facts(doc: Mapping[str, Any]) -> str:
    parts = []
    sources = doc.get("token_source") or {}
    if sources:
        parts.append(
            "<p>llm_output_tokens source: "
            + _e(", ".join(f"{n} calls from {src}" for src, n in sources.items()))
            + ' <span class="muted">(usage = server usage.completion_tokens, events = content events counted)'
            "</span></p>"
        )
    for w in doc.get("warnings") or []:
        parts.append(f'<p class="warn">WARNING: {_e(w)}</p>')
    aborted = doc.get("aborted_by") or []
    if aborted:
        parts.append(f'<p class="warn">Run aborted early by abortOnFail threshold(s): {_e(", ".join(aborted))}</p>')
    options = (doc.get("metadata") or {}).get("options") or {}
    if options:
        rows = [f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in sorted(options.items())]
        table = _table(["option", "value"], rows, 9)
        parts.append(f"<details><summary>Options of the run</summary>{table}</details>")
    return "".join(parts) or '<p class="muted">Nothing to add.</p>'


def _server_section(server: Mapping[str, Any], series: Sequence[Mapping[str, Any]]) -> str:
    from llm_metrics.monitors.server_scrape import (
        render_section,  # --server-metrics (llm_metrics.monitors.server_scrape)
    )

    return render_section(server, series)


def render_report(summary_json: dict[str, Any]) -> str:
    """The whole report as one HTML document (a str); ``summary_json`` is a JSON summary (``summary``)."""
    doc = check_summary(summary_json, "summary")
    meta = doc.get("metadata") or {}
    suite = str(meta.get("suite") or "run")
    ok = bool(doc.get("ok", True)) and not doc.get("aborted_by")
    has_th = bool(doc.get("thresholds"))
    badge = (
        f'<span class="verdict {"ok" if ok else "bad"}">{"PASS" if ok else "FAIL"}</span>'
        if has_th or doc.get("aborted_by")
        else '<span class="verdict ok">no thresholds</span>'
    )
    if doc.get("verdict_trustworthy") is False:
        badge = '<span class="verdict bad">NOT TRUSTWORTHY</span>'
    series = doc.get("series") or []
    facts = [f"suite <b>{_e(suite)}</b>"]
    if meta.get("host"):
        facts.append(f"target <b>{_e(meta['host'])}</b>")
    if series:
        t0 = min(int(s["t"]) for s in series)
        facts.append(f"started <b>{_e(time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(t0)))}</b>")
    duration = _float(doc.get("duration_s"))
    if duration is not None:
        facts.append(f"duration <b>{_e(_fmt_dur(duration))}</b>")
    if meta.get("workers_reported"):
        facts.append(f"workers <b>{_e(meta['workers_reported'])}</b>")
    if meta.get("role"):
        facts.append(f"role <b>{_e(meta['role'])}</b>")
    if meta.get("thresholds_file"):
        facts.append(f"thresholds <b>{_e(meta['thresholds_file'])}</b>")
    title = f"LLM load test: {suite}"
    sections = [
        ("thresholds", "Thresholds", _thresholds(doc)),
        *(
            [("capacity", "Capacity search", _capacity(doc["capacity"]))]
            if isinstance(doc.get("capacity"), Mapping) and "steps" in doc["capacity"]
            else []
        ),
        ("trust", "Trust", _trust(doc)),
        ("plots", "Over time", _plots(series)),
        *(
            [("server", "Server side", _server_section(doc["server_series"], series))]
            if isinstance(doc.get("server_series"), Mapping)
            else []
        ),
        ("llm", "LLM overview", _overview(doc)),
        ("metrics", "Metrics", _metrics(doc)),
        ("counters", "Counters", _counters(doc)),
        ("rates", "Rates", _rates(doc)),
        ("run", "Run", _run_facts(doc)),
    ]
    nav = "".join(f'<a href="#{sid}">{_e(name)}</a>' for sid, name, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{_e(name)}</h2>{content}</section>' for sid, name, content in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_e(title)}{badge}</h1><p class='facts'>{' · '.join(facts)}</p><nav>{nav}</nav></header>"
        f"<main>{body}</main>"
        f"<footer>Written by llm_metrics.outputs.report_html from a {_e(doc.get('schema'))} summary.</footer>"
        "</body></html>\n"
    )


def write_report(summary_json: dict[str, Any], path: str | Path, secrets: Sequence[str | None] = ()) -> Path:
    """Render and write the report (any secret value masked) atomically, creating the folder; returns the path."""
    return write_atomic(path, redact(render_report(summary_json), secrets))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llm_metrics.outputs.report_html",
        description="Render the HTML report (one self-contained file) of a run from its JSON summary.",
    )
    parser.add_argument(
        "summary",
        help="JSON summary written by a run (--summary-json), or its --requests-jsonl file(s): a .jsonl path, "
        "a glob or a comma-separated list",
    )
    parser.add_argument("-o", "--output", help="HTML file to write (default: the summary's name with .html)")
    args = parser.parse_args(argv)
    try:
        doc = load_summary(args.summary)
    except SummaryError as exc:
        print(f"report_html: {exc}", file=sys.stderr)
        return 2
    default = Path(args.summary.split(",")[0].replace("*", "all")).with_suffix(".html")
    out = write_report(doc, args.output or default)
    print(f"HTML report written to {out}")
    return 0
