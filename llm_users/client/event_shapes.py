"""Shapes of chat stream events, proved once per process, so that most events of a later answer need no parse.

Pure: no sockets, no Locust. Every event of an OpenAI-compatible chat stream holds values that change from answer
to answer and that the chat decoder never reads: the top-level ``id``, ``created`` and ``system_fingerprint``
(``HOLE_KEYS``). A *shape* is an event's JSON text with holes in their place: a ``head`` (a regular expression:
the text up to the last such hole) and, behind it, the *bodies* proved with it: the rest of a non-token event
(role, finish, usage, keep-alive) with the object it parses to, and the two sides of a text chunk's text: the
``choices[0].delta`` string ``content`` (output) or ``reasoning_content``/``reasoning`` (reasoning), the third
hole. ``learn`` proves a shape from one event parsed in full; ``match`` reads an event that is a proved shape
with other values in its holes.

Why a match is the object learnt, up to the holes' values (``learn`` checks each premise):

1. The learnt text has no backslash: no JSON escape anywhere, so every string token's value is its raw text.
2. A string hole sits between two quotes, an int hole is a run of digits. The proof parses the text with a
   marker in every hole (``"zQ7~k"``-like strings, ``8642097531``-like ints; each marker occurs once in the
   marked text and nowhere in the learnt one) and requires the result to be the learnt object with each hole
   key holding its marker (same type: ``str``; ``int``, not float), and the delta's text holding its marker.
3. The lexer reads left to right, so its state where a hole starts depends only on the text before it. Before a
   string hole is a quote, unescaped (1.): either it opens a string, or it closes one and the marker is read
   outside strings, where its first letter (``z``, ``y``, ``x``, ``w``) starts no JSON token and the proof
   would fail. So it opens a string, which ends at the quote after the hole (the first quote, 1.): the token is
   exactly the hole, and any hole text without quote, backslash or control character (``[^"\\\\\\x00-\\x1f]``,
   what ``json`` reads as itself) gives the same tokens with that one string changed. A number token that reads
   as the int marker is the marker's digits (no sign, no leading zero, no fraction or exponent: those give
   another value or a float), which occur only in the hole; the character after it ended the number, so any
   ``0|[1-9][0-9]*`` there gives the same tokens with that one number changed.
4. The parse is a function of the token sequence, and the place in the result that a value token fills is
   decided by the keys and the structure, not by the values. In the proof's result the hole key holds the
   marker; a string or int equal to it can only come from the marker's text (1., and an int is spelt one way),
   which is only in the hole: the hole's token fills that place (it is the key's value, not a key, and not a
   value a later duplicate key drops). All other tokens are the same in the learnt text, the marked text and a
   match, so a match parses to the proof's result with its hole values in those places, and the proof's result
   with the learnt values put back is the learnt object (checked): a match is the learnt object with the hole
   keys (and the text) holding the match's values.

The chat decoder reads from an event ``error``, ``choices``, ``usage`` and ``mock_sent_ns`` (the mock's stamp,
which it splits off before matching, and which the learnt text may not contain), never a hole key: a matched
non-token event has the effect of its learnt object, and a matched text chunk the effect of an output (or
reasoning) event with the matched text (the learnt chunk's delta had no other token key, its first choice no
finish reason, the event no usage). The store is bounded: ``MAX_SHAPES`` heads, ``MAX_BODIES`` non-token bodies
and ``MAX_TEXTS`` text bodies each; past that, events that do not match are parsed in full, as before.
"""

from __future__ import annotations

import json
import re
from typing import Any

_loads = json.loads

HOLE_KEYS = ("id", "created", "system_fingerprint")
MAX_SHAPES = 8
MAX_BODIES = 256
MAX_TEXTS = 8
_STR = r'[^"\\\x00-\x1f]*'
_INT = "(?:0|[1-9][0-9]*)"
_PLAIN = re.compile(_STR)
STR_MARKERS = ("zQ7~k", "yW3~j", "xE5~h", "wR9~g")
"""Marker strings put in a hole to prove it (also by ``openai_stream._make_template``)."""
_INT_MARKERS = ("8642097531", "7531986420", "9753108642")
_TOKEN_KEYS = ("content", "reasoning_content", "reasoning", "tool_calls")
_TEXT_KEYS = _TOKEN_KEYS[:3]


class Shape:
    """A proved head (``head.match`` gives where the rest starts) and the bodies proved behind it: ``bodies``,
    the rest of a non-token event -> the object it parses to (holes aside); ``texts``, a text chunk's rest
    as (before its text, after it, True for a reasoning text)."""

    __slots__ = ("bodies", "head", "pattern", "texts")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.head = re.compile(pattern)
        self.bodies: dict[str, dict[str, Any]] = {}
        self.texts: list[tuple[str, str, bool]] = []


SHAPES: list[Shape] = []
"""The shapes proved in this process (per process: forked workers each learn their own)."""


def plain(text: str) -> bool:
    """Text that JSON writes as itself between quotes: no quote, no backslash, no control character; printable
    (stricter than JSON needs, as the per-call template reads contents)."""
    return '"' not in text and "\\" not in text and text.isprintable()


def match(core: str) -> tuple[dict[str, Any] | None, int, int, bool]:
    """A proved shape of the event text ``core`` (without a mock stamp): (the learnt object of a non-token
    event, 0, 0, False), or (None, start, end, reasoning) of the plain text of a text chunk, or (None, 0, 0,
    False)."""
    for shape in SHAPES:
        m = shape.head.match(core)
        if m is None:
            continue
        at = m.end()
        rest = core[at:] if at else core
        obj = shape.bodies.get(rest)
        if obj is not None:
            return obj, 0, 0, False
        n = len(rest)
        for before, after, reasoning in shape.texts:
            if rest.startswith(before) and rest.endswith(after) and n >= len(before) + len(after):
                start, end = at + len(before), len(core) - len(after)
                if plain(core[start:end]):
                    return None, start, end, reasoning
    return None, 0, 0, False


def _holes(core: str, obj: dict[str, Any]) -> list[tuple[int, int, str, Any]] | None:
    """(start, end, key, value) of each hole key's value in ``core``, found once after its key (``"key":`` with
    or without a space); None when one cannot be."""
    holes = []
    for key in HOLE_KEYS:
        if key not in obj:
            continue
        value = obj[key]
        if type(value) is str:
            if not value or _PLAIN.fullmatch(value) is None:
                return None
            spelt = '"' + value + '"'
        elif type(value) is int and value >= 0:
            spelt = str(value)
        elif value is None:
            continue  # a literal null: part of the shape
        else:
            return None
        for needle in ('"' + key + '":' + spelt, '"' + key + '": ' + spelt):
            i = core.find(needle)
            if i >= 0:
                break
        if i < 0 or core.find(needle, i + 1) >= 0:
            return None
        start = i + len(needle) - len(spelt) + (spelt[0] == '"')
        holes.append((start, start + len(str(value)), key, value))
    return sorted(holes)


def _prove(core: str, obj: dict[str, Any], holes: list[tuple[int, int, str, Any]]) -> bool:
    """Parse ``core`` with a marker in every hole: True when that is ``obj`` with the markers in their keys."""
    strs, ints = iter(m for m in STR_MARKERS if m not in core), iter(m for m in _INT_MARKERS if m not in core)
    parts, marks, last = [], [], 0
    for start, end, key, value in holes:
        if start < last:
            return False
        mark = next(ints if type(value) is int else strs, None)
        if mark is None:
            return False
        parts += [core[last:start], mark]
        marks.append((key, mark, value))
        last = end
    marked = "".join([*parts, core[last:]])
    if any(marked.count(mark) != 1 for _k, mark, _v in marks):
        return False
    try:
        probe = _loads(marked)
        for key, mark, value in marks:
            place = probe["choices"][0]["delta"] if key in _TEXT_KEYS else probe
            got = place[key]
            if type(got) is not type(value) or got != (int(mark) if type(value) is int else mark):
                return False
            place[key] = value
    except (ValueError, RecursionError, LookupError, TypeError):
        return False
    return bool(probe == obj)


def learn(core: str, obj: dict[str, Any], chunk: tuple[str, str] | None) -> tuple[int, int] | None:
    """Prove the shape of one event parsed in full (``core`` without a mock stamp, ``obj`` what it parses to):
    a non-token event when ``chunk`` is None, else a plain text chunk whose delta holds (key, text)
    (``text_chunk``). The shape joins ``SHAPES`` (bounded); for a text chunk, (start, end) of its text in
    ``core``, else None."""
    key, text = chunk if chunk is not None else ("", None)
    if "\\" in core or "mock_sent_ns" in core:
        return None
    for known in SHAPES:  # a full store costs a match, not the work below, for events that never recur
        if known.head.match(core) and (
            len(known.bodies) >= MAX_BODIES if text is None else len(known.texts) >= MAX_TEXTS
        ):
            return None
    holes = _holes(core, obj)
    if holes is None:
        return None
    head_end = holes[-1][1] if holes else 0
    if text is not None:
        if not text or not plain(text):
            return None
        for needle in (f'"{key}":"{text}"', f'"{key}": "{text}"'):
            i = core.find(needle)
            if i >= 0:
                break
        if i < head_end or core.find(needle, i + 1) >= 0:
            return None
        start = i + len(needle) - len(text) - 1
        holes.append((start, start + len(text), key, text))
    pattern, last = [], 0
    for start, end, name, value in holes:
        if name not in _TEXT_KEYS:
            pattern += [re.escape(core[last:start]), _INT if type(value) is int else _STR]
            last = end
    head = "".join(pattern)
    shape = next((sh for sh in SHAPES if sh.pattern == head), None)
    if shape is None:
        if len(SHAPES) >= MAX_SHAPES:
            return None  # no room: not kept (a content chunk still gets a per-call template)
    elif len(shape.bodies) >= MAX_BODIES if text is None else len(shape.texts) >= MAX_TEXTS:
        return None
    if not _prove(core, obj, holes):
        return None
    if shape is None:
        shape = Shape(head)
        SHAPES.append(shape)
    if text is None:
        shape.bodies[core[head_end:]] = obj
        return None
    start, end = holes[-1][0], holes[-1][1]
    shape.texts.append((core[head_end:start], core[end:], key != "content"))
    return start, end


def text_chunk(obj: dict[str, Any]) -> tuple[str, str] | None:
    """(key, text) of a plain text chunk: the first choice's delta holds one token key, ``content`` or a
    reasoning key, with a non-empty string (``content`` may also be null beside a reasoning text, as ``feed``
    takes it), and there is no finish reason, no usage, no error; else None."""
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    ch = choices[0]
    delta = ch.get("delta")
    if not isinstance(delta, dict) or ch.get("finish_reason") is not None or "usage" in obj or "error" in obj:
        return None
    keys = [k for k in _TOKEN_KEYS if k in delta and not (k == "content" and delta[k] is None)]
    if len(keys) != 1 or keys[0] == "tool_calls":
        return None
    text = delta[keys[0]]
    return (keys[0], text) if isinstance(text, str) and text else None


def tokenless(obj: dict[str, Any]) -> bool:
    """An event that is no token event by its look (no choice, or a delta without content, reasoning or tool
    call): the only events other than plain text chunks whose shapes are kept (the effect of any proved
    shape is exact; this keeps the store for the events that recur from answer to answer)."""
    choices = obj.get("choices")
    if not choices:
        return True
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        return False
    delta = choices[0].get("delta")
    if not delta:
        return True
    return isinstance(delta, dict) and not any(delta.get(k) for k in _TOKEN_KEYS)
