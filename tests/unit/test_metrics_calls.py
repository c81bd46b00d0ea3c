"""Metric math of one call, hand-computed against design.md section 4."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_metrics.engine.calls import (
    CallRecord,
    GoodputSLO,
    meets_slo,
    metric_values,
    output_tokens,
    token_source,
    tpot_ms,
    ttfo_ms,
    ttft_ms,
)


def call(**kw: Any) -> CallRecord:
    """A streamed call: sent at 10.0 s, headers at 10.05, content at 10.2, 10.25, 10.3, 10.4, end 10.45."""
    base: dict[str, Any] = dict(
        scenario="chat_stream",
        name="/v1/chat/completions",
        prompt="short",
        status=200,
        t_start=10.0,
        t_headers=10.05,
        t_first_content=10.2,
        chunk_times=[10.2, 10.25, 10.3, 10.4],
        t_end=10.45,
        content_events=4,
        stream=True,
    )
    base.update(kw)
    return CallRecord(**base)


def values(rec: CallRecord) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for name, v in metric_values(rec):
        out.setdefault(name, []).append(v)
    return out


def test_streamed_call_with_usage_every_metric() -> None:
    rec = call(usage_completion_tokens=4, usage_prompt_tokens=12, queue_ms=7.0)
    assert values(rec) == {
        "llm_ttfb_ms": [pytest.approx(50.0)],
        "llm_ttft_ms": [pytest.approx(200.0)],
        "llm_receiving_ms": [pytest.approx(400.0)],
        "llm_total_ms": [pytest.approx(450.0)],
        "llm_tpot_ms": [pytest.approx(200.0 / 3)],  # (10.4 - 10.2) s / (4 - 1) tokens
        "llm_tokens_per_sec": [pytest.approx(4 / 0.45)],
        "llm_output_tokens": [4.0],
        "llm_prompt_tokens": [12.0],
        "llm_queue_ms": [7.0],
        "llm_chunk_gap_ms": [pytest.approx(50.0), pytest.approx(50.0), pytest.approx(100.0)],
    }
    assert rec.token_source == "usage"


# (case, record overrides, metric, expected values; [] means "not recorded")
CASES: list[tuple[str, dict[str, Any], str, list[Any]]] = [
    ("usage beats content events", dict(usage_completion_tokens=9), "llm_output_tokens", [9.0]),
    ("no usage: content events counted", dict(), "llm_output_tokens", [4.0]),
    ("tpot uses usage tokens", dict(usage_completion_tokens=9), "llm_tpot_ms", [pytest.approx(25.0)]),
    ("tpot from events without usage", dict(), "llm_tpot_ms", [pytest.approx(200.0 / 3)]),
    (
        "tpot omitted with 1 token",
        dict(usage_completion_tokens=1, chunk_times=[10.2], content_events=1),
        "llm_tpot_ms",
        [],
    ),
    (
        "tpot omitted with one content event even if usage says more",
        dict(usage_completion_tokens=10, chunk_times=[10.2], content_events=1),
        "llm_tpot_ms",
        [],
    ),
    ("no gaps with one content event", dict(chunk_times=[10.2], content_events=1), "llm_chunk_gap_ms", []),
    ("no queue header: not recorded", dict(), "llm_queue_ms", []),
    ("queue header 0 is a value", dict(queue_ms=0.0), "llm_queue_ms", [0.0]),
    ("no usage: no prompt tokens", dict(), "llm_prompt_tokens", []),
    ("no schedule: no lag", dict(), "llm_schedule_lag_ms", []),
    ("open model: schedule lag", dict(t_scheduled=9.99), "llm_schedule_lag_ms", [pytest.approx(10.0)]),
    ("no headers stamp: no ttfb", dict(t_headers=None), "llm_ttfb_ms", []),
    ("no headers stamp: no receiving", dict(t_headers=None), "llm_receiving_ms", []),
    ("no content: no ttft", dict(t_first_content=None, chunk_times=[], content_events=0), "llm_ttft_ms", []),
    (
        "stream without content: 0 tokens",
        dict(t_first_content=None, chunk_times=[], content_events=0),
        "llm_output_tokens",
        [0.0],
    ),
    ("no end stamp: no total", dict(t_end=None), "llm_total_ms", []),
    ("no end stamp: no tokens per second", dict(t_end=None), "llm_tokens_per_sec", []),
    ("extra metrics as given", dict(extra={"gateway_latency": 3.5}), "gateway_latency", [3.5]),
]


@pytest.mark.parametrize(("case", "overrides", "metric", "expected"), CASES, ids=[c[0] for c in CASES])
def test_metric_rules(case: str, overrides: dict[str, Any], metric: str, expected: list[Any]) -> None:
    assert values(call(**overrides)).get(metric, []) == expected


def test_non_streamed_call_has_no_ttft_nor_gaps() -> None:
    rec = call(
        stream=False,
        t_first_content=None,
        chunk_times=[],
        content_events=0,
        t_end=11.0,
        usage_completion_tokens=100,
        usage_prompt_tokens=20,
    )
    v = values(rec)
    assert "llm_ttft_ms" not in v and "llm_chunk_gap_ms" not in v and "llm_tpot_ms" not in v
    assert v["llm_total_ms"] == [pytest.approx(1000.0)]
    assert v["llm_output_tokens"] == [100.0]
    assert v["llm_tokens_per_sec"] == [pytest.approx(100.0)]


def test_non_streamed_call_without_usage_has_unknown_tokens() -> None:
    rec = call(stream=False, t_first_content=None, chunk_times=[], content_events=0)
    v = values(rec)
    assert "llm_output_tokens" not in v and "llm_tokens_per_sec" not in v
    assert (token_source(rec), output_tokens(rec)) == (None, None)


def test_token_source_says_events_without_usage() -> None:
    assert call().token_source == "events"
    assert call(usage_completion_tokens=4).token_source == "usage"


@pytest.mark.parametrize(
    "overrides",
    [
        dict(ok=False, status=500, error="HTTP 500"),
        dict(ok=False, status=0, error="connection reset", t_headers=None),
        dict(
            ok=False,
            status=200,
            error="stream cut",
            usage_completion_tokens=4,
            queue_ms=3.0,
            extra={"gateway_latency": 1.0},
            t_scheduled=9.9,
        ),
    ],
)
def test_failed_call_records_only_total(overrides: dict[str, Any]) -> None:
    assert values(call(**overrides)) == {"llm_total_ms": [pytest.approx(450.0)]}


def test_failed_call_without_end_records_nothing() -> None:
    assert metric_values(call(ok=False, t_end=None)) == []


# (case, record overrides, SLO, met)
GOODPUT: list[tuple[str, dict[str, Any], GoodputSLO, bool]] = [
    ("no limits", dict(), GoodputSLO(), True),
    ("ttft within", dict(), GoodputSLO(ttft_ms=200.0), True),  # limits are inclusive
    ("ttft over", dict(), GoodputSLO(ttft_ms=199.0), False),
    ("tpot within", dict(), GoodputSLO(tpot_ms=70.0), True),
    ("tpot over", dict(), GoodputSLO(tpot_ms=60.0), False),
    ("total over", dict(), GoodputSLO(total_ms=400.0), False),
    ("all within", dict(), GoodputSLO(ttft_ms=500, tpot_ms=100, total_ms=500), True),
    ("failed call never counts", dict(ok=False, status=500), GoodputSLO(total_ms=1e9), False),
    (
        "stream without content fails a ttft limit",
        dict(t_first_content=None, chunk_times=[]),
        GoodputSLO(ttft_ms=1e9),
        False,
    ),
    (
        "non-stream ignores the ttft limit",
        dict(stream=False, t_first_content=None, chunk_times=[]),
        GoodputSLO(ttft_ms=1.0),
        True,
    ),
    ("single token ignores the tpot limit", dict(usage_completion_tokens=1), GoodputSLO(tpot_ms=0.001), True),
    ("unknown total fails a total limit", dict(t_end=None), GoodputSLO(total_ms=1e9), False),
]


@pytest.mark.parametrize(("case", "overrides", "slo", "met"), GOODPUT, ids=[g[0] for g in GOODPUT])
def test_goodput(case: str, overrides: dict[str, Any], slo: GoodputSLO, met: bool) -> None:
    assert meets_slo(call(**overrides), slo) is met


def _meets_slo_by_the_metric_functions(rec: CallRecord, slo: GoodputSLO) -> bool:
    """The module docstring's goodput rule written with ttft_ms, ttfo_ms and tpot_ms (meets_slo inlines them)."""
    if not rec.ok:
        return False
    if slo.total_ms is not None and (rec.t_end is None or (rec.t_end - rec.t_start) * 1000.0 > slo.total_ms):
        return False
    for limit, value in ((slo.ttft_ms, ttft_ms(rec)), (slo.ttfo_ms, ttfo_ms(rec))):
        if limit is not None and rec.stream and (value is None or value > limit):
            return False
    t = tpot_ms(rec)
    return slo.tpot_ms is None or t is None or t <= slo.tpot_ms


@settings(max_examples=300, deadline=None)
@given(
    st.data(),
    st.lists(st.floats(min_value=0.0, max_value=0.5), min_size=0, max_size=6),
    st.sampled_from([None, 0, 1, 2, 5]),
    st.booleans(),
    st.booleans(),
)
def test_meets_slo_is_the_rule_written_with_the_metric_functions(
    data: st.DataObject, gaps: list[float], usage: int | None, stream: bool, ok: bool
) -> None:
    times = [10.2]
    for g in gaps:
        times.append(times[-1] + g)
    maybe = st.one_of(st.none(), st.floats(min_value=10.0, max_value=12.0))
    rec = call(
        ok=ok,
        stream=stream,
        chunk_times=times if stream else [],
        usage_completion_tokens=usage,
        content_events=len(times),
        t_first_content=data.draw(maybe),
        t_first_output=data.draw(maybe),
        t_end=data.draw(maybe),
    )
    # limits drawn near the call's own values too, so a value equal to a limit is tried
    near = [v for v in (ttft_ms(rec), ttfo_ms(rec), tpot_ms(rec)) if v is not None]
    limit = st.one_of(st.none(), st.floats(min_value=0.0, max_value=3000.0), st.sampled_from(near or [1.0]))
    slo = GoodputSLO(
        ttft_ms=data.draw(limit), tpot_ms=data.draw(limit), total_ms=data.draw(limit), ttfo_ms=data.draw(limit)
    )
    assert meets_slo(rec, slo) is _meets_slo_by_the_metric_functions(rec, slo)
