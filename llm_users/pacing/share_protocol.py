"""The worker-share protocol of the open-model suites on Locust's runners (the pure part is ``shares``).

One ``ArrivalShares`` per suite and environment, created with the suite's runtime (its ``Schedule``) and
installed at ``init``:

* **master**: at test start (:meth:`ArrivalShares.test_start`) it sends every active worker its share
  (``shares.share_message``) and then checks the active workers every second, sending the shares again when
  they change (a worker joins late, goes missing or quits), so the total rate stays the one asked for;
  :meth:`ArrivalShares.redivide` sends them again at once (the rate changed). A worker that asks
  (``<message>_request``) during a test gets the shares of the workers counting itself.
* **worker**: the schedule starts at test start only once the share is known; a share that comes later
  (a late joiner) starts it then, and a changed share restarts it. A late joiner asks for its share once its
  listeners exist: Locust hands it the running test (ack, spawn, spawning complete) before its ``init``
  event, so a message sent at connect is lost. Under a load shape too a worker never runs the whole test's
  rate while it waits for its share.
* **local runner**: its share is the whole rate (0 of 1); the schedule starts at test start.

Every open-model suite (chat, workload) uses it; the capacity shape counts the same active workers and, in
rate mode, changes the rate through the workload suite (``redivide``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import gevent
from locust.runners import MasterRunner, WorkerRunner

from llm_users.pacing.shares import Share, active_workers, read_share, share_message

__all__ = ["ArrivalShares", "Schedule", "halt_on_stop"]

log = logging.getLogger(__name__)

WATCH_S = 1.0
"""How often the master checks the active workers during a test."""


class Schedule(Protocol):
    """This process's arrival schedule, as the suite runs it on ``ArrivalShares.share``."""

    def start(self) -> None:
        """(Re)start the schedule on the current share."""

    def stop(self) -> None:
        """Stop the schedule (no new arrivals)."""

    @property
    def scheduled(self) -> bool:
        """Whether a schedule runs (or is about to: started, waiting for something of the suite's own)."""
        ...


class ArrivalShares:
    """One suite's share of the arrivals in this process, and the messages that divide them."""

    def __init__(
        self,
        environment: Any,
        suite: str,
        message: str,
        schedule: Schedule,
        rate: Callable[[], float] | None = None,
        on_share: Callable[[Share], None] | None = None,
    ) -> None:
        """``message``: the share message's type (the request is ``message + "_request"``); ``rate``: the
        master sends it with the shares (the workers run it instead of their settings'); ``on_share``: a
        worker calls it with each share received, before its schedule (re)starts."""
        self.environment = environment
        self.suite = suite
        self.message = message
        self.request = f"{message}_request"
        self.schedule = schedule
        self.rate = rate
        self.on_share = on_share
        self.share = Share()
        self.known = False  # worker: a share came from the master
        self.armed = False  # worker or local: a test runs, its schedule may start
        self.share_ids: list[str] | None = None  # master: the workers the arrivals were last divided among
        self._watch: gevent.Greenlet | None = None

    # -- set-up (init) ---------------------------------------------------------------------------------

    def install(self) -> None:
        """At ``init``: the listeners of this runner's role; a worker asks for its share."""
        env = self.environment
        env.events.spawning_complete.add_listener(self._spawning_complete)
        runner = env.runner
        if isinstance(runner, WorkerRunner):
            runner.register_message(self.message, self._received)
            if runner.worker_state in ("spawning", "running"):
                # joined a running test whose start (test_start, spawning_complete) came before this init
                self.armed = True
            runner.send_message(self.request)
        if isinstance(runner, MasterRunner):
            runner.register_message(self.request, self._requested)

    def ready(self) -> bool:
        """Whether this process knows its share: a worker once the master sent it; any other process."""
        return self.known or not isinstance(self.environment.runner, WorkerRunner)

    # -- a test --------------------------------------------------------------------------------------------

    def test_start(self) -> bool:
        """At test start. The master divides the arrivals and watches the workers (returns False: it runs no
        schedule); a worker or the local runner arms its schedule, started now if its share is known (True)."""
        runner = self.environment.runner
        if isinstance(runner, MasterRunner):
            self._stop_watch()
            self._send(active_workers(runner.clients.values()))
            self._watch = gevent.spawn(self._watch_workers, runner)
            return False
        self.armed = True
        if self.ready():
            self.schedule.start()  # the schedule runs from the test start (the Users are spawned at once)
        return True

    def halt(self) -> None:
        """The test stops: no new arrivals (calls in flight finish within ``--stop-timeout``)."""
        self.armed = False
        self.schedule.stop()
        self._stop_watch()

    def redivide(self) -> bool:
        """Master: send the shares again now (the rate changed); False on any other runner (nothing sent)."""
        runner = self.environment.runner
        if not isinstance(runner, MasterRunner):
            return False
        self._send(active_workers(runner.clients.values()))
        return True

    # -- master --------------------------------------------------------------------------------------------

    def _send(self, ids: list[str]) -> None:
        self.share_ids = ids
        rate = self.rate() if self.rate is not None else None
        self.environment.runner.send_message(self.message, share_message(ids, rate))

    def _watch_workers(self, runner: Any) -> None:
        """During a test: re-divide the arrivals when the active workers change."""
        while True:
            gevent.sleep(WATCH_S)
            ids = active_workers(runner.clients.values())
            if ids and ids != self.share_ids:
                log.info(
                    "%s suite: %d active workers (were %d): arrival rates re-divided",
                    self.suite,
                    len(ids),
                    len(self.share_ids or ()),
                )
                self._send(ids)

    def _stop_watch(self) -> None:
        if self._watch is not None:
            self._watch.kill(block=False)
            self._watch = None
        self.share_ids = None

    def _requested(self, environment: Any, msg: Any, **_kw: Any) -> None:
        if self.share_ids is not None:  # a test runs: the worker asking joined it late
            self._send(active_workers(environment.runner.clients.values(), msg.node_id))

    # -- worker --------------------------------------------------------------------------------------------

    def _received(self, environment: Any, msg: Any, **_kw: Any) -> None:
        before = self.share
        self.share = read_share(msg.data, environment.runner.client_id)
        self.known = True
        if self.on_share is not None:
            self.on_share(self.share)
        if self.schedule.scheduled and self.share != before:
            log.info(
                "%s suite: arrival share now %d of %d workers", self.suite, self.share.index + 1, self.share.workers
            )
            self.schedule.start()  # re-divided during the run: the schedule restarts with the new share
        elif not self.schedule.scheduled and self.armed:
            self.schedule.start()  # the test started before the share came (e.g. a late joiner)

    def _spawning_complete(self, **_kw: Any) -> None:
        # the schedule starts at test start; this starts only one that could not start then
        if self.armed and not self.schedule.scheduled and self.ready():
            self.schedule.start()


def halt_on_stop(events: Any, shares_of: Callable[[Any], ArrivalShares | None]) -> None:
    """Register, when the suite is installed (at import: the listeners keep the locustfile's order), the halt
    of the schedule on ``test_stopping`` and ``test_stop``: no new arrivals once the run stops; calls in flight
    finish within ``--stop-timeout``. ``shares_of(environment)``: the suite's shares, if it runs."""

    def _halt(environment: Any, **_kw: Any) -> None:
        shares = shares_of(environment)
        if shares is not None:
            shares.halt()

    events.test_stopping.add_listener(_halt)
    events.test_stop.add_listener(_halt)
