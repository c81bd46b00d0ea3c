"""What a capacity search reports: each step's numbers from its own window, the JSON and console forms, and the
HTML report's section with latency and goodput plotted against load."""

from __future__ import annotations

from llm_metrics.engine.calls import GoodputSLO
from llm_metrics.engine.store import MetricStore
from llm_metrics.engine.thresholds import evaluate, parse_thresholds
from llm_metrics.outputs.report_html import render_report
from llm_metrics.outputs.summary import json_summary
from shapes.capacity_config import parse_capacity
from shapes.capacity_report import result_json, result_text, step_stats
from shapes.capacity_search import CapacitySearch, SearchDriver, StepOutcome, judge
from tests.unit.report_summaries import call, check_html

THRESHOLDS = parse_thresholds({"llm_ttft_ms": ["p(95)<140"], "http_req_failed": ["rate<0.05"]}, "cap.yaml")
SLO = GoodputSLO(ttft_ms=140)
KNEE = 22


def window_for(users: int) -> MetricStore:
    """One step's window: 10 calls per User in 2 s, TTFT 100 ms up to the knee, then growing fast."""
    ttft = 100.0 if users <= KNEE else 100.0 * (users / 20) ** 3
    store = MetricStore()
    for i in range(users * 10):
        rec = call(ttft + (i % 10), tokens=5)
        store.record_call(rec, SLO)
        store.record_request(
            name="chat", method="POST", status=200, scenario="chat_stream", response_time_ms=ttft + 25, failed=False
        )
    store.inc("dropped_iterations", {"scenario": "chat_stream"}, 0)
    return store


def run_search() -> tuple[dict, list]:
    conf = {"start": 10, "max": 40, "relative_resolution": 0, "settle": 1, "hold": 2, "cooldown": 0}
    plan = parse_capacity({"capacity": conf})
    results_at: dict[float, list] = {}

    def judge_step(level: float, elapsed: float) -> StepOutcome:
        window = window_for(int(level))
        results = evaluate(THRESHOLDS, window, elapsed)
        stats = step_stats(window, elapsed)
        results_at[level] = results
        return StepOutcome(judge(results, stats["requests"], plan.min_samples), results, stats)

    driver = SearchDriver(CapacitySearch(plan.spec), plan.timing, open_window=lambda: None, judge=judge_step)
    t = 1_800_000_000.0
    while driver.tick(t) is not None:
        t += 1.0
    result = driver.result()
    doc = result_json(result, plan, ok=result.limit is not None)
    return doc, results_at[result.limit] if result.limit is not None else []


def test_step_stats_read_only_the_window() -> None:
    stats = step_stats(window_for(10), 2.0)
    assert stats["requests"] == 100 and stats["requests_per_s"] == 50.0
    assert stats["failed_requests"] == 0 and stats["error_rate"] == 0.0
    assert stats["goodput"] == 1.0 and stats["goodput_per_s"] == 50.0 and stats["goodput_basis"] == "slo"
    assert 100 <= stats["ttft_p50_ms"] <= 110 and stats["ttft_p95_ms"] < 111
    assert stats["output_tokens_per_s"] == 250.0  # 100 calls x 5 tokens / 2 s
    assert stats["dropped"] == 0 and stats["queue_p95_ms"] is None


def test_without_goodput_slos_goodput_is_the_successful_calls() -> None:
    store = MetricStore()
    for ok in (True, True, True, False):
        store.record_request(
            name="x", method="POST", status=200 if ok else 500, scenario="s", response_time_ms=5.0, failed=not ok
        )
    stats = step_stats(store, 1.0)
    assert stats["goodput_basis"] == "success" and stats["goodput"] == 0.75 and stats["goodput_per_s"] == 3.0


def test_the_json_section_has_the_limit_the_failure_above_and_every_step() -> None:
    doc, _ = run_search()
    assert doc["limit"] == KNEE and doc["first_failure"] == KNEE + 1 and doc["complete"] and doc["ok"]
    assert doc["failing_thresholds"] == ["llm_ttft_ms p(95)<140 (p(95)=161.1)"]
    assert [s["level"] for s in doc["steps"]] == [10, 20, 40, 30, 25, 22, 24, 23]
    assert [s["passed"] for s in doc["steps"]] == [True, True, False, False, False, True, False, False]
    step = doc["steps"][5]
    assert step["phase"] == "bisect" and step["users"] == KNEE and step["requests"] == 220
    assert step["window_s"] == [16.0, 18.0]
    assert {t["key"] for t in step["thresholds"]} == {"llm_ttft_ms", "http_req_failed"}


def test_the_console_text_names_the_limit_and_the_failing_threshold() -> None:
    doc, _ = run_search()
    text = result_text(doc)
    assert "CAPACITY SEARCH (users): limit 22 users, the highest load at which every threshold held" in text
    assert "first failing load: 23 users: llm_ttft_ms p(95)<140 (p(95)=161.1)" in text
    assert "stopped: narrowed to 22-23 users, within the resolution" in text
    assert len([line for line in text.splitlines() if "FAIL" in line]) == 5


def test_the_html_report_plots_latency_and_goodput_against_load() -> None:
    cap, results = run_search()
    store = window_for(KNEE)
    doc = json_summary(results, store, {"suite": "workload"})
    doc["capacity"] = cap
    page = render_report(doc)
    parsed = check_html(page)
    assert "#capacity" in parsed.links
    assert "Limit: <b>22 users</b>" in page
    for plot in ("plot-capacity-latency", "plot-capacity-goodput"):
        start = page.index(f'<figure id="{plot}"')
        fig = page[start : page.index("</figure>", start)]
        assert fig.count("<circle") >= 8  # one point per step (per line)
        assert "limit 22" in fig
        assert 'stroke="#dc2626"' in fig  # failed steps ringed
    rows = parsed.tables["capacity"]
    assert len(rows) == 1 + 8
    assert rows[6][3] == "✓ pass" and rows[7][3] == "✗ FAIL"


def test_a_summary_without_a_capacity_section_has_no_capacity_part() -> None:
    doc = json_summary([], window_for(1), {"suite": "chat"})
    page = render_report(doc)
    assert "Capacity search" not in page and "#capacity" not in check_html(page).links
