"""The HTML report: one valid, self-contained file with every threshold, the tables and the plots over time."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from llm_metrics.outputs.report_html import MAX_POINTS, main, render_report, write_report
from tests.unit.report_summaries import T0, check_html, make_summary

PLOTS = ("plot-users", "plot-requests", "plot-ttft", "plot-total", "plot-tokens")


def figure(page: str, plot_id: str) -> str:
    start = page.index(f'<figure id="{plot_id}"')
    return page[start : page.index("</figure>", start)]


def test_the_report_is_valid_html_and_self_contained() -> None:
    page = render_report(make_summary())
    parsed = check_html(page)
    assert page.startswith("<!DOCTYPE html>")
    assert parsed.links == ["#thresholds", "#trust", "#plots", "#llm", "#metrics", "#counters", "#rates", "#run"]
    lowered = page.lower()
    for outside in ("@import", "url(", "<script", "<link", "<iframe", "<img"):
        assert outside not in lowered, outside
    # the only URLs are the SVG namespace and the run's own target, as text
    assert set(re.findall(r"https?://[^\s\"'<]+", page)) == {"http://www.w3.org/2000/svg", "http://127.0.0.1:9"}


def test_every_threshold_line_is_in_the_table_with_its_verdict() -> None:
    doc = make_summary(ttft_ms=100.0, failures=10)  # p(50)<60 fails, and 10 of 210 requests failed
    parsed = check_html(render_report(doc))
    rows = parsed.tables["thresholds"][1:]
    assert len(rows) == len(doc["thresholds"]) == 6
    for th, row in zip(doc["thresholds"], rows, strict=True):
        mark, key, expression, _observed, samples = row
        assert (key, expression) == (th["key"], th["expression"])
        assert mark == ("✓ pass" if th["ok"] else "✗ FAIL")
        assert samples == ("-" if th["samples"] is None else str(th["samples"]))
    by_key = {(r[1], r[2]): r for r in rows}
    assert by_key[("http_req_failed", "rate<0.02")][3] == "rate=0.0476 (10 of 210)"
    assert by_key[("llm_ttft_ms{scenario:chat_stream,prompt:short}", "p(50)<60")][0] == "✗ FAIL"
    assert by_key[("requests_blocked", "count<1")][3] == "count=0"
    page = render_report(doc)
    assert '<span class="verdict bad">FAIL</span>' in page
    assert "4 of 6 thresholds passed" in page


def test_plots_over_time_are_drawn_from_the_per_second_series() -> None:
    doc = make_summary(seconds=30)
    page = render_report(doc)
    parsed = check_html(page)
    assert set(PLOTS) <= parsed.ids
    for plot in PLOTS:
        fig = figure(page, plot)
        assert "<svg" in fig and "<polyline" in fig, plot
    assert "TTFT p50" in figure(page, "plot-ttft") and "TTFT p95" in figure(page, "plot-ttft")
    assert "total p50" in figure(page, "plot-total") and "total p95" in figure(page, "plot-total")
    assert "errors/s" in figure(page, "plot-requests")
    # tooltips name the second and the value
    assert re.search(r"<title>\d+s: output tokens/s \d+", figure(page, "plot-tokens"))


def test_a_long_run_is_downsampled_and_says_so() -> None:
    doc = make_summary(n=50, seconds=30)
    doc["series"] = [
        {"t": T0 + s, "requests": 3, "failures": 0, "blocked": 0, "good": 3, "output_tokens": 30, "users": 5,
         "total_ms_p50": 100.0 + s % 50, "total_ms_p95": 120.0, "ttft_ms_p50": 40.0, "ttft_ms_p95": 50.0}
        for s in range(3 * MAX_POINTS)
    ]  # fmt: skip
    page = render_report(doc)
    fig = figure(page, "plot-total")
    points = re.search(r'<polyline points="([^"]+)"', fig)
    assert points is not None and len(points.group(1).split()) <= MAX_POINTS
    assert "each point: 3 s" in fig
    assert "<title>" not in fig.split("</svg>")[0].split("</title>", 1)[1]  # no per-point tooltips at this size


def test_plots_show_at_most_the_last_day() -> None:
    doc = make_summary(n=20, seconds=10)
    first = next(s for s in doc["series"] if s["requests"])
    doc["series"] = [{**first, "t": T0 - 400 * 86400}, first]  # a year apart
    fig = figure(render_report(doc), "plot-requests")
    assert "the last 24 h" in fig and "each point: 121 s" in fig


def test_seconds_without_requests_break_latency_lines_and_count_zero() -> None:
    doc = make_summary(n=20, seconds=10)
    first = next(s for s in doc["series"] if s["requests"])
    doc["series"] = [first, {**first, "t": first["t"] + 5}]  # nothing finished in the 4 seconds between
    page = render_report(doc)
    total = figure(page, "plot-total")
    assert "<polyline" not in total  # no latency was measured in between: no line drawn through the gap
    assert total.count('r="2"') == 4  # p50 and p95: two lone points each
    assert "<polyline" in figure(page, "plot-requests")  # counts: the seconds in between are zeros


def test_missing_parts_are_said_not_hidden() -> None:
    doc = make_summary(thresholds={})
    doc["series"] = []
    page = render_report(doc)
    check_html(page)
    assert "No thresholds were defined." in page
    assert '<span class="verdict ok">no thresholds</span>' in page
    assert "No per-second data in this summary." in page
    users_unknown = make_summary()
    for s in users_unknown["series"]:
        s["users"] = None
    assert "users were not recorded in this summary" in figure(render_report(users_unknown), "plot-users")


def test_summary_text_is_escaped() -> None:
    doc = make_summary(tags={"name": '<script>alert("x")</script>'})
    page = render_report(doc)
    check_html(page)
    assert "<script>" not in page
    assert html.escape('<script>alert("x")</script>') in page


def test_llm_overview_has_one_row_per_group_and_the_all_row() -> None:
    doc = make_summary(failures=5)
    parsed = check_html(render_report(doc))
    rows = parsed.tables["overview"]
    body = [r for r in rows if r and r[0] in ("chat_stream", "(all)")]
    assert [r[0] for r in body] == ["chat_stream", "(all)"]
    stream = body[0]
    assert stream[:4] == ["chat_stream", "chat", "short", "200"]  # the 5 failed calls are no OK calls
    assert float(stream[4]) == pytest.approx(52.0, rel=0.01)  # TTFT p50 of 50..54.5 ms
    assert stream[-2] == "97.6%"  # goodput: 200 of 205 calls


def test_write_report_masks_secrets(tmp_path: Path) -> None:
    doc = make_summary()
    doc["metadata"]["options"] = {"base": "http://user:hunter22@127.0.0.1:9"}
    out = write_report(doc, tmp_path / "sub" / "report.html", ["hunter22"])
    text = out.read_text()
    assert "hunter22" not in text and "http://***@127.0.0.1:9" in text  # the whole user information


def test_command_line_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "summary.json"
    src.write_text(json.dumps(make_summary()))
    assert main([str(src), "-o", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert main([str(src)]) == 0  # default: beside the summary
    assert (tmp_path / "summary.html").exists()
    assert "HTML report written to" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        ("{not json", "not JSON"),
        ('{"stats": []}', "not a JSON summary of llm_metrics (no 'schema' key"),
        ('{"schema": "llm-locust/summary/v9"}', "unsupported summary schema 'llm-locust/summary/v9'"),
        (
            '{"schema": "llm-locust/summary/v1", "metrics": [{"name": "x", "tags": {}, "hist": [1]}]}',
            "metrics[0] (x): bad histogram",
        ),
    ],
    ids=["missing", "not-json", "no-schema", "other-schema", "bad-histogram"],
)
def test_bad_input_exits_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    src = tmp_path / "input.json"
    if content is not None:
        src.write_text(content)
    assert main([str(src), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert f"{src}: " in err and message in err
    assert not (tmp_path / "r.html").exists()
