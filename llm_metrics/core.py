"""Locust glue of the metrics engine: request events in, merged metrics, SLO verdict and summaries out.

``install_metrics(events, suite=..., default_thresholds=...)`` (called by a locustfile) adds the arguments and
the listeners of design.md section 3:

* every request event feeds the k6 views (``http_req_duration``, ``http_req_failed``, ``http_reqs``) and, when
  its ``context["llm"]`` holds a ``CallRecord``, the LLM metrics of that call;
* workers send what they recorded since their last report (``report_to_master``); the master merges it
  (``worker_report``), so percentiles are computed once, on merged histograms;
* on the master or the local runner only: ``abortOnFail`` thresholds are checked every second, and at quit
  every threshold is evaluated, the table printed, the JSON summary written and the exit code set
  (0 when every threshold passes, 99 when one fails, as k6 does; 98 when every threshold passed but the verdict
  is not trustworthy: data of the run is missing, e.g. a worker was lost, no LLM call succeeded, the open-model
  schedule was not kept or the load generator was saturated; ``verdict_trustworthy`` and
  ``untrustworthy_because`` in the JSON);
* every threshold without data says why (``nodata``); the output files are checked at start-up (an
  unwritable path: exit 2) and written atomically at the end (a failed write is reported, the verdict stands).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import gevent
import yaml
from locust.runners import MasterRunner, WorkerRunner

from llm_metrics.cluster.health import add_cluster_arguments, install_cluster
from llm_metrics.cluster.workers import install_worker_tracking
from llm_metrics.engine import adherence, masking
from llm_metrics.engine.calls import GoodputSLO, meets_slo
from llm_metrics.engine.config import safe_load_unique
from llm_metrics.engine.nodata import CallCounts, explain
from llm_metrics.engine.store import HTTP_REQ_FAILED, MetricStore
from llm_metrics.engine.thresholds import (
    MetricRegistry,
    Threshold,
    ThresholdError,
    ThresholdResult,
    abort_failures,
    default_registry,
    evaluate,
    parse_thresholds,
)
from llm_metrics.engine.timeseries import TimeSeries
from llm_metrics.extensions import Extensions
from llm_metrics.locust_fixes import cache_default_args, install_clock_refresh, install_gc_tuning
from llm_metrics.monitors.selfmon import (
    ADVICE,
    CLIENT_CPU,
    CLIENT_LOOP_LAG,
    SaturationError,
    SaturationRules,
    SelfMonitor,
    judge,
    parse_saturation,
)
from llm_metrics.monitors.server_scrape import add_server_scrape_arguments, install_server_scrape
from llm_metrics.outputs import summary
from llm_metrics.outputs.exporter import add_exporter_arguments, install_exporter
from llm_metrics.outputs.files import unwritable_reason, write_atomic
from llm_metrics.outputs.live import install_live
from llm_metrics.outputs.requests_log import add_requests_log_arguments, install_requests_log
from llm_metrics.state import find_state, state

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
EXIT_THRESHOLDS_FAILED = 99
EXIT_NOT_TRUSTWORTHY = 98
"""Every threshold passed, but data is missing (``trust_checks``): the pass cannot be trusted."""
READ_DELAY = "llm_read_delay_ms"
WIRE_KEY = "llm_metrics"
SECRET_OPTIONS = ("api_key", "loadtest_token", "password", "admin_password", "web_login_password", "pushgateway")


class ConfigError(ValueError):
    """A thresholds file that cannot be used; the message names the file and the key."""


def load_slo_file(path: str | Path, registry: MetricRegistry) -> tuple[list[Threshold], GoodputSLO]:
    """Read ``thresholds:`` and ``goodput:`` from a YAML file; raise ThresholdError/ConfigError naming the key."""
    ths, gp, _ = load_slo_config(path, registry)
    return ths, gp


def load_slo_config(path: str | Path, registry: MetricRegistry) -> tuple[list[Threshold], GoodputSLO, SaturationRules]:
    """``load_slo_file`` plus the ``saturation:`` rules of the load-generator guard (``selfmon``)."""
    p = Path(path)
    source = str(path)
    try:
        data = safe_load_unique(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{source}: thresholds file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the file: {exc.strerror or exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid YAML: nesting too deep") from None
    except yaml.constructor.ConstructorError as exc:
        if exc.problem and exc.problem.startswith("duplicate key") and exc.problem_mark is not None:
            line = exc.problem_mark.line + 1
            raise ConfigError(f"{source}: line {line}: {exc.problem}: each key may appear once") from None
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with 'thresholds' and optionally 'goodput'")
    known = {"thresholds", "goodput", "fail_on_no_data", "saturation"}
    unknown = sorted(set(data) - known, key=str)  # keys: any YAML scalar
    if unknown:
        raise ConfigError(
            f"{source}: {unknown[0]}: unknown key (expected thresholds, goodput, fail_on_no_data, saturation)"
        )
    try:
        saturation = parse_saturation(data.get("saturation"), source)
    except SaturationError as exc:
        raise ConfigError(str(exc)) from None
    fond = data.get("fail_on_no_data", False)
    if not isinstance(fond, bool):
        raise ConfigError(f"{source}: fail_on_no_data: expected true or false, got {fond!r}")
    ths = parse_thresholds(data.get("thresholds"), source, registry=registry, fail_on_no_data=fond)
    gp = data.get("goodput") or {}
    if not isinstance(gp, dict):
        raise ConfigError(f"{source}: goodput: expected a mapping such as {{ttft_ms: 1000, tpot_ms: 100}}")
    limits: dict[str, float] = {}
    for key, val in gp.items():
        if key not in ("ttft_ms", "ttfo_ms", "tpot_ms", "total_ms"):
            raise ConfigError(f"{source}: goodput.{key}: unknown key (expected ttft_ms, ttfo_ms, tpot_ms, total_ms)")
        if isinstance(val, bool) or not isinstance(val, int | float) or val <= 0:
            raise ConfigError(f"{source}: goodput.{key}: expected a number of milliseconds > 0, got {val!r}")
        limits[key] = float(val)
    return ths, GoodputSLO(**limits), saturation


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

    def count(self, metric: str, tags: dict[str, str], n: float = 1) -> None:
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
        store = self.store
        blocked = ctx.get("blocked")
        store.record_request(
            name=name,
            method=request_type,
            status=status,
            scenario=scenario,
            response_time_ms=response_time,
            failed=failed,
            blocked=blocked,
        )
        tokens = None
        ttft_ms = None
        good = False
        window = self.window
        if window is not None:
            window.record_request(
                name=name,
                method=request_type,
                status=status,
                scenario=scenario,
                response_time_ms=response_time,
                failed=failed,
                blocked=blocked,
            )
            if rec is not None:
                window.record_call(rec, self.goodput)
        if rec is not None:
            store.record_call(rec, self.goodput)
            self.calls[0] += 1
            if rec.ok:
                self.calls[1] += 1
                good = meets_slo(rec, self.goodput)
                tokens = rec.output_tokens
                if rec.t_first_content is not None and rec.stream:
                    ttft_ms = (rec.t_first_content - rec.t_start) * 1000.0
            delays = ctx.get("llm_read_delays_ms")
            if delays:
                store.add_many(READ_DELAY, {"scenario": scenario}, delays)
                if window is not None:
                    window.add_many(READ_DELAY, {"scenario": scenario}, delays)
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
        if self._users_greenlet is not None:
            self._users_greenlet.kill(block=False)
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
        if self._abort_greenlet is not None:
            self._abort_greenlet.kill(block=False)
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

    def finish(self) -> int | None:
        """Evaluate, print, write; return the exit code (None when there are no thresholds and nothing to flag).

        A file that cannot be written at this point is reported in the console; the verdict and the exit
        code stand (the paths were checked at start-up, ``check_output_paths``).
        """
        for hook in self.before_verdict:
            hook(self)
        override = self.verdict(self) if self.verdict is not None else None
        results = override[0] if override is not None else evaluate(self.thresholds, self.store)
        self.results = results = self.explain_no_data(results)
        meta = self.metadata()
        text = summary.console_report(results, self.store, title=f"LLM load test: {self.suite}")
        for section in self.text_sections:
            text += "\n" + section()
        if self.aborted_by:
            text += "\nRun aborted early by abortOnFail threshold(s).\n"
        arrivals = self.arrivals_section()
        if arrivals is not None:
            text += "\n" + format_arrivals(arrivals)
        saturated, generator = self.load_generator()
        generator["accepted"] = self.accept_saturation
        text += "\n" + format_load_generator(generator)
        untrusted = self.untrusted_reasons()
        if not self.accept_saturation:
            untrusted += [f"load generator saturated: {finding}" for finding in saturated]
        if arrivals is not None and not arrivals["accepted"] and self.verdict is None:
            # (a custom verdict, the capacity search, overloads on purpose and judges each step itself)
            untrusted += arrivals["problems"]
        if untrusted:
            text += "\nVERDICT NOT TRUSTWORTHY:\n" + "".join(f"  - {reason}\n" for reason in untrusted)
        self.report_text = summary.redact(text, self.secrets())
        doc = summary.json_summary(results, self.store, meta)
        if override is not None:
            doc["ok"] = override[1]
        doc["series"] = self.series.to_json()
        for name, fn in self.json_sections.items():
            doc[name] = fn()
        if arrivals is not None:
            doc["arrivals"] = arrivals
        doc["load_generator"] = generator
        doc["llm_calls"] = {"made": self.calls[0], "succeeded": self.calls[1]}
        doc["aborted_by"] = [f"{r.threshold.name} {r.threshold.expression}" for r in self.aborted_by]
        doc["verdict_trustworthy"] = not untrusted
        doc["untrustworthy_because"] = untrusted
        if self.summary_path:
            try:
                out = write_atomic(
                    self.summary_path, summary.redact(json.dumps(doc, indent=2, default=str), self.secrets())
                )
            except OSError as exc:  # the verdict and the exit code must not be lost for want of a file
                log.error("JSON summary not written to %s: %s", self.summary_path, exc)
                self.report_text += f"JSON summary NOT written to {self.summary_path}: {exc.strerror or exc}\n"
            else:
                self.report_text += f"JSON summary written to {out}\n"
        for after in self.after_summary:
            try:
                after(doc)
            except Exception as exc:  # an output's failure must not change the verdict
                log.exception("writing an output of the run failed")
                self.report_text += f"an output of the run failed: {exc}\n"
        passed_code = EXIT_NOT_TRUSTWORTHY if untrusted else 0
        if override is not None:
            return passed_code if override[1] and not self.aborted_by else EXIT_THRESHOLDS_FAILED
        if not self.thresholds:
            return EXIT_NOT_TRUSTWORTHY if untrusted else None
        return passed_code if all(r.ok for r in results) and not self.aborted_by else EXIT_THRESHOLDS_FAILED

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
            self.selfmon = SelfMonitor(lambda metric, value: self.add(metric, tags, value))
            self.selfmon.start()

    def stop_self_monitor(self) -> None:
        if self.selfmon is not None:
            self.selfmon.stop()
            self.selfmon = None

    def load_generator(self) -> tuple[list[str], dict[str, Any]]:
        """The saturation guard on the merged self-measurements: findings and figures."""
        return judge(self.store.select_hist(CLIENT_LOOP_LAG), self.store.select_hist(CLIENT_CPU), self.saturation)

    def call_counts(self) -> CallCounts:
        return CallCounts(total=self.calls[0], ok=self.calls[1])

    def explain_no_data(self, results: list[ThresholdResult]) -> list[ThresholdResult]:
        """The results, each one without data with the reason why (``nodata.explain``)."""
        calls = self.call_counts()
        out = []
        for r in results:
            if r.no_data and not r.no_data_reason:
                th = r.threshold
                reason = explain(th.metric, th.filter, self.store, calls, self.no_data_needs)
                r = dataclasses.replace(r, no_data_reason=reason)
            out.append(r)
        return out

    def untrusted_reasons(self) -> list[str]:
        """Why the verdict cannot be trusted: the suites' ``trust_checks``; LLM calls made and none succeeded; no
        LLM call made and no request succeeded either (the run measured nothing)."""
        reasons = [reason for check in self.trust_checks for reason in check()]
        made, ok = self.calls
        if made and not ok:
            reasons.append(f"no LLM call succeeded: nothing measured the target ({made} calls made, all failed)")
        elif not made:  # a run without LLM calls (e.g. the sidecar's read-only User) must still measure something
            requests = self.store.select_rate(HTTP_REQ_FAILED)
            total = requests.total if requests is not None else 0
            if total == 0 or requests is None or requests.hits == total:
                what = f"{total} requests made, all failed" if total else "no request was made"
                reasons.append(f"no request succeeded: nothing measured the target ({what})")
        return reasons

    def print_report(self) -> None:
        if self.report_text:
            sys.stdout.write("\n" + self.report_text)
            sys.stdout.flush()

    def write_worker_view(self, index: int) -> None:
        """A worker's own record of what it measured (no verdict), beside the master's summary."""
        if not self.summary_path:
            return
        out = Path(self.summary_path)
        out = out.with_name(f"{out.stem}.worker{index}{out.suffix}")
        doc = summary.json_summary(None, self.store, {**self.metadata(), "role": f"worker {index}"})
        for name, fn in self.json_sections.items():
            doc[name] = fn()
        try:
            write_atomic(out, summary.redact(json.dumps(doc, indent=2, default=str), self.secrets()))
        except OSError as exc:
            log.error("worker view not written to %s: %s", out, exc)

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


def format_arrivals(a: dict[str, Any]) -> str:
    """The console lines of the open-model ledger."""
    lines = [
        f"ARRIVALS (open model, {a['arrival']}): expected {a['expected']:.0f} in {a['scheduled_s']:.1f} s, "
        f"issued {a['issued']:.0f}, sent {a['sent']:.0f}, dropped {a['dropped']:.0f}"
    ]
    if a["problems"]:
        lines += [f"  SCHEDULE NOT KEPT: {p}" for p in a["problems"]]
        if a["accepted"]:
            lines.append("  accepted by --accept-schedule-miss: the verdict is not marked untrustworthy for it")
    return "\n".join(lines) + "\n"


def format_load_generator(g: dict[str, Any]) -> str:
    """The console lines of the generator's self-measurement, and the saturation verdict."""
    parts = []
    lag = g.get("loop_lag_ms")
    if lag:
        parts.append(f"event-loop lag p50 {lag['p50']:.2f} ms, p99 {lag['p99']:.2f} ms, max {lag['max']:.1f} ms")
    cpu = g.get("cpu_pct")
    if cpu:
        parts.append(f"CPU avg {cpu['avg']:.0f}%, max {cpu['max']:.0f}% of a core")
    head = "LOAD GENERATOR: " + ("; ".join(parts) if parts else "not measured (no process ran Users)")
    lines = [head]
    if g.get("saturated"):
        verdict = "accepted by --accept-saturation" if g.get("accepted") else "the verdict is not trustworthy"
        lines.append(f"LOAD GENERATOR SATURATED: its own timings are distorted; {verdict}")
        lines += [f"  - {finding}" for finding in g["findings"]]
        lines.append(f"  what to do: {ADVICE}")
    elif not g["rules"]["enabled"]:
        lines.append("  saturation guard off (saturation: false in the thresholds file)")
    return "\n".join(lines) + "\n"


def metrics(environment: Any) -> LLMMetrics:
    m = state(environment).metrics
    if m is None:
        raise RuntimeError("llm_metrics is not installed: call llm_metrics.hooks.install_metrics(events, ...)")
    return m


def _write_html_report(m: LLMMetrics, doc: dict[str, Any]) -> None:
    """``--html-report`` as it is at quit (the web UI form may have set it after start-up)."""
    path = getattr(m.environment.parsed_options, "html_report", "")
    if not path:
        return
    from llm_metrics.outputs.report_html import write_report

    try:
        out = write_report(doc, path, m.secrets())
    except OSError as exc:  # the verdict and the exit code must not be lost for want of a report file
        log.error("HTML report not written to %s: %s", path, exc)
        m.report_text += f"HTML report NOT written to {path}: {exc}\n"
        return
    m.report_text += f"HTML report written to {out}\n"


def mask_locust_html(m: LLMMetrics) -> None:
    """Locust's own ``--html`` report is written before ``quitting``: mask secrets and URL user information
    (e.g. of the host) in it as in the suite's outputs."""
    path = getattr(m.environment.parsed_options, "html_file", None)
    if not path or not Path(path).is_file():
        return
    try:
        text = Path(path).read_text(encoding="utf-8")
        masked = summary.redact(text, m.secrets())
        if masked != text:
            Path(path).write_text(masked, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        log.error("Locust's HTML report %s not masked: %s", path, exc)


OUTPUT_OPTIONS = (("summary_json", "--summary-json"), ("html_report", "--html-report"))


def check_output_paths(opts: Any) -> None:
    """Stop at start-up (exit 2) when an output file of the run (JSON summary, HTML report) cannot be written."""
    for attr, flag in OUTPUT_OPTIONS:
        path = str(getattr(opts, attr, "") or "")
        if not path:
            continue
        why = unwritable_reason(path)
        if why is not None:
            log.error("%s %s: cannot write the file there: %s", flag, path, why)
            sys.exit(2)


def add_metrics_arguments(parser: Any, suite: str, default_thresholds: str) -> None:
    parser.add_argument(
        "--thresholds",
        env_var="THRESHOLDS",
        default=default_thresholds,
        help="YAML file of k6-syntax thresholds and goodput SLOs (env THRESHOLDS)",
    )
    parser.add_argument(
        "--summary-json",
        env_var="SUMMARY_JSON",
        default=f"out/summary-{suite}.json",
        help="Where the JSON summary is written at the end; empty: not written (env SUMMARY_JSON)",
    )
    parser.add_argument(
        "--html-report",
        env_var="HTML_REPORT",
        default="",
        help="Where the HTML report (thresholds, tables, plots over time) is written at the end, after the "
        "thresholds are evaluated; empty: not written (env HTML_REPORT)",
    )
    parser.add_argument(
        "--accept-schedule-miss",
        env_var="ACCEPT_SCHEDULE_MISS",
        action="store_true",
        default=False,
        help="Open model: a schedule not kept (issued < 90%% of the expected arrivals, or over 5%% dropped) is "
        "reported but does not make the verdict untrustworthy (exit 98) (env ACCEPT_SCHEDULE_MISS)",
    )
    parser.add_argument(
        "--accept-saturation",
        env_var="ACCEPT_SATURATION",
        action="store_true",
        default=False,
        help="A saturated load generator (the saturation: rules of the thresholds file) is reported but does not "
        "make the verdict untrustworthy (exit 98) (env ACCEPT_SATURATION)",
    )


def install_metrics(
    events: Any,
    *,
    suite: str,
    default_thresholds: str,
    registry: MetricRegistry | None = None,
) -> None:
    """Register the metrics arguments and listeners; ``registry`` adds a suite's own metric names."""
    reg = registry or default_registry()
    cache_default_args()  # a worker's spawn message blocked the hub 150-650 ms (llm_metrics.locust_fixes)
    install_gc_tuning(events)  # garbage-collection pauses of tens of ms at 1,000 streams
    install_clock_refresh(events)  # -t armed on a stale clock stops runs early (all suites, not only open-model ones)
    for name in (READ_DELAY, CLIENT_LOOP_LAG, CLIENT_CPU):
        if name not in reg:
            reg.register(name, "trend")

    @events.init_command_line_parser.add_listener
    def _args(parser: Any, **_kw: Any) -> None:
        add_metrics_arguments(parser, suite, default_thresholds)
        add_exporter_arguments(parser)
        add_cluster_arguments(parser)
        add_requests_log_arguments(parser)
        add_server_scrape_arguments(parser)

    @events.init.add_listener
    def _init(environment: Any, **_kw: Any) -> None:
        opts = environment.parsed_options
        path = getattr(opts, "thresholds", default_thresholds) if opts is not None else default_thresholds
        summary_path = getattr(opts, "summary_json", "") if opts is not None else ""
        resolved = Path(path)
        if not resolved.is_absolute() and not resolved.exists() and (ROOT / resolved).exists():
            resolved = ROOT / resolved
        try:
            ths, gp, saturation = load_slo_config(resolved, reg) if path else ([], GoodputSLO(), SaturationRules())
        except (ThresholdError, ConfigError) as exc:
            log.error("%s", exc)
            sys.exit(2)
        if opts is not None and not getattr(opts, "worker", False):
            check_output_paths(opts)
        m = LLMMetrics(environment, suite, ths, gp, str(path), summary_path)
        m.accept_schedule_miss = bool(getattr(opts, "accept_schedule_miss", False))
        m.accept_saturation = bool(getattr(opts, "accept_saturation", False))
        m.saturation = saturation
        state(environment).metrics = m
        environment.events.request.add_listener(m.on_request)
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            environment.events.report_to_master.add_listener(m.on_report_to_master)
        if isinstance(runner, MasterRunner):
            environment.events.worker_report.add_listener(m.on_worker_report)
            install_worker_tracking(environment, m)
        install_cluster(environment, m)  # suite version check; a worker's watch on its master
        install_requests_log(environment, m)
        install_server_scrape(environment, m)
        install_live(environment, m)
        if not isinstance(runner, WorkerRunner):  # the web UI's "Reset stats" resets the LLM metrics too
            environment.events.reset_stats.add_listener(m.reset)
        if not isinstance(runner, WorkerRunner):
            install_exporter(environment, m)
        if not isinstance(runner, WorkerRunner):
            m.after_summary.append(lambda doc: _write_html_report(m, doc))
        if getattr(environment, "web_ui", None) is not None:
            from llm_metrics.outputs.webui import attach_web_ui

            attach_web_ui(environment)

    def _where_verdict_is(environment: Any) -> LLMMetrics | None:
        """The metrics of the master or local runner; None on a worker or when not installed."""
        m = state(environment).metrics
        return None if m is None or isinstance(environment.runner, WorkerRunner) else m

    @events.test_start.add_listener
    def _probe(environment: Any, **_kw: Any) -> None:
        m = state(environment).metrics
        runner = environment.runner
        if m is None or isinstance(runner, MasterRunner):
            return  # every process that runs Users measures itself
        m.start_self_monitor(f"worker{runner.worker_index}" if isinstance(runner, WorkerRunner) else "local")

    def _unprobe(environment: Any, **_kw: Any) -> None:
        m = state(environment).metrics
        if m is not None:
            m.stop_self_monitor()

    # the probe measures the run: it stops when the run stops (Locust's stop() itself blocks the hub 20-60 ms
    # in inspect.stack() just before test_stopping, gevent's monitor thread shows; a worker may get no
    # test_stopping, hence test_stop too)
    events.test_stopping.add_listener(_unprobe)
    events.test_stop.add_listener(_unprobe)

    @events.test_start.add_listener
    def _start(environment: Any, **_kw: Any) -> None:
        m = _where_verdict_is(environment)
        if m is None:
            return
        if m.runs:  # a new run in the same process (web UI) starts from empty LLM metrics and series
            m.reset()
            m.aborted_by = []
            m.results = None
        m.runs += 1
        m.store.mark_start()
        # the open-model ledger is per run (the web UI can start several): its counts start again with it
        m.tallies = {k: v for k, v in m.tallies.items() if not k.startswith(("issued:", "dropped:"))}
        m.start_abort_checks()
        m.start_user_sampling()

    @events.test_stopping.add_listener
    def _stopping(environment: Any, **_kw: Any) -> None:
        m = _where_verdict_is(environment)
        if m is not None and m.arrival_ledger is not None:
            m.arrival_ledger.stop(time.time())  # no arrival is due after this (calls in flight may finish)

    @events.test_stop.add_listener
    def _stop(environment: Any, **_kw: Any) -> None:
        m = _where_verdict_is(environment)
        if m is None:
            return
        m.store.mark_stop()
        if m.arrival_ledger is not None:
            m.arrival_ledger.stop(time.time())
        m.stop_abort_checks()
        m.stop_user_sampling()

    @events.quitting.add_listener
    def _quitting(environment: Any, **_kw: Any) -> None:
        m = state(environment).metrics
        if m is None:
            return
        if isinstance(environment.runner, WorkerRunner):
            m.write_worker_view(environment.runner.worker_index)
            return
        mask_locust_html(m)
        code = m.finish()
        if code is not None:
            environment.process_exit_code = code

        # the quit event comes after Locust has printed its own tables: the verdict is the last thing shown
        def _print(**_k: Any) -> None:
            m.print_report()

        environment.events.quit.add_listener(_print)
