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

import math
import re
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import yaml

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
_PROFILE_KEYS = ("description", "start_users", "stages")
_STAGE_KEYS = ("duration", "target", "spawn_rate", "spike")
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_DURATION_RE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|h|m|s))+$")
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class ShapeConfigError(ValueError):
    """A profiles file that cannot be used; the message names the file and the key path."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects duplicate mapping keys instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _show(value: object) -> str:
    """A value as the message shows it: YAML-like scalars, ``'text'`` for strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    return str(value)


class _Reader:
    """Walks the parsed YAML, raising :class:`ShapeConfigError` with ``source: path: message``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, path: str, message: str) -> ShapeConfigError:
        where = f"{self.source}: {path}: " if path else f"{self.source}: "
        return ShapeConfigError(where + message)

    def mapping(self, value: object, path: str, allowed: tuple[str, ...], what: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(path, f"expected {what}, got {_show(value)}")
        for key in value:
            if key not in allowed:
                key_path = f"{path}.{key}" if path else str(key)
                raise self.error(key_path, f"unknown key (expected one of: {', '.join(sorted(allowed))})")
        return value

    def required(self, data: Mapping[str, Any], key: str, path: str) -> Any:
        if key not in data:
            raise self.error(path, f"missing key {key!r}")
        return data[key]

    def count(self, value: object, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(path, f"expected a non-negative integer, got {_show(value)}")
        return value

    def duration(self, value: object, path: str) -> float:
        try:
            return parse_duration(value)
        except ValueError:
            raise self.error(
                path,
                "expected a non-negative duration (seconds, or a k6 duration such as '30s', '2m', "
                f"'1m30s'), got {_show(value)}",
            ) from None

    def rate(self, value: object, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise self.error(path, f"expected a positive number of users per second, got {_show(value)}")
        return float(value)

    def flag(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(path, f"expected true or false, got {_show(value)}")
        return value

    def text(self, value: object, path: str) -> str:
        if not isinstance(value, str):
            raise self.error(path, f"expected a string, got {_show(value)}")
        return value


def parse_duration(value: object) -> float:
    """Seconds from a non-negative number or a k6 duration string (``"2m"``, ``"1m30s"``, ``"500ms"``)."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION_RE.match(value.strip()):
        seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART_RE.findall(value.strip()))
    else:
        raise ValueError(f"not a duration: {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a non-negative duration: {value!r}")
    return seconds


def _parse_stage(reader: _Reader, raw: object, path: str) -> Stage:
    data = reader.mapping(raw, path, _STAGE_KEYS, "a mapping with keys duration and target")
    duration = reader.duration(reader.required(data, "duration", path), f"{path}.duration")
    target = reader.count(reader.required(data, "target", path), f"{path}.target")
    spawn_rate = reader.rate(data["spawn_rate"], f"{path}.spawn_rate") if "spawn_rate" in data else None
    spike = reader.flag(data["spike"], f"{path}.spike") if "spike" in data else False
    return Stage(duration=duration, target=target, spawn_rate=spawn_rate, spike=spike)


def _parse_profile(reader: _Reader, name: str, raw: object) -> Profile:
    path = f"profiles.{name}"
    data = reader.mapping(raw, path, _PROFILE_KEYS, "a mapping with a 'stages' list")
    description = reader.text(data["description"], f"{path}.description") if "description" in data else ""
    start_users = reader.count(data["start_users"], f"{path}.start_users") if "start_users" in data else 0
    raw_stages = reader.required(data, "stages", path)
    if not isinstance(raw_stages, list) or not raw_stages:
        raise reader.error(f"{path}.stages", f"expected a non-empty list of stages, got {_show(raw_stages)}")

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
    reader = _Reader(source)
    top = reader.mapping(data, "", _TOP_KEYS, "a mapping with key 'profiles'")
    raw_profiles = reader.required(top, "profiles", "")
    if not isinstance(raw_profiles, Mapping) or not raw_profiles:
        raise reader.error(
            "profiles", f"expected a non-empty mapping of profile names to profiles, got {_show(raw_profiles)}"
        )
    profiles: dict[str, Profile] = {}
    for name, raw in raw_profiles.items():
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise reader.error("profiles", f"invalid profile name {_show(name)} (letters, digits, '_' and '-' only)")
        profiles[name] = _parse_profile(reader, name, raw)
    return profiles


def load_profiles(path: str | Path = DEFAULT_STAGES_FILE) -> dict[str, Profile]:
    """Read and validate a profiles file; errors are :class:`ShapeConfigError` naming ``path``."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ShapeConfigError(f"{source}: cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ShapeConfigError(f"{source}: not UTF-8 text: {exc.reason}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ShapeConfigError(f"{source}: {where}{exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ShapeConfigError(f"{source}: invalid YAML: {exc}") from None
    except RecursionError:
        raise ShapeConfigError(f"{source}: invalid YAML: nesting too deep") from None
    return parse_profiles(data, source)
