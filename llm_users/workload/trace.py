"""Request traces (JSONL) for open-model replay: when each request is sent, how long its prompt and answer are.

One JSON object per line (blank lines are skipped)::

    {"offset_s": 0.0,  "input_tokens": 512,  "output_tokens": 128}
    {"offset_s": 0.35, "input_tokens": 1900, "output_tokens": 64, "conversation_id": "c17"}

* ``offset_s`` (required, >= 0): seconds from the start of the replay; lines need not be sorted.
* ``input_tokens`` (required, >= 1): the prompt length the server should count (``usage.prompt_tokens``).
  With a ``conversation_id`` it is the whole prompt, the conversation's earlier turns included: the request
  sends the history this process holds for the conversation plus a new user message making up the rest
  (at least ``MIN_QUESTION_TOKENS``).
* ``output_tokens`` (required, >= 1): sent as ``max_tokens``.
* ``conversation_id`` (optional, a string or an integer): requests of one conversation share their history
  (earlier questions and answers) and are sent in order, each once the answer to the one before has come (a
  user reads the answer before asking again): one due earlier waits, and its schedule lag shows the wait. In a
  distributed run they all go to the same worker.

The replay multiplies every offset by a time scale (0.1 replays ten times faster). Other trace formats (e.g.
Mooncake's or Azure's, in milliseconds) convert with one line of ``jq``; see the README.

In a distributed run worker ``rank`` of ``workers`` replays the requests assigned to it: those of a
conversation by a stable hash of its id, the others by their position. Pure: no Locust.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MIN_QUESTION_TOKENS",
    "TraceError",
    "TraceRecord",
    "assigned",
    "duration",
    "load_trace",
    "parse_trace",
    "schedule",
]

MIN_QUESTION_TOKENS = 4
_KEYS = ("offset_s", "input_tokens", "output_tokens", "conversation_id")


class TraceError(ValueError):
    """A trace that cannot be replayed; the message names the file, the line and the key."""


@dataclass(frozen=True, slots=True)
class TraceRecord:
    offset_s: float
    input_tokens: int
    output_tokens: int
    conversation_id: str | None = None
    index: int = 0
    """Position in the file (0-based, non-blank lines), for the log and the assignment to workers."""


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TraceError(f"{where}: expected an integer >= 1, got {value!r}")
    return value


def parse_trace(lines: Sequence[str], source: str = "<trace>") -> list[TraceRecord]:
    """Records sorted by offset (stable); ``TraceError`` naming ``source``, the line and the key."""
    records: list[TraceRecord] = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source}: line {lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TraceError(f"{where}: not valid JSON: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise TraceError(f"{where}: expected a JSON object with offset_s, input_tokens, output_tokens")
        for key in obj:
            if key not in _KEYS:
                raise TraceError(f"{where}: {key}: unknown key (expected {', '.join(_KEYS)})")
        for key in _KEYS[:3]:
            if key not in obj:
                raise TraceError(f"{where}: missing key {key!r}")
        offset = obj["offset_s"]
        if isinstance(offset, bool) or not isinstance(offset, int | float) or not math.isfinite(offset) or offset < 0:
            raise TraceError(f"{where}: offset_s: expected a number of seconds >= 0, got {offset!r}")
        conv = obj.get("conversation_id")
        if conv is not None and (isinstance(conv, bool) or not isinstance(conv, str | int) or conv == ""):
            raise TraceError(f"{where}: conversation_id: expected a non-empty string or an integer, got {conv!r}")
        records.append(
            TraceRecord(
                float(offset),
                _count(obj["input_tokens"], f"{where}: input_tokens"),
                _count(obj["output_tokens"], f"{where}: output_tokens"),
                None if conv is None else str(conv),
                len(records),
            )
        )
    if not records:
        raise TraceError(f"{source}: the trace has no requests")
    return sorted(records, key=lambda r: r.offset_s)


def load_trace(path: str | Path) -> list[TraceRecord]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TraceError(f"{p}: trace file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"{p}: cannot read the trace: {exc}") from None
    return parse_trace(text.splitlines(), str(p))


def assigned(record: TraceRecord, rank: int, workers: int) -> bool:
    """Whether worker ``rank`` of ``workers`` replays ``record`` (a conversation stays on one worker)."""
    if workers <= 1:
        return True
    if record.conversation_id is not None:
        return zlib.crc32(record.conversation_id.encode()) % workers == rank
    return record.index % workers == rank


def schedule(
    records: Sequence[TraceRecord], time_scale: float = 1.0, rank: int = 0, workers: int = 1
) -> Iterator[tuple[float, TraceRecord]]:
    """``(scaled offset, record)`` of this worker's share, in offset order."""
    if not (time_scale > 0 and math.isfinite(time_scale)):
        raise ValueError(f"time scale must be a positive number, got {time_scale!r}")
    for rec in records:
        if assigned(rec, rank, workers):
            yield rec.offset_s * time_scale, rec


def duration(records: Sequence[TraceRecord], time_scale: float = 1.0) -> float:
    """Seconds from the replay start to the last request's send time."""
    return max((r.offset_s for r in records), default=0.0) * time_scale
