"""Master and two worker processes on loopback give the numbers one process would give."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from llm_metrics.engine.histogram import Histogram
from mock_llm.testing import MockProcess
from tests.support import LOCUSTFILES, ROOT, LocustRun, locust_env

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_master_and_two_workers_merge_exactly(tmp_path: Path) -> None:
    port = free_port()
    summary = tmp_path / "summary.json"
    rate = 40.0
    run_s = 8
    with MockProcess({"ttft_ms": 50, "itl_ms": 5, "seed": 1}) as mock:
        env = locust_env(
            {
                "BASE": mock.base_url,
                "STREAM_RPS": str(rate),
                "NONSTREAM_RPS": "0",
                "MAX_TOKENS": "10",
                "PROMPTS": "short",
                "SMOKE": "false",
                "SUMMARY_JSON": str(summary),
            }
        )
        locust = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES / "chat.py")]
        master = subprocess.Popen(
            [
                *locust,
                "--master",
                "--headless",
                "--expect-workers",
                "2",
                "-u",
                "20",
                "-r",
                "100",
                "-t",
                f"{run_s}s",
                "--master-bind-host",
                "127.0.0.1",
                "--master-bind-port",
                str(port),
                "--stop-timeout",
                "5",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
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
            out, _ = master.communicate(timeout=90)
            for w in workers:
                w.wait(timeout=30)
        finally:
            procs: list[subprocess.Popen[str] | subprocess.Popen[bytes]] = [master, *workers]
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
        stats = mock.stats()
    run = LocustRun(master.returncode, out, json.loads(summary.read_text()) if summary.exists() else None)
    assert run.returncode == 0, out[-3000:]
    views = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("summary.worker*.json"))]
    assert len(views) == 2, out[-2000:]

    # the same request count as the mock received, and as the two workers together
    sent = stats["requests"]["POST /v1/chat/completions"]
    assert run.counter("http_reqs") == sent
    per_worker = [sum(c["count"] for c in v["counters"] if c["name"] == "http_reqs") for v in views]
    assert sum(per_worker) == sent and all(n > 0 for n in per_worker)

    # the merged TTFT histogram is exactly the union of what the workers measured
    union = Histogram()
    for v in views:
        for m in v["metrics"]:
            if m["name"] == "llm_ttft_ms":
                union.merge(Histogram.from_wire(m["hist"]))
    merged = run.hist("llm_ttft_ms")
    assert merged == union
    for p in (50, 95, 99):
        assert merged.percentile(p) == pytest.approx(union.percentile(p), rel=0.01)

    # every scheduled arrival was sent or counted as dropped
    ledgers = [v["arrivals"] for v in views]
    issued = sum(a["issued"].get("chat_stream", 0) for a in ledgers)
    assert issued == sent + run.counter("dropped_iterations")
    # the arrival rate across both workers is the requested total within 5%: each worker's share over the
    # time its schedule ran (which starts once its Users are spawned, a fraction of a second after the run)
    assert sorted(a["share"]["index"] for a in ledgers) == [0, 1]
    total_rate = sum(a["issued"]["chat_stream"] / a["scheduled_s"] for a in ledgers)
    assert total_rate == pytest.approx(rate, rel=0.05)
    assert all(a["scheduled_s"] >= run_s - 1.5 for a in ledgers)
