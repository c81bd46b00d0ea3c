"""Settings of the mock server: dataclasses with defaults, validation, YAML loading and merging.

Every setting is a dataclass field whose metadata carries its help text and its bounds. Sources are applied
in order (defaults, then each ``--config`` file, then command-line flags, then ``POST /mock/config`` at run
time); each is deep-merged into the settings so far and the result is validated, so an error names the
source that caused it and the key path, e.g. ``conf.yaml: faults[1].rate: expected a number in [0, 1], got
1.5``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

# Fault kinds and what their argument means (None: the kind takes no argument).
FAULT_KINDS: dict[str, str | None] = {
    "error": "status",
    "disconnect": "tokens",
    "reset": "tokens",
    "reset_headers": None,
    "malformed": "tokens",
    "sse_error": "tokens",
    "stall": "seconds",
    "slow_headers": "seconds",
    "invalid_json": None,
    "wrong_content_type": None,
    "oversized": "bytes",
}
# The paths served by the LLM endpoints: every fault kind applies there, only ``error`` elsewhere.
LLM_PATHS = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
    "/v1/messages",
    "/v1/embeddings",
    "/generate",
    "/propose_trade_adjustments/",
)
REASONING_FIELDS = ("reasoning_content", "reasoning")
OUTPUT_DISTS = ("fixed", "uniform", "normal")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


class ConfigError(ValueError):
    """A setting is invalid; ``str(err)`` is ``SOURCE: KEY.PATH: what was expected, got VALUE``."""


def _opt(default: Any, help: str, **meta: Any) -> Any:
    """A dataclass field with an immutable default and its metadata (help text, bounds, run-time
    changeability)."""
    return field(default=default, metadata={"help": help, **meta})


def _meta(help: str, **meta: Any) -> dict[str, Any]:
    """Metadata of a field with a default factory."""
    return {"help": help, **meta}


@dataclass
class OutputTokens:
    """Distribution of the output length when a request gives no ``max_tokens``."""

    dist: str = _opt("fixed", "fixed | uniform | normal", choices=OUTPUT_DISTS)
    value: int = _opt(64, "fixed: the output length", min=1)
    min: int = _opt(1, "uniform: lower bound; normal: clip below", min=1)
    max: int = _opt(256, "uniform: upper bound; normal: clip above", min=1)
    mean: float = _opt(64.0, "normal: mean", min=1)
    sd: float = _opt(16.0, "normal: standard deviation", min=0)


@dataclass
class ApiKey:
    """Limits of one gateway API key."""

    rate_limit_rps: float = _opt(0.0, "token-bucket refill rate in requests/s; 0 = unlimited", min=0)
    burst: float = _opt(0.0, "bucket size in requests; 0 = max(1, rate_limit_rps)", min=0)
    token_budget: int = _opt(0, "completion tokens this key may use; 0 = unlimited", min=0)


@dataclass
class FaultRule:
    """Inject fault ``kind`` into a fraction ``rate`` of the requests to ``path``."""

    kind: str = _opt("error", "one of " + ", ".join(FAULT_KINDS), choices=tuple(FAULT_KINDS))
    rate: float = _opt(0.0, "probability per request, in [0, 1]", min=0, max=1)
    path: str = _opt("*", "an endpoint path, or * for every endpoint the kind applies to")
    arg: float | None = _opt(None, "kind-specific: status, token index, seconds or bytes; null = default")


@dataclass
class PrefixCacheConfig:
    """A prefix cache: prompt tokens already seen as a prefix (same leading messages) cost less prefill."""

    enabled: bool = _opt(False, "discount the prefill of prompt prefixes seen before (whole leading messages)")
    discount: float = _opt(1.0, "share of the prefill cost saved on cached prompt tokens (1 = free)", min=0, max=1)
    max_entries: int = _opt(10000, "prefixes remembered; the least recently used are forgotten", min=1)


@dataclass
class GatewayConfig:
    """The LLM-gateway personality: API keys, login tokens, admin API, overhead timing."""

    require_api_key: bool = _opt(False, "refuse LLM calls without Authorization (401)")
    api_keys: dict[str, ApiKey] = field(
        default_factory=dict, metadata=_meta("API key -> {rate_limit_rps, burst, token_budget}")
    )
    users: dict[str, str] = field(
        default_factory=lambda: {"admin": "mock-admin-password"},
        metadata=_meta("username -> password accepted by POST /auth/login"),
    )
    access_token_ttl_s: float = _opt(900.0, "lifetime of an access token (s)", min=0)
    refresh_token_ttl_s: float = _opt(86400.0, "lifetime of a refresh token (s)", min=0)
    gateway_overhead_ms: float = _opt(0.0, "wait before an LLM call is answered (ms)", min=0)
    gateway_overhead_jitter_ms: float = _opt(0.0, "gaussian sd added to the overhead (ms)", min=0)
    policy_ms: float = _opt(0.0, "policy-check wait before an LLM call (ms)", min=0)
    policy_jitter_ms: float = _opt(0.0, "gaussian sd added to the policy wait (ms)", min=0)
    timing_headers: bool = _opt(
        True, "send x-litellm-overhead-duration-ms and Server-Timing on LLM answers; false: a gateway without them"
    )


@dataclass
class SidecarConfig:
    """The sidecar personality."""

    metric_prefix: str = _opt("mock_llm", "prefix of the metric names on GET /metrics")


@dataclass
class Config:
    """All settings of the mock. Field order is the order of ``--help`` and of ``default.yaml``."""

    host: str = _opt("127.0.0.1", "address to bind", runtime=False)
    port: int = _opt(8000, "port to bind; 0 = a free port", min=0, max=65535, runtime=False)
    models: list[str] = field(
        default_factory=lambda: ["mock-llm"], metadata=_meta("model names listed by GET /v1/models")
    )
    reject_unknown_models: bool = _opt(False, "answer 404 to a chat request for a model not listed")
    version: str = _opt("mock_llm 0.1.0", "version string of GET /v1/version")
    seed: int = _opt(0, "seed of every random choice (output lengths, jitter, words, fault rates)")
    ttft_ms: float = _opt(50.0, "time to first token, base (ms)", min=0)
    prefill_ms_per_token: float = _opt(0.0, "added to the TTFT per prompt token (ms)", min=0)
    itl_ms: float = _opt(10.0, "delay between two output tokens (ms)", min=0)
    jitter_ms: float = _opt(0.0, "gaussian sd added to every delay, clipped at 0 (ms)", min=0)
    output_tokens: OutputTokens = field(
        default_factory=OutputTokens, metadata=_meta("output length when max_tokens is absent")
    )
    reasoning_tokens: int = _opt(0, "reasoning tokens streamed before the content (every API but completions)", min=0)
    reasoning_field: str = _opt(
        "reasoning_content",
        "chat completions' delta/message field of the reasoning: reasoning_content | reasoning",
        choices=REASONING_FIELDS,
    )
    tool_call_rate: float = _opt(
        0.0,
        "share of the calls that give tools answered with a tool call (else: the prompt says #tool_call)",
        min=0,
        max=1,
    )
    embedding_dim: int = _opt(16, "length of each vector of /v1/embeddings", min=1, max=65536)
    max_concurrency: int = _opt(0, "generations at once; more wait in a FIFO queue; 0 = unlimited", min=0)
    capacity: int = _opt(0, "active generations above which delays grow; 0 = never", min=0)
    overload_exponent: float = _opt(1.0, "delays x (active / capacity) ** exponent above capacity", min=0)
    prefix_cache: PrefixCacheConfig = field(
        default_factory=PrefixCacheConfig, metadata=_meta("prefix cache: {enabled, discount, max_entries}")
    )
    timestamps: bool = _opt(False, "add mock_sent_ns (CLOCK_MONOTONIC) to every streamed chunk")
    usage_chunk: bool = _opt(True, "send the usage chunk when include_usage asks; false: never (a server without it)")
    shutdown_grace_s: float = _opt(5.0, "on SIGTERM, time given to open responses to finish (s)", min=0)
    gateway: GatewayConfig = field(default_factory=GatewayConfig, metadata=_meta("gateway settings"))
    sidecar: SidecarConfig = field(default_factory=SidecarConfig, metadata=_meta("sidecar settings"))
    faults: list[FaultRule] = field(default_factory=list, metadata=_meta("fault rules: [{path, kind, rate, arg}]"))


def _fmt(value: Any) -> str:
    """A value as the user wrote it, for error messages."""
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _bounds_text(meta: Mapping[str, Any]) -> str:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and hi is not None:
        return f" in [{lo}, {hi}]"
    if lo is not None:
        return f" >= {lo}"
    return ""


def _check_scalar(tp: Any, value: Any, path: str, meta: Mapping[str, Any]) -> Any:
    """Validate one scalar against its annotation and bounds; returns it (ints widened for floats)."""
    bounds = _bounds_text(meta)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {_fmt(value)}")
        return value
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok:
            raise ConfigError(f"{path}: expected an integer{bounds}, got {_fmt(value)}")
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not ok:
            raise ConfigError(f"{path}: expected a number{bounds}, got {_fmt(value)}")
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {_fmt(value)}")
        choices = meta.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"{path}: expected one of {', '.join(choices)}, got {_fmt(value)}")
        return value
    else:  # pragma: no cover - a schema error, not a user error
        raise TypeError(f"unsupported type {tp!r} at {path}")
    lo, hi = meta.get("min"), meta.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        kind = "an integer" if tp is int else "a number"
        raise ConfigError(f"{path}: expected {kind}{bounds}, got {_fmt(value)}")
    return float(value) if tp is float else value


def _build(tp: Any, value: Any, path: str, meta: Mapping[str, Any]) -> Any:
    """Build a value of annotation ``tp`` from plain data, or raise ConfigError naming ``path``."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _build(args[0], value, path, meta)
    if origin is list:
        (item_tp,) = get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {_fmt(value)}")
        return [_build(item_tp, v, f"{path}[{i}]", {}) for i, v in enumerate(value)]
    if origin is dict:
        _, val_tp = get_args(tp)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {_fmt(value)}")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not k:
                raise ConfigError(f"{path}: expected non-empty string keys, got {_fmt(k)}")
            out[k] = _build(val_tp, v, _join(path, k), {})
        return out
    if tp is OutputTokens and isinstance(value, int) and not isinstance(value, bool):
        value = {"dist": "fixed", "value": value}
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, value, path)
    return _check_scalar(tp, value, path, meta)


def _build_dataclass(cls: Any, value: Any, path: str) -> Any:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path or 'top level'}: expected a mapping, got {_fmt(value)}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in value:
        if key not in fields:
            known = ", ".join(fields)
            raise ConfigError(f"{_join(path, str(key))}: unknown key (known keys: {known})")
    kwargs = {
        name: _build(hints[name], value[name], _join(path, name), f.metadata)
        for name, f in fields.items()
        if name in value
    }
    obj = cls(**kwargs)
    _check_object(obj, path)
    return obj


def _check_object(obj: Any, path: str) -> None:
    """Constraints across fields of one object."""
    if isinstance(obj, OutputTokens) and obj.dist != "fixed" and obj.min > obj.max:
        raise ConfigError(f"{_join(path, 'max')}: expected an integer >= min ({obj.min}), got {obj.max}")
    if isinstance(obj, SidecarConfig) and not _METRIC_NAME.fullmatch(obj.metric_prefix):
        raise ConfigError(
            f"{_join(path, 'metric_prefix')}: expected a Prometheus metric name "
            f"([a-zA-Z_:][a-zA-Z0-9_:]*), got {_fmt(obj.metric_prefix)}"
        )
    if isinstance(obj, Config) and not obj.models:
        raise ConfigError("models: expected at least one model name, got an empty list")
    if isinstance(obj, FaultRule):
        _check_fault_rule(obj, path)


def _check_fault_rule(rule: FaultRule, path: str) -> None:
    if rule.path != "*" and not rule.path.startswith("/"):
        raise ConfigError(f"{path}.path: expected '*' or a path starting with '/', got {_fmt(rule.path)}")
    if rule.kind != "error" and rule.path not in ("*", *LLM_PATHS):
        raise ConfigError(
            f"{path}.path: fault kind {rule.kind!r} applies only to {', '.join(LLM_PATHS)} or '*', "
            f"got {_fmt(rule.path)}"
        )
    if rule.arg is not None:
        check_fault_arg(rule.kind, rule.arg, f"{path}.arg")


def check_fault_arg(kind: str, arg: float, path: str) -> float:
    """Validate the argument of a fault kind; shared by config rules and the X-Mock-Fault header."""
    what = FAULT_KINDS[kind]
    if what is None:
        raise ConfigError(f"{path}: fault kind {kind!r} takes no argument, got {_fmt(arg)}")
    if what == "status":
        if arg != int(arg) or not 100 <= arg <= 599:
            raise ConfigError(f"{path}: expected an HTTP status in [100, 599] for {kind!r}, got {_fmt(arg)}")
    elif what in ("tokens", "bytes"):
        if arg != int(arg) or arg < 0:
            raise ConfigError(f"{path}: expected an integer >= 0 ({what}) for {kind!r}, got {_fmt(arg)}")
    elif arg < 0:
        raise ConfigError(f"{path}: expected a number of seconds >= 0 for {kind!r}, got {_fmt(arg)}")
    return arg


def to_dict(cfg: Any) -> Any:
    """Plain data (YAML/JSON-ready) of a config object."""
    return dataclasses.asdict(cfg)


def _merge(base: Any, over: Any) -> Any:
    """Deep merge of plain data: mappings merge key by key (a null value removes the key, which restores
    a setting's default or drops an API key or user), anything else is replaced."""
    if isinstance(base, dict) and isinstance(over, Mapping):
        out = dict(base)
        for k, v in over.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = _merge(base[k], v) if k in base else v
        return out
    return over


def apply(cfg: Config, overrides: Mapping[str, Any], source: str, *, runtime: bool = False) -> Config:
    """A new Config: ``cfg`` with ``overrides`` deep-merged in; ConfigError names ``source`` and the key."""
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{source}: top level: expected a mapping, got {_fmt(overrides)}")
    current = to_dict(cfg)
    if runtime:
        for f in dataclasses.fields(Config):
            changed = f.name in overrides and overrides[f.name] != current[f.name]
            if changed and not f.metadata.get("runtime", True):
                raise ConfigError(f"{source}: {f.name}: cannot be changed at run time")
    try:
        built: Config = _build_dataclass(Config, _merge(current, overrides), "")
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return built


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read one YAML config file as plain data; an empty file is an empty mapping."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{name}: cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{name}: not UTF-8 text (byte {err.start})") from None
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{name}: not valid YAML: nesting too deep") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{name}: not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: top level: expected a mapping, got {_fmt(data)}")
    return data


def load(
    files: list[str | Path] | tuple[str | Path, ...] = (), cli_overrides: Mapping[str, Any] | None = None
) -> Config:
    """Defaults, then each YAML file in order, then command-line overrides."""
    cfg = Config()
    for path in files:
        cfg = apply(cfg, load_yaml(path), str(path))
    if cli_overrides:
        cfg = apply(cfg, cli_overrides, "command line")
    return cfg


def from_mapping(data: Mapping[str, Any] | None, source: str = "config") -> Config:
    """A Config from defaults plus one mapping of overrides (as given to serve_in_thread)."""
    return apply(Config(), data or {}, source)
