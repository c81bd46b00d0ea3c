"""Reading one LLM call's answer as the bytes arrive, into its ``CallRecord``.

``read_answer`` takes the response once its headers are in: an error status (its reason from the JSON error
body), a non-streamed body (``ReadPlan.parse_json``), or a stream (``text/event-stream``) cut into events read by
read with ``sse.iter_event_lists`` and taken by the API's accumulator (``read_stream``): every token event's time
is taken when its event is taken, one ``perf_counter()`` each. The size bounds and failure reasons are
``bounds``'. No Locust import.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
from geventhttpclient.response import HTTPParseError

from llm_metrics.engine.calls import CallRecord
from llm_users.client.bounds import MAX_BODY_BYTES, MAX_EVENT_BYTES, CallWatch, Timeouts, TooLarge, exception_reason
from llm_users.client.decoding import JsonAnswer, StreamError, StreamState, feed_pairs
from llm_users.client.openai_stream import ChatStreamAccumulator
from llm_users.client.sse import StreamCut, drain, iter_arrivals, iter_event_lists, text_events
from llm_users.common import tokenizer as _tokenizer

_perf = time.perf_counter
_ERROR_BODY_LIMIT = 64 * 1024


def _status_reason(status: int, body: bytes) -> str:
    """``HTTP 429: rate_limit_exceeded``: the status and the error type or code of a JSON error body."""
    kind = ""
    try:
        obj = json.loads(body)
        err = obj.get("error") if isinstance(obj, dict) else None
        if isinstance(err, dict):
            for key in ("type", "code"):
                if isinstance(err.get(key), str) and err[key]:
                    kind = err[key]
                    break
        elif isinstance(err, str):
            kind = err[:40]
    except (ValueError, AttributeError):
        pass
    return f"HTTP {status}: {kind}" if kind else f"HTTP {status}"


def _header(resp: Any, name: str) -> str | None:
    headers = resp.headers
    if headers is None:
        return None
    val = headers.get(name)
    if isinstance(val, list):
        val = val[0] if val else None
    return val


def _float_header(resp: Any, name: str) -> float | None:
    val = _header(resp, name)
    if val is None:
        return None
    try:
        return float(str(val).strip().removesuffix("ms"))
    except ValueError:
        return None


def release(resp: Any) -> None:
    """Close the connection of an answer not read to its end (it cannot be reused)."""
    raw = getattr(resp, "_response", None)
    if raw is not None:
        try:
            raw.release()
        except Exception:
            pass


@dataclass(slots=True)
class ReadPlan:
    """How ``read_answer`` reads one call's answer (``llm_call``'s arguments), and the socket timeout to give
    back after it."""

    stream: bool
    server_stamps: bool
    timeouts: Timeouts
    inspect: Callable[[Any, CallRecord], None] | None
    parse_json: Callable[[bytes], JsonAnswer]
    blocked: Callable[[int, bytes], str | None] | None
    decoder: Callable[[bool], Any]
    watch: CallWatch | None = None
    sock: Any = None
    sock_timeout: float | None = None

    def restore_socket(self) -> None:
        """Give the connection back its own timeout: the idle bound of this call is not the next request's."""
        if self.sock is not None:
            try:
                self.sock.settimeout(self.sock_timeout)
            except OSError:
                pass
            self.sock = None


def read_answer(
    resp: Any, rec: CallRecord, how: ReadPlan, context: dict[str, Any], t_headers: float = 0.0
) -> tuple[int, str | None]:
    """Read the answer into ``rec``; return (bytes read, failure reason or None).

    A streamed body (``text/event-stream``) is read with the socket's timeout off, its idle bound kept by
    ``how.watch`` from the end of each read; any other body under the socket's own timeout set to ``idle_s``."""
    raw = getattr(resp, "_response", None)
    status = resp.status_code or 0
    rec.status = status
    if raw is None or status == 0:
        # no HTTP answer at all (refused, reset, timeout before the headers); a bad status code also sets
        # resp.error, but it has an answer whose body says why, read below
        error = getattr(resp, "error", None)
        return 0, exception_reason(error, how.watch, "headers") if error is not None else "no response"
    queue = _float_header(resp, "X-Queue-Time")
    if queue is not None:
        rec.queue_ms = queue
    if how.inspect is not None:
        how.inspect(resp, rec)
    sock = raw._sock
    if sock is not None:
        how.sock, how.sock_timeout = sock, sock.gettimeout()
        sock.settimeout(how.timeouts.idle_s)
    if status >= 400 or status < 200:
        if getattr(resp, "error", None) is not None:
            # geventhttpclient has already read the body of a status it rejects, for its http_log
            data = resp.content or b""
        else:
            data = b"".join(_bounded(iter_arrivals(raw), _ERROR_BODY_LIMIT, raw))
        rec.t_end = _perf()
        if how.blocked is not None:
            kind = how.blocked(status, data[:_ERROR_BODY_LIMIT])
            if kind:
                context["blocked"] = kind
        return len(data), _status_reason(status, data[:_ERROR_BODY_LIMIT])
    ctype = (_header(resp, "Content-Type") or "").lower()
    if how.stream:
        if "text/event-stream" not in ctype:
            data = b"".join(_bounded(iter_arrivals(raw), _ERROR_BODY_LIMIT, raw))
            rec.t_end = _perf()
            return len(data), f"wrong content type for a stream: {_media_type(ctype)}"
        watch = how.watch
        if watch is not None and sock is not None:
            # no Timeout per socket wait: the watch bounds the time since the last read (gevent's wait of a
            # socket without timeout arms nothing)
            sock.settimeout(None)
            watch.body_started(t_headers or _perf())
        return read_stream(raw, rec, how.server_stamps, context, how.decoder, watch)
    chunks = []
    n = 0
    for data in iter_arrivals(raw):
        chunks.append(data)
        n += len(data)
        if n > MAX_BODY_BYTES:
            raw.release()
            rec.t_end = _perf()
            return n, f"oversized body (over {MAX_BODY_BYTES >> 20} MiB)"
    rec.t_end = t_end = _perf()
    try:
        ans = how.parse_json(b"".join(chunks))
    except StreamError as exc:
        if ctype and "json" not in ctype:  # not JSON, and not said to be: name what it said it was
            return n, f"wrong content type: {_media_type(ctype)}"
        return n, exc.reason
    rec.usage_completion_tokens = ans.completion_tokens
    rec.usage_prompt_tokens = ans.prompt_tokens
    rec.usage_reasoning_tokens = ans.reasoning_tokens
    rec.embeddings = ans.embeddings
    if ans.completion_tokens is None and ans.content_chars == 0 and not ans.embeddings:
        return n, "no tokens"
    rec.t_first_content = t_end
    return n, None


def _media_type(ctype: str) -> str:
    """``text/html`` of ``text/html; charset=utf-8`` (short: it names a failure group), ``none`` when absent."""
    return ctype.split(";")[0].strip()[:40] or "none"


def _bounded(chunks: Any, limit: int, raw: Any) -> Any:
    n = 0
    for data in chunks:
        n += len(data)
        yield data
        if n > limit:
            raw.release()
            return


def read_stream(
    raw: Any,
    rec: CallRecord,
    server_stamps: bool,
    context: dict[str, Any],
    decoder: Callable[[bool], Any] = ChatStreamAccumulator,
    watch: Any = None,
) -> tuple[int, str | None]:
    """Read a streamed answer with the API's accumulator: ``feed(data, t) -> finished`` and a ``state``
    (``StreamState``). An accumulator whose ``terminal`` names an event (``response.completed``,
    ``message_stop``) fails a stream whose body ends without it: ``stream ended before <terminal>``.
    ``watch`` (``CallWatch``), when given, has its ``last`` set to the end of every network read."""
    acc = decoder(server_stamps)
    st: StreamState = acc.state
    if _tokenizer.active() is not None:
        st.texts = []  # the streamed text, for the local tokenizer
    counted = Counted(raw, watch)
    perf = _perf
    feed_texts = getattr(acc, "feed_texts", None)
    feed_text = getattr(acc, "feed_text", None)
    finished = False
    try:
        item: Any
        for item in iter_event_lists(counted):
            counted.mark = counted.n
            kind = type(item)
            # one read's events (or its one event), each taken at its own perf() time
            if kind is str and feed_text is not None:
                code = feed_text(item, perf)
            elif kind is list and feed_texts is not None:
                code = feed_texts(item, perf)
            else:
                pairs = (item,) if kind is tuple else text_events([item] if kind is str else item)
                code = feed_pairs(acc, st, pairs, perf)
            if code:
                finished = code == 1
                break
    except UnicodeDecodeError:
        st.error = StreamError("invalid UTF-8 in SSE stream")
    except TooLarge as exc:
        st.error = StreamError(str(exc))
    end = perf()
    terminal = getattr(acc, "terminal", None)
    if not finished and st.error is None and terminal is not None:
        st.error = StreamError(f"stream ended before {terminal}")
    if finished and st.error is None and st.done_at is not None:
        # [DONE]: what may follow is the chunked terminator; read it so the connection is reused
        if watch is not None:
            watch.idle_off()  # the drain has its own bound
        if raw.message_complete:  # already read with [DONE] (the usual case): no wait, no Timeout to arm
            counted.n += drain(raw)
        else:
            try:
                with gevent.Timeout(1.0):
                    counted.n += drain(raw)
            except (gevent.Timeout, OSError, StreamCut, HTTPParseError):
                raw.release()
    elif st.error is not None:
        raw.release()
    rec.t_end = st.done_at if st.done_at is not None else end
    rec.t_first_content = st.first_content
    rec.t_first_output = st.first_output
    rec.t_first_reasoning = st.first_reasoning
    rec.chunk_times = st.chunk_times
    rec.content_events = len(st.chunk_times)
    rec.reasoning_events = st.reasoning_events
    rec.usage_completion_tokens = st.completion_tokens
    rec.usage_prompt_tokens = st.prompt_tokens
    rec.usage_reasoning_tokens = st.reasoning_tokens
    counter = _tokenizer.active()
    if counter is not None and st.texts is not None and st.completion_tokens is None:
        rec.tokenizer_completion_tokens = counter.count("".join(st.texts))
    if server_stamps and st.read_delays_ms:
        context["llm_read_delays_ms"] = st.read_delays_ms
    if st.error is not None:
        return counted.n, st.error.reason
    if not st.chunk_times and not st.completion_tokens:
        return counted.n, "no tokens"
    return counted.n, None


class Counted:
    """The byte count of a stream read by ``sse.iter_arrivals(raw, count)``: ``mark`` is the count at the last
    complete SSE event, and more than ``MAX_EVENT_BYTES`` beyond it raise ``TooLarge`` (one event would have to be
    that large); ``watch.last`` is stamped at every read. Iterating it reads ``raw``."""

    __slots__ = ("limit", "mark", "n", "raw", "watch")

    def __init__(self, raw: Any, watch: Any = None) -> None:
        self.raw = raw
        self.n = 0
        self.mark = 0
        self.limit = MAX_EVENT_BYTES
        self.watch = watch

    def __iter__(self) -> Any:
        return iter_arrivals(self.raw, self)

    @staticmethod
    def too_large() -> TooLarge:
        return TooLarge(f"oversized SSE event (over {MAX_EVENT_BYTES >> 20} MiB)")
