"""The end of a run: the SLO verdict, the console report, the JSON summary and the exit code.

``finish(m)`` runs at quit where the verdict is made (the master, or the local runner): every threshold is
evaluated (or the custom ``verdict`` of ``llm_metrics.extensions`` decides), the table is printed, the JSON
summary written and the exit code returned: 0 when every threshold passes, 99 when one fails (as k6 does), 98
when every threshold passed but the verdict is not trustworthy (data of the run is missing, e.g. a worker was
lost, no LLM call succeeded, the open-model schedule was not kept or the load generator was saturated;
``verdict_trustworthy`` and ``untrustworthy_because`` in the JSON). Every threshold without data says why
(``nodata``). A file that cannot be written is reported; the verdict stands. A worker writes its own view
instead (``write_worker_view``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from llm_metrics.core import LLMMetrics
from llm_metrics.engine.nodata import explain
from llm_metrics.engine.store import HTTP_REQ_FAILED
from llm_metrics.engine.thresholds import ThresholdResult, evaluate
from llm_metrics.monitors.load_limit import BANDED_METRICS
from llm_metrics.monitors.selfmon import ADVICE
from llm_metrics.outputs import summary
from llm_metrics.outputs.files import write_atomic

log = logging.getLogger(__name__)

EXIT_THRESHOLDS_FAILED = 99
EXIT_NOT_TRUSTWORTHY = 98
"""Every threshold passed, but data is missing (``trust_checks``): the pass cannot be trusted."""


def finish(m: LLMMetrics) -> int | None:
    """Evaluate, print, write; return the exit code (None when there are no thresholds and nothing to flag).

    A file that cannot be written at this point is reported in the console; the verdict and the exit code
    stand (the paths were checked at start-up, ``llm_metrics.arguments.check_output_paths``).
    """
    for hook in m.before_verdict:
        hook(m)
    override = m.verdict(m) if m.verdict is not None else None
    results = override[0] if override is not None else evaluate(m.thresholds, m.store)
    m.results = results = explain_no_data(m, results)
    meta = m.metadata()
    # the per-band series of the load generator are summed up in its "per process:" line, not listed row by row
    shown = [name for name in m.store.metrics() if name not in BANDED_METRICS]
    text = summary.console_report(results, m.store, title=f"LLM load test: {m.suite}", metrics=shown)
    for section in m.text_sections:
        text += "\n" + section()
    if m.aborted_by:
        text += "\nRun aborted early by abortOnFail threshold(s).\n"
    arrivals = m.arrivals_section()
    if arrivals is not None:
        text += "\n" + format_arrivals(arrivals)
    saturated, generator = m.load_generator()
    generator["accepted"] = m.accept_saturation
    text += "\n" + format_load_generator(generator)
    untrusted = untrusted_reasons(m)
    if not m.accept_saturation:
        untrusted += [f"load generator saturated: {finding}" for finding in saturated]
    if arrivals is not None and not arrivals["accepted"] and m.verdict is None:
        # (a custom verdict, the capacity search, overloads on purpose and judges each step itself)
        untrusted += arrivals["problems"]
    if untrusted:
        text += "\nVERDICT NOT TRUSTWORTHY:\n" + "".join(f"  - {reason}\n" for reason in untrusted)
    m.report_text = summary.redact(text, m.secrets())
    doc = summary.json_summary(results, m.store, meta)
    if override is not None:
        doc["ok"] = override[1]
    doc["series"] = m.series.to_json()
    _add_sections(m, doc)
    if arrivals is not None:
        doc["arrivals"] = arrivals
    doc["load_generator"] = generator
    doc["llm_calls"] = {"made": m.calls[0], "succeeded": m.calls[1]}
    doc["aborted_by"] = [f"{r.threshold.name} {r.threshold.expression}" for r in m.aborted_by]
    doc["verdict_trustworthy"] = not untrusted
    doc["untrustworthy_because"] = untrusted
    _write_outputs(m, doc)
    passed_code = EXIT_NOT_TRUSTWORTHY if untrusted else 0
    if override is not None:
        return passed_code if override[1] and not m.aborted_by else EXIT_THRESHOLDS_FAILED
    if not m.thresholds:
        return EXIT_NOT_TRUSTWORTHY if untrusted else None
    return passed_code if all(r.ok for r in results) and not m.aborted_by else EXIT_THRESHOLDS_FAILED


def _add_sections(m: LLMMetrics, doc: dict[str, Any]) -> None:
    for name, fn in m.json_sections.items():
        doc[name] = fn()


def _write_json(m: LLMMetrics, path: str | Path, doc: dict[str, Any]) -> Path:
    """Write ``doc`` (secrets masked) atomically to ``path``; raises ``OSError``."""
    return write_atomic(path, summary.redact(json.dumps(doc, indent=2, default=str), m.secrets()))


def _write_outputs(m: LLMMetrics, doc: dict[str, Any]) -> None:
    """The JSON summary, then every ``after_summary`` output; a failure is said in the report, never raised."""
    if m.summary_path:
        try:
            out = _write_json(m, m.summary_path, doc)
        except OSError as exc:  # the verdict and the exit code must not be lost for want of a file
            log.error("JSON summary not written to %s: %s", m.summary_path, exc)
            m.report_text += f"JSON summary NOT written to {m.summary_path}: {exc.strerror or exc}\n"
        else:
            m.report_text += f"JSON summary written to {out}\n"
    for after in m.after_summary:
        try:
            after(doc)
        except Exception as exc:  # an output's failure must not change the verdict
            log.exception("writing an output of the run failed")
            m.report_text += f"an output of the run failed: {exc}\n"


def explain_no_data(m: LLMMetrics, results: list[ThresholdResult]) -> list[ThresholdResult]:
    """The results, each one without data with the reason why (``nodata.explain``)."""
    calls = m.call_counts()
    out = []
    for r in results:
        if r.no_data and not r.no_data_reason:
            th = r.threshold
            reason = explain(th.metric, th.filter, m.store, calls, m.no_data_needs)
            r = dataclasses.replace(r, no_data_reason=reason)
        out.append(r)
    return out


def untrusted_reasons(m: LLMMetrics) -> list[str]:
    """Why the verdict cannot be trusted: the suites' ``trust_checks``; LLM calls made and none succeeded; no
    LLM call made and no request succeeded either (the run measured nothing)."""
    reasons = [reason for check in m.trust_checks for reason in check()]
    made, ok = m.calls
    if made and not ok:
        reasons.append(f"no LLM call succeeded: nothing measured the target ({made} calls made, all failed)")
    elif not made:  # a run without LLM calls (e.g. the sidecar's read-only User) must still measure something
        requests = m.store.select_rate(HTTP_REQ_FAILED)
        total = requests.total if requests is not None else 0
        if total == 0 or requests is None or requests.hits == total:
            what = f"{total} requests made, all failed" if total else "no request was made"
            reasons.append(f"no request succeeded: nothing measured the target ({what})")
    return reasons


def write_worker_view(m: LLMMetrics, index: int) -> None:
    """A worker's own record of what it measured (no verdict), beside the master's summary."""
    if not m.summary_path:
        return
    out = Path(m.summary_path)
    out = out.with_name(f"{out.stem}.worker{index}{out.suffix}")
    doc = summary.json_summary(None, m.store, {**m.metadata(), "role": f"worker {index}"})
    _add_sections(m, doc)
    try:
        _write_json(m, out, doc)
    except OSError as exc:
        log.error("worker view not written to %s: %s", out, exc)


def format_arrivals(a: dict[str, Any]) -> str:
    """The console lines of the open-model ledger."""
    lines = [
        f"ARRIVALS (open model, {a['arrival']}): expected {a['expected']:.0f} in {a['scheduled_s']:.1f} s, "
        f"issued {a['issued']:.0f}, sent {a['sent']:.0f}, dropped {a['dropped']:.0f}"
    ]
    if a["problems"]:
        lines += [f"  SCHEDULE NOT KEPT: {p}" for p in a["problems"]]
        if a["accepted"]:
            lines.append("  accepted by --accept-schedule-miss: the verdict is not marked untrustworthy for it")
    return "\n".join(lines) + "\n"


def format_load_generator(g: dict[str, Any]) -> str:
    """The console lines of the generator's self-measurement, and the saturation verdict."""
    parts = []
    lag = g.get("loop_lag_ms")
    if lag:
        parts.append(f"event-loop lag p50 {lag['p50']:.2f} ms, p99 {lag['p99']:.2f} ms, max {lag['max']:.1f} ms")
    cpu = g.get("cpu_pct")
    if cpu:
        parts.append(f"CPU avg {cpu['avg']:.0f}%, max {cpu['max']:.0f}% of a core")
    head = "LOAD GENERATOR: " + ("; ".join(parts) if parts else "not measured (no process ran Users)")
    lines = [head]
    per_process = g.get("per_process")
    if per_process and (parts or per_process["status"] != "not_measured"):
        lines.append(f"  {per_process['text']}")
    if g.get("saturated"):
        verdict = "accepted by --accept-saturation" if g.get("accepted") else "the verdict is not trustworthy"
        lines.append(f"LOAD GENERATOR SATURATED: its own timings are distorted; {verdict}")
        lines += [f"  - {finding}" for finding in g["findings"]]
        lines.append(f"  what to do: {ADVICE}")
    elif not g["rules"]["enabled"]:
        lines.append("  saturation guard off (saturation: false in the thresholds file)")
    return "\n".join(lines) + "\n"


def write_html_report(m: LLMMetrics, doc: dict[str, Any]) -> None:
    """``--html-report`` as it is at quit (the web UI form may have set it after start-up)."""
    path = getattr(m.environment.parsed_options, "html_report", "")
    if not path:
        return
    from llm_metrics.outputs.report_html import write_report

    try:
        out = write_report(doc, path, m.secrets())
    except OSError as exc:  # the verdict and the exit code must not be lost for want of a report file
        log.error("HTML report not written to %s: %s", path, exc)
        m.report_text += f"HTML report NOT written to {path}: {exc}\n"
        return
    m.report_text += f"HTML report written to {out}\n"


def mask_locust_html(m: LLMMetrics) -> None:
    """Locust's own ``--html`` report is written before ``quitting``: mask secrets and URL user information
    (e.g. of the host) in it as in the suite's outputs."""
    path = getattr(m.environment.parsed_options, "html_file", None)
    if not path or not Path(path).is_file():
        return
    try:
        text = Path(path).read_text(encoding="utf-8")
        masked = summary.redact(text, m.secrets())
        if masked != text:
            Path(path).write_text(masked, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        log.error("Locust's HTML report %s not masked: %s", path, exc)
