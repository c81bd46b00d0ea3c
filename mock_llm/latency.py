"""The latency model: output length, time to first token, per-token delays and the overload slowdown.

Token ``i`` (0-based) of a generation that started at ``t0`` is due at ``t0 + ttft + itl_1 + ... + itl_i``:
deadlines are computed from the start, never from the time the previous token was actually written, so
late wake-ups do not accumulate into drift. Delays get gaussian jitter (clipped at 0) and, while more
generations are active than ``capacity``, are multiplied by ``(active / capacity) ** overload_exponent``,
evaluated for each delay so that a generation speeds up again when the load drops.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from mock_llm.config import Config, OutputTokens


def overload_multiplier(active: int, capacity: int, exponent: float) -> float:
    """Slowdown factor of every delay: 1 up to ``capacity`` active generations, then a power law."""
    if capacity <= 0 or active <= capacity:
        return 1.0
    return float((active / capacity) ** exponent)


def sample_output_tokens(dist: OutputTokens, rng: random.Random) -> int:
    """One output length from the configured distribution (normal is rounded and clipped to [min, max])."""
    if dist.dist == "fixed":
        return dist.value
    if dist.dist == "uniform":
        return rng.randint(dist.min, dist.max)
    value = round(rng.gauss(dist.mean, dist.sd))
    return max(dist.min, min(dist.max, value))


def jittered(base_s: float, jitter_s: float, rng: random.Random) -> float:
    """``base_s`` plus gaussian noise of sd ``jitter_s``, clipped at 0."""
    if jitter_s <= 0.0:
        return base_s
    return max(0.0, rng.gauss(base_s, jitter_s))


class LatencyModel:
    """Delays of one configuration, in seconds; ``rng`` is the request's own generator."""

    __slots__ = ("capacity", "constant_itl", "exponent", "itl_s", "jitter_s", "output", "prefill_s", "ttft_s")

    def __init__(self, cfg: Config) -> None:
        self.ttft_s = cfg.ttft_ms / 1000.0
        self.prefill_s = cfg.prefill_ms_per_token / 1000.0
        self.itl_s = cfg.itl_ms / 1000.0
        self.jitter_s = cfg.jitter_ms / 1000.0
        self.output = cfg.output_tokens
        self.capacity = cfg.capacity
        self.exponent = cfg.overload_exponent
        self.constant_itl = self.jitter_s <= 0 and self.capacity <= 0  # no jitter, no overload: a fast path

    def output_tokens(self, max_tokens: int | None, rng: random.Random) -> tuple[int, str]:
        """Number of output tokens and the finish reason: ``max_tokens`` when given ("length"),
        else a draw from the distribution ("stop")."""
        if max_tokens is not None:
            return max_tokens, "length"
        return sample_output_tokens(self.output, rng), "stop"

    def multiplier(self, active: int) -> float:
        return overload_multiplier(active, self.capacity, self.exponent)

    def ttft(self, prompt_tokens: float, rng: random.Random, multiplier: float = 1.0) -> float:
        """Delay from the start of the generation to the first token (``prompt_tokens``: the ones to prefill)."""
        return jittered(self.ttft_s + self.prefill_s * prompt_tokens, self.jitter_s, rng) * multiplier

    def itl(self, rng: random.Random, multiplier: float = 1.0) -> float:
        """Delay between two successive tokens."""
        return jittered(self.itl_s, self.jitter_s, rng) * multiplier


class TokenSchedule:
    """The deadlines of the tokens of one generation, on the ``time.perf_counter()`` clock.

    ``active`` is called for every delay, so the overload multiplier follows the current load.
    """

    __slots__ = ("_active", "_model", "_rng", "index", "next_deadline")

    def __init__(
        self,
        model: LatencyModel,
        start: float,
        prompt_tokens: float,
        rng: random.Random,
        active: Callable[[], int],
    ) -> None:
        self._model = model
        self._rng = rng
        self._active = active
        self.index = 0
        self.next_deadline = start + model.ttft(prompt_tokens, rng, model.multiplier(active()))

    def advance(self) -> float:
        """Move to the next token; returns its deadline."""
        self.index += 1
        model = self._model
        if model.constant_itl:
            self.next_deadline += model.itl_s
        else:
            self.next_deadline += model.itl(self._rng, model.multiplier(self._active()))
        return self.next_deadline

    def deadline_of(self, count: int) -> float:
        """Advance until the token of index ``count - 1`` (the last of ``count`` tokens); its deadline."""
        while self.index < count - 1:
            self.advance()
        return self.next_deadline
