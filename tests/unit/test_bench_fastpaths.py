"""The hot-path shortcuts taken for speed (bench/RESULTS.md) give exactly what the slow, obvious code gives.

* ``sse.iter_events`` (own cut of LF-only streams, lone ``data:`` lines decoded directly) against
  ``sse.iter_events_sseclient`` (sseclient-py alone), for any event mix, line endings and chunking;
* ``ChatStreamAccumulator`` (a per-stream template that skips ``json.loads`` for content chunks differing from
  an already parsed one only in their content) against the same accumulator with the template turned off.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llm_users.client.openai_stream import ChatStreamAccumulator
from llm_users.client.sse import iter_events, iter_events_sseclient

LINES = [
    "data: {}",
    'data: {"choices":[{"delta":{"content":"hi"}}]}',
    "data:no-space",
    "data:  two spaces",
    "data",
    "data:",
    "data: ",
    ": ping",
    ":",
    "event: error",
    "event:",
    "id: 7",
    "retry: 100",
    "unknown: field",
    "   ",
    "data: wörld ✓",
    "data: a:b:c",
    "",
]


def decode_all(fn: Any, chunks: list[bytes]) -> tuple[list[tuple[str, str]], str | None]:
    out: list[tuple[str, str]] = []
    try:
        for ev in fn(chunks):
            out.append(ev)
    except Exception as exc:  # both decoders must fail alike (e.g. invalid UTF-8)
        return out, type(exc).__name__
    return out, None


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    pos = sorted({c % (len(body) + 1) for c in cuts})
    out, prev = [], 0
    for p in pos:
        out.append(body[prev:p])
        prev = p
    out.append(body[prev:])
    return out


@st.composite
def sse_bodies(draw: Any, eols: tuple[str, ...]) -> bytes:
    lines = draw(st.lists(st.sampled_from(LINES), max_size=25))
    text = "".join(line + draw(st.sampled_from(eols)) for line in lines)
    body = text.encode()
    if draw(st.booleans()):
        body += draw(st.binary(max_size=4))  # stray bytes, an unterminated event, invalid UTF-8
    return body


@settings(max_examples=400, deadline=None)
@given(sse_bodies(("\n",)), st.lists(st.integers(min_value=0, max_value=10_000), max_size=6))
def test_lf_streams_decode_as_sseclient_does(body: bytes, cuts: list[int]) -> None:
    chunks = split(body, cuts)
    assert decode_all(iter_events, chunks) == decode_all(iter_events_sseclient, chunks)


@settings(max_examples=400, deadline=None)
@given(sse_bodies(("\n", "\r\n", "\r")), st.lists(st.integers(min_value=0, max_value=10_000), max_size=6))
def test_any_line_endings_decode_as_sseclient_does(body: bytes, cuts: list[int]) -> None:
    chunks = split(body, cuts)
    assert decode_all(iter_events, chunks) == decode_all(iter_events_sseclient, chunks)


def test_every_split_of_a_mixed_stream() -> None:
    body = b": ping\n\ndata: a\n\nevent: e\ndata: b\ndata: c\n\ndata: d\r\n\r\ndata: e\n\ndata: tail"
    for i in range(len(body) + 1):
        for j in range(i, len(body) + 1, 7):
            chunks = [body[:i], body[i:j], body[j:]]
            assert decode_all(iter_events, chunks) == decode_all(iter_events_sseclient, chunks), (i, j)


# -- the accumulator's template ----------------------------------------------------------------------------

HEAD = '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{'


def content(text: str, stamp: int | None = None, tail: str = '},"finish_reason":null}]') -> str:
    s = HEAD + '"content":' + json.dumps(text, ensure_ascii=False) + tail
    return s + (f',"mock_sent_ns":{stamp}' if stamp is not None else "") + "}"


VARIANTS = [
    lambda t, s: content(t, s),
    lambda t, s: content(t, s, tail=',"reasoning_content":"r"},"finish_reason":null}]'),
    lambda t, s: content(t, s, tail='},"finish_reason":"stop"}]'),
    lambda t, s: content(t, s, tail='},"finish_reason":null}],"usage":{"prompt_tokens":3,"completion_tokens":2}'),
    lambda t, s: content(t, s, tail='},"finish_reason":null}],"error":{"type":"boom"}'),
    lambda t, s: HEAD + '"role":"assistant","content":' + json.dumps(t) + '},"finish_reason":null}]}',
    lambda t, s: '{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":' + str(len(t)) + "}}",
    lambda t, s: HEAD + '"content":"' + t + '"},"finish_reason":null}]}',  # raw text: may be broken JSON
    lambda t, s: content(t, s)[:-3],  # truncated
    lambda t, s: content(t, s).replace('"content"', '"content": ', 1),
    lambda t, s: "[DONE]",
]
TEXTS = st.one_of(
    st.sampled_from(["", "a", "hello", " ", "x y", "é", "✓", "\\", '"', "\\n", "\n", "\t", "\x00", "content", "m"]),
    st.text(max_size=6),
)


def run_acc(events: list[str], stamps: bool, template: bool) -> tuple[Any, ...]:
    acc = ChatStreamAccumulator(collect_server_stamps=stamps)
    if not template:
        acc.disable_template()
    for i, e in enumerate(events):
        if acc.feed(e, 1.0 + i):
            break
    s = acc.state
    err = None if s.error is None else (s.error.reason, s.error.detail)
    return (s.first_content, s.chunk_times, s.done_at, s.events, s.prompt_tokens, s.completion_tokens,
            s.finish_reason, err, s.mock_sent_ns, s.read_delays_ms)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(VARIANTS) - 1), TEXTS, st.one_of(st.none(), st.integers(0, 10**12))),
             max_size=12),
    st.booleans(),
)  # fmt: skip
def test_template_gives_what_json_loads_gives(spec: list[tuple[int, str, int | None]], stamps: bool) -> None:
    events = [VARIANTS[v](t, s) for v, t, s in spec]
    assert run_acc(events, stamps, True) == run_acc(events, stamps, False)


def test_template_is_used_for_a_plain_stream() -> None:
    acc = ChatStreamAccumulator(collect_server_stamps=True)
    for i, t in enumerate(["a", "b", "", "c"]):
        acc.feed(content(t, 10**9 + i), 1.0 + i)
    assert acc.template_hits == 3
    assert acc.state.chunk_times == [1.0, 2.0, 4.0]
    assert acc.state.mock_sent_ns == [10**9, 10**9 + 1, 10**9 + 3]


def test_stamp_lookalikes_are_parsed_in_full() -> None:
    for data in [content("a")[:-1] + ',"mock_sent_ns":0123}', content("a")[:-1] + ',"mock_sent_ns":-1}']:
        assert run_acc([content("x", 5), data], True, True) == run_acc([content("x", 5), data], True, False)
