"""Server-side series of the sidecar, sampled from its ``/metrics`` during the run, beside the client's numbers.

Pure: no Locust, no sockets. The Locust glue (``llm_users.sidecar.users``) scrapes ``/metrics`` on the master (or the
local runner) with its own plain HTTP client, at the start of the run, every ``interval_s`` and at the end,
and hands each body to ``ServerSampler.add``. At quit, ``ServerSampler.report(store)`` puts the server's
numbers beside the client's (read from the merged ``MetricStore``) for the JSON summary, and ``format_report``
for the console.

Configuration (``server_metrics:`` of ``conf/sidecar.yaml``), parsed by ``parse_server_metrics``::

    server_metrics:
      path: /metrics        # scraped on the target
      interval_s: 2         # 0: only at the start and the end
      timeout_s: 2
      series:               # a name of your choice -> what to read
        queue_length: {metric: mock_llm_queue_length, kind: gauge}
        tokens_served: {metric: mock_llm_tokens_generated_total, kind: counter, client: output_tokens}
        requests: {metric: mock_llm_requests_total, kind: counter, by: path, client: requests}
        server_errors: {metric: mock_llm_requests_total, kind: counter, by: path, labels: {status: "5.."},
                        client: failed_requests}

* ``metric`` is a sample name as it appears in the body (``..._total`` included); the matching samples are
  summed. ``labels`` filters them (values are regular expressions matched in full). ``by`` keeps one number
  per value of that label; the client side is then taken per request name, so ``by`` should be the label
  that holds the request path (the suite names every request by its exact path).
* ``kind: gauge``: every scrape is kept (seconds since the start, value); the report gives min, mean, max
  and last. ``kind: counter``: the report gives the change from the first successful scrape to the last one
  (a series absent from the first scrape counts from 0; a counter that went down was reset, and then its
  last value is the change).
* ``client`` puts the client's own number beside the server's: ``requests`` (``http_reqs``),
  ``failed_requests`` (failed requests of ``http_req_failed``) or ``output_tokens`` (sum of
  ``llm_output_tokens``: successful LLM calls whose answer gave a token count).

The scrapes themselves are requests to the server: a ``requests`` row for the scraped path says how many of
its requests were this sampler's (every successful scrape but the last falls in the window: the first one is
answered after its own rendering), and gives the server's count without them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from llm_metrics.engine.config import known_keys
from llm_metrics.engine.promtext import PromTextError, Sample, parse, totals
from llm_metrics.engine.store import HTTP_REQ_FAILED, HTTP_REQS, TOKEN_SOURCE, MetricStore

__all__ = [
    "CLIENT_KINDS",
    "SeriesSpec",
    "ServerMetricsConfig",
    "ServerMetricsError",
    "ServerSampler",
    "format_report",
    "parse_server_metrics",
]

CLIENT_KINDS = ("requests", "failed_requests", "output_tokens")
_CLIENT_WHAT = {
    "requests": "client requests (http_reqs)",
    "failed_requests": "client failed requests (http_req_failed)",
    "output_tokens": "client output tokens (sum of llm_output_tokens)",
}
_METRIC_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SERIES_KEYS = ("metric", "kind", "labels", "by", "client")
_TOP_KEYS = ("path", "interval_s", "timeout_s", "series")
MAX_ERRORS_KEPT = 5
MAX_GAUGE_POINTS = 3600


class ServerMetricsError(ValueError):
    """A ``server_metrics`` setting that cannot be used; the message names the file and the key path."""


@dataclass(frozen=True)
class SeriesSpec:
    key: str
    metric: str
    kind: Literal["gauge", "counter"]
    labels: tuple[tuple[str, str], ...] = ()
    by: str | None = None
    client: str | None = None
    patterns: dict[str, re.Pattern[str]] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class ServerMetricsConfig:
    path: str = "/metrics"
    interval_s: float = 2.0
    timeout_s: float = 2.0
    series: tuple[SeriesSpec, ...] = ()


def _number(value: Any, where: str, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ServerMetricsError(f"{where}: expected a number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ServerMetricsError(
            f"{where}: expected a number of seconds {'>= 0' if allow_zero else '> 0'}, got {value!r}"
        )
    return float(value)


def _series(key: Any, spec: Any, where: str) -> SeriesSpec:
    if not isinstance(key, str) or not _LABEL_NAME.fullmatch(key):
        raise ServerMetricsError(f"{where}: series names must be words such as queue_length, got {key!r}")
    at = f"{where}.{key}"
    expected = f"a mapping such as {{metric: NAME, kind: gauge}}, got {spec!r}"
    spec = known_keys(spec, _SERIES_KEYS, ServerMetricsError, "", at, expected)
    metric = spec.get("metric")
    if not isinstance(metric, str) or not _METRIC_NAME.fullmatch(metric):
        raise ServerMetricsError(f"{at}.metric: expected a Prometheus sample name, got {metric!r}")
    kind = spec.get("kind", "gauge")
    if kind not in ("gauge", "counter"):
        raise ServerMetricsError(f"{at}.kind: expected gauge or counter, got {kind!r}")
    labels = spec.get("labels") or {}
    if not isinstance(labels, dict):
        raise ServerMetricsError(f"{at}.labels: expected a mapping of label to a regular expression, got {labels!r}")
    patterns: dict[str, re.Pattern[str]] = {}
    for lk, lv in labels.items():
        if not isinstance(lk, str) or not _LABEL_NAME.fullmatch(lk):
            raise ServerMetricsError(f"{at}.labels: expected label names, got {lk!r}")
        if isinstance(lv, bool) or not isinstance(lv, str | int):
            raise ServerMetricsError(f"{at}.labels.{lk}: expected a string (a regular expression), got {lv!r}")
        try:
            patterns[lk] = re.compile(str(lv))
        except re.error as exc:
            raise ServerMetricsError(f"{at}.labels.{lk}: not a regular expression: {exc}") from None
    by = spec.get("by")
    if by is not None and (not isinstance(by, str) or not _LABEL_NAME.fullmatch(by)):
        raise ServerMetricsError(f"{at}.by: expected a label name such as path, got {by!r}")
    client = spec.get("client")
    if client is not None:
        if client not in CLIENT_KINDS:
            raise ServerMetricsError(f"{at}.client: expected one of {', '.join(CLIENT_KINDS)}, got {client!r}")
        if kind != "counter":
            raise ServerMetricsError(f"{at}.client: only a counter can be compared with the client's numbers")
    return SeriesSpec(
        key=key,
        metric=metric,
        kind=kind,
        labels=tuple(sorted((k, str(v)) for k, v in labels.items())),
        by=by,
        client=client,
        patterns=patterns,
    )


def parse_server_metrics(data: Any, source: str, root: str = "server_metrics") -> ServerMetricsConfig:
    """Check the ``server_metrics`` mapping (None: the defaults, no series)."""
    if data is None:
        return ServerMetricsConfig()
    data = known_keys(data, _TOP_KEYS, ServerMetricsError, source, root, f"a mapping with {', '.join(_TOP_KEYS)}")
    path = data.get("path", "/metrics")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ServerMetricsError(f"{source}: {root}.path: expected a path starting with /, got {path!r}")
    interval = _number(data.get("interval_s", 2.0), f"{source}: {root}.interval_s", allow_zero=True)
    timeout = _number(data.get("timeout_s", 2.0), f"{source}: {root}.timeout_s", allow_zero=False)
    raw = data.get("series") or {}
    if not isinstance(raw, dict):
        raise ServerMetricsError(f"{source}: {root}.series: expected a mapping of names to series")
    series = tuple(_series(k, v, f"{source}: {root}.series") for k, v in raw.items())
    return ServerMetricsConfig(path=path, interval_s=interval, timeout_s=timeout, series=series)


@dataclass
class _Scrape:
    t: float
    values: dict[str, dict[str, float]]
    """series key -> group (label value of ``by``, or "") -> summed value."""


class ServerSampler:
    """The scrapes of one run. ``add(t, body)`` with ``t`` in seconds since the start of the run."""

    def __init__(self, config: ServerMetricsConfig, url: str = "") -> None:
        self.config = config
        self.url = url
        self.scrapes = 0
        """Scrapes attempted."""
        self.ok_scrapes = 0
        self.errors = 0
        self.error_samples: list[str] = []
        self.first: _Scrape | None = None
        self.last: _Scrape | None = None
        self.seen: set[str] = set()
        self.gauges: dict[str, dict[str, list[tuple[float, float]]]] = {s.key: {} for s in config.series}

    def add(self, t: float, body: bytes | str | None, error: str | None = None) -> None:
        """One scrape: its body, or the reason it failed (``error``)."""
        self.scrapes += 1
        if body is None:
            self._error(error or "no answer")
            return
        try:
            samples = parse(body)
        except PromTextError as exc:
            self._error(str(exc))
            return
        self.ok_scrapes += 1
        scrape = _Scrape(t, self._values(samples))
        if self.first is None:
            self.first = scrape
        self.last = scrape
        for spec in self.config.series:
            if spec.kind != "gauge":
                continue
            per_group = self.gauges[spec.key]
            for group, v in scrape.values.get(spec.key, {}).items():
                points = per_group.setdefault(group, [])
                if len(points) < MAX_GAUGE_POINTS:
                    points.append((round(t, 3), v))

    def _error(self, reason: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERRORS_KEPT:
            self.error_samples.append(reason)

    def _values(self, samples: list[Sample]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for spec in self.config.series:
            vals = totals(samples, spec.metric, spec.patterns, spec.by)
            if vals or any(s.name == spec.metric for s in samples):
                self.seen.add(spec.key)
            out[spec.key] = vals
        return out

    # -- report ------------------------------------------------------------------------------------

    def own_scrapes(self) -> int:
        """This sampler's requests counted between the first and the last successful scrape."""
        return max(0, self.ok_scrapes - 1)

    def counter_change(self, spec: SeriesSpec) -> dict[str, float]:
        if self.first is None or self.last is None:
            return {}
        start = self.first.values.get(spec.key, {})
        end = self.last.values.get(spec.key, {})
        out: dict[str, float] = {}
        for group, v in end.items():
            before = start.get(group, 0.0)
            out[group] = v - before if v >= before else v  # went down: reset, count from 0
        return out

    def report(self, store: MetricStore | None) -> dict[str, Any]:
        """JSON-able: scrape counts and, per series, the server's numbers and the client's beside them."""
        cfg = self.config
        doc: dict[str, Any] = {
            "url": self.url,
            "interval_s": cfg.interval_s,
            "scrapes": self.scrapes,
            "ok_scrapes": self.ok_scrapes,
            "scrape_errors": self.errors,
            "errors": list(self.error_samples),
            "window_s": round(self.last.t - self.first.t, 3) if self.first and self.last else None,
            "series": {},
        }
        for spec in cfg.series:
            entry: dict[str, Any] = {"metric": spec.metric, "kind": spec.kind}
            if spec.labels:
                entry["labels"] = dict(spec.labels)
            if spec.by:
                entry["by"] = spec.by
            if spec.client:
                entry["client"] = spec.client
            entry["found"] = spec.key in self.seen
            if spec.kind == "gauge":
                entry["groups"] = {g: _gauge_stats(pts) for g, pts in sorted(self.gauges[spec.key].items())}
            else:
                entry["groups"] = self._counter_groups(spec, store)
            doc["series"][spec.key] = entry
        return doc

    def _counter_groups(self, spec: SeriesSpec, store: MetricStore | None) -> dict[str, dict[str, Any]]:
        change = self.counter_change(spec)
        groups = set(change)
        if spec.by is None:
            groups = {""}
            if "" not in change and self.first is not None:
                change[""] = 0.0  # scraped, but no sample matched: nothing counted
        elif spec.client and store is not None:
            groups |= _client_names(store, spec.client)
            if not groups and self.first is not None:
                groups = {""}  # nothing on either side: one line of zeros
                change[""] = 0.0
        out: dict[str, dict[str, Any]] = {}
        for g in sorted(groups):
            row: dict[str, Any] = {"server": change.get(g)}
            if spec.client and store is not None:
                row["client"] = _client_value(store, spec.client, g if spec.by else None)
            if spec.client == "output_tokens" and store is not None:
                row["client_calls_without_token_count"] = _calls_without_tokens(store, g if spec.by else None)
            if spec.client == "requests" and spec.by and g == self.config.path and row["server"] is not None:
                own = self.own_scrapes()
                row["own_scrapes"] = own
                row["server_without_own_scrapes"] = row["server"] - own
            out[g] = row
        return out


def _gauge_stats(points: list[tuple[float, float]]) -> dict[str, Any]:
    vals = [v for _, v in points]
    return {
        "min": min(vals),
        "max": max(vals),
        "mean": sum(vals) / len(vals),
        "last": vals[-1],
        "samples": [list(p) for p in points],
    }


def _client_names(store: MetricStore, client: str) -> set[str]:
    metric = {"requests": HTTP_REQS, "failed_requests": HTTP_REQ_FAILED, "output_tokens": "llm_output_tokens"}[client]
    names: set[str] = set()
    if client == "requests":
        names = {dict(t).get("name", "") for _, t, _ in store.counters(metric)}
    elif client == "failed_requests":
        names = {dict(t).get("name", "") for _, t, rv in store.rates(metric) if rv.hits}
    else:
        names = {dict(t).get("name", "") for _, t, _ in store.histograms(metric)}
    return {n for n in names if n}


def _client_value(store: MetricStore, client: str, name: str | None) -> float | None:
    filt: Mapping[str, str] = {"name": name} if name else {}
    if client == "requests":
        return store.select_counter(HTTP_REQS, filt) or 0.0
    if client == "failed_requests":
        rv = store.select_rate(HTTP_REQ_FAILED, filt)
        return float(rv.hits) if rv is not None else 0.0
    h = store.select_hist("llm_output_tokens", filt)
    return h.sum if h is not None else None


def _calls_without_tokens(store: MetricStore, name: str | None) -> int:
    """Successful LLM calls whose answer gave no token count (their tokens are not in the client's sum)."""
    filt = {"source": "unknown", **({"name": name} if name else {})}
    return int(store.select_counter(TOKEN_SOURCE, filt) or 0)


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


def format_report(doc: Mapping[str, Any]) -> str:
    """The console section: one line per series (and group), the server's number beside the client's."""
    head = f"SERVER SIDE (GET {doc.get('url') or '/metrics'}"
    head += f": {doc['scrapes']} scrapes"
    if doc.get("interval_s"):
        head += f", every {_num(doc['interval_s'])} s"
    if doc.get("scrape_errors"):
        head += f", {doc['scrape_errors']} failed"
    head += "; counters: change over the run)"
    lines = [head]
    if not doc["series"]:
        lines.append("  (no series configured: server_metrics.series in the sidecar conf)")
    rows: list[list[str]] = [["series", "server", "client", ""]]
    for key, entry in doc["series"].items():
        if not doc.get("ok_scrapes"):
            rows.append([key, "-", "", "no successful scrape"])
            continue
        if not entry["found"]:
            rows.append([key, "not found", "", f"{entry['metric']} is not in the server's /metrics"])
            continue
        groups = entry["groups"]
        if not groups:
            rows.append([key, "0", "", "no matching sample"])
        for g, st in groups.items():
            label = f"{key} {g}" if entry.get("by") and g else key
            if entry["kind"] == "gauge":
                rows.append(
                    [label, f"min {_num(st['min'])} mean {_num(st['mean'])} max {_num(st['max'])}", "", entry["metric"]]
                )
                continue
            note = entry["metric"]
            if entry.get("client"):
                note = _CLIENT_WHAT[entry["client"]]
            if st.get("client_calls_without_token_count"):
                note += f"; {st['client_calls_without_token_count']} calls gave no token count"
            if "own_scrapes" in st:
                note += f"; server includes {st['own_scrapes']} scrapes by this sampler"
            rows.append([label, _num(st["server"]), _num(st.get("client")) if entry.get("client") else "", note])
    if len(rows) > 1:
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            cells = [r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].rjust(widths[2]), r[3]]
            lines.append(("  " + "  ".join(cells)).rstrip())
    for err in doc.get("errors", []):
        lines.append(f"  scrape failed: {err}")
    return "\n".join(lines) + "\n"
