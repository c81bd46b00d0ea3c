"""One LLM call over a Locust FastHttpSession: send, read the answer as it arrives, fire one request event.

Streamed answers are read with ``sse.iter_arrivals`` and decoded event by event (``answer.read_stream``); the
call is timed from the send to ``[DONE]`` (or the end of the body), not at the headers as Locust does with
``stream=True`` (design.md section 6): ``request_meta["response_time"]`` and ``["context"]`` are set before the
``with`` ends. Every failure becomes a failed request with a short reason; nothing raised here escapes to the
User. The call's bounds in time and size, and the reasons, are in ``bounds``; reading the answer in ``answer``.
The connection's own timeout is given back after the call, so the next request on it (an LLM call or not) is
not bound by this one's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import gevent

from llm_metrics.engine.calls import CallRecord
from llm_metrics.monitors.gauge import LOAD as _load
from llm_users.client.answer import ReadPlan, read_answer, release
from llm_users.client.bounds import (
    MAX_BODY_BYTES,
    MAX_EVENT_BYTES,
    TIMEOUT_CALL,
    TIMEOUT_HEADERS,
    TIMEOUT_IDLE,
    CallWatch,
    Timeouts,
    exception_reason,
    no_answer_reason,
    socket_timeout,
)
from llm_users.client.decoding import JsonAnswer, StreamError
from llm_users.client.direct import direct_path
from llm_users.client.openai_stream import ChatStreamAccumulator, parse_chat_json
from llm_users.client.session import lean_session
from llm_users.common import tokenizer as _tokenizer

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_EVENT_BYTES",
    "TIMEOUT_CALL",
    "TIMEOUT_HEADERS",
    "TIMEOUT_IDLE",
    "Timeouts",
    "llm_call",
    "no_answer_reason",
    "socket_timeout",
]

_perf = time.perf_counter
_dumps = json.dumps


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
    body: str | None = None,
) -> CallRecord:
    """POST ``payload`` to ``path`` and read the chat answer; fire one request event; return the record.

    ``inspect(resp, rec)`` is an optional hook run when the headers are in (gateway headers and the like);
    ``tags`` are extra tags for the metrics. ``parse_json`` reads a non-streamed body (another API's shape);
    ``blocked(status, body)`` names the answers counted apart, neither success nor error (e.g. 429 ->
    ``"requests_blocked"``): such a call is not a failure in Locust, ``context["blocked"]`` holds the name.
    ``decoder(server_stamps)`` makes the accumulator of a streamed answer (another API's events; see
    ``answer.read_stream``). ``body``, when given, is ``json.dumps(payload)`` made by the caller (kept for a payload
    it sends again); else it is made here. The record is also in the event's ``context["llm"]``.
    """
    if not getattr(session, "llm_lean", False):
        lean_session(session)  # once per session: the same requests, less work per request (session.py)
        direct = direct_path(session)
        if direct is not None:  # else Locust's own path (direct.py)
            session.llm_direct = direct
    timeouts = timeouts or Timeouts()
    hdrs = _request_headers(stream, server_stamps, headers)
    if body is None:
        body = _dumps(payload)
    label = name or path
    rec = CallRecord(scenario=scenario, name=label, prompt=prompt, stream=stream, t_start=0.0, t_scheduled=scheduled)
    if tags:
        rec.tags = tuple(sorted(tags.items()))
    context: dict[str, Any] = {"scenario": scenario, "llm": rec}
    rec.t_start = t0 = _perf()
    # one timer for the call's bounds (CallWatch): the wait for the headers (a socket's own timeout is the pool's
    # on a new connection and whatever the last call left on a reused one, so the bound is set here, the same for
    # both), the whole call, and the idle bound of a stream's body
    watch = CallWatch(t0, timeouts)
    how = ReadPlan(stream, server_stamps, timeouts, inspect, parse_json, blocked, decoder, watch)
    _load[0] += 1  # open LLM calls of this process (the saturation guard's per-process limit)
    try:
        try:
            cm = _send(session, path, body, hdrs, label, context)
        except Exception as exc:  # raised out of the session before its request event: a failed call, not a crash
            _fire_unanswered(session, rec, _unsent_reason(exc), context, path)
            return rec
        with cm as resp:
            rec.t_headers = _perf()
            _answered(resp, rec, how, context, payload)
    except gevent.Timeout as exc:
        # a bound expired while sending or waiting for the headers, outside geventhttpclient's own handling
        # (which turns it into an error response): the with block never ran
        if exc is not watch.fired:
            raise
        _fire_unanswered(session, rec, watch.reason or TIMEOUT_HEADERS, context, path)
    finally:
        watch.close()
        _load[0] -= 1
        _load[1] += rec.content_events
    return rec


def _send(session: Any, path: str, body: str, hdrs: dict[str, str], label: str, context: dict[str, Any]) -> Any:
    """The session's request (its context manager): through the direct path when the session has one (the same
    request, the same request event: direct.py). ``allow_redirects=False``: secrets never follow a redirect
    (llm_users.common.target_binding)."""
    direct = getattr(session, "llm_direct", None)
    if direct is not None and direct.usable():
        return direct.request(path, body, hdrs, label, context)
    return session.request(
        "POST",
        path,
        data=body,
        headers=hdrs,
        name=label,
        stream=True,
        catch_response=True,
        context=context,
        allow_redirects=False,
    )


def _unsent_reason(exc: BaseException) -> str:
    """The reason of a request that raised out of the session: the error status it was handling when the
    exception came (geventhttpclient's status error, ``code``), else the exception's own reason."""
    code = getattr(exc.__context__, "code", None)
    if type(code) is int:
        return f"HTTP {code}"
    return exception_reason(exc, waiting_for="headers")


def _request_headers(stream: bool, server_stamps: bool, headers: dict[str, str] | None) -> dict[str, str]:
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
    return hdrs


def _answered(resp: Any, rec: CallRecord, how: ReadPlan, context: dict[str, Any], payload: Any) -> None:
    """The headers are in (``rec.t_headers``): read the answer, then set the request event's time, size, context
    and outcome (Locust fires it when the ``with`` ends)."""
    watch = how.watch
    assert watch is not None
    watch.idle_off()
    nbytes = 0
    try:
        nbytes, reason = read_answer(resp, rec, how, context, rec.t_headers or 0.0)
    except gevent.Timeout as exc:
        if exc is not watch.fired:
            raise
        reason = watch.reason or TIMEOUT_CALL
        release(resp)
    except BaseException as exc:
        if isinstance(exc, gevent.GreenletExit):
            raise
        reason = exception_reason(exc)
        release(resp)
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
    meta["response_time"] = (rec.t_end - rec.t_start) * 1000.0
    meta["response_length"] = nbytes
    merged = meta.get("context")
    if type(merged) is dict and merged is not context:
        # the session merged the User's context() into a copy of ours when it sent the request (Locust's
        # FastHttpSession.request, and the direct path alike): the User's keys stay, ours as they are now win
        merged.update(context)
        meta["context"] = merged
    else:
        meta["context"] = context
    if reason is None or context.get("blocked"):
        resp.success()
    else:
        resp.failure(reason)


def _fire_unanswered(session: Any, rec: CallRecord, reason: str, context: dict[str, Any], path: str) -> None:
    """A call cut by its bound before Locust's request ran to its end: fire its failed request event here."""
    rec.t_end = end = _perf()
    rec.ok = False
    rec.error = reason
    elapsed = end - rec.t_start
    user = getattr(session, "user", None)
    if user:  # the User's context() under ours, as Locust's FastHttpSession.request merges them
        context = {**user.context(), **context}
    session.request_event.fire(
        request_type="POST",
        name=rec.name,
        response_time=elapsed * 1000.0,
        response_length=0,
        response=None,
        context=context,
        exception=StreamError(reason),
        start_time=time.time() - elapsed,
        url=path,
    )
