"""Why a threshold had no data, in words (pure, no Locust).

A threshold whose metric never got a sample passes as "no data" (k6's rule), which hid, e.g., a gateway
SLO that never saw one ``gateway_latency`` sample because the gateway sent no overhead header. Every such
result now carries a reason:

* the metric has samples, but none with the tags asked: which tag value is missing and which values were
  recorded (``no llm_ttft_ms sample has prompt=short (values recorded: dataset)``: e.g. ``DATASET`` replaced
  the prompt variants);
* the metric has no sample at all: no LLM call was made, or none succeeded (with the count), or how many of
  the successful answers carried what the metric needs (``0 of 16 successful answers carried
  x-litellm-overhead-duration-ms or Server-Timing gateway``). What each metric needs is ``NEEDS``; a suite
  can say it better (the gateway suite names its configured headers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from llm_metrics.engine.store import TOKEN_SOURCE, MetricStore, Tags

__all__ = ["CALL_TAGS", "NEEDS", "CallCounts", "explain"]

NEEDS: dict[str, str] = {
    "llm_ttfb_ms": "response headers",
    "llm_ttft_ms": "streamed content (a streamed call with a non-empty content event)",
    "llm_receiving_ms": "a complete answer",
    "llm_tpot_ms": "2 or more output tokens with their chunk times (a streamed call)",
    "llm_chunk_gap_ms": "2 or more streamed content events",
    "llm_queue_ms": "an X-Queue-Time header",
    "llm_tokens_per_sec": "an output token count (usage.completion_tokens or streamed content)",
    "llm_output_tokens": "usage.completion_tokens or streamed content events",
    "llm_prompt_tokens": "usage.prompt_tokens",
    "llm_schedule_lag_ms": "a scheduled start (open-model scenarios only)",
    "llm_read_delay_ms": "the mock's send stamps (SERVER_STAMPS on, against the built-in mock)",
    "gateway_latency": "a gateway overhead header",
    "policy_check_latency": "a policy timing header",
}
"""What each per-call metric needs from an answer; a metric not listed is not explained by answers."""

CALL_TAGS = ("scenario", "name", "prompt", "status")
"""The tags every LLM call's series carries (a filter on them also narrows the count of answers)."""


@dataclass(frozen=True, slots=True)
class CallCounts:
    """LLM calls of the run (merged over workers): how many were made and how many succeeded."""

    total: int = 0
    ok: int = 0


def _series_tags(store: MetricStore, metric: str) -> list[Tags]:
    return [tags for _kind, m, tags in store.series() if m == metric]


def _show(filt: Tags) -> str:
    return ",".join(f"{k}:{v}" for k, v in filt)


def explain(
    metric: str,
    filt: Tags,
    store: MetricStore,
    calls: CallCounts,
    needs: Mapping[str, str] | None = None,
) -> str:
    """Why ``metric`` (with the tag filter ``filt``) has no data in ``store``; one sentence."""
    recorded = _series_tags(store, metric)
    if recorded:
        for key, want in filt:
            values = sorted({dict(t)[key] for t in recorded if key in dict(t)})
            if want in values:
                continue
            if not values:
                return f"no {metric} sample has a {key} tag (asked {key}:{want})"
            shown = ", ".join(values[:8]) + (", ..." if len(values) > 8 else "")
            what = "no prompt variant" if key == "prompt" else "no sample"
            return f"{what} of {metric} has {key}={want} (values recorded: {shown})"
        return f"no {metric} sample has all of {_show(filt)} together"
    need = (needs or {}).get(metric) or NEEDS.get(metric)
    if need is None:
        return f"nothing recorded {metric} in this run"
    if calls.total == 0:
        return f"no LLM call was made, so nothing recorded {metric}"
    if calls.ok == 0:
        return f"no LLM call succeeded ({calls.total} made, all failed), so nothing recorded {metric}"
    call_filter = tuple((k, v) for k, v in filt if k in CALL_TAGS)
    ok = int(store.select_counter(TOKEN_SOURCE, call_filter) or 0)
    where = f" with {_show(call_filter)}" if call_filter else ""
    if ok == 0:
        return f"no successful answer{where} ({calls.ok} successful answers in all), so nothing recorded {metric}"
    return f"{metric}: 0 of {ok} successful answers{where} carried {need}"
