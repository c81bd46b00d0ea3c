"""The series of ``--server-metrics`` (``server_scrape``): which series of an inference server's ``/metrics`` are
read, and what is made of the scrapes of a run (``ServerSeries``), its JSON section and its console text.

Presets. Which series are read is not configured: every series of ``PRESETS`` whose sample name appears in a
body is taken, and ``presets`` in the report says which servers were recognised:

* ``vllm``: ``vllm:num_requests_running``, ``vllm:num_requests_waiting``, ``vllm:gpu_cache_usage_perc`` and its
  successor ``vllm:kv_cache_usage_perc``, ``vllm:prompt_tokens_total``, ``vllm:generation_tokens_total``,
  ``vllm:num_preemptions_total``, ``vllm:time_to_first_token_seconds``, ``vllm:time_per_output_token_seconds``
  (``vllm:inter_token_latency_seconds`` in newer releases), ``vllm:e2e_request_latency_seconds``,
  ``vllm:request_queue_time_seconds``;
* ``sglang``: ``sglang:num_running_reqs``, ``sglang:num_queue_reqs``, ``sglang:token_usage``,
  ``sglang:gen_throughput``, ``sglang:prompt_tokens_total``, ``sglang:generation_tokens_total``,
  ``sglang:time_to_first_token_seconds``, ``sglang:inter_token_latency_seconds``,
  ``sglang:e2e_request_latency_seconds``;
* ``tgi``: ``tgi_queue_size``, ``tgi_batch_current_size``, ``tgi_request_count``, ``tgi_request_success``,
  ``tgi_request_queue_duration``, ``tgi_request_mean_time_per_token_duration``, ``tgi_request_duration``;
* ``llamacpp`` (llama.cpp's ``llama-server --metrics``): ``llamacpp:requests_processing``,
  ``llamacpp:requests_deferred``, ``llamacpp:kv_cache_usage_ratio``, ``llamacpp:prompt_tokens_total``,
  ``llamacpp:tokens_predicted_total``, ``llamacpp:predicted_tokens_seconds``.

The built-in mock exports the vLLM names of its gauges, its token counter and a TTFT histogram, so the
``vllm`` preset is what the tests exercise.

Kinds. Samples of one name are summed over their labels and over the replicas (scraped in the same round; a
round where a replica's scrape failed is counted as failed and left out, since a partial sum reads as a drop).
A ``gauge`` gives its value at each scrape; a ``counter`` its rate per second between two scrapes (a counter
that went down was reset: that interval is left out); a ``histogram`` (Prometheus ``_bucket{le=...}``
samples) gives, per interval, the p50 and p95 of the observations that fell in it, interpolated linearly
within a bucket as Prometheus' ``histogram_quantile`` does, and over the whole run the same from the first
and the last scrape. A histogram's quantile is only as precise as its buckets: the report says so.

The server's TTFT histogram (role ``ttft``: vLLM's and SGLang's ``time_to_first_token_seconds``) is put beside
the client's ``llm_ttft_ms`` (p50, p95, count over the run, from the merged store). The client measures from
its send to the first token it read, the server from the request's arrival to the first token it produced,
so the client's exceeds the server's by the network and the client's own reading.

JSON (the summary's ``server_series``)::

    {"urls": [...], "interval_s": 2, "scrapes": N, "errors": N, "error_samples": [...], "presets": ["vllm"],
     "series": {"vllm:num_requests_running": {"kind": "gauge", "unit": "requests", "preset": "vllm",
                "points": [[epoch_s, value], ...]}, ...},   # histograms: [[t, p50_ms, p95_ms, count], ...]
     "ttft": {"server": {"metric": ..., "p50_ms": .., "p95_ms": .., "count": ..}, "client": {...}}}

Pure: no Locust, no sockets. The scrapes are made by ``server_scrape`` (the Locust glue); the HTML report's
section is drawn by ``llm_metrics.outputs.report_server``.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from llm_metrics.engine.promtext import PromTextError, Sample, parse

__all__ = [
    "JSON_KEY",
    "PRESETS",
    "PresetSeries",
    "ServerSeries",
    "format_report",
    "histogram_quantile",
    "is_ttft",
    "parse_urls",
]

Kind = Literal["gauge", "counter", "histogram"]
MAX_POINTS = 3600
MAX_ERRORS_KEPT = 5
JSON_KEY = "server_series"


@dataclass(frozen=True, slots=True)
class PresetSeries:
    metric: str
    kind: Kind
    unit: str
    role: str = ""
    """``ttft`` for a server TTFT histogram (put beside the client's TTFT)."""


def _p(*items: tuple[str, Kind, str] | tuple[str, Kind, str, str]) -> tuple[PresetSeries, ...]:
    return tuple(PresetSeries(*it) for it in items)


PRESETS: dict[str, tuple[PresetSeries, ...]] = {
    "vllm": _p(
        ("vllm:num_requests_running", "gauge", "requests"),
        ("vllm:num_requests_waiting", "gauge", "requests"),
        ("vllm:gpu_cache_usage_perc", "gauge", "fraction"),
        ("vllm:kv_cache_usage_perc", "gauge", "fraction"),
        ("vllm:prompt_tokens_total", "counter", "tokens/s"),
        ("vllm:generation_tokens_total", "counter", "tokens/s"),
        ("vllm:num_preemptions_total", "counter", "1/s"),
        ("vllm:time_to_first_token_seconds", "histogram", "ms", "ttft"),
        ("vllm:time_per_output_token_seconds", "histogram", "ms"),
        ("vllm:inter_token_latency_seconds", "histogram", "ms"),
        ("vllm:e2e_request_latency_seconds", "histogram", "ms"),
        ("vllm:request_queue_time_seconds", "histogram", "ms"),
    ),
    "sglang": _p(
        ("sglang:num_running_reqs", "gauge", "requests"),
        ("sglang:num_queue_reqs", "gauge", "requests"),
        ("sglang:token_usage", "gauge", "fraction"),
        ("sglang:gen_throughput", "gauge", "tokens/s"),
        ("sglang:prompt_tokens_total", "counter", "tokens/s"),
        ("sglang:generation_tokens_total", "counter", "tokens/s"),
        ("sglang:time_to_first_token_seconds", "histogram", "ms", "ttft"),
        ("sglang:inter_token_latency_seconds", "histogram", "ms"),
        ("sglang:e2e_request_latency_seconds", "histogram", "ms"),
    ),
    "tgi": _p(
        ("tgi_queue_size", "gauge", "requests"),
        ("tgi_batch_current_size", "gauge", "requests"),
        ("tgi_request_count", "counter", "1/s"),
        ("tgi_request_success", "counter", "1/s"),
        ("tgi_request_queue_duration", "histogram", "ms"),
        ("tgi_request_mean_time_per_token_duration", "histogram", "ms"),
        ("tgi_request_duration", "histogram", "ms"),
    ),
    "llamacpp": _p(
        ("llamacpp:requests_processing", "gauge", "requests"),
        ("llamacpp:requests_deferred", "gauge", "requests"),
        ("llamacpp:kv_cache_usage_ratio", "gauge", "fraction"),
        ("llamacpp:prompt_tokens_total", "counter", "tokens/s"),
        ("llamacpp:tokens_predicted_total", "counter", "tokens/s"),
        ("llamacpp:predicted_tokens_seconds", "gauge", "tokens/s"),
    ),
}
_BY_METRIC = {s.metric: (preset, s) for preset, series in PRESETS.items() for s in series}


def parse_urls(values: Sequence[str] | str | None, flag: str = "--server-metrics/SERVER_METRICS") -> list[str]:
    """The URLs of the flag (repeated or comma-separated); ValueError naming the flag for one that is not http(s)."""
    if not values:
        return []
    items = [values] if isinstance(values, str) else list(values)
    out: list[str] = []
    for item in items:
        for url in str(item).split(","):
            url = url.strip()
            if not url:
                continue
            parsed = urllib.parse.urlsplit(url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ValueError(f"{flag}: expected an http(s) URL such as http://127.0.0.1:8000/metrics, got {url!r}")
            out.append(url)
    return out


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus' ``histogram_quantile``: ``buckets`` are (upper bound, cumulative count) sorted by bound, the
    last one +Inf. Linear within the bucket; the +Inf bucket gives the highest finite bound; None when empty."""
    if not buckets:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


def _buckets(samples: Sequence[Sample], metric: str) -> dict[float, float]:
    """Cumulative count per upper bound, summed over every label set (and replica)."""
    out: dict[float, float] = {}
    name = metric + "_bucket"
    for s in samples:
        if s.name != name:
            continue
        le = dict(s.labels).get("le")
        if le is None:
            continue
        try:
            bound = float(le)
        except ValueError:
            continue
        out[bound] = out.get(bound, 0.0) + s.value
    return out


def _delta(new: Mapping[float, float], old: Mapping[float, float] | None) -> list[tuple[float, float]] | None:
    """Sorted (bound, cumulative count) of ``new - old``; None when a bucket went down (a server restart)."""
    out = []
    for bound in sorted(new):
        before = old.get(bound, 0.0) if old else 0.0
        if new[bound] < before:
            return None
        out.append((bound, new[bound] - before))
    return out


class ServerSeries:
    """Scrapes of one run (all replicas together); see the module docstring."""

    def __init__(self, urls: Sequence[str], interval_s: float) -> None:
        self.urls = list(urls)
        self.interval_s = interval_s
        self.reset()

    def reset(self) -> None:
        self.scrapes = 0
        self.errors = 0
        self.error_samples: list[str] = []
        self.presets: set[str] = set()
        self.points: dict[str, list[list[float | None]]] = {}
        self._prev: dict[str, Any] = {}
        self._prev_t: float | None = None
        self._first_hist: dict[str, dict[float, float]] = {}
        self._last_hist: dict[str, dict[float, float]] = {}

    def error(self, url: str, reason: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERRORS_KEPT:
            self.error_samples.append(f"{url}: {reason}")

    def add_round(self, t: float, bodies: Sequence[tuple[str, bytes | str | None, str | None]]) -> None:
        """One scrape of every replica at epoch time ``t``: (url, body or None, error reason)."""
        samples: list[Sample] = []
        complete = True
        for url, body, reason in bodies:
            self.scrapes += 1
            if body is None:
                self.error(url, reason or "no answer")
                complete = False
                continue
            try:
                samples.extend(parse(body))
            except PromTextError as exc:
                self.error(url, exc.reason)
                complete = False
        if not samples or not complete:  # a partial sum over the replicas would read as a drop: left out
            return
        values: dict[str, Any] = {}
        names = {s.name for s in samples}
        for metric, (preset, spec) in _BY_METRIC.items():
            if spec.kind == "histogram":
                if metric + "_bucket" not in names:
                    continue
                values[metric] = _buckets(samples, metric)
            else:
                if metric not in names:
                    continue
                values[metric] = sum(s.value for s in samples if s.name == metric)
            self.presets.add(preset)
        dt = None if self._prev_t is None else t - self._prev_t
        for metric, v in values.items():
            spec = _BY_METRIC[metric][1]
            before = self._prev.get(metric)
            if spec.kind == "gauge":
                self._point(metric, [round(t, 3), v])
            elif spec.kind == "counter":
                if before is not None and dt and v >= before:
                    self._point(metric, [round(t, 3), (v - before) / dt])
            else:
                self._first_hist.setdefault(metric, v)
                self._last_hist[metric] = v
                if before is not None:
                    d = _delta(v, before)
                    if d is None:
                        self._first_hist[metric] = {}  # restarted: the whole-run numbers count from 0
                    elif d and d[-1][1] > 0:
                        p50, p95 = (histogram_quantile(q, d) for q in (0.5, 0.95))
                        self._point(metric, [round(t, 3), _ms(p50), _ms(p95), d[-1][1]])
        self._prev = values
        self._prev_t = t

    def _point(self, metric: str, point: list[float | None]) -> None:
        pts = self.points.setdefault(metric, [])
        if len(pts) < MAX_POINTS:
            pts.append(point)

    def run_quantiles(self, metric: str) -> dict[str, Any] | None:
        """p50, p95 (ms) and count of a histogram over the run (first to last scrape)."""
        last = self._last_hist.get(metric)
        if last is None:
            return None
        d = _delta(last, self._first_hist.get(metric)) or []
        count = d[-1][1] if d else 0.0
        return {
            "metric": metric,
            "p50_ms": _ms(histogram_quantile(0.5, d)),
            "p95_ms": _ms(histogram_quantile(0.95, d)),
            "count": count,
            "bucket_bounds_ms": [_ms(b) for b, _ in d if not math.isinf(b)],
        }

    def report(self, client_ttft: Mapping[str, Any] | None = None) -> dict[str, Any]:
        series: dict[str, Any] = {}
        for metric, pts in sorted(self.points.items()):
            preset, spec = _BY_METRIC[metric]
            entry: dict[str, Any] = {"kind": spec.kind, "unit": spec.unit, "preset": preset, "points": pts}
            if spec.kind == "histogram":
                entry["run"] = self.run_quantiles(metric)
            series[metric] = entry
        ttft: dict[str, Any] = {}
        server = next(
            (self.run_quantiles(m) for m, (_, s) in _BY_METRIC.items() if s.role == "ttft" and m in self._last_hist),
            None,
        )
        if server is not None:
            ttft["server"] = server
        if client_ttft is not None:
            ttft["client"] = dict(client_ttft)
        return {
            "urls": self.urls,
            "interval_s": self.interval_s,
            "scrapes": self.scrapes,
            "errors": self.errors,
            "error_samples": list(self.error_samples),
            "presets": sorted(self.presets),
            "series": series,
            "ttft": ttft,
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def format_report(doc: Mapping[str, Any]) -> str:
    """The console section: what was scraped and the two TTFTs side by side."""
    head = f"SERVER METRICS ({', '.join(doc['urls'])}: {doc['scrapes']} scrapes"
    if doc.get("errors"):
        head += f", {doc['errors']} failed"
    presets = ", ".join(doc.get("presets") or []) or "no known series found"
    lines = [head + f"; recognised: {presets})"]
    ttft = doc.get("ttft") or {}

    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.1f}"

    if ttft.get("server"):
        s = ttft["server"]
        lines.append(
            f"  TTFT server ({s['metric']}): p50 {fmt(s['p50_ms'])} ms  p95 {fmt(s['p95_ms'])} ms  "
            f"count {int(s['count'])}  (bucket-interpolated)"
        )
    if ttft.get("client"):
        c = ttft["client"]
        lines.append(
            f"  TTFT client (llm_ttft_ms):     p50 {fmt(c['p50_ms'])} ms  p95 {fmt(c['p95_ms'])} ms  count {c['count']}"
        )
    for metric, entry in (doc.get("series") or {}).items():
        if entry["kind"] == "histogram":
            continue
        vals = [p[1] for p in entry["points"] if p[1] is not None]
        if vals:
            lines.append(
                f"  {metric}: min {min(vals):.3g} mean {sum(vals) / len(vals):.3g} max {max(vals):.3g} {entry['unit']}"
            )
    for err in doc.get("error_samples") or []:
        lines.append(f"  scrape failed: {err}")
    return "\n".join(lines) + "\n"


def is_ttft(metric: str) -> bool:
    """Whether ``metric`` is a server TTFT histogram of a preset (role ``ttft``)."""
    spec = _BY_METRIC.get(metric)
    return spec is not None and spec[1].role == "ttft"
