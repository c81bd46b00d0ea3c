"""The knobs every suite shares and the checks of a knob's value (no Locust import).

Each knob is a custom Locust argument with its own environment variable (Locust adds no ``LOCUST_`` variable for
custom arguments), shown in the web UI; the secrets (``API_KEY``, ``LOADTEST_TOKEN``) are masked there. Here:
the target's secrets and timeouts (``add_target_arguments``, ``target_settings``), the LLM target of the chat
and workload suites (``--base``, ``--model``, ``--api``), the arrival kind, and the value checks whose errors
name the flag and its variable (``--rate/RATE: expected a number >= 0, got -1``); ``settings_or_exit`` (at
start-up: exit 2) and ``settings_or_quit`` (at a test start: stop the run) turn a suite's bad settings into a
logged ``SUITE suite: message``. Each suite's own knobs are in its package (``llm_users.chat.options``,
``llm_users.workload.options``, ...).
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from llm_users.client.apis import API_NAMES, Api, get_api
from llm_users.common import target_binding
from llm_users.pacing.arrival import KINDS

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_TARGET = "http://127.0.0.1:8000"
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


class OptionError(ValueError):
    """A knob with a value that cannot be used; the message names the flag and its variable."""


def base_url(value: Any, knob: str) -> str:
    """A suite's target URL, checked (``knob`` names the flag and variable in the error): an http:// or
    https:// URL with a host and, if given, a valid port; without the trailing slash."""
    base = str(value).strip()
    if not base.startswith(("http://", "https://")):
        raise OptionError(f"{knob}: expected an http:// or https:// URL, got {base!r}")
    try:
        parts = urlsplit(base)
        port = parts.port  # ValueError when not a number in 0-65535
    except ValueError as exc:
        raise OptionError(f"{knob}: not a valid URL ({exc}), got {base!r}") from None
    if not parts.hostname or any(c.isspace() for c in base):
        raise OptionError(f"{knob}: expected a host name in the URL, got {base!r}")
    if port == 0:
        raise OptionError(f"{knob}: port 0 cannot be connected to, got {base!r}")
    return base.rstrip("/")


def add_knob(parser: Any, flag: str, env: str, default: Any, help: str, **kw: Any) -> None:
    """One knob: ``flag`` with its own environment variable ``env``, named at the end of its help."""
    parser.add_argument(flag, env_var=env, default=default, help=f"{help} (env {env})", **kw)


def add_target_arguments(parser: Any) -> None:
    """The knobs every suite shares: the secrets and the timeouts."""
    add_knob(parser, "--api-key", "API_KEY", "", "Bearer key: sends 'Authorization: Bearer <API_KEY>'", is_secret=True)
    add_knob(
        parser,
        "--loadtest-token",
        "LOADTEST_TOKEN",
        "",
        "Sends 'X-LoadTest-Token: <LOADTEST_TOKEN>', e.g. a WAF bypass",
        is_secret=True,
    )
    add_knob(
        parser,
        "--idle-timeout",
        "IDLE_TIMEOUT",
        60.0,
        "Seconds without a byte before an LLM call fails with 'timeout'",
        type=float,
    )
    add_knob(
        parser,
        "--call-timeout",
        "CALL_TIMEOUT",
        600.0,
        "Seconds an LLM call may take in all before it fails with 'timeout'",
        type=float,
    )
    add_knob(
        parser,
        "--server-stamps",
        "SERVER_STAMPS",
        "false",
        "true: ask the built-in mock for send stamps and record the client's reading delay (llm_read_delay_ms)",
        type=str,
    )


def add_llm_target_arguments(parser: Any) -> None:
    """The shared knobs plus the LLM target of the chat and workload suites: ``--base``, ``--model``, ``--api``."""
    add_target_arguments(parser)
    add_knob(parser, "--base", "BASE", "", f"Base URL of the API; else --host; else the built-in mock {DEFAULT_TARGET}")
    add_knob(parser, "--model", "MODEL", "mock-llm", "Model name sent")
    add_api_argument(parser)


def llm_base(opts: Any) -> str:
    """The checked ``--base``; else Locust's ``--host``; else the built-in mock's address."""
    return base_url(opts.base or getattr(opts, "host", None) or DEFAULT_TARGET, "--base/BASE")


def arrival_setting(opts: Any) -> str:
    """The checked ``--arrival`` (an arrival kind of ``llm_users.pacing.arrival``)."""
    arrival = str(opts.arrival).strip().lower()
    if arrival not in KINDS:
        raise OptionError(f"--arrival/ARRIVAL: expected one of {', '.join(KINDS)}, got {opts.arrival!r}")
    return arrival


def add_api_argument(parser: Any) -> None:
    """``--api`` / ``API``: which API the LLM calls use (``llm_users.client.apis``)."""
    add_knob(parser, "--api", "API", "chat", f"API of the LLM calls: {', '.join(API_NAMES)}")


def api_setting(opts: Any) -> Api:
    """The validated ``--api``; OptionError naming the flag."""
    try:
        return get_api(getattr(opts, "api", "chat") or "chat")
    except ValueError as exc:
        raise OptionError(str(exc)) from None


def as_bool(value: Any, flag: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise OptionError(f"{flag}: expected true or false, got {value!r}")


def number(
    value: Any, flag: str, *, minimum: float = 0.0, strict: bool = False, what: str = "a number", ranged: str = ""
) -> float:
    """A finite number ``>= minimum`` (``> minimum`` when ``strict``) from a knob's value; ``OptionError`` saying
    ``expected WHAT`` when it is not a number, ``expected RANGED >= MINIMUM`` (``ranged`` defaults to ``what``)
    when it is out of range."""
    try:
        num = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"{flag}: expected {what}, got {value!r}") from None
    if not math.isfinite(num) or num < minimum or (strict and num == minimum):
        raise OptionError(f"{flag}: expected {ranged or what} {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return num


def integer(value: Any, flag: str, *, minimum: int = 0, what: str = "an integer") -> int:
    """An integer ``>= minimum`` from a knob's value; ``OptionError`` saying ``expected WHAT`` when it is not one."""
    try:
        num = int(value)
    except (TypeError, ValueError):
        raise OptionError(f"{flag}: expected {what}, got {value!r}") from None
    if num < minimum:
        raise OptionError(f"{flag}: expected an integer >= {minimum}, got {value!r}")
    return num


def rate(value: Any, flag: str) -> float:
    """Requests per second, ``>= 0``."""
    return number(value, flag, what="a number of requests per second", ranged="a number")


def positive(value: Any, flag: str) -> float:
    return number(value, flag, strict=True)


@dataclass
class TargetSettings:
    api_key: str
    loadtest_token: str
    idle_timeout_s: float
    call_timeout_s: float
    server_stamps: bool
    origin: str = ""
    """The origin (``scheme://host:port``) the secrets are bound to (``llm_users.common.target_binding``)."""
    dropped: tuple[str, ...] = ()
    """The secrets not sent in this run: the target is not the origin they are bound to."""

    def auth_headers(self) -> dict[str, str]:
        headers = {}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if self.loadtest_token:
            headers["X-LoadTest-Token"] = self.loadtest_token
        return headers

    def headers_for(self, url: str) -> dict[str, str]:
        """``auth_headers`` when ``url`` is on the origin the secrets are bound to; none otherwise."""
        return self.auth_headers() if self.origin and target_binding.origin(url) == self.origin else {}

    def secrets(self) -> list[str]:
        return [s for s in (self.api_key, self.loadtest_token) if s]


TARGET_SECRETS = ("api_key", "loadtest_token")


def target_settings(opts: Any, base: str, local: target_binding.LocalSecrets | None = None) -> TargetSettings:
    """The shared knobs; the secrets only when ``base`` is the origin they are bound to (``--secrets-origin``,
    or in the secrets-on-workers mode the worker's own, ``local``), else dropped for this run."""
    source = local.values if local is not None else {k: str(getattr(opts, k, "") or "") for k in TARGET_SECRETS}
    bound = str(getattr(opts, "secrets_origin", "") or "")
    ok = target_binding.allowed(base, bound, local)
    values = {k: (source.get(k, "") if ok else "") for k in TARGET_SECRETS}
    return TargetSettings(
        api_key=values["api_key"],
        loadtest_token=values["loadtest_token"],
        idle_timeout_s=positive(getattr(opts, "idle_timeout", 60.0), "--idle-timeout/IDLE_TIMEOUT"),
        call_timeout_s=positive(getattr(opts, "call_timeout", 600.0), "--call-timeout/CALL_TIMEOUT"),
        server_stamps=as_bool(getattr(opts, "server_stamps", False), "--server-stamps/SERVER_STAMPS"),
        origin=target_binding.binding_origin(base, bound, local),
        dropped=() if ok else tuple(k for k in TARGET_SECRETS if source.get(k)),
    )


def settings_or_exit(suite: str, read: Callable[[], T], errors: tuple[type[Exception], ...]) -> T:
    """``read()`` at start-up: a bad knob or file (one of ``errors``) is logged as ``SUITE suite: message`` and
    stops the run with exit code 2."""
    try:
        return read()
    except errors as exc:
        log.error("%s suite: %s", suite, exc)
        sys.exit(2)


def settings_or_quit(
    environment: Any, suite: str, read: Callable[[], T], errors: tuple[type[Exception], ...]
) -> T | None:
    """``read()`` at test start (the web UI may have changed the knobs since start-up): a bad value (one of
    ``errors``) is logged as ``SUITE suite: message; stopping`` and stops the run (``None``)."""
    try:
        return read()
    except errors as exc:
        log.error("%s suite: %s; stopping", suite, exc)
        environment.runner.quit()
        return None


__all__ = [
    "CONF_DIR",
    "DEFAULT_TARGET",
    "OptionError",
    "TargetSettings",
    "add_api_argument",
    "add_knob",
    "add_llm_target_arguments",
    "add_target_arguments",
    "api_setting",
    "arrival_setting",
    "as_bool",
    "base_url",
    "integer",
    "llm_base",
    "number",
    "positive",
    "rate",
    "settings_or_exit",
    "settings_or_quit",
    "target_settings",
]
