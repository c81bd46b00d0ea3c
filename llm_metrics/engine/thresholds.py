"""k6-style thresholds (SLOs): parsing from YAML data, evaluation against a ``MetricStore``, abort checks.

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
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llm_metrics.engine.config import parse_duration
from llm_metrics.engine.histogram import Histogram
from llm_metrics.engine.store import Kind, MetricStore, RateValue, Tags

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

AGGREGATIONS: dict[str, tuple[str, ...]] = {
    "trend": ("p(N)", "avg", "min", "max", "med", "count"),
    "rate": ("rate",),
    "counter": ("count", "rate"),
}

DEFAULT_METRICS: dict[str, Kind] = {
    # design.md section 4
    "llm_ttfb_ms": "trend",
    "llm_ttft_ms": "trend",
    "llm_receiving_ms": "trend",
    "llm_total_ms": "trend",
    "llm_tpot_ms": "trend",
    "llm_chunk_gap_ms": "trend",
    "llm_queue_ms": "trend",
    "llm_tokens_per_sec": "trend",
    "llm_output_tokens": "trend",
    "llm_prompt_tokens": "trend",
    "llm_schedule_lag_ms": "trend",
    "llm_ttfo_ms": "trend",
    "llm_reasoning_ms": "trend",
    "llm_reasoning_tokens": "trend",
    "llm_embeddings_per_sec": "trend",
    "gateway_latency": "trend",
    "policy_check_latency": "trend",
    "requests_blocked": "counter",
    "budget_exceeded": "counter",
    "recovery_time": "trend",
    "goodput": "rate",
    "llm_token_source": "counter",
    "llm_reasoning_token_source": "counter",
    # views over Locust's request events, and k6 names users know
    "http_req_duration": "trend",
    "http_req_failed": "rate",
    "http_reqs": "counter",
    "dropped_iterations": "counter",
    "checks": "rate",
}

_KINDS: tuple[Kind, ...] = ("trend", "rate", "counter")


class ThresholdError(ValueError):
    """A threshold definition that cannot be used; the message names the file and the key path."""


class MetricRegistry:
    """Known metric names and their kinds; extend it with ``register``."""

    def __init__(self, metrics: Mapping[str, Kind] | None = None) -> None:
        self._metrics: dict[str, Kind] = dict(DEFAULT_METRICS if metrics is None else metrics)

    def register(self, name: str, kind: Kind) -> None:
        """Add a metric; registering a known name again with the same kind is allowed."""
        if kind not in _KINDS:
            raise ValueError(f"metric kind must be one of {', '.join(_KINDS)}, got {kind!r}")
        if not _METRIC_NAME.fullmatch(name):
            raise ValueError(f"metric name must match [A-Za-z_][A-Za-z0-9_]*, got {name!r}")
        old = self._metrics.get(name)
        if old is not None and old != kind:
            raise ValueError(f"metric {name!r} is already registered as a {old}, not a {kind}")
        self._metrics[name] = kind

    def kind(self, name: str) -> Kind | None:
        return self._metrics.get(name)

    def names(self) -> list[str]:
        return sorted(self._metrics)

    def __contains__(self, name: object) -> bool:
        return name in self._metrics

    def copy(self) -> MetricRegistry:
        return MetricRegistry(self._metrics)


def default_registry() -> MetricRegistry:
    """A fresh registry of the default metrics (each caller may extend its own)."""
    return MetricRegistry()


_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_EXPR = re.compile(
    rf"\s*(?:p\s*\(\s*(?P<pct>{_NUM})\s*\)|(?P<agg>avg|min|max|med|count|rate))"
    rf"\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<value>{_NUM})\s*"
)
_METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY = re.compile(r"\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*(?:\{(?P<filter>[^{}]*)\})?\s*")
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OBJECT_KEYS = ("threshold", "abortOnFail", "delayAbortEval", "failOnNoData")


@dataclass(frozen=True, slots=True)
class Threshold:
    """One parsed threshold expression."""

    source: str
    """The file (or other origin) it came from."""
    key: str
    """The key as written, e.g. ``llm_ttft_ms{scenario:chat_stream}``."""
    index: int
    """Position in the key's list."""
    metric: str
    kind: Kind
    filter: Tags
    """Sorted ``(tag, value)`` pairs every selected series must carry."""
    expression: str
    """As written (stripped), e.g. ``p(95)<1000``."""
    aggregation: str
    """``p(95)``, ``avg``, ``min``, ``max``, ``med``, ``count`` or ``rate``."""
    percentile: float | None
    op: str
    value: float
    abort_on_fail: bool = False
    delay_abort_eval_s: float = 0.0
    fail_on_no_data: bool = False

    @property
    def path(self) -> str:
        """Key path as in error messages: ``thresholds."llm_ttft_ms{scenario:x}"[0]``."""
        return f"{key_path(self.key)}[{self.index}]"

    @property
    def name(self) -> str:
        """``metric{filter}`` as written in the file."""
        return self.key.strip()


@dataclass(frozen=True, slots=True)
class ThresholdResult:
    """The outcome of one threshold."""

    threshold: Threshold
    observed: float | None
    """The aggregated value, None when there was no data (or on ``error``)."""
    ok: bool
    no_data: bool = False
    error: str | None = None
    """Why the metric could not be evaluated (e.g. recorded with another kind); such a result fails."""
    samples: int | None = field(default=None)
    """Samples behind ``observed``: histogram count, rate total or counter value."""
    no_data_reason: str | None = None
    """With ``no_data``: why, in words (``llm_metrics.engine.nodata.explain``), filled in where the verdict is made."""


# -- parsing -----------------------------------------------------------------------------------------


def key_path(key: str, root: str = "thresholds") -> str:
    """``thresholds.http_req_failed``, or the key in double quotes when it is not a bare word."""
    if _BARE.fullmatch(key):
        return f"{root}.{key}"
    quoted = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{root}."{quoted}"'


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
    return Threshold(
        source=source,
        key=key,
        index=index,
        metric=metric,
        kind=kind,
        filter=filt,
        expression=expr.strip(),
        aggregation=agg,
        percentile=pct,
        op=op,
        value=value,
        abort_on_fail=abort,
        delay_abort_eval_s=delay,
        fail_on_no_data=no_data_fails,
    )


# -- evaluation --------------------------------------------------------------------------------------


def _aggregate(th: Threshold, data: Histogram | float | RateValue | None, elapsed_s: float | None) -> float | None:
    if th.kind == "trend":
        if not isinstance(data, Histogram) or not data.count:
            return None
        agg = th.aggregation
        if th.percentile is not None:
            return data.percentile(th.percentile)
        if agg == "med":
            return data.percentile(50.0)
        if agg == "avg":
            return data.mean
        if agg == "min":
            return data.vmin
        if agg == "max":
            return data.vmax
        return float(data.count)
    if th.kind == "rate":
        return data.rate if isinstance(data, RateValue) else None
    count = float(data) if isinstance(data, int | float) else 0.0
    if th.aggregation == "count":
        return count
    return count / elapsed_s if elapsed_s else None


def _select(store: MetricStore, th: Threshold) -> Histogram | float | RateValue | None:
    if th.kind == "trend":
        return store.select_hist(th.metric, th.filter)
    if th.kind == "rate":
        return store.select_rate(th.metric, th.filter)
    return store.select_counter(th.metric, th.filter)


def _samples(data: Histogram | float | RateValue | None) -> int | None:
    if isinstance(data, Histogram):
        return data.count
    if isinstance(data, RateValue):
        return data.total
    if isinstance(data, int | float):
        return int(data)
    return None


def evaluate(
    thresholds: Iterable[Threshold], store: MetricStore, elapsed_s: float | None = None
) -> list[ThresholdResult]:
    """Evaluate every threshold on the store's (merged) data; ``elapsed_s`` defaults to the run duration.

    Results keep the order of ``thresholds``.
    """
    elapsed = store.duration_s() if elapsed_s is None else elapsed_s
    cache: dict[tuple[str, Tags], Histogram | float | RateValue | None] = {}
    out: list[ThresholdResult] = []
    for th in thresholds:
        recorded = store.kind(th.metric)
        if recorded is not None and recorded != th.kind:
            out.append(
                ThresholdResult(
                    th,
                    None,
                    False,
                    error=f"metric {th.metric!r} was recorded as a {recorded}, the threshold needs a {th.kind}",
                )
            )
            continue
        ck = (th.metric, th.filter)
        if ck not in cache:
            cache[ck] = _select(store, th)
        data = cache[ck]
        observed = _aggregate(th, data, elapsed)
        if observed is None:
            out.append(ThresholdResult(th, None, not th.fail_on_no_data, no_data=True, samples=_samples(data)))
        else:
            ok = _OPS[th.op](observed, th.value)
            out.append(ThresholdResult(th, observed, ok, samples=_samples(data)))
    return out


def abort_failures(thresholds: Sequence[Threshold], store: MetricStore, elapsed_s: float) -> list[ThresholdResult]:
    """The ``abortOnFail`` thresholds past their ``delayAbortEval`` that fail now (never on no data).

    A non-empty answer means the run should stop; call it periodically during the run.
    """
    due = [t for t in thresholds if t.abort_on_fail and elapsed_s >= t.delay_abort_eval_s]
    if not due:
        return []
    return [r for r in evaluate(due, store, elapsed_s) if not r.ok and not r.no_data]
