"""The mock's latency model: deadline schedule, prefill, output lengths, jitter, overload, FIFO admission."""

from __future__ import annotations

import asyncio
import random

import pytest

from mock_llm.admission import Admission
from mock_llm.config import Config, OutputTokens, from_mapping
from mock_llm.latency import LatencyModel, TokenSchedule, overload_multiplier, sample_output_tokens


def model(**settings: object) -> LatencyModel:
    return LatencyModel(from_mapping(settings))


def deadlines(schedule: TokenSchedule, n: int) -> list[float]:
    out = [schedule.next_deadline]
    out += [schedule.advance() for _ in range(n - 1)]
    return out


def test_token_i_is_due_at_start_plus_ttft_plus_i_itl() -> None:
    sched = TokenSchedule(model(ttft_ms=200, itl_ms=20), 1000.0, 0, random.Random(0), lambda: 1)
    assert deadlines(sched, 5) == pytest.approx([1000.2, 1000.22, 1000.24, 1000.26, 1000.28])


def test_deadlines_do_not_depend_on_when_they_are_read() -> None:
    """No drift: reading the next deadline late (a late wake-up) does not push the later ones."""
    a = TokenSchedule(model(ttft_ms=10, itl_ms=5), 0.0, 0, random.Random(0), lambda: 1)
    b = TokenSchedule(model(ttft_ms=10, itl_ms=5), 0.0, 0, random.Random(0), lambda: 1)
    late = []
    for _ in range(50):
        late.append(b.advance())
    assert late == pytest.approx(deadlines(a, 51)[1:])
    assert late[-1] == pytest.approx(0.010 + 50 * 0.005)


def test_prefill_adds_per_prompt_token_to_the_ttft() -> None:
    m = model(ttft_ms=100, prefill_ms_per_token=0.5)
    assert m.ttft(0, random.Random(0)) == pytest.approx(0.100)
    assert m.ttft(400, random.Random(0)) == pytest.approx(0.300)


def test_deadline_of_the_last_token_for_non_streamed_answers() -> None:
    sched = TokenSchedule(model(ttft_ms=50, itl_ms=10), 0.0, 0, random.Random(0), lambda: 1)
    assert sched.deadline_of(1) == pytest.approx(0.050)
    assert sched.deadline_of(11) == pytest.approx(0.150)


@pytest.mark.parametrize(
    ("active", "capacity", "exponent", "expected"),
    [
        (5, 0, 2.0, 1.0),  # capacity 0: never slows down
        (4, 4, 2.0, 1.0),  # at capacity: normal speed
        (8, 4, 1.0, 2.0),
        (8, 4, 2.0, 4.0),
        (6, 4, 0.0, 1.0),
        (1, 4, 3.0, 1.0),
    ],
)
def test_overload_multiplier(active: int, capacity: int, exponent: float, expected: float) -> None:
    assert overload_multiplier(active, capacity, exponent) == pytest.approx(expected)


def test_overload_is_evaluated_per_token_so_a_stream_recovers_when_load_drops() -> None:
    active = [8]
    sched = TokenSchedule(model(ttft_ms=100, itl_ms=10, capacity=4), 0.0, 0, random.Random(0), lambda: active[0])
    assert sched.next_deadline == pytest.approx(0.200)  # ttft doubled: 8 active for capacity 4
    assert sched.advance() - 0.200 == pytest.approx(0.020)  # still overloaded
    active[0] = 2
    assert sched.advance() - 0.220 == pytest.approx(0.010)  # load dropped: normal speed again


@pytest.mark.parametrize(
    ("dist", "lo", "hi"),
    [
        (OutputTokens(dist="fixed", value=42), 42, 42),
        (OutputTokens(dist="uniform", min=10, max=20), 10, 20),
        (OutputTokens(dist="normal", mean=50, sd=30, min=30, max=60), 30, 60),
    ],
)
def test_output_lengths_stay_in_bounds_and_repeat_with_the_seed(dist: OutputTokens, lo: int, hi: int) -> None:
    first = [sample_output_tokens(dist, random.Random(7)) for _ in range(3)]
    draws = [sample_output_tokens(dist, rng) for rng in [random.Random(7)] for _ in range(2000)]
    assert all(lo <= d <= hi for d in draws)
    assert first == [sample_output_tokens(dist, random.Random(7)) for _ in range(3)]
    if dist.dist == "uniform":
        assert set(draws) == set(range(10, 21))
    if dist.dist == "normal":  # clipped: both bounds are hit
        assert min(draws) == 30 and max(draws) == 60


def test_max_tokens_wins_over_the_distribution_and_finishes_with_length() -> None:
    m = model(output_tokens={"dist": "uniform", "min": 5, "max": 9})
    assert m.output_tokens(17, random.Random(0)) == (17, "length")
    n, reason = m.output_tokens(None, random.Random(0))
    assert 5 <= n <= 9 and reason == "stop"


def test_jitter_is_gaussian_around_the_delay_and_never_negative() -> None:
    m = model(itl_ms=2, jitter_ms=4)
    rng = random.Random(1)
    values = [m.itl(rng) for _ in range(5000)]
    assert min(values) == 0.0  # clipped
    assert 0.002 < sum(values) / len(values) < 0.005  # the clip lifts the mean above 2 ms
    again = random.Random(1)
    assert values[:10] == [m.itl(again) for _ in range(10)]


def test_defaults_are_the_documented_ones() -> None:
    cfg = Config()
    assert (cfg.ttft_ms, cfg.itl_ms, cfg.output_tokens.value, cfg.host) == (50.0, 10.0, 64, "127.0.0.1")


# --- admission: concurrency limit with a FIFO queue ----------------------------------------------------


def test_queue_admits_in_arrival_order() -> None:
    async def scenario() -> list[int]:
        adm = Admission(limit=1)
        order: list[int] = []

        async def worker(i: int) -> None:
            await adm.acquire()
            order.append(i)
            await asyncio.sleep(0.001)
            adm.release()

        assert adm.try_acquire()  # the slot is taken: every worker queues
        tasks = [asyncio.create_task(worker(i)) for i in range(5)]
        await asyncio.sleep(0)
        assert adm.queued == 5
        adm.release()
        await asyncio.gather(*tasks)
        assert (adm.active, adm.queued, adm.max_active) == (0, 0, 1)
        return order

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]


def test_a_cancelled_waiter_leaves_the_queue_without_a_slot() -> None:
    async def scenario() -> None:
        adm = Admission(limit=1)
        assert adm.try_acquire()
        gone = asyncio.create_task(adm.acquire())
        stays = asyncio.create_task(adm.acquire())
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0)
        assert adm.queued == 1
        adm.release()
        await stays
        assert adm.active == 1 and adm.queued == 0

    asyncio.run(scenario())


def test_raising_the_limit_admits_waiters_at_once_and_zero_means_unlimited() -> None:
    async def scenario() -> None:
        adm = Admission(limit=1)
        assert adm.try_acquire()
        waiters = [asyncio.create_task(adm.acquire()) for _ in range(3)]
        await asyncio.sleep(0)
        adm.set_limit(0)
        await asyncio.gather(*waiters)
        assert adm.active == 4 and adm.max_active == 4

    asyncio.run(scenario())
