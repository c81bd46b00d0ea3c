"""One LLM call as measured by the client, and the metric math of design.md section 4.

``CallRecord`` holds raw ``time.perf_counter()`` stamps in seconds; ``metric_values`` turns them into the
suite's metrics in milliseconds (or counts). The rules, exactly as design.md section 4 states them:

===================== ========================================================================================
``llm_ttfb_ms``       ``t_headers - t_start``
``llm_ttft_ms``       ``t_first_content - t_start`` (first token event of any kind); streamed calls only
``llm_ttfo_ms``       ``t_first_output - t_start`` (first output, non-reasoning, token event); streamed only
``llm_reasoning_ms``  ``t_first_output - t_first_reasoning``; streamed calls that sent both kinds
``llm_reasoning_tokens`` ``usage_reasoning_tokens`` when the server sent it, else reasoning events of a stream
                      when there were any (a call that shows no reasoning at all records nothing)
``llm_embeddings_per_sec`` embeddings in the answer / (total ms / 1000) (the embeddings API)
``llm_receiving_ms``  ``t_end - t_headers``
``llm_total_ms``      ``t_end - t_start``
``llm_tpot_ms``       ``(last content event - first content event) / (output tokens - 1)``
``llm_chunk_gap_ms``  every gap between successive content events (one value per gap, pooled)
``llm_queue_ms``      ``queue_ms`` (the ``X-Queue-Time`` header) when present
``llm_tokens_per_sec`` output tokens / (total ms / 1000)
``llm_output_tokens`` ``usage_completion_tokens``, else ``tokenizer_completion_tokens``, else ``content_events``
``llm_prompt_tokens`` ``usage_prompt_tokens`` when present, else ``tokenizer_prompt_tokens``
``llm_schedule_lag_ms`` ``t_start - t_scheduled`` (open model) when scheduled
extra metrics         ``extra`` (e.g. ``gateway_latency``), as given
===================== ========================================================================================

A metric that cannot be computed is left out, never recorded as 0. Choices where the design is silent:

* A failed call (``ok`` false) yields only ``llm_total_ms`` (when ``t_end`` is known), so failures never
  feed the latency metrics of successful calls; the caller tags it with the failure status.
* ``llm_tpot_ms`` needs at least 2 output tokens *and* at least 2 content events: with a single content
  event there is no decode span to divide (a server that sends all tokens in one event has no TPOT).
* Output tokens of a non-streamed call without usage are unknown (there are no content events to count),
  so ``llm_output_tokens`` and ``llm_tokens_per_sec`` are left out. A streamed call without usage counts its
  content events, and a stream that sent none has a measured 0 output tokens. ``token_source`` says which
  source was used: ``"usage"``, ``"tokenizer"`` (a local tokenizer, ``--tokenizer``, counted the streamed
  text), ``"events"`` or ``None`` when unknown.
* ``llm_tokens_per_sec`` is left out when the total time is 0.
* Reasoning tokens are part of the output tokens (as OpenAI's ``completion_tokens`` counts them), so
  ``llm_tpot_ms`` spans every token event; ``llm_reasoning_tokens`` says how many of them were reasoning.
  ``reasoning_token_source`` says where that count came from (``"usage"``, ``"events"``, ``None``).
* ``llm_schedule_lag_ms`` is passed through as measured; a negative lag (sent early) is clamped to 0 and
  counted by the histogram.

Goodput (vLLM ``--goodput``): ``meets_slo`` says whether a call met every per-request limit that is set.
A failed call never does. A set ``ttft_ms`` (or ``ttfo_ms``) limit is checked on streamed calls only (non-streamed calls
have no TTFT) and a streamed call that sent no content fails it; a set ``tpot_ms`` limit is checked only
when TPOT exists (fewer than 2 tokens: nothing to check); a set ``total_ms`` limit fails when the total is
unknown. Limits are inclusive: a value equal to the limit meets it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "METRIC_CHUNK_GAP",
    "METRIC_EMBEDDINGS_PER_SEC",
    "METRIC_OUTPUT_TOKENS",
    "METRIC_PROMPT_TOKENS",
    "METRIC_QUEUE",
    "METRIC_REASONING_MS",
    "METRIC_REASONING_TOKENS",
    "METRIC_RECEIVING",
    "METRIC_SCHEDULE_LAG",
    "METRIC_TOKENS_PER_SEC",
    "METRIC_TOTAL",
    "METRIC_TPOT",
    "METRIC_TTFB",
    "METRIC_TTFO",
    "METRIC_TTFT",
    "CallRecord",
    "GoodputSLO",
    "chunk_gaps_ms",
    "meets_slo",
    "metric_values",
    "output_tokens",
    "reasoning_token_source",
    "reasoning_tokens",
    "scalar_metric_values",
    "token_source",
    "tpot_ms",
    "ttft_ms",
]

METRIC_TTFB = "llm_ttfb_ms"
METRIC_TTFT = "llm_ttft_ms"
METRIC_RECEIVING = "llm_receiving_ms"
METRIC_TOTAL = "llm_total_ms"
METRIC_TPOT = "llm_tpot_ms"
METRIC_CHUNK_GAP = "llm_chunk_gap_ms"
METRIC_QUEUE = "llm_queue_ms"
METRIC_TOKENS_PER_SEC = "llm_tokens_per_sec"
METRIC_OUTPUT_TOKENS = "llm_output_tokens"
METRIC_PROMPT_TOKENS = "llm_prompt_tokens"
METRIC_SCHEDULE_LAG = "llm_schedule_lag_ms"
METRIC_TTFO = "llm_ttfo_ms"
METRIC_REASONING_MS = "llm_reasoning_ms"
METRIC_REASONING_TOKENS = "llm_reasoning_tokens"
METRIC_EMBEDDINGS_PER_SEC = "llm_embeddings_per_sec"


@dataclass(slots=True, kw_only=True)
class CallRecord:
    """Raw measurements of one LLM call (keyword-only). Times are ``time.perf_counter()`` seconds."""

    scenario: str
    name: str
    prompt: str = ""
    """Prompt-set tag (e.g. ``short``, ``cot``); empty for none."""
    status: int = 0
    """HTTP status; 0 when no response arrived."""
    ok: bool = True
    error: str | None = None
    """Failure reason of a failed call."""
    t_start: float
    """Send time."""
    t_scheduled: float | None = None
    t_headers: float | None = None
    t_first_content: float | None = None
    """First token event of any kind (reasoning or output)."""
    t_first_output: float | None = None
    """First output (non-reasoning) token event; a stream without reasoning has it equal to t_first_content."""
    t_first_reasoning: float | None = None
    chunk_times: list[float] = field(default_factory=list)
    """Arrival of each content event, the first one included."""
    t_end: float | None = None
    usage_completion_tokens: int | None = None
    usage_prompt_tokens: int | None = None
    content_events: int = 0
    """Token events of a stream (reasoning ones included)."""
    reasoning_events: int = 0
    usage_reasoning_tokens: int | None = None
    embeddings: int | None = None
    """Embeddings in the answer (the embeddings API)."""
    tokenizer_completion_tokens: int | None = None
    """Output tokens counted by a local tokenizer (``--tokenizer``) when the server sent no usage."""
    tokenizer_prompt_tokens: int | None = None
    """Prompt tokens counted by a local tokenizer when the server sent no usage."""
    queue_ms: float | None = None
    stream: bool = True
    extra: dict[str, float] = field(default_factory=dict)
    """Extra metric values (e.g. ``gateway_latency``), recorded as given for successful calls."""
    tags: tuple[tuple[str, str], ...] = ()
    """Extra tags beyond scenario, name, prompt and status, as ``(key, value)`` pairs."""

    @property
    def token_source(self) -> str | None:
        return token_source(self)

    @property
    def output_tokens(self) -> int | None:
        return output_tokens(self)


@dataclass(frozen=True, slots=True)
class GoodputSLO:
    """Per-request limits in milliseconds; None means no limit on that metric."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    total_ms: float | None = None
    ttfo_ms: float | None = None

    @property
    def empty(self) -> bool:
        return self.ttft_ms is None and self.tpot_ms is None and self.total_ms is None and self.ttfo_ms is None


def token_source(rec: CallRecord) -> str | None:
    """``"usage"`` when the server reported completion tokens, ``"tokenizer"`` when a local tokenizer counted
    them, ``"events"`` for a stream without either."""
    if rec.usage_completion_tokens is not None:
        return "usage"
    if rec.tokenizer_completion_tokens is not None:
        return "tokenizer"
    if rec.stream:
        return "events"
    return None


def output_tokens(rec: CallRecord) -> int | None:
    """Server usage when present, else the local tokenizer's count, else content events of a stream; None when
    unknown."""
    if rec.usage_completion_tokens is not None:
        return rec.usage_completion_tokens
    if rec.tokenizer_completion_tokens is not None:
        return rec.tokenizer_completion_tokens
    if rec.stream:
        return rec.content_events
    return None


def reasoning_tokens(rec: CallRecord) -> int | None:
    """Reasoning tokens from the usage when present, else reasoning events of a stream that sent any."""
    if rec.usage_reasoning_tokens is not None:
        return rec.usage_reasoning_tokens
    if rec.stream and rec.reasoning_events:
        return rec.reasoning_events
    return None


def reasoning_token_source(rec: CallRecord) -> str | None:
    """``"usage"``, ``"events"`` or None, as ``reasoning_tokens`` found the count."""
    if rec.usage_reasoning_tokens is not None:
        return "usage"
    if rec.stream and rec.reasoning_events:
        return "events"
    return None


def ttfo_ms(rec: CallRecord) -> float | None:
    """Time to the first output (non-reasoning) token of a streamed call, in ms."""
    if rec.stream and rec.t_first_output is not None:
        return (rec.t_first_output - rec.t_start) * 1000.0
    return None


def ttft_ms(rec: CallRecord) -> float | None:
    """Time to first content of a streamed call, in ms."""
    if rec.stream and rec.t_first_content is not None:
        return (rec.t_first_content - rec.t_start) * 1000.0
    return None


def tpot_ms(rec: CallRecord, tokens: int | None = None) -> float | None:
    """Time per output token after the first, in ms; None with fewer than 2 tokens or content events."""
    if tokens is None:
        tokens = output_tokens(rec)
    ct = rec.chunk_times
    if tokens is None or tokens < 2 or len(ct) < 2:
        return None
    first = rec.t_first_content if rec.t_first_content is not None else ct[0]
    return (ct[-1] - first) * 1000.0 / (tokens - 1)


def chunk_gaps_ms(rec: CallRecord) -> list[float]:
    """Every gap between successive content events, in ms (empty for a failed call)."""
    ct = rec.chunk_times
    if not rec.ok or len(ct) < 2:
        return []
    prev = ct[0]
    out: list[float] = []
    append = out.append
    for t in ct[1:]:
        append((t - prev) * 1000.0)
        prev = t
    return out


def scalar_metric_values(rec: CallRecord) -> list[tuple[str, float]]:
    """Every metric of ``rec`` except the pooled chunk gaps (see ``chunk_gaps_ms``)."""
    t0 = rec.t_start
    t_end = rec.t_end
    if not rec.ok:
        if t_end is None:
            return []
        return [(METRIC_TOTAL, (t_end - t0) * 1000.0)]
    out: list[tuple[str, float]] = []
    th = rec.t_headers
    if th is not None:
        out.append((METRIC_TTFB, (th - t0) * 1000.0))
    if rec.stream and rec.t_first_content is not None:
        out.append((METRIC_TTFT, (rec.t_first_content - t0) * 1000.0))
        tfo = rec.t_first_output
        if tfo is not None:
            out.append((METRIC_TTFO, (tfo - t0) * 1000.0))
            if rec.t_first_reasoning is not None:
                out.append((METRIC_REASONING_MS, (tfo - rec.t_first_reasoning) * 1000.0))
    total = None
    if t_end is not None:
        if th is not None:
            out.append((METRIC_RECEIVING, (t_end - th) * 1000.0))
        total = (t_end - t0) * 1000.0
        out.append((METRIC_TOTAL, total))
    tokens = rec.usage_completion_tokens
    if tokens is None:
        tokens = rec.tokenizer_completion_tokens
        if tokens is None and rec.stream:
            tokens = rec.content_events
    if tokens is not None:
        ct = rec.chunk_times
        if tokens >= 2 and len(ct) >= 2:
            first = rec.t_first_content if rec.t_first_content is not None else ct[0]
            out.append((METRIC_TPOT, (ct[-1] - first) * 1000.0 / (tokens - 1)))
        if total:
            out.append((METRIC_TOKENS_PER_SEC, tokens * 1000.0 / total))
        out.append((METRIC_OUTPUT_TOKENS, float(tokens)))
    rt = reasoning_tokens(rec)
    if rt is not None:
        out.append((METRIC_REASONING_TOKENS, float(rt)))
    if rec.embeddings is not None and total:
        out.append((METRIC_EMBEDDINGS_PER_SEC, rec.embeddings * 1000.0 / total))
    prompt_tokens = rec.usage_prompt_tokens if rec.usage_prompt_tokens is not None else rec.tokenizer_prompt_tokens
    if prompt_tokens is not None:
        out.append((METRIC_PROMPT_TOKENS, float(prompt_tokens)))
    if rec.queue_ms is not None:
        out.append((METRIC_QUEUE, float(rec.queue_ms)))
    if rec.t_scheduled is not None:
        out.append((METRIC_SCHEDULE_LAG, (t0 - rec.t_scheduled) * 1000.0))
    if rec.extra:
        out.extend(rec.extra.items())
    return out


def metric_values(rec: CallRecord) -> list[tuple[str, float]]:
    """Every metric value of one call as ``(metric, value)`` pairs, chunk gaps last (one pair per gap)."""
    out = scalar_metric_values(rec)
    out.extend((METRIC_CHUNK_GAP, g) for g in chunk_gaps_ms(rec))
    return out


def meets_slo(rec: CallRecord, slo: GoodputSLO) -> bool:
    """True when the call succeeded and met every limit of ``slo`` that is set (module docstring)."""
    if not rec.ok:
        return False
    if slo.total_ms is not None and (rec.t_end is None or (rec.t_end - rec.t_start) * 1000.0 > slo.total_ms):
        return False
    if slo.ttft_ms is not None and rec.stream:
        t = ttft_ms(rec)
        if t is None or t > slo.ttft_ms:
            return False
    if slo.ttfo_ms is not None and rec.stream:
        t = ttfo_ms(rec)
        if t is None or t > slo.ttfo_ms:
            return False
    if slo.tpot_ms is not None:
        t = tpot_ms(rec)
        if t is not None and t > slo.tpot_ms:
            return False
    return True
