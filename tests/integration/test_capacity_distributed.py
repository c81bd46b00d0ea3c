"""The capacity search on a master with two workers: each step judged on the merged data of that step alone.

The master runs the shape; the workers send their usual reports every 3 s and need nothing new. A step's window
opens after the settling time (3 s, the report interval, so no report merged into it holds the step before),
and is judged once both workers have reported after the hold. Two steps: 16 Users (below the mock's capacity of
20, not slowed) pass, 32 Users (slowed (32/20)**3 = 4.1 times: TTFT ~410 ms) fail against TTFT p95 < 250 ms,
a bound with 150 ms of margin on either side for the client's own delay on a busy machine; the window's
request rate is the one 16 Users give.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mock_llm.testing import MockProcess
from tests.support import run_distributed

pytestmark = [pytest.mark.slow, pytest.mark.timing]


def test_master_and_two_workers_judge_each_step_on_its_merged_data(tmp_path: Path) -> None:
    (tmp_path / "th.yaml").write_text(yaml.safe_dump({"thresholds": {"llm_ttft_ms": ["p(95)<250"]}}))
    search = {
        "capacity": {
            "mode": "users", "start": 16, "max": 32, "growth": 2, "relative_resolution": 1,
            "settle": 3, "hold": 2, "report_timeout": 4, "cooldown": 0, "min_samples": 20,
        }
    }  # fmt: skip
    (tmp_path / "cap.yaml").write_text(yaml.safe_dump(search))
    with MockProcess({"ttft_ms": 100, "itl_ms": 5, "capacity": 20, "overload_exponent": 3}) as mock:
        env = {
            "BASE": mock.base_url,
            "THRESHOLDS": str(tmp_path / "th.yaml"),
            "CAPACITY_CONF": str(tmp_path / "cap.yaml"),
            "INPUT_TOKENS": "20",
            "OUTPUT_TOKENS": "4",
        }
        run = run_distributed("workload.py,capacity.py", ["--only-summary"], env, tmp_path, timeout=38)
    out = run.output
    assert run.returncode == 0, out[-3000:]
    doc = run.summary
    assert doc is not None
    cap = doc["capacity"]
    print(json.dumps([{k: s[k] for k in ("level", "passed", "requests_per_s", "ttft_p95_ms")} for s in cap["steps"]]))
    assert doc["metadata"]["workers_reported"] == 2
    assert (cap["limit"], cap["first_failure"], cap["complete"]) == (16, 32, True)
    low, high = cap["steps"]
    assert low["ttft_p95_ms"] < 250 < high["ttft_p95_ms"]
    # 16 Users in a closed loop complete 16 calls per call time: the window's rate is theirs, not the
    # settling seconds' or the next step's (each call is one request)
    expected = 16 / (low["total_p50_ms"] / 1000.0)
    assert low["requests_per_s"] == pytest.approx(expected, rel=0.2)
    assert "calibration (" in out  # each worker calibrated against the mock and told the master
