"""The tables and notes of the HTML report (``report_html``), one function per section, each from the JSON
summary: the thresholds with what each observed, the LLM overview, every trend, counter and rate, what the
verdict's trust rests on, and the run's facts. Every string of the summary is escaped. Pure: no Locust import."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from llm_metrics.engine.thresholds import DEFAULT_METRICS
from llm_metrics.outputs.charts import _e, _float
from llm_metrics.outputs.overview import (
    ALL,
    LATENCY_COLUMNS,
    compact_number,
    overview_rows,
    summary_histograms,
    summary_rates,
)
from llm_metrics.outputs.summary import format_number, format_tags

__all__ = [
    "counters_section",
    "html_table",
    "metrics_section",
    "num_cell",
    "overview_section",
    "per_process_section",
    "rates_section",
    "run_section",
    "thresholds_section",
    "trust_section",
]

_AGG = re.compile(r"\s*(p\s*\(\s*[0-9.]+\s*\)|avg|min|max|med|count|rate)")


def num_cell(v: Any) -> str:
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


# -- tables --------------------------------------------------------------------------------------------


def html_table(head: Sequence[str], rows: Sequence[str], num_from: int, *, cls: str = "") -> str:
    ths = "".join(f'<th class="n">{_e(h)}</th>' if i >= num_from else f"<th>{_e(h)}</th>" for i, h in enumerate(head))
    body = "".join(rows)
    return f'<div class="scroll"><table class="{cls}"><thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table></div>'


def thresholds_section(doc: Mapping[str, Any]) -> str:
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
            f'<td class="n">{num_cell(th.get("samples"))}</td></tr>'
        )
    failed = sum(1 for th in ths if not th.get("ok"))
    no_data = sum(1 for th in ths if th.get("no_data"))
    verdict = f"{len(ths) - failed} of {len(ths)} thresholds passed" + (f"; {no_data} had no data" if no_data else "")
    source = {str(th.get("source", "")) for th in ths} - {""}
    src = f" (from {', '.join(sorted(source))})" if source else ""
    table = html_table(["", "metric", "threshold", "observed", "samples"], rows, 4, cls="thresholds")
    return f"{table}<p>{_e(verdict + src)}</p>"


def overview_section(doc: Mapping[str, Any]) -> str:
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


def metrics_section(doc: Mapping[str, Any]) -> str:
    rows = []
    for m in doc.get("metrics", []):
        nums = [m.get(k) for k in ("count", "avg", "min", "p50", "p90", "p95", "p99", "max")]
        rows.append(
            f"<tr><td>{_e(m['name'])}</td><td class='tags'>{_e(format_tags(m['tags']))}</td>"
            + "".join(f'<td class="n">{num_cell(v)}</td>' for v in nums)
            + "</tr>"
        )
    if not rows:
        return '<p class="muted">No trend metrics.</p>'
    return html_table(["metric", "tags", "count", "avg", "min", "p50", "p90", "p95", "p99", "max"], rows, 2)


def counters_section(doc: Mapping[str, Any]) -> str:
    rows = [
        f"<tr><td>{_e(c['name'])}</td><td class='tags'>{_e(format_tags(c['tags']))}</td>"
        f'<td class="n">{num_cell(c.get("count"))}</td><td class="n">{num_cell(c.get("rate"))}</td></tr>'
        for c in doc.get("counters", [])
    ]
    return html_table(["counter", "tags", "count", "per second"], rows, 2) if rows else '<p class="muted">None.</p>'


def rates_section(doc: Mapping[str, Any]) -> str:
    rows = [
        f"<tr><td>{_e(r['name'])}</td><td class='tags'>{_e(format_tags(r['tags']))}</td>"
        f'<td class="n">{num_cell(r.get("rate"))}</td><td class="n">{num_cell(r.get("hits"))}</td>'
        f'<td class="n">{num_cell(r.get("total"))}</td></tr>'
        for r in doc.get("rates", [])
    ]
    return html_table(["rate", "tags", "rate", "hits", "total"], rows, 2) if rows else '<p class="muted">None.</p>'


def trust_section(doc: Mapping[str, Any]) -> str:
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
        cells = "".join(f"<td class='n'>{num_cell(lag.get(k))}</td>" for k in ("samples", "p50", "p99", "max"))
        rows.append(f"<tr><td>client_loop_lag_ms</td>{cells}</tr>")
    cpu = gen.get("cpu_pct")
    if isinstance(cpu, Mapping):
        cells = "".join(f"<td class='n'>{num_cell(cpu.get(k))}</td>" for k in ("seconds", "p50"))
        rows.append(
            f"<tr><td>client_cpu_pct</td>{cells}<td class='n'>-</td><td class='n'>{num_cell(cpu.get('max'))}</td></tr>"
        )
    if rows:
        parts.append("<p>Load generator (every process that ran Users):</p>")
        parts.append(html_table(["metric", "samples", "p50", "p99", "max"], rows, 1))
    parts.append(per_process_section(gen.get("per_process")))
    arr = doc.get("arrivals")
    if isinstance(arr, Mapping) and "expected" in arr:
        row = "".join(f"<td class='n'>{num_cell(arr.get(k))}</td>" for k in ("expected", "issued", "sent", "dropped"))
        parts.append(f"<p>Open-model arrivals ({_e(arr.get('arrival'))}, {num_cell(arr.get('scheduled_s'))} s):</p>")
        parts.append(html_table(["expected", "issued", "sent", "dropped"], [f"<tr>{row}</tr>"], 0))
        for problem in arr.get("problems") or []:
            parts.append(f'<p class="warn">SCHEDULE NOT KEPT: {_e(problem)}</p>')
    return "".join(parts) or '<p class="muted">Nothing measured.</p>'


def per_process_section(pp: Any) -> str:
    """The per-process limit (``load_generator.per_process``): its line and the lag p99 at each open-calls band."""
    if not isinstance(pp, Mapping) or not pp.get("text"):
        return ""
    out = f"<p>{_e(pp['text'])}</p>"
    rows = []
    for b in pp.get("bands") or []:
        verdict = "not judged" if not b.get("judged") else ("within" if b.get("within") else "over")
        nums = [b.get(k) for k in ("max_open_calls", "samples", "probed_s", "lag_p99_ms", "tokens_per_s")]
        rows.append(
            f"<tr><td>{_e(b.get('open_calls'))}</td>"
            + "".join(f'<td class="n">{num_cell(v)}</td>' for v in nums)
            + f"<td>{verdict}</td></tr>"
        )
    if rows:
        head = ["open LLM calls (per process)", "most open", "lag samples", "probed s", "lag p99 ms", "tokens/s read"]
        out += html_table([*head, f"p99 <= {num_cell(pp.get('limit_ms'))} ms"], rows, 1)
    return out


def run_section(doc: Mapping[str, Any]) -> str:
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
        table = html_table(["option", "value"], rows, 9)
        parts.append(f"<details><summary>Options of the run</summary>{table}</details>")
    return "".join(parts) or '<p class="muted">Nothing to add.</p>'
