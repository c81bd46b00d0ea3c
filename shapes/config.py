"""Loading and validating the load profiles file (``conf/shapes.yaml`` by default).

The file maps profile names to k6-style stages::

    profiles:
      load:
        description: "Ramp to 50 users, hold, ramp down"
        start_users: 0            # optional, users at t=0 (default 0)
        stages:
          - {duration: 2m, target: 50}
          - {duration: 300, target: 50}
          - {duration: 2m, target: 0, spawn_rate: 5}
          # duration: seconds, or a k6 duration string ("500ms", "30s", "2m", "1h", "1m30s")
          # target: users at the end of the stage
          # spawn_rate (optional): users/s; ramp at this rate, then hold the target for the rest of the stage
          # spike (optional): true on the one stage whose end starts the recovery_time clock

Validation is strict: an unknown key, a duplicate key, a negative duration or a non-integer user count is
an error whose message names the file and the key path and says what was expected, e.g.
``conf/shapes.yaml: profiles.spike.stages[2].target: expected a non-negative integer, got -5``.
No Locust import here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from llm_metrics.engine.config import ValueReader, load_yaml_file, parse_duration, show
from shapes.stages import Profile, Stage, ramp_seconds

__all__ = [
    "DEFAULT_STAGES_FILE",
    "ShapeConfigError",
    "load_profiles",
    "parse_duration",
    "parse_profiles",
]

#: The profiles shipped with the project (seed 000's smoke, load, stress and spike).
DEFAULT_STAGES_FILE = Path(__file__).resolve().parent.parent / "conf" / "shapes.yaml"

_TOP_KEYS = ("profiles",)
_PROFILE_KEYS = ("description", "stages", "start_users")  # sorted: the order the errors list them in
_STAGE_KEYS = ("duration", "spawn_rate", "spike", "target")
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_RATE = "a positive number of users per second"


class ShapeConfigError(ValueError):
    """A profiles file that cannot be used; the message names the file and the key path."""


def _parse_stage(reader: ValueReader, raw: object, path: str) -> Stage:
    data = reader.mapping(raw, path, _STAGE_KEYS, "a mapping with keys duration and target")
    duration = reader.duration(reader.required(data, "duration", path), f"{path}.duration")
    target = _count(reader, reader.required(data, "target", path), f"{path}.target")
    spawn_rate = (
        reader.number(data["spawn_rate"], f"{path}.spawn_rate", strict=True, what=_RATE)
        if "spawn_rate" in data
        else None
    )
    spike = reader.flag(data["spike"], f"{path}.spike") if "spike" in data else False
    return Stage(duration=duration, target=target, spawn_rate=spawn_rate, spike=spike)


def _count(reader: ValueReader, value: object, path: str) -> int:
    return reader.integer(value, path, what="a non-negative integer")


def _parse_profile(reader: ValueReader, name: str, raw: object) -> Profile:
    path = f"profiles.{name}"
    data = reader.mapping(raw, path, _PROFILE_KEYS, "a mapping with a 'stages' list")
    description = reader.text(data["description"], f"{path}.description") if "description" in data else ""
    start_users = _count(reader, data["start_users"], f"{path}.start_users") if "start_users" in data else 0
    raw_stages = reader.required(data, "stages", path)
    if not isinstance(raw_stages, list) or not raw_stages:
        raise reader.error(f"{path}.stages", f"expected a non-empty list of stages, got {show(raw_stages)}")

    stages: list[Stage] = []
    spike_index: int | None = None
    previous = start_users
    for i, raw_stage in enumerate(raw_stages):
        stage_path = f"{path}.stages[{i}]"
        stage = _parse_stage(reader, raw_stage, stage_path)
        try:
            ramp_seconds(stage, previous)
        except ValueError as exc:
            raise reader.error(f"{stage_path}.spawn_rate", str(exc)) from None
        if stage.spike:
            if spike_index is not None:
                raise reader.error(
                    f"{stage_path}.spike",
                    f"only one stage per profile may be marked spike (stages[{spike_index}] already is)",
                )
            spike_index = i
        stages.append(stage)
        previous = stage.target

    if sum(stage.duration for stage in stages) <= 0:
        raise reader.error(f"{path}.stages", "expected a positive total duration, got 0 s")
    return Profile(name=name, stages=tuple(stages), start_users=start_users, description=description)


def parse_profiles(data: object, source: str = "<profiles>") -> dict[str, Profile]:
    """Validate already-parsed YAML (``{"profiles": {...}}``) into profiles by name.

    ``source`` names the origin in error messages (the file path for :func:`load_profiles`).
    """
    reader = ValueReader(source, ShapeConfigError)
    top = reader.mapping(data, "", _TOP_KEYS, "a mapping with key 'profiles'")
    raw_profiles = reader.required(top, "profiles", "")
    if not isinstance(raw_profiles, Mapping) or not raw_profiles:
        raise reader.error(
            "profiles", f"expected a non-empty mapping of profile names to profiles, got {show(raw_profiles)}"
        )
    profiles: dict[str, Profile] = {}
    for name, raw in raw_profiles.items():
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise reader.error("profiles", f"invalid profile name {show(name)} (letters, digits, '_' and '-' only)")
        profiles[name] = _parse_profile(reader, name, raw)
    return profiles


def load_profiles(path: str | Path = DEFAULT_STAGES_FILE) -> dict[str, Profile]:
    """Read and validate a profiles file; errors are :class:`ShapeConfigError` naming ``path``."""
    source = str(path)
    data = load_yaml_file(path, ShapeConfigError, source=source)
    return parse_profiles(data, source)
