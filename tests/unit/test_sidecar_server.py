"""Server-side series of the sidecar: their settings, and the server's numbers beside the client's."""

from __future__ import annotations

from typing import Any

import pytest

from llm_metrics.engine.calls import CallRecord
from llm_metrics.engine.store import MetricStore
from llm_users.sidecar.server_metrics import (
    ServerMetricsConfig,
    ServerMetricsError,
    ServerSampler,
    format_report,
    parse_server_metrics,
)

SERIES = {
    "queue": {"metric": "app_queue_length", "kind": "gauge"},
    "tokens": {"metric": "app_tokens_total", "kind": "counter", "client": "output_tokens"},
    "requests": {"metric": "app_requests_total", "kind": "counter", "by": "path", "client": "requests"},
    "errors": {
        "metric": "app_requests_total",
        "kind": "counter",
        "by": "path",
        "labels": {"status": "5.."},
        "client": "failed_requests",
    },
}


def body(queue: int, tokens: int, requests: dict[tuple[str, str], int]) -> bytes:
    lines = ["# TYPE app_queue_length gauge", f"app_queue_length {queue}", "# TYPE app_tokens_total counter"]
    lines.append(f"app_tokens_total {tokens}")
    lines.append("# TYPE app_requests_total counter")
    for (path, status), n in requests.items():
        lines.append(f'app_requests_total{{path="{path}",status="{status}"}} {n}')
    return ("\n".join(lines) + "\n").encode()


def client_store() -> MetricStore:
    store = MetricStore()
    for i in range(10):
        failed = i == 0
        store.record_request(
            name="/generate",
            method="POST",
            status=500 if failed else 200,
            scenario="s",
            response_time_ms=5,
            failed=failed,
        )
        rec = CallRecord(scenario="s", name="/generate", t_start=0.0, stream=False, status=200)
        rec.t_headers, rec.t_end, rec.usage_completion_tokens = 0.01, 0.01, 4
        if not failed:
            store.record_call(rec)
    for _ in range(3):
        store.record_request(name="/metrics", method="GET", status=200, scenario="s", response_time_ms=1, failed=False)
    return store


def test_defaults_and_a_full_config() -> None:
    assert parse_server_metrics(None, "f.yaml") == ServerMetricsConfig()
    cfg = parse_server_metrics({"interval_s": 0, "series": SERIES}, "f.yaml")
    assert cfg.interval_s == 0 and cfg.path == "/metrics"
    assert [s.key for s in cfg.series] == ["queue", "tokens", "requests", "errors"]
    assert cfg.series[3].labels == (("status", "5.."),)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "f.yaml: server_metrics: expected a mapping with path, interval_s, timeout_s, series"),
        ({"every": 2}, "f.yaml: server_metrics.every: unknown key (expected path, interval_s, timeout_s, series)"),
        ({"path": "metrics"}, "f.yaml: server_metrics.path: expected a path starting with /, got 'metrics'"),
        ({"interval_s": -1}, "f.yaml: server_metrics.interval_s: expected a number of seconds >= 0, got -1"),
        ({"timeout_s": 0}, "f.yaml: server_metrics.timeout_s: expected a number of seconds > 0, got 0"),
        ({"timeout_s": "2s"}, "f.yaml: server_metrics.timeout_s: expected a number of seconds, got '2s'"),
        ({"series": ["a"]}, "f.yaml: server_metrics.series: expected a mapping of names to series"),
        ({"series": {"q": "app_q"}}, "f.yaml: server_metrics.series.q: expected a mapping such as"),
        ({"series": {"q": {"metric": "a b"}}}, "f.yaml: server_metrics.series.q.metric: expected a Prometheus"),
        ({"series": {"q": {"metric": "a", "kind": "histogram"}}}, "series.q.kind: expected gauge or counter"),
        ({"series": {"q": {"metric": "a", "lables": {}}}}, "series.q.lables: unknown key (expected metric, kind,"),
        ({"series": {"q": {"metric": "a", "labels": {"s": "5(("}}}}, "series.q.labels.s: not a regular expression"),
        ({"series": {"q": {"metric": "a", "by": "a-b"}}}, "series.q.by: expected a label name such as path"),
        ({"series": {"q": {"metric": "a", "kind": "counter", "client": "tokens"}}}, "series.q.client: expected one"),
        (
            {"series": {"q": {"metric": "a", "client": "requests"}}},
            "series.q.client: only a counter can be compared with the client's numbers",
        ),
    ],
)
def test_bad_config_names_the_key(data: Any, message: str) -> None:
    with pytest.raises(ServerMetricsError) as err:
        parse_server_metrics(data, "f.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("f.yaml: server_metrics")


def test_counters_are_the_change_over_the_run_beside_the_client() -> None:
    cfg = parse_server_metrics({"path": "/metrics", "series": SERIES}, "f.yaml")
    sampler = ServerSampler(cfg, "http://x/metrics")
    sampler.add(0.0, body(0, 100, {("/metrics", "200"): 50}))  # the server had served before the run
    sampler.add(1.0, body(3, 120, {("/metrics", "200"): 52, ("/generate", "200"): 5}))
    sampler.add(2.0, None, "timeout")
    end = {("/metrics", "200"): 55, ("/generate", "200"): 9, ("/generate", "500"): 1}
    sampler.add(3.0, body(1, 136, end))
    doc = sampler.report(client_store())
    assert (doc["scrapes"], doc["ok_scrapes"], doc["scrape_errors"], doc["errors"]) == (4, 3, 1, ["timeout"])
    series = doc["series"]
    assert series["queue"]["groups"][""] | {"samples": None} == {
        "min": 0,
        "max": 3,
        "mean": pytest.approx(4 / 3),
        "last": 1,
        "samples": None,
    }
    assert series["queue"]["groups"][""]["samples"] == [[0.0, 0.0], [1.0, 3.0], [3.0, 1.0]]
    assert series["tokens"]["groups"] == {"": {"server": 36, "client": 36, "client_calls_without_token_count": 0}}
    req = series["requests"]["groups"]
    assert req["/generate"] == {"server": 10, "client": 10}
    # 3 scrapes succeeded: the first and the second are counted in the window, the last is not
    assert req["/metrics"] == {"server": 5, "client": 3, "own_scrapes": 2, "server_without_own_scrapes": 3}
    assert series["errors"]["groups"] == {"/generate": {"server": 1, "client": 1}}
    text = format_report(doc)
    assert "SERVER SIDE (GET http://x/metrics: 4 scrapes, every 2 s, 1 failed" in text
    assert "server includes 2 scrapes by this sampler" in text
    assert "scrape failed: timeout" in text
    assert any(ln.split()[:4] == ["requests", "/generate", "10", "10"] for ln in text.splitlines())


def test_counter_reset_and_absent_series() -> None:
    cfg = parse_server_metrics({"series": SERIES | {"gone": {"metric": "nope_total", "kind": "counter"}}}, "f")
    sampler = ServerSampler(cfg)
    sampler.add(0.0, body(0, 500, {}))
    sampler.add(1.0, body(0, 20, {}))  # the server restarted: counted from 0
    doc = sampler.report(MetricStore())
    assert doc["series"]["tokens"]["groups"][""]["server"] == 20
    assert doc["series"]["gone"]["found"] is False
    assert doc["series"]["errors"]["groups"] == {"": {"server": 0, "client": 0}}
    assert "nope_total is not in the server's /metrics" in format_report(doc)


def test_no_successful_scrape() -> None:
    sampler = ServerSampler(parse_server_metrics({"series": SERIES}, "f"), "http://x/metrics")
    sampler.add(0.0, None, "connection error: refused")
    sampler.add(0.5, b"garbage here\n")
    doc = sampler.report(client_store())
    assert doc["ok_scrapes"] == 0 and doc["scrape_errors"] == 2
    assert (
        doc["errors"][1]
        == "invalid Prometheus text at line 1: 'garbage here' (could not convert string to float: 'here')"
    )
    text = format_report(doc)
    assert text.count("no successful scrape") == 4
