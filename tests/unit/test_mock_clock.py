"""The mock's timerfd clock: ``call_at`` callbacks (a stream's tokens written from the wake-up) next to sleeps; the
chat events the wake-up writes, framed in one formatting."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Callable

import pytest

from mock_llm.chunks import ChatChunks
from mock_llm.clock import SLACK_S, Clock

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux only")


@linux_only
def test_call_at_calls_back_at_the_deadline_and_again_at_the_deadline_it_returns() -> None:
    async def main() -> list[tuple[float, float]]:
        clock = Clock()
        assert clock.can_call_at()
        waiter = asyncio.get_running_loop().create_future()
        calls: list[tuple[float, float]] = []
        deadline = time.perf_counter() + 0.005

        def tick() -> float:
            nonlocal deadline
            calls.append((deadline, time.perf_counter()))
            if len(calls) == 5:
                waiter.set_result(None)
                return 0.0
            deadline += 0.002
            return deadline  # called again then

        clock.call_at(deadline, waiter, tick)
        await asyncio.wait_for(waiter, 2)
        clock.close()
        return calls

    calls = asyncio.run(main())
    assert len(calls) == 5
    for due, at in calls:
        assert at >= due - SLACK_S  # never earlier than the clock's slack
        assert at - due < 0.5


async def _release_order() -> tuple[list[str], float]:
    """Two sleeps (40 and 100 ms) and a callback (70 ms) on one clock: the order they were released in, and how
    long after the first deadline's origin the last of them was registered."""
    clock = Clock()
    assert clock.can_call_at()
    loop = asyncio.get_running_loop()
    order: list[str] = []
    t0 = time.perf_counter()
    waiter = loop.create_future()

    def once() -> float:
        order.append("call 70 ms")
        waiter.set_result(None)
        return 0.0

    async def sleeper(ms: int) -> None:
        await clock.sleep_until(t0 + ms / 1000)
        order.append(f"sleep {ms} ms")

    tasks = [asyncio.ensure_future(sleeper(100)), asyncio.ensure_future(sleeper(40))]
    await asyncio.sleep(0)  # both sleepers have run to their wait: registered
    clock.call_at(t0 + 0.070, waiter, once)
    registered = time.perf_counter() - t0
    await asyncio.wait_for(asyncio.gather(*tasks, waiter), 2)
    clock.close()
    return order, registered


@linux_only
def test_callbacks_and_sleeps_are_released_in_deadline_order() -> None:
    # the order is only defined when all three were registered before the first deadline (40 ms): a process
    # stalled longer than that by a busy machine measures nothing, and the attempt is made again
    for _ in range(5):
        order, registered = asyncio.run(_release_order())
        if registered < 0.030:
            assert order == ["sleep 40 ms", "call 70 ms", "sleep 100 ms"]
            return
    pytest.fail(f"the process was stalled over 30 ms in each of 5 attempts (last: {registered * 1000:.1f} ms)")


@linux_only
def test_a_done_waiter_is_not_called_back_and_close_cancels_the_pending_ones() -> None:
    async def main() -> tuple[list[str], bool]:
        clock = Clock()
        assert clock.can_call_at()
        loop = asyncio.get_running_loop()
        called: list[str] = []

        def note(what: str) -> Callable[[], float]:
            def callback() -> float:
                called.append(what)
                return 0.0

            return callback

        gone = loop.create_future()
        gone.cancel()  # the stream's task was cancelled: the client went away
        clock.call_at(time.perf_counter() + 0.002, gone, note("gone"))
        await clock.sleep_until(time.perf_counter() + 0.010)
        pending = loop.create_future()
        clock.call_at(time.perf_counter() + 10, pending, note("pending"))
        clock.close()
        return called, pending.cancelled()

    called, cancelled = asyncio.run(main())
    assert called == []
    assert cancelled


@pytest.mark.parametrize("timestamps", [False, True])
@pytest.mark.parametrize("kind", ["content", "reasoning"])
def test_a_framed_chat_event_is_the_event_in_one_chunk(kind: str, timestamps: bool) -> None:
    enc = ChatChunks("chatcmpl-mock1", 1700000000, "m", timestamps)
    for word in (b"the ", b"caf\xc3\xa9 ", b"x"):
        framed = getattr(enc, f"framed_{kind}")(word)
        size, _, rest = framed.partition(b"\r\n")
        assert rest.endswith(b"\r\n") and int(size, 16) == len(rest) - 2
        event = rest[:-2]
        expected = getattr(enc, kind)(word)
        if timestamps:  # the stamps are two reads of the clock: compare the rest, and the stamp's shape
            stamp = re.search(rb',"mock_sent_ns":(\d+)\}\n\n$', event)
            assert stamp is not None
            event = event.replace(stamp.group(1), b"0")
            expected = re.sub(rb'("mock_sent_ns":)\d+', rb"\g<1>0", expected)
        assert event == expected
        assert json.loads(event[len(b"data: ") :])["choices"][0]["delta"]
