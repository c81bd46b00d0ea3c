"""The streamed text is collected for a local tokenizer (``StreamState.texts``) by every API's decoder, and only
when asked for; the token events and their times are the same either way."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_users.client.api_anthropic import AnthropicAccumulator
from llm_users.client.api_completions import CompletionsAccumulator
from llm_users.client.api_responses import ResponsesAccumulator
from llm_users.client.openai_stream import ChatStreamAccumulator


def chat(content: str) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": content}}]}


CASES: list[tuple[Any, list[Any], list[str]]] = [
    # chat: the first content chunks are parsed in full, the later ones go through the template fast path
    (ChatStreamAccumulator, [chat(w) for w in ("The", " load", " test", " ran", " fine")] + ["[DONE]"],
     ["The", " load", " test", " ran", " fine"]),
    (CompletionsAccumulator, [{"choices": [{"index": 0, "text": w}]} for w in ("a", "", "b")] + ["[DONE]"],
     ["a", "b"]),
    (ResponsesAccumulator, [
        {"type": "response.reasoning_text.delta", "delta": "why"},
        {"type": "response.output_text.delta", "delta": "Hi"},
        {"type": "response.output_text.delta", "delta": " there"},
        {"type": "response.completed", "response": {"status": "completed"}},
    ], ["why", "Hi", " there"]),
    (AnthropicAccumulator, [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "message_stop"},
    ], ["hmm", "Hi"]),
]  # fmt: skip


@pytest.mark.parametrize(("make", "events", "texts"), CASES, ids=["chat", "completions", "responses", "anthropic"])
def test_texts_collected_only_when_asked(make: Any, events: list[Any], texts: list[str]) -> None:
    states = []
    for collect in (False, True):
        acc = make()
        if collect:
            acc.state.texts = []
        for i, e in enumerate(events):
            if acc.feed(e if isinstance(e, str) else json.dumps(e), 1.0 + i / 10):
                break
        states.append(acc.state)
    plain, collected = states
    assert plain.texts is None
    assert collected.texts == texts
    assert collected.chunk_times == plain.chunk_times and len(plain.chunk_times) == len(texts)
    if make is ChatStreamAccumulator:
        assert acc.template_hits >= 3  # the fast path collected them too
