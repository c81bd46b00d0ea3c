"""Decoding of an Anthropic Messages API answer (``/v1/messages``).

A stream: ``message_start`` (its ``message.usage.input_tokens`` are the prompt tokens), for each content
block ``content_block_start`` / ``content_block_delta`` ... / ``content_block_stop``, ``message_delta`` (the
``stop_reason`` and ``usage.output_tokens``), ``message_stop``; ``ping`` events may come anywhere. Token
events: a ``text_delta`` is output, a ``thinking_delta`` reasoning, and each non-empty ``input_json_delta``
(a ``tool_use`` block's arguments in pieces) is output. The usage has no
reasoning count, so reasoning tokens are the thinking events counted. An ``error`` event fails the stream, and
a body that ends before ``message_stop`` fails as ``stream ended before message_stop``. Pure: no Locust.
"""

from __future__ import annotations

from typing import Any

from llm_users.client.decoding import (
    JsonAnswer,
    StreamError,
    TypedStreamDecoder,
    int_or_none,
    load_body,
    objects_in,
    read_usage,
    usage_of,
)

TERMINAL = "message_stop"
ANTHROPIC_VERSION = "2023-06-01"


class AnthropicAccumulator(TypedStreamDecoder):
    """An Anthropic Messages stream (events typed by their ``type`` member); the module docstring lists them."""

    __slots__ = ()
    terminal = TERMINAL

    def typed(self, typ: Any, obj: dict[str, Any], t: float) -> bool:
        st = self.state
        if typ == "content_block_delta":
            delta = obj.get("delta")
            if not isinstance(delta, dict):
                st.error = StreamError("unexpected SSE event", "delta is not an object")
                return True
            kind = delta.get("type")
            if kind == "text_delta":
                self._piece(delta.get("text"), obj, t, False)
            elif kind == "thinking_delta":
                self._piece(delta.get("thinking"), obj, t, True)
            elif kind == "input_json_delta":
                self._piece(delta.get("partial_json"), obj, t, False)
            return False
        if typ == "message_start":
            msg = obj.get("message")
            usage = msg.get("usage") if isinstance(msg, dict) else None
            if isinstance(usage, dict):
                it = int_or_none(usage.get("input_tokens"))
                if it is not None:
                    st.prompt_tokens = it
            return False
        if typ == "message_delta":
            delta = obj.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
                st.finish_reason = delta["stop_reason"]
            read_usage(st, obj.get("usage"), "output_tokens", "input_tokens")
            return False
        if typ == TERMINAL:
            st.done_at = t
            return True
        return False


def parse_anthropic_json(body: bytes) -> JsonAnswer:
    """Parse a non-streamed Messages API body; raise StreamError with a reason when it is not one."""
    obj = load_body(body)
    if obj.get("type") == "error":
        raise StreamError("error object in body", "error")
    chars = 0
    for block in objects_in(obj, "content", "no content in body"):
        for key in ("text", "thinking"):
            if isinstance(block.get(key), str):
                chars += len(block[key])
        if block.get("type") == "tool_use":
            chars += 1
    usage = usage_of(obj)
    stop = obj.get("stop_reason")
    return JsonAnswer(
        content_chars=chars,
        prompt_tokens=int_or_none(usage.get("input_tokens")),
        completion_tokens=int_or_none(usage.get("output_tokens")),
        finish_reason=stop if isinstance(stop, str) else None,
    )
