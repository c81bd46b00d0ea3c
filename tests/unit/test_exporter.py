"""The Prometheus exporter: families computed at scrape time from the merged store, bounded label sets."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import generate_latest

from llm_metrics.core import LLMMetrics
from llm_metrics.engine.calls import CallRecord, GoodputSLO
from llm_metrics.engine.store import OTHER, MetricStore
from llm_metrics.engine.thresholds import parse_thresholds
from llm_metrics.outputs.exporter import (
    PREFIX,
    Exporter,
    LabelLimiter,
    family_name,
    label_name,
    parse_families,
    sample_values,
)

TTFT_TAGS = {"scenario": "chat_stream", "prompt": "short", "name": "/v1/chat/completions", "status": "200"}


def metrics_with(store_fill: Any = None, thresholds: dict[str, Any] | None = None, runner: Any = None) -> LLMMetrics:
    env = SimpleNamespace(runner=runner, parsed_options=None)
    ths = parse_thresholds(thresholds or {}, "test.yaml")
    m = LLMMetrics(env, "chat", ths, GoodputSLO(), "test.yaml", "")
    m.store.mark_start(0.0)
    m.store.mark_stop(10.0)
    if store_fill is not None:
        store_fill(m.store)
    return m


def scrape(m: LLMMetrics, max_series: int = 100, exporter: Exporter | None = None) -> dict[str, Any]:
    ex = exporter or Exporter(m, max_label_sets=max_series)
    return parse_families(generate_latest(ex.registry).decode())


def fill_chat(store: MetricStore) -> None:
    for i in range(1, 201):
        store.add("llm_ttft_ms", TTFT_TAGS, float(i))
    for i in range(1, 11):
        store.add("llm_ttft_ms", {**TTFT_TAGS, "prompt": "cot"}, 1000.0 + i)
    for i in range(50):
        store.record_request(
            name="/v1/chat/completions",
            method="POST",
            status=200 if i else 500,
            scenario="chat_stream",
            response_time_ms=100.0 + i,
            failed=i == 0,
        )
    store.inc("dropped_iterations", {"scenario": "chat_stream", "prompt": "short"}, 3)


@pytest.mark.parametrize(
    ("metric", "family"),
    [
        ("llm_ttft_ms", "llm_locust_ttft_ms"),
        ("llm_chunk_gap_ms", "llm_locust_chunk_gap_ms"),
        ("http_req_duration", "llm_locust_http_req_duration"),
        ("http_reqs", "llm_locust_http_reqs"),
        ("gateway_latency", "llm_locust_gateway_latency"),
        ("weird-name.x", "llm_locust_weird_name_x"),
    ],
)
def test_family_names_are_the_suites_names_under_one_prefix(metric: str, family: str) -> None:
    assert family_name(metric) == family


@pytest.mark.parametrize(
    ("tag", "label"),
    [
        ("scenario", "scenario"),
        ("prompt", "prompt"),
        ("quantile", "tag_quantile"),
        ("le", "tag_le"),
        ("__name__", "tag___name__"),
        ("9lives", "tag_9lives"),
        ("x-forwarded", "x_forwarded"),
    ],
)
def test_tag_keys_become_valid_unreserved_label_names(tag: str, label: str) -> None:
    assert label_name(tag) == label


def test_a_trend_is_a_summary_with_the_merged_histograms_quantiles_count_and_sum() -> None:
    m = metrics_with(fill_chat)
    fams = scrape(m)
    ttft = fams["llm_locust_ttft_ms"]
    assert ttft.type == "summary"
    h = m.store.select_hist("llm_ttft_ms", TTFT_TAGS)
    assert h is not None
    for q, p in (("0.5", 50), ("0.9", 90), ("0.95", 95), ("0.99", 99)):
        assert sample_values(ttft, quantile=q, prompt="short") == [pytest.approx(h.percentile(p), rel=1e-12)]
    assert sample_values(ttft, "_count", prompt="short") == [200]
    assert sample_values(ttft, "_sum", prompt="short") == [pytest.approx(sum(range(1, 201)))]
    assert sample_values(ttft, "_count", prompt="cot") == [10]
    labels = {s.name: s.labels for s in ttft.samples if s.name.endswith("_count") and s.labels["prompt"] == "short"}
    assert labels["llm_locust_ttft_ms_count"] == TTFT_TAGS


def test_counters_and_rates_are_prometheus_counters() -> None:
    fams = scrape(metrics_with(fill_chat))
    reqs = fams["llm_locust_http_reqs"]
    assert reqs.type == "counter"
    assert sum(sample_values(reqs, "_total")) == 50
    assert sample_values(reqs, "_total", status="500") == [1]
    failed = fams["llm_locust_http_req_failed_hits"]
    total = fams["llm_locust_http_req_failed_samples"]
    assert sum(sample_values(failed, "_total")) == 1 and sum(sample_values(total, "_total")) == 50
    dropped = fams["llm_locust_dropped_iterations"]
    assert sample_values(dropped, "_total", scenario="chat_stream", prompt="short") == [3]
    duration = fams["llm_locust_http_req_duration"]
    assert sum(sample_values(duration, "_count")) == 50


def test_thresholds_are_evaluated_at_each_scrape() -> None:
    ths = {
        "llm_ttft_ms{prompt:short}": ["p(95)<1000", "p(50)<50"],
        "http_req_failed": ["rate<0.5"],
        "gateway_latency": ["p(95)<50"],
    }
    m = metrics_with(fill_chat, ths)
    fams = scrape(m)
    ok = fams[PREFIX + "threshold_ok"]
    assert sample_values(ok, threshold="llm_ttft_ms{prompt:short}", expression="p(95)<1000") == [1.0]
    assert sample_values(ok, threshold="llm_ttft_ms{prompt:short}", expression="p(50)<50") == [0.0]
    assert sample_values(ok, threshold="http_req_failed") == [1.0]
    assert sample_values(ok, threshold="gateway_latency") == [1.0]  # no data passes, as in the summary
    observed = fams[PREFIX + "threshold_observed"]
    assert sample_values(observed, threshold="http_req_failed") == [pytest.approx(1 / 50)]
    assert sample_values(observed, threshold="gateway_latency") == []  # no data: no sample, never 0
    # the same exporter sees new data at the next scrape: the state follows
    m.store.add_many("llm_ttft_ms", TTFT_TAGS, [10.0] * 1000)
    again = scrape(m)[PREFIX + "threshold_ok"]
    assert sample_values(again, expression="p(50)<50") == [1.0]


def test_label_sets_beyond_the_limit_fold_into_one_other_series_and_admitted_ones_stay() -> None:
    def fill(store: MetricStore) -> None:
        for i in range(5):
            store.add("llm_ttft_ms", {"scenario": "s", "prompt": f"p{i}"}, 100.0 + i)
            store.inc("http_reqs", {"scenario": "s", "name": f"n{i}"}, 2)

    m = metrics_with(fill)
    ex = Exporter(m, max_label_sets=3)
    fams = scrape(m, exporter=ex)
    ttft = fams["llm_locust_ttft_ms"]
    prompts = sorted({s.labels["prompt"] for s in ttft.samples})
    assert prompts == sorted(["p0", "p1", "p2", OTHER])
    assert sample_values(ttft, "_count", prompt=OTHER, scenario=OTHER) == [2]  # p3 and p4, merged
    assert sample_values(fams["llm_locust_http_reqs"], "_total", name=OTHER) == [4]
    folded = fams[PREFIX + "collapsed_label_sets"]
    assert sample_values(folded, family="llm_locust_ttft_ms") == [2]
    # a label set that sorts first but comes later does not push an admitted one out
    m.store.add("llm_ttft_ms", {"scenario": "s", "prompt": "a-first"}, 1.0)
    later = scrape(m, exporter=ex)["llm_locust_ttft_ms"]
    assert sorted({s.labels["prompt"] for s in later.samples}) == prompts
    assert sample_values(later, "_count", prompt=OTHER) == [3]


def test_label_limiter_admits_first_come() -> None:
    lim = LabelLimiter(2)
    a, b, c = (("k", "a"),), (("k", "b"),), (("k", "c"),)
    assert lim.admit("f", a) == a and lim.admit("f", b) == b
    assert lim.admit("f", c) == (("k", OTHER),)
    assert lim.admit("f", a) == a and lim.admit("g", c) == c
    assert lim.folded() == {"f": 1}


def test_a_tag_named_quantile_does_not_break_the_summary() -> None:
    m = metrics_with(lambda s: s.add("llm_ttft_ms", {"quantile": "x", "scenario": "s"}, 5.0))
    ttft = scrape(m)["llm_locust_ttft_ms"]
    assert sample_values(ttft, "_count", tag_quantile="x") == [1]
    assert sample_values(ttft, quantile="0.5", tag_quantile="x") == [5.0]


def test_users_and_workers_come_from_the_runner() -> None:
    clients = {
        "a": SimpleNamespace(id="a", state="running"),
        "b": SimpleNamespace(id="b", state="running"),
        "c": SimpleNamespace(id="c", state="missing"),
    }
    runner = SimpleNamespace(user_count=12, clients=clients)
    fams = scrape(metrics_with(fill_chat, runner=runner))
    assert sample_values(fams[PREFIX + "users"]) == [12]
    workers = fams[PREFIX + "workers"]
    assert sample_values(workers, state="running") == [2]
    assert sample_values(workers, state="missing") == [1]
    assert sample_values(workers, state="ready") == [0]


def test_a_local_runner_has_users_but_no_workers_family() -> None:
    fams = scrape(metrics_with(fill_chat, runner=SimpleNamespace(user_count=3)))
    assert sample_values(fams[PREFIX + "users"]) == [3]
    assert PREFIX + "workers" not in fams


def test_an_empty_store_exports_no_metric_families_and_no_zeros() -> None:
    fams = scrape(metrics_with())
    assert not [n for n in fams if n.startswith("llm_locust_ttft") or n.startswith("llm_locust_http")]


def test_a_real_llm_call_exports_every_metric_it_recorded() -> None:
    def fill(store: MetricStore) -> None:
        store.record_call(
            CallRecord(
                scenario="chat_stream",
                name="/v1/chat/completions",
                prompt="short",
                status=200,
                t_start=0.0,
                t_first_content=0.2,
                chunk_times=[0.2, 0.25, 0.3],
                t_end=0.31,
                content_events=3,
                stream=True,
            )
        )

    m = metrics_with(fill)
    fams = scrape(m)
    recorded = {family_name(name) for _, name, _ in m.store.series()}
    assert recorded <= set(fams)
    assert sample_values(fams["llm_locust_ttft_ms"], quantile="0.5") == [pytest.approx(200.0, rel=0.005)]
