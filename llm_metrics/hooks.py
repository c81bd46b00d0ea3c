"""Locust's events wired to the metrics: request events in, merged metrics, SLO verdict and summaries out.

``install_metrics(events, suite=..., default_thresholds=...)`` (called by a locustfile) adds the arguments and
the listeners of design.md section 3:

* at init: the SLO file is read (``llm_metrics.slo_config``; a bad one: exit 2), the output paths are checked
  (``llm_metrics.arguments``; an unwritable one: exit 2), the metrics core (``llm_metrics.core.LLMMetrics``) is
  kept in the environment's state (``llm_metrics.state``) and fed by every request event; a worker reports its
  deltas to the master, which merges them; the cluster checks, the requests log, the server scrape, the live
  charts, the exporter, the HTML report and the web UI are attached where they run;
* every process that runs Users measures its own event-loop lag and CPU while a test runs (``selfmon``);
* on the master or the local runner only: ``abortOnFail`` thresholds are checked every second, and at quit the
  verdict is made (``llm_metrics.verdict``: the table, the JSON summary, the exit code 0/99/98); a worker
  writes its own view.

The extension points the suites plug into are listed in ``llm_metrics.extensions``.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from pathlib import Path
from typing import Any

from locust.runners import MasterRunner, WorkerRunner

from llm_metrics.arguments import add_metrics_arguments, check_output_paths
from llm_metrics.cluster.health import add_cluster_arguments, install_cluster
from llm_metrics.cluster.workers import install_worker_tracking
from llm_metrics.core import READ_DELAY, LLMMetrics
from llm_metrics.engine.calls import GoodputSLO
from llm_metrics.engine.thresholds import MetricRegistry, ThresholdError, default_registry
from llm_metrics.locust_fixes import (
    cache_default_args,
    install_clock_refresh,
    install_gc_tuning,
    tolerate_undecodable_error_bodies,
)
from llm_metrics.monitors.load_limit import CLIENT_LAG_AT_LOAD, CLIENT_OPEN_CALLS, CLIENT_TOKENS_READ
from llm_metrics.monitors.selfmon import CLIENT_CPU, CLIENT_LOOP_LAG, SaturationRules
from llm_metrics.monitors.server_scrape import add_server_scrape_arguments, install_server_scrape
from llm_metrics.outputs.exporter import add_exporter_arguments, install_exporter
from llm_metrics.outputs.live import install_live
from llm_metrics.outputs.requests_log import add_requests_log_arguments, install_requests_log
from llm_metrics.slo_config import ConfigError, load_slo_config
from llm_metrics.state import state
from llm_metrics.verdict import finish, mask_locust_html, write_html_report, write_worker_view

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent


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
    tolerate_undecodable_error_bodies()  # a 500 with a body that is not UTF-8 raised out of a User's request
    for name in (READ_DELAY, CLIENT_LOOP_LAG, CLIENT_CPU, CLIENT_LAG_AT_LOAD, CLIENT_OPEN_CALLS, CLIENT_TOKENS_READ):
        if name not in reg:
            reg.register(name, "trend")
    events.init_command_line_parser.add_listener(
        functools.partial(_add_arguments, suite=suite, default_thresholds=default_thresholds)
    )
    events.init.add_listener(
        functools.partial(_on_init, suite=suite, default_thresholds=default_thresholds, registry=reg)
    )
    events.test_start.add_listener(_probe)
    # the probe measures the run: it stops when the run stops (Locust's stop() itself blocks the hub 20-60 ms
    # in inspect.stack() just before test_stopping, gevent's monitor thread shows; a worker may get no
    # test_stopping, hence test_stop too)
    events.test_stopping.add_listener(_unprobe)
    events.test_stop.add_listener(_unprobe)
    events.test_start.add_listener(_on_test_start)
    events.test_stopping.add_listener(_on_test_stopping)
    events.test_stop.add_listener(_on_test_stop)
    events.quitting.add_listener(_on_quitting)


def _add_arguments(parser: Any, *, suite: str, default_thresholds: str, **_kw: Any) -> None:
    add_metrics_arguments(parser, suite, default_thresholds)
    add_exporter_arguments(parser)
    add_cluster_arguments(parser)
    add_requests_log_arguments(parser)
    add_server_scrape_arguments(parser)


def _create_metrics(environment: Any, suite: str, default_thresholds: str, registry: MetricRegistry) -> LLMMetrics:
    """The metrics core of this environment, with the SLOs of ``--thresholds``; exit 2 on a bad file or path."""
    opts = environment.parsed_options
    path = getattr(opts, "thresholds", default_thresholds) if opts is not None else default_thresholds
    summary_path = getattr(opts, "summary_json", "") if opts is not None else ""
    resolved = Path(path)
    if not resolved.is_absolute() and not resolved.exists() and (ROOT / resolved).exists():
        resolved = ROOT / resolved
    try:
        ths, gp, saturation = load_slo_config(resolved, registry) if path else ([], GoodputSLO(), SaturationRules())
    except (ThresholdError, ConfigError) as exc:
        log.error("%s", exc)
        sys.exit(2)
    if opts is not None and not getattr(opts, "worker", False):
        check_output_paths(opts)
    m = LLMMetrics(environment, suite, ths, gp, str(path), summary_path)
    m.accept_schedule_miss = bool(getattr(opts, "accept_schedule_miss", False))
    m.accept_saturation = bool(getattr(opts, "accept_saturation", False))
    m.saturation = saturation
    return m


def _on_init(environment: Any, *, suite: str, default_thresholds: str, registry: MetricRegistry, **_kw: Any) -> None:
    m = _create_metrics(environment, suite, default_thresholds, registry)
    state(environment).metrics = m
    environment.events.request.add_listener(m.on_request)
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        environment.events.report_to_master.add_listener(m.on_report_to_master)
        # a worker sends its per-second series in each report and never reads it (recovery, live charts,
        # the summary's series are the master's): it keeps only the seconds not yet sent
        m.series.keep_totals = False
    if isinstance(runner, MasterRunner):
        environment.events.worker_report.add_listener(m.on_worker_report)
        install_worker_tracking(environment, m)
    install_cluster(environment, m)  # suite version check; a worker's watch on its master
    install_requests_log(environment, m)
    install_server_scrape(environment, m)
    install_live(environment, m)
    if not isinstance(runner, WorkerRunner):
        environment.events.reset_stats.add_listener(m.reset)  # the web UI's "Reset stats" resets them too
        environment.events.spawning_complete.add_listener(lambda **_kw: _reset_after_ramp_up(environment, m))
        install_exporter(environment, m)
        m.after_summary.append(lambda doc: write_html_report(m, doc))
    if getattr(environment, "web_ui", None) is not None:
        from llm_metrics.outputs.webui import attach_web_ui

        attach_web_ui(environment)


def _reset_after_ramp_up(environment: Any, m: LLMMetrics) -> None:
    """``--reset-stats``: Locust empties its stats when spawning completes (its runner's listener, registered
    before this one, in the same greenlet): the LLM metrics are emptied at the same event, so both count the
    same requests."""
    if getattr(environment, "reset_stats", False):
        log.info("--reset-stats: the LLM metrics are reset with Locust's stats")
        m.reset()


def _where_verdict_is(environment: Any) -> LLMMetrics | None:
    """The metrics of the master or local runner; None on a worker or when not installed."""
    m = state(environment).metrics
    return None if m is None or isinstance(environment.runner, WorkerRunner) else m


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


def _on_test_start(environment: Any, **_kw: Any) -> None:
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


def _on_test_stopping(environment: Any, **_kw: Any) -> None:
    m = _where_verdict_is(environment)
    if m is not None and m.arrival_ledger is not None:
        m.arrival_ledger.stop(time.time())  # no arrival is due after this (calls in flight may finish)


def _on_test_stop(environment: Any, **_kw: Any) -> None:
    m = _where_verdict_is(environment)
    if m is None:
        return
    m.store.mark_stop()
    if m.arrival_ledger is not None:
        m.arrival_ledger.stop(time.time())
    m.stop_abort_checks()
    m.stop_user_sampling()


def _on_quitting(environment: Any, **_kw: Any) -> None:
    m = state(environment).metrics
    if m is None:
        return
    if isinstance(environment.runner, WorkerRunner):
        write_worker_view(m, environment.runner.worker_index)
        return
    mask_locust_html(m)
    code = finish(m)
    if code is not None:
        environment.process_exit_code = code

    # the quit event comes after Locust has printed its own tables: the verdict is the last thing shown
    def _print(**_k: Any) -> None:
        m.print_report()

    environment.events.quit.add_listener(_print)
