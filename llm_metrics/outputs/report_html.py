"""The HTML report of a run: one self-contained file rendered from the JSON summary.

    python -m llm_metrics.report_html out/summary-chat.json -o out/report-chat.html

or ``--html-report PATH`` (env ``HTML_REPORT``) on a run, which writes it at the end, after the thresholds are
evaluated (Locust's own ``--html`` report is written before that, so it cannot show the verdict).

Contents, top to bottom: the verdict and run facts; the threshold table (every line, pass/fail, observed
value); for a capacity search (a ``capacity`` section), the limit, the threshold that failed above it, latency
and goodput plotted against load and the table of steps; plots over time from the per-second ``series``
(users, requests/s with errors, blocked and goodput/s, TTFT p50/p95, total latency p50/p95, output tokens/s);
the LLM overview per scenario, name and prompt (``overview``); every trend metric and tag set (count, avg,
min, p50, p90, p95, p99, max); counters; rates;
token source, warnings and the run's options. The sections are drawn by ``report_sections`` (tables),
``report_plots`` (over time), ``report_capacity`` (the capacity search) and ``report_server`` (server
side), their charts by ``charts``; this module assembles the page.

Self-contained: inline CSS and inline SVG drawn here, no script, no external URL (no CDN, no web font), so it
opens from a CI artefact store or a mail attachment as it is. Every string of the summary is escaped. Plots
with more than ``MAX_POINTS`` seconds are downsampled: counts per second are averaged over the bucket, latency
percentiles take the bucket's maximum (peaks stay visible); the caption says so. Pure: no Locust import.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llm_metrics.outputs.charts import _e, _float, _fmt_dur
from llm_metrics.outputs.files import write_atomic
from llm_metrics.outputs.overview import SummaryError, check_summary, load_summary
from llm_metrics.outputs.report_capacity import capacity_section
from llm_metrics.outputs.report_plots import MAX_POINTS, plots_section
from llm_metrics.outputs.report_sections import (
    counters_section,
    metrics_section,
    overview_section,
    rates_section,
    run_section,
    thresholds_section,
    trust_section,
)
from llm_metrics.outputs.report_server import server_section
from llm_metrics.outputs.summary import redact

__all__ = ["MAX_POINTS", "main", "render_report", "write_report"]


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
        ("thresholds", "Thresholds", thresholds_section(doc)),
        *(
            [("capacity", "Capacity search", capacity_section(doc["capacity"]))]
            if isinstance(doc.get("capacity"), Mapping) and "steps" in doc["capacity"]
            else []
        ),
        ("trust", "Trust", trust_section(doc)),
        ("plots", "Over time", plots_section(series)),
        *(
            [("server", "Server side", server_section(doc["server_series"], series))]
            if isinstance(doc.get("server_series"), Mapping)
            else []
        ),
        ("llm", "LLM overview", overview_section(doc)),
        ("metrics", "Metrics", metrics_section(doc)),
        ("counters", "Counters", counters_section(doc)),
        ("rates", "Rates", rates_section(doc)),
        ("run", "Run", run_section(doc)),
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
        f"<footer>Written by llm_metrics.report_html from a {_e(doc.get('schema'))} summary.</footer>"
        "</body></html>\n"
    )


def write_report(summary_json: dict[str, Any], path: str | Path, secrets: Sequence[str | None] = ()) -> Path:
    """Render and write the report (any secret value masked) atomically, creating the folder; returns the path."""
    return write_atomic(path, redact(render_report(summary_json), secrets))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llm_metrics.report_html",
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
