"""The bounds of one LLM call, in time and size, and the short reason a call fails.

Time (``Timeouts``, per call; the suites set them from ``IDLE_TIMEOUT`` and ``CALL_TIMEOUT``), with their
reasons: ``timeout (headers)`` no response headers within ``idle_s`` of the send (a non-streamed answer sends
nothing before it is complete, so its whole generation must fit), ``timeout (idle)`` no byte for ``idle_s``
while the body arrives, ``timeout (call)`` the whole call over ``total_s``. ``CallWatch`` keeps the three on one
timer. Size: a streamed answer that sends ``MAX_EVENT_BYTES`` (1 MiB) without completing an SSE event fails as
``oversized SSE event``, a non-streamed body over ``MAX_BODY_BYTES`` (8 MiB) as ``oversized body``
(``TooLarge``). ``exception_reason`` names any other failure (refused, reset, cut, ...). No Locust import.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

import gevent
from gevent import getcurrent
from geventhttpclient.response import HTTPParseError
from geventhttpclient.useragent import EmptyResponse

from llm_users.client.sse import StreamCut

_perf = time.perf_counter
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


class TooLarge(Exception):
    """An answer over the size limits; the message is the failure reason."""


_GRACE_S = 0.002


class CallWatch:
    """The call's three bounds (headers, idle, call) on one libev timer, instead of a ``gevent.Timeout`` for the
    headers, one for the call and one per socket wait of the body (gevent arms a Timeout and builds a
    ``socket.timeout`` for every wait of a socket that has a timeout; bench/RESULTS.md, issue 19).

    The timer is armed for the earliest deadline: ``t0 + idle_s`` (headers), ``t0 + total_s`` (call) and, once a
    stream's body is read with the socket's timeout off, ``last + idle_s``, where ``last`` is the end of the last
    network read (``answer.Counted`` stamps it). When it fires before a deadline has passed (bytes came meanwhile) it is
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


def exception_reason(exc: BaseException, watch: CallWatch | None = None, waiting_for: str = "bytes") -> str:
    """A short reason for an exception; ``waiting_for`` is ``"headers"`` when no answer had come yet."""
    original = getattr(exc, "original", None)  # geventhttpclient's RetriesExceeded wraps the real error
    if isinstance(original, BaseException):
        exc = original
    if watch is not None and watch.fired is not None and exc is watch.fired:
        return watch.reason or TIMEOUT_CALL
    if isinstance(exc, (TimeoutError, socket.timeout, gevent.Timeout)):
        return TIMEOUT_HEADERS if waiting_for == "headers" else TIMEOUT_IDLE
    if isinstance(exc, TooLarge):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return "invalid UTF-8 in SSE stream"
    if was_reset(exc):
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


def was_reset(exc: BaseException) -> bool:
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
    return exception_reason(error, waiting_for="headers") if error is not None else "no response"


def socket_timeout(user_timeout: float, idle_s: float) -> float:
    """The connections' own timeout for a User making LLM calls: Locust's (``network_timeout``, 60 s), raised
    to the idle timeout when that is longer, so that a new connection never cuts the wait for an answer first."""
    return max(user_timeout, idle_s)
