"""SSE decoding: the events do not depend on how the bytes were split, nor on the line-ending style."""

from __future__ import annotations

import json

import pytest

from llm_users.client.openai_stream import ChatStreamAccumulator, StreamError, parse_chat_json
from llm_users.client.sse import iter_events


def chunk(delta: dict, **extra: object) -> str:
    return json.dumps({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}], **extra})


STREAM_EVENTS = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hello"}),
    chunk({"content": " wörld"}),  # a multi-byte character may be split by the network
    chunk({"content": "!"}),
    json.dumps({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}),
    "[DONE]",
]


def encode(events: list[str], eol: str, comments: bool = True) -> bytes:
    out = []
    if comments:
        out.append(f": keep-alive{eol}{eol}")
    for e in events:
        out.append(f"data: {e}{eol}{eol}")
    return "".join(out).encode()


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_events_are_the_same_for_every_split_position(eol: str) -> None:
    body = encode(STREAM_EVENTS, eol)
    whole = [d for _, d in iter_events([body])]
    assert whole == STREAM_EVENTS
    for i in range(len(body) + 1):
        assert [d for _, d in iter_events([body[:i], body[i:]])] == STREAM_EVENTS, f"split at byte {i}"


@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_events_survive_one_byte_at_a_time(eol: str) -> None:
    body = encode(STREAM_EVENTS, eol)
    assert [d for _, d in iter_events(body[i : i + 1] for i in range(len(body)))] == STREAM_EVENTS


def test_multiline_data_and_named_events() -> None:
    body = b"event: error\ndata: first\ndata: second\n\nid: 3\ndata: x\n\n"
    assert list(iter_events([body])) == [("error", "first\nsecond"), ("message", "x")]


def feed_all(events: list[str], t0: float = 1.0, step: float = 0.01) -> ChatStreamAccumulator:
    acc = ChatStreamAccumulator()
    for i, e in enumerate(events):
        if acc.feed(e, t0 + i * step):
            break
    return acc


def test_role_chunk_does_not_stamp_ttft_and_usage_is_read() -> None:
    st = feed_all(STREAM_EVENTS).state
    assert st.first_content == pytest.approx(1.01)  # the role chunk (t=1.00) is not content
    assert st.chunk_times == pytest.approx([1.01, 1.02, 1.03])
    assert (st.prompt_tokens, st.completion_tokens) == (7, 3)
    assert st.done_at == pytest.approx(1.05)
    assert st.error is None


def test_reasoning_content_counts_as_content() -> None:
    st = feed_all([chunk({"reasoning_content": "hmm"}), chunk({"content": "ok"}), "[DONE]"]).state
    assert st.first_content == pytest.approx(1.0)
    assert len(st.chunk_times) == 2


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("{not json", "broken JSON in SSE event"),
        ('{"error": {"type": "overloaded", "message": "busy"}}', "SSE error event"),
        ("[1, 2]", "unexpected SSE event"),
    ],
)
def test_bad_events_stop_the_stream_with_a_reason(data: str, reason: str) -> None:
    acc = ChatStreamAccumulator()
    assert acc.feed(chunk({"content": "a"}), 1.0) is False
    assert acc.feed(data, 1.1) is True
    assert acc.state.error is not None and acc.state.error.reason == reason


def test_server_stamps_give_reading_delay() -> None:
    acc = ChatStreamAccumulator(collect_server_stamps=True)
    acc.feed(chunk({"content": "a"}, mock_sent_ns=1_000_000_000), 1.0015)
    assert acc.state.read_delays_ms == pytest.approx([1.5])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,'
            b'"completion_tokens":1}}',
            (2, 3, 1, "stop"),
        ),
        (b'{"choices":[{"message":{"content":"hi there"}}]}', (8, None, None, None)),
    ],
)
def test_parse_chat_json(body: bytes, expected: tuple) -> None:
    a = parse_chat_json(body)
    assert (a.content_chars, a.prompt_tokens, a.completion_tokens, a.finish_reason) == expected


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>oops</html>", "invalid JSON body"),
        (b'{"error": {"type": "server_error"}}', "error object in body"),
        (b'{"choices": []}', "no choices in body"),
        (b"[]", "unexpected JSON body"),
    ],
)
def test_parse_chat_json_rejects(body: bytes, reason: str) -> None:
    with pytest.raises(StreamError) as err:
        parse_chat_json(body)
    assert err.value.reason == reason
