"""The knobs of the workload suite (``locustfiles/workload.py``) and their validation into ``WorkloadSettings``.

Every knob is a flag with its own environment variable, shown in the web UI form. An error names the flag
and its variable (``--input-tokens/INPUT_TOKENS: expected ...``) or the trace file, line and key. No Locust.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_metrics.engine.config import load_yaml_file
from llm_users.client.apis import Api, get_api
from llm_users.common.options import (
    CONF_DIR,
    DEFAULT_TARGET,
    OptionError,
    TargetSettings,
    add_api_argument,
    add_target_arguments,
    api_setting,
    as_bool,
    base_url,
)
from llm_users.common.options import target_settings as _target_settings
from llm_users.common.prompts import PromptError, parse_tools
from llm_users.common.target_binding import LocalSecrets
from llm_users.pacing.arrival import KINDS
from llm_users.workload.synthetic import DIST_SPEC, LengthDist, parse_dist
from llm_users.workload.trace import TraceRecord, load_trace

__all__ = ["MODES", "WorkloadSettings", "add_workload_arguments", "workload_settings"]

MODES = ("closed", "open", "trace")
DEFAULT_TRACE = CONF_DIR / "traces" / "example.jsonl"


def add_workload_arguments(parser: Any) -> None:
    """The workload suite's knobs (plus the shared secrets and timeouts)."""
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
        "--tools",
        env_var="TOOLS",
        default="",
        help="YAML/JSON file of tool definitions sent with every call: a list, or a mapping with 'tools' (env TOOLS)",
    )
    parser.add_argument(
        "--workload",
        env_var="WORKLOAD",
        default="closed",
        help="closed: each User runs conversations with think time (-u sets the load); open: arrivals at --rate "
        "handed to idle Users; trace: replay --trace at its offsets (env WORKLOAD)",
    )
    parser.add_argument(
        "--input-tokens",
        env_var="INPUT_TOKENS",
        default="256",
        help=f"Prompt length of a conversation's first turn, in the server's tokens: {DIST_SPEC} (env INPUT_TOKENS)",
    )
    parser.add_argument(
        "--output-tokens",
        env_var="OUTPUT_TOKENS",
        default="128",
        help=f"max_tokens of every call: {DIST_SPEC} (env OUTPUT_TOKENS)",
    )
    parser.add_argument(
        "--turns",
        env_var="TURNS",
        type=int,
        default=1,
        help="Turns per conversation; each turn resends the history plus a next question (env TURNS)",
    )
    parser.add_argument(
        "--followup-tokens",
        env_var="FOLLOWUP_TOKENS",
        default="64",
        help=f"Length of each next question (turns 2+), in server tokens: {DIST_SPEC} (env FOLLOWUP_TOKENS)",
    )
    parser.add_argument(
        "--think-time",
        env_var="THINK_TIME",
        default="0",
        help="Seconds a User waits between turns and conversations (closed workload): X | uniform:A:B | "
        "exp:MEAN[:MAX] | ... (env THINK_TIME)",
    )
    parser.add_argument(
        "--stream", env_var="STREAM", type=str, default="true", help="true: streamed calls (TTFT) (env STREAM)"
    )
    parser.add_argument(
        "--ignore-eos",
        env_var="IGNORE_EOS",
        type=str,
        default="false",
        help="true: send ignore_eos (vLLM, SGLang) so that every answer is max_tokens long (env IGNORE_EOS)",
    )
    parser.add_argument(
        "--rate",
        env_var="RATE",
        type=float,
        default=1.0,
        help="Open workload: arrivals per second for the whole test (all workers) (env RATE)",
    )
    parser.add_argument(
        "--arrival", env_var="ARRIVAL", default="constant", help=f"Open workload: {' or '.join(KINDS)} (env ARRIVAL)"
    )
    parser.add_argument(
        "--trace",
        env_var="TRACE",
        default="",
        help=f"Trace workload: JSONL file of offset_s, input_tokens, output_tokens[, conversation_id]; "
        f"default {DEFAULT_TRACE.relative_to(CONF_DIR.parent)} (env TRACE)",
    )
    parser.add_argument(
        "--trace-time-scale",
        env_var="TRACE_TIME_SCALE",
        type=float,
        default=1.0,
        help="Multiply every trace offset by this (0.1 replays 10x faster) (env TRACE_TIME_SCALE)",
    )
    parser.add_argument(
        "--calibrate",
        env_var="CALIBRATE",
        type=str,
        default="true",
        help="true: probe the server's usage.prompt_tokens once per process and size the prompts by it (env CALIBRATE)",
    )
    parser.add_argument(
        "--seed",
        env_var="SEED",
        default="",
        help="Seed of the synthetic texts and lengths; empty: a new one each run, so a server's prefix cache "
        "does not remember the last run's prompts (env SEED)",
    )


def _dist(value: Any, flag: str, *, integer: bool = True) -> LengthDist:
    try:
        return parse_dist(value, integer=integer)
    except ValueError as exc:
        raise OptionError(f"{flag}: {exc}") from None


def _number(value: Any, flag: str, *, minimum: float, strict: bool) -> float:
    try:
        num = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"{flag}: expected a number, got {value!r}") from None
    if not math.isfinite(num) or num < minimum or (strict and num == minimum):
        raise OptionError(f"{flag}: expected a number {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return num


@dataclass
class WorkloadSettings:
    target: TargetSettings
    base: str
    model: str
    mode: str
    input_tokens: LengthDist
    output_tokens: LengthDist
    turns: int
    followup_tokens: LengthDist
    think_time: LengthDist
    stream: bool
    ignore_eos: bool
    rate: float
    arrival: str
    trace_path: str
    trace: list[TraceRecord] | None
    trace_time_scale: float
    calibrate: bool
    seed: int
    seed_given: bool
    api: Api = field(default_factory=lambda: get_api("chat"))
    tools: list[dict[str, Any]] | None = None


def load_tools(path: str) -> list[dict[str, Any]] | None:
    """Tool definitions from a YAML (or JSON) file: a list, or ``{tools: [...]}``; PromptError naming the file."""
    if not path:
        return None
    data = load_yaml_file(path, PromptError, missing="tools file (--tools/TOOLS)")
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"tools"}, key=str)
        if unknown:
            raise PromptError(f"{path}: {unknown[0]}: unknown key (expected: tools)")
        data = data.get("tools")
    return parse_tools(data, f"{path}: tools")


def workload_settings(opts: Any, local: LocalSecrets | None = None) -> WorkloadSettings:
    """Validate the knobs; ``OptionError`` naming the flag (``TraceError`` naming the trace file and line)."""
    mode = str(getattr(opts, "workload", "closed")).strip().lower()
    if mode not in MODES:
        raise OptionError(f"--workload/WORKLOAD: expected one of {', '.join(MODES)}, got {opts.workload!r}")
    try:
        turns = int(opts.turns)
    except (TypeError, ValueError):
        raise OptionError(f"--turns/TURNS: expected an integer >= 1, got {opts.turns!r}") from None
    if turns < 1:
        raise OptionError(f"--turns/TURNS: expected an integer >= 1, got {opts.turns!r}")
    arrival = str(opts.arrival).strip().lower()
    if arrival not in KINDS:
        raise OptionError(f"--arrival/ARRIVAL: expected one of {', '.join(KINDS)}, got {opts.arrival!r}")
    seed_text = str(getattr(opts, "seed", "") or "").strip()
    if seed_text:
        try:
            seed = int(seed_text)
        except ValueError:
            raise OptionError(f"--seed/SEED: expected an integer, got {seed_text!r}") from None
    else:
        seed = secrets.randbits(48)
    trace_path = str(getattr(opts, "trace", "") or "").strip() or str(DEFAULT_TRACE)
    relative = Path(trace_path)
    if not relative.is_absolute() and not relative.exists() and (CONF_DIR.parent / relative).exists():
        trace_path = str(CONF_DIR.parent / relative)  # a path relative to the project, run from elsewhere
    trace = load_trace(trace_path) if mode == "trace" else None
    base = base_url(opts.base or getattr(opts, "host", None) or DEFAULT_TARGET, "--base/BASE")
    return WorkloadSettings(
        target=_target_settings(opts, base, local),
        base=base,
        model=str(opts.model),
        mode=mode,
        input_tokens=_dist(opts.input_tokens, "--input-tokens/INPUT_TOKENS"),
        output_tokens=_dist(opts.output_tokens, "--output-tokens/OUTPUT_TOKENS"),
        turns=turns,
        followup_tokens=_dist(opts.followup_tokens, "--followup-tokens/FOLLOWUP_TOKENS"),
        think_time=_dist(opts.think_time, "--think-time/THINK_TIME", integer=False),
        stream=as_bool(opts.stream, "--stream/STREAM"),
        ignore_eos=as_bool(getattr(opts, "ignore_eos", False), "--ignore-eos/IGNORE_EOS"),
        rate=_number(opts.rate, "--rate/RATE", minimum=0.0, strict=False),
        arrival=arrival,
        trace_path=trace_path,
        trace=trace,
        trace_time_scale=_number(opts.trace_time_scale, "--trace-time-scale/TRACE_TIME_SCALE", minimum=0, strict=True),
        calibrate=as_bool(opts.calibrate, "--calibrate/CALIBRATE"),
        seed=seed,
        seed_given=bool(seed_text),
        api=api_setting(opts),
        tools=load_tools(str(getattr(opts, "tools", "") or "").strip()),
    )
