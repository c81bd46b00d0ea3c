"""Threshold evaluation (``thresholds``): each ``Threshold`` aggregated over the store's merged series and
compared (``evaluate``), and the ``abortOnFail`` checks made during a run (``abort_failures``). Pure: no Locust
import."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence

from llm_metrics.engine.histogram import Histogram
from llm_metrics.engine.store import MetricStore, RateValue
from llm_metrics.engine.tags import Tags
from llm_metrics.engine.threshold_types import Threshold, ThresholdResult

__all__ = ["abort_failures", "evaluate"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


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
