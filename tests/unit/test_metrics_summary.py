"""Summaries: the threshold table, the metrics table, the JSON document, redaction."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_metrics.engine.calls import CallRecord
from llm_metrics.engine.histogram import Histogram
from llm_metrics.engine.store import MetricStore
from llm_metrics.engine.thresholds import evaluate, parse_thresholds
from llm_metrics.outputs.summary import (
    SCHEMA,
    console_report,
    format_metrics_table,
    format_number,
    format_tags,
    format_thresholds_table,
    json_summary,
    redact,
    redact_obj,
)

SRC = "conf/thresholds.yaml"


def run_store() -> MetricStore:
    s = MetricStore()
    s.mark_start(0.0)
    s.mark_stop(10.0)
    for i in range(1, 101):
        s.add("llm_ttft_ms", {"scenario": "chat_stream", "status": "200", "prompt": "short"}, float(i) * 10)
    for i in range(100):
        s.rate("http_req_failed", {"name": "/v1/chat/completions"}, i == 0)
    s.inc("requests_blocked", {"scenario": "gw"}, 3)
    s.record_call(
        CallRecord(
            scenario="chat_stream",
            name="/v1/chat/completions",
            status=200,
            t_start=0.0,
            t_first_content=0.1,
            chunk_times=[0.1, 0.2],
            t_end=0.3,
            content_events=2,
        )
    )
    return s


THRESHOLDS: dict[str, Any] = {
    "http_req_failed": ["rate<0.02"],
    "llm_ttft_ms{scenario:chat_stream,prompt:short}": ["p(95)<900"],
    "gateway_latency": ["p(95)<50"],
    "requests_blocked": ["count<10", "rate<1"],
}


def results() -> list[Any]:
    return evaluate(parse_thresholds(THRESHOLDS, SRC), run_store())


@pytest.mark.parametrize(
    ("v", "text"),
    [(None, "-"), (3, "3"), (0.0, "0"), (1234.5678, "1234.57"), (0.012345, "0.01235"), (20.0, "20.00")],
)
def test_format_number(v: float | None, text: str) -> None:
    assert format_number(v) == text


def test_format_tags() -> None:
    assert format_tags((("prompt", "short"), ("status", "200"))) == "{prompt:short,status:200}"
    assert format_tags({}) == ""


def test_threshold_table_one_line_per_threshold() -> None:
    lines = format_thresholds_table(results()).splitlines()
    assert lines[0] == "THRESHOLDS"
    body = [line.split() for line in lines[1:-1]]
    assert body == [
        ["✓", "http_req_failed", "rate<0.02", "rate=0.0100", "(1", "of", "100)"],
        ["✗", "llm_ttft_ms{scenario:chat_stream,prompt:short}", "p(95)<900", "p(95)=948.65"],
        ["✓", "gateway_latency", "p(95)<50", "no", "data"],
        ["✓", "requests_blocked", "count<10", "count=3"],
        ["✓", "requests_blocked", "rate<1", "rate=0.3/s"],
    ]
    assert lines[-1] == "  4 of 5 thresholds passed; 1 had no data"


def test_threshold_table_ascii_and_empty() -> None:
    assert format_thresholds_table(results(), ascii=True).splitlines()[2].split()[0] == "FAIL"
    assert format_thresholds_table([]) == "THRESHOLDS\n  (none defined)\n"


def test_metrics_table_lists_each_series_with_its_stats() -> None:
    text = format_metrics_table(run_store())
    header = next(line for line in text.splitlines() if line.strip().startswith("metric"))
    assert header.split() == ["metric", "tags", "count", "avg", "p50", "p90", "p95", "p99", "max"]
    ttft = next(line for line in text.splitlines() if "prompt:short" in line and "llm_ttft_ms" in line)
    assert ttft.split()[:3] == ["llm_ttft_ms", "{prompt:short,scenario:chat_stream,status:200}", "100"]
    assert ttft.split()[-1] == "1000.00"
    assert "COUNTERS" in text and "RATES" in text
    assert "llm_output_tokens source: 1 calls from events" in text


def test_console_report_ends_with_the_thresholds() -> None:
    text = console_report(results(), run_store(), title="LLM load test: chat")
    assert text.startswith("LLM load test: chat\n===================\n")
    assert text.rstrip().endswith("4 of 5 thresholds passed; 1 had no data")


def test_json_summary_is_serialisable_and_stable() -> None:
    doc = json_summary(results(), run_store(), {"suite": "chat", "host": "http://127.0.0.1:8000"})
    assert list(doc) == [
        "schema",
        "ok",
        "metadata",
        "duration_s",
        "thresholds",
        "metrics",
        "rollups",
        "counters",
        "rates",
        "token_source",
        "reasoning_token_source",
        "warnings",
    ]
    assert doc["schema"] == SCHEMA and doc["ok"] is False and doc["duration_s"] == 10.0
    again = json_summary(results(), run_store(), {"suite": "chat", "host": "http://127.0.0.1:8000"})
    assert json.dumps(doc) == json.dumps(again)
    json.loads(json.dumps(doc, allow_nan=False))
    th = doc["thresholds"][1]
    assert th == {
        "metric": "llm_ttft_ms",
        "filter": {"prompt": "short", "scenario": "chat_stream"},
        "key": "llm_ttft_ms{scenario:chat_stream,prompt:short}",
        "expression": "p(95)<900",
        "source": SRC,
        "observed": pytest.approx(950.0, rel=0.01),
        "samples": 100,
        "ok": False,
        "no_data": False,
        "no_data_reason": None,
        "error": None,
        "abort_on_fail": False,
    }
    ttft = next(m for m in doc["metrics"] if m["name"] == "llm_ttft_ms" and m["tags"].get("prompt") == "short")
    assert list(ttft) == ["name", "tags", "count", "avg", "min", "p50", "p90", "p95", "p99", "max", "hist"]
    assert Histogram.from_wire(ttft["hist"]).count == 100
    # the roll-up of a metric merges its series: both prompts of llm_ttft_ms together
    roll = next(r for r in doc["rollups"] if r["name"] == "llm_ttft_ms" and r["tags"] == {})
    assert roll["count"] == sum(m["count"] for m in doc["metrics"] if m["name"] == "llm_ttft_ms")
    assert (ttft["count"], ttft["min"], ttft["max"], ttft["avg"]) == (100, 10.0, 1000.0, 505.0)
    assert doc["counters"][-1] == {"name": "requests_blocked", "tags": {"scenario": "gw"}, "count": 3, "rate": 0.3}
    assert doc["rates"][0]["rate"] == 0.01
    assert doc["token_source"] == {"events": 1}


def test_json_summary_makes_metadata_plain() -> None:
    doc = json_summary([], MetricStore(), {"tuple": (1, 2), "nan": float("nan"), "obj": object})
    assert doc["metadata"]["tuple"] == [1, 2] and doc["metadata"]["nan"] is None
    assert isinstance(doc["metadata"]["obj"], str)
    assert doc["ok"] is True


@pytest.mark.parametrize(
    ("text", "secrets", "out"),
    [
        ("Bearer sk-abc123 sent", ["sk-abc123"], "Bearer *** sent"),
        ("token=lt-1 key=lt-12", ["lt-1", "lt-12"], "token=*** key=***"),  # longest first
        ("nothing here", ["", None], "nothing here"),
    ],
)
def test_redact(text: str, secrets: list[Any], out: str) -> None:
    assert redact(text, secrets) == out


def test_redact_obj() -> None:
    doc = {"a": ["x sk-1 y", {"sk-1": 3}], "n": 5}
    assert redact_obj(doc, ["sk-1"]) == {"a": ["x *** y", {"***": 3}], "n": 5}
