"""The LLM overview rows (shared by the web UI tab and the HTML report), the web UI's rows, and reading
summaries back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from llm_metrics.engine.calls import GoodputSLO
from llm_metrics.engine.histogram import Histogram
from llm_metrics.engine.store import MetricStore
from llm_metrics.engine.thresholds import evaluate, parse_thresholds
from llm_metrics.engine.timeseries import TimeSeries
from llm_metrics.outputs.overview import (
    ALL,
    SummaryError,
    check_summary,
    compact_number,
    load_summary,
    overview_rows,
    summary_histograms,
    summary_rates,
)
from llm_metrics.outputs.webui import (
    METRICS_TABLE,
    THRESHOLDS_TABLE,
    live_rows,
    live_summary,
    metrics_table_rows,
    threshold_table_rows,
)
from tests.unit.report_summaries import call, make_summary


def rows_of(doc: dict[str, Any]) -> list[Any]:
    return overview_rows(summary_histograms(doc), summary_rates(doc), doc["duration_s"])


def test_rows_group_by_scenario_name_prompt_and_end_with_all() -> None:
    hist = Histogram.of
    rows = overview_rows(
        [
            ("llm_ttft_ms", {"scenario": "s", "name": "n", "prompt": "short", "status": "200"}, hist([10, 20, 30])),
            ("llm_ttft_ms", {"scenario": "s", "name": "n", "prompt": "cot", "status": "200"}, hist([100])),
            ("llm_total_ms", {"scenario": "s", "name": "n", "prompt": "short", "status": "200"}, hist([50, 60, 70])),
            ("llm_total_ms", {"scenario": "s", "name": "n", "prompt": "short", "status": "500"}, hist([5000])),
            ("llm_output_tokens", {"scenario": "s", "name": "n", "prompt": "short", "status": "200"}, hist([10, 30])),
            ("http_req_duration", {"scenario": "s", "name": "n", "status": "200"}, hist([1])),
        ],
        [
            ("goodput", {"scenario": "s", "name": "n", "prompt": "short", "status": "200"}, 2, 3),
            ("goodput", {"scenario": "s", "name": "n", "prompt": "short", "status": "500"}, 0, 1),
            ("http_req_failed", {"scenario": "s", "name": "n", "status": "200"}, 0, 9),
        ],
        10.0,
    )
    assert [(r.scenario, r.prompt) for r in rows] == [("s", "cot"), ("s", "short"), (ALL, "")]
    short = rows[1]
    assert short.calls == 3  # the failed call (status 500) feeds no latency
    p50, _, p99 = short.percentiles("total")
    assert p50 == pytest.approx(60, rel=0.005) and p99 == pytest.approx(70, rel=0.005)
    assert short.percentiles("queue") == [None, None, None]
    assert short.output_tokens == 40 and short.output_tokens_per_s == pytest.approx(4.0)
    assert (short.goodput_hits, short.goodput_total) == (2, 4) and short.goodput == 0.5  # failed calls miss
    assert short.goodput_per_s == pytest.approx(0.2)
    everything = rows[2]
    assert everything.hists["ttft"].count == 4 and everything.percentiles("ttft")[2] == pytest.approx(100, rel=0.005)
    assert rows[0].output_tokens_per_s is None  # nothing measured is not 0 tokens/s


def test_rows_without_duration_or_goodput_say_none() -> None:
    rows = overview_rows([("llm_output_tokens", {"scenario": "s"}, Histogram.of([5]))], [], None)
    assert rows[0].output_tokens_per_s is None and rows[0].goodput is None and rows[0].goodput_per_s is None
    assert overview_rows([], [], 1.0) == []


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "-"), (0.0, "0.00"), (0.004, "0.004"), (5.034, "5.03"), (52.0, "52"), (147.68, "147.7"), (2345.6, "2346")],
)
def test_compact_number(value: float | None, text: str) -> None:
    assert compact_number(value) == text


def test_web_rows_one_per_metric_with_data_in_display_order() -> None:
    rows = metrics_table_rows(rows_of(make_summary(failures=5)))
    assert [r["name"] for r in rows] == sorted(r["name"] for r in rows)  # the stock table sorts by "name"
    keys = {c["key"] for c in METRICS_TABLE} | {"name"}
    assert all(set(r) == keys for r in rows)
    stream = [r for r in rows if r["scenario"] == "chat_stream"]
    assert [r["metric"] for r in stream] == [
        "TTFT ms",
        "TPOT ms",
        "Total ms",
        "Queue ms",
        "Tokens/s per call",
        "Output tokens",
        "Goodput",
    ]
    ttft = stream[0]
    assert ttft["samples"] == 200 and ttft["p50"] == pytest.approx(52.0, rel=0.006)
    assert (ttft["per_second"], ttft["share"]) == ("-", "-")
    tokens = next(r for r in stream if r["metric"] == "Output tokens")
    assert tokens["p50"] == 10 and tokens["per_second"] == pytest.approx(2000 / 30, abs=0.01)
    goodput = stream[-1]
    assert goodput["samples"] == 205 and goodput["share"] == "97.6%" and goodput["p50"] == "-"
    assert rows[-1]["scenario"] == ALL and rows[-1]["metric"] == "Goodput"
    json.dumps(rows)  # plain JSON for /stats/requests


def test_threshold_rows_keep_the_file_order_and_say_no_data() -> None:
    store = MetricStore()
    store.mark_start(0.0)
    store.mark_stop(10.0)
    for v in (10.0, 20.0, 30.0):
        store.add("llm_ttft_ms", {"scenario": "s"}, v)
    ths = parse_thresholds(
        {"llm_ttft_ms": ["p(95)<25", {"threshold": "avg<100", "abortOnFail": True}], "llm_tpot_ms": ["avg<5"]}, "t.yaml"
    )
    rows = threshold_table_rows(evaluate(ths, store))
    assert [(r["name"], r["result"], r["metric"], r["threshold"]) for r in rows] == [
        ("000000", "✗ FAIL", "llm_ttft_ms", "p(95)<25"),
        ("000001", "✓ pass", "llm_ttft_ms", "avg<100"),
        ("000002", "no data", "llm_tpot_ms", "avg<5"),
    ]
    assert rows[0]["observed"] == "p(95)=30.00" and rows[0]["samples"] == 3
    assert (rows[1]["abort"], rows[0]["abort"], rows[2]["samples"]) == ("yes", "", "-")
    assert {c["key"] for c in THRESHOLDS_TABLE} | {"name"} == set(rows[0])


def live_metrics() -> SimpleNamespace:
    store = MetricStore()
    store.mark_start(1000.0)
    for i in range(20):
        store.record_call(call(40.0 + i), GoodputSLO(ttft_ms=50))
    series = TimeSeries()
    series.record(1000.5, total_ms=100.0, ttft_ms=40.0, good=True, output_tokens=10)
    series.set_users(3, 1000.6)
    ths = parse_thresholds({"llm_ttft_ms": ["p(50)<45"]}, "t.yaml")
    return SimpleNamespace(
        store=store,
        series=series,
        thresholds=ths,
        json_sections={"extra": lambda: {"x": 1}},
        aborted_by=[],
        metadata=lambda: {"suite": "chat"},
    )


def test_live_rows_and_summary_read_the_live_store() -> None:
    m = live_metrics()
    rows = live_rows(m)
    assert [r.scenario for r in rows] == ["chat_stream", ALL]
    assert rows[0].calls == 20 and rows[0].goodput == pytest.approx(11 / 20)
    doc = live_summary(m)
    check_summary(doc, "live")
    assert doc["metadata"] == {"suite": "chat", "live": True}
    assert doc["extra"] == {"x": 1} and doc["series"][0]["users"] == 3
    assert [t["ok"] for t in doc["thresholds"]] == [False]  # p50 of 40..59 ms, so far


def test_importing_the_web_ui_module_has_no_side_effects() -> None:
    code = (
        "import sys, llm_metrics.outputs.webui, llm_metrics.outputs.report_html, llm_metrics.outputs.compare;"
        "print(sorted(m for m in ('flask', 'locust', 'gevent') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    assert out.stdout.strip() == "[]", out


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "not a JSON summary of llm_metrics (expected an object, got list)"),
        ({"metrics": []}, "no 'schema' key"),
        ({"schema": "other"}, "unsupported summary schema 'other'"),
        ({"schema": "llm-locust/summary/v1", "metrics": {}}, "'metrics' must be a list"),
        ({"schema": "llm-locust/summary/v1", "metrics": [{"name": "x"}]}, "metrics[0]: expected an object"),
        ({"schema": "llm-locust/summary/v1", "rates": [{"name": "x", "tags": {}}]}, "rates[0]: expected an object"),
        ({"schema": "llm-locust/summary/v1", "duration_s": "long"}, "'duration_s' must be a number or null"),
        ({"schema": "llm-locust/summary/v1", "series": [{"x": 1}]}, "'series' must be a list of objects"),
    ],
)
def test_check_summary_names_the_source_and_the_problem(doc: Any, message: str) -> None:
    with pytest.raises(SummaryError) as err:
        check_summary(doc, "runs/a.json")
    assert str(err.value).startswith("runs/a.json: ") and message in str(err.value)


def test_load_summary_reads_what_a_run_writes(tmp_path: Path) -> None:
    doc = make_summary()
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc))
    assert load_summary(p) == doc
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SummaryError, match=r"bin\.json: cannot read"):
        load_summary(tmp_path / "bin.json")
