"""Request records (``requests_log``): the line of one call, the file, and reading lines back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_metrics.engine.calls import CallRecord
from llm_metrics.engine.store import MetricStore
from llm_metrics.engine.timeseries import TimeSeries
from llm_metrics.outputs.requests_log import (
    LINE_KEYS,
    RequestsLog,
    call_line,
    is_requests_path,
    summary_from_requests,
    worker_path,
)


def streamed(t0: float = 100.0, *, usage: bool = True) -> CallRecord:
    return CallRecord(
        scenario="chat_stream",
        name="/v1/chat/completions",
        prompt="short",
        status=200,
        t_scheduled=t0 - 0.001,
        t_start=t0,
        t_headers=t0 + 0.010,
        t_first_content=t0 + 0.200,
        t_first_output=t0 + 0.250,
        chunk_times=[t0 + 0.200, t0 + 0.250, t0 + 0.300],
        t_end=t0 + 0.301,
        content_events=3,
        usage_completion_tokens=3 if usage else None,
        usage_prompt_tokens=12 if usage else None,
    )


def test_a_line_holds_every_time_on_the_wall_clock_in_order() -> None:
    line = call_line(streamed(), suite="chat", api="chat", worker="local", offset=1_700_000_000.0)
    assert tuple(line) == LINE_KEYS
    times = [line[k] for k in ("scheduled", "sent", "headers", "first_token", "first_output_token", "last_token")]
    assert times == sorted(times) and times[-1] <= line["end"]
    assert line["sent"] == 1_700_000_100.0
    assert line["first_token"] - line["sent"] == pytest.approx(0.2, abs=2e-6)
    assert (line["output_tokens"], line["output_tokens_source"]) == (3, "usage")
    assert (line["prompt_tokens"], line["prompt_tokens_source"]) == (12, "usage")
    assert line["reasoning_tokens"] is None and line["worker"] == "local"


def test_without_usage_tokens_are_counted_events_and_prompt_tokens_unknown() -> None:
    line = call_line(streamed(usage=False), suite="chat", api=None, worker="worker1", offset=0.0)
    assert (line["output_tokens"], line["output_tokens_source"]) == (3, "events")
    assert (line["prompt_tokens"], line["prompt_tokens_source"]) == (None, None)


def test_a_failed_call_keeps_its_reason_and_the_times_it_reached() -> None:
    rec = CallRecord(scenario="s", name="n", status=500, ok=False, error="HTTP 500", t_start=5.0, t_end=5.1)
    line = call_line(rec, suite="chat", api="chat", worker="local", offset=0.0)
    assert (line["ok"], line["error"], line["status"]) == (False, "HTTP 500", 500)
    assert line["headers"] is None and line["first_token"] is None and line["last_token"] is None


def test_file_lines_restart_and_worker_names(tmp_path: Path) -> None:
    log = RequestsLog(tmp_path / "sub" / "r.jsonl", suite="chat", worker="local", api="chat")
    for i in range(3):
        log.write(streamed(float(i)))
    log.flush()
    assert len((tmp_path / "sub" / "r.jsonl").read_text().splitlines()) == 3 == log.lines
    log.restart()
    log.write(streamed())
    log.close()
    assert len((tmp_path / "sub" / "r.jsonl").read_text().splitlines()) == 1
    assert worker_path("out/req.jsonl", 2) == Path("out/req.worker2.jsonl")
    assert is_requests_path("a.jsonl,b.jsonl") and is_requests_path("out/*.jsonl") and not is_requests_path("s.json")


def test_read_back_gives_the_metrics_of_the_lines(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    recs = [streamed(1000.0 + i) for i in range(5)]
    p.write_text(
        "".join(json.dumps(call_line(r, suite="chat", api="chat", worker="local", offset=0.0)) + "\n" for r in recs)
    )
    doc = summary_from_requests(p)
    ttft = next(m for m in doc["metrics"] if m["name"] == "llm_ttft_ms")
    assert ttft["count"] == 5 and ttft["p50"] == pytest.approx(200.0, rel=0.005)
    tpot = next(m for m in doc["metrics"] if m["name"] == "llm_tpot_ms")
    assert tpot["p50"] == pytest.approx(50.0, rel=0.005)
    assert not any(m["name"] == "llm_chunk_gap_ms" for m in doc["metrics"])
    assert sum(s["requests"] for s in doc["series"]) == 5
    assert doc["duration_s"] == pytest.approx(4.301, abs=1e-3)


@pytest.mark.parametrize(
    ("text", "where"),
    [("{not json\n", "r.jsonl:1: not JSON"), ('{"a": 1}\n', "r.jsonl:1: not a request record")],
)
def test_a_malformed_line_is_named_by_file_and_line(tmp_path: Path, text: str, where: str) -> None:
    p = tmp_path / "r.jsonl"
    p.write_text(text)
    with pytest.raises(ValueError, match=where):
        summary_from_requests(p)


def test_clear_empties_the_store_and_the_series() -> None:
    store, series = MetricStore(), TimeSeries()
    store.mark_start(1.0)
    store.record_call(streamed())
    series.record_call(streamed(), 5.0)
    store.clear()
    series.clear()
    assert list(store.histograms()) == [] and store.started_at is None
    assert series.to_json() == []
    store.record_call(streamed())
    assert sum(h.count for _, _, h in store.histograms("llm_ttft_ms")) == 1
