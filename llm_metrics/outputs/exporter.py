"""Prometheus exporter of the suite's merged metrics, served by the master (or the single local process).

    locust -f locustfiles/chat.py --prometheus-port 9646            # http://127.0.0.1:9646/metrics
      --prometheus-host 0.0.0.0      to be scraped from another machine or container (env PROMETHEUS_HOST)
      --prometheus-linger 15         keep serving 15 s after the run, so the final numbers get scraped
      --pushgateway http://pg:9091   push the final numbers once, at the end of the run (CI without a scraper)

Off by default (``--prometheus-port 0``); binds 127.0.0.1 unless told otherwise; never started on workers
(the master holds the merged data). Nothing is kept twice: a custom Collector reads
``environment.llm_metrics`` at scrape time, so a scrape and the JSON summary are computed from the same
merged store and agree exactly.

Families (``llm_locust_`` + the suite's metric name, a leading ``llm_`` dropped: ``llm_ttft_ms`` ->
``llm_locust_ttft_ms``, ``http_req_duration`` -> ``llm_locust_http_req_duration``):

=====================================================  =========  ===============================================
family                                                 type       from
=====================================================  =========  ===============================================
``llm_locust_<trend>{quantile="0.5|0.9|0.95|0.99"}``   summary    every trend (TTFT, TPOT, total, chunk gaps,
plus ``_count`` and ``_sum``                                      queue time, http_req_duration...), over the run
``llm_locust_<counter>_total``                         counter    every counter (``http_reqs``,
                                                                  ``dropped_iterations``, ``requests_blocked``...)
``llm_locust_<rate>_hits_total``, ``_samples_total``   counter    every rate: ``http_req_failed_hits_total`` are
                                                                  the failed requests, ``goodput_hits_total`` the
                                                                  calls within the per-request SLOs
``llm_locust_threshold_ok{threshold,expression}``      gauge      1 pass / 0 fail, evaluated at each scrape
``llm_locust_threshold_observed{threshold,expression}`` gauge     the value the threshold saw (absent: no data)
``llm_locust_users``, ``llm_locust_workers{state}``    gauge      the runner's users; the master's workers by state
``llm_locust_run_duration_seconds``                    gauge      since the test started
``llm_locust_collapsed_label_sets{family}``            gauge      label sets folded into ``__other__`` (see below)
=====================================================  =========  ===============================================

Labels are the series' tags (scenario, prompt, name, status, method...), made valid Prometheus label names
(``quantile``, ``le`` and names starting with ``__`` get a ``tag_`` prefix). Quantiles are over the whole run
(the summary's merged histograms, 0.5% relative accuracy); for windowed views use ``rate()`` of ``_sum`` and
``_count``.

Cardinality: at most ``--prometheus-max-series`` label sets (default 100) per family, admitted first come and
kept across scrapes (a series never moves); later label sets are folded, histograms merged and counters
added, into one series whose label values are all ``__other__``, and ``llm_locust_collapsed_label_sets``
says how many were folded.
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, make_wsgi_app, push_to_gateway
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from llm_metrics.engine import masking
from llm_metrics.engine.histogram import Histogram
from llm_metrics.engine.store import OTHER, Tags
from llm_metrics.engine.thresholds import evaluate

log = logging.getLogger(__name__)

PREFIX = "llm_locust_"
QUANTILES = (0.5, 0.9, 0.95, 0.99)
DEFAULT_MAX_LABEL_SETS = 100
PUSH_JOB = "llm_locust"
_RESERVED_LABELS = frozenset({"quantile", "le"})
_INVALID = re.compile(r"[^a-zA-Z0-9_]")

Labels = tuple[tuple[str, str], ...]


def family_name(metric: str) -> str:
    """``llm_ttft_ms`` -> ``llm_locust_ttft_ms``; ``http_reqs`` -> ``llm_locust_http_reqs`` (valid characters)."""
    base = metric[4:] if metric.startswith("llm_") else metric
    return PREFIX + _INVALID.sub("_", base)


def label_name(tag: str) -> str:
    """A valid Prometheus label name for a tag key, never a reserved one."""
    name = _INVALID.sub("_", tag) or "tag"
    if name[0].isdigit() or name.startswith("__") or name in _RESERVED_LABELS:
        name = "tag_" + name
    return name


def labels_of(tags: Tags) -> Labels:
    return tuple(sorted((label_name(k), v) for k, v in tags))


class LabelLimiter:
    """At most ``max_sets`` label sets per family, first come first admitted; later ones fold into ``__other__``."""

    def __init__(self, max_sets: int = DEFAULT_MAX_LABEL_SETS) -> None:
        self.max_sets = max(1, max_sets)
        self._admitted: dict[str, set[Labels]] = {}
        self._folded: dict[str, set[Labels]] = {}

    def admit(self, family: str, labels: Labels) -> Labels:
        seen = self._admitted.setdefault(family, set())
        if labels in seen:
            return labels
        if len(seen) < self.max_sets:
            seen.add(labels)
            return labels
        folded = self._folded.setdefault(family, set())
        if len(folded) < 100_000:  # the store bounds its series anyway; this only bounds the bookkeeping
            folded.add(labels)
        return tuple((k, OTHER) for k, _ in labels)

    def folded(self) -> dict[str, int]:
        return {fam: len(sets) for fam, sets in sorted(self._folded.items()) if sets}


def _fmt_quantile(q: float) -> str:
    return repr(q)


class LLMCollector(Collector):
    """Reads the merged store, thresholds and runner of ``metrics.environment`` at every scrape."""

    def __init__(self, metrics: Any, max_label_sets: int = DEFAULT_MAX_LABEL_SETS) -> None:
        self.metrics = metrics
        self.limiter = LabelLimiter(max_label_sets)

    def describe(self) -> list[Metric]:
        return []  # the families depend on the data: nothing to describe up front (no collect at registration)

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        store = m.store
        yield from self._trends(store.histograms())
        yield from self._counters(store.counters())
        yield from self._rates(store.rates())
        yield from self._thresholds()
        yield from self._runner()
        duration = store.duration_s()
        if duration is not None:
            g = Metric(PREFIX + "run_duration_seconds", "Seconds since the test started (to its stop).", "gauge")
            g.add_sample(PREFIX + "run_duration_seconds", {}, duration)
            yield g
        folded = Metric(
            PREFIX + "collapsed_label_sets",
            "Label sets beyond --prometheus-max-series folded into one series labelled __other__, per family.",
            "gauge",
        )
        for fam, n in self.limiter.folded().items():
            folded.add_sample(PREFIX + "collapsed_label_sets", {"family": fam}, n)
        yield folded

    def _trends(self, series: Iterator[tuple[str, Tags, Histogram]]) -> Iterator[Metric]:
        groups: dict[str, dict[Labels, Histogram]] = {}
        for metric, tags, h in series:  # the store hands out copies: merging into them is safe
            fam = family_name(metric)
            labels = self.limiter.admit(fam, labels_of(tags))
            g = groups.setdefault(fam, {})
            cur = g.get(labels)
            if cur is None:
                g[labels] = h
            else:
                cur.merge(h)
        ps = [q * 100.0 for q in QUANTILES]
        for fam, g in groups.items():
            out = Metric(
                fam, f"Suite metric {fam} over the run: quantiles of the merged histogram, count, sum.", "summary"
            )
            for labels, h in g.items():
                ld = dict(labels)
                for q, v in zip(QUANTILES, h.percentiles(ps), strict=True):
                    if v is not None:
                        out.add_sample(fam, {**ld, "quantile": _fmt_quantile(q)}, v)
                out.add_sample(fam + "_count", ld, h.count)
                out.add_sample(fam + "_sum", ld, h.sum)
            yield out

    def _counters(self, series: Iterator[tuple[str, Tags, float]]) -> Iterator[Metric]:
        groups: dict[str, dict[Labels, float]] = {}
        for metric, tags, v in series:
            fam = family_name(metric).removesuffix("_total")
            labels = self.limiter.admit(fam, labels_of(tags))
            g = groups.setdefault(fam, {})
            g[labels] = g.get(labels, 0) + v
        for fam, g in groups.items():
            out = Metric(fam, f"Suite counter {fam}.", "counter")
            for labels, v in g.items():
                out.add_sample(fam + "_total", dict(labels), v)
            yield out

    def _rates(self, series: Iterator[tuple[str, Tags, Any]]) -> Iterator[Metric]:
        groups: dict[str, dict[Labels, list[int]]] = {}
        for metric, tags, rv in series:
            fam = family_name(metric)
            labels = self.limiter.admit(fam, labels_of(tags))
            cell = groups.setdefault(fam, {}).setdefault(labels, [0, 0])
            cell[0] += rv.hits
            cell[1] += rv.total
        for fam, g in groups.items():
            hits = Metric(fam + "_hits", f"Suite rate {fam}: events that count as hits.", "counter")
            samples = Metric(fam + "_samples", f"Suite rate {fam}: all events (the denominator).", "counter")
            for labels, (h, n) in g.items():
                hits.add_sample(fam + "_hits_total", dict(labels), h)
                samples.add_sample(fam + "_samples_total", dict(labels), n)
            yield hits
            yield samples

    def _thresholds(self) -> Iterator[Metric]:
        ths = self.metrics.thresholds
        if not ths:
            return
        ok = Metric(PREFIX + "threshold_ok", "Threshold state at this scrape: 1 passes, 0 fails.", "gauge")
        observed = Metric(PREFIX + "threshold_observed", "The value a threshold saw (absent without data).", "gauge")
        for r in evaluate(ths, self.metrics.store):
            labels = {"threshold": r.threshold.name, "expression": r.threshold.expression}
            ok.add_sample(PREFIX + "threshold_ok", labels, 1.0 if r.ok else 0.0)
            if r.observed is not None and math.isfinite(r.observed):
                observed.add_sample(PREFIX + "threshold_observed", labels, r.observed)
        yield ok
        yield observed

    def _runner(self) -> Iterator[Metric]:
        runner = getattr(self.metrics.environment, "runner", None)
        if runner is None:
            return
        users = Metric(PREFIX + "users", "Users running now (over every worker on the master).", "gauge")
        users.add_sample(PREFIX + "users", {}, float(getattr(runner, "user_count", 0) or 0))
        yield users
        clients = getattr(runner, "clients", None)
        if clients is not None:
            counts: dict[str, int] = {"ready": 0, "spawning": 0, "running": 0, "missing": 0}
            for c in list(clients.values()):
                counts[c.state] = counts.get(c.state, 0) + 1
            workers = Metric(PREFIX + "workers", "Workers known to the master, by Locust state.", "gauge")
            for state, n in sorted(counts.items()):
                workers.add_sample(PREFIX + "workers", {"state": state}, n)
            yield workers


def add_exporter_arguments(parser: Any) -> None:
    def add(flag: str, kind: type | None, default: Any, help: str, env: str = "") -> None:
        """One flag of the master (``kind`` None: text); its env variable is its name in capitals unless given."""
        env = env or flag.removeprefix("--").replace("-", "_").upper()
        parser.add_argument(
            flag, env_var=env, type=kind, default=default, include_in_web_ui=False, help=f"{help} (env {env})"
        )

    max_sets = DEFAULT_MAX_LABEL_SETS
    add("--prometheus-port", int, 0, "Serve the suite's metrics for Prometheus on this port of the master; 0: off")
    add("--prometheus-host", None, "127.0.0.1", "Address the exporter binds; 0.0.0.0 to be scraped from elsewhere")
    add("--prometheus-linger", float, 0.0, "Seconds the exporter keeps serving after the run, for a last scrape")
    add("--prometheus-max-series", int, max_sets, "Label sets per metric family; more fold into one __other__ series")
    push = "Pushgateway URL: push the final metrics there at the end of the run, job llm_locust, grouping key suite"
    add("--pushgateway", None, "", push, env="PUSHGATEWAY_URL")


class Exporter:
    """The registry, the optional HTTP server and the end-of-run push of one process."""

    def __init__(self, metrics: Any, *, max_label_sets: int = DEFAULT_MAX_LABEL_SETS) -> None:
        self.metrics = metrics
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = LLMCollector(metrics, max_label_sets)
        self.registry.register(self.collector)
        self.server: Any = None
        self.address: tuple[str, int] | None = None
        self.cut_linger: Any = lambda: None

    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host:port`` (gevent WSGI server, cooperative with Locust); returns the bound address."""
        from gevent.pywsgi import WSGIServer

        server = WSGIServer((host, port), make_wsgi_app(self.registry), log=None, error_log=log)
        server.start()
        self.server = server
        self.address = (host, int(server.server_port))
        return self.address

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(timeout=1)
            self.server = None

    def push(self, url: str, grouping_key: dict[str, str], timeout: float = 10.0) -> bool:
        try:
            push_to_gateway(url, job=PUSH_JOB, registry=self.registry, grouping_key=grouping_key, timeout=timeout)
        except Exception as exc:  # the URL may carry credentials: log its scheme://host:port, mask the error
            reason = masking.redact(str(exc), [url, *masking.url_secrets(url)])
            log.error("pushgateway %s: push failed: %s", masking.safe_url(url), reason)
            return False
        log.info("metrics pushed to the pushgateway %s (job %s, %s)", masking.safe_url(url), PUSH_JOB, grouping_key)
        return True


def install_exporter(environment: Any, metrics: Any) -> Exporter | None:
    """Start the exporter of the master or local process as its options say; None when it is off.

    Called by ``llm_metrics.hooks`` at init where the runner is not a worker. A port that cannot be bound
    ends the process with status 2 and a message naming the option.
    """
    opts = environment.parsed_options
    if opts is None:
        return None
    port = int(getattr(opts, "prometheus_port", 0) or 0)
    push_url = str(getattr(opts, "pushgateway", "") or "")
    if port <= 0 and not push_url:
        return None
    exporter = Exporter(
        metrics, max_label_sets=int(getattr(opts, "prometheus_max_series", 0) or DEFAULT_MAX_LABEL_SETS)
    )
    if port > 0:
        host = str(getattr(opts, "prometheus_host", "") or "127.0.0.1")
        try:
            bound = exporter.serve(host, port)
        except OSError as exc:
            log.error("--prometheus-port %d: cannot listen on %s:%d: %s", port, host, port, exc)
            sys.exit(2)
        log.info("Prometheus exporter on http://%s:%d/metrics", *_shown(bound))
    linger = float(getattr(opts, "prometheus_linger", 0.0) or 0.0)
    import gevent.event

    done = gevent.event.Event()

    def _quit(**_kw: Any) -> None:
        if done.is_set():  # a second shutdown (SIGTERM or Ctrl-C while lingering) ends the linger
            return
        done.set()
        if push_url:
            exporter.push(push_url, {"suite": str(metrics.suite)})
        if exporter.server is not None and linger > 0:
            log.info("exporter: serving %.0f s more for a last scrape (--prometheus-linger)", linger)
            cut = gevent.event.Event()
            exporter.cut_linger = cut.set
            try:
                cut.wait(linger)
            except KeyboardInterrupt:
                log.info("exporter: linger cut short")
        exporter.stop()

    def _again(**_kw: Any) -> None:
        if done.is_set():
            exporter.cut_linger()

    environment.events.quit.add_listener(_quit)
    environment.events.quitting.add_listener(_again)
    environment.llm_exporter = exporter
    return exporter


def _shown(addr: tuple[str, int]) -> tuple[str, int]:
    host, port = addr
    return ("127.0.0.1" if host in ("", "0.0.0.0") else host), port


GAUGES = (
    "threshold_ok",
    "threshold_observed",
    "users",
    "workers",
    "run_duration_seconds",
    "collapsed_label_sets",
)


def exported_names(kinds: dict[str, str]) -> set[str]:
    """Every sample name the exporter can produce for metrics of these kinds (name -> trend/counter/rate),
    plus its own gauges: what a dashboard or an alert rule may refer to."""
    out = {PREFIX + g for g in GAUGES}
    for metric, kind in kinds.items():
        fam = family_name(metric)
        if kind == "trend":
            out |= {fam, fam + "_count", fam + "_sum"}
        elif kind == "counter":
            out.add(fam.removesuffix("_total") + "_total")
        elif kind == "rate":
            out |= {fam + "_hits_total", fam + "_samples_total"}
    return out


def parse_families(text: str) -> dict[str, Any]:
    """Families of an exposition text by name (a helper for tests and tools)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f for f in text_string_to_metric_families(text)}


def sample_values(fam: Any, suffix: str = "", /, **labels: str) -> list[float]:
    """Values of the samples ``fam.name + suffix`` whose labels contain ``labels``."""
    want = fam.name + suffix
    return [s.value for s in fam.samples if s.name == want and all(s.labels.get(k) == v for k, v in labels.items())]


__all__: Sequence[str] = (
    "DEFAULT_MAX_LABEL_SETS",
    "PREFIX",
    "QUANTILES",
    "Exporter",
    "LLMCollector",
    "LabelLimiter",
    "add_exporter_arguments",
    "exported_names",
    "family_name",
    "install_exporter",
    "label_name",
    "parse_families",
    "sample_values",
)
