"""The mock's other APIs over real sockets: each streams reasoning then output at the chat latency model's
deadlines, ends with its terminal event carrying the usage, validates its request, and takes the same faults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from mock_llm.testing import MockProcess, stream_request

BASE = {"ttft_ms": 40, "itl_ms": 8, "reasoning_tokens": 3}
MSGS = [{"role": "user", "content": "Hello, world!"}]


@pytest.fixture(scope="module")
def mock() -> Iterator[MockProcess]:
    with MockProcess(BASE) as m:
        yield m


def token_events(path: str, events: list[tuple[float, Any]]) -> list[tuple[float, str]]:
    """(arrival time, kind) of each token event: kind is "r" (reasoning) or "o" (output)."""
    out = []
    for t, e in events:
        if path == "/v1/completions" and e != "[DONE]" and e.get("choices") and e["choices"][0]["text"]:
            out.append((t, "o"))
        elif path == "/v1/responses" and e["type"].endswith(".delta"):
            out.append((t, "r" if "reasoning" in e["type"] else "o"))
        elif path == "/v1/messages" and e["type"] == "content_block_delta":
            out.append((t, "r" if e["delta"]["type"] == "thinking_delta" else "o"))
    return out


CASES = [
    ("/v1/completions", {"prompt": "Hello, world!", "max_tokens": 5, "stream_options": {"include_usage": True}}),
    ("/v1/responses", {"input": MSGS, "max_output_tokens": 5}),
    ("/v1/messages", {"messages": MSGS, "max_tokens": 5}),
]


@pytest.mark.timing  # TTFT within 6 ms and gaps within 1.5 ms as this test's thread reads them
@pytest.mark.parametrize(("path", "body"), CASES, ids=["completions", "responses", "anthropic"])
def test_tokens_come_at_the_latency_models_deadlines(mock: MockProcess, path: str, body: dict[str, Any]) -> None:
    res = stream_request(mock.base_url, path, {"model": "m", "stream": True, **body})
    assert res.status == 200 and res.complete and res.headers["content-type"] == "text/event-stream"
    events = res.events()
    toks = token_events(path, events)
    kinds = "".join(k for _, k in toks)
    # completions has no reasoning field: its 3 reasoning tokens come as text
    assert kinds == ("o" * 8 if path == "/v1/completions" else "rrr" + "o" * 5)
    first, last = toks[0][0], toks[-1][0]
    assert abs((first - res.t_headers) * 1000 - 40) <= 6  # TTFT, counted by the mock from the headers
    assert abs((last - first) * 1000 / 7 - 8) <= 1.5  # the token gap
    final = events[-1][1]
    if path == "/v1/completions":
        assert final == "[DONE]" and events[-2][1]["usage"]["completion_tokens"] == 8
        assert "completion_tokens_details" not in events[-2][1]["usage"]
    elif path == "/v1/responses":
        assert final["type"] == "response.completed"
        usage = final["response"]["usage"]
        assert (usage["output_tokens"], usage["output_tokens_details"]["reasoning_tokens"]) == (8, 3)
        assert usage["input_tokens"] == 4
    else:
        assert final["type"] == "message_stop"
        delta = events[-2][1]
        assert delta["type"] == "message_delta" and delta["usage"]["output_tokens"] == 8
        assert delta["delta"]["stop_reason"] == "max_tokens"
        assert events[0][1]["message"]["usage"]["input_tokens"] == 4


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v1/completions", {"prompt": 5}, 400, "invalid_prompt"),
        ("/v1/completions", {"prompt": "x", "max_tokens": 0}, 400, "invalid_max_tokens"),
        ("/v1/responses", {"input": []}, 400, "invalid_input"),
        ("/v1/messages", {"messages": MSGS}, 400, "invalid_max_tokens"),
        ("/v1/messages", {"messages": "hi", "max_tokens": 5}, 400, "invalid_messages"),
        ("/v1/embeddings", {"input": {"a": 1}}, 400, "invalid_input"),
    ],
)
def test_bad_requests_are_refused_with_a_code(
    mock: MockProcess, path: str, body: dict[str, Any], status: int, code: str
) -> None:
    st, _h, raw = mock.request("POST", path, body)
    assert st == status and code in raw.decode()


def test_non_streamed_answers_and_embeddings(mock: MockProcess) -> None:
    res = stream_request(mock.base_url, "/v1/messages", {"messages": MSGS, "max_tokens": 4})
    body = res.json()
    assert [b["type"] for b in body["content"]] == ["thinking", "text"] and body["usage"]["output_tokens"] == 7
    res = stream_request(mock.base_url, "/v1/responses", {"input": "hi", "max_output_tokens": 4})
    body = res.json()
    assert [o["type"] for o in body["output"]] == ["reasoning", "message"]
    assert body["usage"]["output_tokens_details"]["reasoning_tokens"] == 3
    res = stream_request(mock.base_url, "/v1/embeddings", {"input": ["a b c", "d"]})
    body = res.json()
    assert len(body["data"]) == 2 and len(body["data"][0]["embedding"]) == 16
    assert body["usage"]["prompt_tokens"] == 4
    assert abs((res.lines[-1][0] if res.lines else res.t_headers) * 1000 - 40) <= 15  # the prompt's TTFT


@pytest.mark.parametrize(("path", "body"), CASES, ids=["completions", "responses", "anthropic"])
def test_a_disconnect_fault_cuts_the_stream_before_its_terminal_event(
    mock: MockProcess, path: str, body: dict[str, Any]
) -> None:
    res = stream_request(mock.base_url, path, {"stream": True, **body}, headers={"X-Mock-Fault": "disconnect:2"})
    assert res.status == 200 and not res.complete
    assert b"[DONE]" not in res.body and b"response.completed" not in res.body and b"message_stop" not in res.body
    assert len(token_events(path, res.events())) == 2


def test_chat_reasoning_field_and_tool_call_answer(mock: MockProcess) -> None:
    mock.configure({"reasoning_field": "reasoning"})
    try:
        tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
        res = stream_request(
            mock.base_url,
            "/v1/chat/completions",
            {
                "messages": [{"role": "user", "content": "go #tool_call"}],
                "stream": True,
                "max_tokens": 3,
                "tools": tools,
            },
        )
        chunks = [e for _, e in res.events() if e != "[DONE]"]
        deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
        assert [d for d in deltas if "reasoning" in d] and not [d for d in deltas if "reasoning_content" in d]
        calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
        assert len(calls) == 3 and calls[0]["function"]["name"] == "lookup" and calls[0]["id"].startswith("call_")
        assert json.loads("".join(c["function"]["arguments"] for c in calls))["text"]
        assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    finally:
        mock.configure({"reasoning_field": "reasoning_content"})
