"""The gateway suite's configuration file (``conf/gateway.yaml``): endpoints, payloads, credentials, task
weights, wait time, metric headers, status classes and recovery bounds.

Every key is optional (the defaults fit the built-in mock, ``mock_llm``); ``conf/gateway.yaml`` documents
them. Validation is strict: an unknown key, a duplicate key or a value of the wrong type is a
``GatewayConfigError`` naming the file and the key path and saying what was expected, e.g.
``conf/gateway.yaml: tasks.health: expected a non-negative integer weight, got -1``.

Body templates (``auth.login.body``, ``auth.refresh.body``) are JSON-like values in which the strings
``${username}``, ``${password}`` and ``${refresh_token}`` are replaced when sent (``render``).
No Locust import here.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_metrics.engine.config import ValueReader, load_yaml_file, show
from llm_users.gateway.headers import GATEWAY_PRESETS, POLICY_PRESETS, TimingSource, parse_sources
from llm_users.gateway.recovery import RecoveryParams
from llm_users.gateway.status import StatusPolicy, parse_statuses

__all__ = [
    "DEFAULT_CONF",
    "TASKS",
    "AuthConfig",
    "GatewayConfig",
    "GatewayConfigError",
    "load_gateway_config",
    "lookup",
    "parse_gateway_config",
    "render",
]

DEFAULT_CONF = Path(__file__).resolve().parents[2] / "conf" / "gateway.yaml"
TASKS = ("llm", "llm_stream", "health", "admin")
"""The User's tasks: proxied LLM call (non-stream, stream), GET health, an admin endpoint."""
_PLACEHOLDER = re.compile(r"\$\{(username|password|refresh_token)\}")


class GatewayConfigError(ValueError):
    """A gateway configuration that cannot be used; the message names the file and the key path."""


@dataclass(frozen=True)
class AuthConfig:
    enabled: bool = True
    login_path: str = "/auth/login"
    login_body: Any = field(default_factory=lambda: {"username": "${username}", "password": "${password}"})
    refresh_path: str = "/auth/refresh"
    refresh_body: Any = field(default_factory=lambda: {"refresh_token": "${refresh_token}"})
    username: str = "admin"
    password: str = "mock-admin-password"
    access_token_field: str = "access_token"
    refresh_token_field: str = "refresh_token"
    expires_in_field: str = "expires_in"
    refresh_before_expiry_s: float = 30.0
    default_expires_in_s: float = 900.0
    retry_after_failure_s: float = 1.0


@dataclass(frozen=True)
class GatewayConfig:
    source: str = str(DEFAULT_CONF)
    wait_min_s: float = 0.5
    wait_max_s: float = 1.5
    tasks: dict[str, int] = field(default_factory=lambda: {"llm": 4, "llm_stream": 2, "health": 2, "admin": 2})
    llm_path: str = "/v1/chat/completions"
    llm_payload: dict[str, Any] = field(
        default_factory=lambda: {
            "model": "mock-llm",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "Reply with a short greeting."}],
        }
    )
    include_usage: bool = True
    health_path: str = "/health"
    admin_paths: tuple[str, ...] = ("/admin/dashboard", "/admin/usage", "/admin/keys")
    auth: AuthConfig = field(default_factory=AuthConfig)
    gateway_latency: tuple[TimingSource, ...] = GATEWAY_PRESETS["auto"]
    policy_check_latency: tuple[TimingSource, ...] = POLICY_PRESETS["server-timing"]
    statuses: StatusPolicy = field(default_factory=StatusPolicy)
    recovery: RecoveryParams = field(default_factory=RecoveryParams)


def render(template: Any, values: Mapping[str, str]) -> Any:
    """A copy of ``template`` with ``${name}`` replaced in every string (keys included)."""
    if isinstance(template, str):
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
    if isinstance(template, list):
        return [render(v, values) for v in template]
    if isinstance(template, dict):
        return {render(k, values): render(v, values) for k, v in template.items()}
    return copy.deepcopy(template)


def lookup(obj: Any, dotted: str) -> Any:
    """``lookup({"data": {"token": "x"}}, "data.token") -> "x"``; None when a step is missing."""
    cur = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


class _Reader(ValueReader):
    """The shared checks plus the gateway's own: URL paths and JSON field names."""

    def section(self, value: object, path: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
        """A mapping of ``allowed`` keys; every section is optional: null or absent is an empty mapping."""
        return self.mapping(value, path, allowed, optional=True)

    def path(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not value.startswith("/") or any(c.isspace() for c in value):
            raise self.error(path, f"expected a URL path starting with '/', got {show(value)}")
        return value

    def field_path(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not re.fullmatch(r"[^.\s]+(\.[^.\s]+)*", value):
            raise self.error(
                path, f"expected a JSON field name (dotted for nested fields: data.token), got {show(value)}"
            )
        return value


def _wait_time(r: _Reader, raw: object, base: GatewayConfig) -> tuple[float, float]:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        v = r.number(raw, "wait_time")
        return v, v
    d = r.section(raw, "wait_time", ("min", "max", "constant"))
    if "constant" in d:
        if "min" in d or "max" in d:
            raise r.error("wait_time.constant", "give either constant, or min and max")
        v = r.number(d["constant"], "wait_time.constant")
        return v, v
    lo = r.number(d.get("min", base.wait_min_s), "wait_time.min")
    hi = r.number(d.get("max", base.wait_max_s), "wait_time.max")
    if hi < lo:
        raise r.error("wait_time.max", f"expected a number >= wait_time.min ({lo:g}), got {hi:g}")
    return lo, hi


def _tasks(r: _Reader, raw: object, base: GatewayConfig) -> dict[str, int]:
    d = r.section(raw, "tasks", TASKS)
    out = dict(base.tasks)
    for k, v in d.items():
        out[k] = r.integer(v, f"tasks.{k}", what="a non-negative integer weight")
    if not any(out.values()):
        raise r.error("tasks", "expected at least one task with a weight > 0")
    return out


def _auth(r: _Reader, raw: object) -> AuthConfig:
    base = AuthConfig()
    d = r.section(
        raw,
        "auth",
        (
            "enabled",
            "login",
            "refresh",
            "username",
            "password",
            "response",
            "refresh_before_expiry_s",
            "default_expires_in_s",
            "retry_after_failure_s",
        ),
    )
    kw: dict[str, Any] = {}
    if "enabled" in d:
        kw["enabled"] = r.flag(d["enabled"], "auth.enabled")
    for part in ("login", "refresh"):
        sub = r.section(d.get(part), f"auth.{part}", ("path", "body"))
        if "path" in sub:
            kw[f"{part}_path"] = r.path(sub["path"], f"auth.{part}.path")
        if "body" in sub:
            body = sub["body"]
            if not isinstance(body, Mapping):
                raise r.error(f"auth.{part}.body", f"expected a mapping (the JSON body), got {show(body)}")
            kw[f"{part}_body"] = dict(body)
    for key in ("username", "password"):
        if key in d:
            kw[key] = r.text(d[key], f"auth.{key}")
    resp = r.section(d.get("response"), "auth.response", ("access_token", "refresh_token", "expires_in"))
    for key in ("access_token", "refresh_token", "expires_in"):
        if key in resp:
            kw[f"{key}_field"] = r.field_path(resp[key], f"auth.response.{key}")
    if "refresh_before_expiry_s" in d:
        kw["refresh_before_expiry_s"] = r.number(d["refresh_before_expiry_s"], "auth.refresh_before_expiry_s")
    if "default_expires_in_s" in d:
        kw["default_expires_in_s"] = r.number(d["default_expires_in_s"], "auth.default_expires_in_s", strict=True)
    if "retry_after_failure_s" in d:
        kw["retry_after_failure_s"] = r.number(d["retry_after_failure_s"], "auth.retry_after_failure_s")
    return AuthConfig(**{**base.__dict__, **kw})


def _statuses(r: _Reader, raw: object) -> StatusPolicy:
    base = StatusPolicy()
    d = r.section(raw, "statuses", ("expected", "blocked", "budget", "budget_error_codes", "blocked_are_failures"))
    kw: dict[str, Any] = {}
    for key in ("expected", "blocked", "budget"):
        if key in d:
            val = d[key]
            if val is None or val == []:
                kw[key] = ()
                continue
            try:
                kw[key] = parse_statuses(val, f"statuses.{key}")
            except ValueError as exc:
                raise GatewayConfigError(f"{r.source}: {exc}") from None
    if "budget_error_codes" in d:
        codes = d["budget_error_codes"] or []
        if not isinstance(codes, list) or not all(isinstance(c, str) and c.strip() for c in codes):
            raise r.error("statuses.budget_error_codes", f"expected a list of error codes or types, got {show(codes)}")
        kw["budget_error_codes"] = frozenset(c.strip().lower() for c in codes)
    if "blocked_are_failures" in d:
        kw["blocked_are_failures"] = r.flag(d["blocked_are_failures"], "statuses.blocked_are_failures")
    policy = StatusPolicy(
        expected=kw.get("expected", base.expected),
        blocked=kw.get("blocked", base.blocked),
        budget=kw.get("budget", base.budget),
        budget_error_codes=kw.get("budget_error_codes", base.budget_error_codes),
        blocked_are_failures=kw.get("blocked_are_failures", base.blocked_are_failures),
    )
    if not policy.expected:
        raise r.error("statuses.expected", 'expected at least one status (k6\'s default is "200-399")')
    return policy


def _recovery(r: _Reader, raw: object) -> RecoveryParams:
    keys = ("tolerance", "window_s", "hold_s", "latency_slack_ms", "error_slack", "percentile", "scale_with_time_scale")
    d = r.section(raw, "recovery", keys)
    base = RecoveryParams()
    kw: dict[str, Any] = {}
    for key in ("tolerance", "latency_slack_ms", "error_slack"):
        if key in d:
            kw[key] = r.number(d[key], f"recovery.{key}")
    for key in ("window_s", "hold_s"):
        if key in d:
            kw[key] = r.number(d[key], f"recovery.{key}", strict=True)
    if "percentile" in d:
        p = r.number(d["percentile"], "recovery.percentile", strict=True)
        if p > 100:
            raise r.error("recovery.percentile", f"expected a percentile in (0, 100], got {p:g}")
        kw["percentile"] = p
    if "scale_with_time_scale" in d:
        kw["scale_with_time_scale"] = r.flag(d["scale_with_time_scale"], "recovery.scale_with_time_scale")
    return RecoveryParams(**{**{f: getattr(base, f) for f in keys}, **kw})


_TOP = ("wait_time", "tasks", "llm", "health", "admin", "auth", "metrics", "statuses", "recovery")


def parse_gateway_config(data: object, source: str = "<gateway config>") -> GatewayConfig:
    """Validate already-parsed YAML into a ``GatewayConfig``; ``source`` names the origin in errors."""
    r = _Reader(source, GatewayConfigError)
    d = r.section(data, "", _TOP)
    base = GatewayConfig(source=source)
    kw: dict[str, Any] = {"source": source}
    if "wait_time" in d:
        kw["wait_min_s"], kw["wait_max_s"] = _wait_time(r, d["wait_time"], base)
    if "tasks" in d:
        kw["tasks"] = _tasks(r, d["tasks"], base)
    llm = r.section(d.get("llm"), "llm", ("path", "payload", "include_usage"))
    if "path" in llm:
        kw["llm_path"] = r.path(llm["path"], "llm.path")
    if "payload" in llm:
        payload = llm["payload"]
        if not isinstance(payload, Mapping) or not payload:
            raise r.error("llm.payload", f"expected a non-empty mapping (the JSON body), got {show(payload)}")
        if "stream" in payload:
            raise r.error("llm.payload.stream", "set by the task (llm: false, llm_stream: true); remove it")
        kw["llm_payload"] = dict(payload)
    if "include_usage" in llm:
        kw["include_usage"] = r.flag(llm["include_usage"], "llm.include_usage")
    health = r.section(d.get("health"), "health", ("path",))
    if "path" in health:
        kw["health_path"] = r.path(health["path"], "health.path")
    admin = r.section(d.get("admin"), "admin", ("paths",))
    if "paths" in admin:
        paths = admin["paths"]
        if not isinstance(paths, list) or not paths:
            raise r.error("admin.paths", f"expected a non-empty list of URL paths, got {show(paths)}")
        kw["admin_paths"] = tuple(r.path(p, f"admin.paths[{i}]") for i, p in enumerate(paths))
    if "auth" in d:
        kw["auth"] = _auth(r, d["auth"])
    metrics = r.section(d.get("metrics"), "metrics", ("gateway_latency", "policy_check_latency"))
    try:
        if "gateway_latency" in metrics:
            kw["gateway_latency"] = parse_sources(metrics["gateway_latency"], "metrics.gateway_latency")
        if "policy_check_latency" in metrics:
            kw["policy_check_latency"] = parse_sources(
                metrics["policy_check_latency"], "metrics.policy_check_latency", POLICY_PRESETS
            )
    except ValueError as exc:
        raise GatewayConfigError(f"{source}: {exc}") from None
    if "statuses" in d:
        kw["statuses"] = _statuses(r, d["statuses"])
    if "recovery" in d:
        kw["recovery"] = _recovery(r, d["recovery"])
    return GatewayConfig(**{**base.__dict__, **kw})


def load_gateway_config(path: str | Path = DEFAULT_CONF) -> GatewayConfig:
    """Read and validate a gateway configuration file; errors are ``GatewayConfigError`` naming ``path``."""
    source = str(path)
    data = load_yaml_file(path, GatewayConfigError, source=source, missing="gateway configuration file")
    return parse_gateway_config(data if data is not None else {}, source)
