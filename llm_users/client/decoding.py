"""What the answer decoders of every API share (chat completions, completions, responses, anthropic, embeddings).

Pure: no sockets, no Locust. ``StreamState`` is what one streamed answer gave so far (the times of its token
events, the usage, the first error); ``StreamDecoder`` is the base of the APIs' stream accumulators (feed each
SSE event's data with the time it was parsed, read ``state``); ``JsonAnswer`` the facts of a non-streamed answer.
``load_event`` and ``load_body`` read an event's or a body's JSON object with the same failure reasons for every
API; ``read_usage`` takes the token counts of a usage object under the API's key names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from llm_users.client.sse import text_events

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
    """First token event of any kind (reasoning or output): TTFT."""
    chunk_times: list[float] = field(default_factory=list)
    """Every token event (reasoning and output), in order."""
    done_at: float | None = None
    events: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    error: StreamError | None = None
    mock_sent_ns: list[int] | None = None  # server send stamps when the mock was asked for them
    read_delays_ms: list[float] | None = None
    first_output: float | None = None
    """First output (non-reasoning) token event: TTFO."""
    first_reasoning: float | None = None
    reasoning_events: int = 0
    reasoning_tokens: int | None = None
    """From the usage (``completion_tokens_details.reasoning_tokens`` or the API's equivalent)."""
    texts: list[str] | None = None
    """The streamed text pieces, collected only when set to a list (a local tokenizer counts them)."""

    def token(self, t: float, reasoning: bool, output: bool, text: str | None = None) -> None:
        """One token event at ``t``: a reasoning piece, an output piece, or both in one event; ``text`` is kept
        when ``texts`` collects it."""
        if text is not None and self.texts is not None:
            self.texts.append(text)
        if self.first_content is None:
            self.first_content = t
        self.chunk_times.append(t)
        if reasoning:
            self.reasoning_events += 1
            if self.first_reasoning is None:
                self.first_reasoning = t
        if output and self.first_output is None:
            self.first_output = t

    def stamp(self, sent: Any, t: float) -> None:
        """The mock's send stamp of the token event just counted (``mock_sent_ns``), when collected."""
        if self.mock_sent_ns is not None and isinstance(sent, int) and not isinstance(sent, bool):
            self.mock_sent_ns.append(sent)
            self.read_delays_ms.append(t * 1000.0 - sent / 1e6)  # type: ignore[union-attr]


@dataclass(slots=True)
class JsonAnswer:
    """The facts of a non-streamed answer."""

    content_chars: int
    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: str | None
    reasoning_tokens: int | None = None
    """From the usage; a non-streamed answer has no events to count them by."""
    embeddings: int | None = None
    """Embeddings in an embeddings answer (``data`` items); None for the other APIs."""


def feed_pairs(acc: Any, state: StreamState, pairs: Iterable[tuple[str, str]], perf: Callable[[], float]) -> int:
    """Feed ``(event type, data)`` pairs to an accumulator's ``feed``, each at its own ``perf()`` time: 0 go on,
    1 finished, 2 an SSE ``error`` event (``state.error`` set)."""
    for event, data in pairs:
        if event == "error":
            state.error = StreamError("SSE error event", data[:60])
            return 2
        if acc.feed(data, perf()):
            return 1
    return 0


class StreamDecoder:
    """Base of the stream accumulators: feed SSE event data strings in arrival order, read ``state``.

    ``feed`` counts the event, ends the stream at ``done_data`` (``[DONE]``, when the API has it), reads the
    event's JSON object (``load_event``: broken JSON or an error object ends the stream) and hands it to
    ``take``. ``terminal`` names the event without which a body that ends fails (``stream ended before ...``).
    """

    __slots__ = ("_mock", "state")
    terminal: str | None = None
    done_data: str | None = None

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
        if data == self.done_data:
            st.done_at = t
            return True
        obj = load_event(st, data)
        if obj is None:
            return True
        return self.take(obj, t)

    def feed_texts(self, texts: list[str], perf: Callable[[], float]) -> int:
        """Take the event texts of one network read (``sse.iter_event_lists``) in order, each at its own
        ``perf()`` time as ``feed`` would: 0 go on, 1 finished, 2 an SSE ``error`` event (``state.error`` set)."""
        return feed_pairs(self, self.state, text_events(texts), perf)

    def feed_text(self, text: str, perf: Callable[[], float]) -> int:
        """``feed_texts`` of a read that is one event."""
        return self.feed_texts([text], perf)

    def take(self, obj: dict[str, Any], t: float) -> bool:
        """One event's JSON object (not an error object); True when the stream is finished."""
        raise NotImplementedError

    def _piece(self, text: Any, obj: dict[str, Any], t: float, reasoning: bool) -> None:
        """A token event when ``text`` is a non-empty string: reasoning, or else output; with its mock stamp."""
        if isinstance(text, str) and text:
            st = self.state
            st.token(t, reasoning, not reasoning, text)
            if self._mock:
                st.stamp(obj.get("mock_sent_ns"), t)


class TypedStreamDecoder(StreamDecoder):
    """Base of the streams whose events are typed by their ``type`` member (Responses, Anthropic): an ``error``
    event fails the stream; ``typed`` takes every other event."""

    __slots__ = ()

    def take(self, obj: dict[str, Any], t: float) -> bool:
        typ = obj.get("type")
        if typ == "error":
            self.state.error = StreamError("SSE error event", error_text(obj))
            return True
        return self.typed(typ, obj, t)

    def typed(self, typ: Any, obj: dict[str, Any], t: float) -> bool:
        """One event of type ``typ`` (not ``error``); True when the stream is finished."""
        raise NotImplementedError


def int_or_none(value: Any) -> int | None:
    """``value`` when it is an int (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def reasoning_tokens_of(usage: dict[str, Any], details_key: str) -> int | None:
    """``usage[details_key].reasoning_tokens`` when it is an int."""
    details = usage.get(details_key)
    if isinstance(details, dict):
        n = details.get("reasoning_tokens")
        if isinstance(n, int) and not isinstance(n, bool):
            return n
    return None


def read_usage(
    st: StreamState, usage: Any, completion_key: str, prompt_key: str, details_key: str | None = None
) -> None:
    """The int counts of a usage object into ``st``: ``usage[completion_key]``, ``usage[prompt_key]`` and, with
    ``details_key``, ``usage[details_key].reasoning_tokens``; what is absent or not an int is left as it was."""
    if not isinstance(usage, dict):
        return
    ct, pt = int_or_none(usage.get(completion_key)), int_or_none(usage.get(prompt_key))
    if ct is not None:
        st.completion_tokens = ct
    if pt is not None:
        st.prompt_tokens = pt
    rt = reasoning_tokens_of(usage, details_key) if details_key else None
    if rt is not None:
        st.reasoning_tokens = rt


def error_text(err: Any) -> str:
    """The short name of an error object (its type, code or message), or its text cut to 80 characters."""
    if isinstance(err, dict):
        for key in ("type", "code", "message"):
            val = err.get(key)
            if isinstance(val, str) and val:
                return val
        return "error object"
    return str(err)[:80]


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


def objects_in(obj: dict[str, Any], key: str, missing: str) -> list[dict[str, Any]]:
    """The objects of the list ``obj[key]`` (other items skipped); ``StreamError(missing)`` when it is no list."""
    items = obj.get(key)
    if not isinstance(items, list):
        raise StreamError(missing)
    return [item for item in items if isinstance(item, dict)]


def usage_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The answer's ``usage`` object, or an empty one."""
    usage = obj.get("usage")
    return usage if isinstance(usage, dict) else {}
