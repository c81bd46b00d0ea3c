"""Line charts as inline SVG for the HTML reports (``report_html`` and the server-side section of
``server_scrape``): axes with round steps, a legend, a caption, hover tips. Pure: no Locust import."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from llm_metrics.outputs.summary import format_number

__all__ = [
    "COLORS",
    "_H",
    "_MB",
    "_ML",
    "_MR",
    "_MT",
    "_W",
    "_caption",
    "_chart",
    "_fmt_dur",
    "_fmt_tick",
    "_nice_step",
]

COLORS = ("#2563eb", "#dc2626", "#ea580c", "#16a34a", "#7c3aed", "#0891b2")
_W, _H = 640, 240
_ML, _MR, _MT, _MB = 58, 14, 12, 30


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _nice_step(span: float, target: int = 5) -> float:
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 10000:
        return f"{v / 1000:.0f}k"
    if abs(v) >= 1000:
        return f"{v / 1000:.1f}k".replace(".0k", "k")
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.3g}"


def _fmt_dur(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    m, sec = divmod(s, 60)
    if m < 60:
        return f"{m}m{sec:02d}s" if sec else f"{m}m"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if m else f"{h}h"


def _time_step(span: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600):
        if span / step <= 8:
            return step
    return 43200


def _chart(
    title: str,
    xs: Sequence[float],
    lines: Sequence[tuple[str, Sequence[float | None], str]],
    *,
    unit: str,
    chart_id: str,
    caption: str = "",
    step: bool = False,
) -> str:
    """One line chart as inline SVG with an HTML title, legend and caption."""
    legend = "".join(f'<span><i style="background:{c}"></i>{_e(label)}</span>' for label, _, c in lines)
    head = (
        f'<figure id="{chart_id}" class="chart"><h3>{_e(title)} <span class="muted">({_e(unit)})</span></h3>'
        f'<div class="legend">{legend}</div>'
    )
    values = [v for _, ys, _ in lines for v in ys if v is not None and math.isfinite(v)]
    if not xs or not values:
        return head + f'<p class="muted">no data</p>{_caption(caption)}</figure>'
    x0, x1 = xs[0], max(xs[-1], xs[0] + 1)
    ymax = max(values)
    ystep = _nice_step(ymax * 1.05 if ymax > 0 else 1.0)
    ytop = ystep * max(1, math.ceil(ymax * 1.05 / ystep)) if ymax > 0 else ystep * 5
    pw, ph = _W - _ML - _MR, _H - _MT - _MB

    def sx(x: float) -> float:
        return _ML + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return _MT + ph - y / ytop * ph

    out = [
        f'<svg viewBox="0 0 {_W} {_H}" role="img" aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(title)}</title>",
    ]
    grid = []
    y = 0.0
    while y <= ytop + ystep / 1000:
        py = sy(y)
        grid.append(f'<line x1="{_ML}" y1="{py:.1f}" x2="{_W - _MR}" y2="{py:.1f}" stroke="#e5e7eb"/>')
        grid.append(f'<text x="{_ML - 6}" y="{py + 4:.1f}" text-anchor="end">{_fmt_tick(y)}</text>')
        y += ystep
    tstep = _time_step(x1 - x0)
    t = 0.0
    while x0 + t <= x1 + 1e-9:
        px = sx(x0 + t)
        grid.append(f'<line x1="{px:.1f}" y1="{_MT}" x2="{px:.1f}" y2="{_MT + ph}" stroke="#f3f4f6"/>')
        grid.append(f'<text x="{px:.1f}" y="{_H - _MB + 16}" text-anchor="middle">{_fmt_dur(t)}</text>')
        t += tstep
    out += grid
    out.append(f'<line x1="{_ML}" y1="{_MT + ph}" x2="{_W - _MR}" y2="{_MT + ph}" stroke="#9ca3af"/>')
    tips = len(xs) <= 400
    for label, ys, color in lines:
        segments: list[list[tuple[float, float]]] = [[]]
        for x, v in zip(xs, ys, strict=True):
            if v is None or not math.isfinite(v):
                if segments[-1]:
                    segments.append([])
                continue
            if step and segments[-1]:
                segments[-1].append((sx(x), segments[-1][-1][1]))
            segments[-1].append((sx(x), sy(v)))
        for seg in segments:
            if len(seg) == 1:
                out.append(f'<circle cx="{seg[0][0]:.1f}" cy="{seg[0][1]:.1f}" r="2" fill="{color}"/>')
            elif seg:
                pts = " ".join(f"{px:.1f},{py:.1f}" for px, py in seg)
                out.append(
                    f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.6" '
                    'stroke-linejoin="round"/>'
                )
        if tips:
            for x, v in zip(xs, ys, strict=True):
                if v is not None and math.isfinite(v):
                    out.append(
                        f'<circle cx="{sx(x):.1f}" cy="{sy(v):.1f}" r="4" fill="{color}" fill-opacity="0">'
                        f"<title>{_fmt_dur(x - x0)}: {_e(label)} {format_number(v)} {_e(unit)}</title></circle>"
                    )
    out.append("</svg>")
    return head + "".join(out) + _caption(caption) + "</figure>"


def _caption(text: str) -> str:
    return f"<figcaption>{_e(text)}</figcaption>" if text else ""
