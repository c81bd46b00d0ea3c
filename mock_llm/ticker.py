"""A stream's tokens written from the clock's wake-ups, without a task step per token.

A paced stream used to wake its task for every token (a Future per token, set by the clock, then the task's
step through the coroutines of the call). ``TokenTicker`` instead asks the clock (``Clock.call_at``) to call it at
the token's deadline, writes the token there and returns the next deadline, to be called again, and wakes the task only
when the stream needs it: at a fault's token, for the last token (the task writes it with the end of the stream,
in one write), when the next token is already due (the task's loop sends tokens that are behind schedule in
batches), when the transport asks to drain, or when the client is gone.
The bytes, the deadlines, the ``mock_sent_ns`` stamps (taken just before the write, as in the task's loop) and the
counters are those of the task's loop (``api_openai.run_stream``), which keeps every other case.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from mock_llm.app import LlmCall, MockApp
from mock_llm.latency import TokenSchedule
from mock_llm.protocol import Connection, frame
from mock_llm.text import SEQUENCE_LENGTH


class TokenTicker:
    """Writes tokens ``i`` .. of one stream at their deadlines from the clock's wake-ups (``run``)."""

    __slots__ = (
        "_call",
        "_clock",
        "_conn",
        "_content",
        "_loop",
        "_offset",
        "_reasoning",
        "_reasoning_n",
        "_schedule",
        "_seq",
        "_stats",
        "_stop",
        "_total",
        "_waiter",
        "_write",
        "deadline",
        "index",
    )

    def __init__(
        self,
        app: MockApp,
        conn: Connection,
        schedule: TokenSchedule,
        enc: Any,
        call: LlmCall,
        words: tuple[list[bytes], int, int],
    ) -> None:
        """``words``: the word sequence, the stream's offset in it, and the number of reasoning tokens first."""
        self._clock = app.clock
        self._conn = conn
        self._schedule = schedule
        self._content = _framed(enc, "content")
        self._reasoning = _framed(enc, "reasoning")
        self._call = call
        self._stats = app.stats
        self._seq, self._offset, self._reasoning_n = words
        self._loop = asyncio.get_running_loop()
        self._total = 0
        self._stop = 0
        self._waiter: asyncio.Future[None] = self._loop.create_future()  # one per run()
        transport = conn.transport
        assert transport is not None  # the stream's headers were written
        self._write = transport.write
        self.index = 0
        self.deadline = 0.0

    async def run(self, index: int, deadline: float, total: int, stop: int) -> int:
        """Write token ``index`` (due at ``deadline``, in the future) and the next ones at their deadlines, until
        token ``stop`` (not written), the end, a token already due, a paused transport or a closed connection;
        returns the index of the first token not written, whose deadline is then ``self.deadline`` (when below
        ``total``: the schedule is advanced to it)."""
        self.index, self.deadline, self._total, self._stop = index, deadline, total, stop
        waiter = self._loop.create_future()
        self._waiter = waiter
        self._clock.call_at(deadline, waiter, self.tick)
        await waiter
        return self.index

    def tick(self) -> float:
        """The clock's call at the deadline of token ``index``; returns the next token's deadline, or 0 after
        waking the task."""
        waiter = self._waiter
        try:
            conn = self._conn
            if conn.closed:
                waiter.set_result(None)
                return 0.0
            i = self.index
            word = self._seq[(self._offset + i) % SEQUENCE_LENGTH]
            self._write(self._reasoning(word) if i < self._reasoning_n else self._content(word))
            stats = self._stats
            if not i:
                stats.observe_ttft(time.perf_counter() - self._call.arrived)
            self._call.sent += 1
            stats.tokens_served += 1
            i += 1
            self.index = i
            if i < self._total:
                self.deadline = self._schedule.advance()
            if i >= self._stop or conn.write_paused or self.deadline <= time.perf_counter():
                waiter.set_result(None)
                return 0.0
            return self.deadline
        except Exception as exc:  # handed to the stream's task, never to the clock's wake-up
            waiter.set_exception(exc)
            return 0.0


def _framed(enc: Any, kind: str) -> Callable[[bytes], bytes]:
    """The encoder's ``framed_<kind>`` (one formatting: ``chunks.ChatChunks``), else ``frame`` of its ``<kind>``."""
    framed: Callable[[bytes], bytes] | None = getattr(enc, f"framed_{kind}", None)
    if framed is not None:
        return framed
    event: Callable[[bytes], bytes] = getattr(enc, kind)
    return lambda text: frame(event(text))
