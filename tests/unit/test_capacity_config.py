"""conf/capacity.yaml and the --capacity-* flags: defaults, overrides, and errors naming the file or flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from shapes.capacity_config import DEFAULT_CAPACITY_FILE, CapacityConfigError, load_capacity, parse_capacity


def test_the_shipped_file_is_valid_and_documents_every_key() -> None:
    plan = load_capacity(DEFAULT_CAPACITY_FILE)
    assert plan.spec.mode == "users" and plan.spec.start == 2 and plan.spec.max == 512
    assert plan.timing.settle_s == 10 and plan.timing.hold_s == 30 and plan.timing.report_timeout_s == 6
    assert plan.timing.max_duration_s == 3600
    text = DEFAULT_CAPACITY_FILE.read_text()
    for key in ("mode", "growth", "resolution", "settle", "hold", "min_samples", "min_limit", "users_per_rps"):
        assert f"  {key}:" in text


def test_defaults_without_a_file() -> None:
    plan = parse_capacity({})
    assert (plan.spec.mode, plan.spec.start, plan.spec.max, plan.spec.growth) == ("users", 1, 256, 2)
    assert plan.min_samples == 20 and plan.min_limit == 0


def test_durations_take_k6_strings_and_flags_win_over_the_file() -> None:
    data = {"capacity": {"mode": "rate", "start": 2, "max": 50, "settle": "1m30s", "hold": "45s", "resolution": 0.5}}
    plan = parse_capacity(data, "c.yaml", {"hold": ("--capacity-hold", "5"), "start": ("--capacity-start", "")})
    assert plan.timing.settle_s == 90 and plan.timing.hold_s == 5
    assert plan.spec.start == 2  # an empty flag leaves the file's value
    assert plan.spec.unit == "req/s"


@pytest.mark.parametrize(
    ("data", "overrides", "message"),
    [
        ({"capacity": {"bogus": 1}}, {}, "c.yaml: capacity.bogus: unknown key"),
        ({"capacity": {"mode": "threads"}}, {}, "c.yaml: capacity.mode: expected one of users, rate, got 'threads'"),
        ({"capacity": {"hold": "soon"}}, {}, "c.yaml: capacity.hold: expected a duration"),
        ({"capacity": {"start": -1}}, {}, "c.yaml: capacity.start: expected a number >= 0, got -1"),
        ({"capacity": {"start": 10, "max": 5}}, {}, "c.yaml: capacity.max: max (5) must be >= start (10)"),
        ({"capacity": {}}, {"max": ("--capacity-max (env CAPACITY_MAX)", "lots")}, "--capacity-max (env CAPACITY_MAX)"),
        ({"capacity": {"min_samples": 1.5}}, {}, "c.yaml: capacity.min_samples: expected an integer >= 0"),
        ([], {}, "c.yaml: expected a mapping with the key 'capacity'"),
    ],
)
def test_errors_name_the_file_or_flag_and_the_key(data: object, overrides: dict, message: str) -> None:
    with pytest.raises(CapacityConfigError) as err:
        parse_capacity(data, "c.yaml", overrides)
    assert str(err.value).startswith(message), str(err.value)


def test_a_missing_named_file_is_an_error_naming_the_flag(tmp_path: Path) -> None:
    with pytest.raises(
        CapacityConfigError, match=r"--capacity-conf \(env CAPACITY_CONF\): .*nope.yaml: file not found"
    ):
        load_capacity(tmp_path / "nope.yaml")


def test_rate_mode_runs_a_pool_of_users_sized_by_the_rate() -> None:
    plan = parse_capacity({"capacity": {"mode": "rate", "users_per_rps": 10, "min_users": 5, "max_users": 300}})
    assert [plan.users_for(r) for r in (0.2, 2, 12.5, 100)] == [5, 20, 125, 300]
    users = parse_capacity({"capacity": {"mode": "users"}})
    assert users.users_for(17) == 17
    assert users.spawn_rate_for(10, 40) == 60 and users.spawn_rate_for(10, 11) == 10
