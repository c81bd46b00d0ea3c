"""Open-model arrival schedules (pure): when the next request of a scenario is due.

The rate is for the whole test. In a distributed run each of ``workers`` processes takes its share: a constant
schedule is interleaved (worker i fires at offsets (i + k * workers) / rate, so the union is exactly the global
schedule); a Poisson schedule is split into independent Poisson processes of rate/workers, whose superposition is
a Poisson process of the full rate. Times are seconds from the scenario start.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

KINDS = ("constant", "poisson")


@dataclass(frozen=True, slots=True)
class ArrivalSpec:
    rate: float  # requests per second for the whole test
    kind: str = "constant"
    duration_s: float | None = None  # None: until stopped
    seed: int | None = None

    def __post_init__(self) -> None:
        if not (self.rate >= 0):
            raise ValueError(f"arrival rate must be a number >= 0, got {self.rate!r}")
        if self.kind not in KINDS:
            raise ValueError(f"arrival kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.duration_s is not None and not (self.duration_s > 0):
            raise ValueError(f"arrival duration must be > 0 seconds, got {self.duration_s!r}")


def arrival_times(spec: ArrivalSpec, worker_index: int = 0, workers: int = 1) -> Iterator[float]:
    """Yield this worker's scheduled times (seconds from start), increasing, ending at ``duration_s``."""
    if workers < 1 or not (0 <= worker_index < workers):
        raise ValueError(f"worker_index {worker_index} is not in [0, {workers})")
    if spec.rate == 0:
        return
    end = spec.duration_s
    if spec.kind == "constant":
        t = worker_index / spec.rate
        k = 0
        while end is None or t < end:
            yield t
            k += 1
            t = (worker_index + k * workers) / spec.rate
    else:
        seed = None if spec.seed is None else spec.seed * 1_000_003 + worker_index
        rng = random.Random(seed)
        lam = spec.rate / workers
        t = rng.expovariate(lam)
        while end is None or t < end:
            yield t
            t += rng.expovariate(lam)
