"""``--reset-stats``: Locust empties its stats when spawning completes, and the LLM metrics are emptied with them,
so the summary counts exactly the requests Locust's own final stats count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mock_llm.testing import MockProcess
from tests.support import run_locust

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


def test_reset_stats_empties_the_llm_metrics_when_spawning_completes(tmp_path: Path) -> None:
    # the sidecar's Users call as soon as they start (the chat suite's open model starts its arrivals when
    # spawning completes: nothing to leave out there)
    with MockProcess({"ttft_ms": 10, "itl_ms": 2}) as mock:
        run = run_locust(
            "sidecar.py",
            ["-u", "6", "-r", "3", "-t", "4s", "--reset-stats", "--json-file", str(tmp_path / "locust")],
            {"OSIRIS_URL": mock.base_url, "THINK_TIME": "0.1"},
            tmp_path,
        )
        served = sum(mock.stats()["requests"].values())
    assert run.summary is not None, run.output[-3000:]
    assert "--reset-stats: the LLM metrics are reset" in run.output
    locust: dict[str, int] = {}
    for entry in json.loads((tmp_path / "locust.json").read_text()):  # written after the Users stopped
        locust[entry["name"]] = locust.get(entry["name"], 0) + entry["num_requests"]
    ours: dict[str, int] = {}
    for c in run.summary["counters"]:
        if c["name"] == "http_reqs":
            ours[c["tags"]["name"]] = ours.get(c["tags"]["name"], 0) + c["count"]
    assert ours == locust and sum(ours.values()) > 0, run.output[-3000:]  # counted, after the reset
    # the ramp-up (about 2 s of 6 Users calling every 0.1 s) is left out of both
    assert served > sum(ours.values()) + 10, (served, ours)
