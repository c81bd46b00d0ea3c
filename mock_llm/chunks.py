"""OpenAI chat-completion wire format: SSE chunk templates for streams and the JSON body for non-streams.

The per-request part of every chunk (id, created, model) is rendered once; a token chunk is then three
byte strings joined, plus a ``mock_sent_ns`` stamp taken just before the write when timestamps are on.
Every stream encoder (this one and those of ``mock_llm.formats``) has the same methods, which the stream
loop of ``api_openai`` calls: ``start``, ``reasoning``, ``content``, ``tool_start``, ``raw_content``,
``end``, ``error``.
"""

from __future__ import annotations

import json
import time
from typing import Any

DONE = b"data: [DONE]\n\n"
MALFORMED = b"data: {not json\n\n"
_TOKEN_TAIL = b'"},"finish_reason":null}]'
_TS = b',"mock_sent_ns":'
_END = b"}\n\n"
_TAIL_TS = _TOKEN_TAIL + _TS


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def error_object(message: str, type_: str, code: str | int | None = None) -> dict[str, Any]:
    """The OpenAI error shape: ``{"error": {"message", "type", "code"}}``."""
    return {"error": {"message": message, "type": type_, "code": code if code is not None else type_}}


class ChatChunks:
    """The SSE events of one streamed chat completion."""

    __slots__ = ("_args", "_content", "_head", "_reasoning", "_sizes", "_tail", "timestamps")

    def __init__(
        self, completion_id: str, created: int, model: str, timestamps: bool, reasoning_field: str = "reasoning_content"
    ) -> None:
        ident = dumps({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model})
        self._head = b"data: " + ident[:-1]  # without the closing brace: choices and extras follow
        choice = self._head + b',"choices":[{"index":0,"delta":{'
        self._content = choice + b'"content":"'
        self._reasoning = choice + b'"' + reasoning_field.encode() + b'":"'
        self._args = choice + b'"tool_calls":[{"index":0,"function":{"arguments":"'
        self._tail = _TOKEN_TAIL + _END
        self.timestamps = timestamps
        # the bytes of a content and of a reasoning event around the token's text (and the stamp's digits)
        extra = len(_TOKEN_TAIL) + len(_END) + (len(_TS) if timestamps else 0)
        self._sizes = (len(self._content) + extra, len(self._reasoning) + extra)

    def start(self) -> bytes:
        return self.role()

    def tool_start(self, call_id: str, name: str, text: bytes) -> bytes:
        """The first piece of a tool call: its id, function name and the first piece of its arguments."""
        call = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        head = dumps([call])[: -len(b'"}}]')]  # up to the empty arguments string's opening quote
        return self._close(
            self._head
            + b',"choices":[{"index":0,"delta":{"tool_calls":'
            + head
            + text
            + b'"}}]},"finish_reason":null}]'
        )

    def tool_args(self, text: bytes) -> bytes:
        """One piece of a tool call's arguments; ``text`` must already be safe inside a JSON string."""
        return self._close(self._args + text + b'"}}]},"finish_reason":null}]')

    def end(
        self,
        finish: str,
        include_usage: bool,
        prompt_tokens: int,
        completion_tokens: int,
        reasoning_tokens: int,
        cached_tokens: int | None,
    ) -> bytes:
        """The finish chunk, the usage chunk when asked, ``[DONE]``."""
        tail = self.finish(finish)
        if include_usage:
            tail += self.usage(prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens)
        return tail + DONE

    def _close(self, body: bytes) -> bytes:
        if self.timestamps:
            return body + _TS + str(time.perf_counter_ns()).encode() + _END
        return body + _END

    def role(self) -> bytes:
        return self._close(
            self._head + b',"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]'
        )

    def content(self, text: bytes) -> bytes:
        """One content token; ``text`` must already be safe inside a JSON string."""
        if self.timestamps:
            return self._close(self._content + text + _TOKEN_TAIL)
        return self._content + text + self._tail

    def framed_content(self, text: bytes) -> bytes:
        """``protocol.frame(self.content(text))`` in one formatting (the stream's hot path)."""
        if self.timestamps:
            stamp = b"%d" % time.perf_counter_ns()
            size = self._sizes[0] + len(text) + len(stamp)
            return b"%x\r\n%b%b%b%b}\n\n\r\n" % (size, self._content, text, _TAIL_TS, stamp)
        return b"%x\r\n%b%b%b\r\n" % (self._sizes[0] + len(text), self._content, text, self._tail)

    def framed_reasoning(self, text: bytes) -> bytes:
        """``protocol.frame(self.reasoning(text))`` in one formatting."""
        if self.timestamps:
            stamp = b"%d" % time.perf_counter_ns()
            size = self._sizes[1] + len(text) + len(stamp)
            return b"%x\r\n%b%b%b%b}\n\n\r\n" % (size, self._reasoning, text, _TAIL_TS, stamp)
        return b"%x\r\n%b%b%b\r\n" % (self._sizes[1] + len(text), self._reasoning, text, self._tail)

    def reasoning(self, text: bytes) -> bytes:
        if self.timestamps:
            return self._close(self._reasoning + text + _TOKEN_TAIL)
        return self._reasoning + text + self._tail

    def raw_content(self, text: str) -> bytes:
        """A content chunk of arbitrary text (JSON-escaped here)."""
        return self.content(dumps(text)[1:-1])

    def finish(self, reason: str) -> bytes:
        return self._close(
            self._head + b',"choices":[{"index":0,"delta":{},"finish_reason":"' + reason.encode() + b'"}]'
        )

    def usage(
        self, prompt_tokens: int, completion_tokens: int, reasoning_tokens: int, cached_tokens: int | None = None
    ) -> bytes:
        return self._close(
            self._head
            + b',"choices":[],"usage":'
            + dumps(usage_object(prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens))
        )

    @staticmethod
    def error(message: str) -> bytes:
        return b"data: " + dumps(error_object(message, "server_error", "mock_fault")) + b"\n\n"


def usage_object(
    prompt_tokens: int, completion_tokens: int, reasoning_tokens: int, cached_tokens: int | None = None
) -> dict[str, Any]:
    """OpenAI's usage object; ``cached_tokens`` (prefix cache on) adds ``prompt_tokens_details.cached_tokens``."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    if reasoning_tokens:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return usage


class Answer:
    """What a non-streamed call generated, as every API's body builder reads it: the texts, the token counts
    (``reasoning`` of ``total`` output tokens; the prompt's, and of those the cached ones), the finish reason and
    the tool call when the call answers with one."""

    __slots__ = (
        "cached_tokens",
        "content",
        "finish",
        "prompt_tokens",
        "reasoning",
        "reasoning_text",
        "tool_call",
        "total",
    )

    def __init__(
        self,
        content: str,
        reasoning_text: str | None,
        reasoning: int,
        total: int,
        finish: str,
        prompt: int,
        cached: int | None,
    ) -> None:
        self.content, self.reasoning_text, self.reasoning, self.total = content, reasoning_text, reasoning, total
        self.finish, self.prompt_tokens, self.cached_tokens = finish, prompt, cached
        self.tool_call: dict[str, Any] | None = None


def completion_body(
    completion_id: str, created: int, model: str, answer: Answer, reasoning_field: str = "reasoning_content"
) -> dict[str, Any]:
    """The JSON object of a non-streamed chat completion."""
    a = answer
    message: dict[str, Any] = {"role": "assistant", "content": None if a.tool_call else a.content}
    if a.reasoning_text is not None:
        message[reasoning_field] = a.reasoning_text
    if a.tool_call is not None:
        message["tool_calls"] = [a.tool_call]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": a.finish}],
        "usage": usage_object(a.prompt_tokens, a.total, a.reasoning, a.cached_tokens),
    }
