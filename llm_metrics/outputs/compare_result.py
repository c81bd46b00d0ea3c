"""The outcome of comparing two runs' summaries (``compare``): the options, one ``Change`` per compared value
with its verdict, and the ``Comparison`` with its console table (``format_text``) and JSON form (``to_json``).
Pure: no Locust import."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from llm_metrics.outputs.summary import format_number

__all__ = [
    "ALL_TAGS",
    "EXIT_BAD_INPUT",
    "EXIT_OK",
    "EXIT_REGRESSION",
    "PERCENTILE_STATS",
    "STATS",
    "Change",
    "CompareOptions",
    "Comparison",
    "Direction",
    "Verdict",
]

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_BAD_INPUT = 2
ALL_TAGS = "(all)"
PERCENTILE_STATS = ("p50", "p95", "p99")
TREND_STATS = (*PERCENTILE_STATS, "avg")
STATS = (*TREND_STATS, "rate", "per_s")

Direction = Literal["lower", "higher", "none"]
Verdict = Literal["regression", "better", "ok", "changed", "few samples", "only in base", "only in new"]


@dataclass(frozen=True)
class CompareOptions:
    tolerance: float = 0.1
    """Default relative tolerance (0.1 = 10 %)."""
    overrides: Mapping[str, float] = field(default_factory=dict)
    """``metric`` or ``metric.stat`` -> relative tolerance."""
    metrics: Sequence[str] = ()
    """Shell-style patterns of the metrics to compare; empty: all."""
    min_samples: int = 20
    min_tail_samples: int = 5
    """A percentile pN is judged only with at least this many samples above it: n * (1 - N/100) >= it."""
    min_change_ms: float = 1.0
    min_change_rate: float = 0.005

    def tolerance_for(self, metric: str, stat: str) -> float:
        """Exact ``metric.stat``, exact ``metric``, then the first matching pattern with, then without a stat."""
        for key in (f"{metric}.{stat}", metric):
            if key in self.overrides:
                return self.overrides[key]
        for with_stat in (True, False):
            for key, tol in self.overrides.items():
                name, dot, st = key.rpartition(".")
                if with_stat and dot and st == stat and fnmatch.fnmatchcase(metric, name):
                    return tol
                if not with_stat and not dot and fnmatch.fnmatchcase(metric, key):
                    return tol
        return self.tolerance

    def wants(self, metric: str) -> bool:
        return not self.metrics or any(fnmatch.fnmatchcase(metric, p) for p in self.metrics)


@dataclass(frozen=True)
class Change:
    """One compared value."""

    metric: str
    tags: str
    """``{k:v,...}``, ``(all)`` for the merge of every tag set, ``""`` for a series without tags."""
    kind: str
    stat: str
    base: float | None
    new: float | None
    base_n: int
    new_n: int
    direction: Direction
    tolerance: float
    verdict: Verdict

    @property
    def delta(self) -> float | None:
        return None if self.base is None or self.new is None else self.new - self.base

    @property
    def relative(self) -> float | None:
        d = self.delta
        if d is None or self.base is None:
            return None
        if self.base == 0:
            return 0.0 if d == 0 else math.copysign(math.inf, d)
        return d / abs(self.base)

    def to_json(self) -> dict[str, Any]:
        rel = self.relative
        return {
            "metric": self.metric,
            "tags": self.tags,
            "kind": self.kind,
            "stat": self.stat,
            "base": self.base,
            "new": self.new,
            "delta": self.delta,
            "relative": rel if rel is None or math.isfinite(rel) else None,
            "base_samples": self.base_n,
            "new_samples": self.new_n,
            "direction": self.direction,
            "tolerance": self.tolerance,
            "verdict": self.verdict,
        }


@dataclass
class Comparison:
    base_name: str
    new_name: str
    options: CompareOptions
    changes: list[Change]
    base_duration: float | None = None
    new_duration: float | None = None

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == "regression"]

    @property
    def improvements(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == "better"]

    @property
    def exit_code(self) -> int:
        return EXIT_REGRESSION if self.regressions else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base_name,
            "new": self.new_name,
            "tolerance": self.options.tolerance,
            "overrides": dict(self.options.overrides),
            "regressions": len(self.regressions),
            "improvements": len(self.improvements),
            "changes": [c.to_json() for c in self.changes],
        }

    def format_text(self, *, all_lines: bool = True) -> str:
        """Regressions first, then improvements, then (``all_lines``) every compared value."""
        o = self.options
        head = (
            f"COMPARISON  base: {self.base_name} ({_dur(self.base_duration)})  new: {self.new_name} "
            f"({_dur(self.new_duration)})\n  tolerance {o.tolerance:.0%} relative"
            + (
                f" (overrides: {', '.join(f'{k}={v:g}' for k, v in sorted(o.overrides.items()))})"
                if o.overrides
                else ""
            )
            + f"; not flagged: changes under {o.min_change_ms:g} ms or {o.min_change_rate:g} (rates), fewer than "
            f"{o.min_samples} samples or {o.min_tail_samples} above a percentile\n"
        )
        parts = [head]
        regs, better = self.regressions, self.improvements
        parts.append(f"REGRESSIONS ({len(regs)})\n" + (_rows(regs) if regs else "  none\n"))
        if better:
            parts.append(f"IMPROVEMENTS ({len(better)})\n" + _rows(better))
        if all_lines:
            parts.append(f"ALL COMPARED VALUES ({len(self.changes)})\n" + _rows(self.changes))
        verdict = (
            f"{len(regs)} regression(s) beyond tolerance: exit {EXIT_REGRESSION}"
            if regs
            else f"no regression beyond tolerance: exit {EXIT_OK}"
        )
        parts.append(verdict + "\n")
        return "\n".join(parts)


def _dur(d: float | None) -> str:
    return "duration unknown" if d is None else f"{d:.1f} s"


def _fmt(v: float | None) -> str:
    return "-" if v is None else format_number(v)


def _rows(changes: Sequence[Change]) -> str:
    marks = {"regression": "✗", "better": "↑", "changed": "~", "ok": " ", "few samples": "?"}
    rows = [["", "metric", "tags", "stat", "base", "new", "change", "verdict"]]
    for c in changes:
        rel = c.relative
        change = "-" if rel is None else "new" if math.isinf(rel) else f"{rel * 100:+.1f}%"
        better = {"lower": "lower is better", "higher": "higher is better", "none": "no direction"}[c.direction]
        rows.append(
            [
                marks.get(c.verdict, "-"),
                c.metric,
                c.tags,
                c.stat,
                _fmt(c.base),
                _fmt(c.new),
                change,
                f"{c.verdict} ({better}, tolerance {c.tolerance:.0%})"
                if c.verdict in ("regression", "better")
                else c.verdict,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {4, 5, 6}
    lines = []
    for r in rows:
        cells = [x.rjust(widths[i]) if i in right else x.ljust(widths[i]) for i, x in enumerate(r)]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return "\n".join(lines) + "\n"
