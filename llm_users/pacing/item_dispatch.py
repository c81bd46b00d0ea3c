"""Hand scheduled items (open-model arrivals, trace records) to idle Users, counting the ones none was free for.

Like ``dispatch.ArrivalDispatcher``, for any schedule of ``(offset seconds, payload)``: one greenlet sleeps
until each item's time and hands a ``WorkTicket`` to the User that has waited longest; with no User idle the
item is dropped (k6's ``dropped_iterations``). The User records ``llm_schedule_lag_ms`` (actual send -
``ticket.scheduled``). ``finished`` is set once the schedule is exhausted. Uses gevent, not Locust.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import gevent
from gevent.event import AsyncResult, Event

__all__ = ["ScheduleDispatcher", "WorkTicket"]


@dataclass(slots=True)
class WorkTicket:
    payload: Any
    scheduled: float
    """``time.perf_counter()`` seconds the item was due."""


class ScheduleDispatcher:
    """Runs one schedule from ``t0`` (``perf_counter`` seconds, default now) and hands tickets to waiting Users."""

    def __init__(
        self,
        items: Iterable[tuple[float, Any]],
        on_drop: Callable[[Any], None] | None = None,
        t0: float | None = None,
        on_issue: Callable[[Any], None] | None = None,
    ) -> None:
        self.items = items
        self.on_drop = on_drop
        self.on_issue = on_issue
        self.t0 = t0
        self.idle: deque[AsyncResult] = deque()
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
        while self.idle:
            self.idle.popleft().set(None)

    def _run(self, t0: float) -> None:
        perf = time.perf_counter
        try:
            for offset, payload in self.items:
                due = t0 + offset
                delay = due - perf()
                if delay > 0:
                    gevent.sleep(delay)
                self.issued += 1
                if self.on_issue is not None:
                    self.on_issue(payload)
                if self.idle:
                    self.idle.popleft().set(WorkTicket(payload, due))
                else:
                    self.dropped += 1
                    if self.on_drop is not None:
                        self.on_drop(payload)
        finally:
            self.finished.set()

    def take(self, timeout: float | None = None) -> WorkTicket | None:
        """Wait, as an idle User, for the next item; None when stopped or on timeout."""
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
