"""Token-deadline accuracy and cost: ``asyncio.sleep`` on uvloop against the mock's timerfd ``Clock``, waited for
by a task (``sleep_until``) or calling a callback at each deadline (``call_at``, as the mock's paced streams since
issue 19's session 6).

N coroutines (streams) each wait for T deadlines ``start + i * itl`` (staggered starts), on one core; for
each wake-up the lateness (actual - deadline) is recorded. Prints lateness percentiles in ms and the CPU
time per wake-up. No sockets: this isolates the timer.

Usage: taskset -c 0 python bench/mock_timer.py [--streams 1000] [--tokens 100] [--itl-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time

import uvloop

from mock_llm.clock import Clock


async def _stream(sleep_until: object, start: float, n: int, itl: float, late: list[float]) -> None:
    for i in range(1, n + 1):
        deadline = start + i * itl
        await sleep_until(deadline)  # type: ignore[operator]
        late.append(time.perf_counter() - deadline)


async def _asyncio_sleep_until(deadline: float) -> None:
    delay = deadline - time.perf_counter()
    while delay > 0:  # uvloop rounds to ms and may wake early: sleep again
        await asyncio.sleep(delay)
        delay = deadline - time.perf_counter()


def _ticks(clock: Clock, start: float, n: int, itl: float, late: list[float]) -> asyncio.Future[None]:
    """A stream whose wake-ups are ``Clock.call_at`` callbacks (as ``mock_llm.ticker``): no task step per token."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    i = 1

    def tick() -> float:
        nonlocal i
        deadline = start + i * itl
        late.append(time.perf_counter() - deadline)
        i += 1
        if i > n:
            done.set_result(None)
            return 0.0
        return start + i * itl

    clock.call_at(start + itl, done, tick)
    return done


async def run(kind: str, streams: int, tokens: int, itl: float) -> str:
    clock = Clock()
    sleep_until = clock.sleep_until if kind == "timerfd Clock" else _asyncio_sleep_until
    late: list[float] = []
    t0 = time.perf_counter() + 0.05
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    if kind == "timerfd Clock.call_at":
        assert clock.can_call_at()
        await asyncio.gather(*(_ticks(clock, t0 + k * itl / streams, tokens, itl, late) for k in range(streams)))
    else:
        await asyncio.gather(*(_stream(sleep_until, t0 + k * itl / streams, tokens, itl, late) for k in range(streams)))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    clock.close()
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    ms = sorted(x * 1000 for x in late)
    q = [ms[int(len(ms) * p)] for p in (0.01, 0.5, 0.9, 0.99)]
    return (f"| {kind} | {streams} x {tokens} | {q[0]:.3f} | {q[1]:.3f} | {q[2]:.3f} | {q[3]:.3f} | {ms[-1]:.3f} "
            f"| {cpu / len(ms) * 1e6:.1f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--itl-ms", type=float, default=20.0)
    args = parser.parse_args()
    print("| timer | streams x tokens | p1 ms | p50 ms | p90 ms | p99 ms | max ms | CPU us per wake-up |")
    print("|---|---|---|---|---|---|---|---|")
    for streams in sorted({50, args.streams}):
        for kind in ("asyncio.sleep (uvloop)", "timerfd Clock", "timerfd Clock.call_at"):
            print(uvloop.run(run(kind, streams, args.tokens, args.itl_ms / 1000)), flush=True)


if __name__ == "__main__":
    main()
