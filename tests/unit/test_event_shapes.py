"""Event shapes proved once per process (``event_shapes``): a stream read through them gives the StreamState of the
reference read (every event parsed in full, ``disable_template``), whatever the ids, ``created`` values, texts,
key orders, extra keys, models and mock stamps; a plain later answer is read with no ``json.loads`` at all; and
the proof refuses holes that are not exactly the value of their key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_users.client import decoding, event_shapes, openai_stream
from llm_users.client.decoding import StreamState
from llm_users.client.event_shapes import SHAPES, _prove, learn, match
from llm_users.client.openai_stream import ChatStreamAccumulator


@pytest.fixture(autouse=True)
def _fresh_shapes() -> Iterator[None]:
    """Each test learns from nothing and leaves nothing learnt to the other tests of this process."""
    saved = SHAPES[:]
    SHAPES.clear()
    yield
    SHAPES[:] = saved


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def answer(
    ident: str = "chatcmpl-mock1a",
    created: str = "1763900000",
    texts: tuple[str, ...] = ("The", " load", " test"),
    model: str = "mock-llm",
    order: tuple[int, ...] = (0, 1, 2, 3),
    extra: str = "",
    finish: str = "length",
    usage: tuple[int, int] = (12, 3),
    raw: bool = False,
    thinking: tuple[str, ...] = (),
    thinking_key: str = "reasoning_content",
) -> list[str]:
    """The events of one streamed answer as the mock writes them; ``created`` is raw JSON text (any), ``order``
    the order of the head's members, ``extra`` raw members put after them; ``raw``: the id and the texts are put
    between quotes as they are (which may not be JSON); ``thinking``: reasoning texts before the content, under
    ``thinking_key`` (with ``"content":null`` or ``""`` after it when the key ends in ``+null`` or ``+empty``)."""
    quote = (lambda v: '"' + v + '"') if raw else _dump
    members = [
        f'"id":{quote(ident)}',
        '"object":"chat.completion.chunk"',
        f'"created":{created}',
        f'"model":{_dump(model)}',
    ]
    head = "{" + ",".join(members[i] for i in order) + extra
    events = [head + ',"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}']
    key, _, also = thinking_key.partition("+")
    null = {"": "", "null": ',"content":null', "empty": ',"content":""'}[also]
    events += [
        head + ',"choices":[{"index":0,"delta":{"' + key + '":' + quote(t) + null + '},"finish_reason":null}]}'
        for t in thinking
    ]
    events += [
        head + ',"choices":[{"index":0,"delta":{"content":' + quote(t) + '},"finish_reason":null}]}' for t in texts
    ]
    events.append(head + ',"choices":[{"index":0,"delta":{},"finish_reason":' + _dump(finish) + "}]}")
    pt, ct = usage
    events.append(
        head + f',"choices":[],"usage":{{"prompt_tokens":{pt},"completion_tokens":{ct},"total_tokens":{pt + ct}}}}}'
    )
    return [*events, "[DONE]"]  # fmt: skip


def stamped(events: list[str], stamps: list[int | None]) -> list[str]:
    """The mock's stamp (``,"mock_sent_ns":N`` as last member) on the events with a stamp."""
    out = []
    for ev, s in zip(events, stamps + [None] * len(events), strict=False):
        out.append(ev if s is None or ev == "[DONE]" else ev[:-1] + f',"mock_sent_ns":{s}}}')
    return out


def read(events: list[str], shapes: bool, stamps: bool = False) -> ChatStreamAccumulator:
    acc = ChatStreamAccumulator(collect_server_stamps=stamps)
    acc.state.texts = []
    if not shapes:
        acc.disable_template()
    for i, ev in enumerate(events):
        if acc.feed(ev, 1.0 + i):
            break
    return acc


def same_as_reference(events: list[str], stamps: bool = False) -> ChatStreamAccumulator:
    acc = read(events, True, stamps)
    ref = read(events, False, stamps)
    assert facts(acc.state) == facts(ref.state)
    return acc


def facts(state: StreamState) -> tuple[StreamState, tuple[str, str] | None]:
    """The state with its error as (reason, detail) (an exception equals only itself)."""
    err = state.error
    return replace(state, error=None), None if err is None else (err.reason, err.detail)


def test_a_later_answer_is_read_without_a_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    same_as_reference(answer())  # learns the shapes of the role, content, finish and usage events
    loads: list[str] = []

    def counting(s: str | bytes) -> Any:
        loads.append(str(s))
        return json.loads(s)

    monkeypatch.setattr(decoding, "_loads", counting)
    monkeypatch.setattr(event_shapes, "_loads", counting)
    monkeypatch.setattr(openai_stream, "_loads", counting)
    acc = same_as_reference(answer("chatcmpl-mock2b", "1763900042", ("A", " B", " C", " D")))
    assert acc.shape_hits == 4 and acc.template_hits == 3
    assert acc.state.chunk_times == [2.0, 3.0, 4.0, 5.0] and acc.state.texts == ["A", " B", " C", " D"]
    assert acc.state.finish_reason == "length" and acc.state.completion_tokens == 3
    assert len(loads) == 7  # the reference read's 7 events; none by the shape path
    assert len(SHAPES) == 1 and len(SHAPES[0].bodies) == 3 and len(SHAPES[0].texts) == 1


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning", "reasoning+null"])
def test_reasoning_chunks_are_read_through_their_shape(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    same_as_reference(answer(thinking=("Hm", " so"), thinking_key=key))
    monkeypatch.setattr(decoding, "_loads", lambda s: pytest.fail(f"parsed: {s}"))
    acc = read(answer("chatcmpl-r2", "1763900077", ("A", " B"), thinking=("x", " y", " z"), thinking_key=key), True)
    st_ = acc.state
    assert acc.shape_hits == 7 and acc.template_hits == 1 and st_.reasoning_events == 3
    assert (st_.first_content, st_.first_reasoning, st_.first_output) == (2.0, 2.0, 5.0)
    assert st_.chunk_times == [2.0, 3.0, 4.0, 5.0, 6.0] and st_.texts == ["x", " y", " z", "A", " B"]


def test_what_does_not_match_is_parsed_in_full() -> None:
    same_as_reference(answer())
    cases = [
        answer(ident='chat"q'),  # a quote in the id: escaped in the text
        answer(ident="chat\\b"),  # a backslash
        answer(ident="chat\u2028é✓"),  # unicode: still a plain hole, read through the shape
        answer(created='"1763900000"'),  # a number in a string
        answer(created="1.5"),
        answer(created="-3"),
        answer(created="01"),  # not JSON
        answer(order=(1, 0, 2, 3)),  # reordered keys
        answer(extra=',"system_fingerprint":"fp_1"'),  # an extra key
        answer(model="other-model"),
        answer(texts=('say "hi"', "back\\slash", "new\nline", "\x00", "")),
        answer(finish="stop", usage=(7, 70)),  # another finish and usage: parsed, then learnt
    ]
    hits = [same_as_reference(events).shape_hits for events in cases]
    assert hits[2] == 4 and hits[0] == 0 and hits[3] == 0 and hits[7] == 0 and hits[9] == 0
    assert same_as_reference(answer(finish="stop", usage=(7, 70))).shape_hits == 4  # learnt above


def often(default: Any, other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``default`` about half the time (a learnt shape then matches often), else ``other``."""
    return st.one_of(st.just(default), other)


TEXT = st.one_of(
    st.sampled_from(["", " ", "a", '"', "\\", "a\\", "\\n", "\n", "é", "✓", "1", "null", "zQ7~k"]), st.text(max_size=8)
)
CREATED = st.one_of(
    st.integers(0, 2**64).map(str),
    st.sampled_from(["-1", "1.5", "1e3", "01", '"17"', "null", "true", "8642097531", "0"]),
)
ANSWER = st.builds(
    answer,
    ident=st.one_of(st.sampled_from(["chatcmpl-1", "", "zQ7~k", "1763900000", "x,1", "a\\", 'a"']),
                    st.text(max_size=10)),
    created=CREATED,
    texts=st.lists(TEXT, max_size=5).map(tuple),
    model=often("mock-llm", st.sampled_from(["m", "mock-llm-2", 'q"m'])),
    order=often((0, 1, 2, 3), st.permutations([0, 1, 2, 3]).map(tuple)),
    extra=often("", st.sampled_from([',"system_fingerprint":"fp_9"', ',"system_fingerprint":null', ',"x":1',
                                     ',"id":"dup"'])),
    finish=often("length", st.sampled_from(["stop", ""])),
    usage=often((12, 3), st.tuples(st.integers(0, 40), st.integers(0, 40))),
    raw=st.booleans(),
    thinking=often((), st.lists(TEXT, max_size=4).map(tuple)),
    thinking_key=st.sampled_from(["reasoning_content", "reasoning", "reasoning_content+null", "reasoning+empty"]),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(ANSWER, min_size=1, max_size=4), st.lists(st.one_of(st.none(), st.integers(0, 10**13))), st.booleans())
def test_shapes_give_the_full_parse(answers: list[list[str]], stamps: list[int | None], collect: bool) -> None:
    SHAPES.clear()
    same_as_reference(answer())
    for events in answers:
        same_as_reference(stamped(events, stamps), collect)
        same_as_reference(events, collect)


@settings(max_examples=200, deadline=None)
@given(st.lists(ANSWER, min_size=2, max_size=4))
def test_a_learnt_plain_shape_is_used(answers: list[list[str]]) -> None:
    """Answers that differ from a learnt one only in plain ids, int ``created`` and plain texts are shape hits."""
    SHAPES.clear()
    first = answer(ident="chatcmpl-x0", created="1700000000", texts=("a", "b"))
    same_as_reference(first)
    for i, events in enumerate(answers):
        plain = answer(ident=f"chatcmpl-{i}y", created=str(1700000001 + i), texts=("c", "d"))
        assert same_as_reference(plain).shape_hits == 4
        same_as_reference(events)


def test_the_mock_stamps_are_kept() -> None:
    events = answer()
    same_as_reference(stamped(events, [10**9 + i for i in range(len(events))]), True)
    later = stamped(answer("chatcmpl-mock3", "1763900100"), [2 * 10**9 + i for i in range(len(events))])
    acc = same_as_reference(later, True)
    assert acc.shape_hits == 4
    assert acc.state.mock_sent_ns == [2 * 10**9 + 1, 2 * 10**9 + 2, 2 * 10**9 + 3]
    lookalike = [*later[:2], later[2][:-1] + ',"mock_sent_ns":0123}', *later[3:]]  # broken JSON: parsed in full
    assert read(lookalike, True, True).state.error is not None
    same_as_reference(lookalike, True)


CORE = '{"id":"abc","created":5,"x":"5","choices":[{"index":0,"delta":{"content":"hi"}}]}'


def test_the_proof_refuses_a_hole_that_is_not_its_keys_value() -> None:
    obj = json.loads(CORE)
    at = CORE.index
    assert _prove(CORE, obj, [(at("abc"), at("abc") + 3, "id", "abc")])
    assert _prove(CORE, obj, [(at(":5,") + 1, at(":5,") + 2, "created", 5)])
    assert not _prove(CORE, obj, [(at('"5"') + 1, at('"5"') + 2, "created", 5)])  # the digit of a string
    assert not _prove(CORE, obj, [(at('"id"') + 1, at('"id"') + 3, "id", "abc")])  # a key
    assert not _prove(CORE, obj, [(at('"x"'), at('"x"') + 3, "id", "abc")])  # quotes and all: outside a string
    floaty = '{"id":"abc","created":5.0}'
    assert not _prove(floaty, json.loads(floaty), [(floaty.index("5"), floaty.index("5") + 1, "created", 5)])


def test_learn_refuses_escapes_stamps_and_ambiguity() -> None:
    assert learn('{"id":"a\\u0062","created":1,"choices":[]}', {"id": "ab", "created": 1, "choices": []}, None) is None
    stamp = '{"id":"a","created":1,"mock_sent_ns":3}'
    assert learn(stamp, json.loads(stamp), None) is None
    twice = '{"id":"a","created":1,"o":{"id":"a"}}'
    assert learn(twice, json.loads(twice), None) is None
    assert SHAPES == []
    good = '{"id":"a","created":1,"choices":[]}'
    assert learn(good, json.loads(good), None) is None and len(SHAPES) == 1
    assert match('{"id":"other","created":17,"choices":[]}') == (json.loads(good), 0, 0, False)
    assert match('{"id":"other","created":017,"choices":[]}') == (None, 0, 0, False)
    assert match('{"id":"o\\"","created":17,"choices":[]}') == (None, 0, 0, False)


def test_the_store_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_shapes, "MAX_BODIES", 3)
    monkeypatch.setattr(event_shapes, "MAX_TEXTS", 1)
    monkeypatch.setattr(event_shapes, "MAX_SHAPES", 2)
    for i in range(6):  # a usage body of its own per answer: the role, finish and first usage fill the 3 places
        same_as_reference(answer(f"chatcmpl-{i}", str(1700000000 + i), usage=(10 + i, 3)))
        same_as_reference(answer(f"chatcmpl-{i}", str(1700000000 + i), model=f"model-{i}"))  # another content body
        same_as_reference(
            answer(f"chatcmpl-{i}", str(1700000000 + i), order=(i % 4, *[j for j in range(4) if j != i % 4]))
        )
    assert len(SHAPES) == 2 and len(SHAPES[0].bodies) == 3 and all(len(s.texts) <= 1 for s in SHAPES)
    assert same_as_reference(answer("chatcmpl-9", "1700000009", usage=(10, 3))).shape_hits == 4  # learnt first
    assert same_as_reference(answer("chatcmpl-9", "1700000009", usage=(15, 3))).shape_hits == 3  # no room: parsed
