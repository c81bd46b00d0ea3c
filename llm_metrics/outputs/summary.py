"""End-of-test summaries: the threshold table, the metrics table (console) and the JSON summary.

Console (``console_report``), in the spirit of k6's end-of-test summary::

    THRESHOLDS
      ✓ http_req_failed                                  rate<0.02    rate=0.0050 (5 of 1000)
      ✗ llm_ttft_ms{scenario:chat_stream,prompt:short}   p(95)<1000   p(95)=1234.57
      ✓ gateway_latency                                  p(95)<50     no data

A passing threshold without data shows ``no data`` (``✗ ... no data`` with ``failOnNoData``); ``ascii=True``
uses ``PASS``/``FAIL`` instead of the check marks; under the table, each threshold without data has a line
saying why (``ThresholdResult.no_data_reason``, JSON ``no_data_reason``). The metrics table has one line
per metric and tag set: count, avg, p50, p90, p95, p99, max; then counters (count, per second) and rates
(rate, hits of total).

JSON (``json_summary``): plain dicts and lists with a fixed key order, series sorted by metric then tags,
floats finite or None. Keys: ``schema``, ``ok``, ``metadata`` (as passed by the caller), ``duration_s``,
``thresholds``, ``metrics``, ``counters``, ``rates``, ``token_source``, ``warnings``.

Secrets: this module only prints what it is given, and the caller passes non-secret metadata only.
``redact(text, secrets)`` and ``redact_obj(obj, secrets)`` replace any secret value that would still
slip through with ``***``; run the final text through ``redact`` before writing it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llm_metrics.engine import masking
from llm_metrics.engine.histogram import Histogram
from llm_metrics.engine.store import REASONING_TOKEN_SOURCE, MetricStore, Tags
from llm_metrics.engine.thresholds import Threshold, ThresholdResult

__all__ = [
    "SCHEMA",
    "console_report",
    "format_metrics_table",
    "format_number",
    "format_observed",
    "format_tags",
    "format_thresholds_table",
    "json_summary",
    "redact",
    "redact_obj",
]

SCHEMA = "llm-locust/summary/v1"
_PCTS = (50.0, 90.0, 95.0, 99.0)
_MASK = "***"


def format_number(v: float | None) -> str:
    """ints as they are; floats with 2 decimals from 1 up, else 4 significant digits; '-' for None."""
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.4g}"


def format_tags(tags: Tags | Mapping[str, str]) -> str:
    """``{prompt:short,scenario:chat}``; empty string for no tags."""
    items = sorted(tags.items()) if isinstance(tags, Mapping) else list(tags)
    if not items:
        return ""
    return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"


def format_observed(r: ThresholdResult) -> str:
    """What the threshold saw: ``p(95)=843.21``, ``rate=0.0050 (5 of 1000)``, ``no data``."""
    th = r.threshold
    if r.error is not None:
        return f"error: {r.error}"
    if r.no_data:
        return "no data"
    observed: float | None = r.observed
    if th.aggregation == "count" and observed is not None and observed.is_integer():
        observed = int(observed)
    text = f"{th.aggregation}={format_number(observed)}"
    if th.kind == "rate" and r.samples is not None and r.observed is not None:
        hits = round(r.observed * r.samples)
        text = f"{th.aggregation}={r.observed:.4f} ({hits} of {r.samples})"
    elif th.kind == "counter" and th.aggregation == "rate":
        text += "/s"
    return text


def _table(rows: Sequence[Sequence[str]], right: Iterable[int] = (), indent: str = "  ") -> list[str]:
    if not rows:
        return []
    right_set = set(right)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [c.rjust(widths[i]) if i in right_set else c.ljust(widths[i]) for i, c in enumerate(row)]
        out.append((indent + "  ".join(cells)).rstrip())
    return out


def format_thresholds_table(results: Sequence[ThresholdResult], *, ascii: bool = False) -> str:
    """One line per threshold: mark, metric key as written, expression, observed value."""
    if not results:
        return "THRESHOLDS\n  (none defined)\n"
    ok_mark, fail_mark = ("PASS", "FAIL") if ascii else ("✓", "✗")
    rows = [
        [ok_mark if r.ok else fail_mark, r.threshold.name, r.threshold.expression, format_observed(r)] for r in results
    ]
    lines = ["THRESHOLDS", *_table(rows)]
    for r in results:
        if r.no_data and r.no_data_reason:
            lines.append(f"  no data: {r.threshold.name} {r.threshold.expression}: {r.no_data_reason}")
    failed = sum(1 for r in results if not r.ok)
    no_data = sum(1 for r in results if r.no_data)
    verdict = f"  {len(results) - failed} of {len(results)} thresholds passed"
    if no_data:
        verdict += f"; {no_data} had no data"
    lines.append(verdict)
    return "\n".join(lines) + "\n"


def format_metrics_table(store: MetricStore, metrics: Iterable[str] | None = None) -> str:
    """Trend metrics (count, avg, p50, p90, p95, p99, max per tag set), then counters and rates."""
    wanted = set(metrics) if metrics is not None else None
    lines: list[str] = []
    rows = [["metric", "tags", "count", "avg", "p50", "p90", "p95", "p99", "max"]]
    for m, tags, h in store.histograms():
        if wanted is not None and m not in wanted:
            continue
        p50, p90, p95, p99 = h.percentiles(_PCTS)
        rows.append(
            [m, format_tags(tags), str(h.count)] + [format_number(v) for v in (h.mean, p50, p90, p95, p99, h.vmax)]
        )
    if len(rows) > 1:
        lines += ["METRICS", *_table(rows, right=range(2, 9))]
    duration = store.duration_s()
    crows = [["counter", "tags", "count", "per second"]]
    for m, tags, v in store.counters():
        if wanted is not None and m not in wanted:
            continue
        per_s = format_number(v / duration) if duration else "-"
        crows.append([m, format_tags(tags), format_number(v), per_s])
    if len(crows) > 1:
        lines += ["COUNTERS", *_table(crows, right=(2, 3))]
    rrows = [["rate", "tags", "rate", "hits", "total"]]
    for m, tags, rv in store.rates():
        if wanted is not None and m not in wanted:
            continue
        rrows.append([m, format_tags(tags), format_number(rv.rate), str(rv.hits), str(rv.total)])
    if len(rrows) > 1:
        lines += ["RATES", *_table(rrows, right=(2, 3, 4))]
    sources = store.token_sources()
    if sources:
        lines.append(
            "llm_output_tokens source: "
            + ", ".join(f"{n} calls from {src}" for src, n in sources.items())
            + " (usage = server usage.completion_tokens, events = content events counted)"
        )
    rsources = store.token_sources(REASONING_TOKEN_SOURCE)
    if rsources:
        lines.append(
            "llm_reasoning_tokens source: "
            + ", ".join(f"{n} calls from {src}" for src, n in rsources.items())
            + " (usage = server reasoning_tokens, events = reasoning events counted)"
        )
    for w in store.warnings():
        lines.append(f"WARNING: {w}")
    return "\n".join(lines) + ("\n" if lines else "")


def console_report(
    results: Sequence[ThresholdResult] | None,
    store: MetricStore,
    *,
    title: str | None = None,
    ascii: bool = False,
    metrics: Iterable[str] | None = None,
) -> str:
    """The full end-of-test text: title, metrics tables, threshold table last (where the eye lands)."""
    parts = []
    if title:
        parts.append(f"{title}\n{'=' * len(title)}\n")
    table = format_metrics_table(store, metrics)
    if table:
        parts.append(table)
    parts.append(format_thresholds_table(results or [], ascii=ascii))
    return "\n".join(parts)


def _finite(v: float | None) -> float | None:
    return v if v is None or math.isfinite(v) else None


def _threshold_json(r: ThresholdResult) -> dict[str, Any]:
    th: Threshold = r.threshold
    return {
        "metric": th.metric,
        "filter": dict(th.filter),
        "key": th.name,
        "expression": th.expression,
        "source": th.source,
        "observed": _finite(r.observed),
        "samples": r.samples,
        "ok": r.ok,
        "no_data": r.no_data,
        "no_data_reason": r.no_data_reason,
        "error": r.error,
        "abort_on_fail": th.abort_on_fail,
    }


def json_summary(
    results: Sequence[ThresholdResult] | None,
    store: MetricStore,
    metadata: Mapping[str, Any] | None = None,
    *,
    elapsed_s: float | None = None,
) -> dict[str, Any]:
    """A JSON-serialisable summary with a stable key order (module docstring). Secrets: see ``redact``."""
    duration = store.duration_s() if elapsed_s is None else elapsed_s
    results = list(results or [])
    metrics_out = [_hist_json(m, dict(tags), h) for m, tags, h in store.histograms()]
    # roll-ups: every metric over all its series, and per scenario (merged histograms, not averages)
    rollups: dict[tuple[str, str], Histogram] = {}
    for m, tags, h in store.histograms():
        scenario = dict(tags).get("scenario", "")
        for key in {(m, ""), (m, scenario)}:
            agg = rollups.get(key)
            rollups[key] = h.copy() if agg is None else agg.merge(h)
    rollups_out = [_hist_json(m, {"scenario": sc} if sc else {}, h) for (m, sc), h in sorted(rollups.items())]
    counters_out = [
        {"name": m, "tags": dict(tags), "count": v, "rate": (v / duration) if duration else None}
        for m, tags, v in store.counters()
    ]
    rates_out = [
        {"name": m, "tags": dict(tags), "rate": rv.rate, "hits": rv.hits, "total": rv.total}
        for m, tags, rv in store.rates()
    ]
    return {
        "schema": SCHEMA,
        "ok": all(r.ok for r in results),
        "metadata": _jsonable(dict(metadata or {})),
        "duration_s": duration,
        "thresholds": [_threshold_json(r) for r in results],
        "metrics": metrics_out,
        "rollups": rollups_out,
        "counters": counters_out,
        "rates": rates_out,
        "token_source": store.token_sources(),
        "reasoning_token_source": store.token_sources(REASONING_TOKEN_SOURCE),
        "warnings": store.warnings(),
    }


def _hist_json(name: str, tags: dict[str, str], h: Histogram) -> dict[str, Any]:
    """Stats of one histogram, with its wire form (``hist``) so two summaries can be merged or compared exactly."""
    p50, p90, p95, p99 = h.percentiles(_PCTS)
    return {
        "name": name,
        "tags": tags,
        "count": h.count,
        "avg": _finite(h.mean),
        "min": h.vmin,
        "p50": p50,
        "p90": p90,
        "p95": p95,
        "p99": p99,
        "max": h.vmax,
        "hist": h.to_wire(),
    }


def _jsonable(obj: Any) -> Any:
    """Plain JSON types only: tuples/sets become lists, non-finite floats None, anything else str."""
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, set | frozenset):
        return sorted((_jsonable(v) for v in obj), key=str)
    return str(obj)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-empty secret, in each of its encoded forms, and every URL's user information
    replaced by ``***`` (``masking.redact``)."""
    return masking.redact(text, secrets)


def redact_obj(obj: Any, secrets: Iterable[str | None]) -> Any:
    """A copy of a JSON-like structure with secrets masked in every string, keys included (``masking``)."""
    return masking.redact_obj(obj, secrets)
