"""Command line of ``python -m mock_llm``: one flag per setting, generated from the config dataclasses.

Flags only override what they name; their values go through the same validation as YAML, with the
source ``command line``. Settings that are mappings or lists take a compact spec and may repeat
(``--api-key``, ``--user``, ``--fault``, ``--model``).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Any, get_type_hints

from mock_llm.config import FAULT_KINDS, Config, ConfigError, GatewayConfig, PrefixCacheConfig, SidecarConfig

# Fields with a hand-written flag (a spec string, repeatable) instead of a generated one.
_SPECIAL = {"models", "output_tokens", "api_keys", "users", "faults", "version"}
# The flag groups: (title, config class of the generated flags, settings section, flag prefix).
_SECTIONS: tuple[tuple[str, type | None, str, str], ...] = (
    ("server and latency model", Config, "", ""),
    ("prefix cache", PrefixCacheConfig, "prefix_cache", "prefix_cache_"),
    ("gateway", GatewayConfig, "gateway", ""),
    ("sidecar", SidecarConfig, "sidecar", ""),
    ("faults", None, "", ""),
)
# The hand-written flags, by group: (flag, dest, repeatable, metavar, help).
_SPEC_FLAGS: dict[str, tuple[tuple[str, str, bool, str, str], ...]] = {
    "server and latency model": (
        ("--model", "models", True, "NAME", "a model name served by GET /v1/models; repeatable (default: mock-llm)"),
        ("--version-string", "version", False, "TEXT", "version string of GET /v1/version (default: mock_llm 0.1.0)"),
        ("--output-tokens", "output_tokens", False, "SPEC",
         "output length when max_tokens is absent: N | uniform:MIN:MAX | normal:MEAN:SD[:MIN:MAX] (default: 64)"),
    ),
    "gateway": (
        ("--api-key", "gateway.api_keys", True, "KEY[:RPS[:BURST[:BUDGET]]]",
         "an accepted API key with its rate limit (req/s), burst and token budget (0 = unlimited); repeatable"),
        ("--user", "gateway.users", True, "NAME:PASSWORD",
         "a login user, added to the configured ones (default: admin:mock-admin-password); repeatable"),
    ),
    "faults": (
        ("--fault", "faults", True, "PATH:KIND:RATE[:ARG]",
         "inject KIND into a fraction RATE of the requests to PATH (* = all); kinds: " + ", ".join(FAULT_KINDS)
         + "; repeatable"),
    ),
}  # fmt: skip


def _number(text: str) -> Any:
    """An int or float when the text is one, else the text (validation then names the expected type)."""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _describe(f: dataclasses.Field[Any]) -> str:
    default = f.default if f.default is not dataclasses.MISSING else None
    text = f.metadata.get("help", "")
    return f"{text} (default: {default})" if default is not None else text


def _add_fields(group: Any, cls: type, section: str, flag_prefix: str = "") -> None:
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in _SPECIAL or dataclasses.is_dataclass(hints[f.name]) or f.name == "faults":
            continue
        dest = f"{section}.{f.name}" if section else f.name
        kind: dict[str, Any] = (
            {"action": argparse.BooleanOptionalAction}
            if hints[f.name] is bool
            else {"metavar": {int: "N", float: "X", str: "TEXT"}.get(hints[f.name], "VALUE")}
        )
        group.add_argument(_flag(flag_prefix + f.name), dest=dest, default=argparse.SUPPRESS, help=_describe(f), **kind)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mock_llm",
        description="The built-in mock LLM server: OpenAI-compatible chat, LLM gateway and sidecar, "
        "with a latency model and faults. Settings: defaults < --config files < flags < POST /mock/config.",
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="YAML settings file (see mock_llm/default.yaml); repeatable, later files win",
    )
    run.add_argument("--port-file", metavar="FILE", help="write the bound port to FILE once listening")
    run.add_argument("--print-config", action="store_true", help="print the effective settings as YAML and exit")

    for title, cls, section, flag_prefix in _SECTIONS:
        group = parser.add_argument_group(title)
        if cls is not None:
            _add_fields(group, cls, section, flag_prefix)
        for flag, dest, repeat, metavar, text in _SPEC_FLAGS.get(title, ()):
            action = "append" if repeat else "store"
            group.add_argument(flag, dest=dest, action=action, default=argparse.SUPPRESS, metavar=metavar, help=text)
    return parser


def _spec_error(flag: str, expected: str, got: str) -> ConfigError:
    return ConfigError(f"command line: {flag}: expected {expected}, got {got!r}")


def _output_tokens(spec: str) -> Any:
    parts = spec.split(":")
    if len(parts) == 1:
        return _number(parts[0])
    dist, nums = parts[0], [_number(p) for p in parts[1:]]
    if dist == "fixed" and len(nums) == 1:
        return {"dist": "fixed", "value": nums[0]}
    if dist == "uniform" and len(nums) == 2:
        return {"dist": "uniform", "min": nums[0], "max": nums[1]}
    if dist == "normal" and len(nums) in (2, 4):
        out = {"dist": "normal", "mean": nums[0], "sd": nums[1]}
        if len(nums) == 4:
            out.update(min=nums[2], max=nums[3])
        return out
    raise _spec_error("--output-tokens", "N | uniform:MIN:MAX | normal:MEAN:SD[:MIN:MAX]", spec)


def _api_keys(specs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = ("rate_limit_rps", "burst", "token_budget")
    for spec in specs:
        key, *limits = spec.split(":")
        if not key or len(limits) > 3:
            raise _spec_error("--api-key", "KEY[:RPS[:BURST[:BUDGET]]]", spec)
        out[key] = {name: _number(v) for name, v in zip(names, limits, strict=False)}
    return out


def _users(specs: list[str]) -> dict[str, str]:
    out = {}
    for spec in specs:
        name, sep, password = spec.partition(":")
        if not name or not sep:
            raise _spec_error("--user", "NAME:PASSWORD", spec)
        out[name] = password
    return out


def _faults(specs: list[str]) -> list[dict[str, Any]]:
    out = []
    for spec in specs:
        parts = spec.split(":")
        if len(parts) not in (3, 4):
            raise _spec_error("--fault", "PATH:KIND:RATE[:ARG]", spec)
        rule = {"path": parts[0], "kind": parts[1], "rate": _number(parts[2])}
        if len(parts) == 4:
            rule["arg"] = _number(parts[3])
        out.append(rule)
    return out


def overrides_from_args(ns: argparse.Namespace) -> dict[str, Any]:
    """The settings named by flags, as nested plain data."""
    hints = {
        **get_type_hints(Config),
        **{f"gateway.{k}": v for k, v in get_type_hints(GatewayConfig).items()},
        **{f"sidecar.{k}": v for k, v in get_type_hints(SidecarConfig).items()},
        **{f"prefix_cache.{k}": v for k, v in get_type_hints(PrefixCacheConfig).items()},
    }
    out: dict[str, Any] = {}
    for dest, value in vars(ns).items():
        if dest in ("config", "port_file", "print_config"):
            continue
        if dest == "output_tokens":
            value = _output_tokens(value)
        elif dest == "gateway.api_keys":
            value = _api_keys(value)
        elif dest == "gateway.users":
            value = _users(value)
        elif dest == "faults":
            value = _faults(value)
        elif hints.get(dest) in (int, float):
            value = _number(value)
        section, _, name = dest.rpartition(".")
        (out.setdefault(section, {}) if section else out)[name] = value
    return out


def parse(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, dict[str, Any]]:
    """The namespace (for --config, --port-file, --print-config) and the setting overrides."""
    ns = build_parser().parse_args(argv)
    return ns, overrides_from_args(ns)
