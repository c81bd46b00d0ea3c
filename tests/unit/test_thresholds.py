"""Thresholds: k6 syntax, exact error messages, evaluation on a store, abort checks."""

from __future__ import annotations

from typing import Any

import pytest

from llm_metrics.engine.store import MetricStore
from llm_metrics.engine.thresholds import (
    MetricRegistry,
    ThresholdError,
    abort_failures,
    default_registry,
    evaluate,
    key_path,
    parse_duration,
    parse_expression,
    parse_key,
    parse_thresholds,
)

SRC = "conf/thresholds.yaml"


@pytest.mark.parametrize(
    ("expr", "parsed"),
    [
        ("p(95)<1000", ("p(95)", 95.0, "<", 1000.0)),
        ("p(99.9)<50", ("p(99.9)", 99.9, "<", 50.0)),
        (" p( 90 ) <= 1.5e3 ", ("p(90)", 90.0, "<=", 1500.0)),
        ("rate<0.02", ("rate", None, "<", 0.02)),
        ("avg<=200", ("avg", None, "<=", 200.0)),
        ("count>10", ("count", None, ">", 10.0)),
        ("med<5", ("med", None, "<", 5.0)),
        ("min>=0", ("min", None, ">=", 0.0)),
        ("max<3000", ("max", None, "<", 3000.0)),
        ("count==0", ("count", None, "==", 0.0)),
        ("rate!=1", ("rate", None, "!=", 1.0)),
        ("min>-5", ("min", None, ">", -5.0)),
        ("p(0)>=.5", ("p(0)", 0.0, ">=", 0.5)),
    ],
)
def test_parse_expression(expr: str, parsed: tuple[Any, ...]) -> None:
    assert parse_expression(expr) == parsed


@pytest.mark.parametrize(
    ("key", "parsed"),
    [
        ("http_req_failed", ("http_req_failed", ())),
        (
            "llm_ttft_ms{scenario:chat_stream,status:200,prompt:short}",
            ("llm_ttft_ms", (("prompt", "short"), ("scenario", "chat_stream"), ("status", "200"))),
        ),
        ("http_req_duration{name:/health}", ("http_req_duration", (("name", "/health"),))),
        ("http_req_duration{ name : http://x:8000/a }", ("http_req_duration", (("name", "http://x:8000/a"),))),
        ("http_req_duration{name:'a,b'}", None),  # commas cannot be quoted (as in k6)
        ('m{prompt:"short"}', ("m", (("prompt", "short"),))),
        ("m{}", ("m", ())),
    ],
)
def test_parse_key(key: str, parsed: Any) -> None:
    if parsed is None:
        with pytest.raises(ValueError):
            parse_key(key)
    else:
        assert parse_key(key) == parsed


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("http_req_failed", "thresholds.http_req_failed"),
        ("m{a:b}", 'thresholds."m{a:b}"'),
        ('m{a:"b"}', r'thresholds."m{a:\"b\"}"'),
    ],
)
def test_key_path(key: str, path: str) -> None:
    assert key_path(key) == path


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("1.5s", 1.5), (10, 10.0), (0, 0.0)],
)
def test_parse_duration(text: Any, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["10", "10x", "s", "", "-1s", True, -3, None])
def test_parse_duration_rejects(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_parse_the_seed_thresholds() -> None:
    data = {
        "http_req_failed": ["rate<0.02"],
        "llm_ttfb_ms{scenario:chat_stream,status:200,prompt:short}": ["p(95)<1000"],
        "llm_ttfb_ms{scenario:chat_stream,status:200,prompt:cot}": ["p(95)<3000"],
        "gateway_latency": ["p(95)<50", "p(99)<100"],
        "http_req_duration{name:/health}": [{"threshold": "p(99)<50", "abortOnFail": True, "delayAbortEval": "10s"}],
        "goodput": "rate>=0.999",
    }
    ths = parse_thresholds(data, SRC)
    assert [(t.metric, t.expression, t.index) for t in ths] == [
        ("http_req_failed", "rate<0.02", 0),
        ("llm_ttfb_ms", "p(95)<1000", 0),
        ("llm_ttfb_ms", "p(95)<3000", 0),
        ("gateway_latency", "p(95)<50", 0),
        ("gateway_latency", "p(99)<100", 1),
        ("http_req_duration", "p(99)<50", 0),
        ("goodput", "rate>=0.999", 0),
    ]
    health = ths[5]
    assert (health.abort_on_fail, health.delay_abort_eval_s, health.filter) == (True, 10.0, (("name", "/health"),))
    assert ths[1].path == 'thresholds."llm_ttfb_ms{scenario:chat_stream,status:200,prompt:short}"[0]'
    assert ths[1].name == "llm_ttfb_ms{scenario:chat_stream,status:200,prompt:short}"
    assert all(t.source == SRC for t in ths)


def test_empty_thresholds() -> None:
    assert parse_thresholds(None, SRC) == []
    assert parse_thresholds({}, SRC) == []
    assert parse_thresholds({"http_req_failed": []}, SRC) == []


KNOWN = ", ".join(default_registry().names())

# (data, exact message)
ERRORS: list[tuple[Any, str]] = [
    (
        {"llm_ttft_ms{scenario:chat_stream}": ["p(95<1000"]},
        "conf/thresholds.yaml: thresholds.\"llm_ttft_ms{scenario:chat_stream}\"[0]: cannot parse 'p(95<1000': "
        "expected AGG OP NUMBER such as p(95)<1000",
    ),
    (
        {"llm_ttft": ["p(95)<1000"]},
        f"conf/thresholds.yaml: thresholds.llm_ttft: unknown metric 'llm_ttft' (known: {KNOWN}); "
        "did you mean 'llm_ttft_ms'?",
    ),
    (
        {"zzz": ["p(95)<1000"]},
        f"conf/thresholds.yaml: thresholds.zzz: unknown metric 'zzz' (known: {KNOWN})",
    ),
    (
        {"requests_blocked": ["rate<1", "p(95)<1"]},
        "conf/thresholds.yaml: thresholds.requests_blocked[1]: aggregation 'p(95)' is not valid for counter metric "
        "'requests_blocked' (valid: count, rate)",
    ),
    (
        {"http_req_failed": ["avg<0.1"]},
        "conf/thresholds.yaml: thresholds.http_req_failed[0]: aggregation 'avg' is not valid for rate metric "
        "'http_req_failed' (valid: rate)",
    ),
    (
        {"llm_ttft_ms": ["rate<0.1"]},
        "conf/thresholds.yaml: thresholds.llm_ttft_ms[0]: aggregation 'rate' is not valid for trend metric "
        "'llm_ttft_ms' (valid: p(N), avg, min, max, med, count)",
    ),
    (
        {"llm_ttft_ms": ["p(150)<1"]},
        "conf/thresholds.yaml: thresholds.llm_ttft_ms[0]: percentile p(150) is out of range: "
        "expected p(N) with 0 <= N <= 100",
    ),
    (
        {"llm_ttft_ms": ["p(95)<1s"]},
        "conf/thresholds.yaml: thresholds.llm_ttft_ms[0]: cannot parse 'p(95)<1s': "
        "expected AGG OP NUMBER such as p(95)<1000",
    ),
    (
        {"llm_ttft_ms": ["p95<1"]},
        "conf/thresholds.yaml: thresholds.llm_ttft_ms[0]: cannot parse 'p95<1': "
        "expected AGG OP NUMBER such as p(95)<1000",
    ),
    (
        {"llm_ttft_ms": ["p(95) => 1"]},
        "conf/thresholds.yaml: thresholds.llm_ttft_ms[0]: cannot parse 'p(95) => 1': "
        "expected AGG OP NUMBER such as p(95)<1000",
    ),
    (
        {"llm_ttft_ms{scenario}": ["p(95)<1"]},
        'conf/thresholds.yaml: thresholds."llm_ttft_ms{scenario}": cannot parse tag filter {scenario}: '
        "expected {tag:value,...} such as {scenario:chat_stream,status:200}",
    ),
    (
        {"llm_ttft_ms{status:200,status:500}": ["p(95)<1"]},
        "conf/thresholds.yaml: thresholds.\"llm_ttft_ms{status:200,status:500}\": tag 'status' appears twice "
        "in the filter {status:200,status:500}",
    ),
    (
        {"llm ttft": ["p(95)<1"]},
        "conf/thresholds.yaml: thresholds.\"llm ttft\": cannot parse key 'llm ttft': expected METRIC or "
        "METRIC{tag:value,...} such as llm_ttft_ms{scenario:chat_stream,status:200}",
    ),
    (
        {"llm_ttft_ms": 1000},
        "conf/thresholds.yaml: thresholds.llm_ttft_ms: expected a list of threshold expressions "
        'such as ["p(95)<1000"], got int',
    ),
    (
        {"llm_ttft_ms": [None]},
        'conf/thresholds.yaml: thresholds.llm_ttft_ms[0]: expected a string such as "p(95)<1000" or an object '
        "{threshold: ..., abortOnFail: ..., delayAbortEval: ...}, got null",
    ),
    (
        {"llm_ttft_ms": [{"threshold": "p(95)<1", "abortOnFial": True}]},
        "conf/thresholds.yaml: thresholds.llm_ttft_ms[0]: unknown key 'abortOnFial' "
        "(expected: threshold, abortOnFail, delayAbortEval, failOnNoData)",
    ),
    (
        {"llm_ttft_ms": [{"abortOnFail": True}]},
        "conf/thresholds.yaml: thresholds.llm_ttft_ms[0]: missing 'threshold', e.g. threshold: \"p(95)<1000\"",
    ),
    (
        {"llm_ttft_ms": [{"threshold": "p(95)<1", "abortOnFail": "yes"}]},
        "conf/thresholds.yaml: thresholds.llm_ttft_ms[0].abortOnFail: expected true or false, got 'yes'",
    ),
    (
        {"llm_ttft_ms": [{"threshold": "p(95)<1", "delayAbortEval": "10x"}]},
        "conf/thresholds.yaml: thresholds.llm_ttft_ms[0].delayAbortEval: cannot parse duration '10x': "
        "expected e.g. 10s, 1m30s or 500ms",
    ),
    (
        {"llm_ttft_ms": [{"threshold": "p(95)=<1"}]},
        "conf/thresholds.yaml: thresholds.llm_ttft_ms[0].threshold: cannot parse 'p(95)=<1': "
        "expected AGG OP NUMBER such as p(95)<1000",
    ),
    (["rate<0.1"], "conf/thresholds.yaml: thresholds: expected a mapping of metric to a list of thresholds, got list"),
    ({5: ["rate<0.1"]}, "conf/thresholds.yaml: thresholds: keys must be metric names, got 5"),
]


@pytest.mark.parametrize(("data", "message"), ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_malformed_thresholds_name_the_file_and_key(data: Any, message: str) -> None:
    with pytest.raises(ThresholdError) as exc:
        parse_thresholds(data, SRC)
    assert str(exc.value) == message


def test_registry_can_be_extended() -> None:
    reg = default_registry()
    with pytest.raises(ThresholdError, match="unknown metric 'sidecar_queue_depth'"):
        parse_thresholds({"sidecar_queue_depth": ["max<10"]}, SRC, registry=reg)
    reg.register("sidecar_queue_depth", "trend")
    reg.register("sidecar_queue_depth", "trend")  # idempotent
    assert parse_thresholds({"sidecar_queue_depth": ["max<10"]}, SRC, registry=reg)[0].kind == "trend"
    assert "sidecar_queue_depth" not in default_registry()  # every registry is its own copy
    with pytest.raises(ValueError, match="already registered as a trend"):
        reg.register("sidecar_queue_depth", "counter")
    with pytest.raises(ValueError, match="kind must be one of"):
        reg.register("x", "gauge")  # type: ignore[arg-type]
    assert MetricRegistry({"only": "rate"}).names() == ["only"]


# -- evaluation --------------------------------------------------------------------------------------


def store() -> MetricStore:
    s = MetricStore()
    s.mark_start(0.0)
    s.mark_stop(100.0)
    for i in range(1, 101):  # ttft short: 1..100 ms on 200; cot: 1000 ms; 5 failures of 5000 ms
        s.add("llm_ttft_ms", {"scenario": "chat_stream", "status": "200", "prompt": "short"}, float(i))
    for _ in range(10):
        s.add("llm_ttft_ms", {"scenario": "chat_stream", "status": "200", "prompt": "cot"}, 1000.0)
    for _ in range(5):
        s.add("llm_ttft_ms", {"scenario": "chat_stream", "status": "500", "prompt": "short"}, 5000.0)
    for i in range(200):
        s.rate("http_req_failed", {"name": "/v1/chat/completions", "status": "500" if i < 4 else "200"}, i < 4)
    for _ in range(50):
        s.inc("requests_blocked", {"scenario": "gw"})
    return s


# (key, expression, observed, ok)
EVALUATIONS: list[tuple[str, str, Any, bool]] = [
    ("llm_ttft_ms{scenario:chat_stream,status:200,prompt:short}", "p(95)<1000", pytest.approx(95, rel=0.01), True),
    ("llm_ttft_ms{status:200,prompt:short}", "p(100)<=100", 100.0, True),
    ("llm_ttft_ms{prompt:short,status:200}", "min>=1", 1.0, True),
    ("llm_ttft_ms{prompt:short,status:200}", "max<100", 100.0, False),
    ("llm_ttft_ms{prompt:short,status:200}", "avg==50.5", 50.5, True),
    ("llm_ttft_ms{prompt:short,status:200}", "med<51", pytest.approx(50, rel=0.01), True),
    ("llm_ttft_ms{prompt:short,status:200}", "count==100", 100.0, True),
    ("llm_ttft_ms{prompt:cot}", "p(95)<1000", pytest.approx(1000.0), False),
    ("llm_ttft_ms{status:200}", "count==110", 110.0, True),
    ("llm_ttft_ms{prompt:short}", "max<5000", 5000.0, False),  # the failures are in this subset
    ("llm_ttft_ms", "count==115", 115.0, True),
    ("http_req_failed", "rate<0.02", 0.02, False),
    ("http_req_failed", "rate<=0.02", 0.02, True),
    ("http_req_failed{status:200}", "rate==0", 0.0, True),
    ("requests_blocked", "count<100", 50.0, True),
    ("requests_blocked", "rate<0.5", 0.5, False),  # 50 over a 100 s run
    ("requests_blocked{scenario:chat}", "count==0", 0.0, True),  # a count of nothing is 0
    ("budget_exceeded", "count<1", 0.0, True),
]


@pytest.mark.parametrize(("key", "expr", "observed", "ok"), EVALUATIONS, ids=[f"{k} {e}" for k, e, _, _ in EVALUATIONS])
def test_evaluate(key: str, expr: str, observed: Any, ok: bool) -> None:
    (r,) = evaluate(parse_thresholds({key: [expr]}, SRC), store())
    assert (r.observed, r.ok, r.no_data) == (observed, ok, False)


@pytest.mark.parametrize(
    "key",
    [
        "llm_ttft_ms{prompt:long}",  # filter matches nothing
        "llm_tpot_ms",  # never recorded
        "goodput",  # rate without events
    ],
)
def test_no_data_passes_marked_unless_fail_on_no_data(key: str) -> None:
    expr = "rate>0.99" if key == "goodput" else "p(95)<1"
    (r,) = evaluate(parse_thresholds({key: [expr]}, SRC), store())
    assert (r.observed, r.ok, r.no_data) == (None, True, True)
    (strict,) = evaluate(parse_thresholds({key: [{"threshold": expr, "failOnNoData": True}]}, SRC), store())
    assert (strict.ok, strict.no_data) == (False, True)
    (all_strict,) = evaluate(parse_thresholds({key: [expr]}, SRC, fail_on_no_data=True), store())
    assert all_strict.ok is False


def test_counter_rate_needs_a_duration() -> None:
    s = MetricStore()
    s.inc("http_reqs", {})
    (r,) = evaluate(parse_thresholds({"http_reqs": ["rate>1"]}, SRC), s)
    assert r.no_data and r.ok
    (r,) = evaluate(parse_thresholds({"http_reqs": ["rate<1"]}, SRC), s, elapsed_s=4.0)
    assert (r.observed, r.ok) == (0.25, True)


def test_metric_recorded_with_another_kind_fails_with_an_error() -> None:
    s = MetricStore()
    s.inc("gateway_latency", {})
    (r,) = evaluate(parse_thresholds({"gateway_latency": ["p(95)<50"]}, SRC), s)
    assert not r.ok and r.error == "metric 'gateway_latency' was recorded as a counter, the threshold needs a trend"


def test_results_keep_the_order_of_the_thresholds() -> None:
    data = {"http_req_failed": ["rate<0.5"], "llm_ttft_ms": ["p(50)<10", "p(99)<1e9"]}
    results = evaluate(parse_thresholds(data, SRC), store())
    assert [(r.threshold.metric, r.threshold.expression) for r in results] == [
        ("http_req_failed", "rate<0.5"),
        ("llm_ttft_ms", "p(50)<10"),
        ("llm_ttft_ms", "p(99)<1e9"),
    ]


def test_abort_failures_respect_delay_and_ignore_no_data() -> None:
    data = {
        "http_req_failed": [{"threshold": "rate<0.01", "abortOnFail": True, "delayAbortEval": "30s"}],
        "requests_blocked": [{"threshold": "count<10", "abortOnFail": True}, "count<1"],
        "llm_tpot_ms": [{"threshold": "p(95)<1", "abortOnFail": True, "failOnNoData": True}],
        "llm_ttft_ms": ["p(95)<1"],  # failing, but not abortOnFail
    }
    ths = parse_thresholds(data, SRC)
    s = store()
    assert [r.threshold.metric for r in abort_failures(ths, s, elapsed_s=10.0)] == ["requests_blocked"]
    assert [r.threshold.metric for r in abort_failures(ths, s, elapsed_s=30.0)] == [
        "http_req_failed",
        "requests_blocked",
    ]
    assert abort_failures(ths, MetricStore(), elapsed_s=60.0) == []
