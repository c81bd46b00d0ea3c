"""Custom Locust arguments of the sidecar suite (seed 002), and their validation into ``SidecarSettings``.

No Locust import. Each argument has its own environment variable and shows in the web UI; the shared
target knobs (``API_KEY``, ``LOADTEST_TOKEN`` (secret), ``IDLE_TIMEOUT``, ``CALL_TIMEOUT``) come from
``llm_users.common.options.add_target_arguments``. The target is ``OSIRIS_URL`` as in the seed, else ``--host``,
else the built-in mock's default address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llm_users.common.options import (
    CONF_DIR,
    DEFAULT_TARGET,
    TargetSettings,
    add_knob,
    add_target_arguments,
    base_url,
    number,
    target_settings,
)
from llm_users.common.target_binding import LocalSecrets
from llm_users.sidecar.config import SidecarConfig, load_sidecar_config
from llm_users.sidecar.prompts import TradePrompts, load_trade_prompts

__all__ = ["SidecarSettings", "add_sidecar_arguments", "sidecar_settings"]

DEFAULT_THINK_TIME_S = 1.0


def add_sidecar_arguments(parser: Any) -> None:
    add_target_arguments(parser)
    add_knob(
        parser,
        "--osiris-url",
        "OSIRIS_URL",
        "",
        f"Base URL of the sidecar; else --host; else the built-in mock {DEFAULT_TARGET}",
    )
    add_knob(
        parser,
        "--trade-prompts",
        "TRADE_PROMPTS",
        str(CONF_DIR / "prompts.json"),
        "JSON file of prompts for POST /propose_trade_adjustments/",
    )
    add_knob(
        parser,
        "--sidecar-conf",
        "SIDECAR_CONF",
        str(CONF_DIR / "sidecar.yaml"),
        "YAML settings: the /generate request and the server-side /metrics series",
    )
    add_knob(
        parser,
        "--think-time",
        "THINK_TIME",
        DEFAULT_THINK_TIME_S,
        "Seconds each User waits between iterations, as the seed's sleep(1); 0: none",
        type=float,
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
    think = number(opts.think_time, "--think-time/THINK_TIME", what="a number of seconds")
    base = base_url(opts.osiris_url or host or getattr(opts, "host", None) or DEFAULT_TARGET, "--osiris-url/OSIRIS_URL")
    config = load_sidecar_config(opts.sidecar_conf)
    prompts = load_trade_prompts(opts.trade_prompts)
    return SidecarSettings(target_settings(opts, base, local), base, think, config, prompts)
