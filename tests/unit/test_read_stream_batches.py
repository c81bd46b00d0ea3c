"""``answer.read_stream`` takes a network read's events together (``sse.iter_event_lists`` and the accumulator's
``feed_texts``, the chat template read straight from an event's text): property-based, its record is the one of
the reference read: the events fed one by one to an accumulator that parses every chunk in full.

Streams: the mock's own answers of every API, and chat streams mixing content chunks (plain, empty, with quotes,
escapes, newlines, non-ASCII), chunks of another shape, comments, ``error`` events, multi-line events and
``[DONE]``, split into reads anywhere.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llm_metrics.engine.calls import CallRecord
from llm_users.client.answer import read_stream
from llm_users.client.apis import APIS
from llm_users.client.openai_stream import ChatStreamAccumulator
from tests.unit.test_properties_apis import STREAMED, body, split
from tests.unit.test_properties_sse import _Raw

EXAMPLES = settings(max_examples=200, deadline=None)
_HEAD = '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":'


def _chunk(text: str) -> str:
    return _HEAD + json.dumps({"content": text}) + ',"finish_reason":null}]}'


_texts = st.one_of(
    st.sampled_from(["w ", "", "a b", 'say "hi"', "back\\slash", "new\nline", "tab\t", "é ü", "x" * 40]),
    st.text(max_size=6),
)
_content = _texts.map(lambda t: "data: " + _chunk(t))
_events = st.one_of(
    _content,
    _content,
    _content,  # content chunks most often
    st.just('data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}'),
    st.just('data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}'),
    st.just(": keep-alive"),
    st.just("data: " + _HEAD + '{"content":"a"},\ndata: "finish_reason":null}]}'),  # two data lines
    st.just("data: " + _HEAD + '{"content":"b"},"finish_reason":"stop"}]}'),
    # the template's suffix after another start; its start and suffix overlapping (bad JSON)
    st.just("data: " + _HEAD.replace('"c1"', '"c2"') + '{"content": "w "},"finish_reason":null}]}'),
    st.just("data: " + _HEAD + '{"content": "},"finish_reason":null}]}'),
    st.just("data: " + _HEAD + '{"content": "cut short'),  # the template's start, a plain text, no suffix
)
_ends = st.sampled_from(["", "event: error\ndata: overloaded", "data: {broken", "data: [DONE]"])


def _record(chunks: list[bytes], decoder: Any) -> tuple[Any, ...]:
    made: list[Any] = []

    def with_texts(stamps: bool) -> Any:  # keep the streamed text, as read_stream does for a local tokenizer
        made.append(decoder(stamps))
        made[-1].state.texts = []
        return made[-1]

    rec = CallRecord(scenario="s", name="n", t_start=0.0)
    n, reason = read_stream(_Raw([c for c in chunks if c], cut=False), rec, False, {}, with_texts)
    times = rec.chunk_times or []
    assert times == sorted(times)
    usage = rec.usage_completion_tokens, rec.usage_prompt_tokens
    firsts = rec.t_first_content is not None, rec.t_first_output is not None, rec.t_end is not None
    return (n, reason, "".join(made[0].state.texts), len(times), rec.reasoning_events, *usage, *firsts)


def _ref_record(chunks: list[bytes], api: str = "chat") -> tuple[Any, ...]:
    """The record of the reference read: each event fed by itself (``read_stream`` without ``feed_texts``), every
    chunk parsed in full (no template); the SSE cut itself is checked against sseclient-py elsewhere."""

    class _Ref:
        def __init__(self, _stamps: bool) -> None:
            self.acc = APIS[api].decoder(False)
            if isinstance(self.acc, ChatStreamAccumulator):
                self.acc.disable_template()
            self.state = self.acc.state
            self.terminal = getattr(self.acc, "terminal", None)

        def feed(self, data: str, t: float) -> bool:
            return bool(self.acc.feed(data, t))

    return _record(chunks, _Ref)


@EXAMPLES
@given(st.lists(_events, min_size=1, max_size=30), _ends, st.lists(st.integers(0, 3000), max_size=8))
def test_a_chat_stream_read_by_batches_gives_the_reference_record(events: list[str], end: str, cuts: list[int]) -> None:
    events = [*events, end] if end else events
    data = "".join(ev + "\n\n" for ev in events).encode()
    chunks = split(data, cuts)
    assert _record(chunks, ChatStreamAccumulator) == _ref_record(chunks)
    # one read per event, as paced tokens arrive
    per_event = [(ev + "\n\n").encode() for ev in events]
    assert _record(per_event, ChatStreamAccumulator) == _ref_record(per_event)


@EXAMPLES
@given(
    st.tuples(st.sampled_from(STREAMED), st.integers(0, 4), st.integers(1, 12), st.booleans()),
    st.lists(st.integers(0, 4000), max_size=8),
)
def test_every_apis_answer_read_by_batches_gives_the_reference_record(answer: tuple[Any, ...], cuts: list[int]) -> None:
    api, reasoning, output, tool = answer
    chunks = split(body(api, reasoning, output, tool, False), cuts)
    assert _record(chunks, APIS[api].decoder) == _ref_record(chunks, api)


def test_the_template_is_read_from_the_event_text() -> None:
    """The batch path is the one taken: a plain chat stream's content chunks are template hits."""
    made: list[ChatStreamAccumulator] = []

    def decoder(stamps: bool) -> ChatStreamAccumulator:
        made.append(ChatStreamAccumulator(stamps))
        return made[-1]

    events = ["data: " + _chunk(f"w{i} ") for i in range(40)] + ["data: [DONE]"]
    data = "".join(ev + "\n\n" for ev in events).encode()
    chunks = [data[i : i + 700] for i in range(0, len(data), 700)]
    got = _record(chunks, decoder)
    assert got[1] is None and got[3] == 40 and got[2] == "".join(f"w{i} " for i in range(40))
    assert made[0].template_hits >= 30
