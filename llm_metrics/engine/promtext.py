"""Prometheus text exposition (format 0.0.4): check a ``/metrics`` body and pick series out of it.

Pure: no Locust, no sockets. ``parse(body)`` runs ``prometheus_client.parser.text_string_to_metric_families``
(the parser users know) over the body while counting lines, so that a body it refuses raises ``PromTextError``
naming the offending line: its number (1-based) and its text. Two checks are added where the parser is lazy
or silent, so the error lands on the right line:

* a ``# TYPE`` line with a type the parser would only refuse when the family is complete (later, on another
  line) is refused on its own line;
* a body that is not UTF-8 is refused on the first line that does not decode;
* a body without a single sample is refused (an empty ``/metrics`` answer is not an answer).

``select(samples, metric, labels)`` and ``totals(..., by=label)`` sum the samples of one series name whose
labels match (values are regular expressions, matched in full), as the server-side sampling needs.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from prometheus_client.metrics_core import METRIC_TYPES
from prometheus_client.parser import text_fd_to_metric_families

__all__ = ["LINE_SHOWN", "PromTextError", "Sample", "parse", "select", "totals"]

LINE_SHOWN = 80
"""Characters of the offending line kept in the message."""
_TYPES = frozenset(METRIC_TYPES) | {"untyped"}


class PromTextError(ValueError):
    """A body that is not Prometheus text; ``reason`` names the line (short enough to group failures by)."""

    def __init__(self, line_no: int, line: str, detail: str = "") -> None:
        shown = line if len(line) <= LINE_SHOWN else line[: LINE_SHOWN - 3] + "..."
        self.line_no = line_no
        self.line = line
        self.detail = detail
        if line_no:
            self.reason = f"invalid Prometheus text at line {line_no}: {shown!r}"
        else:
            self.reason = f"invalid Prometheus text: {detail}"
        super().__init__(self.reason if not detail or not line_no else f"{self.reason} ({detail})")


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


class _Cursor:
    """The lines handed to the parser, with the number and text of the last one."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.no = 0
        self.line = ""

    def __iter__(self) -> Iterator[str]:
        for raw in io.StringIO(self.text):
            self.no += 1
            self.line = raw.rstrip("\r\n")
            _check_type_line(self.line.strip())
            yield raw


def _check_type_line(line: str) -> None:
    if not line.startswith("#"):
        return
    parts = line.split(None, 3)
    if len(parts) == 4 and parts[1] == "TYPE" and parts[3].strip() not in _TYPES:
        raise ValueError(f"unknown metric type {parts[3].strip()!r}")


def _decode(body: bytes | str) -> str:
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        for no, raw in enumerate(body.split(b"\n"), 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise PromTextError(no, raw.decode("utf-8", "replace").rstrip("\r"), "not UTF-8") from None
        raise  # pragma: no cover - a line that fails alone is always found


def parse(body: bytes | str) -> list[Sample]:
    """Every sample of a Prometheus text body; ``PromTextError`` naming the first line that does not parse."""
    text = _decode(body)
    cursor = _Cursor(text)
    out: list[Sample] = []
    try:
        for family in text_fd_to_metric_families(cast(Any, cursor)):
            for s in family.samples:
                out.append(Sample(s.name, tuple(sorted(s.labels.items())), float(s.value)))
    except ValueError as exc:  # the parser raises ValueError (often without a message) for a bad line
        raise PromTextError(cursor.no, cursor.line, str(exc)[:120]) from None
    if not out:
        raise PromTextError(0, "", "no samples in the body")
    return out


def _matches(labels: tuple[tuple[str, str], ...], want: Mapping[str, re.Pattern[str]]) -> bool:
    if not want:
        return True
    have = dict(labels)
    return all(k in have and pat.fullmatch(have[k]) is not None for k, pat in want.items())


def select(samples: Sequence[Sample], metric: str, labels: Mapping[str, re.Pattern[str]] | None = None) -> list[Sample]:
    """The samples named ``metric`` whose labels match every pattern of ``labels``."""
    want = labels or {}
    return [s for s in samples if s.name == metric and _matches(s.labels, want)]


def totals(
    samples: Sequence[Sample],
    metric: str,
    labels: Mapping[str, re.Pattern[str]] | None = None,
    by: str | None = None,
) -> dict[str, float]:
    """Sum of the matching samples, per value of label ``by`` (``""`` for all when ``by`` is None).

    Empty when no sample matches; with ``by``, samples without that label are left out.
    """
    out: dict[str, float] = {}
    for s in select(samples, metric, labels):
        if by is None:
            key = ""
        else:
            key_val = dict(s.labels).get(by)
            if key_val is None:
                continue
            key = key_val
        out[key] = out.get(key, 0.0) + s.value
    return out
