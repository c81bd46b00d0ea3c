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

from llm_users.client.api_completions import _int, load_body, load_event, usage_of
from llm_users.client.openai_stream import JsonAnswer, StreamError, StreamState, error_text, reasoning_tokens_of

TERMINAL = "response.completed"
_OUTPUT = frozenset({"response.output_text.delta", "response.refusal.delta", "response.function_call_arguments.delta"})


def _read_usage(st: StreamState, usage: Any) -> None:
    if not isinstance(usage, dict):
        return
    ot, it = _int(usage.get("output_tokens")), _int(usage.get("input_tokens"))
    if ot is not None:
        st.completion_tokens = ot
    if it is not None:
        st.prompt_tokens = it
    rt = reasoning_tokens_of(usage, "output_tokens_details")
    if rt is not None:
        st.reasoning_tokens = rt


class ResponsesAccumulator:
    """Feed SSE event data strings in arrival order; read the result from ``state``."""

    __slots__ = ("_mock", "state")
    terminal: str | None = TERMINAL

    def __init__(self, collect_server_stamps: bool = False) -> None:
        self.state = StreamState()
        self._mock = collect_server_stamps
        if collect_server_stamps:
            self.state.mock_sent_ns = []
            self.state.read_delays_ms = []

    def feed(self, data: str, t: float) -> bool:
        """Take one event's data parsed at time ``t``; return True when the stream is finished."""
        st = self.state
        st.events += 1
        obj = load_event(st, data)
        if obj is None:
            return True
        typ = obj.get("type")
        if not isinstance(typ, str):
            st.error = StreamError("unexpected SSE event", "no type")
            return True
        if typ.endswith(".delta"):
            delta = obj.get("delta")
            if isinstance(delta, str) and delta:
                if typ in _OUTPUT:
                    st.token(t, False, True, delta)
                elif typ.startswith("response.reasoning"):
                    st.token(t, True, False, delta)
                else:
                    return False
                if self._mock:
                    st.stamp(obj.get("mock_sent_ns"), t)
            return False
        if typ in (TERMINAL, "response.incomplete"):
            resp = obj.get("response")
            if isinstance(resp, dict):
                _read_usage(st, resp.get("usage"))
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
        if typ == "error":
            st.error = StreamError("SSE error event", error_text(obj))
            return True
        return False


def parse_responses_json(body: bytes) -> JsonAnswer:
    """Parse a non-streamed Responses API body; raise StreamError with a reason when it is not one."""
    obj = load_body(body, failed_status=True)
    output = obj.get("output")
    if not isinstance(output, list):
        raise StreamError("no output in body")
    chars = 0
    for item in output:
        if not isinstance(item, dict):
            continue
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
        prompt_tokens=_int(usage.get("input_tokens")),
        completion_tokens=_int(usage.get("output_tokens")),
        finish_reason=finish if isinstance(finish, str) else None,
        reasoning_tokens=reasoning_tokens_of(usage, "output_tokens_details"),
    )
