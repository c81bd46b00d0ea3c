"""The LLM overview (one row per scenario, name and prompt) and reading JSON summaries back.

Used by the web UI tab (``webui``: rows from the live ``MetricStore``), the HTML report (``report_html``: rows
from a JSON summary) and the run comparison (``compare``: summaries loaded and checked). Pure: no Locust import.

Overview row, per (scenario, name, prompt) of the LLM metrics, with an ``(all)`` row merging every group:

* ``calls``: successful calls (the count of ``llm_total_ms`` of status 2xx);
* p50/p95/p99 of ``llm_ttft_ms``, ``llm_ttfo_ms``, ``llm_tpot_ms``, ``llm_total_ms``, ``llm_queue_ms`` and
  ``llm_tokens_per_sec`` (per call), merged exactly over the group's series of status 2xx (failed calls do not
  feed latencies);
* output tokens: the merged ``llm_output_tokens`` of status 2xx (key ``output_tokens``: tokens per call) and
  the output token throughput, their sum / run duration (tokens per second of the run);
* goodput: hits / calls of the ``goodput`` rate over every status of the group (failed calls count as misses)
  and hits per second; absent when no goodput SLO is set.

Reading summaries: ``load_summary(path)`` returns the parsed document or raises ``SummaryError`` whose message
names the file and says what is wrong (not JSON, not a summary, a malformed histogram...).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_metrics.engine.histogram import Histogram
from llm_metrics.outputs.summary import SCHEMA

__all__ = [
    "ALL",
    "LATENCY_COLUMNS",
    "OverviewRow",
    "SummaryError",
    "check_summary",
    "compact_number",
    "load_summary",
    "overview_rows",
    "summary_histograms",
    "summary_rates",
]

ALL = "(all)"
LATENCY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (row key, metric, column title)
    ("ttft", "llm_ttft_ms", "TTFT ms"),
    ("ttfo", "llm_ttfo_ms", "TTFO ms"),
    ("tpot", "llm_tpot_ms", "TPOT ms"),
    ("total", "llm_total_ms", "Total ms"),
    ("queue", "llm_queue_ms", "Queue ms"),
    ("tokens_per_sec", "llm_tokens_per_sec", "Tokens/s per call"),
)
PERCENTILES = (50.0, 95.0, 99.0)
_GROUP_METRICS = frozenset({m for _, m, _ in LATENCY_COLUMNS} | {"llm_output_tokens", "llm_ttfb_ms", "goodput"})


def compact_number(v: float | None) -> str:
    """For narrow table cells: 4 significant digits at most above 1 (``1234``, ``123.4``, ``12.35``), '-' for None."""
    if v is None or not math.isfinite(v):
        return "-"
    a = abs(v)
    if a >= 1000 or (a >= 1 and float(v).is_integer()):
        return f"{v:.0f}"
    if a >= 100:
        return f"{v:.1f}"
    if a >= 0.01 or a == 0:
        return f"{v:.2f}"
    return f"{v:.2g}"


class SummaryError(ValueError):
    """A file that is not a usable JSON summary; the message starts with the file name."""


@dataclass
class OverviewRow:
    """One line of the LLM overview; ``hists`` maps a ``LATENCY_COLUMNS`` key (or ``output_tokens``) to its
    merged histogram."""

    scenario: str
    name: str
    prompt: str
    hists: dict[str, Histogram] = field(default_factory=dict)
    goodput_hits: int = 0
    goodput_total: int = 0
    duration_s: float | None = None

    @property
    def calls(self) -> int:
        h = self.hists.get("total")
        return h.count if h is not None else 0

    def percentiles(self, key: str) -> list[float | None]:
        """p50, p95, p99 of one column (None each without data)."""
        h = self.hists.get(key)
        if h is None or not h.count:
            return [None] * len(PERCENTILES)
        return h.percentiles(PERCENTILES)

    @property
    def output_tokens(self) -> float:
        """All output tokens of the group's successful calls."""
        h = self.hists.get("output_tokens")
        return h.sum if h is not None else 0.0

    @property
    def output_tokens_per_s(self) -> float | None:
        if not self.duration_s or self.duration_s <= 0 or "output_tokens" not in self.hists:
            return None
        return self.output_tokens / self.duration_s

    @property
    def goodput(self) -> float | None:
        """Share of the group's calls that met every goodput SLO; None without a goodput SLO."""
        return self.goodput_hits / self.goodput_total if self.goodput_total else None

    @property
    def goodput_per_s(self) -> float | None:
        if not self.goodput_total or not self.duration_s or self.duration_s <= 0:
            return None
        return self.goodput_hits / self.duration_s

    def merge(self, other: OverviewRow) -> OverviewRow:
        for key, h in other.hists.items():
            mine = self.hists.get(key)
            self.hists[key] = h.copy() if mine is None else mine.merge(h)
        self.goodput_hits += other.goodput_hits
        self.goodput_total += other.goodput_total
        return self


def _ok_status(tags: Mapping[str, str]) -> bool:
    status = str(tags.get("status", "200"))
    return status.startswith("2")


def overview_rows(
    histograms: Iterable[tuple[str, Mapping[str, str], Histogram]],
    rates: Iterable[tuple[str, Mapping[str, str], int, int]],
    duration_s: float | None,
    *,
    total_row: bool = True,
) -> list[OverviewRow]:
    """Rows sorted by scenario, name, prompt, then the ``(all)`` row (when there are rows and ``total_row``)."""
    key_of = {m: k for k, m, _ in LATENCY_COLUMNS} | {"llm_output_tokens": "output_tokens"}
    groups: dict[tuple[str, str, str], OverviewRow] = {}

    def row(tags: Mapping[str, str]) -> OverviewRow:
        g = (str(tags.get("scenario", "")), str(tags.get("name", "")), str(tags.get("prompt", "")))
        r = groups.get(g)
        if r is None:
            r = groups[g] = OverviewRow(*g, duration_s=duration_s)
        return r

    for metric, tags, h in histograms:
        if metric not in _GROUP_METRICS or not h.count:
            continue
        r = row(tags)  # a group with failed calls only still gets its row
        if not _ok_status(tags):
            continue
        key = key_of.get(metric)
        if key is None:
            continue
        mine = r.hists.get(key)
        r.hists[key] = h.copy() if mine is None else mine.merge(h)
    for metric, tags, hits, total in rates:
        if metric != "goodput" or not total:
            continue
        r = row(tags)
        r.goodput_hits += int(hits)
        r.goodput_total += int(total)
    rows = [groups[g] for g in sorted(groups)]
    if total_row and rows:
        everything = OverviewRow(ALL, "", "", duration_s=duration_s)
        for r in rows:
            everything.merge(r)
        rows.append(everything)
    return rows


# -- reading summaries back ----------------------------------------------------------------------------


def check_summary(doc: Any, source: str) -> dict[str, Any]:
    """``doc`` if it is a JSON summary this code can read, else ``SummaryError`` naming ``source``."""
    if not isinstance(doc, dict):
        got = type(doc).__name__
        raise SummaryError(f"{source}: not a JSON summary of llm_metrics (expected an object, got {got})")
    schema = doc.get("schema")
    if schema is None:
        raise SummaryError(f"{source}: not a JSON summary of llm_metrics (no 'schema' key; expected {SCHEMA!r})")
    if schema != SCHEMA:
        raise SummaryError(f"{source}: unsupported summary schema {schema!r} (this version reads {SCHEMA!r})")
    for key in ("metrics", "counters", "rates", "thresholds"):
        if not isinstance(doc.get(key, []), list):
            raise SummaryError(f"{source}: '{key}' must be a list")
    for i, m in enumerate(doc.get("metrics", [])):
        if not isinstance(m, dict) or not isinstance(m.get("name"), str) or not isinstance(m.get("tags"), dict):
            raise SummaryError(f"{source}: metrics[{i}]: expected an object with 'name', 'tags' and 'hist'")
        try:
            Histogram.from_wire(m.get("hist"), saved=True)
        except (ValueError, TypeError) as exc:
            raise SummaryError(f"{source}: metrics[{i}] ({m['name']}): bad histogram: {exc}") from None
    for key, fields in (("counters", ("name", "tags", "count")), ("rates", ("name", "tags", "hits", "total"))):
        for i, item in enumerate(doc.get(key, [])):
            if not isinstance(item, dict) or any(f not in item for f in fields):
                raise SummaryError(f"{source}: {key}[{i}]: expected an object with {', '.join(fields)}")
    duration = doc.get("duration_s")
    if duration is not None and (not isinstance(duration, int | float) or not math.isfinite(duration)):
        raise SummaryError(f"{source}: 'duration_s' must be a number or null")
    series = doc.get("series", [])
    if not isinstance(series, list) or any(not isinstance(s, dict) or "t" not in s for s in series):
        raise SummaryError(f"{source}: 'series' must be a list of objects with a second 't'")
    return doc


def load_summary(path: str | Path) -> dict[str, Any]:
    """Read and check a JSON summary; ``SummaryError`` naming the file when it cannot be used. A ``.jsonl`` path
    (a file, a glob or a comma-separated list of request records, ``requests_log``) gives the summary rebuilt
    from those records."""
    from llm_metrics.outputs.requests_log import is_requests_path, summary_from_requests

    if is_requests_path(path):
        try:
            return check_summary(summary_from_requests(path), str(path))
        except ValueError as exc:
            raise SummaryError(str(exc)) from None
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SummaryError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SummaryError(f"{path}: cannot read: {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SummaryError(f"{path}: not JSON ({exc})") from None
    return check_summary(doc, str(path))


def summary_histograms(
    doc: Mapping[str, Any], metrics: Iterable[str] | None = None
) -> list[tuple[str, dict[str, str], Histogram]]:
    """(metric, tags, histogram) of every series of a summary (only ``metrics`` when given)."""
    wanted = set(metrics) if metrics is not None else None
    return [
        (m["name"], dict(m["tags"]), Histogram.from_wire(m["hist"], saved=True))
        for m in doc.get("metrics", [])
        if wanted is None or m["name"] in wanted
    ]


def summary_rates(doc: Mapping[str, Any]) -> list[tuple[str, dict[str, str], int, int]]:
    return [(r["name"], dict(r["tags"]), int(r["hits"]), int(r["total"])) for r in doc.get("rates", [])]
