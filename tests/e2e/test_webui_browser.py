"""The LLM tabs of Locust's web UI in a real headless Chromium: a run started and stopped with the page's own
buttons, live TTFT in the "LLM metrics" tab, final numbers equal to the JSON summary of that run.

Screenshot: ``test-artifacts/webui-llm-metrics-tab.png`` (and ``webui-llm-thresholds-tab.png``).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from mock_llm.testing import MockProcess
from tests.e2e.browser import LocustWeb, artifact, launch, require_chromium, start_from_form
from tests.support import hist_of

pytestmark = pytest.mark.slow

TTFT_MS = 80.0
HEADER = ["Scenario", "Name", "Prompt", "Metric", "Samples", "p50", "p95", "p99", "Per second", "Share of calls"]


def read_table(page: Any) -> tuple[list[str], list[list[str]]]:
    """Header texts and cell texts of the table shown in the current tab."""
    head = [t.strip() for t in page.locator("table thead th").all_inner_texts()]
    rows = [[c.strip() for c in r.locator("td").all_inner_texts()] for r in page.locator("table tbody tr").all()]
    return head, rows


def ttft_p50(page: Any, scenario: str, prompt: str) -> float | None:
    """p50 of the "TTFT ms" row of (scenario, prompt); None while the row or its value is missing."""
    head, rows = read_table(page)
    if "p50" not in head or "Metric" not in head:
        return None
    key = (head.index("Scenario"), head.index("Prompt"), head.index("Metric"))
    col = head.index("p50")
    for row in rows:
        if len(row) == len(head) and tuple(row[i] for i in key) == (scenario, prompt, "TTFT ms"):
            return float(row[col]) if re.fullmatch(r"[0-9.]+", row[col]) else None
    return None


def wait_for(fn: Any, timeout: float, what: str, web: LocustWeb) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: nothing after {timeout} s\n{web.output[-3000:]}")
        time.sleep(0.25)


def test_llm_tab_shows_live_ttft_that_matches_the_summary(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    env = {"STREAM_RPS": "12", "NONSTREAM_RPS": "2", "MAX_TOKENS": "10", "PROMPTS": "short"}
    with (
        MockProcess({"ttft_ms": TTFT_MS, "itl_ms": 5}) as mock,
        LocustWeb("chat.py", {"BASE": mock.base_url, **env}, tmp_path) as web,
        sync_playwright() as pw,
    ):
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(web.url)
            start_from_form(page, 6)
            page.get_by_role("tab", name="LLM metrics").click()
            live = wait_for(lambda: ttft_p50(page, "chat_stream", "short"), 15, "live TTFT in the LLM tab", web)
            assert live == pytest.approx(TTFT_MS, rel=0.15), live
            head, rows = read_table(page)
            assert head == HEADER, head
            metrics = {(r[0], r[3]) for r in rows}
            for metric in ("TTFT ms", "TPOT ms", "Total ms", "Tokens/s per call", "Output tokens", "Goodput"):
                assert ("(all)", metric) in metrics, (metric, rows)
            # stop from the page; the UI stops polling once stopped, so reload for the final numbers
            page.get_by_role("button", name="Stop").click()
            web.wait_state("stopped")
            page.goto(web.url + "?tab=llm_metrics")
            final = wait_for(lambda: ttft_p50(page, "chat_stream", "short"), 10, "final TTFT after reload", web)
            page.screenshot(path=str(artifact("webui-llm-metrics-tab.png")), full_page=True)
            page.get_by_role("tab", name="LLM thresholds").click()
            page.wait_for_selector("table tbody tr")
            th_head, th_rows = read_table(page)
            page.screenshot(path=str(artifact("webui-llm-thresholds-tab.png")), full_page=True)
        finally:
            browser.close()
        web.quit()
        summary = web.summary()
    # the tab's final p50 is the summary's, within the display rounding (2 decimals)
    h = hist_of(summary, "llm_ttft_ms", scenario="chat_stream", prompt="short", status="200")
    expected = h.percentile(50)
    assert expected is not None and h.count >= 10, summary["metrics"]
    assert final == pytest.approx(expected, abs=0.006), (final, expected)
    assert live == pytest.approx(expected, rel=0.05), (live, expected)  # live p50 of part of the same run
    # every threshold of the summary is in the thresholds tab, with its verdict so far
    assert th_head[:4] == ["Result so far", "Metric", "Threshold", "Observed"], th_head
    shown = {(r[1], r[2]): r[0] for r in th_rows}
    assert len(th_rows) == len(summary["thresholds"]), th_rows
    for th in summary["thresholds"]:
        verdict = shown[(th["key"], th["expression"])]
        assert verdict == ("✓ pass" if th["ok"] and not th["no_data"] else "no data" if th["ok"] else "✗ FAIL")
