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
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mock_llm.testing import MockProcess
from tests.support import LOCUSTFILES, ROOT, locust_env

pytestmark = [pytest.mark.slow, pytest.mark.timing]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_master_and_two_workers_judge_each_step_on_its_merged_data(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    (tmp_path / "th.yaml").write_text(yaml.safe_dump({"thresholds": {"llm_ttft_ms": ["p(95)<250"]}}))
    search = {
        "capacity": {
            "mode": "users", "start": 16, "max": 32, "growth": 2, "relative_resolution": 1,
            "settle": 3, "hold": 2, "report_timeout": 4, "cooldown": 0, "min_samples": 20,
        }
    }  # fmt: skip
    (tmp_path / "cap.yaml").write_text(yaml.safe_dump(search))
    port = free_port()
    with MockProcess({"ttft_ms": 100, "itl_ms": 5, "capacity": 20, "overload_exponent": 3}) as mock:
        env = locust_env(
            {
                "BASE": mock.base_url,
                "SUMMARY_JSON": str(summary),
                "THRESHOLDS": str(tmp_path / "th.yaml"),
                "CAPACITY_CONF": str(tmp_path / "cap.yaml"),
                "INPUT_TOKENS": "20",
                "OUTPUT_TOKENS": "4",
            }
        )
        locust = [sys.executable, "-m", "locust", "-f", f"{LOCUSTFILES / 'workload.py'},{LOCUSTFILES / 'capacity.py'}"]
        master = subprocess.Popen(
            [*locust, "--master", "--headless", "--expect-workers", "2", "--master-bind-host", "127.0.0.1",
             "--master-bind-port", str(port), "--only-summary"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        workers = [
            subprocess.Popen(
                [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        try:
            out, _ = master.communicate(timeout=38)
            for w in workers:
                w.wait(timeout=10)
        finally:
            procs: list[subprocess.Popen[str] | subprocess.Popen[bytes]] = [master, *workers]
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
    assert master.returncode == 0, out[-3000:]
    doc = json.loads(summary.read_text())
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
