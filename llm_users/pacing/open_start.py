"""The open model starts with the run: its Users are a pool spawned at once, its schedule starts at test start.

In the open model the load is the arrival rate; the Users (``-u``) are only the pool that takes the
arrivals, like k6's ``preAllocatedVUs``, which k6 allocates before the scenario starts. Locust ramps Users at
``-r`` per second (1 by default), and a schedule that waited for the ramp to end (``spawning_complete``) ran
late: ``-u 20 -t 20s`` without ``-r`` sent 8 calls in 20 s. So the open-model suites

* spawn their whole pool at once (``spawn_pool_at_once``: the runner's spawn rate is raised to the user
  count, whatever ``-r`` or the web UI form says; a load shape keeps its own rates), and
* start each process's schedule at test start (``READY_S`` later, the time for the Users just spawned to
  wait for work), for the whole run time; an arrival due when no User is idle is dropped and counted.

``llm_metrics.engine.adherence`` then checks, where the verdict is made, that the schedule was kept.

``install_open_suite`` is the start of every open-model suite's install (the security checks, its flags and
``--tokenizer``), ``prepare_open_model`` the ``init`` part they share (the pool at once, k6's gracefulStop,
the host, the run length a suite derives from its schedule).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import gevent
from locust.runners import WorkerRunner

from llm_metrics.state import RuntimeName, state
from llm_users.common.suite import install_suite
from llm_users.common.tokenizer import add_tokenizer_argument

__all__ = [
    "GRACEFUL_STOP_S",
    "READY_S",
    "install_open_suite",
    "installed",
    "prepare_open_model",
    "spawn_pool_at_once",
]

T = TypeVar("T")

log = logging.getLogger(__name__)

READY_S = 0.1
"""A schedule's first arrival is due this long after the test start: the Users spawned at once are waiting."""

GRACEFUL_STOP_S = 30.0
"""k6's gracefulStop: calls in flight at the end of the run may finish (and are counted), unless
``--stop-timeout`` says otherwise."""


def install_open_suite(events: Any, add_arguments: Callable[[Any], None]) -> None:
    """The start of an open-model suite's install on Locust's ``events`` (``common.suite.install_suite``): the
    security checks first (the suite reads the secrets as it binds them), then the suite's flags
    (``add_arguments``) and ``--tokenizer``."""

    def arguments(parser: Any) -> None:
        add_arguments(parser)
        add_tokenizer_argument(parser)

    install_suite(events, arguments)


def installed(environment: Any, suite: RuntimeName, kind: type[T]) -> T:
    """The runtime the suite keeps in the environment's suite state; a clear error when it is not installed."""
    rt = state(environment).runtime(suite, kind)
    if rt is None:
        call = f"llm_users.{suite}.users.install_{suite}(events)"
        raise RuntimeError(f"the {suite} suite is not installed: call {call} in the locustfile")
    return rt


def prepare_open_model(
    environment: Any,
    suite: str,
    base: str,
    run_time_s: int | None = None,
    applies: Callable[[], bool] = lambda: True,
) -> None:
    """At ``init``: the pool spawned at once while ``applies()``; the stop timeout ``GRACEFUL_STOP_S`` unless
    given; the host ``base`` (the suite's knob) unless ``--host`` alone chose one; and a headless run without
    ``-t`` nor a load shape lasts ``run_time_s`` when the suite gives it (its schedule's length)."""
    opts = environment.parsed_options
    spawn_pool_at_once(environment, suite, applies)
    if not opts.worker and not getattr(opts, "stop_timeout", None):
        opts.stop_timeout = environment.stop_timeout = GRACEFUL_STOP_S
    if opts.base or not environment.host:
        environment.host = base
    if (
        run_time_s is not None
        and getattr(opts, "headless", False)
        and not getattr(opts, "run_time", None)
        and not opts.worker
        and environment.shape_class is None
    ):
        opts.run_time = run_time_s


def spawn_pool_at_once(environment: Any, suite: str, applies: Callable[[], bool] = lambda: True) -> None:
    """Make the master or local runner spawn every User at once while ``applies()`` (the open model runs).

    Wraps ``runner.start`` (called by the headless start, the web UI's swarm form and the master's re-balancing)
    so its spawn rate is at least the user count; not with a load shape, whose ticks set their own rates.
    """
    runner = environment.runner
    if runner is None or isinstance(runner, WorkerRunner) or getattr(runner, "_llm_pool_at_once", False):
        return
    # Locust arms -t with gevent.spawn_later after this init; gevent's clock is the loop's cached time, stale
    # by the whole start-up (imports, config) until the loop first runs: -t 6s stopped 0.43 s early (measured).
    # Refreshing it here makes the run last -t from the test start, the window the arrivals are expected in.
    gevent.get_hub().loop.update_now()
    original = runner.start
    told: list[bool] = []

    def start(user_count: int, spawn_rate: float, wait: bool = False, user_classes: Any = None) -> Any:
        if environment.shape_class is None and applies() and user_count > spawn_rate:
            if not told:
                told.append(True)
                log.info(
                    "%s suite, open model: the %d Users are a pool that takes the arrivals (k6's preAllocatedVUs), "
                    "spawned at once (spawn rate %g ignored); the arrival rate is the load",
                    suite,
                    user_count,
                    spawn_rate,
                )
            spawn_rate = float(user_count)
        return original(user_count, spawn_rate, wait=wait, user_classes=user_classes)

    runner.start = start
    runner._llm_pool_at_once = True
