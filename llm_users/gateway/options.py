"""Custom Locust arguments of the gateway suite, named after seed 000's knobs, and the settings they make.

``BASE_URL`` (``--base-url``): the gateway; else Locust's ``--host``; else the built-in mock
``http://127.0.0.1:8000``. ``API_KEY`` (``--api-key``, secret): the key of the proxied LLM calls. Plus the
login password (``--admin-password``/``ADMIN_PASSWORD``, secret; wins over ``auth.password`` of the
configuration file), the configuration file (``--gateway-conf``/``GATEWAY_CONF``), the API of the proxied
call (``--api``/``API``, see ``apis.proxied_call``) and the knobs every suite shares (``LOADTEST_TOKEN``,
``IDLE_TIMEOUT``, ``CALL_TIMEOUT``, ``SERVER_STAMPS``; ``llm_users.common.options``).

``gateway_settings(opts)`` validates them and loads the configuration file; errors name the flag and its
variable, or the file and the key path. No Locust import here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_users.client.apis import Api, get_api
from llm_users.common.options import (
    DEFAULT_TARGET,
    OptionError,
    TargetSettings,
    add_api_argument,
    add_knob,
    add_target_arguments,
    api_setting,
    target_settings,
)
from llm_users.common.options import base_url as check_base_url
from llm_users.common.target_binding import LocalSecrets, allowed
from llm_users.gateway.config import DEFAULT_CONF, GatewayConfig, GatewayConfigError, load_gateway_config

__all__ = [
    "GatewayConfigError",
    "GatewaySettings",
    "OptionError",
    "add_gateway_arguments",
    "gateway_settings",
]

ROOT = Path(__file__).resolve().parents[2]


def add_gateway_arguments(parser: Any) -> None:
    add_target_arguments(parser)
    add_api_argument(parser)
    add_knob(
        parser,
        "--base-url",
        "BASE_URL",
        "",
        f"Base URL of the gateway; else --host; else the built-in mock {DEFAULT_TARGET}",
    )
    add_knob(
        parser,
        "--admin-password",
        "ADMIN_PASSWORD",
        "",
        "Password of the login (POST /auth/login); empty: auth.password of --gateway-conf",
        is_secret=True,
    )
    add_knob(
        parser,
        "--gateway-conf",
        "GATEWAY_CONF",
        str(DEFAULT_CONF.relative_to(ROOT)),
        "YAML file of the gateway suite: endpoints, payloads, credentials, task weights, wait time, "
        "metric headers, statuses",
    )


@dataclass(frozen=True)
class GatewaySettings:
    target: TargetSettings
    base_url: str
    conf: GatewayConfig
    password: str
    api: Api = field(default_factory=lambda: get_api("chat"))

    def secrets(self) -> list[str]:
        """Every secret to mask: the target's, the login password, and the password of the conf file (masked
        even when the password sent is another or none)."""
        return [s for s in (*self.target.secrets(), self.password, self.conf.auth.password) if s]


def _conf_path(value: str) -> Path:
    p = Path(value)
    if not p.is_absolute() and not p.exists() and (ROOT / p).exists():
        return ROOT / p
    return p


def gateway_settings(opts: Any, local: LocalSecrets | None = None) -> GatewaySettings:
    """Validate the knobs and load the configuration: OptionError (flag) or GatewayConfigError (file, key)."""
    base = check_base_url(
        getattr(opts, "base_url", "") or getattr(opts, "host", None) or DEFAULT_TARGET, "--base-url/BASE_URL"
    )
    conf_opt = str(getattr(opts, "gateway_conf", "") or DEFAULT_CONF)
    conf = load_gateway_config(_conf_path(conf_opt))
    given = local.values.get("admin_password", "") if local is not None else getattr(opts, "admin_password", "")
    password = str(given or "")
    if not password:  # the conf file's password belongs to the start-up target, even when the UI re-binds
        startup = str(getattr(opts, "secrets_startup_origin", "") or "")
        password = conf.auth.password if allowed(base, startup, local) else ""
    target = target_settings(opts, base, local)
    if not allowed(base, str(getattr(opts, "secrets_origin", "") or ""), local):
        password = ""  # bound to another origin, like the target's secrets
    return GatewaySettings(target=target, base_url=base, conf=conf, password=password, api=api_setting(opts))
