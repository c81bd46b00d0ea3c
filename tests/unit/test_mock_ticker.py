"""A stream's tokens written from the clock's wake-ups (``mock_llm.ticker.TokenTicker``), on a stand-in connection."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from typing import Any

import pytest

from mock_llm.app import LlmCall, MockApp
from mock_llm.chunks import ChatChunks
from mock_llm.clock import SLACK_S
from mock_llm.config import from_mapping
from mock_llm.latency import TokenSchedule
from mock_llm.protocol import frame
from mock_llm.ticker import TokenTicker

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux only")

ITL_S = 0.02


class _Transport:
    def __init__(self, conn: _Conn, close_after: int) -> None:
        self.conn, self.close_after = conn, close_after
        self.writes: list[tuple[float, bytes]] = []

    def write(self, data: bytes) -> None:
        self.writes.append((time.perf_counter(), data))
        if len(self.writes) == self.close_after:
            self.conn.closed = True  # the client went away after this write


class _Conn:
    def __init__(self, close_after: int = 0) -> None:
        self.closed = False
        self.write_paused = False
        self.transport = _Transport(self, close_after)


class _Raising(ChatChunks):
    def framed_content(self, text: bytes) -> bytes:
        raise ValueError("encoder failed")


async def _run(enc: Any, conn: _Conn, total: int, stop: int) -> tuple[int, list[float], MockApp, float]:
    """The index the ticker stopped at, the deadlines of the tokens it wrote, the app, and how late the next token
    was when the ticker handed back (> 0: already due, the task's loop sends it)."""
    app = MockApp(from_mapping({"ttft_ms": 2, "itl_ms": ITL_S * 1000}))
    assert app.clock.can_call_at()
    rng = random.Random(1)
    call = LlmCall("key", rng, 1, None, b"", time.perf_counter(), arrived=time.perf_counter())
    schedule = TokenSchedule(app.latency, call.start, 0, rng, lambda: 1)
    deadlines = [schedule.next_deadline]
    ticker = TokenTicker(app, conn, schedule, enc, call, (app.words.seq, 5, 0))  # type: ignore[arg-type]
    index = await ticker.run(0, schedule.next_deadline, total, stop)
    behind = time.perf_counter() - ticker.deadline
    deadlines += [deadlines[0] + k * ITL_S for k in range(1, index + 1)]
    assert call.sent == app.stats.tokens_served == min(index, len(conn.transport.writes))
    app.clock.close()
    return index, deadlines, app, behind


def test_tokens_go_out_at_their_deadlines_as_framed_events_until_the_stop() -> None:
    enc = ChatChunks("chatcmpl-mock1", 1700000000, "m", False)
    conn = _Conn()
    index, deadlines, app, behind = asyncio.run(_run(enc, conn, 10, 6))
    # token 6 (the stop) is left to the stream's task; so is an earlier one found already due (a starved machine)
    assert index == 6 or (0 < index < 6 and behind > 0)
    writes = conn.transport.writes
    assert [data for _, data in writes] == [frame(enc.content(app.words.seq[5 + i])) for i in range(index)]
    for (at, _), due in zip(writes, deadlines, strict=False):
        assert at >= due - SLACK_S
    assert app.stats.ttft_buckets != [0] * len(app.stats.ttft_buckets)  # the first token's TTFT was observed


def test_a_closed_connection_ends_the_run_and_an_encoder_error_reaches_the_task() -> None:
    conn = _Conn(close_after=3)
    index, _, _, behind = asyncio.run(_run(ChatChunks("c", 1, "m", True), conn, 10, 10))
    assert len(conn.transport.writes) == index
    assert index == 3 or (0 < index < 3 and behind > 0)
    with pytest.raises(ValueError, match="encoder failed"):
        asyncio.run(_run(_Raising("c", 1, "m", False), _Conn(), 10, 10))
