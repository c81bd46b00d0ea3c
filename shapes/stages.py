"""Stage arithmetic of the load shapes: the number of users as a pure function of time.

A profile is a list of k6-style stages. Each stage ramps linearly from the previous target (the
profile's ``start_users`` for the first stage, 0 unless the profile says otherwise) to its own target
over its duration, exactly as k6's ``ramping-vus`` executor does: the user count moves one whole user
at a time, each time the straight line between the two targets crosses the next integer, so it is
rounded towards the previous target (floor while ramping up, ceiling while ramping down). A stage with
``duration: 0`` jumps at once. After the last stage the run stops (``users_at`` returns ``None``).

Locust applies ``(user_count, spawn_rate)`` once per shape tick (about every second) and its master
blocks until the spawn finishes, so a ramp given to Locust as one far target with a slow rate would
swallow the stages that follow it. Here a ramp is instead expressed as per-tick targets (the
interpolated count at the tick's time) and the spawn rate is chosen large enough for Locust to reach
each per-tick target within the tick: nothing is skipped, whatever the stage lengths and time scale.

``time_scale`` multiplies every duration: ``time_scale=0.1`` runs a profile 10x faster. All times given
to and returned by the functions here are real seconds since the start of the run (already scaled).

No Locust import here: this module is tested without sleeping, on grids of times.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "SPAWN_WINDOW_S",
    "Profile",
    "Stage",
    "StagesLike",
    "ramp_seconds",
    "spawn_rate_at",
    "spike_window",
    "stage_bounds",
    "stage_index_at",
    "total_duration",
    "users_at",
]

#: Real seconds of ramp that one shape tick must be able to catch up with. Locust ticks every second;
#: two seconds leave room for a late tick.
SPAWN_WINDOW_S = 2.0

# Times are rounded to this many decimals before comparison, so that 6.0 / 0.1 = 59.99999999999999
# counts as the stage boundary 60 and a mid-ramp count is not one user short.
_TIME_DECIMALS = 9
_EPSILON = 1e-9


@dataclass(frozen=True)
class Stage:
    """One k6-style stage: ramp from the previous target to ``target`` over ``duration`` seconds.

    ``spawn_rate`` (users per second of profile time, optional): ramp at this rate, then hold
    ``target`` for the rest of the stage (Locust's stage style). Without it the ramp takes the whole
    stage (k6's style). ``spike`` marks the stage whose end starts the ``recovery_time`` clock.
    """

    duration: float
    target: int
    spawn_rate: float | None = None
    spike: bool = False

    def __post_init__(self) -> None:
        if not math.isfinite(self.duration) or self.duration < 0:
            raise ValueError(f"Stage.duration must be a non-negative number of seconds, got {self.duration!r}")
        if isinstance(self.target, bool) or not isinstance(self.target, int) or self.target < 0:
            raise ValueError(f"Stage.target must be a non-negative integer, got {self.target!r}")
        if self.spawn_rate is not None and not (math.isfinite(self.spawn_rate) and self.spawn_rate > 0):
            raise ValueError(f"Stage.spawn_rate must be a positive number, got {self.spawn_rate!r}")


@dataclass(frozen=True)
class Profile:
    """A named list of stages, starting from ``start_users`` users at t=0."""

    name: str
    stages: tuple[Stage, ...]
    start_users: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError(f"profile {self.name!r} has no stages")
        if isinstance(self.start_users, bool) or not isinstance(self.start_users, int) or self.start_users < 0:
            raise ValueError(f"Profile.start_users must be a non-negative integer, got {self.start_users!r}")
        if sum(1 for s in self.stages if s.spike) > 1:
            raise ValueError(f"profile {self.name!r} marks more than one stage as spike")
        previous = self.start_users
        for stage in self.stages:
            ramp_seconds(stage, previous)  # raises if an explicit spawn_rate cannot fit its stage
            previous = stage.target


#: What the functions accept: a whole profile (its ``start_users`` is used) or bare stages.
StagesLike = Profile | Sequence[Stage]


@dataclass(frozen=True)
class _Segment:
    """A stage resolved for one start value and one time scale, in real seconds."""

    start: float  # real seconds since the run start
    end: float
    from_users: int
    to_users: int
    ramp: float  # real seconds the ramp takes (0: jump at the stage start); the rest is a hold
    spawn_rate: float  # what Locust is told while this stage runs


def _as_profile(stages: StagesLike, start_users: int | None) -> Profile:
    if isinstance(stages, Profile):
        if start_users is None or start_users == stages.start_users:
            return stages
        return Profile(stages.name, stages.stages, start_users, stages.description)
    return Profile("<stages>", tuple(stages), 0 if start_users is None else start_users)


def _check_scale(time_scale: float) -> None:
    if not (isinstance(time_scale, int | float) and math.isfinite(time_scale) and time_scale > 0):
        raise ValueError(f"time_scale must be a positive number, got {time_scale!r}")


def ramp_seconds(stage: Stage, from_users: int) -> float:
    """Profile seconds (unscaled) the stage's ramp from ``from_users`` takes; the rest is a hold.

    Raises ``ValueError`` if an explicit ``spawn_rate`` is too slow to reach the target within the stage.
    """
    diff = stage.target - from_users
    if diff == 0:
        return 0.0
    if stage.spawn_rate is None:
        return stage.duration
    ramp = abs(diff) / stage.spawn_rate
    if round(ramp - stage.duration, _TIME_DECIMALS) > 0:
        raise ValueError(
            f"a ramp of {abs(diff)} users at spawn_rate {stage.spawn_rate:g}/s takes {ramp:g} s, "
            f"longer than the stage ({stage.duration:g} s)"
        )
    return ramp


def _catch_up(diff: int, ramp_real: float) -> int:
    """Users one tick window may have to add or remove on this ramp (at most the whole ramp)."""
    size = abs(diff)
    if size == 0:
        return 0
    if ramp_real <= 0:
        return size
    return min(size, math.ceil(size * SPAWN_WINDOW_S / ramp_real) + 1)


@lru_cache(maxsize=64)
def _segments(profile: Profile, time_scale: float) -> tuple[_Segment, ...]:
    _check_scale(time_scale)
    # First pass: times and targets.
    raw: list[tuple[float, float, int, int, float]] = []
    t = 0.0
    previous = profile.start_users
    for stage in profile.stages:
        ramp = ramp_seconds(stage, previous) * time_scale
        end = t + stage.duration * time_scale
        raw.append((t, end, previous, stage.target, ramp))
        t = end
        previous = stage.target
    # Second pass: the spawn rate of a stage must let one tick catch up with every change that can fall
    # into one tick window ending inside it: its own ramp, the ramps of the stages that ended less than a
    # window before it started (short stages at small time scales) and the initial jump to start_users.
    segments: list[_Segment] = []
    for i, (start, end, from_users, to_users, ramp) in enumerate(raw):
        need = profile.start_users if start <= SPAWN_WINDOW_S else 0
        for j in range(i + 1):
            j_end = raw[j][1]
            if j == i or j_end >= start - SPAWN_WINDOW_S:
                need += _catch_up(raw[j][3] - raw[j][2], raw[j][4])
        segments.append(_Segment(start, end, from_users, to_users, ramp, float(max(1, need))))
    return tuple(segments)


def _profile_time(t: float) -> float:
    return round(max(0.0, float(t)), _TIME_DECIMALS)


def _find(segments: Sequence[_Segment], t: float) -> int | None:
    for i, seg in enumerate(segments):
        if t < round(seg.end, _TIME_DECIMALS):
            return i
    return None


def _users_in(seg: _Segment, t: float) -> int:
    elapsed = t - round(seg.start, _TIME_DECIMALS)
    diff = seg.to_users - seg.from_users
    if diff == 0 or elapsed >= round(seg.ramp, _TIME_DECIMALS):
        return seg.to_users
    step = math.floor(elapsed * abs(diff) / seg.ramp + _EPSILON)
    return seg.from_users + (step if diff > 0 else -step)


def users_at(
    stages: StagesLike, t: float, time_scale: float = 1.0, *, start_users: int | None = None
) -> tuple[int, float] | None:
    """``(user_count, spawn_rate)`` for Locust at ``t`` real seconds since the start, ``None`` once over.

    ``start_users`` overrides the profile's start value (bare stages start from 0). Times before 0 count
    as 0. The spawn rate is constant within a stage and high enough for one tick to reach the count.
    """
    segments = _segments(_as_profile(stages, start_users), float(time_scale))
    now = _profile_time(t)
    index = _find(segments, now)
    if index is None:
        return None
    seg = segments[index]
    return _users_in(seg, now), seg.spawn_rate


def spawn_rate_at(stages: StagesLike, t: float, time_scale: float = 1.0) -> float | None:
    """The spawn rate part of :func:`users_at` (``None`` once the profile is over)."""
    result = users_at(stages, t, time_scale)
    return None if result is None else result[1]


def total_duration(stages: StagesLike, time_scale: float = 1.0) -> float:
    """Real seconds the profile lasts: the sum of the stage durations times ``time_scale``."""
    _check_scale(time_scale)
    items = stages.stages if isinstance(stages, Profile) else stages
    return sum(stage.duration for stage in items) * time_scale


def stage_index_at(stages: StagesLike, t: float, time_scale: float = 1.0) -> int | None:
    """Index of the stage running at ``t`` real seconds (``None`` once over).

    At a boundary the next stage is running; zero-length stages are never running.
    """
    return _find(_segments(_as_profile(stages, None), float(time_scale)), _profile_time(t))


def stage_bounds(stages: StagesLike, time_scale: float = 1.0) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` of every stage, in real seconds since the start of the run."""
    return [(seg.start, seg.end) for seg in _segments(_as_profile(stages, None), float(time_scale))]


def spike_window(stages: StagesLike, time_scale: float = 1.0) -> tuple[float, float] | None:
    """``(spike_start_s, spike_end_s)`` of the stage marked ``spike: true``, ``None`` if none is.

    Real seconds since the start of the run; ``recovery_time`` is measured from ``spike_end_s``.
    """
    items = stages.stages if isinstance(stages, Profile) else stages
    for stage, bounds in zip(items, stage_bounds(stages, time_scale), strict=True):
        if stage.spike:
            return bounds
    return None
