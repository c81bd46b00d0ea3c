"""The capacity search's settings: ``conf/capacity.yaml`` (``--capacity-conf``) and the flags that override it.

File format (every key optional; the defaults below)::

    capacity:
      mode: users              # users: concurrent Users (closed model) | rate: arrivals/s (open model)
      start: 1                 # first level
      max: 256                 # highest level tried
      growth: 2                # ramp factor (> 1): each step multiplies the level until one fails
      increment: 0             # > 0: add this much per ramp step instead
      resolution: 1            # stop when the failing level is at most this above the passing one
      relative_resolution: 0.05  # ... or at most this fraction of the passing level above it
      min_level: 0             # lowest level of the descent when the first step fails (0: 1 User / resolution)
      max_steps: 30
      settle: 10s              # discarded at each step start; >= 3 s in a distributed run (worker reports)
      hold: 30s                # judged: every threshold on this step's data alone
      report_timeout: 6s       # distributed: wait at most this after the hold for every worker's next report
      cooldown: 5s             # after a failing step: no load this long (every User stopped) before the next
      max_duration: 1h         # time budget of the whole search (the limit so far is reported)
      min_samples: 20          # a step with fewer completed requests fails (not enough data)
      min_limit: 0             # verdict: the run fails (exit 99) when the limit is below this; 0: any limit
      spawn_rate: 0            # Users/s when the level changes; 0: the whole change within about a second
      users_per_rps: 20        # rate mode: the User pool per arrival/s (idle Users take the arrivals)
      min_users: 10            # rate mode: the smallest pool
      max_users: 5000          # rate mode: the largest pool

Durations are seconds or k6 durations (``"30s"``, ``"2m"``, ``"1m30s"``). A bad value is an error naming
the file (or the flag) and the key. No Locust import.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_metrics.engine.config import ValueReader, parse_yaml, read_text, show
from shapes.capacity_search import MODES, SearchSpec, StepTiming

__all__ = [
    "CAPACITY_CONF_ENV",
    "CAPACITY_CONF_FLAG",
    "DEFAULT_CAPACITY_FILE",
    "OVERRIDES",
    "CapacityConfigError",
    "CapacityPlan",
    "UserPool",
    "load_capacity",
    "parse_capacity",
]

DEFAULT_CAPACITY_FILE = Path(__file__).resolve().parent.parent / "conf" / "capacity.yaml"
CAPACITY_CONF_FLAG = "--capacity-conf"
CAPACITY_CONF_ENV = "CAPACITY_CONF"

_NUMBERS = ("start", "max", "growth", "increment", "resolution", "relative_resolution", "min_level")
_DURATIONS = ("settle", "hold", "report_timeout", "max_duration", "cooldown")
_COUNTS = ("max_steps", "min_samples", "users_per_rps", "min_users", "max_users")
_OTHER = ("mode", "min_limit", "spawn_rate")
_KEYS = (*_OTHER, *_NUMBERS, *_DURATIONS, *_COUNTS)

#: Flags that override one key of the file: (key, flag, environment variable, help).
OVERRIDES: tuple[tuple[str, str, str, str], ...] = (
    ("mode", "--capacity-mode", "CAPACITY_MODE", "users (concurrent Users) or rate (arrivals/s, open model)"),
    ("start", "--capacity-start", "CAPACITY_START", "first level"),
    ("max", "--capacity-max", "CAPACITY_MAX", "highest level tried"),
    ("resolution", "--capacity-resolution", "CAPACITY_RESOLUTION", "stop when the gap is at most this"),
    ("settle", "--capacity-settle", "CAPACITY_SETTLE", "seconds discarded at each step start"),
    ("hold", "--capacity-hold", "CAPACITY_HOLD", "seconds judged per step"),
    ("cooldown", "--capacity-cooldown", "CAPACITY_COOLDOWN", "seconds without load after a failing step"),
    ("min_limit", "--capacity-min-limit", "CAPACITY_MIN_LIMIT", "fail the run when the limit is below this"),
)


class CapacityConfigError(ValueError):
    """A capacity setting that cannot be used; the message names the file or flag and the key."""


@dataclass(frozen=True, slots=True)
class UserPool:
    """How the Users follow the level: the rate mode's pool of Users per arrival/s, and the spawn rate."""

    spawn_rate: float = 0.0
    users_per_rps: int = 20
    min_users: int = 10
    max_users: int = 5000

    def users_for_rate(self, rate: float) -> int:
        return int(min(self.max_users, max(self.min_users, math.ceil(rate * self.users_per_rps))))


@dataclass(frozen=True, slots=True)
class CapacityPlan:
    """Everything the capacity shape needs: the levels, the timing, the verdict and the rate-mode pool."""

    spec: SearchSpec
    timing: StepTiming
    min_samples: int = 20
    min_limit: float = 0.0
    pool: UserPool = field(default_factory=UserPool)
    source: str = ""

    def users_for(self, level: float) -> int:
        """Users to run at ``level``: the level itself (users mode) or the pool for that rate (rate mode)."""
        return int(level) if self.spec.mode == "users" else self.pool.users_for_rate(level)

    def spawn_rate_for(self, users_from: int, users_to: int) -> float:
        if self.pool.spawn_rate > 0:
            return self.pool.spawn_rate
        return float(max(10, 2 * abs(users_to - users_from)))

    def describe(self) -> str:
        s, t = self.spec, self.timing
        ramp = f"+{s.increment:g}" if s.increment > 0 else f"x{s.growth:g}"
        res = f"{s.resolution:g} {s.unit}" + (f" or {s.relative_resolution:.0%}" if s.relative_resolution else "")
        return (
            f"capacity search ({s.mode}): {s.start:g} to {s.max:g} {s.unit}, ramp {ramp}, bisection to {res}; "
            f"steps of {t.settle_s:g} s settle + {t.hold_s:g} s judged ({t.cooldown_s:g} s cooldown after a failure)"
            + (f", at most {t.max_duration_s:g} s" if t.max_duration_s else "")
            + (f" (from {self.source})" if self.source else "")
        )

    def to_json(self) -> dict[str, Any]:
        s, t = self.spec, self.timing
        return {
            "mode": s.mode,
            "unit": s.unit,
            "start": s.start,
            "max": s.max,
            "growth": s.growth,
            "increment": s.increment,
            "resolution": s.resolution,
            "relative_resolution": s.relative_resolution,
            "max_steps": s.max_steps,
            "settle_s": t.settle_s,
            "hold_s": t.hold_s,
            "report_timeout_s": t.report_timeout_s,
            "max_duration_s": t.max_duration_s,
            "cooldown_s": t.cooldown_s,
            "min_samples": self.min_samples,
            "min_limit": self.min_limit,
            "source": self.source,
        }


_CHECK = ValueReader("", CapacityConfigError)
"""The checks; ``path`` is where the value came from: ``file: capacity.key``, or the flag that overrode it."""
_DURATION = "a duration (seconds, or e.g. '30s', '2m', '1m30s')"


def _as_number(v: object) -> object:
    """A flag's text as the number it spells (``"5"``, ``"0.5"``); anything else unchanged."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            pass
    return v


def _number(v: object, where: str, *, positive: bool = False) -> float:
    return _CHECK.number(_as_number(v), where, strict=positive)


def _count(v: object, where: str, *, minimum: int = 0) -> int:
    return _CHECK.integer(int(v) if isinstance(v, str) and v.strip().isdigit() else v, where, minimum=minimum)


def _duration(v: object, where: str) -> float:
    return _CHECK.duration(_as_number(v), where, what=_DURATION)


def parse_capacity(
    data: object, source: str = "<capacity>", overrides: Mapping[str, tuple[str, object]] | None = None
) -> CapacityPlan:
    """A plan from parsed YAML (``{"capacity": {...}}``) and flag overrides (key -> (flag, value))."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping) or set(data) - {"capacity"}:
        raise CapacityConfigError(f"{source}: expected a mapping with the key 'capacity'")
    raw = data.get("capacity") or {}
    if not isinstance(raw, Mapping):
        raise CapacityConfigError(f"{source}: capacity: expected a mapping, got {show(raw)}")
    where: dict[str, str] = {}
    values: dict[str, object] = {}
    for key, value in raw.items():
        if key not in _KEYS:
            raise CapacityConfigError(f"{source}: capacity.{key}: unknown key (expected one of: {', '.join(_KEYS)})")
        values[str(key)] = value
        where[str(key)] = f"{source}: capacity.{key}"
    for key, (flag, value) in (overrides or {}).items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        values[key] = value
        where[key] = flag
    mode = str(values.get("mode", "users")).strip().lower()
    if mode not in MODES:
        raise CapacityConfigError(f"{where.get('mode', source)}: expected one of {', '.join(MODES)}, got {mode!r}")
    nums = {k: _number(values[k], where[k]) for k in _NUMBERS if k in values}
    durs = {k: _duration(values[k], where[k]) for k in _DURATIONS if k in values}
    counts = {k: _count(values[k], where[k], minimum=1 if k != "min_samples" else 0) for k in _COUNTS if k in values}
    defaults = SearchSpec()
    start = nums.get("start", 1.0)
    spec_args: dict[str, Any] = {
        "mode": mode,
        "start": start,
        "max": nums.get("max", max(256.0, start)),
        "growth": nums.get("growth", defaults.growth),
        "increment": nums.get("increment", 0.0),
        "resolution": nums.get("resolution", 1.0),
        "relative_resolution": nums.get("relative_resolution", 0.05),
        "min_level": nums.get("min_level", 0.0),
        "max_steps": counts.get("max_steps", defaults.max_steps),
    }
    try:
        spec = SearchSpec(**spec_args)
    except ValueError as exc:
        key = str(exc).split(" ", 1)[0]
        raise CapacityConfigError(f"{where.get(key, source + ': capacity')}: {exc}") from None
    try:
        timing = StepTiming(
            settle_s=durs.get("settle", 10.0),
            hold_s=durs.get("hold", 30.0),
            report_timeout_s=durs.get("report_timeout", 6.0),
            max_duration_s=durs.get("max_duration", 3600.0) or None,
            cooldown_s=durs.get("cooldown", 5.0),
        )
    except ValueError as exc:
        raise CapacityConfigError(f"{source}: capacity: {exc}") from None
    plan = CapacityPlan(
        spec=spec,
        timing=timing,
        min_samples=counts.get("min_samples", 20),
        min_limit=_number(values["min_limit"], where["min_limit"]) if "min_limit" in values else 0.0,
        pool=UserPool(
            spawn_rate=_number(values["spawn_rate"], where["spawn_rate"]) if "spawn_rate" in values else 0.0,
            users_per_rps=counts.get("users_per_rps", 20),
            min_users=counts.get("min_users", 10),
            max_users=counts.get("max_users", 5000),
        ),
        source=source,
    )
    if plan.pool.min_users > plan.pool.max_users:
        raise CapacityConfigError(f"{source}: capacity.max_users: expected >= min_users ({plan.pool.min_users})")
    return plan


def load_capacity(
    path: str | Path | None = None, overrides: Mapping[str, tuple[str, object]] | None = None
) -> CapacityPlan:
    """Read and validate a capacity file (default ``conf/capacity.yaml``; a missing default is all defaults)."""
    p = Path(path) if path else DEFAULT_CAPACITY_FILE
    if not p.is_absolute() and not p.exists() and (DEFAULT_CAPACITY_FILE.parent.parent / p).exists():
        p = DEFAULT_CAPACITY_FILE.parent.parent / p
    source = str(path) if path else str(DEFAULT_CAPACITY_FILE)
    if not path and not p.exists():
        return parse_capacity({}, "defaults", overrides)
    named = f"{CAPACITY_CONF_FLAG} (env {CAPACITY_CONF_ENV}): {source}"
    text = read_text(p, CapacityConfigError, source=named, missing="file")
    data = parse_yaml(text, source, CapacityConfigError)
    return parse_capacity(data, source, overrides)
