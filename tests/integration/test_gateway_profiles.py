"""``locustfiles/profiles.py`` adds the load profiles to any locustfile: the chat suite follows the spike."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mock_llm.testing import MockProcess
from tests.support import LOCUSTFILES, run_locust

pytestmark = pytest.mark.slow


def test_chat_runs_the_spike_profile_from_profiles_py(tmp_path: Path) -> None:
    with MockProcess({"ttft_ms": 20, "itl_ms": 2}) as mock:
        # run_locust prefixes locustfiles/; the second file of the comma-separated list is given in full
        run = run_locust(
            f"chat.py,{LOCUSTFILES / 'profiles.py'}",
            # the spike profile starts from few Users, so arrivals are dropped while it ramps (the open model's
            # adherence check would say so, exit 98): accepted here, the point is that the profile is followed
            ["--only-summary", "--load-profile", "spike", "--time-scale", "0.02", "--accept-schedule-miss"],
            {"BASE": mock.base_url, "STREAM_RPS": "5", "NONSTREAM_RPS": "5", "MAX_TOKENS": "5", "SMOKE": "false"},
            tmp_path,
            timeout=40,
        )
        stats = mock.stats()
    assert run.returncode == 0, run.output[-3000:]
    assert "load profile 'spike' (chosen by --load-profile (env PROFILE)) at time scale 0.02" in run.output
    targets = [int(n) for n in re.findall(r"Shape test updating to (\d+) users", run.output)]
    assert 500 in targets and targets[-1] == 10, targets
    assert 'All users spawned: {"ChatCompletionsUser": 500} (500 total users)' in run.output
    assert "Shape test stopping" in run.output  # the profile ended the run (no --run-time)
    assert run.summary is not None and run.summary["metadata"]["suite"] == "chat"
    assert run.counter("http_reqs", scenario="chat_stream") == stats["completed_streams"] > 10


def test_gateway_and_profiles_py_together_keep_one_set_of_shapes(tmp_path: Path) -> None:
    """gateway.py installs the shapes itself; adding profiles.py (same classes) changes nothing."""
    with MockProcess() as mock:
        run = run_locust(
            f"gateway.py,{LOCUSTFILES / 'profiles.py'}",
            ["--only-summary", "--load-profile", "smoke", "--time-scale", "0.05"],
            {"BASE_URL": mock.base_url},
            tmp_path,
            timeout=30,
        )
    assert run.returncode == 0, run.output[-3000:]
    assert "Duplicate shape classes" not in run.output
    assert "load profile 'smoke'" in run.output
