"""One LLM call over a Locust FastHttpSession: send, read the answer as it arrives, fire one request event.

Streamed answers are read with ``sse.iter_arrivals`` and decoded with sseclient-py; the call is timed from the
send to ``[DONE]`` (or the end of the body), not at the headers as Locust does with ``stream=True``
(design.md section 6): ``request_meta["response_time"]`` and ``["context"]`` are set before the ``with`` ends.
Every failure becomes a failed request with a short reason; nothing raised here escapes to the User.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
from geventhttpclient.response import HTTPParseError

from llm_metrics.calls import CallRecord
from llm_users.openai_stream import ChatStreamAccumulator, JsonAnswer, StreamError, parse_chat_json
from llm_users.sse import StreamCut, drain, iter_arrivals, iter_events

_perf = time.perf_counter
_dumps = json.dumps
_ERROR_BODY_LIMIT = 64 * 1024


@dataclass(slots=True)
class Timeouts:
    """Per request kind: ``idle_s`` bounds each wait for bytes, ``total_s`` the whole call (None: no bound)."""

    idle_s: float = 60.0
    total_s: float | None = 600.0


def _exception_reason(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, socket.timeout, gevent.Timeout)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, (StreamCut, HTTPParseError)):
        return "stream cut before the end"
    if isinstance(exc, OSError):
        return f"connection error: {type(exc).__name__}"
    return f"{type(exc).__name__}"


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
) -> CallRecord:
    """POST ``payload`` to ``path`` and read the chat answer; fire one request event; return the record.

    ``inspect(resp, rec)`` is an optional hook run when the headers are in (gateway headers and the like);
    ``tags`` are extra tags for the metrics. ``parse_json`` reads a non-streamed body (another API's shape);
    ``blocked(status, body)`` names the answers counted apart, neither success nor error (e.g. 429 ->
    ``"requests_blocked"``): such a call is not a failure in Locust, ``context["blocked"]`` holds the name.
    The record is also in the event's ``context["llm"]``.
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
    total_timer = gevent.Timeout(timeouts.total_s) if timeouts.total_s else None
    rec.t_start = t0 = _perf()
    if total_timer is not None:
        total_timer.start()
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
        ) as resp:
            rec.t_headers = _perf()
            try:
                how = _How(stream, server_stamps, timeouts, inspect, parse_json, blocked)
                nbytes, reason = _read_answer(resp, rec, how, context)
            except gevent.Timeout as exc:
                if exc is not total_timer:
                    raise
                reason = "timeout"
                _release(resp)
            except BaseException as exc:
                if isinstance(exc, gevent.GreenletExit):
                    raise
                reason = _exception_reason(exc)
                _release(resp)
            if rec.t_end is None:
                rec.t_end = _perf()
            rec.ok = reason is None
            rec.error = reason
            meta = resp.request_meta
            meta["response_time"] = (rec.t_end - t0) * 1000.0
            meta["response_length"] = nbytes
            meta["context"] = context
            if reason is None or context.get("blocked"):
                resp.success()
            else:
                resp.failure(reason)
    except gevent.Timeout as exc:
        # the total bound expired while sending or waiting for the headers: the with block never ran
        if exc is not total_timer:
            raise
        rec.t_end = _perf()
        rec.ok = False
        rec.error = "timeout"
        session.request_event.fire(
            request_type="POST",
            name=label,
            response_time=(rec.t_end - t0) * 1000.0,
            response_length=0,
            response=None,
            context=context,
            exception=StreamError("timeout"),
            start_time=time.time() - (rec.t_end - t0),
            url=path,
        )
    finally:
        if total_timer is not None:
            total_timer.close()
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


def _read_answer(resp: Any, rec: CallRecord, how: _How, context: dict[str, Any]) -> tuple[int, str | None]:
    """Read the answer into ``rec``; return (bytes read, failure reason or None)."""
    raw = getattr(resp, "_response", None)
    status = resp.status_code or 0
    rec.status = status
    if raw is None or status == 0:
        # no HTTP answer at all (refused, reset, timeout before the headers); a bad status code also sets
        # resp.error, but it has an answer whose body says why, read below
        error = getattr(resp, "error", None)
        return 0, _exception_reason(error) if error is not None else "no response"
    queue = _float_header(resp, "X-Queue-Time")
    if queue is not None:
        rec.queue_ms = queue
    if how.inspect is not None:
        how.inspect(resp, rec)
    if raw._sock is not None:
        raw._sock.settimeout(how.timeouts.idle_s)
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
            return len(data), "wrong content type for a stream"
        return _read_stream(raw, rec, how.server_stamps, context)
    chunks = []
    n = 0
    for data in iter_arrivals(raw):
        chunks.append(data)
        n += len(data)
    rec.t_end = t_end = _perf()
    try:
        ans = how.parse_json(b"".join(chunks))
    except StreamError as exc:
        return n, exc.reason
    rec.usage_completion_tokens = ans.completion_tokens
    rec.usage_prompt_tokens = ans.prompt_tokens
    if ans.completion_tokens is None and ans.content_chars == 0:
        return n, "no tokens"
    rec.t_first_content = t_end
    return n, None


def _bounded(chunks: Any, limit: int, raw: Any) -> Any:
    n = 0
    for data in chunks:
        n += len(data)
        yield data
        if n > limit:
            raw.release()
            return


def _read_stream(raw: Any, rec: CallRecord, server_stamps: bool, context: dict[str, Any]) -> tuple[int, str | None]:
    acc = ChatStreamAccumulator(collect_server_stamps=server_stamps)
    st = acc.state
    counted = _Counted(iter_arrivals(raw))
    perf = _perf
    finished = False
    for event, data in iter_events(counted):
        if event == "error":
            st.error = StreamError("SSE error event", data[:60])
            break
        if acc.feed(data, perf()):
            finished = True
            break
    end = perf()
    if finished and st.error is None and st.done_at is not None:
        # [DONE]: what may follow is the chunked terminator; read it so the connection is reused
        try:
            with gevent.Timeout(1.0):
                counted.n += drain(raw)
        except (gevent.Timeout, OSError, StreamCut, HTTPParseError):
            raw.release()
    elif st.error is not None:
        raw.release()
    rec.t_end = st.done_at if st.done_at is not None else end
    rec.t_first_content = st.first_content
    rec.chunk_times = st.chunk_times
    rec.content_events = len(st.chunk_times)
    rec.usage_completion_tokens = st.completion_tokens
    rec.usage_prompt_tokens = st.prompt_tokens
    if server_stamps and st.read_delays_ms:
        context["llm_read_delays_ms"] = st.read_delays_ms
    if st.error is not None:
        return counted.n, st.error.reason
    if not st.chunk_times and not st.completion_tokens:
        return counted.n, "no tokens"
    return counted.n, None


class _Counted:
    """Wraps the arrivals generator to count bytes."""

    __slots__ = ("gen", "n")

    def __init__(self, gen: Any) -> None:
        self.gen = gen
        self.n = 0

    def __iter__(self) -> Any:
        for data in self.gen:
            self.n += len(data)
            yield data

    def close(self) -> None:
        self.gen.close()
