"""The one config reader (``llm_metrics.engine.config``): its duration grammar, file errors and value checks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from llm_metrics.engine import thresholds
from llm_metrics.engine.config import (
    ValueReader,
    known_keys,
    load_yaml_file,
    parse_duration,
    parse_json,
    read_text,
    show,
)
from shapes import config as shapes_config


class Bad(ValueError):
    pass


# -- the k6 duration grammar: everything either former parser accepted -----------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (45, 45.0),
        (1.5, 1.5),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("1h2m3s", 3723.0),
        ("1.5s", 1.5),
        ("1.s", 1.0),  # Go's grammar (the thresholds' former parser)
        (".5s", 0.5),
        ("250us", 250e-6),
        ("250µs", 250e-6),
        ("100ns", 100e-9),
        ("  10s ", 10.0),
    ],
)
def test_a_duration_is_seconds_or_a_k6_string(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    ["30", "", "s", "m", "1x", "-1s", "1 m", "1m 30s", "1e3s", "+5s", "1d", True, None, -1, math.nan, math.inf, [1]],
)
def test_anything_else_is_not_a_duration(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_thresholds_and_profiles_use_the_one_parser() -> None:
    assert thresholds.parse_duration is parse_duration
    assert shapes_config.parse_duration is parse_duration


# -- files ----------------------------------------------------------------------------------------------------


def write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"a: 1\nb: 2\na: 3\n", "{p}: line 3: duplicate key 'a'"),
        (b"a:\n  x: 1\n  x: 2\n", "{p}: line 3: duplicate key 'x'"),
        (b"a: [1,\n", "{p}: line 2: not valid YAML: expected the node content, but found '<stream end>'"),
        (b"[" * 1000, "{p}: not valid YAML: nesting too deep"),
        (b"\xff\xfe", "{p}: not UTF-8 text (byte 0)"),
    ],
)
def test_a_bad_yaml_file_is_named_with_the_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(Bad) as err:
        load_yaml_file(path, Bad)
    assert str(err.value) == message.format(p=path)


def test_a_good_yaml_file_loads_safely(tmp_path: Path) -> None:
    assert load_yaml_file(write(tmp_path, b"a: {b: [1, 2]}\n"), Bad) == {"a": {"b": [1, 2]}}
    with pytest.raises(Bad, match="could not determine a constructor"):
        load_yaml_file(write(tmp_path, b"a: !!python/object:os.system {}\n"), Bad)


def test_a_missing_file_is_named_by_what_it_is(tmp_path: Path) -> None:
    path = tmp_path / "none.yaml"
    with pytest.raises(Bad) as err:
        read_text(path, Bad, missing="prompt file")
    assert str(err.value) == f"{path}: prompt file not found"
    with pytest.raises(Bad) as err:
        load_yaml_file(path, Bad, source="conf/x.yaml")
    assert str(err.value) == "conf/x.yaml: cannot read the file: No such file or directory"


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ('["a",', True, "f.json: not valid JSON: line 1 column 6: Expecting value"),
        ("{bad", False, "f.json: not valid JSON: Expecting property name enclosed in double quotes"),
        ("[" * 3000, True, "f.json: not valid JSON: nesting too deep"),
    ],
)
def test_bad_json_is_named(text: str, position: bool, message: str) -> None:
    with pytest.raises(Bad) as err:
        parse_json(text, "f.json", Bad, position=position)
    assert str(err.value) == message


# -- values ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (True, "true"),
        (None, "null"),
        ("x", "'x'"),
        ({}, "an empty mapping"),
        ({"a": 1}, "a mapping"),
        ([], "an empty list"),
        ([1], "a list"),
        (1.5, "1.5"),
    ],
)
def test_show(value: object, shown: str) -> None:
    assert show(value) == shown


R = ValueReader("c.yaml", Bad)


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (lambda: R.mapping([1], "a", ("x",)), "c.yaml: a: expected a mapping, got a list"),
        (lambda: R.mapping({"y": 1}, "a", ("x", "w")), "c.yaml: a.y: unknown key (expected one of: x, w)"),
        (lambda: R.mapping({"y": 1}, "", ("x",)), "c.yaml: y: unknown key (expected one of: x)"),
        (lambda: R.required({}, "x", "a"), "c.yaml: a: missing key 'x'"),
        (lambda: R.number(-1, "a.n"), "c.yaml: a.n: expected a number >= 0, got -1"),
        (lambda: R.number(0, "a.n", strict=True), "c.yaml: a.n: expected a number > 0, got 0"),
        (lambda: R.number(True, "a.n"), "c.yaml: a.n: expected a number >= 0, got true"),
        (lambda: R.number(math.nan, "a.n"), "c.yaml: a.n: expected a number >= 0, got nan"),
        (lambda: R.integer(1.5, "a.i", minimum=1), "c.yaml: a.i: expected an integer >= 1, got 1.5"),
        (lambda: R.integer(-1, "a.i", what="a count"), "c.yaml: a.i: expected a count, got -1"),
        (lambda: R.flag("yes", "a.f"), "c.yaml: a.f: expected true or false, got 'yes'"),
        (lambda: R.text("", "a.t", non_empty=True), "c.yaml: a.t: expected a non-empty string, got ''"),
        (lambda: R.text(3, "a.t"), "c.yaml: a.t: expected a string, got 3"),
        (
            lambda: R.duration("soon", "a.d"),
            "c.yaml: a.d: expected a non-negative duration (seconds, or a k6 duration such as '30s', '2m', '1m30s'), "
            "got 'soon'",
        ),
    ],
)
def test_each_check_names_the_file_and_the_key(check: object, message: str) -> None:
    with pytest.raises(Bad) as err:
        check()  # type: ignore[operator]
    assert str(err.value) == message


def test_checks_return_the_value() -> None:
    assert R.mapping(None, "a", ("x",), optional=True) == {}
    assert R.number(2, "n") == 2.0 and isinstance(R.number(2, "n"), float)
    assert R.integer(3, "i") == 3
    assert R.duration("1m", "d") == 60.0
    assert ValueReader("", Bad).error("--flag", "bad").args == ("--flag: bad",)


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ([1], "gen", "s.yaml: gen: expected a mapping with a, b"),
        ({"a": 1, "z": 2, 1: 3}, "gen", "s.yaml: gen.1: unknown key (expected a, b)"),
        ({"z": 2}, "", "s.yaml: z: unknown key (expected a, b)"),
    ],
)
def test_known_keys(data: object, path: str, message: str) -> None:
    with pytest.raises(Bad) as err:
        known_keys(data, ("a", "b"), Bad, "s.yaml", path, "a mapping with a, b")
    assert str(err.value) == message
    assert known_keys({"a": 1}, ("a", "b"), Bad, "s.yaml", path, "x") == {"a": 1}
