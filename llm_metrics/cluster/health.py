"""A distributed run's health beyond Locust's own: the suite version of each worker, and a worker whose master
is gone (``install_cluster(environment, metrics)``, called by ``llm_metrics.hooks`` at init).

Version check. Each worker sends its suite version (``llm_metrics.cluster.version``) to the master at init (custom
message ``llm_suite_version``). A worker whose version differs from the master's is refused: the master logs
an error naming both versions, tells that worker to quit (``llm_suite_refused``; the worker logs the same two
versions and exits with status 2), leaves whatever it reported out of the merged numbers, and records it in
the summary's ``workers`` section. A worker refused while a test runs had Users and took part: the verdict is
then not trustworthy (``llm_metrics.verdict``: ``verdict_trustworthy``). Locust itself only warns when its own versions
differ; the worker sends its version after Locust's ``client_ready``, so in a headless run with
``--expect-workers`` it may count towards the workers awaited for a moment: once refused it is taken out of the
master's workers at once (its Users, if it had any, go to the others) and the master waits for another.
Locust's own request table may still include what a worker refused during the run reported; the suite's
numbers (summaries, thresholds, exporter) do not.

Master lost. Locust's worker quits 60 s after the last heartbeat of its master. A master that is restarted
does not take back the workers of the previous one (it ignores heartbeats of workers it does not know, and a
worker never says ``client_ready`` again), so they would run their Users on their own until then.
``--master-lost-timeout`` (env ``MASTER_LOST_TIMEOUT``, default 60 s, Locust's; 0: Locust's alone) sets that
bound on the worker (its own value until a test starts, then the master's, which forwards its options):
it logs why, stops its Users, writes its own record (``summary-<suite>.worker<N>.json``: what it measured since
its last report is there, not in any merged number) and exits with status 1. Start workers again for a new
master (an orchestrator restarts them).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner

from llm_metrics.cluster.version import suite_version
from llm_metrics.state import state

log = logging.getLogger(__name__)

VERSION_MESSAGE = "llm_suite_version"
REFUSED_MESSAGE = "llm_suite_refused"
EXIT_REFUSED = 2
EXIT_MASTER_LOST = 1
DEFAULT_MASTER_LOST_TIMEOUT_S = 60.0


def add_cluster_arguments(parser: Any) -> None:
    parser.add_argument(
        "--master-lost-timeout",
        env_var="MASTER_LOST_TIMEOUT",
        type=float,
        default=DEFAULT_MASTER_LOST_TIMEOUT_S,
        include_in_web_ui=False,
        help="Worker: seconds without a heartbeat from the master before this worker stops its Users, writes "
        "its own record and exits with status 1 (env MASTER_LOST_TIMEOUT)",
    )


class VersionCheck:
    """Master: compares each worker's suite version with its own; refuses the ones that differ."""

    def __init__(self, environment: Any, metrics: Any) -> None:
        self.environment = environment
        self.metrics = metrics
        self.version = suite_version()

    def on_version(self, environment: Any, msg: Any, **_kw: Any) -> None:
        data = msg.data if isinstance(msg.data, dict) else {}
        theirs = str(data.get("version", "unknown"))
        if theirs == self.version:
            return
        runner = self.environment.runner
        worker = msg.node_id
        during_run = runner.state in (STATE_SPAWNING, STATE_RUNNING)
        log.error(
            "worker %s runs version %s of the suite, the master runs %s: refused, told to quit%s; "
            "run the same version of the suite on every node",
            worker,
            theirs,
            self.version,
            " (it had joined the running test: what it reported is left out)" if during_run else "",
        )
        self.metrics.excluded_workers.add(worker)
        tracking = state(self.environment).workers
        if tracking is not None:
            tracking.ledger.refuse(worker, theirs, self.version, time.time(), during_run)
        _forget_worker(runner, worker)
        runner.send_message(REFUSED_MESSAGE, {"master_version": self.version, "worker_version": theirs}, worker)


def _forget_worker(runner: Any, worker: str) -> None:
    """Take a worker out of the master's books at once, as Locust does when one quits (runners.py, ``quit``).

    Done before the worker's own ``quit`` arrives so that Locust ignores that one: a headless master whose last
    worker quits stops its runner and then waits for workers forever. Its Users are given to the others."""
    client = runner.clients.get(worker)
    if client is None:
        return
    del runner.clients[worker]
    dispatcher = getattr(runner, "_users_dispatcher", None)
    if dispatcher is not None:
        dispatcher.remove_worker(client)
        if not dispatcher.dispatch_in_progress and runner.state == STATE_RUNNING:
            runner.start(runner.target_user_count, runner.spawn_rate)


def _refused(environment: Any, msg: Any, **_kw: Any) -> None:
    """Worker: the master refused this worker's version."""
    data = msg.data if isinstance(msg.data, dict) else {}
    log.error(
        "refused by the master: this worker runs version %s of the suite, the master runs %s; quitting",
        data.get("worker_version", suite_version()),
        data.get("master_version", "unknown"),
    )
    environment.process_exit_code = EXIT_REFUSED
    gevent.spawn(environment.runner.quit)


def _master_lost_timeout(environment: Any) -> float:
    """The worker's own setting until a test starts, then the master's (it forwards its custom options)."""
    value = getattr(environment.parsed_options, "master_lost_timeout", None)
    try:
        return float(value) if value is not None else DEFAULT_MASTER_LOST_TIMEOUT_S
    except (TypeError, ValueError):
        return DEFAULT_MASTER_LOST_TIMEOUT_S


def _watch_master(environment: Any) -> None:
    """Worker: quit when the master has sent no heartbeat for the timeout (it stopped, crashed or restarted)."""
    runner = environment.runner
    while True:
        timeout_s = _master_lost_timeout(environment)
        gevent.sleep(min(1.0, timeout_s / 4) if timeout_s > 0 else 1.0)
        last = getattr(runner, "last_heartbeat_timestamp", None)
        if timeout_s > 0 and last and time.time() - last > timeout_s:
            log.error(
                "no heartbeat from the master for %.0f s (--master-lost-timeout): it stopped, crashed or was "
                "restarted (a new master does not take back this worker). Stopping the Users and quitting; what "
                "this worker measured since its last report is in its own record, not in any merged number",
                timeout_s,
            )
            environment.process_exit_code = EXIT_MASTER_LOST
            runner.quit()
            return


def install_cluster(environment: Any, metrics: Any) -> None:
    """Master: the version check. Worker: send the version, obey a refusal, watch the master."""
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        check = VersionCheck(environment, metrics)
        runner.register_message(VERSION_MESSAGE, check.on_version)
        state(environment).version_check = check
    elif isinstance(runner, WorkerRunner):
        runner.register_message(REFUSED_MESSAGE, _refused)
        runner.send_message(VERSION_MESSAGE, {"version": suite_version()})
        gevent.spawn(_watch_master, environment)
