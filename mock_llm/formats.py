"""Wire formats of the other APIs the mock serves, with the stream-encoder methods of ``chunks.ChatChunks``.

* ``CompletionChunks``: ``/v1/completions`` (``choices[0].text``; a usage chunk and ``[DONE]``). The API has
  no reasoning field: reasoning tokens are sent as text, and the usage has no reasoning count.
* ``ResponsesEvents``: ``/v1/responses`` (``response.created``, ``response.output_item.added``,
  ``response.reasoning_text.delta``, ``response.output_text.delta``, ``response.function_call_arguments.delta``,
  ``response.completed`` with the usage).
* ``AnthropicEvents``: ``/v1/messages`` (``message_start``, ``content_block_start`` / ``_delta`` / ``_stop``
  per block, thinking first, then text or tool_use, ``message_delta`` with ``stop_reason`` and the usage,
  ``message_stop``).

With timestamps on, every event's JSON ends with ``"mock_sent_ns"`` (as the chat chunks). Token texts are
bytes already safe inside a JSON string.
"""

from __future__ import annotations

import time
from typing import Any

from mock_llm.chunks import DONE, Answer, dumps, usage_object

_TS = b',"mock_sent_ns":'


class _Events:
    """Events ``event: NAME`` + ``data: JSON``; the JSON gets the stamp as its last member."""

    __slots__ = ("timestamps",)

    def __init__(self, timestamps: bool) -> None:
        self.timestamps = timestamps

    def _event(self, name: bytes, body: bytes) -> bytes:
        """``body`` is a JSON object without its closing brace."""
        if self.timestamps:
            body += _TS + str(time.perf_counter_ns()).encode()
        return b"event: " + name + b"\ndata: " + body + b"}\n\n"


class CompletionChunks(_Events):
    """The SSE events of one streamed text completion."""

    __slots__ = ("_head", "_text")

    def __init__(self, completion_id: str, created: int, model: str, timestamps: bool) -> None:
        super().__init__(timestamps)
        ident = dumps({"id": completion_id, "object": "text_completion", "created": created, "model": model})
        self._head = b"data: " + ident[:-1]
        self._text = self._head + b',"choices":[{"index":0,"text":"'

    def _data(self, body: bytes) -> bytes:
        if self.timestamps:
            body += _TS + str(time.perf_counter_ns()).encode()
        return body + b"}\n\n"

    def start(self) -> bytes:
        return b""

    def content(self, text: bytes) -> bytes:
        return self._data(self._text + text + b'","logprobs":null,"finish_reason":null}]')

    reasoning = content  # no reasoning field in this API

    def tool_start(self, call_id: str, name: str, text: bytes) -> bytes:
        return self.content(text)  # no tools in this API: the arguments come as text

    tool_args = content

    def raw_content(self, text: str) -> bytes:
        return self.content(dumps(text)[1:-1])

    def end(
        self, finish: str, include_usage: bool, prompt: int, total: int, _reasoning: int, cached: int | None
    ) -> bytes:
        out = self._data(
            self._head + b',"choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"%b"}]' % finish.encode()
        )
        if include_usage:
            out += self._data(self._head + b',"choices":[],"usage":' + dumps(usage_object(prompt, total, 0, cached)))
        return out + DONE

    def error(self, message: str) -> bytes:
        return (
            b"data: " + dumps({"error": {"message": message, "type": "server_error", "code": "mock_fault"}}) + b"\n\n"
        )


def responses_usage(prompt: int, total: int, reasoning: int, cached: int | None) -> dict[str, Any]:
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached or 0},
        "output_tokens": total,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + total,
    }


class ResponsesEvents(_Events):
    """The SSE events of one streamed Responses API answer."""

    __slots__ = ("_item", "_kind", "_out", "_response", "_seq")

    def __init__(self, response_id: str, created: int, model: str, timestamps: bool) -> None:
        super().__init__(timestamps)
        self._response = {"id": response_id, "object": "response", "created_at": created, "model": model}
        self._seq = 0
        self._kind = ""  # the output item open: "reasoning", "message" or "function_call"
        self._out = -1
        self._item = b""

    def _typed(self, typ: str, extra: bytes) -> bytes:
        seq = self._seq
        self._seq += 1
        return self._event(typ.encode(), b'{"type":"%b","sequence_number":%d%b' % (typ.encode(), seq, extra))

    def _open(self, kind: str, item: dict[str, Any]) -> bytes:
        if self._kind == kind:
            return b""
        out = b""
        if self._kind:
            out += self._typed("response.output_item.done", b',"output_index":%d' % self._out)
        self._kind = kind
        self._out += 1
        self._item = item["id"].encode()
        return out + self._typed(
            "response.output_item.added", b',"output_index":%d,"item":%b' % (self._out, dumps(item))
        )

    def _delta(self, typ: str, text: bytes) -> bytes:
        return self._typed(
            typ, b',"item_id":"%b","output_index":%d,"content_index":0,"delta":"%b"' % (self._item, self._out, text)
        )

    def start(self) -> bytes:
        return self._typed(
            "response.created", b',"response":' + dumps({**self._response, "status": "in_progress", "output": []})
        )

    def reasoning(self, text: bytes) -> bytes:
        head = self._open("reasoning", {"id": f"rs_{self._seq}", "type": "reasoning", "summary": []})
        return head + self._delta("response.reasoning_text.delta", text)

    def content(self, text: bytes) -> bytes:
        head = self._open("message", {"id": f"msg_{self._seq}", "type": "message", "role": "assistant", "content": []})
        return head + self._delta("response.output_text.delta", text)

    def tool_start(self, call_id: str, name: str, text: bytes) -> bytes:
        item = {"id": f"fc_{self._seq}", "type": "function_call", "call_id": call_id, "name": name, "arguments": ""}
        return self._open("function_call", item) + self.tool_args(text)

    def tool_args(self, text: bytes) -> bytes:
        return self._delta("response.function_call_arguments.delta", text)

    def raw_content(self, text: str) -> bytes:
        return self.content(dumps(text)[1:-1])

    def end(self, finish: str, _include: bool, prompt: int, total: int, reasoning: int, cached: int | None) -> bytes:
        out = b""
        if self._kind:
            out += self._typed("response.output_item.done", b',"output_index":%d' % self._out)
        resp = {
            **self._response,
            "status": "completed",
            "output": [],
            "usage": responses_usage(prompt, total, reasoning, cached),
        }
        if finish == "length":
            resp["incomplete_details"] = None  # a length-limited answer is still reported as completed here
        return out + self._typed("response.completed", b',"response":' + dumps(resp))

    def error(self, message: str) -> bytes:
        return self._typed("error", b',"code":"mock_fault","message":' + dumps(message))


_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


class AnthropicEvents(_Events):
    """The SSE events of one streamed Anthropic Messages API answer."""

    __slots__ = ("_block", "_index", "_message", "_prompt")

    def __init__(self, message_id: str, created: int, model: str, timestamps: bool, prompt_tokens: int = 0) -> None:
        super().__init__(timestamps)
        self._message = {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": []}
        self._block = ""
        self._index = -1
        self._prompt = prompt_tokens

    def _open(self, kind: str, block: dict[str, Any]) -> bytes:
        if self._block == kind:
            return b""
        out = self._close_block()
        self._block = kind
        self._index += 1
        return out + self._event(
            b"content_block_start",
            b'{"type":"content_block_start","index":%d,"content_block":%b' % (self._index, dumps(block)),
        )

    def _close_block(self) -> bytes:
        if not self._block:
            return b""
        self._block = ""
        return self._event(b"content_block_stop", b'{"type":"content_block_stop","index":%d' % self._index)

    def _delta(self, kind: bytes, key: bytes, text: bytes) -> bytes:
        return self._event(
            b"content_block_delta",
            b'{"type":"content_block_delta","index":%d,"delta":{"type":"%b","%b":"%b"}'
            % (self._index, kind, key, text),
        )

    def start(self) -> bytes:
        msg = {**self._message, "stop_reason": None, "usage": {"input_tokens": self._prompt, "output_tokens": 0}}
        return self._event(b"message_start", b'{"type":"message_start","message":' + dumps(msg))

    def reasoning(self, text: bytes) -> bytes:
        head = self._open("thinking", {"type": "thinking", "thinking": ""})
        return head + self._delta(b"thinking_delta", b"thinking", text)

    def content(self, text: bytes) -> bytes:
        head = self._open("text", {"type": "text", "text": ""})
        return head + self._delta(b"text_delta", b"text", text)

    def tool_start(self, call_id: str, name: str, text: bytes) -> bytes:
        return self._open("tool_use", {"type": "tool_use", "id": call_id, "name": name, "input": {}}) + self.tool_args(
            text
        )

    def tool_args(self, text: bytes) -> bytes:
        return self._delta(b"input_json_delta", b"partial_json", text)

    def raw_content(self, text: str) -> bytes:
        return self.content(dumps(text)[1:-1])

    def end(self, finish: str, _include: bool, prompt: int, total: int, _reasoning: int, _cached: int | None) -> bytes:
        stop = _STOP.get(finish, finish)
        usage = {"input_tokens": prompt, "output_tokens": total}
        return (
            self._close_block()
            + self._event(
                b"message_delta",
                b'{"type":"message_delta","delta":{"stop_reason":"%b","stop_sequence":null},"usage":%b'
                % (stop.encode(), dumps(usage)),
            )
            + self._event(b"message_stop", b'{"type":"message_stop"')
        )

    def error(self, message: str) -> bytes:
        return (
            b"event: error\ndata: "
            + dumps({"type": "error", "error": {"type": "api_error", "message": message}})
            + b"\n\n"
        )


def completion_text_body(completion_id: str, created: int, model: str, answer: Answer) -> dict[str, Any]:
    """The completions API has no reasoning field: reasoning tokens are part of the text, and of its usage."""
    text = (answer.reasoning_text or "") + answer.content
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": answer.finish}],
        "usage": usage_object(answer.prompt_tokens, answer.total, 0, None),
    }


def responses_body(response_id: str, created: int, model: str, answer: Answer) -> dict[str, Any]:
    reasoning, tool_call = answer.reasoning_text, answer.tool_call
    output: list[dict[str, Any]] = []
    if reasoning is not None:
        output.append(
            {
                "id": "rs_0",
                "type": "reasoning",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": reasoning}],
            }
        )
    if tool_call is not None:
        fn = tool_call["function"]
        output.append(
            {
                "id": "fc_0",
                "type": "function_call",
                "call_id": tool_call["id"],
                "name": fn["name"],
                "arguments": fn["arguments"],
            }
        )
    else:
        output.append(
            {"id": "msg_0", "type": "message", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": answer.content, "annotations": []}]}
        )  # fmt: skip
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "model": model,
        "status": "completed",
        "output": output,
        "usage": responses_usage(answer.prompt_tokens, answer.total, answer.reasoning, answer.cached_tokens),
    }


def anthropic_body(message_id: str, model: str, answer: Answer) -> dict[str, Any]:
    reasoning, tool_call, text = answer.reasoning_text, answer.tool_call, answer.content
    content: list[dict[str, Any]] = []
    if reasoning is not None:
        content.append({"type": "thinking", "thinking": reasoning, "signature": "mock"})
    if tool_call is not None:
        fn = tool_call["function"]
        content.append({"type": "tool_use", "id": tool_call["id"], "name": fn["name"], "input": {"text": text}})
    else:
        content.append({"type": "text", "text": text})
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _STOP.get(answer.finish, answer.finish),
        "stop_sequence": None,
        "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": answer.total},
    }
