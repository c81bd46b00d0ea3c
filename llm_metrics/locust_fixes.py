"""Fixes of Locust's own hub stalls, installed by ``hooks.install_metrics`` (nothing happens at import).

``cache_default_args()``: a worker handling the master's ``spawn`` message (at the start, and at every change
of the user count: each step of a load shape or of the capacity search) filters the master's options with
``k not in argument_parser.default_args_dict()`` inside a comprehension, so Locust builds and parses a whole
argument parser once per option: with this suite's ~90 options the hub was blocked 150-650 ms per spawn
message (gevent's monitor thread showed the stack; ``client_loop_lag_ms`` p99 150-400 ms on a capacity search
with two workers, bench/RESULTS.md). Locust's defaults do not change while a process runs, so they are
computed once and a copy handed out.

``tolerate_undecodable_error_bodies()``: for an answer with an error status, geventhttpclient's ``UserAgent.urlopen``
builds a debug text of the exchange (``_conversation_str``, kept on the exception and read by nothing) that decodes
the answer's body as strict UTF-8: a server answering 500 with a body that is not UTF-8 (a binary page, a cut
multi-byte character) raised ``UnicodeDecodeError`` out of the session's request into the User's task instead of
a failed request (every suite's requests, the LLM calls, smoke and health checks alike). The text is now made with
the body decoded as Latin-1 when UTF-8 fails (every byte decodes), so the request fails as ``HTTP <status>``.

``install_gc_tuning(events)``: the garbage collector's pauses at 1,000 open streams in one process (young
collections up to 40 ms, full ones up to 120 ms, 1.7 s in all over a 24 s run, timed with ``gc.callbacks``)
stamped every chunk that arrived meanwhile late; the tuning makes them rare (measured in bench/RESULTS.md).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "GC_THRESHOLD",
    "cache_default_args",
    "install_clock_refresh",
    "install_gc_tuning",
    "tolerate_undecodable_error_bodies",
]


def install_clock_refresh(events: Any) -> None:
    """Locust arms ``-t/--run-time`` with ``gevent.spawn_later`` after ``init``, on the loop's cached clock, which
    is stale by the whole start-up (imports, config files) until the loop first runs: ``-t 6s`` stopped 0.43 s
    early on a quiet machine, and on a loaded one, where the start-up took longer than ``-t``, the run stopped
    55 ms after it began, before any request (seen with ``-t 3s`` while the two cores were busy). Refreshing the
    clock at ``init`` makes every suite's run last ``-t`` from its start."""

    @events.init.add_listener
    def _refresh(**_kw: Any) -> None:
        import gevent

        gevent.get_hub().loop.update_now()


def cache_default_args() -> None:
    """Make ``locust.argument_parser.default_args_dict`` compute Locust's defaults once per process."""
    from locust import argument_parser

    current = argument_parser.default_args_dict
    if getattr(current, "_llm_cached", False):
        return
    cache: dict[str, Any] = {}

    def default_args_dict() -> dict[str, Any]:
        if not cache:
            cache.update(current())
        return dict(cache)

    default_args_dict._llm_cached = True  # type: ignore[attr-defined]
    argument_parser.default_args_dict = default_args_dict


def tolerate_undecodable_error_bodies() -> None:
    """Make geventhttpclient's ``UserAgent._conversation_str`` fall back to Latin-1 when the body is not UTF-8."""
    from geventhttpclient.useragent import UserAgent

    current = UserAgent.__dict__["_conversation_str"].__func__
    if getattr(current, "_llm_tolerant", False):
        return

    def _conversation_str(cls: Any, url: Any, resp: Any, payload: Any = None, encoding: str = "utf-8") -> str:
        try:
            return str(current(cls, url, resp, payload=payload, encoding=encoding))
        except UnicodeDecodeError:
            return str(current(cls, url, resp, payload=payload, encoding="latin-1"))

    _conversation_str._llm_tolerant = True  # type: ignore[attr-defined]
    UserAgent._conversation_str = classmethod(_conversation_str)  # type: ignore[method-assign,assignment]


GC_THRESHOLD = (20_000, 10, 10)
"""Python's default (700, 10, 10) ran ~20 young collections a second at 1,000 open streams, and a full one
every few seconds that scanned every User, socket and histogram of the run for up to 120 ms (bench/RESULTS.md)."""


def install_gc_tuning(events: Any) -> None:
    """In every process that runs Users: fewer young collections while a test runs, and the objects alive once
    the Users are spawned (Users, sockets, suite state) frozen out of the full collections (``gc.freeze``)."""
    import gc

    from locust.runners import MasterRunner

    @events.test_start.add_listener
    def _tune(environment: Any, **_kw: Any) -> None:
        if not isinstance(environment.runner, MasterRunner):
            gc.set_threshold(*GC_THRESHOLD)

    @events.spawning_complete.add_listener
    def _freeze(**_kw: Any) -> None:
        gc.freeze()  # O(1): moves what is tracked now to a generation no collection scans
