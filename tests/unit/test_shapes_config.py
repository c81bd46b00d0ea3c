"""Specification of the profiles file loader (shapes.config): what it accepts and its exact error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shapes.config import ShapeConfigError, load_profiles, parse_duration, parse_profiles
from shapes.stages import Stage

SOURCE = "conf/shapes.yaml"


def one_profile(**profile: Any) -> dict[str, Any]:
    return {"profiles": {"x": profile}}


def stage(**fields: Any) -> dict[str, Any]:
    return {"duration": 10, "target": 5, **fields}


def test_a_minimal_profile() -> None:
    profiles = parse_profiles(one_profile(stages=[stage()]))
    assert profiles["x"].stages == (Stage(10.0, 5),)
    assert profiles["x"].start_users == 0
    assert profiles["x"].description == ""


def test_all_the_keys() -> None:
    data = one_profile(
        description="all keys",
        start_users=2,
        stages=[stage(duration="1m30s", target=8, spawn_rate=0.5), stage(duration=0.5, spike=True)],
    )
    profile = parse_profiles(data)["x"]
    assert profile.description == "all keys"
    assert profile.start_users == 2
    assert profile.stages == (Stage(90.0, 8, spawn_rate=0.5), Stage(0.5, 5, spike=True))


def test_the_brief_example_message() -> None:
    data = {
        "profiles": {
            "spike": {"stages": [stage(), stage(), stage(target=-5)]},
        }
    }
    with pytest.raises(ShapeConfigError) as error:
        parse_profiles(data, SOURCE)
    assert (
        str(error.value) == "conf/shapes.yaml: profiles.spike.stages[2].target: expected a non-negative integer, got -5"
    )


DURATION_EXPECTED = "expected a non-negative duration (seconds, or a k6 duration such as '30s', '2m', '1m30s')"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            one_profile(stages=[stage(target=2.5)]),
            "profiles.x.stages[0].target: expected a non-negative integer, got 2.5",
        ),
        (
            one_profile(stages=[stage(target="ten")]),
            "profiles.x.stages[0].target: expected a non-negative integer, got 'ten'",
        ),
        (
            one_profile(stages=[stage(target=True)]),
            "profiles.x.stages[0].target: expected a non-negative integer, got true",
        ),
        (
            one_profile(stages=[stage(target=None)]),
            "profiles.x.stages[0].target: expected a non-negative integer, got null",
        ),
        (one_profile(stages=[stage(duration=-5)]), f"profiles.x.stages[0].duration: {DURATION_EXPECTED}, got -5"),
        (one_profile(stages=[stage(duration="-5s")]), f"profiles.x.stages[0].duration: {DURATION_EXPECTED}, got '-5s'"),
        (
            one_profile(stages=[stage(duration="2 min")]),
            f"profiles.x.stages[0].duration: {DURATION_EXPECTED}, got '2 min'",
        ),
        (
            one_profile(stages=[stage(tagret=5)]),
            "profiles.x.stages[0].tagret: unknown key (expected one of: duration, spawn_rate, spike, target)",
        ),
        (one_profile(stages=[{"duration": 10}]), "profiles.x.stages[0]: missing key 'target'"),
        (one_profile(stages=[{"target": 10}]), "profiles.x.stages[0]: missing key 'duration'"),
        (
            one_profile(stages=[[10, 5]]),
            "profiles.x.stages[0]: expected a mapping with keys duration and target, got a list",
        ),
        (
            one_profile(stages=[stage()], ramp=1),
            "profiles.x.ramp: unknown key (expected one of: description, stages, start_users)",
        ),
        (one_profile(description="no stages"), "profiles.x: missing key 'stages'"),
        (one_profile(stages=[]), "profiles.x.stages: expected a non-empty list of stages, got an empty list"),
        (one_profile(stages="2m"), "profiles.x.stages: expected a non-empty list of stages, got '2m'"),
        (
            one_profile(stages=[stage()], start_users=-1),
            "profiles.x.start_users: expected a non-negative integer, got -1",
        ),
        (one_profile(stages=[stage()], description=3), "profiles.x.description: expected a string, got 3"),
        (one_profile(stages=[stage(spike="yes")]), "profiles.x.stages[0].spike: expected true or false, got 'yes'"),
        (
            one_profile(stages=[stage(spike=True), stage(), stage(spike=True)]),
            "profiles.x.stages[2].spike: only one stage per profile may be marked spike (stages[0] already is)",
        ),
        (
            one_profile(stages=[stage(spawn_rate=0)]),
            "profiles.x.stages[0].spawn_rate: expected a positive number of users per second, got 0",
        ),
        (
            one_profile(stages=[stage(target=100, spawn_rate=1)]),
            "profiles.x.stages[0].spawn_rate: a ramp of 100 users at spawn_rate 1/s takes 100 s, "
            "longer than the stage (10 s)",
        ),
        (
            one_profile(stages=[stage(duration=0), stage(duration="0s")]),
            "profiles.x.stages: expected a positive total duration, got 0 s",
        ),
        (
            {"profiles": {"bad name": {"stages": [stage()]}}},
            "profiles: invalid profile name 'bad name' (letters, digits, '_' and '-' only)",
        ),
        ({"profiles": {}}, "profiles: expected a non-empty mapping of profile names to profiles, got an empty mapping"),
        (
            {"profiles": {"x": {"stages": [stage()]}}, "defaults": {}},
            "defaults: unknown key (expected one of: profiles)",
        ),
        ({}, "missing key 'profiles'"),
        ([], "expected a mapping with key 'profiles', got an empty list"),
        (None, "expected a mapping with key 'profiles', got null"),
    ],
)
def test_invalid_profiles_are_refused_naming_the_file_and_the_key(data: object, message: str) -> None:
    with pytest.raises(ShapeConfigError) as error:
        parse_profiles(data, SOURCE)
    assert str(error.value) == f"{SOURCE}: {message}"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(45, 45.0), (1.5, 1.5), (0, 0.0), ("30s", 30.0), ("2m", 120.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0)],
)
def test_durations_are_seconds_or_k6_strings(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", [-1, "-1s", "1x", "", "m", "30", True, None, float("nan")])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shapes.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_profiles_reads_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "profiles:\n  quick:\n    stages:\n      - {duration: 5s, target: 3}\n")
    assert load_profiles(path)["quick"].stages == (Stage(5.0, 3),)


def test_errors_name_the_file_as_given(tmp_path: Path) -> None:
    path = write(tmp_path, "profiles:\n  spike:\n    stages:\n      - {duration: 5s, target: -5}\n")
    with pytest.raises(ShapeConfigError) as error:
        load_profiles(str(path))
    assert str(error.value) == f"{path}: profiles.spike.stages[0].target: expected a non-negative integer, got -5"


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "profiles:\n  x:\n    stages:\n      - duration: 5\n        target: 1\n        target: 2\n")
    with pytest.raises(ShapeConfigError) as error:
        load_profiles(path)
    assert str(error.value) == f"{path}: line 6: duplicate key 'target'"


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(ShapeConfigError) as error:
        load_profiles(path)
    assert str(error.value) == f"{path}: cannot read the file: No such file or directory"


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "profiles:\n  x:\n    stages: [\n")
    with pytest.raises(ShapeConfigError) as error:
        load_profiles(path)
    assert str(error.value).startswith(f"{path}: line 4: ")
