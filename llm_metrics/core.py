"""The metrics core: one ``LLMMetrics`` per Locust environment, fed by the request events.

It records every request into the k6 views (``http_req_duration``, ``http_req_failed``, ``http_reqs``) and,
when its ``context["llm"]`` holds a ``CallRecord``, the LLM metrics of that call; a worker sends what it
recorded since its last report (``on_report_to_master``), the master merges it (``on_worker_report``), so
percentiles are computed once, on merged histograms. It also runs the per-run greenlets (abortOnFail checks,
the Users gauge, the load generator's self-measurement) and knows the secrets to mask.

Its extension points are declared in ``llm_metrics.extensions``; the end of a run (verdict, summaries, exit
code) is ``llm_metrics.verdict``; Locust's events reach it through ``llm_metrics.hooks``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import gevent

from llm_metrics.engine import adherence, masking
from llm_metrics.engine.calls import GoodputSLO, meets_slo
from llm_metrics.engine.nodata import CallCounts
from llm_metrics.engine.store import MetricStore
from llm_metrics.engine.tags import Tags, TagsLike, make_tags
from llm_metrics.engine.thresholds import Threshold, ThresholdResult, abort_failures
from llm_metrics.engine.timeseries import TimeSeries
from llm_metrics.extensions import Extensions
from llm_metrics.monitors.load_limit import BAND_TAG, bands_from_store
from llm_metrics.monitors.selfmon import CLIENT_CPU, CLIENT_LOOP_LAG, SaturationRules, SelfMonitor, judge
from llm_metrics.state import find_state

log = logging.getLogger(__name__)

READ_DELAY = "llm_read_delay_ms"
WIRE_KEY = "llm_metrics"
COUNT_TAGS_CACHED = 4096
"""Distinct tag sets whose sorted form ``LLMMetrics.count`` keeps (further ones are sorted on every count)."""
SECRET_OPTIONS = ("api_key", "loadtest_token", "password", "admin_password", "web_login_password", "pushgateway")


class LLMMetrics(Extensions):
    """Per-environment metrics state: the store, the per-second series, thresholds and outputs; its extension
    points (``before_verdict``, ``json_sections``, ``trust_checks``, ...) are declared in ``extensions``."""

    def __init__(
        self,
        environment: Any,
        suite: str,
        thresholds: list[Threshold],
        goodput: GoodputSLO,
        thresholds_source: str,
        summary_path: str,
    ) -> None:
        super().__init__()
        self.environment = environment
        self.suite = suite
        self.thresholds = thresholds
        self.thresholds_source = thresholds_source
        self.goodput = goodput
        self.summary_path = summary_path
        self.store = MetricStore()
        self.series = TimeSeries()
        self.aborted_by: list[ThresholdResult] = []
        self.results: list[ThresholdResult] | None = None
        self.report_text = ""
        """The console report, printed by ``print_report`` after Locust's own tables (its ``quit`` event)."""
        self._abort_greenlet: gevent.Greenlet | None = None
        self.workers_seen: set[str] = set()
        self.startup_secrets: list[str] = [
            str(getattr(environment.parsed_options, k, "") or "") for k in SECRET_OPTIONS if environment.parsed_options
        ]
        """The secret options' values at start-up: still masked after the web UI replaced or dropped them."""
        self.window: MetricStore | None = None
        """A second store fed like ``store`` (requests, counts, worker reports) while set: the capacity search
        opens one per step (``open_window``) to judge the step on its own data."""
        self.last_report_at: dict[str, float] = {}
        """Master: wall-clock time of each worker's last report (by client id)."""
        self.excluded_workers: set[str] = set()
        """Master: workers whose reports are not merged (refused for another suite version)."""
        self._users_greenlet: gevent.Greenlet | None = None
        self.calls = [0, 0]
        """LLM calls [made, succeeded] merged over the workers (a worker: since its last report)."""
        self._calls_sent = [0, 0]
        self.tallies: dict[str, float] = {}
        """Counts merged on the master outside the metric tables, e.g. ``issued:<scenario>`` (open model)."""
        self._tallies_sent: dict[str, float] = {}
        self.arrival_ledger: adherence.ArrivalLedger | None = None
        """Master or local runner, set by an open-model suite at test start: the arrivals the run should issue."""
        self.accept_schedule_miss = False
        self.accept_saturation = False
        """``--accept-saturation``: a saturated load generator is reported, not a reason for exit 98."""
        self.saturation = SaturationRules()
        """The load-generator guard's limits (``saturation:`` of the thresholds file)."""
        self.selfmon: SelfMonitor | None = None
        """This process's loop-lag probe and CPU sampler, while a test runs (not on the master)."""
        self.runs = 0
        """Runs started in this process (a web UI session can start several)."""
        self._count_tags: dict[tuple[tuple[str, Any], ...], Tags] = {}
        """``count``'s tags dicts (as item tuples) -> their sorted store tags."""

    def reset(self) -> None:
        """Empty the LLM metrics and the series (Locust's "Reset stats", or a new run in the same process);
        a running test goes on counting from now."""
        running = self.store.started_at is not None and self.store.stopped_at is None
        self.store.clear()
        self.series.clear()
        if self.window is not None:
            self.window.clear()
            self.window.mark_start()
        if running:
            self.store.mark_start()
        for hook in self.on_reset:
            hook()

    # -- recording ---------------------------------------------------------------------------------

    def tally(self, key: str, n: float = 1) -> None:
        """Count ``key`` (merged on the master, not a metric): e.g. ``issued:chat_stream``."""
        self.tallies[key] = self.tallies.get(key, 0) + n

    def count(self, metric: str, tags: TagsLike, n: float = 1) -> None:
        """Add ``n`` to a counter (into the step window too, when one is open). A dict's tags are sorted into
        the store's form once per distinct content (cached: a dropped arrival is counted per arrival)."""
        if not isinstance(tags, tuple):
            key = tuple(tags.items())
            t = self._count_tags.get(key)
            if t is None:
                t = make_tags(tags)
                if len(self._count_tags) < COUNT_TAGS_CACHED and all(type(v) is str for _, v in key):
                    self._count_tags[key] = t  # str values only: 1, 1.0 and True are equal keys, not equal tags
            tags = t
        self.store.inc(metric, tags, n)
        if self.window is not None:
            self.window.inc(metric, tags, n)

    def add(self, metric: str, tags: dict[str, str], value: float) -> None:
        """Record one value of a trend metric (into the step window too, when one is open)."""
        self.store.add(metric, tags, value)
        if self.window is not None:
            self.window.add(metric, tags, value)

    def open_window(self) -> MetricStore:
        """Start a fresh window store (replacing any open one); it sees what is recorded or merged from now."""
        window = MetricStore()
        window.mark_start()
        self.window = window
        return window

    def close_window(self) -> MetricStore | None:
        """Stop feeding the window store; returns it (its duration ends now)."""
        window, self.window = self.window, None
        if window is not None:
            window.mark_stop()
        return window

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int = 0,
        response: Any = None,
        context: dict[str, Any] | None = None,
        exception: BaseException | None = None,
        **_kw: Any,
    ) -> None:
        ctx = context or {}
        rec = ctx.get("llm")
        if rec is not None:
            status: int = rec.status
        else:
            status = getattr(response, "status_code", 0) or 0 if response is not None else 0
        failed = exception is not None
        scenario = str(ctx.get("scenario", "default"))
        blocked = ctx.get("blocked")
        delays = ctx.get("llm_read_delays_ms") if rec is not None else None
        tokens = None
        ttft_ms = None
        good = False
        if rec is not None:
            self.calls[0] += 1
            if rec.ok:
                self.calls[1] += 1
                good = meets_slo(rec, self.goodput)  # once, for the store's goodput and the series
                tokens = rec.output_tokens
                if rec.t_first_content is not None and rec.stream:
                    ttft_ms = (rec.t_first_content - rec.t_start) * 1000.0
        # the store, and the capacity search's step window when one is open, see the same request
        for store in (self.store,) if self.window is None else (self.store, self.window):
            store.record_request(
                name=name,
                method=request_type,
                status=status,
                scenario=scenario,
                response_time_ms=response_time,
                failed=failed,
                blocked=blocked,
            )
            if rec is not None:
                store.record_call(rec, self.goodput, good if rec.ok else None)
            if delays:
                store.add_many(READ_DELAY, {"scenario": scenario}, delays)
        now = time.time()
        if context is not None:  # the same second for every per-second series of this call (live charts)
            context["llm_ended_at"] = now
        self.series.record(
            now,
            failed=failed,
            blocked=status == 429 or bool(blocked),
            total_ms=None if failed else response_time,
            ttft_ms=ttft_ms,
            good=good,
            output_tokens=tokens,
        )

    # -- worker -> master --------------------------------------------------------------------------

    def on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        calls = [self.calls[0] - self._calls_sent[0], self.calls[1] - self._calls_sent[1]]
        self._calls_sent = list(self.calls)
        tallies = {k: v - self._tallies_sent.get(k, 0) for k, v in self.tallies.items()}
        self._tallies_sent = dict(self.tallies)
        data[WIRE_KEY] = {
            "store": self.store.take_delta(),
            "series": self.series.take_delta(),
            "calls": calls,
            "tallies": {k: v for k, v in tallies.items() if v},
        }

    def on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        wire = data.get(WIRE_KEY)
        if not wire or client_id in self.excluded_workers:
            return
        self.workers_seen.add(client_id)
        self.last_report_at[client_id] = time.time()
        self.store.merge_wire(wire["store"])
        if self.window is not None:
            self.window.merge_wire(wire["store"])
        self.series.merge_wire(wire["series"])
        calls = wire.get("calls")
        if isinstance(calls, list) and len(calls) == 2:
            self.calls[0] += int(calls[0])
            self.calls[1] += int(calls[1])
        tallies = wire.get("tallies")
        if isinstance(tallies, dict):
            for key, n in tallies.items():
                self.tally(str(key), float(n))

    # -- users over time (the per-second series' gauge) -------------------------------------------

    def start_user_sampling(self) -> None:
        if self._users_greenlet is None:
            self._users_greenlet = gevent.spawn(self._sample_users)

    def stop_user_sampling(self) -> None:
        _kill(self._users_greenlet)
        self._users_greenlet = None

    def _sample_users(self) -> None:
        while True:  # the master's user_count is the total over its workers
            runner = self.environment.runner
            if runner is not None:
                self.series.set_users(runner.user_count)
            gevent.sleep(1.0)

    # -- verdict -----------------------------------------------------------------------------------

    def start_abort_checks(self) -> None:
        if self._abort_greenlet is not None or not any(t.abort_on_fail for t in self.thresholds):
            return
        if self.verdict is not None:  # a custom verdict (the capacity search) judges the run itself
            return
        self._abort_greenlet = gevent.spawn(self._abort_loop)

    def stop_abort_checks(self) -> None:
        _kill(self._abort_greenlet)
        self._abort_greenlet = None

    def _abort_loop(self) -> None:
        while True:
            gevent.sleep(1.0)
            elapsed = self.store.duration_s() or 0.0
            failing = abort_failures(self.thresholds, self.store, elapsed)
            if failing:
                self.aborted_by = failing
                names = ", ".join(f"{r.threshold.name} {r.threshold.expression}" for r in failing)
                log.error("threshold with abortOnFail crossed (%s): stopping the test", names)
                self._abort_greenlet = None
                runner = self.environment.runner
                opts = self.environment.parsed_options
                if opts is not None and getattr(opts, "headless", False):
                    runner.quit()
                else:
                    runner.stop()
                return

    def arrivals_section(self) -> dict[str, Any] | None:
        """The merged open-model ledger (``adherence.section``); None when no open-model schedule ran."""
        ledger = self.arrival_ledger
        if ledger is None or ledger.started_at is None:
            return None
        issued = {k.split(":", 1)[1]: v for k, v in self.tallies.items() if k.startswith("issued:")}
        dropped = {k.split(":", 1)[1]: v for k, v in self.tallies.items() if k.startswith("dropped:")}
        return adherence.section(ledger, issued, dropped, time.time(), accept=self.accept_schedule_miss)

    def start_self_monitor(self, process: str) -> None:
        """Probe this process's event-loop lag and CPU share until ``stop_self_monitor`` (``selfmon``)."""
        if self.selfmon is None:
            tags = {"process": process}
            self.selfmon = SelfMonitor(
                lambda metric, value: self.add(metric, tags, value),
                record_banded=lambda metric, band, value: self.add(metric, {**tags, BAND_TAG: band}, value),
            )
            self.selfmon.start()

    def stop_self_monitor(self) -> None:
        if self.selfmon is not None:
            self.selfmon.stop()
            self.selfmon = None

    def load_generator(self) -> tuple[list[str], dict[str, Any]]:
        """The saturation guard on the merged self-measurements: findings and figures."""
        lag, cpu = self.store.select_hist(CLIENT_LOOP_LAG), self.store.select_hist(CLIENT_CPU)
        return judge(lag, cpu, self.saturation, bands_from_store(self.store))

    def call_counts(self) -> CallCounts:
        return CallCounts(total=self.calls[0], ok=self.calls[1])

    def print_report(self) -> None:
        if self.report_text:
            sys.stdout.write("\n" + self.report_text)
            sys.stdout.flush()

    def secrets(self) -> list[str]:
        """Every secret value this process knows: the secret options (as set now, and as they were at
        start-up), the credentials in URL options, and what the suites add (``secret_sources``)."""
        opts = self.environment.parsed_options
        vals = [str(getattr(opts, k, "") or "") for k in SECRET_OPTIONS] if opts is not None else []
        vals += masking.url_secrets(str(getattr(opts, "pushgateway", "") or "")) if opts is not None else []
        vals += self.startup_secrets
        found = find_state(self.environment)
        vals += [str(v) for v in found.extra_secrets] if found is not None else []
        for source in self.secret_sources:
            vals += source()
        return [v for v in vals if len(v) >= 3]  # shorter ones are refused at start-up (--allow-short-secrets)

    def metadata(self) -> dict[str, Any]:
        env = self.environment
        opts = env.parsed_options
        meta: dict[str, Any] = {
            "suite": self.suite,
            "host": env.host,
            "thresholds_file": self.thresholds_source,
            "duration_s": self.store.duration_s(),
            "workers_reported": len(self.workers_seen),
        }
        if opts is not None:
            knobs = {}
            for k, v in sorted(vars(opts).items()):
                if k in SECRET_OPTIONS or not isinstance(v, str | int | float | bool) or v is None:
                    continue
                knobs[k] = v
            meta["options"] = knobs
        return meta


def _kill(greenlet: gevent.Greenlet | None) -> None:
    """Stop a per-run greenlet (without waiting for it), if there is one."""
    if greenlet is not None:
        greenlet.kill(block=False)
