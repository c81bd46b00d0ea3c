"""Prometheus text checks of /metrics answers: a body that does not parse names its offending line."""

from __future__ import annotations

import re

import pytest

from llm_metrics.engine.promtext import PromTextError, Sample, parse, select, totals
from mock_llm.stats import Stats, render_prometheus

GOOD = """# HELP app_requests_total Requests.
# TYPE app_requests_total counter
app_requests_total{method="POST",path="/generate",status="200"} 7
app_requests_total{method="POST",path="/generate",status="500"} 1
app_requests_total{method="GET",path="/health",status="200"} 3
# HELP app_queue_length Waiting.
# TYPE app_queue_length gauge
app_queue_length 2
"""


def test_good_body_gives_every_sample() -> None:
    samples = parse(GOOD.encode())
    assert Sample("app_queue_length", (), 2.0) in samples
    assert len(samples) == 4
    by_path = totals(samples, "app_requests_total", by="path")
    assert by_path == {"/generate": 8.0, "/health": 3.0}
    errors = totals(samples, "app_requests_total", {"status": re.compile("5..")}, by="path")
    assert errors == {"/generate": 1.0}
    assert totals(samples, "app_queue_length") == {"": 2.0}
    assert totals(samples, "absent_total") == {}
    assert select(samples, "app_requests_total", {"path": re.compile("/gen")}) == []  # matched in full


def test_the_mock_metrics_parse() -> None:
    stats = Stats()
    assert parse(render_prometheus(stats, "mock_llm", 1, 0))


@pytest.mark.parametrize(
    ("body", "line_no", "reason"),
    [
        (GOOD + "this line is broken\n", 9, "invalid Prometheus text at line 9: 'this line is broken'"),
        ("a 1\nb{x=1} 2\n", 2, "invalid Prometheus text at line 2: 'b{x=1} 2'"),
        ("a 1\n{not json\n", 2, "invalid Prometheus text at line 2: '{not json'"),
        ("a NaNx\n", 1, "invalid Prometheus text at line 1: 'a NaNx'"),
        ('a{x="1",x="2"} 1\n', 1, 'invalid Prometheus text at line 1: \'a{x="1",x="2"} 1\''),
        # the parser only refuses a bad type when the family ends; the error still names the TYPE line
        ("# TYPE a banana\na 1\nb 2\n", 1, "invalid Prometheus text at line 1: '# TYPE a banana'"),
        ("# TYPE 9bad gauge\n", 1, "invalid Prometheus text at line 1: '# TYPE 9bad gauge'"),
        ("a 1\r\nb two\r\n", 2, "invalid Prometheus text at line 2: 'b two'"),
        ("", 0, "invalid Prometheus text: no samples in the body"),
        ("# HELP a only comments\n", 0, "invalid Prometheus text: no samples in the body"),
    ],
    ids=[
        "free-text",
        "unquoted-label",
        "json-garbage",
        "bad-value",
        "duplicate-label",
        "unknown-type",
        "bad-name",
        "crlf",
        "empty",
        "no-samples",
    ],
)
def test_bad_body_names_the_line(body: str, line_no: int, reason: str) -> None:
    with pytest.raises(PromTextError) as err:
        parse(body.encode())
    assert err.value.line_no == line_no
    assert err.value.reason == reason
    assert str(err.value).startswith(reason)


def test_non_utf8_line_is_named() -> None:
    with pytest.raises(PromTextError) as err:
        parse(b"a 1\n\xff\xfe 2\n")
    assert err.value.line_no == 2
    assert str(err.value).endswith("(not UTF-8)")


def test_long_line_is_shortened() -> None:
    with pytest.raises(PromTextError) as err:
        parse(("x" * 300 + " notanumber\n").encode())
    assert err.value.reason == f"invalid Prometheus text at line 1: '{'x' * 77}...'"
    assert len(err.value.line) == 311
