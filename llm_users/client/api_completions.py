"""Decoding of an OpenAI text-completions answer (``/v1/completions``, what vLLM's and SGLang's benchmarks use).

A stream is chat completions' shape with ``choices[0].text`` for ``delta.content``: each event with non-empty
``text`` is an output token event; a usage chunk (``choices: []``) gives the counts; ``[DONE]`` ends it. The
completions API has no reasoning field: a model that reasons writes it in the text. Pure: no Locust.
"""

from __future__ import annotations

from typing import Any

from llm_users.client.decoding import (
    JsonAnswer,
    StreamDecoder,
    StreamError,
    int_or_none,
    load_body,
    read_usage,
    reasoning_tokens_of,
    usage_of,
)


class CompletionsAccumulator(StreamDecoder):
    """A text-completions stream: chat completions with ``choices[0].text``, ended by ``[DONE]``."""

    __slots__ = ()
    terminal: str | None = None  # like chat completions: a body that ends without [DONE] is accepted
    done_data = "[DONE]"

    def take(self, obj: dict[str, Any], t: float) -> bool:
        st = self.state
        choices = obj.get("choices")
        if choices:
            if not isinstance(choices, list) or not isinstance(choices[0], dict):
                st.error = StreamError("unexpected SSE event", "choices is not a list of objects")
                return True
            ch = choices[0]
            self._piece(ch.get("text"), obj, t, False)
            fr = ch.get("finish_reason")
            if isinstance(fr, str) and fr:
                st.finish_reason = fr
        read_usage(st, obj.get("usage"), "completion_tokens", "prompt_tokens", "completion_tokens_details")
        return False


def parse_completions_json(body: bytes) -> JsonAnswer:
    """Parse a non-streamed text-completions body; raise StreamError with a reason when it is not one."""
    obj = load_body(body)
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise StreamError("no choices in body")
    text = choices[0].get("text")
    usage = usage_of(obj)
    fr = choices[0].get("finish_reason")
    return JsonAnswer(
        content_chars=len(text) if isinstance(text, str) else 0,
        prompt_tokens=int_or_none(usage.get("prompt_tokens")),
        completion_tokens=int_or_none(usage.get("completion_tokens")),
        finish_reason=fr if isinstance(fr, str) else None,
        reasoning_tokens=reasoning_tokens_of(usage, "completion_tokens_details"),
    )
