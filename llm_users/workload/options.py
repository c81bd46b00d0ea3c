"""The knobs of the workload suite (``locustfiles/workload.py``) and their validation into ``WorkloadSettings``.

Every knob is a flag with its own environment variable, shown in the web UI form. An error names the flag
and its variable (``--input-tokens/INPUT_TOKENS: expected ...``) or the trace file, line and key. No Locust.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_metrics.engine.config import load_yaml_file
from llm_users.client.apis import Api, get_api
from llm_users.common.options import (
    CONF_DIR,
    OptionError,
    TargetSettings,
    add_knob,
    add_llm_target_arguments,
    api_setting,
    arrival_setting,
    as_bool,
    integer,
    llm_base,
    number,
    positive,
    target_settings,
)
from llm_users.common.prompts import PromptError, parse_tools
from llm_users.common.target_binding import LocalSecrets
from llm_users.pacing.arrival import KINDS
from llm_users.workload.synthetic import DIST_SPEC, LengthDist, parse_dist
from llm_users.workload.trace import TraceRecord, load_trace

__all__ = ["MODES", "WorkloadSettings", "add_workload_arguments", "workload_settings"]

MODES = ("closed", "open", "trace")
DEFAULT_TRACE = CONF_DIR / "traces" / "example.jsonl"


def add_workload_arguments(parser: Any) -> None:
    """The workload suite's knobs (plus the shared secrets and timeouts, and the LLM target)."""
    add_llm_target_arguments(parser)
    add_knob(
        parser,
        "--tools",
        "TOOLS",
        "",
        "YAML/JSON file of tool definitions sent with every call: a list, or a mapping with 'tools'",
    )
    add_knob(
        parser,
        "--workload",
        "WORKLOAD",
        "closed",
        "closed: each User runs conversations with think time (-u sets the load); open: arrivals at --rate "
        "handed to idle Users; trace: replay --trace at its offsets",
    )
    _add_length_arguments(parser)
    add_knob(parser, "--stream", "STREAM", "true", "true: streamed calls (TTFT)", type=str)
    add_knob(
        parser,
        "--ignore-eos",
        "IGNORE_EOS",
        "false",
        "true: send ignore_eos (vLLM, SGLang) so that every answer is max_tokens long",
        type=str,
    )
    _add_open_and_trace_arguments(parser)
    add_knob(
        parser,
        "--calibrate",
        "CALIBRATE",
        "true",
        "true: probe the server's usage.prompt_tokens once per process and size the prompts by it",
        type=str,
    )
    add_knob(
        parser,
        "--seed",
        "SEED",
        "",
        "Seed of the synthetic texts and lengths; empty: a new one each run, so a server's prefix cache "
        "does not remember the last run's prompts",
    )


def _add_length_arguments(parser: Any) -> None:
    """The conversation's shape: prompt and answer lengths, turns, think time."""
    add_knob(
        parser,
        "--input-tokens",
        "INPUT_TOKENS",
        "256",
        f"Prompt length of a conversation's first turn, in the server's tokens: {DIST_SPEC}",
    )
    add_knob(parser, "--output-tokens", "OUTPUT_TOKENS", "128", f"max_tokens of every call: {DIST_SPEC}")
    add_knob(
        parser,
        "--turns",
        "TURNS",
        1,
        "Turns per conversation; each turn resends the history plus a next question",
        type=int,
    )
    add_knob(
        parser,
        "--followup-tokens",
        "FOLLOWUP_TOKENS",
        "64",
        f"Length of each next question (turns 2+), in server tokens: {DIST_SPEC}",
    )
    add_knob(
        parser,
        "--think-time",
        "THINK_TIME",
        "0",
        "Seconds a User waits between turns and conversations (closed workload): X | uniform:A:B | "
        "exp:MEAN[:MAX] | ...",
    )


def _add_open_and_trace_arguments(parser: Any) -> None:
    """The open workload's arrivals and the trace to replay."""
    add_knob(
        parser, "--rate", "RATE", 1.0, "Open workload: arrivals per second for the whole test (all workers)", type=float
    )
    add_knob(parser, "--arrival", "ARRIVAL", "constant", f"Open workload: {' or '.join(KINDS)}")
    add_knob(
        parser,
        "--trace",
        "TRACE",
        "",
        "Trace workload: JSONL file of offset_s, input_tokens, output_tokens[, conversation_id]; "
        f"default {DEFAULT_TRACE.relative_to(CONF_DIR.parent)}",
    )
    add_knob(
        parser,
        "--trace-time-scale",
        "TRACE_TIME_SCALE",
        1.0,
        "Multiply every trace offset by this (0.1 replays 10x faster)",
        type=float,
    )


def _dist(value: Any, flag: str, *, integer: bool = True) -> LengthDist:
    try:
        return parse_dist(value, integer=integer)
    except ValueError as exc:
        raise OptionError(f"{flag}: {exc}") from None


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
    turns = integer(opts.turns, "--turns/TURNS", minimum=1, what="an integer >= 1")
    arrival = arrival_setting(opts)
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
    base = llm_base(opts)
    return WorkloadSettings(
        target=target_settings(opts, base, local),
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
        rate=number(opts.rate, "--rate/RATE"),
        arrival=arrival,
        trace_path=trace_path,
        trace=trace,
        trace_time_scale=positive(opts.trace_time_scale, "--trace-time-scale/TRACE_TIME_SCALE"),
        calibrate=as_bool(opts.calibrate, "--calibrate/CALIBRATE"),
        seed=seed,
        seed_given=bool(seed_text),
        api=api_setting(opts),
        tools=load_tools(str(getattr(opts, "tools", "") or "").strip()),
    )
