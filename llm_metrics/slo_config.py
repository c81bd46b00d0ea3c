"""The SLO file of a run (``--thresholds``): k6 thresholds, goodput limits and the load-generator guard.

``load_slo_config(path, registry)`` reads ``thresholds:``, ``goodput:``, ``fail_on_no_data:`` and
``saturation:`` from a YAML file (duplicate keys refused, ``llm_metrics.engine.config``); every error names
the file and the key (``ConfigError``, or ``ThresholdError`` from ``llm_metrics.engine.thresholds``).
No Locust import.
"""

from __future__ import annotations

from pathlib import Path

from llm_metrics.engine.calls import GoodputSLO
from llm_metrics.engine.config import load_yaml_file
from llm_metrics.engine.thresholds import MetricRegistry, Threshold, parse_thresholds
from llm_metrics.monitors.selfmon import SaturationError, SaturationRules, parse_saturation

__all__ = ["ConfigError", "load_slo_config", "load_slo_file"]


class ConfigError(ValueError):
    """A thresholds file that cannot be used; the message names the file and the key."""


def load_slo_file(path: str | Path, registry: MetricRegistry) -> tuple[list[Threshold], GoodputSLO]:
    """Read ``thresholds:`` and ``goodput:`` from a YAML file; raise ThresholdError/ConfigError naming the key."""
    ths, gp, _ = load_slo_config(path, registry)
    return ths, gp


def load_slo_config(path: str | Path, registry: MetricRegistry) -> tuple[list[Threshold], GoodputSLO, SaturationRules]:
    """``load_slo_file`` plus the ``saturation:`` rules of the load-generator guard (``selfmon``)."""
    p = Path(path)
    source = str(path)
    data = load_yaml_file(p, ConfigError, source=source, missing="thresholds file") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with 'thresholds' and optionally 'goodput'")
    known = {"thresholds", "goodput", "fail_on_no_data", "saturation"}
    unknown = sorted(set(data) - known, key=str)  # keys: any YAML scalar
    if unknown:
        raise ConfigError(
            f"{source}: {unknown[0]}: unknown key (expected thresholds, goodput, fail_on_no_data, saturation)"
        )
    try:
        saturation = parse_saturation(data.get("saturation"), source)
    except SaturationError as exc:
        raise ConfigError(str(exc)) from None
    fond = data.get("fail_on_no_data", False)
    if not isinstance(fond, bool):
        raise ConfigError(f"{source}: fail_on_no_data: expected true or false, got {fond!r}")
    ths = parse_thresholds(data.get("thresholds"), source, registry=registry, fail_on_no_data=fond)
    gp = data.get("goodput") or {}
    if not isinstance(gp, dict):
        raise ConfigError(f"{source}: goodput: expected a mapping such as {{ttft_ms: 1000, tpot_ms: 100}}")
    limits: dict[str, float] = {}
    for key, val in gp.items():
        if key not in ("ttft_ms", "ttfo_ms", "tpot_ms", "total_ms"):
            raise ConfigError(f"{source}: goodput.{key}: unknown key (expected ttft_ms, ttfo_ms, tpot_ms, total_ms)")
        if isinstance(val, bool) or not isinstance(val, int | float) or val <= 0:
            raise ConfigError(f"{source}: goodput.{key}: expected a number of milliseconds > 0, got {val!r}")
        limits[key] = float(val)
    return ths, GoodputSLO(**limits), saturation
