"""One LLM call over a Locust FastHttpSession: send, read the answer as it arrives, fire one request event.

Streamed answers are read with ``sse.iter_arrivals`` and decoded with sseclient-py; the call is timed from the
send to ``[DONE]`` (or the end of the body), not at the headers as Locust does with ``stream=True``
(design.md section 6): ``request_meta["response_time"]`` and ``["context"]`` are set before the ``with`` ends.
Every failure becomes a failed request with a short reason; nothing raised here escapes to the User.

Bounds (``Timeouts``, per call; the suites set them from ``IDLE_TIMEOUT`` and ``CALL_TIMEOUT``), with their reasons:
``timeout (headers)`` no response headers within ``idle_s`` of the send (a non-streamed answer sends nothing
before it is complete, so its whole generation must fit), ``timeout (idle)`` no byte for ``idle_s`` while the
body arrives, ``timeout (call)`` the whole call over ``total_s``. A stalled stream therefore ends after
``idle_s``, a trickling one after ``total_s``. The connection's own timeout is given back after the call, so
the next request on it (an LLM call or not) is not bound by this one's. Sizes: a streamed answer that sends
``MAX_EVENT_BYTES`` (1 MiB) without completing an SSE event fails as ``oversized SSE event``, a non-streamed
body over ``MAX_BODY_BYTES`` (8 MiB) as ``oversized body``; reading stops there and the connection is closed.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
from gevent import getcurrent
from geventhttpclient.response import HTTPParseError
from geventhttpclient.useragent import EmptyResponse

from llm_metrics.engine.calls import CallRecord
from llm_users.client.openai_stream import ChatStreamAccumulator, JsonAnswer, StreamError, StreamState, parse_chat_json
from llm_users.client.sse import StreamCut, drain, iter_arrivals, iter_events
from llm_users.common import tokenizer as _tokenizer

_perf = time.perf_counter
_dumps = json.dumps
_ERROR_BODY_LIMIT = 64 * 1024
MAX_EVENT_BYTES = 1 << 20
"""A streamed answer that sends this many bytes without completing an SSE event fails (``oversized SSE event``)."""
MAX_BODY_BYTES = 8 << 20
"""A non-streamed answer larger than this fails (``oversized body``); no real chat answer comes near it."""
# failure reasons of the timeouts (module docstring); all start with "timeout"
TIMEOUT_HEADERS = "timeout (headers)"
TIMEOUT_IDLE = "timeout (idle)"
TIMEOUT_CALL = "timeout (call)"


@dataclass(slots=True)
class Timeouts:
    """Per request kind: ``idle_s`` bounds the wait for the response headers and each later wait for bytes,
    ``total_s`` the whole call (None: no bound)."""

    idle_s: float = 60.0
    total_s: float | None = 600.0


class _TooLarge(Exception):
    """An answer over the size limits; the message is the failure reason."""


_GRACE_S = 0.002


class _Watch:
    """The call's three bounds (headers, idle, call) on one libev timer, instead of a ``gevent.Timeout`` for the
    headers, one for the call and one per socket wait of the body (gevent arms a Timeout and builds a
    ``socket.timeout`` for every wait of a socket that has a timeout; bench/RESULTS.md, issue 19).

    The timer is armed for the earliest deadline: ``t0 + idle_s`` (headers), ``t0 + total_s`` (call) and, once a
    stream's body is read with the socket's timeout off, ``last + idle_s``, where ``last`` is the end of the last
    network read (``_Counted`` stamps it). When it fires before a deadline has passed (bytes came meanwhile) it is
    armed again for what is left, so it fires about once per ``idle_s`` of a healthy call, usually never. An
    idle or headers deadline passed is checked once more 2 ms later, after the socket events already pending (a
    process that got no CPU for a while reads what came meanwhile first). A deadline passed: a fresh
    ``gevent.Timeout`` (never started) is thrown into the calling greenlet, ``fired`` holds it and ``reason``
    says which bound it was."""

    __slots__ = (
        "deadline_call", "fired", "grace", "greenlet", "idle_s", "last", "loop", "reason", "timer", "watch_idle",
    )  # fmt: skip

    def __init__(self, t0: float, timeouts: Timeouts) -> None:
        self.greenlet = getcurrent()
        self.idle_s = timeouts.idle_s
        self.deadline_call = t0 + timeouts.total_s if timeouts.total_s else None
        self.last = t0
        """Headers: the send; body: the end of the last network read (when ``watch_idle``)."""
        self.watch_idle = False
        """False while waiting for the headers (``last`` is the send) and while a body is read with the socket's own
        idle timeout; True while a stream is read with the socket's timeout off."""
        self.reason: str | None = None
        self.fired: BaseException | None = None
        self.grace = False
        self.loop = gevent.get_hub().loop
        self.timer: Any = None
        self._arm(self.idle_s if self.deadline_call is None else min(self.idle_s, timeouts.total_s or self.idle_s))

    def _arm(self, after: float) -> None:
        self.timer = timer = self.loop.timer(max(after, 0.0))
        timer.start(self._expired, update=True)

    def body_started(self, t: float) -> None:
        """The headers are in: from now on the idle bound runs from the end of the last read."""
        self.last = t
        self.watch_idle = True

    def idle_off(self) -> None:
        """The headers are in and what is read now has its own bound (the socket's timeout, the drain's Timeout):
        only the call bound is left."""
        self.watch_idle = False
        self.last = float("inf")

    def _expired(self) -> None:
        now = _perf()
        self.timer.close()
        due_call = self.deadline_call
        due_idle = self.last + self.idle_s
        if due_call is not None and now >= due_call:
            self.reason = TIMEOUT_CALL
        elif now >= due_idle:
            if not self.grace:
                # once more after the socket events already pending: when this process got no CPU for a while,
                # the bytes that came meanwhile are read first (they count), not cut by the timer
                self.grace = True
                self._arm(_GRACE_S)
                return
            self.reason = TIMEOUT_IDLE if self.watch_idle else TIMEOUT_HEADERS
        else:
            self.grace = False
            nxt = due_idle if due_call is None else min(due_idle, due_call)
            if nxt == float("inf"):  # a body read under the socket's own timeout, no call bound: nothing to watch
                self.timer = None
            else:
                self._arm(nxt - now)
            return
        self.timer = None
        self.fired = exc = gevent.Timeout()
        self.greenlet.throw(exc)

    def close(self) -> None:
        timer = self.timer
        if timer is not None:
            timer.close()
            self.timer = None


def _exception_reason(exc: BaseException, watch: _Watch | None = None, waiting_for: str = "bytes") -> str:
    """A short reason for an exception; ``waiting_for`` is ``"headers"`` when no answer had come yet."""
    original = getattr(exc, "original", None)  # geventhttpclient's RetriesExceeded wraps the real error
    if isinstance(original, BaseException):
        exc = original
    if watch is not None and watch.fired is not None and exc is watch.fired:
        return watch.reason or TIMEOUT_CALL
    if isinstance(exc, (TimeoutError, socket.timeout, gevent.Timeout)):
        return TIMEOUT_HEADERS if waiting_for == "headers" else TIMEOUT_IDLE
    if isinstance(exc, _TooLarge):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return "invalid UTF-8 in SSE stream"
    if _was_reset(exc):
        # geventhttpclient turns a reset before any byte of the answer into its "connection closed" error,
        # raised while handling the ConnectionResetError: a RST is not a graceful close, say so
        return "connection reset"
    if waiting_for == "headers" and isinstance(exc, (HTTPParseError, EmptyResponse)):
        return "connection closed before the answer"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, (StreamCut, HTTPParseError)):
        return "stream cut before the end"
    if isinstance(exc, OSError):
        return f"connection error: {type(exc).__name__}"
    return f"{type(exc).__name__}"


def _was_reset(exc: BaseException) -> bool:
    """True when ``exc`` is, or was raised while handling, a ConnectionResetError (a TCP RST)."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 8:
        if isinstance(cur, ConnectionResetError):
            return True
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False


def no_answer_reason(resp: Any) -> str:
    """Why a request got no HTTP answer (status 0), e.g. ``connection refused`` or ``timeout (headers)``."""
    error = getattr(resp, "error", None)
    return _exception_reason(error, waiting_for="headers") if error is not None else "no response"


def socket_timeout(user_timeout: float, idle_s: float) -> float:
    """The connections' own timeout for a User making LLM calls: Locust's (``network_timeout``, 60 s), raised
    to the idle timeout when that is longer, so that a new connection never cuts the wait for an answer first."""
    return max(user_timeout, idle_s)


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


def llm_call(
    session: Any,
    path: str,
    payload: dict[str, Any],
    *,
    stream: bool,
    scenario: str,
    name: str | None = None,
    prompt: str = "default",
    headers: dict[str, str] | None = None,
    scheduled: float | None = None,
    timeouts: Timeouts | None = None,
    server_stamps: bool = False,
    tags: dict[str, str] | None = None,
    inspect: Callable[[Any, CallRecord], None] | None = None,
    parse_json: Callable[[bytes], JsonAnswer] = parse_chat_json,
    blocked: Callable[[int, bytes], str | None] | None = None,
    decoder: Callable[[bool], Any] = ChatStreamAccumulator,
) -> CallRecord:
    """POST ``payload`` to ``path`` and read the chat answer; fire one request event; return the record.

    ``inspect(resp, rec)`` is an optional hook run when the headers are in (gateway headers and the like);
    ``tags`` are extra tags for the metrics. ``parse_json`` reads a non-streamed body (another API's shape);
    ``blocked(status, body)`` names the answers counted apart, neither success nor error (e.g. 429 ->
    ``"requests_blocked"``): such a call is not a failure in Locust, ``context["blocked"]`` holds the name.
    ``decoder(server_stamps)`` makes the accumulator of a streamed answer (another API's events; see
    ``_read_stream``). The record is also in the event's ``context["llm"]``.
    """
    timeouts = timeouts or Timeouts()
    hdrs = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
        # the raw read path does not decompress (design.md section 6)
        "Accept-Encoding": "identity",
    }
    if server_stamps:
        hdrs["X-Mock-Timestamps"] = "1"
    if headers:
        hdrs.update(headers)
    body = _dumps(payload)
    label = name or path
    rec = CallRecord(scenario=scenario, name=label, prompt=prompt, stream=stream, t_start=0.0, t_scheduled=scheduled)
    if tags:
        rec.tags = tuple(sorted(tags.items()))
    context: dict[str, Any] = {"scenario": scenario, "llm": rec}
    nbytes = 0
    rec.t_start = t0 = _perf()
    # one timer for the call's bounds (_Watch): the wait for the headers (a socket's own timeout is the pool's on
    # a new connection and whatever the last call left on a reused one, so the bound is set here, the same for
    # both), the whole call, and the idle bound of a stream's body
    watch = _Watch(t0, timeouts)
    how = _How(stream, server_stamps, timeouts, inspect, parse_json, blocked, decoder, watch)
    try:
        with session.request(
            "POST",
            path,
            data=body,
            headers=hdrs,
            name=label,
            stream=True,
            catch_response=True,
            context=context,
            allow_redirects=False,  # secrets never follow a redirect (llm_users.common.target_binding)
        ) as resp:
            rec.t_headers = t_headers = _perf()
            watch.idle_off()
            try:
                nbytes, reason = _read_answer(resp, rec, how, context, t_headers)
            except gevent.Timeout as exc:
                if exc is not watch.fired:
                    raise
                reason = watch.reason or TIMEOUT_CALL
                _release(resp)
            except BaseException as exc:
                if isinstance(exc, gevent.GreenletExit):
                    raise
                reason = _exception_reason(exc)
                _release(resp)
            finally:
                how.restore_socket()
            if rec.t_end is None:
                rec.t_end = _perf()
            rec.ok = reason is None
            rec.error = reason
            counter = _tokenizer.active()
            if counter is not None and rec.ok and rec.usage_prompt_tokens is None and isinstance(payload, dict):
                rec.tokenizer_prompt_tokens = counter.count(_tokenizer.prompt_text(payload))
            meta = resp.request_meta
            meta["response_time"] = (rec.t_end - t0) * 1000.0
            meta["response_length"] = nbytes
            meta["context"] = context
            if reason is None or context.get("blocked"):
                resp.success()
            else:
                resp.failure(reason)
    except gevent.Timeout as exc:
        # a bound expired while sending or waiting for the headers, outside geventhttpclient's own handling
        # (which turns it into an error response): the with block never ran
        if exc is not watch.fired:
            raise
        rec.t_end = _perf()
        rec.ok = False
        rec.error = watch.reason or TIMEOUT_HEADERS
        session.request_event.fire(
            request_type="POST",
            name=label,
            response_time=(rec.t_end - t0) * 1000.0,
            response_length=0,
            response=None,
            context=context,
            exception=StreamError(rec.error),
            start_time=time.time() - (rec.t_end - t0),
            url=path,
        )
    finally:
        watch.close()
    return rec


def _release(resp: Any) -> None:
    raw = getattr(resp, "_response", None)
    if raw is not None:
        try:
            raw.release()
        except Exception:
            pass


@dataclass(slots=True)
class _How:
    stream: bool
    server_stamps: bool
    timeouts: Timeouts
    inspect: Callable[[Any, CallRecord], None] | None
    parse_json: Callable[[bytes], JsonAnswer]
    blocked: Callable[[int, bytes], str | None] | None
    decoder: Callable[[bool], Any]
    watch: _Watch | None = None
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


def _read_answer(
    resp: Any, rec: CallRecord, how: _How, context: dict[str, Any], t_headers: float = 0.0
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
        return 0, _exception_reason(error, how.watch, "headers") if error is not None else "no response"
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
        return _read_stream(raw, rec, how.server_stamps, context, how.decoder, watch)
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


def _read_stream(
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
    ``watch`` (``_Watch``), when given, has its ``last`` set to the end of every network read."""
    acc = decoder(server_stamps)
    st: StreamState = acc.state
    if _tokenizer.active() is not None:
        st.texts = []  # the streamed text, for the local tokenizer
    counted = _Counted(iter_arrivals(raw), watch)
    perf = _perf
    finished = False
    try:
        for event, data in iter_events(counted):
            counted.mark = counted.n
            if event == "error":
                st.error = StreamError("SSE error event", data[:60])
                break
            if acc.feed(data, perf()):
                finished = True
                break
    except UnicodeDecodeError:
        st.error = StreamError("invalid UTF-8 in SSE stream")
    except _TooLarge as exc:
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


class _Counted:
    """Wraps the arrivals generator to count bytes; ``mark`` is the count at the last complete SSE event, and
    more than ``MAX_EVENT_BYTES`` beyond it raise ``_TooLarge`` (one event would have to be that large)."""

    __slots__ = ("gen", "mark", "n", "watch")

    def __init__(self, gen: Any, watch: Any = None) -> None:
        self.gen = gen
        self.n = 0
        self.mark = 0
        self.watch = watch

    def __iter__(self) -> Any:
        watch = self.watch
        perf = _perf
        for data in self.gen:
            if watch is not None:
                watch.last = perf()
            self.n += len(data)
            if self.n - self.mark > MAX_EVENT_BYTES:
                raise _TooLarge(f"oversized SSE event (over {MAX_EVENT_BYTES >> 20} MiB)")
            yield data

    def close(self) -> None:
        self.gen.close()
