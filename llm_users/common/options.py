"""Custom Locust arguments of the chat suite, named after seed 003's environment knobs.

Each argument has its own environment variable (Locust adds no ``LOCUST_`` variable for custom arguments), is
shown in the web UI, and the secrets (``API_KEY``, ``LOADTEST_TOKEN``) are masked there. ``chat_settings`` turns
the parsed options into validated settings; an error names the flag and its variable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from llm_users.client.apis import API_NAMES, Api, get_api
from llm_users.common import target_binding
from llm_users.common.prompts import PromptError, PromptSet, load_dataset, load_prompt_sets
from llm_users.pacing.arrival import KINDS

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


def add_target_arguments(parser: Any) -> None:
    """The knobs every suite shares: the secrets and the timeouts."""
    parser.add_argument(
        "--api-key",
        env_var="API_KEY",
        default="",
        is_secret=True,
        help="Bearer key: sends 'Authorization: Bearer <API_KEY>' (env API_KEY)",
    )
    parser.add_argument(
        "--loadtest-token",
        env_var="LOADTEST_TOKEN",
        default="",
        is_secret=True,
        help="Sends 'X-LoadTest-Token: <LOADTEST_TOKEN>', e.g. a WAF bypass (env LOADTEST_TOKEN)",
    )
    parser.add_argument(
        "--idle-timeout",
        env_var="IDLE_TIMEOUT",
        type=float,
        default=60.0,
        help="Seconds without a byte before an LLM call fails with 'timeout' (env IDLE_TIMEOUT)",
    )
    parser.add_argument(
        "--call-timeout",
        env_var="CALL_TIMEOUT",
        type=float,
        default=600.0,
        help="Seconds an LLM call may take in all before it fails with 'timeout' (env CALL_TIMEOUT)",
    )
    parser.add_argument(
        "--server-stamps",
        env_var="SERVER_STAMPS",
        type=str,
        default="false",
        help="true: ask the built-in mock for send stamps and record the client's reading delay "
        "(llm_read_delay_ms) (env SERVER_STAMPS)",
    )


def add_chat_arguments(parser: Any) -> None:
    """Seed 003's knobs plus the suite's own (arrival kind, prompt variants, dataset, max tokens)."""
    add_target_arguments(parser)
    parser.add_argument(
        "--base",
        env_var="BASE",
        default="",
        help=f"Base URL of the API; else --host; else the built-in mock {DEFAULT_TARGET} (env BASE)",
    )
    parser.add_argument("--model", env_var="MODEL", default="mock-llm", help="Model name sent (env MODEL)")
    add_api_argument(parser)
    parser.add_argument(
        "--nonstream-rps",
        env_var="NONSTREAM_RPS",
        type=float,
        default=2.0,
        help="Arrival rate of non-stream calls, req/s for the whole test; 0 disables (env NONSTREAM_RPS)",
    )
    parser.add_argument(
        "--stream-rps",
        env_var="STREAM_RPS",
        type=float,
        default=1.0,
        help="Arrival rate of streamed calls, req/s for the whole test; 0 disables (env STREAM_RPS)",
    )
    parser.add_argument(
        "--duration-min",
        env_var="DURATION_MIN",
        type=float,
        default=5.0,
        help="Test length in minutes when --run-time is not given (env DURATION_MIN)",
    )
    parser.add_argument(
        "--arrival",
        env_var="ARRIVAL",
        default="constant",
        help=f"Arrival process: {' or '.join(KINDS)} (env ARRIVAL)",
    )
    parser.add_argument(
        "--prompts",
        env_var="PROMPTS",
        default="short,cot",
        help="Prompt variants, comma-separated names from --prompts-file (env PROMPTS)",
    )
    parser.add_argument(
        "--prompts-file",
        env_var="PROMPTS_FILE",
        default=str(CONF_DIR / "prompts.yaml"),
        help="YAML file of prompt variants (env PROMPTS_FILE)",
    )
    parser.add_argument(
        "--dataset",
        env_var="DATASET",
        default="",
        help="JSON/JSONL/ShareGPT file of prompts, sent as variant 'dataset' (env DATASET)",
    )
    parser.add_argument(
        "--max-tokens",
        env_var="MAX_TOKENS",
        type=int,
        default=0,
        help="max_tokens of every call; 0 = each variant's own (env MAX_TOKENS)",
    )
    parser.add_argument(
        "--smoke",
        env_var="SMOKE",
        type=str,
        default="true",
        help="true: GET /v1/version and /v1/models once per process at start (env SMOKE)",
    )


def add_api_argument(parser: Any) -> None:
    """``--api`` / ``API``: which API the LLM calls use (``llm_users.client.apis``)."""
    parser.add_argument(
        "--api",
        env_var="API",
        default="chat",
        help=f"API of the LLM calls: {', '.join(API_NAMES)} (env API)",
    )


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


def _rate(value: Any, flag: str) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"{flag}: expected a number of requests per second, got {value!r}") from None
    if not math.isfinite(rate) or rate < 0:
        raise OptionError(f"{flag}: expected a number >= 0, got {value!r}")
    return rate


def _positive(value: Any, flag: str) -> float:
    try:
        num = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"{flag}: expected a number, got {value!r}") from None
    if not math.isfinite(num) or num <= 0:
        raise OptionError(f"{flag}: expected a number > 0, got {value!r}")
    return num


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
        idle_timeout_s=_positive(getattr(opts, "idle_timeout", 60.0), "--idle-timeout/IDLE_TIMEOUT"),
        call_timeout_s=_positive(getattr(opts, "call_timeout", 600.0), "--call-timeout/CALL_TIMEOUT"),
        server_stamps=as_bool(getattr(opts, "server_stamps", False), "--server-stamps/SERVER_STAMPS"),
        origin=target_binding.binding_origin(base, bound, local),
        dropped=() if ok else tuple(k for k in TARGET_SECRETS if source.get(k)),
    )


@dataclass
class ChatSettings:
    target: TargetSettings
    base: str
    model: str
    nonstream_rps: float
    stream_rps: float
    duration_s: float
    arrival: str
    prompt_sets: dict[str, PromptSet]
    variants: tuple[str, ...]
    max_tokens: int
    smoke: bool
    api: Api = field(default_factory=lambda: get_api("chat"))


def chat_settings(opts: Any, local: target_binding.LocalSecrets | None = None) -> ChatSettings:
    """Validate the chat knobs; raise OptionError naming the flag, or PromptError naming the file."""
    arrival = str(opts.arrival).strip().lower()
    if arrival not in KINDS:
        raise OptionError(f"--arrival/ARRIVAL: expected one of {', '.join(KINDS)}, got {opts.arrival!r}")
    duration_min = _positive(opts.duration_min, "--duration-min/DURATION_MIN")
    try:
        max_tokens = int(opts.max_tokens)
    except (TypeError, ValueError):
        raise OptionError(f"--max-tokens/MAX_TOKENS: expected an integer, got {opts.max_tokens!r}") from None
    if max_tokens < 0:
        raise OptionError(f"--max-tokens/MAX_TOKENS: expected an integer >= 0, got {max_tokens}")
    sets = load_prompt_sets(opts.prompts_file)
    variants = tuple(v.strip() for v in str(opts.prompts).split(",") if v.strip())
    if opts.dataset:
        sets["dataset"] = load_dataset(opts.dataset)
        if str(opts.prompts) == "short,cot":  # the default: a dataset replaces the built-in variants
            variants = ("dataset",)
    if not variants:
        raise OptionError("--prompts/PROMPTS: expected at least one prompt variant name")
    for v in variants:
        if v not in sets:
            raise OptionError(
                f"--prompts/PROMPTS: unknown prompt variant {v!r} (in {opts.prompts_file}: {', '.join(sorted(sets))})"
            )
    api = api_setting(opts)
    stream_rps = _rate(opts.stream_rps, "--stream-rps/STREAM_RPS")
    if not api.streams and stream_rps > 0:
        raise OptionError(
            f"--stream-rps/STREAM_RPS: the {api.name} API does not stream; set it to 0 and give the rate "
            "with --nonstream-rps/NONSTREAM_RPS"
        )
    base = base_url(opts.base or getattr(opts, "host", None) or DEFAULT_TARGET, "--base/BASE")
    return ChatSettings(
        target=target_settings(opts, base, local),
        base=base,
        model=str(opts.model),
        nonstream_rps=_rate(opts.nonstream_rps, "--nonstream-rps/NONSTREAM_RPS"),
        stream_rps=stream_rps,
        duration_s=duration_min * 60.0,
        arrival=arrival,
        prompt_sets=sets,
        variants=variants,
        max_tokens=max_tokens,
        smoke=as_bool(opts.smoke, "--smoke/SMOKE"),
        api=api,
    )


__all__ = [
    "ChatSettings",
    "OptionError",
    "PromptError",
    "TargetSettings",
    "add_chat_arguments",
    "chat_settings",
]
