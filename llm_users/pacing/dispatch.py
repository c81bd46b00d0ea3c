"""Hand scheduled arrivals to idle Users (the open model), counting the ones no User was free for.

A greenlet sleeps until each scheduled time and hands a ticket to the User that has waited longest in
``take()``. When no User is idle at that moment the arrival is dropped, as k6 counts ``dropped_iterations``;
the User that takes a ticket records ``llm_schedule_lag_ms`` = actual send - ``ticket.scheduled``. Two
dispatchers share that hand-over (``_Handover``):

* ``ArrivalDispatcher`` runs the arrival schedules (``arrival.arrival_times``) of several scenarios, one
  greenlet each, and hands out ``Ticket``s (scenario, prompt variant); the chat suite uses it.
* ``ScheduleDispatcher`` runs any one schedule of ``(offset seconds, payload)`` (open-model arrivals, trace
  records) and hands out ``WorkTicket``s; ``finished`` is set once the schedule is exhausted. The workload
  suite uses it.

Uses gevent, not Locust.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import gevent
from gevent.event import Event
from gevent.hub import Waiter

from llm_users.pacing.arrival import ArrivalSpec, arrival_times

__all__ = ["ArrivalDispatcher", "Scenario", "ScheduleDispatcher", "Ticket", "WorkTicket"]

T = TypeVar("T")


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


@dataclass(slots=True)
class WorkTicket:
    payload: Any
    scheduled: float
    """``time.perf_counter()`` seconds the item was due."""


def sleep_until(due: float) -> None:
    """Sleep (gevent) until ``time.perf_counter()`` reaches ``due``; at once when it is past."""
    delay = due - time.perf_counter()
    if delay > 0:
        gevent.sleep(delay)


class _Handover(Generic[T]):
    """The Users waiting for work, longest first: ``take()`` waits, ``_hand()`` gives to the first waiting.

    A waiting User is a bare ``gevent.hub.Waiter`` (no ``AsyncResult``, no ``gevent.Timeout``): ``_hand`` takes
    it off the queue and the hub switches the ticket into it on its next turn; a ``take`` with a timeout arms one
    loop timer, whose expiry gives ``None`` only to a User still in the queue (one already handed a ticket gets
    the ticket: the ticket is never lost to a timeout firing in the same loop turn)."""

    def __init__(self) -> None:
        self.idle: deque[Waiter[Any]] = deque()

    def _hand(self, ticket: T) -> bool:
        """Give ``ticket`` to the User that has waited longest; False when none waits (the arrival is dropped)."""
        if not self.idle:
            return False
        waiter = self.idle.popleft()
        waiter.hub.loop.run_callback(waiter.switch, ticket)
        return True

    def _release(self) -> None:
        """Wake every waiting User with ``None`` (the dispatcher stops)."""
        while self.idle:
            waiter = self.idle.popleft()
            waiter.hub.loop.run_callback(waiter.switch, None)

    def _expire(self, waiter: Waiter[Any]) -> None:
        """(In the hub) a ``take`` timed out: ``None`` to its User, unless a ticket was handed to it already."""
        try:
            self.idle.remove(waiter)
        except ValueError:
            return
        waiter.switch(None)

    def take(self, timeout: float | None = None) -> T | None:
        """Wait, as an idle User, for the next arrival; None when stopped or on timeout."""
        waiter: Waiter[Any] = Waiter()
        self.idle.append(waiter)
        timer = None
        if timeout is not None:
            timer = waiter.hub.loop.timer(max(timeout, 0.0))
            timer.start(self._expire, waiter)
        try:
            ticket: T | None = waiter.get()
            return ticket
        except BaseException:  # killed while waiting (the User stops): out of the queue
            try:
                self.idle.remove(waiter)
            except ValueError:
                pass
            raise
        finally:
            if timer is not None:
                timer.close()


class ArrivalDispatcher(_Handover[Ticket]):
    """Runs the schedules of several scenarios for this process and hands tickets to waiting Users."""

    def __init__(
        self,
        scenarios: Sequence[Scenario],
        worker_index: int = 0,
        workers: int = 1,
        on_drop: Callable[[str, str, int], None] | None = None,
        on_issue: Callable[[str, int], None] | None = None,
    ) -> None:
        """``on_issue(scenario, n)``: ``n`` arrivals were issued; ``on_drop(scenario, prompt, n)``: ``n`` of them
        were dropped (no User waited). Called once per burst: the arrivals a schedule issues back to back when it
        is behind (at once, in the same loop turn), else once per arrival."""
        super().__init__()
        self.scenarios = list(scenarios)
        self.worker_index = worker_index
        self.workers = workers
        self.on_drop = on_drop
        self.on_issue = on_issue
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
        self._release()

    @property
    def running(self) -> bool:
        return any(not g.dead for g in self._greenlets)

    def _run(self, sc: Scenario, t0: float) -> None:
        name = sc.name
        prompts = itertools.cycle(sc.prompts)
        hand, perf, sleep = self._hand, time.perf_counter, gevent.sleep
        burst = 0  # arrivals issued since this greenlet last slept, and the prompts of those dropped
        dropped: list[str] = []
        try:
            for offset in arrival_times(sc.spec, self.worker_index, self.workers):
                due = t0 + offset
                delay = due - perf()  # sleep_until(due)
                if delay > 0:
                    if burst:  # the arrivals since the last sleep, counted before another greenlet runs
                        self._count_burst(name, burst, dropped)
                        burst = 0
                    sleep(delay)
                burst += 1
                prompt = next(prompts)
                if not hand(Ticket(name, prompt, due)):
                    dropped.append(prompt)
        finally:
            if burst:
                self._count_burst(name, burst, dropped)

    def _count_burst(self, name: str, n: int, prompts: list[str]) -> None:
        """Count one burst: ``n`` arrivals issued, those dropped by prompt (``prompts``: of each); empties it."""
        self.issued[name] = self.issued.get(name, 0) + n
        if self.on_issue is not None:
            self.on_issue(name, n)
        if not prompts:
            return
        self.dropped[name] = self.dropped.get(name, 0) + len(prompts)
        if self.on_drop is not None:
            if len(prompts) == 1:
                self.on_drop(name, prompts[0], 1)
            else:
                for prompt in dict.fromkeys(prompts):
                    self.on_drop(name, prompt, prompts.count(prompt))
        prompts.clear()


class ScheduleDispatcher(_Handover[WorkTicket]):
    """Runs one schedule from ``t0`` (``perf_counter`` seconds, default now) and hands tickets to waiting Users."""

    def __init__(
        self,
        items: Iterable[tuple[float, Any]],
        on_drop: Callable[[Any], None] | None = None,
        t0: float | None = None,
        on_issue: Callable[[Any], None] | None = None,
    ) -> None:
        super().__init__()
        self.items = items
        self.on_drop = on_drop
        self.on_issue = on_issue
        self.t0 = t0
        self.issued = 0
        self.dropped = 0
        self.finished = Event()
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        if self._greenlet is None:
            if self.t0 is None:
                self.t0 = time.perf_counter()
            self._greenlet = gevent.spawn(self._run, self.t0)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None
        self._release()

    def _run(self, t0: float) -> None:
        try:
            for offset, payload in self.items:
                due = t0 + offset
                sleep_until(due)
                self.issued += 1
                if self.on_issue is not None:
                    self.on_issue(payload)
                if not self._hand(WorkTicket(payload, due)):
                    self.dropped += 1
                    if self.on_drop is not None:
                        self.on_drop(payload)
        finally:
            self.finished.set()
