"""Reset means reset: Locust's "Reset stats" empties the LLM metrics and series, and a second run in the same
web-UI session starts from empty LLM metrics (it counts exactly what Locust's own table counts for that run)."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mock_llm.testing import MockProcess
from tests.e2e.browser import LocustWeb

pytestmark = pytest.mark.slow

ENV = {"STREAM_RPS": "15", "NONSTREAM_RPS": "5", "MAX_TOKENS": "6", "PROMPTS": "short", "SMOKE": "false"}


def llm_requests(doc: dict[str, Any]) -> float:
    return sum(c["count"] for c in doc["counters"] if c["name"] == "http_reqs")


def locust_requests(web: LocustWeb) -> int:
    stats = web.get_json("stats/requests")["stats"]
    return int(next(s["num_requests"] for s in stats if s["name"] == "Aggregated"))


def run_for(web: LocustWeb, host: str, seconds: float) -> float:
    """Start a run from the UI, let it run, stop it; returns the wall-clock start."""
    started = time.time()
    assert web.post("swarm", {"user_count": "5", "spawn_rate": "50", "host": host})["success"]
    time.sleep(seconds)
    web.post("stop", {})
    web.wait_state("stopped")
    return started


def test_reset_stats_and_a_second_run_start_from_empty_llm_metrics(tmp_path: Path) -> None:
    with (
        MockProcess({"ttft_ms": 20, "itl_ms": 2}) as mock,
        LocustWeb("chat.py", {"BASE": mock.base_url, **ENV}, tmp_path) as web,
    ):
        run_for(web, mock.base_url, 2.5)
        first = web.get_json("llm/summary.json")
        assert llm_requests(first) >= 10, web.output[-2000:]
        assert first["series"] and first["metrics"]

        req = urllib.request.Request(web.url + "stats/reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
        after_reset = web.get_json("llm/summary.json")
        assert llm_requests(after_reset) == 0
        assert after_reset["metrics"] == [] and after_reset["series"] == []

        # run 1 again, then a second run: it holds nothing of the first
        run_for(web, mock.base_url, 1.5)
        assert llm_requests(web.get_json("llm/summary.json")) > 0
        second_start = run_for(web, mock.base_url, 2.5)
        second = web.get_json("llm/summary.json")
        n = llm_requests(second)
        assert n > 0
        time.sleep(2.2)  # Locust caches /stats/requests for 2 s
        assert n == locust_requests(web)  # Locust clears its stats at a new run: the same count
        assert sum(s["requests"] for s in second["series"]) == n
        assert min(s["t"] for s in second["series"]) >= int(second_start)
        web.quit()
    final = web.summary()
    assert llm_requests(final) == n
