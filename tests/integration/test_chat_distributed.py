"""Master and two worker processes on loopback give the numbers one process would give."""

from __future__ import annotations

from pathlib import Path

import pytest

from mock_llm.testing import MockProcess
from tests.support import run_distributed

pytestmark = pytest.mark.slow


def test_master_and_two_workers_merge_exactly(tmp_path: Path) -> None:
    rate = 40.0
    run_s = 8
    with MockProcess({"ttft_ms": 50, "itl_ms": 5, "seed": 1}) as mock:
        env = {
            "BASE": mock.base_url,
            "STREAM_RPS": str(rate),
            "NONSTREAM_RPS": "0",
            "MAX_TOKENS": "10",
            "PROMPTS": "short",
            "SMOKE": "false",
        }
        run = run_distributed(
            "chat.py", ["-u", "20", "-r", "100", "-t", f"{run_s}s", "--stop-timeout", "5"], env, tmp_path
        )
        stats = mock.stats()
    assert run.returncode == 0, run.output[-3000:]
    views = [v for _, v in sorted(run.views().items())]
    assert len(views) == 2, run.output[-2000:]

    # the same request count as the mock received, and as the two workers together
    sent = stats["requests"]["POST /v1/chat/completions"]
    assert run.counter("http_reqs") == sent
    per_worker = run.worker_counts("http_reqs")
    assert sum(per_worker) == sent and all(n > 0 for n in per_worker)

    # the merged TTFT histogram is exactly the union of what the workers measured
    union = run.workers_hist("llm_ttft_ms")
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
