"""The HTML report of a real run (``--html-report``) rendered in headless Chromium: it loads nothing but itself,
shows every threshold and draws its plots. Screenshot: ``test-artifacts/html-report.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_metrics.outputs.summary import format_number
from mock_llm.testing import MockProcess
from tests.e2e.browser import artifact, launch, require_chromium
from tests.support import run_locust
from tests.unit.report_summaries import check_html

pytestmark = pytest.mark.slow

PLOTS = ("plot-users", "plot-requests", "plot-ttft", "plot-total", "plot-tokens")


def test_report_of_a_run_renders_alone_in_chromium(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    report = tmp_path / "out" / "report.html"
    with MockProcess({"ttft_ms": 60, "itl_ms": 5}) as mock:
        run = run_locust(
            "chat.py",
            ["-u", "6", "-r", "6", "-t", "5s", "--html-report", str(report)],
            {"BASE": mock.base_url, "STREAM_RPS": "10", "NONSTREAM_RPS": "2", "MAX_TOKENS": "10"},
            tmp_path,
        )
    assert run.summary is not None and report.exists(), run.output[-3000:]
    page_html = report.read_text()
    check_html(page_html)

    requested: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.on("request", lambda r: requested.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(report.as_uri())
            page.wait_for_load_state("load")
            # every threshold line, as the browser shows it
            rows = page.locator("table.thresholds tbody tr").all()
            shown = [[c.strip() for c in r.locator("td").all_inner_texts()] for r in rows]
            widths = {p: page.locator(f"#{p} svg").bounding_box() for p in PLOTS}
            lines = {p: page.locator(f"#{p} svg polyline").count() for p in PLOTS}
            page_width = page.evaluate("document.documentElement.scrollWidth")
            page.screenshot(path=str(artifact("html-report.png")), full_page=True)
        finally:
            browser.close()
    assert requested == [report.as_uri()], requested  # self-contained: nothing else was fetched
    assert errors == []
    summary = run.summary
    assert [(r[1], r[2]) for r in shown] == [(t["key"], t["expression"]) for t in summary["thresholds"]]
    assert [r[0] for r in shown] == ["✓ pass" if t["ok"] else "✗ FAIL" for t in summary["thresholds"]]
    for plot in PLOTS:
        box = widths[plot]
        assert box is not None and box["width"] > 300 and box["height"] > 100, (plot, box)
        assert lines[plot] >= 1, plot
    assert page_width <= 1366  # readable on a laptop: no sideways scrolling of the page
    # the report shows the final, merged data of the run the JSON summary describes: the samples behind each
    # threshold, as the browser shows them, are the summary's (a report built before the last data fails here)
    assert [r[4] for r in shown] == [format_number(t["samples"]) for t in summary["thresholds"]], shown
    failed_rate = next(t for t in summary["thresholds"] if t["key"] == "http_req_failed")
    assert failed_rate["samples"] == sum(c["count"] for c in summary["counters"] if c["name"] == "http_reqs") > 0
