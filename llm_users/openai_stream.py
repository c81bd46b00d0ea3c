"""Decoding of an OpenAI-compatible chat-completions answer into the facts one call is timed by.

Pure: no sockets, no Locust. The caller hands over each SSE event's data with the time it was parsed
(`time.perf_counter()` seconds); the accumulator keeps what design.md section 3 needs: the first event with
non-empty ``delta.content`` or ``delta.reasoning_content`` (TTFT), the time of every content event, the end
(``[DONE]``), the usage counts, and the first error found. Role-only and keep-alive events do not count as content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

_loads = json.loads


class StreamError(Exception):
    """A streamed answer that cannot be accepted; ``reason`` is short and low-cardinality (a failure group)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason if not detail else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class StreamState:
    """What was read from one streamed answer so far."""

    first_content: float | None = None
    chunk_times: list[float] = field(default_factory=list)
    done_at: float | None = None
    events: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    error: StreamError | None = None
    mock_sent_ns: list[int] | None = None  # server send stamps when the mock was asked for them
    read_delays_ms: list[float] | None = None


def _error_text(err: Any) -> str:
    if isinstance(err, dict):
        for key in ("type", "code", "message"):
            val = err.get(key)
            if isinstance(val, str) and val:
                return val
        return "error object"
    return str(err)[:80]


class ChatStreamAccumulator:
    """Feed SSE event data strings in arrival order; read the result from ``state``."""

    __slots__ = ("_chunk_times", "_mock", "state")

    def __init__(self, collect_server_stamps: bool = False) -> None:
        self.state = StreamState()
        self._chunk_times = self.state.chunk_times
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
        try:
            obj = _loads(data)
        except ValueError:
            st.error = StreamError("broken JSON in SSE event", data[:60])
            return True
        if not isinstance(obj, dict):
            st.error = StreamError("unexpected SSE event", "not a JSON object")
            return True
        err = obj.get("error")
        if err is not None:
            st.error = StreamError("SSE error event", _error_text(err))
            return True
        choices = obj.get("choices")
        if choices:
            ch = choices[0]
            delta = ch.get("delta") if isinstance(ch, dict) else None
            if delta:
                text = delta.get("content") or delta.get("reasoning_content")
                if text:
                    if st.first_content is None:
                        st.first_content = t
                    self._chunk_times.append(t)
                    if self._mock:
                        sent = obj.get("mock_sent_ns")
                        if isinstance(sent, int):
                            st.mock_sent_ns.append(sent)  # type: ignore[union-attr]
                            st.read_delays_ms.append(t * 1000.0 - sent / 1e6)  # type: ignore[union-attr]
            fr = ch.get("finish_reason") if isinstance(ch, dict) else None
            if fr:
                st.finish_reason = fr
        usage = obj.get("usage")
        if isinstance(usage, dict):
            ct = usage.get("completion_tokens")
            pt = usage.get("prompt_tokens")
            if isinstance(ct, int):
                st.completion_tokens = ct
            if isinstance(pt, int):
                st.prompt_tokens = pt
        return False


@dataclass(slots=True)
class JsonAnswer:
    """The facts of a non-streamed chat answer."""

    content_chars: int
    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: str | None


def parse_chat_json(body: bytes) -> JsonAnswer:
    """Parse a non-streamed chat-completions body; raise StreamError with a reason when it is not one."""
    try:
        obj = _loads(body)
    except ValueError as exc:
        raise StreamError("invalid JSON body", body[:60].decode("utf-8", "replace")) from exc
    if not isinstance(obj, dict):
        raise StreamError("unexpected JSON body", "not an object")
    if obj.get("error") is not None:
        raise StreamError("error object in body", _error_text(obj["error"]))
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise StreamError("no choices in body")
    msg = choices[0].get("message") or {}
    content = msg.get("content") or msg.get("reasoning_content") or ""
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    ct = usage.get("completion_tokens")
    pt = usage.get("prompt_tokens")
    return JsonAnswer(
        content_chars=len(content) if isinstance(content, str) else 0,
        prompt_tokens=pt if isinstance(pt, int) else None,
        completion_tokens=ct if isinstance(ct, int) else None,
        finish_reason=choices[0].get("finish_reason"),
    )
