"""Reading configuration files: the one YAML loader, value reader and k6 duration parser (pure, no Locust).

Every configuration of the product (profiles, capacity, gateway, sidecar, prompts, thresholds) is read
through this module, so that they all refuse the same mistakes with the same words:

* ``load_yaml_file(path, error)``: the file's text (``read_text``) parsed by ``parse_yaml``, which refuses a
  duplicate mapping key (PyYAML keeps the last of two equal keys without a word, so a thresholds file with
  ``gateway_latency:`` twice would silently drop the first list). Errors are ``error`` (the caller's own
  ``ValueError`` subclass) starting with the file: ``conf/x.yaml: line 4: duplicate key 'target'``,
  ``conf/x.yaml: line 3: not valid YAML: ...``, ``conf/x.yaml: not UTF-8 text (byte 0)``.
* ``parse_json``: the same for JSON (``x.json: not valid JSON: line 1 column 6: ...``).
* ``ValueReader``: walks the parsed data; each check raises ``error`` naming the file and the key path and
  saying what was expected (``conf/shapes.yaml: profiles.spike.stages[2].target: expected a non-negative
  integer, got -5``); ``show`` writes the offending value as the message shows it.
* ``parse_duration``: seconds from a number or a k6/Go duration string. The grammar: one or more
  ``NUMBER UNIT`` with no space between (``1m30s``, ``1h2m``), ``NUMBER`` being ``12``, ``1.5``, ``1.`` or
  ``.5`` and ``UNIT`` one of ``ns``, ``us``, ``µs``, ``ms``, ``s``, ``m``, ``h``; surrounding blanks are
  ignored; a plain number (not a string) is seconds. Negative, infinite and NaN values are refused, and so is
  a bare string number (``"30"``: give a unit, or write the number unquoted).

``safe_load_unique`` and ``UniqueKeyLoader`` stay for the callers that handle PyYAML's errors themselves.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "UniqueKeyLoader",
    "ValueReader",
    "known_keys",
    "load_yaml_file",
    "parse_duration",
    "parse_json",
    "parse_yaml",
    "read_text",
    "safe_load_unique",
    "show",
]

ErrorType = Callable[[str], Exception]
"""What raises a configuration error: the caller's ``ValueError`` subclass, given the whole message."""


class UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate mapping keys instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def safe_load_unique(text: str) -> Any:
    """``yaml.safe_load`` that raises ``yaml.YAMLError`` on a duplicate mapping key."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects


# -- files -----------------------------------------------------------------------------------------------------


def read_text(path: str | Path, error: ErrorType, *, source: str | None = None, missing: str | None = None) -> str:
    """The UTF-8 text of ``path``; ``error`` naming ``source`` (default: the path) when it cannot be read.

    ``missing`` is what a file that does not exist is called (``"prompt file"`` gives ``x.yaml: prompt file not
    found``); without it the message is the system's (``cannot read the file: No such file or directory``).
    """
    src = str(path) if source is None else source
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        if missing:
            raise error(f"{src}: {missing} not found") from None
        raise error(f"{src}: cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{src}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise error(f"{src}: cannot read the file: {exc.strerror or exc}") from None


def parse_yaml(text: str, source: str, error: ErrorType) -> Any:
    """YAML ``text`` parsed safely, refusing a duplicate key; ``error`` naming ``source`` and the line."""
    try:
        return safe_load_unique(text)
    except RecursionError:
        raise error(f"{source}: not valid YAML: nesting too deep") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = exc.problem or str(exc)
        if problem.startswith("duplicate key"):
            raise error(f"{source}: {where}{problem}") from None
        raise error(f"{source}: {where}not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {exc}") from None


def load_yaml_file(path: str | Path, error: ErrorType, *, source: str | None = None, missing: str | None = None) -> Any:
    """``read_text`` then ``parse_yaml``: the parsed file, or ``error`` naming the file (and the line)."""
    src = str(path) if source is None else source
    return parse_yaml(read_text(path, error, source=src, missing=missing), src, error)


def parse_json(text: str, where: str, error: ErrorType, *, position: bool = True) -> Any:
    """JSON ``text`` parsed; ``error``: ``WHERE: not valid JSON: line L column C: what`` (without the line and
    column when not ``position``, e.g. for one line of a JSONL file whose ``where`` names the line)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = f"line {exc.lineno} column {exc.colno}: " if position else ""
        raise error(f"{where}: not valid JSON: {at}{exc.msg}") from None
    except RecursionError:
        raise error(f"{where}: not valid JSON: nesting too deep") from None


# -- values ----------------------------------------------------------------------------------------------------


def show(value: object) -> str:
    """A value as an error message shows it: YAML-like scalars, ``'text'`` for strings, the kind of a container."""
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


def known_keys(
    data: object, allowed: tuple[str, ...], error: ErrorType, source: str, path: str, expected: str
) -> Mapping[Any, Any]:
    """``data`` when it is a mapping of ``allowed`` keys only; else ``error``: ``source: path: expected EXPECTED``,
    or ``source: path.KEY: unknown key (expected a, b)`` for the first unknown key (keys may be any YAML scalar:
    in the order of their text)."""
    where = ": ".join(part for part in (source, path) if part)
    if not isinstance(data, Mapping):
        raise error(f"{where}: expected {expected}")
    unknown = sorted(set(data) - set(allowed), key=str)
    if unknown:
        key = f"{path}.{unknown[0]}" if path else str(unknown[0])
        raise error(f"{': '.join(part for part in (source, key) if part)}: unknown key (expected {', '.join(allowed)})")
    return data


_DURATION_PART = r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)"
_DURATION_RE = re.compile(f"(?:{_DURATION_PART})+")
_DURATION_PART_RE = re.compile(_DURATION_PART)
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """Seconds from a non-negative number or a k6/Go duration string (``"10s"``, ``"1m30s"``, ``"500ms"``).

    ``ValueError`` otherwise, whose message says what was expected (the module docstring gives the grammar).
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 10s, 1m30s or 500ms, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"expected a duration >= 0, got {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if _DURATION_RE.fullmatch(text):
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART_RE.findall(text))
            if math.isfinite(seconds):
                return seconds
    raise ValueError(f"cannot parse duration {value!r}: expected e.g. 10s, 1m30s or 500ms")


_DURATION_WANTED = "a non-negative duration (seconds, or a k6 duration such as '30s', '2m', '1m30s')"


class ValueReader:
    """Checks of parsed configuration values; each failure is ``error("source: key.path: expected ..., got X")``.

    ``source`` names the file (empty: the path alone starts the message, e.g. when the path is a flag).
    """

    def __init__(self, source: str, error: ErrorType) -> None:
        self.source = source
        self._error = error

    def error(self, path: str, message: str) -> Exception:
        """The error to raise: ``source: path: message`` (the empty parts left out)."""
        return self._error(": ".join(part for part in (self.source, path, message) if part))

    def mapping(
        self, value: object, path: str, allowed: tuple[str, ...], what: str = "a mapping", *, optional: bool = False
    ) -> Mapping[str, Any]:
        """A mapping whose keys are all ``allowed`` (listed in that order in the error); ``optional``: None is {}."""
        if value is None and optional:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(path, f"expected {what}, got {show(value)}")
        for key in value:
            if key not in allowed:
                key_path = f"{path}.{key}" if path else str(key)
                raise self.error(key_path, f"unknown key (expected one of: {', '.join(allowed)})")
        return value

    def required(self, data: Mapping[str, Any], key: str, path: str) -> Any:
        if key not in data:
            raise self.error(path, f"missing key {key!r}")
        return data[key]

    def number(
        self, value: object, path: str, *, minimum: float = 0.0, strict: bool = False, what: str | None = None
    ) -> float:
        """A finite number ``>= minimum`` (``> minimum`` when ``strict``); not a boolean."""
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if ok and (value > minimum if strict else value >= minimum):  # type: ignore[operator]
            return float(value)  # type: ignore[arg-type]
        expected = what or f"a number {'>' if strict else '>='} {minimum:g}"
        raise self.error(path, f"expected {expected}, got {show(value)}")

    def integer(self, value: object, path: str, *, minimum: int = 0, what: str | None = None) -> int:
        """An integer ``>= minimum``; not a boolean, not a float."""
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(path, f"expected {what or f'an integer >= {minimum}'}, got {show(value)}")
        return value

    def flag(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(path, f"expected true or false, got {show(value)}")
        return value

    def text(self, value: object, path: str, *, non_empty: bool = False) -> str:
        if not isinstance(value, str) or (non_empty and not value):
            raise self.error(path, f"expected {'a non-empty string' if non_empty else 'a string'}, got {show(value)}")
        return value

    def duration(self, value: object, path: str, *, what: str = _DURATION_WANTED) -> float:
        """Seconds: a non-negative number or a k6 duration (``parse_duration``)."""
        try:
            return parse_duration(value)
        except ValueError:
            raise self.error(path, f"expected {what}, got {show(value)}") from None
