"""Under a load shape each worker runs its share of the arrivals from the first second, never the whole rate.

Issue 16's drift: the chat suite and the workload suite each had their own copy of the worker-share protocol,
and the chat suite's copy once started a worker's schedule at test start under a load shape without waiting
for its share, so that a worker could run the whole test's rate until its share came. Both suites now use
one protocol (``llm_users.pacing.share_protocol``). Here master + 2 workers run the chat suite (and the
workload suite's open model) under a load shape on loopback against the built-in mock, and each worker's
arrivals, read from its per-request records (``--requests-jsonl``: every call's ``scheduled`` time), are
counted second by second from the test start: each second holds the worker's share (rate / 2), not the rate.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mock_llm.testing import MockProcess
from tests.support import LOCUSTFILES, ROOT, LocustRun, free_port, locust_env

pytestmark = pytest.mark.slow

RATE = 20.0  # arrivals per second for the whole test: 10 per worker
SECONDS = 4  # the shape's length
SHARE_PER_S = RATE / 2
MOCK = {"ttft_ms": 20, "itl_ms": 2, "seed": 1}

SUITES: dict[str, tuple[str, dict[str, str], list[str]]] = {  # locustfile, knobs, flags
    "chat": ("chat.py", {"STREAM_RPS": str(RATE), "NONSTREAM_RPS": "0", "MAX_TOKENS": "5", "SMOKE": "false"}, []),
    "workload": (
        "workload.py",
        {},
        ["--workload", "open", "--rate", str(RATE), "--output-tokens", "5", "--calibrate", "false"],
    ),
}


def stages_file(tmp_path: Path) -> Path:
    """A profile of 40 Users from the first tick for ``SECONDS`` s: 20 per worker, so that an arrival finds an
    idle User even when the shared cores make the ~30 ms calls last ten times longer."""
    path = tmp_path / "stages.yaml"
    stage = f"{{duration: {SECONDS}s, target: 40}}"
    path.write_text(f"profiles:\n  held:\n    start_users: 40\n    stages:\n      - {stage}\n")
    return path


@contextmanager
def processes(commands: list[list[str]], env: dict[str, str]) -> Iterator[list[subprocess.Popen[str]]]:
    """Start every command from the repository root (output captured); kill what still runs at the end."""
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for cmd in commands
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def run_under_shape(suite: str, tmp_path: Path) -> tuple[LocustRun, list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """Master + 2 workers of ``suite`` with ``locustfiles/profiles.py``'s shape; the master's run, the workers'
    JSON views and each worker's request records."""
    locustfile, knobs, flags = SUITES[suite]
    port = free_port()
    summary = tmp_path / "summary.json"
    records = tmp_path / "requests.jsonl"
    with MockProcess(MOCK) as mock:
        env = locust_env(
            {
                "BASE": mock.base_url,
                "SUMMARY_JSON": str(summary),
                "REQUESTS_JSONL": str(records),
                "STAGES_FILE": str(stages_file(tmp_path)),
                "PROFILE": "held",
                **knobs,
            }
        )
        files = f"{LOCUSTFILES / locustfile},{LOCUSTFILES / 'profiles.py'}"
        locust = [sys.executable, "-m", "locust", "-f", files]
        master = [*locust, "--master", "--headless", "--expect-workers", "2", "--stop-timeout", "3", *flags]
        master += ["--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
        worker = [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
        with processes([master, worker, worker], env) as procs:
            out, _ = procs[0].communicate(timeout=90)
            for proc in procs[1:]:
                proc.communicate(timeout=30)
    run = LocustRun(procs[0].returncode, out, json.loads(summary.read_text()) if summary.exists() else None)
    views = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("summary.worker*.json"))]
    lines = [
        [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
        for p in sorted(tmp_path.glob("requests.worker*.jsonl"))
    ]
    return run, views, lines


def per_second(stamps: list[float], start: float, seconds: int) -> list[int]:
    """How many of ``stamps`` fall in each whole second from ``start``."""
    counts = [0] * seconds
    for t in stamps:
        i = int(t - start)
        if 0 <= i < seconds:
            counts[i] += 1
    return counts


@pytest.mark.timing  # arrivals counted per second: the processes need the cores while the shape runs
@pytest.mark.parametrize("suite", sorted(SUITES))
def test_each_worker_runs_its_share_from_the_first_second_under_a_load_shape(tmp_path: Path, suite: str) -> None:
    run, views, records = run_under_shape(suite, tmp_path)
    assert len(views) == 2 and len(records) == 2, run.output[-3000:]
    if suite == "chat":  # the chat suite's worker views say which share each worker ran
        assert sorted((v["arrivals"]["share"]["index"], v["arrivals"]["share"]["workers"]) for v in views) == [
            (0, 2),
            (1, 2),
        ]

    scheduled = [sorted(r["scheduled"] for r in recs if r["scheduled"] is not None) for recs in records]
    assert all(scheduled), run.output[-3000:]
    start = min(s[0] for s in scheduled)  # the first arrival of the test (worker rank 0's, at the test start)
    full_seconds = SECONDS - 1  # the last second may be cut by the shape's stop
    counts = [per_second(s, start, full_seconds) for s in scheduled]
    # ``scheduled`` is when an arrival was due, not when it was sent: a late process does not move it. A worker
    # that ran the whole rate before its share came has ~RATE arrivals in its first second(s); its share is
    # RATE / 2 a second (constant arrivals: exactly that many are due; +1 at the edges of a second)
    for worker in counts:
        assert all(n <= SHARE_PER_S + 1 for n in worker), (counts, run.output[-2000:])
    # and each ran its share: only sent calls have records, and an arrival that found no idle User is dropped
    # (on a busy machine a few may be), so at least 70% of the share's arrivals
    assert all(sum(worker) >= 0.7 * SHARE_PER_S * full_seconds for worker in counts), counts
    # the master's ledger: the arrivals issued in the whole run (sent or dropped) are the rate's, not more
    assert run.summary is not None, run.output[-3000:]
    arrivals = run.summary["arrivals"]
    assert arrivals["issued"] <= 1.05 * arrivals["expected"] + 1, arrivals
