"""LLM metrics in Locust's web UI, through the extension points Locust 2.47 supports.

``attach_web_ui(environment)`` (called from the init listener of ``hooks`` when ``environment.web_ui`` exists)
adds, on the process that serves the UI (the master in a distributed run, which reads ``state(environment).metrics``,
the merge of every worker's reports):

* two tabs of the React UI (``template_args["extended_tabs"]`` / ``["extended_tables"]``), filled from the
  ``extended_stats`` that an ``after_request`` hook adds to ``/stats/requests``, which the UI polls every 2 s
  while a test runs:

  - **LLM metrics**: per scenario, name and prompt, and for all of them together (``(all)``, last), one row per
    metric: TTFT, TTFO, TPOT, total, queue time and tokens/s per call (samples, p50, p95, p99), output tokens
    (per call, and per second of the run: the output token throughput), goodput (per second, share of calls);
  - **LLM thresholds**: every threshold evaluated on the live store (``thresholds.evaluate``), pass/fail so far,
    in the order of the thresholds file;

* routes on the web UI's Flask app (under ``--web-base-path`` when set, behind ``--web-login`` when set), linked
  from the "Download Data" tab (``template_args["extended_csv_files"]``): ``llm/report`` (the HTML report of
  ``report_html`` on the live data, with its plots over time), ``llm/metrics.csv`` and ``llm/summary.json``
  (the JSON summary as the run would write it now).

What the stock UI cannot show, and how this module works around it: an extended tab holds one flat table of
text or number cells (no chart, no colour, no second table, no formatting beyond rounding), so the thresholds
get a tab of their own and the metrics a long table (one row per metric: ten columns fit a laptop screen where
the 20 columns of a wide table would not); the table sorts by its hidden ``name`` key until a header is
clicked (``name`` carries the row's position); its data rides on ``/stats/requests``, which the UI stops
polling once the run has stopped (reload the page for the final numbers); the stock charts plot Locust's own
response times only, so TTFT, tokens/s and users over time are plotted in ``llm/report``. Locust's
"Reset stats" resets these metrics and their series too (``llm_metrics.core.LLMMetrics.reset``), and so does a new run.

Rows are computed at most once a second whatever the number of open pages. Secrets are masked in every output,
the secret options' values never reach the browser (``hide_secret_values``), and every text answer of the UI,
Locust's own pages included, is masked once more on its way out (``webui_mask``).
Nothing happens at import: Flask is imported by ``attach_web_ui``.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from llm_metrics.engine.thresholds import ThresholdResult, evaluate
from llm_metrics.monitors.selfmon import CLIENT_CPU, CLIENT_LOOP_LAG
from llm_metrics.outputs import summary
from llm_metrics.outputs.overview import LATENCY_COLUMNS, PERCENTILES, OverviewRow, overview_rows
from llm_metrics.outputs.report_html import render_report
from llm_metrics.outputs.webui_mask import install_masking
from llm_metrics.state import state

__all__ = [
    "METRICS_TAB",
    "THRESHOLDS_TAB",
    "attach_web_ui",
    "live_rows",
    "live_summary",
    "metrics_table_rows",
    "threshold_table_rows",
]

METRICS_TAB = "llm_metrics"
THRESHOLDS_TAB = "llm_thresholds"
REFRESH_S = 1.0
_LLM_TREND_METRICS = (*(m for _, m, _ in LATENCY_COLUMNS), "llm_output_tokens", "llm_ttfb_ms")


def _columns(**titles: str) -> list[dict[str, str]]:
    """The ``structure`` of an extended table: key -> column title, in order."""
    return [{"key": key, "title": title} for key, title in titles.items()]


# The stock table sorts its rows by the (hidden) "name" key until a header is clicked: "name" holds the
# row's position, so rows show in the order given here (groups sorted, the "(all)" group last).
METRICS_TABLE = _columns(
    scenario="Scenario", request="Name", prompt="Prompt", metric="Metric", samples="Samples",
    p50="p50", p95="p95", p99="p99", per_second="Per second", share="Share of calls",
)  # fmt: skip
OUTPUT_TOKENS = "Output tokens"
GOODPUT = "Goodput"
THRESHOLDS_TABLE = _columns(
    result="Result so far", metric="Metric", threshold="Threshold", observed="Observed", samples="Samples",
    abort="abortOnFail",
)  # fmt: skip
DOWNLOADS: list[dict[str, str]] = [
    {"href": "./llm/live", "title": "LLM live charts (per scenario, per second)"},
    {"href": "./llm/report", "title": "LLM report (HTML with plots, live)"},
    {"href": "./llm/metrics.csv", "title": "Download LLM metrics CSV"},
    {"href": "./llm/summary.json", "title": "Download LLM JSON summary (live)"},
]


def _cell(v: float | None) -> float | str:
    return "-" if v is None else round(v, 2)


def _table_row(
    key: str, group: tuple[str, str, str], metric: str, n: float, pcts: Sequence[float | None], per_s: Any, share: str
) -> dict[str, Any]:
    """One row of the "LLM metrics" tab, keyed as ``METRICS_TABLE``; ``group``: scenario, request name, prompt;
    ``n``: samples."""
    p50, p95, p99 = (_cell(v) for v in pcts)
    scenario, request, prompt = group
    return {
        "name": key,
        "scenario": scenario,
        "request": request,
        "prompt": prompt,
        "metric": metric,
        "samples": round(n, 2),
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "per_second": per_s,
        "share": share,
    }


def live_rows(m: Any) -> list[OverviewRow]:
    """The overview rows of an ``LLMMetrics`` (``llm_metrics.core``) from its live store."""
    store = m.store
    hists = [(name, dict(tags), h) for metric in _LLM_TREND_METRICS for name, tags, h in store.histograms(metric)]
    rates = [(name, dict(tags), rv.hits, rv.total) for name, tags, rv in store.rates("goodput")]
    return overview_rows(hists, rates, store.duration_s())


def metrics_table_rows(rows: Sequence[OverviewRow]) -> list[dict[str, Any]]:
    """Rows of the "LLM metrics" tab, keyed as ``METRICS_TABLE``: per group (scenario, name, prompt) one row per
    metric with data (TTFT, TTFO, TPOT, total, queue, tokens/s per call), then output tokens (p50/p95/p99 per
    call, all per second of the run) and goodput (calls that met the SLO: per second and share). Samples: calls."""
    out: list[dict[str, Any]] = []

    def add(r: OverviewRow, metric: str, samples: float, pcts: Sequence[float | None], per_s: Any, share: str) -> None:
        out.append(_table_row(f"{len(out):06d}", (r.scenario, r.name, r.prompt), metric, samples, pcts, per_s, share))

    for r in rows:
        for key, _, title in LATENCY_COLUMNS:
            h = r.hists.get(key)
            if h is not None and h.count:
                add(r, title, h.count, r.percentiles(key), "-", "-")
        tokens = r.hists.get("output_tokens")
        if tokens is not None and tokens.count:
            add(r, OUTPUT_TOKENS, tokens.count, r.percentiles("output_tokens"), _cell(r.output_tokens_per_s), "-")
        if r.goodput_total:
            gp = r.goodput or 0.0
            add(r, GOODPUT, r.goodput_total, (None, None, None), _cell(r.goodput_per_s), f"{gp * 100:.1f}%")
    return out


def generator_rows(m: Any) -> list[dict[str, Any]]:
    """Rows of the "LLM metrics" tab for the load generator's self-measurement (``selfmon``), per process:
    event-loop lag (p50, p95, p99 in ms) and CPU share (% of a core), each with its samples."""
    out: list[dict[str, Any]] = []
    for metric in (CLIENT_LOOP_LAG, CLIENT_CPU):
        for _name, tags, h in m.store.histograms(metric):
            if not h.count:
                continue
            group = ("load generator", dict(tags).get("process", ""), "")
            pcts = h.percentiles((50.0, 95.0, 99.0))
            out.append(_table_row(f"g{len(out):05d}", group, metric, h.count, pcts, "-", "-"))
    return out


def threshold_table_rows(results: Sequence[ThresholdResult]) -> list[dict[str, Any]]:
    """Rows of the "LLM thresholds" tab, in the order of the thresholds file."""
    out = []
    for i, r in enumerate(results):
        mark = "no data" if r.no_data and r.ok else "✓ pass" if r.ok else "✗ FAIL"
        out.append(
            {
                "name": f"{i:06d}",
                "result": mark,
                "metric": r.threshold.name,
                "threshold": r.threshold.expression,
                "observed": summary.format_observed(r),
                "samples": "-" if r.samples is None else r.samples,
                "abort": "yes" if r.threshold.abort_on_fail else "",
            }
        )
    return out


def live_summary(m: Any) -> dict[str, Any]:
    """The JSON summary the run would write now (thresholds evaluated so far), as ``verdict.finish`` builds it."""
    results = evaluate(m.thresholds, m.store)
    doc = summary.json_summary(results, m.store, {**m.metadata(), "live": True})
    doc["series"] = m.series.to_json()
    for name, fn in m.json_sections.items():
        doc[name] = fn()
    doc["aborted_by"] = [f"{r.threshold.name} {r.threshold.expression}" for r in m.aborted_by]
    arrivals = m.arrivals_section() if hasattr(m, "arrivals_section") else None
    if arrivals is not None:
        doc["arrivals"] = arrivals
    if hasattr(m, "load_generator"):
        doc["load_generator"] = m.load_generator()[1]
    return doc


def _csv(rows: Sequence[OverviewRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    pct = [f"p{int(p)}" for p in PERCENTILES]
    w.writerow(
        ["scenario", "name", "prompt", "ok_calls"]
        + [f"{m}_{p}" for _, m, _ in LATENCY_COLUMNS for p in pct]
        + ["output_tokens_per_s", "goodput", "goodput_per_s"]
    )
    for r in rows:
        vals: list[Any] = [r.scenario, r.name, r.prompt, r.calls]
        for key, _, _ in LATENCY_COLUMNS:
            vals += ["" if v is None else f"{v:.3f}" for v in r.percentiles(key)]
        for v in (r.output_tokens_per_s, r.goodput, r.goodput_per_s):
            vals.append("" if v is None else f"{v:.4f}")
        w.writerow(vals)
    return buf.getvalue()


class _Tabs:
    """The cached ``extended_stats`` of both tabs (computed at most every ``REFRESH_S``)."""

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self._at = -1e9
        self._data: list[dict[str, Any]] = []

    def extended_stats(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        if now - self._at >= REFRESH_S:
            m = state(self.environment).metrics
            if m is None:
                self._data = []
            else:
                self._data = [
                    {"key": METRICS_TAB, "data": metrics_table_rows(live_rows(m)) + generator_rows(m)},
                    {"key": THRESHOLDS_TAB, "data": threshold_table_rows(evaluate(m.thresholds, m.store))},
                ]
            self._at = now
        return self._data


def hide_secret_values(web_ui: Any) -> None:
    """Keep the secret options' values out of the browser.

    Locust 2.47 renders every ``is_secret`` option into the page with its value as the prefill of a password
    field (``template_args["extra_options"]``, recomputed from the command line and the environment at each
    page load): the value is in the page source. Here it is blanked after each computation, and a form sent
    back with such a field empty (what the blanked field sends) leaves the option as it is, instead of
    setting it to "" as Locust would: the field reads "empty = unchanged"; a value typed in replaces it."""
    from flask import request
    from werkzeug.datastructures import ImmutableMultiDict

    if getattr(web_ui, "_llm_secrets_hidden", False):
        return
    web_ui._llm_secrets_hidden = True
    compute = web_ui.update_template_args

    def secret_keys() -> set[str]:
        options = web_ui.template_args.get("extra_options") or {}
        return {k for k, o in options.items() if isinstance(o, dict) and o.get("is_secret")}

    def update_template_args() -> None:
        compute()
        options = web_ui.template_args.get("extra_options") or {}
        for key in secret_keys():
            options[key]["default_value"] = ""

    web_ui.update_template_args = update_template_args
    if web_ui.template_args.get("extra_options") is not None:
        update_template_args()  # what Locust computed when the web UI was made

    @web_ui.app.before_request
    def _keep_unchanged_secrets() -> None:
        if request.endpoint != "locust.swarm" or request.method != "POST":
            return
        form = request.form
        blank = {k for k in secret_keys() if k in form and not form.get(k)}
        if blank:
            request.form = ImmutableMultiDict([(k, v) for k, v in form.items(multi=True) if k not in blank])


def _add_tabs(args: dict[str, Any]) -> None:
    """The two tabs, their tables and the download links, in the web UI's template arguments."""
    mine = (METRICS_TAB, THRESHOLDS_TAB)
    args["extended_tabs"] = [
        *[t for t in args.get("extended_tabs") or [] if t.get("key") not in mine],
        {"title": "LLM metrics", "key": METRICS_TAB},
        {"title": "LLM thresholds", "key": THRESHOLDS_TAB},
    ]
    args["extended_tables"] = [
        *[t for t in args.get("extended_tables") or [] if t.get("key") not in mine],
        {"key": METRICS_TAB, "structure": METRICS_TABLE},
        {"key": THRESHOLDS_TAB, "structure": THRESHOLDS_TABLE},
    ]
    args["extended_csv_files"] = [*(args.get("extended_csv_files") or []), *DOWNLOADS]


def _add_routes(environment: Any, web_ui: Any, bp: Any, secrets: Callable[[], list[str]]) -> None:
    """``llm/report``, ``llm/summary.json`` and ``llm/metrics.csv`` on the blueprint, behind the UI's login."""
    from flask import Response

    def answer(render: Callable[[Any], tuple[str, str]], filename: str = "") -> Any:
        """``render(metrics)``: (text, mimetype); ``filename``: a download named after the suite."""
        m = state(environment).metrics
        if m is None:
            return Response("llm_metrics is not installed", status=404, mimetype="text/plain")
        text, mimetype = render(m)
        headers = {"Content-Disposition": f"attachment;filename={filename.format(m.suite)}"} if filename else None
        return Response(summary.redact(text, secrets()), mimetype=mimetype, headers=headers)

    @bp.route("/llm/report")
    @web_ui.auth_required_if_enabled
    def llm_report() -> Any:
        return answer(lambda m: (render_report(live_summary(m)), "text/html"))

    @bp.route("/llm/summary.json")
    @web_ui.auth_required_if_enabled
    def llm_summary() -> Any:
        return answer(
            lambda m: (json.dumps(live_summary(m), indent=2, default=str), "application/json"), "llm-summary-{}.json"
        )

    @bp.route("/llm/metrics.csv")
    @web_ui.auth_required_if_enabled
    def llm_csv() -> Any:
        return answer(lambda m: (_csv(live_rows(m)), "text/csv"), "llm-metrics-{}.csv")


def attach_web_ui(environment: Any) -> None:
    """Add the LLM tabs and routes to ``environment.web_ui`` (no-op without a web UI, or when done already)."""
    web_ui = getattr(environment, "web_ui", None)
    if web_ui is None or getattr(web_ui, "_llm_metrics_attached", False):
        return
    from flask import Blueprint, request

    web_ui._llm_metrics_attached = True
    tabs = _Tabs(environment)
    _add_tabs(web_ui.template_args)
    hide_secret_values(web_ui)

    def secrets() -> list[str]:
        m = state(environment).metrics
        return m.secrets() if m is not None else []

    install_masking(web_ui, environment, secrets)  # first of the after_request hooks: it runs after them all

    @web_ui.app.after_request
    def _add_llm_stats(response: Any) -> Any:
        # Locust's UI polls /stats/requests; the extended tabs read "extended_stats" from its answer
        if request.endpoint != "locust.request_stats" or response.status_code != 200 or not response.is_json:
            return response
        data = response.get_json(silent=True)
        if not isinstance(data, dict):
            return response
        mine = summary.redact_obj(tabs.extended_stats(), secrets())
        keep = [e for e in data.get("extended_stats") or [] if e.get("key") not in (METRICS_TAB, THRESHOLDS_TAB)]
        data["extended_stats"] = [*keep, *mine]
        response.set_data(json.dumps(data))
        return response

    opts = environment.parsed_options
    prefix = getattr(opts, "web_base_path", None) or None
    bp = Blueprint("llm_metrics", __name__, url_prefix=prefix)

    _add_routes(environment, web_ui, bp, secrets)
    from llm_metrics.outputs.live import attach_live

    attach_live(environment, web_ui, bp)  # llm/live: the charts shown in the LLM tab
    web_ui.app.register_blueprint(bp)
