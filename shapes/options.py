"""The shape options (profile, time scale, stages file) and their resolution into a runnable plan.

The command-line flags, their environment variables and defaults are defined here, with the checks that
turn a bad value into a message naming the flag. The Locust side (``shapes.locust_shapes``) only reads
the parsed options and calls :func:`resolve_plan`. No Locust import here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from shapes import stages
from shapes.config import DEFAULT_STAGES_FILE, ShapeConfigError, load_profiles
from shapes.stages import Profile

__all__ = [
    "DEFAULT_PROFILE",
    "DEFAULT_TIME_SCALE",
    "PROFILE_DEST",
    "PROFILE_ENV",
    "PROFILE_FLAG",
    "STAGES_FILE_DEST",
    "STAGES_FILE_ENV",
    "STAGES_FILE_FLAG",
    "TIME_SCALE_DEST",
    "TIME_SCALE_ENV",
    "TIME_SCALE_FLAG",
    "ShapeOptionError",
    "ShapePlan",
    "parse_time_scale",
    "resolve_plan",
]

# Locust 2.47 already has a `--profile` option ("Set a profile to group the testruns together", also
# read by the web UI form and OpenTelemetry), so the shape's flag is `--load-profile`; its environment
# variable is still PROFILE, as in the brief.
PROFILE_FLAG = "--load-profile"
PROFILE_ENV = "PROFILE"
PROFILE_DEST = "load_profile"
DEFAULT_PROFILE = "smoke"

TIME_SCALE_FLAG = "--time-scale"
TIME_SCALE_ENV = "TIME_SCALE"
TIME_SCALE_DEST = "time_scale"
DEFAULT_TIME_SCALE = 1.0

STAGES_FILE_FLAG = "--stages-file"
STAGES_FILE_ENV = "STAGES_FILE"
STAGES_FILE_DEST = "stages_file"


class ShapeOptionError(ValueError):
    """A bad shape option; the message starts with the flag (and its environment variable)."""


def _flag(flag: str, env: str) -> str:
    return f"{flag} (env {env})"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def parse_time_scale(value: object) -> float:
    """A positive, finite time scale from a number or a string; ``ValueError`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a positive number, got {value!r}")
    try:
        scale = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"expected a positive number, got {value!r}") from None
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"expected a positive number, got {value!r}")
    return scale


@dataclass(frozen=True)
class ShapePlan:
    """One profile at one time scale: what a shape class runs. Times are real seconds since the start."""

    profile: Profile
    time_scale: float
    stages_file: str
    #: Which option chose the profile, for the log (e.g. ``"--load-profile (env PROFILE)"``).
    chosen_by: str = ""
    #: Warnings for the log (e.g. Locust's ``--profile`` given but not naming a profile).
    notes: tuple[str, ...] = ()

    def tick(self, run_time: float) -> tuple[int, float] | None:
        """``(user_count, spawn_rate)`` at ``run_time`` seconds, ``None`` once the profile is over."""
        return stages.users_at(self.profile, run_time, self.time_scale)

    def total_duration(self) -> float:
        return stages.total_duration(self.profile, self.time_scale)

    def stage_index_at(self, run_time: float) -> int | None:
        return stages.stage_index_at(self.profile, run_time, self.time_scale)

    def stage_bounds(self) -> list[tuple[float, float]]:
        return stages.stage_bounds(self.profile, self.time_scale)

    def spike_window(self) -> tuple[float, float] | None:
        """``(spike_start_s, spike_end_s)`` in run time, ``None`` if no stage is marked spike."""
        return stages.spike_window(self.profile, self.time_scale)

    def describe(self) -> str:
        """One line for the log: profile, scale, duration and file."""
        scale = "" if self.time_scale == 1.0 else f" at time scale {self.time_scale:g}"
        chosen = f" (chosen by {self.chosen_by})" if self.chosen_by else ""
        return (
            f"load profile {self.profile.name!r}{chosen}{scale}: {_count(len(self.profile.stages), 'stage')}, "
            f"{self.total_duration():g} s, from {self.stages_file}"
        )


def _clean(value: object) -> str:
    return "" if value is None else str(value).strip()


def resolve_plan(
    profile_name: object,
    time_scale: object = DEFAULT_TIME_SCALE,
    stages_file: object = None,
    *,
    profile_source: str | None = None,
    locust_profile: object = None,
) -> ShapePlan:
    """Check the options and load the profile; a bad one raises :class:`ShapeOptionError` naming its flag.

    ``profile_name`` is ``--load-profile``'s value; ``profile_source`` names where a fixed name comes
    from instead (e.g. ``"SpikeShape"``). When no name is given, Locust's own ``--profile`` (a run label)
    chooses the profile if it names one of the file, else :data:`DEFAULT_PROFILE` runs (with a note).
    ``stages_file`` ``None`` or empty means the project's ``conf/shapes.yaml``.
    """
    try:
        scale = parse_time_scale(time_scale)
    except ValueError as exc:
        raise ShapeOptionError(f"{_flag(TIME_SCALE_FLAG, TIME_SCALE_ENV)}: {exc}") from None

    path = Path(str(stages_file)) if _clean(stages_file) else DEFAULT_STAGES_FILE
    try:
        profiles = load_profiles(path)
    except ShapeConfigError as exc:
        raise ShapeOptionError(f"{_flag(STAGES_FILE_FLAG, STAGES_FILE_ENV)}: {exc}") from None

    name = _clean(profile_name)
    chosen_by = profile_source or _flag(PROFILE_FLAG, PROFILE_ENV)
    where = chosen_by
    notes: tuple[str, ...] = ()
    if not name:
        label = _clean(locust_profile)
        if label in profiles:
            name, chosen_by = label, "Locust's --profile"
        else:
            name, chosen_by = DEFAULT_PROFILE, "default"
            where = f"{_flag(PROFILE_FLAG, PROFILE_ENV)} not given, default {DEFAULT_PROFILE!r}"
            if label:
                notes = (
                    f"Locust's --profile {label!r} is not a profile of {path}; running the default "
                    f"{DEFAULT_PROFILE!r} (choose one with {PROFILE_FLAG})",
                )
    if name not in profiles:
        raise ShapeOptionError(f"{where}: unknown profile {name!r}; {path} defines: {', '.join(sorted(profiles))}")
    return ShapePlan(profile=profiles[name], time_scale=scale, stages_file=str(path), chosen_by=chosen_by, notes=notes)
