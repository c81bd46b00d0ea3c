"""The workload suite's pure parts: traces, conversations, the knobs, and the mock's prefix cache."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from llm_users.common.options import OptionError
from llm_users.workload.conversation import Conversation, Conversations
from llm_users.workload.options import DEFAULT_TRACE, workload_settings
from llm_users.workload.trace import TraceError, assigned, duration, load_trace, parse_trace, schedule
from mock_llm.prefix_cache import PrefixCache

# -- traces ---------------------------------------------------------------------------------------------------


def lines(*records: dict[str, Any]) -> list[str]:
    return [json.dumps(r) for r in records]


def test_a_trace_is_sorted_by_offset_and_keeps_conversations() -> None:
    recs = parse_trace(
        [
            *lines(
                {"offset_s": 2.0, "input_tokens": 100, "output_tokens": 10},
                {"offset_s": 0.5, "input_tokens": 300, "output_tokens": 20, "conversation_id": 7},
            ),
            "",
            *lines({"offset_s": 1, "input_tokens": 50, "output_tokens": 5, "conversation_id": "a"}),
        ]
    )
    assert [r.offset_s for r in recs] == [0.5, 1.0, 2.0]
    assert [r.conversation_id for r in recs] == ["7", "a", None]
    assert [r.index for r in recs] == [1, 2, 0]
    assert duration(recs, 0.5) == 1.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "t.jsonl: line 1: not valid JSON"),
        ("[1, 2]", "t.jsonl: line 1: expected a JSON object"),
        ('{"offset_s": 0, "input_tokens": 5}', "t.jsonl: line 1: missing key 'output_tokens'"),
        ('{"offset_s": -1, "input_tokens": 5, "output_tokens": 5}', "offset_s: expected a number of seconds >= 0"),
        ('{"offset_s": 0, "input_tokens": 0, "output_tokens": 5}', "line 1: input_tokens: expected an integer >= 1"),
        ('{"offset_s": 0, "input_tokens": 5, "output_tokens": 5.5}', "line 1: output_tokens: expected an integer >= 1"),
        ('{"offset_s": 0, "input_tokens": 5, "output_tokens": 5, "t": 1}', "line 1: t: unknown key"),
        ('{"offset_s": 0, "input_tokens": 5, "output_tokens": 5, "conversation_id": ""}', "conversation_id: expected"),
    ],
)
def test_bad_trace_lines_name_the_file_line_and_key(line: str, message: str) -> None:
    with pytest.raises(TraceError) as err:
        parse_trace([line], "t.jsonl")
    assert message in str(err.value)


def test_an_empty_or_missing_trace_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="the trace has no requests"):
        parse_trace(["", " "], "t.jsonl")
    with pytest.raises(TraceError, match="trace file not found"):
        load_trace(tmp_path / "none.jsonl")


def test_the_shipped_example_trace_loads() -> None:
    recs = load_trace(DEFAULT_TRACE)
    assert len(recs) >= 30 and {r.conversation_id for r in recs} >= {"chat-a", "chat-b", "chat-c"}
    by_conv = [r.input_tokens for r in recs if r.conversation_id == "chat-a"]
    assert by_conv == sorted(by_conv) and len(by_conv) == 4  # a conversation's prompts grow


def test_workers_split_a_trace_without_splitting_a_conversation() -> None:
    recs = load_trace(DEFAULT_TRACE)
    shares = [[r for r in recs if assigned(r, rank, 3)] for rank in range(3)]
    assert sorted(r.index for share in shares for r in share) == sorted(r.index for r in recs)  # each once
    for conv in {r.conversation_id for r in recs if r.conversation_id}:
        owners = {rank for rank, share in enumerate(shares) if any(r.conversation_id == conv for r in share)}
        assert len(owners) == 1
    times = [t for t, _ in schedule(recs, 0.1, 1, 3)]
    assert times == sorted(times) and times == [r.offset_s * 0.1 for r in shares[1]]


# -- conversations ---------------------------------------------------------------------------------------------


def test_each_turn_resends_the_history_then_the_new_question() -> None:
    conv = Conversation("c")
    assert conv.messages("q1") == [{"role": "user", "content": "q1"}]
    conv.answered("q1", "a1", prompt_tokens=10, completion_tokens=4)
    conv.failed()  # a failed turn: counted, nothing added
    conv.answered("q3", "a3")
    sent = conv.messages("q4")
    assert [m["content"] for m in sent] == ["q1", "a1", "q3", "a3", "q4"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user", "assistant", "user"]
    assert conv.turns == 3 and conv.history_tokens is None  # the last answer came without usage


def test_overlapping_turns_make_the_servers_count_of_the_history_unknown() -> None:
    conv = Conversation("c")
    conv.answered("q1", "a1", 10, 2, sent_with=0)
    assert conv.history_tokens == 12
    second, third = conv.messages("q2"), conv.messages("q3")  # q3 is sent before q2's answer came
    conv.answered("q2", "a2", 15, 2, sent_with=len(second) - 1)
    assert conv.history_tokens == 17
    conv.answered("q3", "a3", 15, 2, sent_with=len(third) - 1)  # its count misses q2 and a2
    assert conv.history_tokens is None and len(conv.history) == 6


def test_conversations_by_id_are_bounded() -> None:
    convs = Conversations(max_size=2)
    a = convs.get("a")
    convs.get("b")
    assert convs.get("a") is a  # used again: the most recent
    convs.get("c")  # forgets b, the least recently used
    assert len(convs) == 2 and convs.forgotten == 1 and convs.get("a") is a


# -- the knobs ---------------------------------------------------------------------------------------------------


def options(**over: Any) -> argparse.Namespace:
    base = {
        "base": "",
        "host": "http://127.0.0.1:9",
        "model": "m",
        "workload": "closed",
        "input_tokens": "256",
        "output_tokens": "uniform:10:20",
        "turns": 3,
        "followup_tokens": "64",
        "think_time": "exp:1",
        "stream": "true",
        "ignore_eos": "true",
        "rate": 2.0,
        "arrival": "poisson",
        "trace": "",
        "trace_time_scale": 0.5,
        "calibrate": "false",
        "seed": "42",
        "api_key": "",
        "loadtest_token": "",
        "idle_timeout": 60.0,
        "call_timeout": 600.0,
        "server_stamps": "false",
    }
    return argparse.Namespace(**(base | over))


def test_the_knobs_become_settings() -> None:
    s = workload_settings(options())
    assert (s.mode, s.turns, s.rate, s.arrival, s.seed, s.stream, s.calibrate) == (
        "closed", 3, 2.0, "poisson", 42, True, False
    )  # fmt: skip
    assert s.base == "http://127.0.0.1:9" and s.trace is None and s.ignore_eos
    assert str(s.output_tokens) == "uniform:10:20"
    trace = workload_settings(options(workload="trace"))
    assert trace.trace is not None and trace.trace_path == str(DEFAULT_TRACE)
    assert workload_settings(options(seed="")).seed != workload_settings(options(seed="")).seed


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"workload": "batch"}, "--workload/WORKLOAD: expected one of closed, open, trace"),
        ({"turns": 0}, "--turns/TURNS: expected an integer >= 1"),
        ({"input_tokens": "many"}, "--input-tokens/INPUT_TOKENS: expected a length spec"),
        ({"think_time": "-1"}, "--think-time/THINK_TIME: expected a number >= 0"),
        ({"rate": -1}, "--rate/RATE: expected a number >= 0"),
        ({"trace_time_scale": 0}, "--trace-time-scale/TRACE_TIME_SCALE: expected a number > 0"),
        ({"seed": "x"}, "--seed/SEED: expected an integer"),
        ({"base": "ftp://x"}, "--base/BASE: expected an http:// or https:// URL"),
    ],
)
def test_bad_knobs_name_the_flag(over: dict[str, Any], message: str) -> None:
    with pytest.raises(OptionError) as err:
        workload_settings(options(**over))
    assert str(err.value).startswith(message), str(err.value)


def test_a_bad_trace_names_its_file(tmp_path: Path) -> None:
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"offset_s": 0}\n')
    with pytest.raises(TraceError, match=r"t.jsonl: line 1: missing key 'input_tokens'"):
        workload_settings(options(workload="trace", trace=str(bad)))


# -- the mock's prefix cache -------------------------------------------------------------------------------------


def msg(role: str, text: str) -> dict[str, str]:
    return {"role": role, "content": text}


def test_a_conversation_finds_its_earlier_turns_cached() -> None:
    cache = PrefixCache()
    q1 = msg("user", "one two three four")  # 4 tokens
    first = cache.lookup([q1])
    assert (first.prompt_tokens, first.cached_tokens) == (4, 0)
    cache.remember_answer(first, "five six ")  # the answer as the client received it: 2 tokens
    second = cache.lookup([q1, msg("assistant", "five six "), msg("user", "seven, eight")])
    assert (second.prompt_tokens, second.cached_tokens) == (9, 6)  # the question and the answer were cached
    stand_in = cache.lookup([q1, msg("assistant", "other words"), msg("user", "nine")])
    assert stand_in.cached_tokens == 4  # another answer text: only the first question matches
    assert cache.snapshot() == {"lookups": 3, "hits": 2, "cached_tokens": 10, "entries": len(cache)}


def test_another_conversation_shares_only_an_identical_start() -> None:
    cache = PrefixCache()
    system = msg("system", "You are terse.")
    cache.lookup([system, msg("user", "alpha beta")])
    other = cache.lookup([system, msg("user", "gamma delta")])
    assert other.cached_tokens == 4  # the shared system prompt (3 words and a period)
    assert cache.lookup([msg("user", "alpha beta")]).cached_tokens == 0  # a prefix, not a substring


def test_the_cache_is_bounded() -> None:
    cache = PrefixCache(max_entries=3)
    for i in range(10):
        cache.lookup([msg("user", f"prompt {i}")])
    assert len(cache) == 3
    assert cache.lookup([msg("user", "prompt 0")]).cached_tokens == 0  # forgotten
    assert cache.lookup([msg("user", "prompt 9")]).cached_tokens == 2
    cache.clear()
    assert len(cache) == 0 and cache.snapshot()["lookups"] == 0
