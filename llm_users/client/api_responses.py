"""Decoding of an OpenAI Responses API answer (``/v1/responses``).

A stream is a sequence of typed events (the ``type`` member of each event's data; the SSE ``event:`` line
repeats it). Token events: ``response.output_text.delta``, ``response.refusal.delta`` and
``response.function_call_arguments.delta`` (a tool call's arguments in pieces) are output;
``response.reasoning_text.delta`` and ``response.reasoning_summary_text.delta`` (any ``response.reasoning*``
``.delta``) are reasoning. ``response.completed`` (or ``response.incomplete``, a length-limited answer) ends
the stream and carries the usage (``input_tokens``, ``output_tokens``, ``output_tokens_details.
reasoning_tokens``); ``response.failed`` and ``error`` events fail it; a body that ends before the terminal
event fails as ``stream ended before response.completed``. Other events (created, in_progress, item and part
added/done) are not tokens. Pure: no Locust.
"""

from __future__ import annotations

from typing import Any

from llm_users.client.decoding import (
    JsonAnswer,
    StreamError,
    TypedStreamDecoder,
    error_text,
    int_or_none,
    load_body,
    objects_in,
    read_usage,
    reasoning_tokens_of,
    usage_of,
)

TERMINAL = "response.completed"
_OUTPUT = frozenset({"response.output_text.delta", "response.refusal.delta", "response.function_call_arguments.delta"})


class ResponsesAccumulator(TypedStreamDecoder):
    """A Responses API stream (events typed by their ``type`` member); the module docstring lists them."""

    __slots__ = ()
    terminal = TERMINAL

    def typed(self, typ: Any, obj: dict[str, Any], t: float) -> bool:
        st = self.state
        if not isinstance(typ, str):
            st.error = StreamError("unexpected SSE event", "no type")
            return True
        if typ.endswith(".delta"):
            delta = obj.get("delta")
            if typ in _OUTPUT:
                self._piece(delta, obj, t, False)
            elif typ.startswith("response.reasoning"):
                self._piece(delta, obj, t, True)
            return False
        if typ in (TERMINAL, "response.incomplete"):
            resp = obj.get("response")
            if isinstance(resp, dict):
                read_usage(st, resp.get("usage"), "output_tokens", "input_tokens", "output_tokens_details")
                status = resp.get("status")
                details = resp.get("incomplete_details")
                if isinstance(details, dict) and isinstance(details.get("reason"), str):
                    st.finish_reason = details["reason"]
                elif isinstance(status, str):
                    st.finish_reason = status
            st.done_at = t
            return True
        if typ == "response.failed":
            resp = obj.get("response")
            err = resp.get("error") if isinstance(resp, dict) else None
            st.error = StreamError("response.failed", error_text(err) if err else "")
            return True
        return False


def parse_responses_json(body: bytes) -> JsonAnswer:
    """Parse a non-streamed Responses API body; raise StreamError with a reason when it is not one."""
    obj = load_body(body, failed_status=True)
    chars = 0
    for item in objects_in(obj, "output", "no output in body"):
        if item.get("type") == "function_call" and isinstance(item.get("arguments"), str):
            chars += len(item["arguments"]) or 1
        for part in item.get("content") or ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                chars += len(part["text"])
    usage = usage_of(obj)
    details = obj.get("incomplete_details")
    status = obj.get("status")
    finish = details.get("reason") if isinstance(details, dict) else status
    return JsonAnswer(
        content_chars=chars,
        prompt_tokens=int_or_none(usage.get("input_tokens")),
        completion_tokens=int_or_none(usage.get("output_tokens")),
        finish_reason=finish if isinstance(finish, str) else None,
        reasoning_tokens=reasoning_tokens_of(usage, "output_tokens_details"),
    )
