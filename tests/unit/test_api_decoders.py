"""The decoders of each API, case by case: which events are tokens (reasoning or output), where the usage and
the end come from, and the reason a bad answer fails with. Streams are fed event data with a time per event."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from llm_metrics.engine.calls import CallRecord, meets_slo, metric_values, reasoning_token_source
from llm_metrics.engine.thresholds import default_registry
from llm_metrics.slo_config import load_slo_file
from llm_users.client.api_anthropic import AnthropicAccumulator, parse_anthropic_json
from llm_users.client.api_completions import CompletionsAccumulator, parse_completions_json
from llm_users.client.api_embeddings import parse_embeddings_json
from llm_users.client.api_responses import ResponsesAccumulator, parse_responses_json
from llm_users.client.apis import API_NAMES, DEFAULT_ANTHROPIC_MAX_TOKENS, get_api, proxied_call
from llm_users.client.decoding import StreamError, StreamState
from llm_users.client.openai_stream import ChatStreamAccumulator, parse_chat_json
from llm_users.common.prompts import PromptError, load_prompt_sets


def feed(acc: Any, events: list[Any]) -> StreamState:
    """Feed events at t = 1.0, 1.1, ...; dicts are JSON-encoded."""
    for i, e in enumerate(events):
        if acc.feed(e if isinstance(e, str) else json.dumps(e), 1.0 + i / 10):
            break
    return acc.state


def chat(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}], **extra}


# --- chat completions: reasoning under either field name, tool calls ---------------------------------


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_chat_reasoning_under_either_name_is_counted_apart_from_output(field: str) -> None:
    st = feed(
        ChatStreamAccumulator(),
        [
            chat({"role": "assistant", "content": ""}),
            chat({field: "think"}),
            chat({field: "more"}),
            chat({"content": "answer"}),
            chat({"content": "!"}),
            {"choices": [], "usage": {"completion_tokens": 4, "completion_tokens_details": {"reasoning_tokens": 2}}},
            "[DONE]",
        ],
    )
    assert st.first_content == pytest.approx(1.1)  # TTFT: the first token of any kind
    assert st.first_reasoning == pytest.approx(1.1)
    assert st.first_output == pytest.approx(1.3)  # TTFO: the first non-reasoning token
    assert st.reasoning_events == 2 and len(st.chunk_times) == 4
    assert (st.completion_tokens, st.reasoning_tokens) == (4, 2)


def test_chat_tool_call_pieces_are_output_events_and_tool_calls_finish_is_success() -> None:
    first = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    st = feed(
        ChatStreamAccumulator(),
        [
            chat({"role": "assistant", "content": None}),
            chat({"tool_calls": [first]}),
            chat({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
            chat({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
            "[DONE]",
        ],
    )
    assert st.first_content == st.first_output == pytest.approx(1.1)
    assert len(st.chunk_times) == 3 and st.reasoning_events == 0
    assert st.finish_reason == "tool_calls" and st.error is None


def test_chat_template_fast_path_still_sees_reasoning_after_content() -> None:
    """A learnt content template must not swallow later reasoning chunks (they are parsed in full)."""
    acc = ChatStreamAccumulator()
    st = feed(acc, [chat({"content": f"w{i}"}) for i in range(6)] + [chat({"reasoning": "late"})])
    assert acc.template_hits > 0
    assert st.reasoning_events == 1 and len(st.chunk_times) == 7


def test_chat_json_reads_reasoning_tokens_and_tool_calls() -> None:
    body = {
        "choices": [{"message": {"content": None, "tool_calls": [{"id": "c"}]}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 9, "completion_tokens_details": {"reasoning_tokens": 4}},
    }
    ans = parse_chat_json(json.dumps(body).encode())
    assert ans.content_chars > 0 and ans.reasoning_tokens == 4 and ans.finish_reason == "tool_calls"
    ans = parse_chat_json(b'{"choices":[{"message":{"content":"","reasoning":"hmm"}}]}')
    assert ans.content_chars == 3


# --- completions -------------------------------------------------------------------------------------


def test_completions_stream() -> None:
    st = feed(
        CompletionsAccumulator(),
        [
            {"choices": [{"index": 0, "text": "", "finish_reason": None}]},
            {"choices": [{"index": 0, "text": "Hello", "finish_reason": None}]},
            {"choices": [{"index": 0, "text": " you", "finish_reason": "length"}]},
            {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}},
            "[DONE]",
        ],
    )
    assert st.first_content == st.first_output == pytest.approx(1.1)
    assert len(st.chunk_times) == 2 and (st.prompt_tokens, st.completion_tokens) == (5, 2)
    assert st.finish_reason == "length" and st.done_at == pytest.approx(1.4) and st.error is None


def test_completions_json() -> None:
    ans = parse_completions_json(b'{"choices":[{"text":"abc","finish_reason":"stop"}],"usage":{"completion_tokens":2}}')
    assert (ans.content_chars, ans.completion_tokens, ans.finish_reason) == (3, 2, "stop")
    with pytest.raises(StreamError, match="no choices in body"):
        parse_completions_json(b'{"choices":[]}')


# --- responses ---------------------------------------------------------------------------------------


def rev(typ: str, **kw: Any) -> dict[str, Any]:
    return {"type": typ, **kw}


RESPONSES_USAGE = {"input_tokens": 6, "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2}}


def test_responses_stream_reasoning_output_and_usage() -> None:
    st = feed(
        ResponsesAccumulator(),
        [
            rev("response.created", response={"status": "in_progress"}),
            rev("response.output_item.added", item={"type": "reasoning"}),
            rev("response.reasoning_summary_text.delta", delta="why"),
            rev("response.reasoning_text.delta", delta="so"),
            rev("response.output_text.delta", delta="Hi"),
            rev("response.output_text.delta", delta=""),  # empty: no token
            rev("response.function_call_arguments.delta", delta='{"x":1}'),
            rev("response.output_text.done", text="Hi"),
            rev("response.completed", response={"status": "completed", "usage": RESPONSES_USAGE}),
        ],
    )
    assert st.first_content == st.first_reasoning == pytest.approx(1.2)
    assert st.first_output == pytest.approx(1.4)
    assert st.reasoning_events == 2 and len(st.chunk_times) == 4
    assert (st.prompt_tokens, st.completion_tokens, st.reasoning_tokens) == (6, 5, 2)
    assert st.done_at == pytest.approx(1.8) and st.error is None


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (rev("response.failed", response={"error": {"code": "server_error"}}), "response.failed"),
        (rev("error", code="rate_limit", message="slow down"), "SSE error event"),
        ('{"type": "response.output_text.delta", "delta": "x"', "broken JSON in SSE event"),
        (["not", "an", "object"], "unexpected SSE event"),
        ({"no": "type"}, "unexpected SSE event"),
    ],
    ids=["failed", "error-event", "broken-json", "not-an-object", "no-type"],
)
def test_responses_failures_are_named(event: Any, reason: str) -> None:
    st = feed(ResponsesAccumulator(), [rev("response.output_text.delta", delta="a"), event])
    assert st.error is not None and st.error.reason == reason


def test_responses_incomplete_ends_the_stream_with_its_reason() -> None:
    resp = {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}, "usage": RESPONSES_USAGE}
    st = feed(
        ResponsesAccumulator(),
        [rev("response.output_text.delta", delta="a"), rev("response.incomplete", response=resp)],
    )
    assert st.done_at is not None and st.error is None and st.finish_reason == "max_output_tokens"


def test_responses_json() -> None:
    body = {
        "status": "completed",
        "output": [
            {"type": "reasoning", "content": [{"type": "reasoning_text", "text": "hm"}]},
            {"type": "message", "content": [{"type": "output_text", "text": "hello"}]},
        ],
        "usage": RESPONSES_USAGE,
    }
    ans = parse_responses_json(json.dumps(body).encode())
    assert (ans.content_chars, ans.prompt_tokens, ans.completion_tokens, ans.reasoning_tokens) == (7, 6, 5, 2)
    with pytest.raises(StreamError, match=r"response\.failed"):
        parse_responses_json(b'{"status":"failed","error":{"code":"x"},"output":[]}')
    with pytest.raises(StreamError, match="no output in body"):
        parse_responses_json(b'{"status":"completed"}')


# --- anthropic ---------------------------------------------------------------------------------------


def aev(typ: str, **kw: Any) -> dict[str, Any]:
    return {"type": typ, **kw}


def test_anthropic_stream_thinking_text_tool_use_and_usage() -> None:
    st = feed(
        AnthropicAccumulator(),
        [
            aev("message_start", message={"usage": {"input_tokens": 12, "output_tokens": 1}}),
            aev("content_block_start", index=0, content_block={"type": "thinking", "thinking": ""}),
            aev("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "hmm"}),
            aev("content_block_delta", index=0, delta={"type": "signature_delta", "signature": "x"}),
            aev("content_block_stop", index=0),
            aev("ping"),
            aev("content_block_delta", index=1, delta={"type": "text_delta", "text": "Hi"}),
            aev("content_block_start", index=2, content_block={"type": "tool_use", "name": "f", "input": {}}),
            aev("content_block_delta", index=2, delta={"type": "input_json_delta", "partial_json": ""}),
            aev("content_block_delta", index=2, delta={"type": "input_json_delta", "partial_json": '{"a":1}'}),
            aev("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 9}),
            aev("message_stop"),
        ],
    )
    assert st.first_content == st.first_reasoning == pytest.approx(1.2)
    assert st.first_output == pytest.approx(1.6)
    assert st.reasoning_events == 1 and len(st.chunk_times) == 3  # thinking, text, one non-empty json piece
    assert (st.prompt_tokens, st.completion_tokens, st.reasoning_tokens) == (12, 9, None)
    assert st.finish_reason == "tool_use" and st.done_at == pytest.approx(2.1) and st.error is None


def test_anthropic_error_event_fails_the_stream() -> None:
    st = feed(AnthropicAccumulator(), [aev("error", error={"type": "overloaded_error", "message": "busy"})])
    assert st.error is not None and (st.error.reason, st.error.detail) == ("SSE error event", "overloaded_error")


def test_anthropic_json() -> None:
    body = {
        "type": "message",
        "content": [{"type": "thinking", "thinking": "ab"}, {"type": "text", "text": "cde"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 4, "output_tokens": 7},
    }
    ans = parse_anthropic_json(json.dumps(body).encode())
    assert (ans.content_chars, ans.prompt_tokens, ans.completion_tokens, ans.finish_reason) == (5, 4, 7, "end_turn")
    with pytest.raises(StreamError, match="error object in body"):
        parse_anthropic_json(b'{"type":"error","error":{"type":"overloaded_error"}}')


# --- embeddings --------------------------------------------------------------------------------------


def test_embeddings_json() -> None:
    body = {"data": [{"embedding": [0.1, 0.2]}, {"embedding": "AAAA"}], "usage": {"prompt_tokens": 8}}
    ans = parse_embeddings_json(json.dumps(body).encode())
    assert (ans.embeddings, ans.prompt_tokens, ans.completion_tokens) == (2, 8, None)
    for bad in (b'{"data":[]}', b'{"data":[{"embedding":[]}]}', b'{"object":"list"}'):
        with pytest.raises(StreamError, match="no embeddings in body"):
            parse_embeddings_json(bad)


# --- the metrics of reasoning ------------------------------------------------------------------------


def test_reasoning_metrics_from_a_record() -> None:
    rec = CallRecord(scenario="s", name="n", t_start=0.0, t_headers=0.01, t_end=0.5)
    rec.t_first_content = rec.t_first_reasoning = 0.05
    rec.t_first_output = 0.15
    rec.chunk_times = [0.05 + i * 0.005 for i in range(30)]
    rec.content_events, rec.reasoning_events = 30, 20
    values = dict(metric_values(rec))
    assert values["llm_ttft_ms"] == pytest.approx(50)
    assert values["llm_ttfo_ms"] == pytest.approx(150)
    assert values["llm_reasoning_ms"] == pytest.approx(100)
    assert values["llm_reasoning_tokens"] == 20 and reasoning_token_source(rec) == "events"
    rec.usage_reasoning_tokens = 21
    assert dict(metric_values(rec))["llm_reasoning_tokens"] == 21 and reasoning_token_source(rec) == "usage"


def test_a_call_without_reasoning_records_no_reasoning_metrics() -> None:
    rec = CallRecord(scenario="s", name="n", t_start=0.0, t_headers=0.01, t_end=0.5)
    rec.t_first_content = rec.t_first_output = 0.05
    rec.chunk_times, rec.content_events = [0.05, 0.06], 2
    values = dict(metric_values(rec))
    assert values["llm_ttfo_ms"] == values["llm_ttft_ms"]
    assert "llm_reasoning_tokens" not in values and "llm_reasoning_ms" not in values


def test_embeddings_per_second() -> None:
    rec = CallRecord(scenario="s", name="n", t_start=0.0, t_end=0.25, stream=False, embeddings=4)
    assert dict(metric_values(rec))["llm_embeddings_per_sec"] == pytest.approx(16)


# --- the API knob ------------------------------------------------------------------------------------

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
TOOLS = [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}]


def test_every_api_builds_its_own_request() -> None:
    assert API_NAMES == ("chat", "completions", "responses", "anthropic", "embeddings")
    body = get_api("completions").payload("m", MESSAGES, stream=True, max_tokens=5)
    assert body == {"model": "m", "prompt": "Be brief.\n\nHi", "stream": True, "max_tokens": 5,
                    "stream_options": {"include_usage": True}}  # fmt: skip
    body = get_api("responses").payload("m", MESSAGES, stream=True, max_tokens=5, tools=TOOLS)
    assert body["input"] == MESSAGES and body["max_output_tokens"] == 5
    assert body["tools"] == [{"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}}]
    body = get_api("anthropic").payload("m", MESSAGES, stream=False, tools=TOOLS)
    assert body["system"] == "Be brief." and body["messages"] == MESSAGES[1:]
    assert body["max_tokens"] == DEFAULT_ANTHROPIC_MAX_TOKENS
    assert body["tools"] == [{"name": "f", "description": "d", "input_schema": {"type": "object"}}]
    assert get_api("embeddings").payload("m", MESSAGES, stream=True) == {"model": "m", "input": "Be brief.\n\nHi"}
    assert get_api("chat").payload("m", MESSAGES, stream=False, tools=TOOLS)["tools"] == TOOLS


def test_anthropic_sends_the_key_as_x_api_key() -> None:
    headers = get_api("anthropic").headers({"Authorization": "Bearer sk-1", "X-LoadTest-Token": "t"})
    assert headers == {"x-api-key": "sk-1", "X-LoadTest-Token": "t", "anthropic-version": "2023-06-01"}
    assert get_api("chat").headers({"Authorization": "Bearer sk-1"}) == {"Authorization": "Bearer sk-1"}


def test_an_unknown_api_is_refused_naming_the_flag() -> None:
    with pytest.raises(ValueError, match=r"--api/API: expected one of chat, completions, .* got 'grpc'"):
        get_api("grpc")


def test_the_gateway_payload_in_another_api() -> None:
    conf = {"model": "m", "max_tokens": 16, "messages": MESSAGES, "user": "load-test"}
    assert proxied_call(get_api("chat"), "/v1/chat/completions", conf, True, True) == (
        "/v1/chat/completions",
        {**conf, "stream": True, "stream_options": {"include_usage": True}},
    )
    path, body = proxied_call(get_api("anthropic"), "/v1/chat/completions", conf, True, True)
    assert path == "/v1/messages" and body["max_tokens"] == 16 and body["system"] == "Be brief."
    assert body["user"] == "load-test" and body["stream"] is True
    path, body = proxied_call(get_api("completions"), "/llm/v1/completions", conf, True, False)
    assert path == "/llm/v1/completions" and "stream_options" not in body and body["prompt"] == "Be brief.\n\nHi"
    path, body = proxied_call(get_api("embeddings"), "/v1/chat/completions", conf, True, True)
    assert path == "/v1/embeddings" and "stream" not in body


def test_thresholds_and_goodput_can_use_the_reasoning_metrics(tmp_path: Any) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(
        'thresholds:\n  "llm_ttfo_ms{scenario:chat_stream}": ["p(95)<200"]\n  llm_reasoning_tokens: ["max<=20"]\n'
        '  llm_reasoning_ms: ["p(50)<150"]\n  llm_embeddings_per_sec: ["min>1"]\ngoodput: {ttfo_ms: 120}\n'
    )
    ths, slo = load_slo_file(path, default_registry())
    assert [t.metric for t in ths] == [
        "llm_ttfo_ms",
        "llm_reasoning_tokens",
        "llm_reasoning_ms",
        "llm_embeddings_per_sec",
    ]
    assert slo.ttfo_ms == 120 and not slo.empty
    rec = CallRecord(scenario="s", name="n", t_start=0.0, t_headers=0.01, t_end=0.5)
    rec.t_first_content, rec.t_first_output = 0.05, 0.15
    assert not meets_slo(rec, slo)  # TTFO 150 ms > 120 ms, though TTFT is 50 ms
    rec.t_first_output = 0.1
    assert meets_slo(rec, slo)


def test_prompt_variants_carry_tools_and_bad_tools_name_the_entry(tmp_path: Any) -> None:
    good = tmp_path / "p.yaml"
    good.write_text(
        "prompts:\n  t:\n    prompt: hi\n    tools:\n      - name: f\n"
        "      - {type: function, function: {name: g, description: d, parameters: {type: object}}}\n"
    )
    tools = load_prompt_sets(good)["t"].tools
    assert tools == [
        {
            "type": "function",
            "function": {"name": "f", "description": "", "parameters": {"type": "object", "properties": {}}},
        },
        {"type": "function", "function": {"name": "g", "description": "d", "parameters": {"type": "object"}}},
    ]
    for entry, message in [
        ("tools: []", "prompts.t.tools: expected a non-empty list"),
        ("tools: [{description: x}]", "prompts.t.tools[0].name: expected the tool's name"),
        ("tools: [{name: f, parameters: 3}]", "prompts.t.tools[0].parameters: expected a JSON schema mapping"),
    ]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(f"prompts:\n  t:\n    prompt: hi\n    {entry}\n")
        with pytest.raises(PromptError, match=re.escape(message)):
            load_prompt_sets(bad)
