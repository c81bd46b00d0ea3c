"""Precise sleeps until ``time.perf_counter()`` deadlines, for token schedules.

The event loop's timers have millisecond granularity (libuv rounds delays to ms and fires up to 1 ms early
or late). On Linux this clock instead arms one ``timerfd`` (CLOCK_MONOTONIC, absolute, nanoseconds; the
clock of ``time.perf_counter``) for the earliest deadline of a heap and wakes the waiters when it fires:
measured lateness p50 0.03 ms instead of 0.4 ms, and cheaper per token, since a wake-up releases every
waiter due within ``SLACK_S`` at once (those may go out up to 0.1 ms early; the first never does).
Elsewhere, or when timerfd is unavailable, it falls back to ``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
import ctypes
import heapq
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

SLACK_S = 0.0001
_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = 0o4000
_TFD_CLOEXEC = 0o2000000
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        # timerfd_settime has no argtypes: it is called with (int, int, byref(spec), None), and converting through
        # argtypes at each call cost about as much as the system call
    except (OSError, AttributeError):
        return None
    return libc


async def _fallback_sleep_until(deadline: float) -> None:
    delay = deadline - time.perf_counter()
    while delay > 0:
        await asyncio.sleep(delay)
        delay = deadline - time.perf_counter()


class Clock:
    """``await clock.sleep_until(deadline)``; bound to the running loop at first use, ``close()`` frees it."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd = -1
        self._libc: ctypes.CDLL | None = None
        # The deadlines waited for, in a heap of floats (cheaper to order than tuples), each with its (waiter,
        # callback) in ``_waiting``; two waiters of one deadline get keys one float apart (``math.nextafter``).
        # Callback None: the waiter's result is set at the deadline; else the callback is called then, unless the
        # waiter is done (cancelled) by that time (``call_at``).
        self._heap: list[float] = []
        self._waiting: dict[float, tuple[asyncio.Future[None], Callable[[], float] | None]] = {}
        self._armed = 0.0  # deadline the timer is set for; 0 = not armed
        self._spec = _Itimerspec()
        self._spec_ref = ctypes.byref(self._spec)
        self._value = self._spec.it_value  # a view of the deadline's fields, made once
        self._settime: Any = None

    @property
    def precise(self) -> bool:
        return self._fd >= 0

    def can_call_at(self) -> bool:
        """True when ``call_at`` may be used: the clock is bound to the running loop and uses its timerfd."""
        if self._loop is None:
            self._bind()
        return self._fd >= 0

    def _bind(self) -> None:
        self._loop = asyncio.get_running_loop()
        libc = _libc()
        if libc is None:
            return
        fd = libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            return
        try:
            self._loop.add_reader(fd, self._fire)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - loops without add_reader
            os.close(fd)
            return
        self._fd, self._libc, self._settime = fd, libc, libc.timerfd_settime

    async def sleep_until(self, deadline: float) -> None:
        """Return at ``deadline`` (a ``time.perf_counter()`` value); at once when it has passed."""
        if self._loop is None:
            self._bind()
        if self._fd < 0:
            await _fallback_sleep_until(deadline)
            return
        if deadline <= time.perf_counter():
            return
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._push(deadline, (fut, None))
        await fut

    def call_at(self, deadline: float, waiter: asyncio.Future[None], callback: Callable[[], float]) -> None:
        """Call ``callback()`` from the clock's wake-up at ``deadline`` (no task step in between), unless ``waiter``
        is done by then, and again at the deadline it returns (0: not again); ``close()`` cancels ``waiter``. Only
        when ``can_call_at()``; ``callback`` must not raise. A stream uses it to write each token from the wake-up
        itself (``mock_llm.ticker``)."""
        self._push(deadline, (waiter, callback))

    def _push(self, deadline: float, entry: tuple[asyncio.Future[None], Callable[[], float] | None]) -> None:
        waiting = self._waiting
        while deadline in waiting:
            deadline = math.nextafter(deadline, math.inf)
        waiting[deadline] = entry
        heapq.heappush(self._heap, deadline)
        if not self._armed or deadline < self._armed:
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        """Set the timer to ``deadline``; 0 disarms it (a zero ``it_value``)."""
        value = self._value
        value.tv_sec, value.tv_nsec = divmod(int(deadline * 1e9), 1_000_000_000)
        self._settime(self._fd, _TFD_TIMER_ABSTIME, self._spec_ref, None)
        self._armed = deadline

    def _fire(self) -> None:
        # No read() of the expiration count: setting the timer again (or disarming it) at the end zeroes it, which
        # is what makes the fd stop being readable; one system call per wake-up less.
        self._armed = -1.0  # callbacks may add waiters: the timer is armed once, after them
        heap = self._heap
        due = time.perf_counter() + SLACK_S
        waiting = self._waiting
        pop, push, nextafter = heapq.heappop, heapq.heappush, math.nextafter
        try:
            while heap and heap[0] <= due:
                entry = waiting.pop(pop(heap))
                fut, callback = entry
                if fut.done():
                    continue
                if callback is None:
                    fut.set_result(None)
                    continue
                again = callback()
                if again:  # the same entry again, at the deadline the callback returned
                    while again in waiting:
                        again = nextafter(again, math.inf)
                    waiting[again] = entry
                    push(heap, again)
        finally:
            self._arm(heap[0] if heap else 0.0)  # 0: disarmed

    def close(self) -> None:
        if self._fd >= 0:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
        for fut, _ in self._waiting.values():
            if not fut.done():
                fut.cancel()
        self._heap.clear()
        self._waiting.clear()
