"""Line charts as inline SVG for the HTML report (``report_plots``, ``report_capacity``, ``report_server``):
values over time (``_chart``) and against load (``_xy_chart``, the capacity search), with axes at round
steps, a legend, a caption, hover tips. Pure: no Locust import."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
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
    "_e",
    "_float",
    "_fmt_dur",
    "_fmt_tick",
    "_nice_step",
    "_xy_chart",
]

COLORS = ("#2563eb", "#dc2626", "#ea580c", "#16a34a", "#7c3aed", "#0891b2")
_W, _H = 640, 240
_ML, _MR, _MT, _MB = 58, 14, 12, 30


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _float(v: Any) -> float | None:
    """A finite number as a float; None for anything else (bool, None, text, NaN, inf)."""
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


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
    head = _head(title, unit, chart_id, _legend(lines))
    values = [v for _, ys, _ in lines for v in ys if v is not None and math.isfinite(v)]
    if not xs or not values:
        return _no_data(head, caption)
    x0, x1 = xs[0], max(xs[-1], xs[0] + 1)
    sy, out = _y_axis(title, values)
    pw, ph = _W - _ML - _MR, _H - _MT - _MB

    def sx(x: float) -> float:
        return _ML + (x - x0) / (x1 - x0) * pw

    tstep = _time_step(x1 - x0)
    t = 0.0
    while x0 + t <= x1 + 1e-9:
        px = sx(x0 + t)
        out.append(f'<line x1="{px:.1f}" y1="{_MT}" x2="{px:.1f}" y2="{_MT + ph}" stroke="#f3f4f6"/>')
        out.append(f'<text x="{px:.1f}" y="{_H - _MB + 16}" text-anchor="middle">{_fmt_dur(t)}</text>')
        t += tstep
    out.append(_X_AXIS)
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


_X_AXIS = f'<line x1="{_ML}" y1="{_H - _MB}" x2="{_W - _MR}" y2="{_H - _MB}" stroke="#9ca3af"/>'


def _legend(lines: Sequence[tuple[str, Any, str]]) -> str:
    return "".join(f'<span><i style="background:{c}"></i>{_e(label)}</span>' for label, _, c in lines)


def _head(title: str, unit: str, chart_id: str, legend: str) -> str:
    """The figure's opening: its title with the unit, and the legend."""
    return (
        f'<figure id="{chart_id}" class="chart"><h3>{_e(title)} <span class="muted">({_e(unit)})</span></h3>'
        f'<div class="legend">{legend}</div>'
    )


def _no_data(head: str, caption: str) -> str:
    return head + f'<p class="muted">no data</p>{_caption(caption)}</figure>'


def _y_axis(title: str, values: Sequence[float]) -> tuple[Callable[[float], float], list[str]]:
    """The y scale from 0 to a round step above the largest value, and the SVG so far: its opening and the
    horizontal grid lines with their ticks."""
    ymax = max(values)
    ystep = _nice_step(ymax * 1.05 if ymax > 0 else 1.0)
    ytop = ystep * max(1, math.ceil(ymax * 1.05 / ystep)) if ymax > 0 else ystep * 5
    ph = _H - _MT - _MB

    def sy(y: float) -> float:
        return _MT + ph - y / ytop * ph

    out = [
        f'<svg viewBox="0 0 {_W} {_H}" role="img" aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(title)}</title>",
    ]
    y = 0.0
    while y <= ytop + ystep / 1000:
        py = sy(y)
        out.append(f'<line x1="{_ML}" y1="{py:.1f}" x2="{_W - _MR}" y2="{py:.1f}" stroke="#e5e7eb"/>')
        out.append(f'<text x="{_ML - 6}" y="{py + 4:.1f}" text-anchor="end">{_fmt_tick(y)}</text>')
        y += ystep
    return sy, out


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
    legend = _legend(lines)
    legend += '<span><i style="background:#dc2626;height:8px;width:8px;border-radius:4px"></i>failed step</span>'
    head = _head(title, unit, chart_id, legend)
    pts = sorted(
        (s for s in steps if _float(s.get("level")) is not None and s.get("passed") is not None),
        key=lambda s: float(s["level"]),
    )
    values = [v for s in pts for _, key, _ in lines if (v := _float(s.get(key))) is not None]
    if not pts or not values:
        return _no_data(head, caption)
    xmax = max(float(s["level"]) for s in pts)
    xstep = _nice_step(xmax * 1.05)
    xtop = xstep * max(1, math.ceil(xmax * 1.05 / xstep))
    sy, out = _y_axis(title, values)
    pw, ph = _W - _ML - _MR, _H - _MT - _MB

    def sx(x: float) -> float:
        return _ML + x / xtop * pw

    x = 0.0
    while x <= xtop + xstep / 1000:
        out.append(f'<line x1="{sx(x):.1f}" y1="{_MT}" x2="{sx(x):.1f}" y2="{_MT + ph}" stroke="#f3f4f6"/>')
        out.append(f'<text x="{sx(x):.1f}" y="{_H - _MB + 16}" text-anchor="middle">{_fmt_tick(x)}</text>')
        x += xstep
    out.append(_X_AXIS)
    out.append(f'<text x="{_W - _MR}" y="{_H - 2}" text-anchor="end">{_e(x_unit)}</text>')
    if limit is not None:
        lx = sx(limit)
        out.append(
            f'<line x1="{lx:.1f}" y1="{_MT}" x2="{lx:.1f}" y2="{_MT + ph}" stroke="#16a34a" stroke-dasharray="5,4"/>'
            f'<text x="{lx + 4:.1f}" y="{_MT + 12}" fill="#16a34a">limit {_e(f"{limit:g}")}</text>'
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
