"""Fixes of Locust's own hub stalls, installed by ``hooks.install_metrics`` (nothing happens at import).

``cache_default_args()``: a worker handling the master's ``spawn`` message (at the start, and at every change
of the user count: each step of a load shape or of the capacity search) filters the master's options with
``k not in argument_parser.default_args_dict()`` inside a comprehension, so Locust builds and parses a whole
argument parser once per option: with this suite's ~90 options the hub was blocked 150-650 ms per spawn
message (gevent's monitor thread showed the stack; ``client_loop_lag_ms`` p99 150-400 ms on a capacity search
with two workers, bench/RESULTS.md). Locust's defaults do not change while a process runs, so they are
computed once and a copy handed out.
"""

from __future__ import annotations

from typing import Any

__all__ = ["cache_default_args"]


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
