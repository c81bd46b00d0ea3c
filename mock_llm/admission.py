"""Admission of generations: a concurrency limit with a first-in first-out queue.

``acquire()`` returns at once while fewer than ``limit`` generations are active (``limit`` 0 = unlimited);
otherwise the caller waits in line and is handed a slot by ``release()`` in arrival order. A waiter that is
cancelled (its client went away) leaves the line without taking a slot.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Admission:
    """Counts active generations and queues the ones over the limit."""

    __slots__ = ("_waiters", "active", "limit", "max_active")

    def __init__(self, limit: int = 0) -> None:
        self.limit = limit
        self.active = 0
        self.max_active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def _has_room(self) -> bool:
        return self.limit <= 0 or self.active < self.limit

    def _take(self) -> None:
        self.active += 1
        if self.active > self.max_active:
            self.max_active = self.active

    def try_acquire(self) -> bool:
        """Take a slot now if one is free and nobody is waiting."""
        if not self._waiters and self._has_room():
            self._take()
            return True
        return False

    async def acquire(self) -> None:
        """Wait for a slot, first come first served."""
        if self.try_acquire():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed over just before the cancellation
            else:
                self._remove(fut)
            raise

    def _remove(self, fut: asyncio.Future[None]) -> None:
        try:
            self._waiters.remove(fut)
        except ValueError:
            pass

    def release(self) -> None:
        """Give a slot back; the longest waiter gets it."""
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._has_room():
            fut = self._waiters.popleft()
            if not fut.done():
                self._take()
                fut.set_result(None)

    def set_limit(self, limit: int) -> None:
        """Change the limit at run time; a higher limit admits waiters at once."""
        self.limit = limit
        self._wake()

    def reset_max(self) -> None:
        self.max_active = self.active
