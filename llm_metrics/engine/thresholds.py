"""k6-style thresholds (SLOs): parsing from YAML data, evaluation against a ``MetricStore``, abort checks.

This module parses; the types are in ``threshold_types``, the evaluation and abort checks in
``threshold_eval``; every name of the three is importable from here.

Syntax (design.md section 5), a mapping from a metric key to a list of expressions::

    http_req_failed: ["rate<0.02"]
    "llm_ttft_ms{scenario:chat_stream,status:200,prompt:short}": ["p(95)<1000"]
    "http_req_duration{name:/health}": [{threshold: "p(99)<50", abortOnFail: true, delayAbortEval: "10s"}]

* Key: ``METRIC`` or ``METRIC{key:value,...}``. A filter selects every series whose tags contain all the
  pairs (tag values are compared as strings, so ``status:200`` matches status 200). A value is split at its
  first ``:`` (``name:http://x`` works) and may be quoted.
* Expression: ``AGG OP NUMBER``; AGG is ``p(N)`` (0 <= N <= 100), ``avg``, ``min``, ``max``, ``med``,
  ``count`` or ``rate``; OP is ``<``, ``<=``, ``>``, ``>=``, ``==`` or ``!=``.
* Object form: ``threshold`` (required), ``abortOnFail`` (bool), ``delayAbortEval`` (a duration such as
  ``10s``, ``1m30s``, ``500ms``, or a number of seconds), and our extension ``failOnNoData`` (bool).
* Aggregations by metric kind: trend ``p(N) avg min max med count``; rate ``rate``; counter ``count rate``
  (``rate`` of a counter is count per second of run time).

The known metrics and their kinds are a ``MetricRegistry`` (``default_registry()``: every metric of
design.md section 4 plus ``http_req_duration``, ``http_req_failed``, ``http_reqs``, ``dropped_iterations``,
``goodput``, ``checks``); callers register their own (``registry.register("x_ms", "trend")``). A malformed
expression, an unknown metric or an aggregation that does not fit the metric's kind raises
``ThresholdError`` naming the source file and the key path, e.g.::

    conf/thresholds.yaml: thresholds."llm_ttft_ms{scenario:chat_stream}"[0]: cannot parse 'p(95<1000':
    expected AGG OP NUMBER such as p(95)<1000

Choices where the spec is silent:

* **No data passes, and is marked.** As in k6, a threshold whose metric (with its filter) has no data
  passes; its result says ``no_data=True`` and the summary shows "no data". ``failOnNoData: true`` on the
  threshold object (or ``parse_thresholds(..., fail_on_no_data=True)`` for all) makes it fail instead, for
  CI runs where a typo in a filter must not pass silently.
* "No data" means: a trend with no samples (every aggregation, ``count`` included), a rate with no events.
  A counter with no matching series has a count of 0 (a count of nothing is zero, not unknown); its
  ``rate`` needs a run duration > 0.
* Percentiles are nearest-rank over 1%-accurate histograms (k6 interpolates between samples); ``med`` is
  ``p(50)``.
* Abort checks (``abort_failures``) only consider ``abortOnFail`` thresholds whose ``delayAbortEval`` has
  passed, and never abort on "no data" (early in a run there is none yet).
* A single string instead of a list is accepted as a list of one expression.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from llm_metrics.engine.config import parse_duration
from llm_metrics.engine.tags import Kind, Tags
from llm_metrics.engine.threshold_eval import abort_failures, evaluate
from llm_metrics.engine.threshold_types import (
    AGGREGATIONS,
    DEFAULT_METRICS,
    MetricRegistry,
    Threshold,
    ThresholdError,
    ThresholdResult,
    default_registry,
    key_path,
)

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_METRICS",
    "MetricRegistry",
    "Threshold",
    "ThresholdError",
    "ThresholdResult",
    "abort_failures",
    "default_registry",
    "evaluate",
    "key_path",
    "parse_duration",
    "parse_expression",
    "parse_key",
    "parse_thresholds",
]

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_EXPR = re.compile(
    rf"\s*(?:p\s*\(\s*(?P<pct>{_NUM})\s*\)|(?P<agg>avg|min|max|med|count|rate))"
    rf"\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<value>{_NUM})\s*"
)
_KEY = re.compile(r"\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*(?:\{(?P<filter>[^{}]*)\})?\s*")
_OBJECT_KEYS = ("threshold", "abortOnFail", "delayAbortEval", "failOnNoData")


# -- parsing -----------------------------------------------------------------------------------------


def parse_key(key: str) -> tuple[str, Tags]:
    """``'m{a:1, b:"x"}'`` -> ``('m', (('a', '1'), ('b', 'x')))``; ValueError with the reason otherwise."""
    m = _KEY.fullmatch(key)
    if m is None:
        raise ValueError(
            f"cannot parse key {key!r}: expected METRIC or METRIC{{tag:value,...}} "
            "such as llm_ttft_ms{scenario:chat_stream,status:200}"
        )
    filt = m.group("filter")
    pairs: dict[str, str] = {}
    if filt is not None and filt.strip():
        for part in filt.split(","):
            tag, sep, value = part.partition(":")
            tag, value = tag.strip(), value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            if not sep or not tag or not value:
                raise ValueError(
                    f"cannot parse tag filter {{{filt}}}: expected {{tag:value,...}} "
                    "such as {scenario:chat_stream,status:200}"
                )
            if tag in pairs:
                raise ValueError(f"tag {tag!r} appears twice in the filter {{{filt}}}")
            pairs[tag] = value
    return m.group("metric"), tuple(sorted(pairs.items()))


def parse_expression(expr: str) -> tuple[str, float | None, str, float]:
    """``'p(95)<1000'`` -> ``('p(95)', 95.0, '<', 1000.0)``; ValueError with the reason otherwise."""
    m = _EXPR.fullmatch(expr)
    if m is None:
        raise ValueError(f"cannot parse {expr!r}: expected AGG OP NUMBER such as p(95)<1000")
    value = float(m.group("value"))
    pct_text = m.group("pct")
    if pct_text is not None:
        pct = float(pct_text)
        if not 0.0 <= pct <= 100.0:
            raise ValueError(f"percentile p({pct_text}) is out of range: expected p(N) with 0 <= N <= 100")
        return f"p({pct:g})", pct, m.group("op"), value
    return m.group("agg"), None, m.group("op"), value


def _type_name(v: object) -> str:
    return "null" if v is None else type(v).__name__


def parse_thresholds(
    data: Any,
    source: str,
    *,
    registry: MetricRegistry | None = None,
    root: str = "thresholds",
    fail_on_no_data: bool = False,
) -> list[Threshold]:
    """Parse the mapping under ``thresholds:`` (as loaded from YAML) into ``Threshold`` objects.

    ``source`` (the file name) and ``root`` (the key path of ``data`` in it) prefix every error message.
    Raises ``ThresholdError`` at the first problem.
    """
    reg = registry if registry is not None else default_registry()
    if data is None:
        return []
    if not isinstance(data, Mapping):
        raise ThresholdError(
            f"{source}: {root}: expected a mapping of metric to a list of thresholds, got {_type_name(data)}"
        )
    out: list[Threshold] = []
    for raw_key, items in data.items():
        if not isinstance(raw_key, str):
            raise ThresholdError(f"{source}: {root}: keys must be metric names, got {raw_key!r}")
        kpath = key_path(raw_key, root)
        try:
            metric, filt = parse_key(raw_key)
        except ValueError as e:
            raise ThresholdError(f"{source}: {kpath}: {e}") from None
        kind = reg.kind(metric)
        if kind is None:
            close = difflib.get_close_matches(metric, reg.names(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ThresholdError(
                f"{source}: {kpath}: unknown metric {metric!r} (known: {', '.join(reg.names())}){hint}"
            )
        if isinstance(items, str | Mapping):
            items = [items]
        if not isinstance(items, list | tuple):
            raise ThresholdError(
                f"{source}: {kpath}: expected a list of threshold expressions such as "
                f'["p(95)<1000"], got {_type_name(items)}'
            )
        for i, item in enumerate(items):
            out.append(_parse_item(item, source, raw_key, kpath, i, metric, kind, filt, fail_on_no_data))
    return out


def _parse_item(
    item: object,
    source: str,
    key: str,
    kpath: str,
    index: int,
    metric: str,
    kind: Kind,
    filt: Tags,
    fail_on_no_data: bool,
) -> Threshold:
    path = f"{kpath}[{index}]"
    abort = False
    delay = 0.0
    no_data_fails = fail_on_no_data
    if isinstance(item, Mapping):
        for k in item:
            if k not in _OBJECT_KEYS:
                raise ThresholdError(f"{source}: {path}: unknown key {k!r} (expected: {', '.join(_OBJECT_KEYS)})")
        if "threshold" not in item:
            raise ThresholdError(f"{source}: {path}: missing 'threshold', e.g. threshold: \"p(95)<1000\"")
        expr = item["threshold"]
        for flag in ("abortOnFail", "failOnNoData"):
            if flag in item and not isinstance(item[flag], bool):
                raise ThresholdError(f"{source}: {path}.{flag}: expected true or false, got {item[flag]!r}")
        abort = bool(item.get("abortOnFail", False))
        no_data_fails = bool(item.get("failOnNoData", fail_on_no_data))
        if "delayAbortEval" in item:
            try:
                delay = parse_duration(item["delayAbortEval"])
            except ValueError as e:
                raise ThresholdError(f"{source}: {path}.delayAbortEval: {e}") from None
        expr_path = f"{path}.threshold"
    else:
        expr = item
        expr_path = path
    if not isinstance(expr, str):
        raise ThresholdError(
            f'{source}: {expr_path}: expected a string such as "p(95)<1000" or an object '
            f"{{threshold: ..., abortOnFail: ..., delayAbortEval: ...}}, got {_type_name(expr)}"
        )
    try:
        agg, pct, op, value = parse_expression(expr)
    except ValueError as e:
        raise ThresholdError(f"{source}: {expr_path}: {e}") from None
    valid = AGGREGATIONS[kind]
    agg_family = "p(N)" if pct is not None else agg
    if agg_family not in valid:
        raise ThresholdError(
            f"{source}: {expr_path}: aggregation {agg!r} is not valid for {kind} metric {metric!r} "
            f"(valid: {', '.join(valid)})"
        )
    expr = expr.strip()
    return Threshold(source, key, index, metric, kind, filt, expr, agg, pct, op, value, abort, delay, no_data_fails)
