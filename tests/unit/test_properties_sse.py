"""Bad bytes from the server, property-based: whatever a target sends, the client's decoders end in their
documented outcomes and nothing else.

* ``sse.iter_events``: any bytes in any chunking yield ``(event, data)`` string pairs; the only exception is
  ``UnicodeDecodeError`` for bytes that are not UTF-8 (as sseclient-py, the reference, whose events it gives);
* ``ChatStreamAccumulator.feed``: any event data never raises; a stream that ends early holds a ``StreamError``
  with a short reason, or ``[DONE]``;
* the non-streamed answer parsers (chat, sidecar ``/generate``, trade proposals): a ``JsonAnswer`` or a
  ``StreamError``, for any body;
* the read path of a streamed call as ``llm_call`` runs it (``answer.read_stream`` over a stand-in for
  geventhttpclient's response): any body gives a success or a failure reason, a body cut short raises
  ``StreamCut`` (turned into "stream cut before the end" by ``llm_call``), nothing else.

The equivalence of the fast SSE path with sseclient-py on well-formed streams is in test_bench_fastpaths.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_metrics.engine.calls import CallRecord
from llm_users.client.answer import read_stream as _read_stream
from llm_users.client.bounds import MAX_EVENT_BYTES
from llm_users.client.openai_stream import ChatStreamAccumulator, JsonAnswer, StreamError, parse_chat_json
from llm_users.client.sse import StreamCut, iter_events, iter_events_sseclient
from llm_users.sidecar.answers import parse_generate_json, parse_trade_json

EXAMPLES = settings(max_examples=300, deadline=None)

# pieces of real and broken streams, glued at random, plus any bytes at all
PIECES = [
    b"data: ",
    b"data:",
    b"\n",
    b"\n\n",
    b"\r\n",
    b"\r",
    b": ping\n\n",
    b"event: error\n",
    b"id: 1\n",
    b"[DONE]",
    b"{",
    b"}",
    b'{"choices":[{"delta":{"content":"hi"}}]}',
    b'{"choices":[{"delta":{"role":"assistant","content":""}}]}',
    b'{"choices":[],"usage":{"completion_tokens":3,"prompt_tokens":2}}',
    b'{"error":{"type":"overloaded"}}',
    b'{"choices":true}',
    b'{"choices":[{"delta":[1]}]}',
    b'{"choices":[{"delta":{"content":5}}]}',
    b"\xff",
    b"\xc3",
    b"\xa9",
    "é✓".encode(),
    b"[" * 1200,
]
streams = st.lists(st.sampled_from(PIECES) | st.binary(max_size=20), max_size=30).map(b"".join)


@st.composite
def chunked(draw: st.DrawFn) -> list[bytes]:
    """A stream cut into network reads at arbitrary places."""
    body = draw(streams)
    cuts = sorted(set(draw(st.lists(st.integers(0, len(body)), max_size=8))))
    out, last = [], 0
    for c in [*cuts, len(body)]:
        out.append(body[last:c])
        last = c
    return out


def decode(decoder: Any, chunks: list[bytes]) -> list[tuple[str, str]] | str:
    try:
        return list(decoder(iter(chunks)))
    except UnicodeDecodeError:
        return "UnicodeDecodeError"


@EXAMPLES
@given(chunked())
def test_iter_events_gives_string_pairs_or_a_unicode_error_only(chunks: list[bytes]) -> None:
    got = decode(iter_events, chunks)
    if isinstance(got, list):
        assert all(isinstance(e, str) and isinstance(d, str) for e, d in got)
    else:
        with pytest.raises(UnicodeDecodeError):
            b"".join(chunks).decode("utf-8")  # the error only comes from bytes that are not UTF-8


@EXAMPLES
@given(chunked())
def test_iter_events_gives_what_sseclient_gives_for_any_utf8(chunks: list[bytes]) -> None:
    body = b"".join(chunks)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return
    assert decode(iter_events, chunks) == decode(iter_events_sseclient, [body])


JSON_KEYS = [
    *("choices", "delta", "content", "reasoning_content", "usage", "error", "finish_reason", "message"),
    *("completion_tokens", "prompt_tokens", "mock_sent_ns", "role", "text", "tokens", "adjustments"),
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(JSON_KEYS) | st.text(max_size=4),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
event_data = json_values.map(json.dumps) | st.text(max_size=30) | st.sampled_from(["[DONE]", "{", "null", "[]"])


@EXAMPLES
@given(st.lists(event_data, max_size=8), st.booleans())
def test_the_accumulator_never_raises_and_ends_with_done_or_a_reason(events: list[str], stamps: bool) -> None:
    acc = ChatStreamAccumulator(collect_server_stamps=stamps)
    for i, data in enumerate(events):
        if acc.feed(data, float(i)):
            st_ = acc.state
            assert (st_.done_at is not None) != (st_.error is not None)
            if st_.error is not None:
                assert isinstance(st_.error, StreamError) and st_.error.reason and len(st_.error.reason) < 40
            break
    times = acc.state.chunk_times
    assert times == sorted(times)
    assert acc.state.first_content == (times[0] if times else None)


bodies = (
    json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=60)
    | st.sampled_from([b"", b"[" * 3000, b'{"choices":[{"message":[]}]}', b'{"choices":[{"message":"x"}]}'])
)


@EXAMPLES
@given(bodies)
def test_answer_parsers_give_an_answer_or_a_stream_error(body: bytes) -> None:
    for parse in (parse_chat_json, parse_generate_json, parse_trade_json):
        try:
            ans = parse(body)
        except StreamError as exc:
            assert exc.reason and len(exc.reason) < 40
        else:
            assert isinstance(ans, JsonAnswer) and ans.content_chars >= 0


class _Sock:
    def __init__(self, raw: _Raw, chunks: list[bytes], cut: bool) -> None:
        self.raw, self.chunks, self.cut = raw, list(chunks), cut

    def recv(self, _n: int) -> bytes:
        if not self.chunks:
            return b""  # the server closed the connection
        data = self.chunks.pop(0)
        if not self.chunks and not self.cut:
            self.raw.complete_after_feed = True
        return data


class _Raw:
    """What ``sse.iter_arrivals`` reads of geventhttpclient's response: a body buffer fed from a socket."""

    block_size = 4096

    def __init__(self, chunks: list[bytes], cut: bool) -> None:
        self._body_buffer = bytearray()
        self.message_complete = not chunks and not cut
        self.complete_after_feed = False
        self._sock: _Sock | None = _Sock(self, chunks, cut)

    def feed(self, data: bytes) -> None:
        self._body_buffer += data
        self.message_complete = self.complete_after_feed

    def release(self) -> None:
        self._sock = None


def read_stream(chunks: list[bytes], cut: bool) -> tuple[int, str | None] | str:
    rec = CallRecord(scenario="s", name="n", t_start=0.0)
    try:
        return _read_stream(_Raw([c for c in chunks if c], cut), rec, False, {})  # b"": closed
    except StreamCut:
        return "StreamCut"


@EXAMPLES
@given(chunked(), st.booleans())
def test_the_stream_read_path_ends_in_success_a_reason_or_a_cut(chunks: list[bytes], cut: bool) -> None:
    got = read_stream(chunks, cut)
    if got == "StreamCut":
        assert cut
        return
    assert isinstance(got, tuple)
    n, reason = got
    assert 0 <= n <= sum(len(c) for c in chunks) + len(chunks)
    assert reason is None or (isinstance(reason, str) and 0 < len(reason) < 40)


def test_an_endless_event_fails_once_it_passes_the_limit() -> None:
    """A server that sends one event forever (no blank line) is cut at MAX_EVENT_BYTES, not read to the end."""

    def endless() -> Iterator[bytes]:
        yield b"data: "
        while True:
            yield b"x" * 65536

    gen = endless()
    chunks = [next(gen) for _ in range(MAX_EVENT_BYTES // 65536 + 3)]
    got = read_stream(chunks, cut=True)
    assert isinstance(got, tuple)
    n, reason = got
    assert reason == "oversized SSE event (over 1 MiB)"
    assert MAX_EVENT_BYTES < n <= MAX_EVENT_BYTES + 65536 + 6


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"data: \xff\xfe\n\n", "invalid UTF-8 in SSE stream"),
        (b'data: {"choices":true}\n\n', "unexpected SSE event"),
        (b'data: {"choices":[{"delta":[1]}]}\n\n', "unexpected SSE event"),
        (b"data: " + b"[" * 3000 + b"\n\n", "broken JSON in SSE event"),
        (b'data: {"error":{"type":"overloaded"}}\n\n', "SSE error event"),
        (b"event: error\ndata: boom\n\n", "SSE error event"),
        (b": ping\n\n", "no tokens"),
        (b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n', None),
    ],
    ids=[
        *("not-utf8", "choices-not-a-list", "delta-not-an-object", "nested-too-deep", "error-object"),
        *("error-event", "keep-alive-only", "ok"),
    ],
)
def test_stream_reasons(body: bytes, reason: str | None) -> None:
    assert read_stream([body], cut=False) == (len(body), reason)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 3000, "invalid JSON body"),
        (b'{"choices":[{"message":"x"}]}', "unexpected JSON body"),
        (b'{"choices":{}}', "no choices in body"),
        (b"\xff", "invalid JSON body"),
    ],
)
def test_chat_body_reasons(body: bytes, reason: str) -> None:
    with pytest.raises(StreamError) as err:
        parse_chat_json(body)
    assert err.value.reason == reason
