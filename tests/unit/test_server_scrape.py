"""``server_series`` (``--server-metrics``): presets recognised from the body, gauges, counter rates, histogram
quantiles."""

from __future__ import annotations

import pytest

from llm_metrics.monitors.server_series import ServerSeries, histogram_quantile, parse_urls


def body(running: float, tokens: float, buckets: dict[str, float]) -> str:
    lines = [
        "# TYPE vllm:num_requests_running gauge",
        f'vllm:num_requests_running{{model_name="a"}} {running}',
        "# TYPE vllm:generation_tokens_total counter",
        f'vllm:generation_tokens_total{{model_name="a"}} {tokens}',
        "# TYPE vllm:time_to_first_token_seconds histogram",
    ]
    lines += [f'vllm:time_to_first_token_seconds_bucket{{le="{le}",model_name="a"}} {n}' for le, n in buckets.items()]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("q", "buckets", "want"),
    [
        (0.5, [(0.1, 0.0), (0.2, 10.0), (float("inf"), 10.0)], 0.15),  # linear inside (0.1, 0.2]
        (0.5, [(0.1, 10.0), (float("inf"), 10.0)], 0.05),  # the first bucket starts at 0
        (0.99, [(0.1, 5.0), (float("inf"), 10.0)], 0.1),  # in +Inf: the highest finite bound
        (0.5, [(0.1, 0.0), (float("inf"), 0.0)], None),  # empty
    ],
)
def test_histogram_quantile_as_prometheus(q: float, buckets: list[tuple[float, float]], want: float | None) -> None:
    got = histogram_quantile(q, buckets)
    assert got == (None if want is None else pytest.approx(want))


def test_gauges_counter_rates_and_histogram_intervals_summed_over_replicas() -> None:
    s = ServerSeries(["http://a/metrics", "http://b/metrics"], 1.0)
    b0 = body(1, 100, {"0.1": 0, "0.2": 0, "+Inf": 0})
    s.add_round(1000.0, [("http://a/metrics", b0, None), ("http://b/metrics", b0, None)])
    b1 = body(2, 150, {"0.1": 0, "0.2": 10, "+Inf": 10})
    s.add_round(1002.0, [("http://a/metrics", b1, None), ("http://b/metrics", None, "HTTP 503")])
    doc = s.report({"metric": "llm_ttft_ms", "p50_ms": 160.0, "p95_ms": 190.0, "count": 10})
    assert doc["presets"] == ["vllm"] and doc["scrapes"] == 4 and doc["errors"] == 1
    assert doc["error_samples"] == ["http://b/metrics: HTTP 503"]
    series = doc["series"]
    # replica b failed in the second round: the round is left out (a partial sum would read as a drop)
    assert series["vllm:num_requests_running"]["points"] == [[1000.0, 2.0]]
    assert "vllm:generation_tokens_total" not in series  # no rate without two complete rounds
    b2 = body(2, 250, {"0.1": 0, "0.2": 30, "+Inf": 30})
    s.add_round(1004.0, [("http://a/metrics", b2, None), ("http://b/metrics", b1, None)])
    doc = s.report()
    assert doc["series"]["vllm:num_requests_running"]["points"][-1] == [1004.0, 4.0]
    assert doc["series"]["vllm:generation_tokens_total"]["points"] == [[1004.0, 50.0]]  # (400 - 200) / 4 s
    # 40 first tokens in (0.1, 0.2] since the first round: p50 at 0.15 s, p95 at 0.195 s
    assert doc["series"]["vllm:time_to_first_token_seconds"]["points"] == [[1004.0, 150.0, 195.0, 40.0]]
    assert doc["ttft"]["server"]["p50_ms"] == pytest.approx(150.0) and doc["ttft"]["server"]["count"] == 40
    # a counter that goes down (a restart) gives no rate for that interval
    b3 = body(2, 10, {"0.1": 0, "0.2": 1, "+Inf": 1})
    s.add_round(1006.0, [("http://a/metrics", b3, None), ("http://b/metrics", b3, None)])
    assert s.report()["series"]["vllm:generation_tokens_total"]["points"] == [[1004.0, 50.0]]
    s.reset()
    assert s.report()["series"] == {} and s.report()["scrapes"] == 0


def test_urls_of_the_flag() -> None:
    assert parse_urls(["http://a:1/metrics,https://b/m", "http://c/m"]) == [
        "http://a:1/metrics",
        "https://b/m",
        "http://c/m",
    ]
    with pytest.raises(ValueError, match="--server-metrics/SERVER_METRICS: expected an http"):
        parse_urls("127.0.0.1:8000/metrics")
