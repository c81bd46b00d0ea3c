"""The stream decoders of every API, property-based, against streams the mock's own encoders write.

For each API (chat, completions, responses, anthropic) and any number of reasoning and output tokens, with or
without a tool call and stamps:

* the bytes split into network reads anywhere decode to the same result as the whole body, through both the
  fast SSE path (``iter_events``) and sseclient-py alone (the reference), and that result is the generated
  one: token events, reasoning events, usage, the end;
* an event replaced by broken JSON fails the stream as ``broken JSON in SSE event``;
* a body cut anywhere before its terminal event (``response.completed``, ``message_stop``) fails, as
  ``stream ended before <terminal>`` or (cut inside an event) ``broken JSON in SSE event``; never a success;
* any event data at all never makes an accumulator raise.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_metrics.engine.calls import CallRecord
from llm_users.client.answer import read_stream as _read_stream
from llm_users.client.apis import APIS
from llm_users.client.sse import iter_events, iter_events_sseclient
from mock_llm.chunks import ChatChunks
from mock_llm.formats import AnthropicEvents, CompletionChunks, ResponsesEvents
from tests.unit.test_properties_sse import _Raw

STREAMED = ("chat", "completions", "responses", "anthropic")
TERMINAL = {"chat": None, "completions": None, "responses": "response.completed", "anthropic": "message_stop"}
EXAMPLES = settings(max_examples=150, deadline=None)


def encoder(api: str, stamps: bool) -> Any:
    if api == "chat":
        return ChatChunks("c1", 1, "m", stamps, "reasoning")
    if api == "completions":
        return CompletionChunks("c1", 1, "m", stamps)
    if api == "responses":
        return ResponsesEvents("r1", 1, "m", stamps)
    return AnthropicEvents("a1", 1, "m", stamps, prompt_tokens=7)


def body(api: str, reasoning: int, output: int, tool: bool, stamps: bool) -> bytes:
    """A whole streamed answer as the mock writes it (usage asked for)."""
    enc = encoder(api, stamps)
    parts = [enc.start()]
    parts += [enc.reasoning(b"r%d " % i) for i in range(reasoning)]
    for i in range(output):
        if tool:
            parts.append(enc.tool_start("call_1", "f", b"w ") if i == 0 else enc.tool_args(b"w%d " % i))
        else:
            parts.append(enc.content(b"w%d " % i))
    parts.append(enc.end("tool_calls" if tool else "stop", True, 7, reasoning + output, reasoning, None))
    return b"".join(parts)


def decode(api: str, chunks: list[bytes], reference: bool = False) -> tuple[Any, ...]:
    acc = APIS[api].decoder(False)
    events = (iter_events_sseclient if reference else iter_events)(iter(chunks))
    for i, (_ev, data) in enumerate(events):
        if acc.feed(data, float(i)):
            break
    s = acc.state
    err = None if s.error is None else s.error.reason
    return (s.first_content, s.first_output, s.first_reasoning, len(s.chunk_times), s.reasoning_events,
            s.completion_tokens, s.prompt_tokens, s.reasoning_tokens, s.done_at is not None, err)  # fmt: skip


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    out, last = [], 0
    for c in sorted({min(c, len(data)) for c in cuts}):
        out.append(data[last:c])
        last = c
    out.append(data[last:])
    return out


answers = st.tuples(st.sampled_from(STREAMED), st.integers(0, 5), st.integers(1, 6), st.booleans(), st.booleans())


@EXAMPLES
@given(answers, st.lists(st.integers(0, 4000), max_size=8))
def test_any_split_decodes_to_the_generated_answer(answer: tuple[Any, ...], cuts: list[int]) -> None:
    api, reasoning, output, tool, stamps = answer
    data = body(api, reasoning, output, tool, stamps)
    whole = decode(api, [data])
    assert decode(api, split(data, cuts)) == whole
    assert decode(api, split(data, cuts), reference=True) == whole
    _first, _out, first_reasoning, events, r_events, completion, _prompt, r_tokens, done, err = whole
    assert err is None and done
    assert completion == reasoning + output
    if api == "completions":  # no reasoning field in this API: the mock sends its reasoning as text
        assert (events, r_events, first_reasoning) == (reasoning + output, 0, None)
    else:
        assert (events, r_events) == (reasoning + output, reasoning)
        assert (first_reasoning is not None) == (reasoning > 0)
    expected_usage = {"chat": reasoning or None, "completions": None, "responses": reasoning, "anthropic": None}
    assert r_tokens == expected_usage[api]


@EXAMPLES
@given(answers, st.data())
def test_broken_json_in_any_event_is_a_named_failure(answer: tuple[Any, ...], data: st.DataObject) -> None:
    api, reasoning, output, tool, stamps = answer
    events = body(api, reasoning, output, tool, stamps).split(b"\n\n")[:-1]
    candidates = [i for i, e in enumerate(events) if b"data: {" in e]
    i = data.draw(st.sampled_from(candidates))
    events[i] = events[i][: events[i].index(b"data: {") + 6] + b"{broken"
    got = decode(api, [b"\n\n".join(events) + b"\n\n"])
    assert got[-1] == "broken JSON in SSE event"


def read(api: str, data: bytes) -> str | None:
    rec = CallRecord(scenario="s", name="n", t_start=0.0)
    _n, reason = _read_stream(_Raw([data] if data else [], cut=False), rec, False, {}, APIS[api].decoder)
    return reason


@EXAMPLES
@given(st.sampled_from(["responses", "anthropic"]), st.integers(0, 3), st.integers(1, 4), st.booleans(), st.data())
def test_a_body_cut_before_the_terminal_event_fails(
    api: str, reasoning: int, output: int, tool: bool, data: st.DataObject
) -> None:
    whole = body(api, reasoning, output, tool, False)
    terminal = TERMINAL[api]
    assert terminal is not None
    end = whole.rindex(terminal.encode())  # inside the terminal event: its data is not complete
    cut = data.draw(st.integers(0, end))
    reason = read(api, whole[:cut])
    assert reason in (f"stream ended before {terminal}", "broken JSON in SSE event", "no tokens")
    assert read(api, whole) is None


@pytest.mark.parametrize("api", ["responses", "anthropic"])
def test_a_stream_cut_between_events_names_the_missing_terminal_event(api: str) -> None:
    whole = body(api, 1, 3, False, False)
    events = whole.split(b"\n\n")
    cut = b"\n\n".join(events[:-2]) + b"\n\n"  # everything but the terminal event
    assert read(api, cut) == f"stream ended before {TERMINAL[api]}"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(STREAMED), st.lists(st.text(max_size=40) | st.sampled_from(['{"type":"error"}', "[DONE]",
       '{"type":"message_stop"}', '{"type":"content_block_delta","delta":5}', '{"choices":[5]}',
       '{"type":"response.completed","response":[]}', '{"type":"response.failed","response":{"error":1}}']),
       max_size=10))  # fmt: skip
def test_any_event_data_never_raises(api: str, events: list[str]) -> None:
    acc = APIS[api].decoder(True)
    for i, e in enumerate(events):
        if acc.feed(e, float(i)):
            break
    err = acc.state.error
    assert err is None or (0 < len(err.reason) < 40)


NAMES = st.sampled_from(["", "message_stop", "response.output_text.delta", "error", "a:b", " x", "é"])
DATA = st.sampled_from(["", "{}", '{"type":"ping"}', " lead", "x: y", "é✓"]) | st.text(max_size=8).filter(
    lambda t: "\n" not in t and "\r" not in t
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(NAMES, DATA, st.booleans()), max_size=8), st.lists(st.integers(0, 400), max_size=6))
def test_named_events_decode_as_sseclient_does(events: list[tuple[str, str, bool]], cuts: list[int]) -> None:
    """The fast path of ``event: X`` + ``data: Y`` events gives sseclient-py's events for any split."""
    data = b"".join(
        (f"event: {name}\ndata: {value}\n\n" if named else f"data: {value}\n\n").encode()
        for name, value, named in events
    )
    assert list(iter_events(split(data, cuts))) == list(iter_events_sseclient([data]))
