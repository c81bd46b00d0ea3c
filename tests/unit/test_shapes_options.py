"""Specification of the shape options (shapes.options): which profile runs, and bad values naming the flag."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from shapes.config import DEFAULT_STAGES_FILE
from shapes.options import DEFAULT_PROFILE, ShapeOptionError, parse_time_scale, resolve_plan

KNOWN = "load, smoke, spike, stress"


def test_the_default_is_smoke_at_full_scale_from_the_project_file() -> None:
    plan = resolve_plan(None)
    assert DEFAULT_PROFILE == "smoke"
    assert (plan.profile.name, plan.time_scale, plan.stages_file) == ("smoke", 1.0, str(DEFAULT_STAGES_FILE))
    assert plan.chosen_by == "default"
    assert plan.notes == ()


def test_load_profile_chooses_the_profile() -> None:
    plan = resolve_plan("spike", "0.1", "")
    assert (plan.profile.name, plan.time_scale, plan.chosen_by) == ("spike", 0.1, "--load-profile (env PROFILE)")
    assert plan.tick(6.5) == (255, 490.0)  # the 65 s mid-surge point; the 1 s surge fits in one tick
    assert plan.spike_window() == pytest.approx((7.0, 13.0))
    assert plan.total_duration() == pytest.approx(36.0)
    assert plan.stage_index_at(7.0) == 3
    assert plan.tick(36.0) is None
    assert plan.describe() == (
        "load profile 'spike' (chosen by --load-profile (env PROFILE)) at time scale 0.1: 6 stages, 36 s, "
        f"from {DEFAULT_STAGES_FILE}"
    )


def test_locusts_own_profile_label_chooses_when_it_names_a_profile() -> None:
    plan = resolve_plan("", locust_profile="stress")
    assert (plan.profile.name, plan.chosen_by) == ("stress", "Locust's --profile")


def test_load_profile_wins_over_locusts_profile_label() -> None:
    assert resolve_plan("load", locust_profile="stress").profile.name == "load"


def test_a_locust_profile_label_that_is_no_profile_runs_the_default_with_a_note() -> None:
    plan = resolve_plan(None, locust_profile="nightly")
    assert plan.profile.name == "smoke"
    assert plan.notes == (
        f"Locust's --profile 'nightly' is not a profile of {DEFAULT_STAGES_FILE}; running the default 'smoke' "
        "(choose one with --load-profile)",
    )


def test_an_unknown_profile_names_the_flag() -> None:
    with pytest.raises(ShapeOptionError) as error:
        resolve_plan("nope")
    assert str(error.value) == (
        f"--load-profile (env PROFILE): unknown profile 'nope'; {DEFAULT_STAGES_FILE} defines: {KNOWN}"
    )


def test_a_fixed_profile_missing_from_the_file_names_its_shape_class(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("profiles:\n  soak:\n    stages: [{duration: 1h, target: 20}]\n", encoding="utf-8")
    with pytest.raises(ShapeOptionError) as error:
        resolve_plan("spike", 1.0, str(path), profile_source="SpikeShape")
    assert str(error.value) == f"SpikeShape: unknown profile 'spike'; {path} defines: soak"


def test_the_default_missing_from_a_custom_file_says_no_profile_was_given(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("profiles:\n  soak:\n    stages: [{duration: 1h, target: 20}]\n", encoding="utf-8")
    with pytest.raises(ShapeOptionError) as error:
        resolve_plan("", 1.0, path)
    assert str(error.value) == (
        f"--load-profile (env PROFILE) not given, default 'smoke': unknown profile 'smoke'; {path} defines: soak"
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0"), (-1, "-1"), ("abc", "'abc'"), (math.nan, "nan"), (math.inf, "inf"), ("-0.5", "'-0.5'"), (True, "True")],
)
def test_a_bad_time_scale_names_the_flag(value: object, shown: str) -> None:
    with pytest.raises(ShapeOptionError) as error:
        resolve_plan("smoke", value)
    assert str(error.value) == f"--time-scale (env TIME_SCALE): expected a positive number, got {shown}"


@pytest.mark.parametrize(("value", "scale"), [("0.1", 0.1), (0.02, 0.02), (2, 2.0), (" 1e-1 ", 0.1)])
def test_time_scales_from_strings_and_numbers(value: object, scale: float) -> None:
    assert parse_time_scale(value) == scale


def test_a_missing_stages_file_names_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(ShapeOptionError) as error:
        resolve_plan("smoke", 1.0, str(path))
    assert str(error.value) == (
        f"--stages-file (env STAGES_FILE): {path}: cannot read the file: No such file or directory"
    )


def test_an_invalid_stages_file_names_the_flag_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("profiles:\n  spike:\n    stages: [{duration: 1m, target: -5}]\n", encoding="utf-8")
    with pytest.raises(ShapeOptionError) as error:
        resolve_plan("spike", 1.0, str(path))
    assert str(error.value) == (
        f"--stages-file (env STAGES_FILE): {path}: profiles.spike.stages[0].target: "
        "expected a non-negative integer, got -5"
    )
