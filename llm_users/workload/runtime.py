"""The workload suite's state per environment: settings, calibration, this process's share and schedule.

The open and trace workloads run one ``ScheduleDispatcher`` per process (``llm_users.pacing.dispatch``) on
this process's share (``llm_users.pacing.share_protocol``, messages ``llm_workload_share`` and
``llm_workload_share_request``; the master sends the whole test's rate with the shares). ``set_rate`` is the
rate control of the capacity search's rate mode (``llm_metrics.state.RateControl``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import gevent
from gevent.lock import Semaphore
from locust.runners import WorkerRunner

from llm_metrics.engine.adherence import ArrivalLedger
from llm_metrics.state import state
from llm_users.pacing.arrival import ArrivalSpec, arrival_times
from llm_users.pacing.dispatch import ScheduleDispatcher
from llm_users.pacing.open_start import READY_S, installed
from llm_users.pacing.share_protocol import ArrivalShares
from llm_users.pacing.shares import Share
from llm_users.workload.calibration import Calibrator
from llm_users.workload.conversation import Conversations
from llm_users.workload.options import WorkloadSettings
from llm_users.workload.synthetic import Calibration, SyntheticText
from llm_users.workload.trace import TraceRecord, schedule

__all__ = ["SCENARIO", "SHARE_MESSAGE", "TRACE_SCENARIO", "WorkloadRuntime", "runtime"]

SCENARIO = "workload"
TRACE_SCENARIO = "trace"
SHARE_MESSAGE = "llm_workload_share"


class Turns:
    """A trace conversation's requests in order: each waits for the answer of the one before (a user reads the
    answer before asking again); the wait shows in the schedule lag. Bounded: only conversations in flight."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[Semaphore, int]] = {}

    @contextmanager
    def turn(self, conversation_id: str) -> Iterator[None]:
        sem, users = self._locks.get(conversation_id, (None, 0))
        if sem is None:
            sem = Semaphore()
        self._locks[conversation_id] = (sem, users + 1)
        try:
            with sem:
                yield
        finally:
            sem, users = self._locks[conversation_id]
            if users <= 1:
                del self._locks[conversation_id]
            else:
                self._locks[conversation_id] = (sem, users - 1)


class WorkloadRuntime:
    """Per-environment state: settings, calibration, this process's share and dispatcher, trace conversations."""

    def __init__(self, environment: Any, settings: WorkloadSettings) -> None:
        self.environment = environment
        self.text = SyntheticText()
        self.calibrator = Calibrator(environment, settings, self.text)
        self._settings = settings
        self.rate = settings.rate
        self.rate_overridden = False  # set_rate (or the master's share) decides the rate until the run stops
        self.conversations = Conversations()
        self.turns = Turns()
        self.dispatcher: ScheduleDispatcher | None = None
        self._pending: gevent.Greenlet | None = None  # the first start, waiting for the calibration
        self.trace_t0: float | None = None
        self.shares = ArrivalShares(
            environment, "workload", SHARE_MESSAGE, self, rate=lambda: self.rate, on_share=self._share
        )
        self._user_seq = 0

    @property
    def settings(self) -> WorkloadSettings:
        return self._settings

    @settings.setter
    def settings(self, settings: WorkloadSettings) -> None:
        self._settings = self.calibrator.settings = settings

    @property
    def calibration(self) -> Calibration | None:
        """This process's calibration, once run (``ensure_calibrated``)."""
        return self.calibrator.calibration

    def ensure_calibrated(self) -> Calibration:
        return self.calibrator.ensure()

    def metrics(self) -> Any:
        """The metrics core (``llm_metrics.hooks``), if installed: the suite state's ``metrics``."""
        # until the metrics core keeps itself in the suite state (branch s16-metrics), it is still
        # environment.llm_metrics: the second read goes when both are merged
        return state(self.environment).metrics

    def user_rng(self) -> random.Random:
        """A generator per User: distinct texts per User, repeatable with ``--seed`` (per process)."""
        self._user_seq += 1
        rank = self.shares.share.index if isinstance(self.environment.runner, WorkerRunner) else 0
        return random.Random(self.settings.seed * 1_000_003 + rank * 100_003 + self._user_seq)

    # -- schedules (open and trace workloads) ----------------------------------------------------------

    def _share(self, share: Share) -> None:
        """A worker: the master's share, with the whole test's rate (the capacity search may have set it)."""
        if share.rate is not None:
            self.rate = share.rate
        self.rate_overridden = True

    def _items(self, skip_before: float) -> Iterable[tuple[float, Any]]:
        s = self.settings
        share = self.shares.share
        if s.mode == "open":
            spec = ArrivalSpec(self.rate, s.arrival)
            return ((t, None) for t in arrival_times(spec, share.index, share.workers))
        assert s.trace is not None
        return (
            (t, rec) for t, rec in schedule(s.trace, s.trace_time_scale, share.index, share.workers) if t >= skip_before
        )

    @property
    def scheduled(self) -> bool:
        return self.dispatcher is not None

    def start(self) -> None:
        """(Re)start this process's schedule; a trace keeps its start time, so a re-division resumes it.

        The first schedule waits for the calibration (the Users wait for it too, in ``on_start``): the arrivals
        of that time are not issued (a burst of them afterwards would overload the target at once), and the
        ledger of expected arrivals (``llm_metrics.engine.adherence``) counts them as missing. Every schedule
        starts ``READY_S`` after the dispatcher exists, so that the first arrivals find the Users idle.
        """
        self.stop()
        s = self.settings
        if s.mode == "closed" or (s.mode == "open" and self.rate <= 0):
            return
        if self.calibration is None:
            self._pending = gevent.spawn(self._start_when_calibrated)
            return
        self._start_now()

    def _start_when_calibrated(self) -> None:
        self.ensure_calibrated()
        self._pending = None
        self._start_now()

    def _start_now(self) -> None:
        s = self.settings
        # the schedule starts READY_S from now: the Users, napping until a dispatcher exists, are waiting in
        # take() by then, so the first arrivals are not dropped for want of an idle User
        now = time.perf_counter() + READY_S
        t0 = now
        skip = 0.0
        if s.mode == "trace":
            if self.trace_t0 is None:
                self.trace_t0 = now
            t0 = self.trace_t0
            skip = now - t0 - 1e-6 if now > t0 else 0.0
        self.dispatcher = ScheduleDispatcher(self._items(skip), self._dropped, t0, on_issue=self._issued)
        self.dispatcher.start()

    def stop(self) -> None:
        if self._pending is not None:
            self._pending.kill(block=False)
            self._pending = None
        if self.dispatcher is not None:
            self.dispatcher.stop()
            self.dispatcher = None

    def _issued(self, payload: Any) -> None:
        metrics = self.metrics()
        if metrics is not None:
            metrics.tally(f"issued:{TRACE_SCENARIO if isinstance(payload, TraceRecord) else SCENARIO}")

    def _dropped(self, payload: Any) -> None:
        metrics = self.metrics()
        if metrics is not None:
            scenario = TRACE_SCENARIO if isinstance(payload, TraceRecord) else SCENARIO
            metrics.count("dropped_iterations", {"scenario": scenario})
            metrics.tally(f"dropped:{scenario}")  # this run's ledger (the metric covers the whole session)

    def start_ledger(self) -> None:
        """Master or local runner, at test start: the arrivals the run should issue (llm_metrics.engine.adherence)."""
        metrics = self.metrics()
        s = self.settings
        if metrics is None or s.mode == "closed":
            return
        if s.mode == "trace" and s.trace is not None:
            offsets = [t for t, _rec in schedule(s.trace, s.trace_time_scale, 0, 1)]
            ledger = ArrivalLedger(kind="trace", offsets={TRACE_SCENARIO: offsets})
            ledger.start(time.time())
        else:
            ledger = ArrivalLedger(kind=s.arrival)
            ledger.start(time.time(), {SCENARIO: self.rate})
        metrics.arrival_ledger = ledger

    # -- rate control (the capacity search's rate mode) ------------------------------------------------

    def set_rate(self, rate: float) -> None:
        """Change the open workload's arrival rate (whole test) now; master or local runner."""
        if self.settings.mode != "open":
            raise RuntimeError(
                f"the arrival rate can change only in the open workload (--workload open), not {self.settings.mode!r}"
            )
        if not (rate >= 0 and math.isfinite(rate)):
            raise ValueError(f"arrival rate must be a number >= 0, got {rate!r}")
        self.rate = float(rate)
        self.rate_overridden = True
        ledger = getattr(self.metrics(), "arrival_ledger", None)
        if ledger is not None and ledger.running:
            ledger.set_rates(time.time(), {SCENARIO: self.rate})
        if not self.shares.redivide() and self.shares.armed:
            self.start()  # the local runner: its schedule restarts at the new rate


def runtime(environment: Any) -> WorkloadRuntime:
    return installed(environment, "workload", WorkloadRuntime)
