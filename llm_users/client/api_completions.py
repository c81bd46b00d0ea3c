"""Decoding of an OpenAI text-completions answer (``/v1/completions``, what vLLM's and SGLang's benchmarks use).

A stream is chat completions' shape with ``choices[0].text`` for ``delta.content``: each event with non-empty
``text`` is an output token event; a usage chunk (``choices: []``) gives the counts; ``[DONE]`` ends it. The
completions API has no reasoning field: a model that reasons writes it in the text. Pure: no Locust.
"""

from __future__ import annotations

import json
from typing import Any

from llm_users.client.openai_stream import JsonAnswer, StreamError, StreamState, error_text, reasoning_tokens_of

_loads = json.loads


class CompletionsAccumulator:
    """Feed SSE event data strings in arrival order; read the result from ``state``."""

    __slots__ = ("_mock", "state")
    terminal: str | None = None  # like chat completions: a body that ends without [DONE] is accepted

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
        if data == "[DONE]":
            st.done_at = t
            return True
        obj = load_event(st, data)
        if obj is None:
            return True
        choices = obj.get("choices")
        if choices:
            if not isinstance(choices, list) or not isinstance(choices[0], dict):
                st.error = StreamError("unexpected SSE event", "choices is not a list of objects")
                return True
            ch = choices[0]
            text = ch.get("text")
            if isinstance(text, str) and text:
                st.token(t, False, True, text)
                if self._mock:
                    st.stamp(obj.get("mock_sent_ns"), t)
            fr = ch.get("finish_reason")
            if isinstance(fr, str) and fr:
                st.finish_reason = fr
        usage = obj.get("usage")
        if isinstance(usage, dict):
            read_openai_usage(st, usage)
        return False


def load_event(st: StreamState, data: str) -> dict[str, Any] | None:
    """The event's JSON object, or None with ``st.error`` set (broken JSON, not an object, an error object)."""
    try:
        obj = _loads(data)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than json can read
        st.error = StreamError("broken JSON in SSE event", data[:60])
        return None
    if not isinstance(obj, dict):
        st.error = StreamError("unexpected SSE event", "not a JSON object")
        return None
    err = obj.get("error")
    if err is not None:
        st.error = StreamError("SSE error event", error_text(err))
        return None
    return obj


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_openai_usage(st: StreamState, usage: dict[str, Any]) -> None:
    """``completion_tokens``, ``prompt_tokens`` and ``completion_tokens_details.reasoning_tokens``."""
    ct, pt = _int(usage.get("completion_tokens")), _int(usage.get("prompt_tokens"))
    if ct is not None:
        st.completion_tokens = ct
    if pt is not None:
        st.prompt_tokens = pt
    rt = reasoning_tokens_of(usage, "completion_tokens_details")
    if rt is not None:
        st.reasoning_tokens = rt


def load_body(body: bytes, failed_status: bool = False) -> dict[str, Any]:
    """A non-streamed answer's JSON object; StreamError with a reason when it is not one (or an error).
    ``failed_status``: a ``"status": "failed"`` answer (Responses API) fails as ``response.failed``."""
    try:
        obj = _loads(body)
    except (ValueError, RecursionError) as exc:
        raise StreamError("invalid JSON body", body[:60].decode("utf-8", "replace")) from exc
    if not isinstance(obj, dict):
        raise StreamError("unexpected JSON body", "not an object")
    if failed_status and obj.get("status") == "failed":
        raise StreamError("response.failed", error_text(obj.get("error")) if obj.get("error") else "")
    if obj.get("error") is not None:
        raise StreamError("error object in body", error_text(obj["error"]))
    return obj


def usage_of(obj: dict[str, Any]) -> dict[str, Any]:
    usage = obj.get("usage")
    return usage if isinstance(usage, dict) else {}


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
        prompt_tokens=_int(usage.get("prompt_tokens")),
        completion_tokens=_int(usage.get("completion_tokens")),
        finish_reason=fr if isinstance(fr, str) else None,
        reasoning_tokens=reasoning_tokens_of(usage, "completion_tokens_details"),
    )
