"""Open-model schedules: the whole-test rate, split across workers without loss or overlap."""

from __future__ import annotations

import itertools

import pytest

from llm_users.pacing.arrival import ArrivalSpec, arrival_times


def test_constant_rate_single_worker() -> None:
    times = list(arrival_times(ArrivalSpec(4.0, "constant", duration_s=2.0)))
    assert times == pytest.approx([0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75])


@pytest.mark.parametrize("workers", [2, 3, 5])
def test_constant_rate_interleaves_exactly_across_workers(workers: int) -> None:
    spec = ArrivalSpec(10.0, "constant", duration_s=3.0)
    union = sorted(itertools.chain.from_iterable(arrival_times(spec, i, workers) for i in range(workers)))
    assert union == pytest.approx(list(arrival_times(spec)))


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_poisson_rate_is_the_total_rate(workers: int) -> None:
    spec = ArrivalSpec(50.0, "poisson", duration_s=200.0, seed=7)
    n = sum(len(list(arrival_times(spec, i, workers))) for i in range(workers))
    assert n == pytest.approx(50.0 * 200.0, rel=0.03)


def test_poisson_is_reproducible_with_a_seed_and_differs_per_worker() -> None:
    spec = ArrivalSpec(5.0, "poisson", duration_s=10.0, seed=1)
    assert list(arrival_times(spec, 0, 2)) == list(arrival_times(spec, 0, 2))
    assert list(arrival_times(spec, 0, 2)) != list(arrival_times(spec, 1, 2))


def test_zero_rate_yields_nothing() -> None:
    assert list(arrival_times(ArrivalSpec(0.0, duration_s=5.0))) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": -1.0}, "arrival rate must be a number >= 0, got -1.0"),
        ({"rate": float("nan")}, "arrival rate must be a number >= 0, got nan"),
        ({"rate": 1.0, "kind": "burst"}, "arrival kind must be one of constant, poisson, got 'burst'"),
        ({"rate": 1.0, "duration_s": 0}, "arrival duration must be > 0 seconds, got 0"),
    ],
)
def test_bad_specs(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as err:
        ArrivalSpec(**kwargs)
    assert str(err.value) == message


def test_bad_worker_index() -> None:
    with pytest.raises(ValueError, match=r"worker_index 2 is not in \[0, 2\)"):
        list(arrival_times(ArrivalSpec(1.0), 2, 2))
