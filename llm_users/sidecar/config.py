"""The sidecar suite's settings file, ``conf/sidecar.yaml``: the ``/generate`` request and the server-side series.

Pure: no Locust. Keys (every one optional)::

    generate:
      prompt: "..."          # the sample prompt of POST /generate (seed 002's default script)
      max_tokens: 64         # sent when set; omit it to let the server choose
    server_metrics: {...}    # see llm_users.sidecar.server_metrics

An error names the file and the key path and says what was expected (``SidecarConfigError``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_metrics.engine.config import known_keys, load_yaml_file
from llm_users.sidecar.server_metrics import ServerMetricsConfig, ServerMetricsError, parse_server_metrics

__all__ = ["DEFAULT_GENERATE_PROMPT", "GenerateRequest", "SidecarConfig", "SidecarConfigError", "load_sidecar_config"]

DEFAULT_GENERATE_PROMPT = "Summarise today's market moves in two sentences."
_TOP_KEYS = ("generate", "server_metrics")
_GENERATE_KEYS = ("prompt", "max_tokens")


class SidecarConfigError(ValueError):
    """A sidecar settings file that cannot be used; the message names the file and the key path."""


@dataclass(frozen=True)
class GenerateRequest:
    prompt: str = DEFAULT_GENERATE_PROMPT
    max_tokens: int | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prompt": self.prompt}
        if self.max_tokens is not None:
            out["max_tokens"] = self.max_tokens
        return out


@dataclass(frozen=True)
class SidecarConfig:
    source: str = ""
    generate: GenerateRequest = field(default_factory=GenerateRequest)
    server_metrics: ServerMetricsConfig = field(default_factory=ServerMetricsConfig)


def _generate(data: Any, src: str) -> GenerateRequest:
    if data is None:
        return GenerateRequest()
    data = known_keys(data, _GENERATE_KEYS, SidecarConfigError, src, "generate", "a mapping with prompt and max_tokens")
    prompt = data.get("prompt", DEFAULT_GENERATE_PROMPT)
    if not isinstance(prompt, str) or not prompt.strip():
        raise SidecarConfigError(f"{src}: generate.prompt: expected a non-empty string, got {prompt!r}")
    mt = data.get("max_tokens")
    if mt is not None and (isinstance(mt, bool) or not isinstance(mt, int) or mt < 1):
        raise SidecarConfigError(f"{src}: generate.max_tokens: expected a positive integer, got {mt!r}")
    return GenerateRequest(prompt, mt)


def load_sidecar_config(path: str | Path) -> SidecarConfig:
    """Read and check the file; raise ``SidecarConfigError`` naming the file and the key path."""
    src = str(path)
    data = load_yaml_file(path, SidecarConfigError, source=src, missing="sidecar settings file")
    if data is None:
        data = {}
    data = known_keys(data, _TOP_KEYS, SidecarConfigError, src, "", f"a mapping with {', '.join(_TOP_KEYS)}")
    try:
        server = parse_server_metrics(data.get("server_metrics"), src)
    except ServerMetricsError as exc:
        raise SidecarConfigError(str(exc)) from None
    return SidecarConfig(src, _generate(data.get("generate"), src), server)
