"""Custom Locust arguments of the sidecar suite (seed 002), and their validation into ``SidecarSettings``.

No Locust import. Each argument has its own environment variable and shows in the web UI; the shared
target knobs (``API_KEY``, ``LOADTEST_TOKEN`` (secret), ``IDLE_TIMEOUT``, ``CALL_TIMEOUT``) come from
``llm_users.common.options.add_target_arguments``. The target is ``OSIRIS_URL`` as in the seed, else ``--host``,
else the built-in mock's default address.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from llm_users.common.options import (
    CONF_DIR,
    DEFAULT_TARGET,
    OptionError,
    TargetSettings,
    add_target_arguments,
    base_url,
    target_settings,
)
from llm_users.common.target_binding import LocalSecrets
from llm_users.sidecar.config import SidecarConfig, load_sidecar_config
from llm_users.sidecar.prompts import TradePrompts, load_trade_prompts

__all__ = ["SidecarSettings", "add_sidecar_arguments", "sidecar_settings"]

DEFAULT_THINK_TIME_S = 1.0


def add_sidecar_arguments(parser: Any) -> None:
    add_target_arguments(parser)
    parser.add_argument(
        "--osiris-url",
        env_var="OSIRIS_URL",
        default="",
        help=f"Base URL of the sidecar; else --host; else the built-in mock {DEFAULT_TARGET} (env OSIRIS_URL)",
    )
    parser.add_argument(
        "--trade-prompts",
        env_var="TRADE_PROMPTS",
        default=str(CONF_DIR / "prompts.json"),
        help="JSON file of prompts for POST /propose_trade_adjustments/ (env TRADE_PROMPTS)",
    )
    parser.add_argument(
        "--sidecar-conf",
        env_var="SIDECAR_CONF",
        default=str(CONF_DIR / "sidecar.yaml"),
        help="YAML settings: the /generate request and the server-side /metrics series (env SIDECAR_CONF)",
    )
    parser.add_argument(
        "--think-time",
        env_var="THINK_TIME",
        type=float,
        default=DEFAULT_THINK_TIME_S,
        help="Seconds each User waits between iterations, as the seed's sleep(1); 0: none (env THINK_TIME)",
    )


@dataclass
class SidecarSettings:
    target: TargetSettings
    base: str
    think_time_s: float
    config: SidecarConfig
    trade_prompts: TradePrompts


def sidecar_settings(opts: Any, host: str | None = None, local: LocalSecrets | None = None) -> SidecarSettings:
    """Validate the knobs and read both files; raise OptionError naming the flag, or the file's own error
    (``SidecarConfigError``, ``PromptFileError``) naming the file and the key or entry."""
    try:
        think = float(opts.think_time)
    except (TypeError, ValueError):
        raise OptionError(f"--think-time/THINK_TIME: expected a number of seconds, got {opts.think_time!r}") from None
    if not math.isfinite(think) or think < 0:
        raise OptionError(f"--think-time/THINK_TIME: expected a number of seconds >= 0, got {opts.think_time!r}")
    base = base_url(opts.osiris_url or host or getattr(opts, "host", None) or DEFAULT_TARGET, "--osiris-url/OSIRIS_URL")
    config = load_sidecar_config(opts.sidecar_conf)
    prompts = load_trade_prompts(opts.trade_prompts)
    return SidecarSettings(target_settings(opts, base, local), base, think, config, prompts)
