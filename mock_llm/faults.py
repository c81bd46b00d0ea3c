"""Fault selection: from the ``X-Mock-Fault: KIND[:ARG]`` request header or from seeded-random config rules.

A header always wins over rules. Every kind applies to the LLM endpoints; only ``error`` applies to the
other endpoints (a header asking for another kind there is ignored, a rule cannot be configured so).
Control endpoints (``/mock/...``) never get faults.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mock_llm.config import FAULT_KINDS, ConfigError, FaultRule, check_fault_arg

DEFAULT_ARGS: dict[str, float] = {
    "error": 500,
    "stall": 30.0,
    "slow_headers": 5.0,
    "oversized": 10 * 1024 * 1024,
}


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault to inject; ``arg`` None means the kind's default (for token kinds: mid-stream)."""

    kind: str
    arg: float | None = None

    def value(self) -> float | None:
        return self.arg if self.arg is not None else DEFAULT_ARGS.get(self.kind)

    def at_token(self, n_tokens: int) -> int:
        """Token index where a mid-stream fault fires: the arg of a token kind (disconnect, malformed,
        sse_error), else half of the output (stall: its arg is a duration)."""
        if self.arg is None or FAULT_KINDS[self.kind] != "tokens":
            return n_tokens // 2
        return min(int(self.arg), n_tokens)


def parse_header(value: str) -> Fault:
    """``KIND[:ARG]`` -> Fault, or ConfigError naming the header."""
    kind, sep, arg_text = value.strip().partition(":")
    kind = kind.strip()
    where = "X-Mock-Fault"
    if kind not in FAULT_KINDS:
        raise ConfigError(f"{where}: expected one of {', '.join(FAULT_KINDS)}, got {kind!r}")
    if not sep:
        return Fault(kind)
    try:
        arg: float = int(arg_text) if arg_text.strip().isdigit() else float(arg_text)
    except ValueError:
        raise ConfigError(f"{where}: expected a number after {kind}:, got {arg_text!r}") from None
    check_fault_arg(kind, arg, where)
    return Fault(kind, arg)


class FaultPlan:
    """The configured fault rules, matched by path, rolled with one seeded generator."""

    __slots__ = ("_by_path", "_rng", "_wild")

    def __init__(self, rules: list[FaultRule], seed: int) -> None:
        self._rng = random.Random(seed ^ 0x5EED_FA17)
        self._by_path: dict[str, list[FaultRule]] = {}
        self._wild: list[FaultRule] = []
        for rule in rules:
            if rule.rate <= 0:
                continue
            if rule.path == "*":
                self._wild.append(rule)
            else:
                self._by_path.setdefault(rule.path, []).append(rule)

    def __bool__(self) -> bool:
        return bool(self._by_path or self._wild)

    def roll(self, path: str, llm: bool) -> Fault | None:
        """The first matching rule (exact path rules before '*') whose roll hits, or None."""
        for rule in (*self._by_path.get(path, ()), *self._wild):
            if not llm and rule.kind != "error":
                continue
            if self._rng.random() < rule.rate:
                return Fault(rule.kind, rule.arg)
        return None
