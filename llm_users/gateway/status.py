"""Which answers of a gateway are successes, failures, or refusals counted apart (seed 000).

Each answer gets one *kind*:

* ``budget_exceeded``: the status is a budget status (default 402), or an error body's ``code``/``type``
  (``{"error": {"type": ..., "code": ...}}``, a top-level ``code``/``type``, or ``{"error": "..."}``) is one
  of the budget error codes (default ``budget_exceeded``, ``insufficient_quota``), whatever the status >= 400
  (OpenAI answers a spent quota with 429 ``insufficient_quota``: a budget answer, not a rate limit);
* ``requests_blocked``: the status is a blocked status (default 429, the rate limit);
* ``ok``: the status is an expected one (k6's ``expectedStatuses``; default 200-399);
* ``failure``: anything else, and no answer at all (status 0).

Blocked and budget answers are counted apart and are not failures, unless ``blocked_are_failures`` (then they
are counted *and* fail, as k6 does by default). ``expected`` does not change how they are counted.

``parse_statuses(value, where)`` reads a YAML list of statuses and ``"lo-hi"`` ranges; errors name ``where``.
No Locust import here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BLOCKED",
    "BUDGET",
    "DEFAULT_BUDGET_CODES",
    "Kind",
    "Outcome",
    "StatusPolicy",
    "classify",
    "error_codes",
    "parse_statuses",
    "status_reason",
]

Kind = Literal["ok", "failure", "requests_blocked", "budget_exceeded"]
BLOCKED: Kind = "requests_blocked"
BUDGET: Kind = "budget_exceeded"
DEFAULT_BUDGET_CODES = frozenset({"budget_exceeded", "insufficient_quota"})
Ranges = tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class StatusPolicy:
    expected: Ranges = ((200, 399),)
    blocked: Ranges = ((429, 429),)
    budget: Ranges = ((402, 402),)
    budget_error_codes: frozenset[str] = field(default_factory=lambda: DEFAULT_BUDGET_CODES)
    """Lower-cased error codes/types that mean a spent budget."""
    blocked_are_failures: bool = False

    def describe(self) -> dict[str, object]:
        return {
            "expected": _show_ranges(self.expected),
            "blocked": _show_ranges(self.blocked),
            "budget": _show_ranges(self.budget),
            "budget_error_codes": sorted(self.budget_error_codes),
            "blocked_are_failures": self.blocked_are_failures,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Kind
    failed: bool
    reason: str | None = None
    """Why it failed (``HTTP 503: mock_fault``), or what it is (``HTTP 429: rate_limit_exceeded``)."""

    @property
    def counted_apart(self) -> bool:
        """A blocked or budget answer (counted in ``requests_blocked`` / ``budget_exceeded``)."""
        return self.kind in (BLOCKED, BUDGET)


def _show_ranges(ranges: Ranges) -> list[str]:
    return [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges]


def _in(status: int, ranges: Ranges) -> bool:
    return any(lo <= status <= hi for lo, hi in ranges)


def error_codes(body: bytes | str | None) -> tuple[str, ...]:
    """Lower-cased ``type``/``code`` strings of a JSON error body, in that order; () when there are none."""
    if not body:
        return ()
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ()
    if not isinstance(obj, dict):
        return ()
    out: list[str] = []
    err = obj.get("error")
    places: list[dict[str, object]] = [obj]
    if isinstance(err, dict):
        places.insert(0, err)
    elif isinstance(err, str) and err.strip():
        out.append(err.strip().lower())
    for place in places:
        for key in ("type", "code"):
            v = place.get(key)
            if isinstance(v, str) and v.strip() and v.strip().lower() not in out:
                out.append(v.strip().lower())
    return tuple(out)


def status_reason(status: int, codes: Iterable[str] = ()) -> str:
    """``HTTP 429: rate_limit_exceeded`` (the first code of the error body), or ``HTTP 429``."""
    first = next(iter(codes), "")
    return f"HTTP {status}: {first[:40]}" if first else f"HTTP {status}"


def classify(status: int, body: bytes | str | None, policy: StatusPolicy) -> Outcome:
    """The kind of one answer (module docstring); ``status`` 0 means no answer."""
    if status <= 0:
        return Outcome("failure", True, "no response")
    codes = error_codes(body) if status >= 400 else ()
    if _in(status, policy.budget) or (status >= 400 and any(c in policy.budget_error_codes for c in codes)):
        return Outcome(BUDGET, policy.blocked_are_failures, status_reason(status, codes))
    if _in(status, policy.blocked):
        return Outcome(BLOCKED, policy.blocked_are_failures, status_reason(status, codes))
    if _in(status, policy.expected):
        return Outcome("ok", False)
    return Outcome("failure", True, status_reason(status, codes))


def parse_statuses(value: object, where: str) -> Ranges:
    """``[200, "300-399"]`` -> ``((200, 200), (300, 399))``; ValueError naming ``where`` otherwise."""
    if isinstance(value, int | str) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f'{where}: expected a list of statuses and ranges such as [200, "300-399"], got {value!r}')
    out: list[tuple[int, int]] = []
    for i, item in enumerate(value):
        path = f"{where}[{i}]"
        lo = hi = None
        if isinstance(item, int) and not isinstance(item, bool):
            lo = hi = item
        elif isinstance(item, str):
            a, sep, b = item.partition("-")
            try:
                lo = int(a.strip())
                hi = int(b.strip()) if sep else lo
            except ValueError:
                lo = hi = None
        if lo is None or hi is None:
            raise ValueError(f'{path}: expected a status such as 429 or a range such as "200-399", got {item!r}')
        if not (100 <= lo <= 599 and 100 <= hi <= 599) or lo > hi:
            raise ValueError(f"{path}: expected statuses within 100-599 (low end first), got {item!r}")
        out.append((lo, hi))
    return tuple(out)
