"""Hand scheduled arrivals to idle Users (the open model), counting the ones no User was free for.

One greenlet per scenario sleeps until each scheduled time of its ``arrival_times`` and hands a ``Ticket`` to the
User that has waited longest. When no User is idle at that moment the arrival is dropped, as k6 counts
``dropped_iterations``; the User that takes a ticket records ``llm_schedule_lag_ms`` = actual send - scheduled.
Uses gevent, not Locust.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gevent
from gevent.event import AsyncResult

from llm_users.pacing.arrival import ArrivalSpec, arrival_times


@dataclass(frozen=True, slots=True)
class Scenario:
    """One arrival stream: its tag, its schedule and the prompt variants it cycles through."""

    name: str
    spec: ArrivalSpec
    prompts: tuple[str, ...] = ("default",)


@dataclass(slots=True)
class Ticket:
    scenario: str
    prompt: str
    scheduled: float  # time.perf_counter() seconds


class ArrivalDispatcher:
    """Runs the schedules of several scenarios for this process and hands tickets to waiting Users."""

    def __init__(
        self,
        scenarios: Sequence[Scenario],
        worker_index: int = 0,
        workers: int = 1,
        on_drop: Callable[[str, str], None] | None = None,
        on_issue: Callable[[str], None] | None = None,
    ) -> None:
        self.scenarios = list(scenarios)
        self.worker_index = worker_index
        self.workers = workers
        self.on_drop = on_drop
        self.on_issue = on_issue
        self.idle: deque[AsyncResult] = deque()
        self.dropped: dict[str, int] = {}
        self.issued: dict[str, int] = {}
        self._greenlets: list[gevent.Greenlet] = []
        self.started_at: float | None = None

    def start(self, delay_s: float = 0.0) -> None:
        """Run the schedules from ``delay_s`` seconds from now (time for the Users just spawned to be waiting)."""
        if self._greenlets:
            return
        self.started_at = time.perf_counter() + delay_s
        for sc in self.scenarios:
            if sc.spec.rate > 0:
                self._greenlets.append(gevent.spawn(self._run, sc, self.started_at))

    def stop(self) -> None:
        for g in self._greenlets:
            g.kill(block=False)
        self._greenlets = []
        while self.idle:
            self.idle.popleft().set(None)

    @property
    def running(self) -> bool:
        return any(not g.dead for g in self._greenlets)

    def _run(self, sc: Scenario, t0: float) -> None:
        prompts = itertools.cycle(sc.prompts)
        perf = time.perf_counter
        for offset in arrival_times(sc.spec, self.worker_index, self.workers):
            due = t0 + offset
            delay = due - perf()
            if delay > 0:
                gevent.sleep(delay)
            prompt = next(prompts)
            self.issued[sc.name] = self.issued.get(sc.name, 0) + 1
            if self.on_issue is not None:
                self.on_issue(sc.name)
            if self.idle:
                self.idle.popleft().set(Ticket(sc.name, prompt, due))
            else:
                self.dropped[sc.name] = self.dropped.get(sc.name, 0) + 1
                if self.on_drop is not None:
                    self.on_drop(sc.name, prompt)

    def take(self, timeout: float | None = None) -> Ticket | None:
        """Wait, as an idle User, for the next arrival; None when stopped or on timeout."""
        waiter: AsyncResult = AsyncResult()
        self.idle.append(waiter)
        try:
            return waiter.get(timeout=timeout)
        except gevent.Timeout:
            return None
        finally:
            try:
                self.idle.remove(waiter)
            except ValueError:
                pass
