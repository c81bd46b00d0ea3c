"""Compare two runs' JSON summaries: what got worse, what got better, by how much.

    python -m llm_metrics.compare base.json new.json [--tolerance 0.1] [--tolerance llm_ttft_ms.p99=0.25]
                                  [--metric 'llm_*'] [--min-samples 20] [--json out.json]

Exit code: 0 when nothing regressed, 1 when at least one value regressed beyond its tolerance, 2 on bad input
(a file that cannot be read or is not a summary: the message names the file).

What is compared, for every metric and tag set found in either summary, plus one line per metric merging all
its tag sets (tags shown as ``(all)``, so an overall error rate or TTFT is compared too):

* trends (``metrics``): p50, p95, p99 and avg, computed from the exact histograms (``hist``) of the summaries;
  ``llm_output_tokens`` also its sum per second of run (output token throughput);
* counters: count per second of run (``rate``), since runs of different lengths have different counts;
* rates (``http_req_failed``, ``goodput``...): the rate.

Direction (``direction_of``): lower is better for latencies (``*_ms``, ``*_latency``, ``http_req_duration``,
``recovery_time``), error rates and counts of trouble (``http_req_failed``, ``requests_blocked``,
``budget_exceeded``, ``dropped_iterations``); higher is better for ``llm_tokens_per_sec``, ``goodput``,
``checks``, ``http_reqs`` per second and output token throughput; other metrics (token counts, token source)
are shown, never flagged.

A value *regressed* when it moved in the bad direction by more than its relative tolerance (``|new - base| >
tolerance * |base|``, or any move from a base of 0), and by more than an absolute floor (``--min-change-ms``,
default 1 ms, for millisecond metrics; ``--min-change-rate``, default 0.005, for rates: jitter of a fraction of
a millisecond or a single failed request out of thousands is no regression), with at least ``--min-samples``
samples (default 20; both sides for trends and rates, either side for counters), and for a percentile pN at
least ``--min-tail-samples`` (default 5) samples above it, ``n * (1 - N/100) >= 5`` (p95 needs 100 samples,
p99 500: with 50 samples p99 is the maximum, one slow call) -- lines with fewer are marked ``few samples``
and never flagged. A move beyond tolerance in the good direction is ``better``.

Tolerance: ``--tolerance 0.1`` (the default for every value), and per-metric overrides ``--tolerance
NAME=0.2`` or ``--tolerance NAME.STAT=0.3`` (STAT: p50, p95, p99, avg, rate, per_s; NAME may be a pattern such as
``llm_*``); the most specific wins: exact name and stat, exact name, pattern and stat, pattern.
``--metric PATTERN`` (repeatable, shell-style wildcards) restricts the comparison to matching metrics.

Pure: no Locust import. ``compare(base, new, options)`` returns a ``Comparison`` (``changes``, ``regressions``,
``format_text()``, ``to_json()``; ``compare_result``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_metrics.engine.histogram import Histogram
from llm_metrics.outputs.compare_result import (
    ALL_TAGS,
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_REGRESSION,
    PERCENTILE_STATS,
    STATS,
    Change,
    CompareOptions,
    Comparison,
    Direction,
    Verdict,
)
from llm_metrics.outputs.overview import SummaryError, load_summary
from llm_metrics.outputs.summary import format_tags

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_OK",
    "EXIT_REGRESSION",
    "Change",
    "CompareOptions",
    "Comparison",
    "compare",
    "direction_of",
    "main",
    "parse_tolerances",
]

_LOWER = frozenset(
    {
        "http_req_duration",
        "http_req_failed",
        "requests_blocked",
        "budget_exceeded",
        "dropped_iterations",
        "recovery_time",
        "gateway_latency",
        "policy_check_latency",
    }
)
_HIGHER = frozenset({"llm_tokens_per_sec", "goodput", "checks", "http_reqs"})


def direction_of(metric: str, stat: str) -> Direction:
    """Which way is better for a metric's statistic (module docstring)."""
    if metric == "llm_output_tokens":
        return "higher" if stat == "per_s" else "none"
    if metric in _LOWER:
        return "lower"
    if metric in _HIGHER:
        return "higher"
    if metric.endswith(("_ms", "_latency", "_seconds", "_time")):
        return "lower"
    if metric.endswith(("_per_sec", "_per_s", "_throughput", "goodput")):
        return "higher"
    return "none"


def _is_ms(metric: str) -> bool:
    return metric.endswith("_ms") or metric in ("http_req_duration", "gateway_latency", "policy_check_latency")


# -- comparison ------------------------------------------------------------------------------------------


@dataclass
class _Series:
    kind: str
    values: dict[str, float | None]
    samples: int


def _tags_key(tags: Mapping[str, Any]) -> str:
    return format_tags({str(k): str(v) for k, v in tags.items()})


def _collect(doc: Mapping[str, Any], options: CompareOptions) -> dict[tuple[str, str], _Series]:
    """(metric, tags text) -> values of every series and of every metric's merge over its tag sets."""
    duration = doc.get("duration_s")
    dur = float(duration) if isinstance(duration, int | float) and duration > 0 else None
    out: dict[tuple[str, str], _Series] = {}
    merged_h: dict[str, Histogram] = {}

    def trend(h: Histogram, metric: str) -> _Series:
        p50, p95, p99 = h.percentiles((50.0, 95.0, 99.0))
        values: dict[str, float | None] = {"p50": p50, "p95": p95, "p99": p99, "avg": h.mean}
        if metric == "llm_output_tokens":
            values["per_s"] = h.sum / dur if dur else None
        return _Series("trend", values, h.count)

    for m in doc.get("metrics", []):
        name = m["name"]
        if not options.wants(name):
            continue
        h = Histogram.from_wire(m["hist"], saved=True)
        out[(name, _tags_key(m["tags"]))] = trend(h, name)
        agg = merged_h.get(name)
        merged_h[name] = h.copy() if agg is None else agg.merge(h)
    for name, h in merged_h.items():
        out[(name, ALL_TAGS)] = trend(h, name)
    counts: dict[str, float] = {}
    for c in doc.get("counters", []):
        name = c["name"]
        if not options.wants(name):
            continue
        n = float(c["count"])
        out[(name, _tags_key(c["tags"]))] = _Series("counter", {"per_s": n / dur if dur else None}, int(n))
        counts[name] = counts.get(name, 0.0) + n
    for name, n in counts.items():
        out[(name, ALL_TAGS)] = _Series("counter", {"per_s": n / dur if dur else None}, int(n))
    rates: dict[str, list[int]] = {}
    for r in doc.get("rates", []):
        name = r["name"]
        if not options.wants(name):
            continue
        hits, total = int(r["hits"]), int(r["total"])
        out[(name, _tags_key(r["tags"]))] = _Series("rate", {"rate": hits / total if total else None}, total)
        cell = rates.setdefault(name, [0, 0])
        cell[0] += hits
        cell[1] += total
    for name, (hits, total) in rates.items():
        out[(name, ALL_TAGS)] = _Series("rate", {"rate": hits / total if total else None}, total)
    return out


def _judge(metric: str, stat: str, kind: str, b: float, n: float, samples: int, options: CompareOptions) -> Verdict:
    direction = direction_of(metric, stat)
    tol = options.tolerance_for(metric, stat)
    delta = n - b
    beyond = abs(delta) > tol * abs(b) if b != 0 else delta != 0
    if kind == "rate":
        beyond = beyond and abs(delta) > options.min_change_rate
    elif _is_ms(metric):
        beyond = beyond and abs(delta) > options.min_change_ms
    if not beyond:
        return "ok"
    if samples < options.min_samples:
        return "few samples"
    if stat in PERCENTILE_STATS and samples * (1.0 - float(stat[1:]) / 100.0) < options.min_tail_samples - 1e-9:
        return "few samples"
    if direction == "none":
        return "changed"
    worse = delta > 0 if direction == "lower" else delta < 0
    return "regression" if worse else "better"


def compare(
    base: Mapping[str, Any],
    new: Mapping[str, Any],
    options: CompareOptions | None = None,
    *,
    base_name: str = "base",
    new_name: str = "new",
) -> Comparison:
    """Compare two checked summaries (``overview.check_summary``/``load_summary``); see the module docstring."""
    o = options or CompareOptions()
    a, b = _collect(base, o), _collect(new, o)
    changes: list[Change] = []

    def order(key: tuple[str, str]) -> tuple[str, bool, str]:
        return (key[0], key[1] != ALL_TAGS, key[1])

    for key in sorted(set(a) | set(b), key=order):
        metric, tags = key
        sa, sb = a.get(key), b.get(key)
        ref = sa or sb
        assert ref is not None
        for stat in [s for s in STATS if s in ref.values]:
            direction = direction_of(metric, stat)
            tol = o.tolerance_for(metric, stat)
            va = sa.values.get(stat) if sa else None
            vb = sb.values.get(stat) if sb else None
            na, nb = (sa.samples if sa else 0), (sb.samples if sb else 0)
            verdict: Verdict
            if ref.kind == "counter" and (sa is None or sb is None):
                # a counter that one run never incremented counted 0 there (e.g. no 429 at all)
                va = 0.0 if sa is None and _duration(base) else va
                vb = 0.0 if sb is None and _duration(new) else vb
            if va is not None and vb is not None:
                samples = max(na, nb) if ref.kind == "counter" else min(na, nb)
                verdict = _judge(metric, stat, ref.kind, va, vb, samples, o)
            elif sa is None:
                verdict = "only in new"
            elif sb is None:
                verdict = "only in base"
            else:
                verdict = "ok" if va is None and vb is None else "only in new" if va is None else "only in base"
            changes.append(Change(metric, tags, ref.kind, stat, va, vb, na, nb, direction, tol, verdict))
    return Comparison(
        base_name,
        new_name,
        o,
        changes,
        base_duration=_duration(base),
        new_duration=_duration(new),
    )


def _duration(doc: Mapping[str, Any]) -> float | None:
    d = doc.get("duration_s")
    return float(d) if isinstance(d, int | float) else None


# -- command line ----------------------------------------------------------------------------------------


def parse_tolerances(values: Iterable[str]) -> tuple[float, dict[str, float]]:
    """``["0.1", "llm_ttft_ms=0.05", "llm_ttft_ms.p99=0.3"]`` -> (0.1, overrides); ValueError when malformed."""
    default = 0.1
    overrides: dict[str, float] = {}
    for raw in values:
        key, sep, num = raw.partition("=")
        text = num if sep else key
        try:
            tol = float(text)
        except ValueError:
            raise ValueError(f"--tolerance {raw!r}: expected a number such as 0.1 or NAME[.STAT]=0.1") from None
        if not math.isfinite(tol) or tol < 0:
            raise ValueError(f"--tolerance {raw!r}: the tolerance must be a number >= 0")
        if not sep:
            default = tol
            continue
        key = key.strip()
        metric, dot, stat = key.rpartition(".")
        if not key or (dot and (not metric or stat not in STATS)):
            raise ValueError(f"--tolerance {raw!r}: expected NAME=TOL or NAME.STAT=TOL, STAT one of {', '.join(STATS)}")
        overrides[key] = tol
    return default, overrides


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llm_metrics.compare",
        description="Compare two runs' JSON summaries; exit 1 when a value regressed beyond its tolerance, "
        "2 on bad input, else 0.",
    )
    parser.add_argument(
        "base", help="JSON summary of the reference run, or its --requests-jsonl file(s): a .jsonl path, glob or list"
    )
    parser.add_argument("new", help="JSON summary of the run to judge, or its --requests-jsonl file(s)")
    parser.add_argument(
        "--tolerance",
        action="append",
        default=[],
        metavar="[NAME[.STAT]=]TOL",
        help="relative tolerance, default 0.1 (10%%); NAME=TOL or NAME.STAT=TOL for the metrics NAME matches "
        "(wildcards allowed; repeatable)",
    )
    parser.add_argument(
        "--metric", action="append", default=[], metavar="PATTERN", help="compare only these metrics (wildcards)"
    )
    parser.add_argument("--min-samples", type=int, default=20, help="fewer samples: never flagged (default 20)")
    parser.add_argument(
        "--min-tail-samples",
        type=int,
        default=5,
        help="samples needed above a percentile to judge it: n*(1-N/100) (default 5: p95 needs 100, p99 500)",
    )
    parser.add_argument("--min-change-ms", type=float, default=1.0, help="smaller ms changes: not flagged (default 1)")
    parser.add_argument(
        "--min-change-rate", type=float, default=0.005, help="smaller rate changes: not flagged (default 0.005)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the comparison as JSON ('-': standard output)")
    parser.add_argument("--only-flagged", action="store_true", help="print regressions and improvements only")
    args = parser.parse_args(argv)
    try:
        default, overrides = parse_tolerances(args.tolerance)
    except ValueError as exc:
        parser.error(str(exc))
    options = CompareOptions(
        tolerance=default,
        overrides=overrides,
        metrics=tuple(args.metric),
        min_samples=args.min_samples,
        min_tail_samples=args.min_tail_samples,
        min_change_ms=args.min_change_ms,
        min_change_rate=args.min_change_rate,
    )
    try:
        base = load_summary(args.base)
        new = load_summary(args.new)
    except SummaryError as exc:
        print(f"compare: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    result = compare(base, new, options, base_name=args.base, new_name=args.new)
    if options.metrics and not result.changes:
        print(f"compare: no metric of either summary matches --metric {' '.join(options.metrics)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json == "-":
        print(json.dumps(result.to_json(), indent=2))
    else:
        sys.stdout.write(result.format_text(all_lines=not args.only_flagged))
        if args.json:
            Path(args.json).write_text(json.dumps(result.to_json(), indent=2), encoding="utf-8")
    return result.exit_code
