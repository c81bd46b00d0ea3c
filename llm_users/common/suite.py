"""What every suite's ``install_*(events)`` does first (Locust glue, no Locust import needed).

The security rules before anything else (the suite reads the secrets as it binds them), then the suite's knobs on
Locust's command line, then the suite's start-up once Locust has parsed the options.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llm_users.common.security import install_security

__all__ = ["install_suite"]


def install_suite(
    events: Any, add_arguments: Callable[[Any], None], init: Callable[[Any, Any], None] | None = None
) -> None:
    """Register ``install_security``, then ``add_arguments(parser)`` and ``init(environment, parsed_options)``
    on Locust's ``events`` (``init`` is not called when there are no parsed options, e.g. a library use; a suite
    without ``init`` registers its own listeners)."""
    install_security(events)

    def args(parser: Any, **_kw: Any) -> None:
        add_arguments(parser)

    events.init_command_line_parser.add_listener(args)
    if init is None:
        return
    start = init

    def start_up(environment: Any, **_kw: Any) -> None:
        if environment.parsed_options is not None:
            start(environment, environment.parsed_options)

    events.init.add_listener(start_up)
