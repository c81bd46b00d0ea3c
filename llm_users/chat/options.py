"""The chat suite's knobs (seed 003's environment knobs) and their validation into ``ChatSettings``.

Each knob is a flag with its own environment variable, shown in the web UI (``llm_users.common.options`` has the
ones every suite shares). ``chat_settings`` turns the parsed options into validated settings; an error names the
flag and its variable, or the prompts file and the entry. No Locust import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llm_users.client.apis import Api, get_api
from llm_users.common import options as shared
from llm_users.common import target_binding
from llm_users.common.options import OptionError, TargetSettings, add_knob
from llm_users.common.prompts import PromptError, PromptSet, load_dataset, load_prompt_sets
from llm_users.pacing.arrival import KINDS

__all__ = ["ChatSettings", "OptionError", "PromptError", "add_chat_arguments", "chat_settings"]


def add_chat_arguments(parser: Any) -> None:
    """Seed 003's knobs plus the suite's own (arrival kind, prompt variants, dataset, max tokens)."""
    shared.add_llm_target_arguments(parser)
    add_knob(
        parser,
        "--nonstream-rps",
        "NONSTREAM_RPS",
        2.0,
        "Arrival rate of non-stream calls, req/s for the whole test; 0 disables",
        type=float,
    )
    add_knob(
        parser,
        "--stream-rps",
        "STREAM_RPS",
        1.0,
        "Arrival rate of streamed calls, req/s for the whole test; 0 disables",
        type=float,
    )
    add_knob(
        parser, "--duration-min", "DURATION_MIN", 5.0, "Test length in minutes when --run-time is not given", type=float
    )
    add_knob(parser, "--arrival", "ARRIVAL", "constant", f"Arrival process: {' or '.join(KINDS)}")
    add_knob(parser, "--prompts", "PROMPTS", "short,cot", "Prompt variants, comma-separated names from --prompts-file")
    add_knob(
        parser, "--prompts-file", "PROMPTS_FILE", str(shared.CONF_DIR / "prompts.yaml"), "YAML file of prompt variants"
    )
    add_knob(parser, "--dataset", "DATASET", "", "JSON/JSONL/ShareGPT file of prompts, sent as variant 'dataset'")
    add_knob(parser, "--max-tokens", "MAX_TOKENS", 0, "max_tokens of every call; 0 = each variant's own", type=int)
    add_knob(
        parser, "--smoke", "SMOKE", "true", "true: GET /v1/version and /v1/models once per process at start", type=str
    )


@dataclass
class ChatSettings:
    target: TargetSettings
    base: str
    model: str
    nonstream_rps: float
    stream_rps: float
    duration_s: float
    arrival: str
    prompt_sets: dict[str, PromptSet]
    variants: tuple[str, ...]
    max_tokens: int
    smoke: bool
    api: Api = field(default_factory=lambda: get_api("chat"))


def _variants(opts: Any) -> tuple[dict[str, PromptSet], tuple[str, ...]]:
    """The prompt sets of ``--prompts-file`` (plus ``--dataset``) and the variants ``--prompts`` chooses."""
    sets = load_prompt_sets(opts.prompts_file)
    variants = tuple(v.strip() for v in str(opts.prompts).split(",") if v.strip())
    if opts.dataset:
        sets["dataset"] = load_dataset(opts.dataset)
        if str(opts.prompts) == "short,cot":  # the default: a dataset replaces the built-in variants
            variants = ("dataset",)
    if not variants:
        raise OptionError("--prompts/PROMPTS: expected at least one prompt variant name")
    for v in variants:
        if v not in sets:
            raise OptionError(
                f"--prompts/PROMPTS: unknown prompt variant {v!r} (in {opts.prompts_file}: {', '.join(sorted(sets))})"
            )
    return sets, variants


def chat_settings(opts: Any, local: target_binding.LocalSecrets | None = None) -> ChatSettings:
    """Validate the chat knobs; raise OptionError naming the flag, or PromptError naming the file."""
    arrival = shared.arrival_setting(opts)
    duration_min = shared.positive(opts.duration_min, "--duration-min/DURATION_MIN")
    max_tokens = shared.integer(opts.max_tokens, "--max-tokens/MAX_TOKENS")
    sets, variants = _variants(opts)
    api = shared.api_setting(opts)
    stream_rps = shared.rate(opts.stream_rps, "--stream-rps/STREAM_RPS")
    if not api.streams and stream_rps > 0:
        raise OptionError(
            f"--stream-rps/STREAM_RPS: the {api.name} API does not stream; set it to 0 and give the rate "
            "with --nonstream-rps/NONSTREAM_RPS"
        )
    base = shared.llm_base(opts)
    return ChatSettings(
        target=shared.target_settings(opts, base, local),
        base=base,
        model=str(opts.model),
        nonstream_rps=shared.rate(opts.nonstream_rps, "--nonstream-rps/NONSTREAM_RPS"),
        stream_rps=stream_rps,
        duration_s=duration_min * 60.0,
        arrival=arrival,
        prompt_sets=sets,
        variants=variants,
        max_tokens=max_tokens,
        smoke=shared.as_bool(opts.smoke, "--smoke/SMOKE"),
        api=api,
    )
