"""The threshold types (``thresholds``): the metrics a threshold may name with their kinds (``MetricRegistry``),
one parsed ``Threshold``, one ``ThresholdResult``, and ``ThresholdError``; importable from ``thresholds``, which
lists them. Pure: no Locust import."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from llm_metrics.engine.tags import Kind, Tags

_METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

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


def key_path(key: str, root: str = "thresholds") -> str:
    """``thresholds.http_req_failed``, or the key in double quotes when it is not a bare word."""
    if _BARE.fullmatch(key):
        return f"{root}.{key}"
    quoted = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{root}."{quoted}"'
