"""``make distributed`` (deploy/run_distributed.py): mock, master and workers started, run, all stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, locust_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


def test_two_local_workers_against_the_mock_it_starts(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    env = locust_env(
        {
            "STREAM_RPS": "6",
            "NONSTREAM_RPS": "2",
            "MAX_TOKENS": "5",
            "PROMPTS": "short",
            "SUMMARY_JSON": str(summary),
        }
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "run_distributed.py"), "--workers", "2", "--",
         "-u", "4", "-r", "20", "-t", "4s", "--stop-timeout", "3"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=50, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "no BASE given: built-in mock at http://127.0.0.1:" in out
    doc = json.loads(summary.read_text())
    workers = doc["workers"]
    assert workers["expected"] == 2 and workers["at_start"] == 2 and workers["reported"] == 2
    assert workers["lost"] == [] and workers["no_final_report"] == []
    assert doc["metadata"]["host"].startswith("http://127.0.0.1:")
    reqs = sum(c["count"] for c in doc["counters"] if c["name"] == "http_reqs")
    views = [json.loads(p.read_text()) for p in tmp_path.glob("summary.worker*.json")]
    assert len(views) == 2
    assert reqs == sum(c["count"] for v in views for c in v["counters"] if c["name"] == "http_reqs") > 0
    assert "WORKERS: 2 at start (expected 2), 0 joined late, 0 lost; 2 of 2 reported" in out
