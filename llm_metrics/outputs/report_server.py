"""The "Server side" part of the HTML report (``report_html``), from the summary's ``server_series``
(``--server-metrics``, ``llm_metrics.monitors.server_series``): the server's and the client's TTFT side by
side, then one chart per series over time. Pure: no Locust import."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from llm_metrics.monitors.server_series import is_ttft
from llm_metrics.outputs.charts import COLORS, _chart

__all__ = ["server_section"]


def server_section(doc: Mapping[str, Any], client_series: Sequence[Mapping[str, Any]]) -> str:
    """The report's "Server side" section: the two TTFTs side by side, then one chart per series over time (the
    server's TTFT p50/p95 on the same chart as the client's, per second of finishing requests)."""

    def num(v: Any) -> str:
        return "-" if v is None else f"{float(v):.1f}"

    parts = [
        f'<p class="facts">Scraped {escape(", ".join(doc.get("urls") or []))} every {num(doc.get("interval_s"))} s: '
        f"{int(doc.get('scrapes') or 0)} scrapes, {int(doc.get('errors') or 0)} failed; recognised: "
        f"{escape(', '.join(doc.get('presets') or []) or 'no known series')}.</p>"
    ]
    ttft = doc.get("ttft") or {}
    if ttft.get("server") or ttft.get("client"):
        rows = []
        for side in ("server", "client"):
            t = ttft.get(side)
            if t:
                cells = [num(t.get("p50_ms")), num(t.get("p95_ms")), str(int(t.get("count") or 0))]
                nums = "".join(f"<td class='num'>{c}</td>" for c in cells)
                rows.append(f"<tr><td>{side}</td><td>{escape(str(t.get('metric')))}</td>{nums}</tr>")
        parts.append(
            '<table id="server-ttft"><thead><tr><th>TTFT</th><th>metric</th><th>p50 ms</th><th>p95 ms</th>'
            f"<th>count</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            '<p class="muted">The server measures from arrival to its first token, the client from its send to the '
            "first token it read; the server's quantiles are interpolated within its histogram buckets.</p>"
        )
    series = doc.get("series") or {}
    t0s = [p[0] for e in series.values() for p in e.get("points") or []]
    t0s += [float(s["t"]) for s in client_series]
    if not t0s:
        return "".join(parts) + '<p class="muted">no series scraped</p>'
    t0 = min(t0s)
    charts = []
    client = {float(s["t"]): s for s in client_series}
    for i, (metric, entry) in enumerate(series.items()):
        pts = entry.get("points") or []
        chart_id = "server-" + "".join(c if c.isalnum() else "-" for c in metric)
        if entry["kind"] == "histogram":
            xs = sorted({float(p[0]) for p in pts} | (set(client) if is_ttft(metric) else set()))
            by_t = {float(p[0]): p for p in pts}
            lines = [
                (f"server p50 ({metric})", [by_t[x][1] if x in by_t else None for x in xs], COLORS[0]),
                ("server p95", [by_t[x][2] if x in by_t else None for x in xs], COLORS[4]),
            ]
            if is_ttft(metric):
                lines += [
                    ("client TTFT p50", [client[x].get("ttft_ms_p50") if x in client else None for x in xs], COLORS[2]),
                    ("client TTFT p95", [client[x].get("ttft_ms_p95") if x in client else None for x in xs], COLORS[3]),
                ]
            caption = "server: per scrape interval; client: per second of finishing requests"
        else:
            xs = [float(p[0]) for p in pts]
            lines = [(metric, [p[1] for p in pts], COLORS[i % len(COLORS)])]
            caption = "per scrape" if entry["kind"] == "gauge" else "rate per second between two scrapes"
        if xs and xs[0] > t0:
            xs = [t0, *xs]
            lines = [(label, [None, *ys], c) for label, ys, c in lines]
        charts.append(_chart(metric, xs, lines, unit=entry.get("unit", ""), chart_id=chart_id, caption=caption))
    return "".join(parts) + f'<div class="charts">{"".join(charts)}</div>'
